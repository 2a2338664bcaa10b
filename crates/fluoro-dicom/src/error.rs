//! Typed errors of the DICOM input crate. Every variant names the file.

use std::path::PathBuf;

/// Everything that can go wrong reading a DICOM study.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    /// The file could not be read from disk.
    #[error("{path}: cannot read file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The byte structure is broken (truncated, lying lengths, bad nesting).
    #[error("{path}: malformed DICOM: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset where it was found.
        detail: String,
    },
    /// The DICOM parser rejected the data set.
    #[error("{path}: cannot parse DICOM data set: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// A required attribute is absent or has an unusable value.
    #[error("{path}: attribute {attribute} is missing or invalid{}", detail_suffix(.detail))]
    Attribute {
        /// The file.
        path: PathBuf,
        /// Keyword and tag, e.g. `Rows (0028,0010)`.
        attribute: &'static str,
        /// More context, may be empty.
        detail: String,
    },
    /// The file has no Pixel Data element, or it is empty.
    #[error("{path}: no pixel data: {detail}")]
    NoPixelData {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The pixel data is shorter than rows x columns x frames requires, or declares an
    /// implausible size.
    #[error("{path}: pixel data size: {detail}")]
    PixelDataSize {
        /// The file.
        path: PathBuf,
        /// Declared versus present sizes.
        detail: String,
    },
    /// A feature this reader does not handle.
    #[error("{path}: unsupported: {detail}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// A frame could not be decoded.
    #[error("{path}: frame {frame}: cannot decode: {detail}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Zero-based frame index.
        frame: usize,
        /// The decoder's message.
        detail: String,
    },
    /// A frame index past the end of the study.
    #[error("{path}: frame {frame} requested but the study has {frames} frames")]
    FrameIndex {
        /// The file.
        path: PathBuf,
        /// Requested index.
        frame: usize,
        /// Number of frames.
        frames: usize,
    },
    /// Writing a derived file failed.
    #[error("{path}: cannot write: {detail}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Result alias for this crate.
pub type Result<T, E = DicomError> = std::result::Result<T, E>;
