//! DICOM input for the fluoro pipeline, built on dicom-rs.
//!
//! [`Study::open`] validates a file's structure (every declared length against the bytes
//! present, before the parser sees it), reads the attributes a fluoroscopy pipeline needs
//! (timing, C-arm geometry, shutter, LUTs) and keeps the pixel data encoded; frames are
//! decoded one at a time with [`Study::frame`] to exact stored values. [`npy`] writes the
//! contract's `frames.npy` frame by frame.

pub mod attrs;
pub mod error;
pub mod jpeg12;
pub mod lut;
pub mod meta;
pub mod npy;
pub mod pixels;
pub mod rle;
pub mod structure;
pub mod study;
pub mod writer;

pub use error::{DicomError, Result};
pub use lut::{ModalityLut, VoiLut, WindowFunction};
pub use pixels::{PixelFormat, Samples, StoredFrame};
pub use study::{Study, StudyInfo};
