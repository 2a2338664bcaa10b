//! Streaming writer for NumPy `.npy` files (format version 1.0).
//!
//! Written by hand rather than with `ndarray-npy` because that crate serialises a whole
//! array at once; exporting a long study must write one frame at a time so peak memory
//! stays at one decoded frame.

use std::io::{self, Write};

/// Writes the `.npy` header for a C-order array of `shape` with dtype `descr`
/// (e.g. `"<u2"`); the caller then writes exactly the product of `shape` elements.
pub fn write_header<W: Write>(w: &mut W, descr: &str, shape: &[usize]) -> io::Result<()> {
    let shape_str = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    // magic (6) + version (2) + header length (2) + dict + '\n' must be a multiple of 64
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    dict.extend(std::iter::repeat_n(' ', pad));
    dict.push('\n');
    let len = u16::try_from(dict.len()).map_err(|_| io::Error::other("npy header too long"))?;
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(dict.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_parsable() {
        let mut v = Vec::new();
        write_header(&mut v, "<u2", &[3, 4, 5]).unwrap();
        assert_eq!(v.len() % 64, 0);
        assert_eq!(&v[..8], b"\x93NUMPY\x01\x00");
        let text = std::str::from_utf8(&v[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4, 5), }"));
        assert!(text.ends_with('\n'));
    }
}

/// Writes every frame's stored values of `study` to `path` as the contract's `frames.npy`:
/// shape `(frames, rows, columns)` (`(..., 3)` for colour), dtype from the stored data.
///
/// Frames are decoded and written one at a time. The file is written under a temporary
/// name and renamed at the end, so a failure never leaves a truncated `frames.npy`.
pub fn export_study(study: &crate::Study, path: &std::path::Path) -> crate::Result<ExportStats> {
    use crate::DicomError;
    let fmt = study.format();
    let mut shape = vec![study.frame_count(), fmt.rows, fmt.columns];
    if fmt.samples_per_pixel == 3 {
        shape.push(3);
    }
    let tmp = path.with_extension("npy.partial");
    let werr = |e: io::Error| DicomError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let result = (|| {
        let file = std::fs::File::create(&tmp).map_err(werr)?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        write_header(&mut w, fmt.npy_dtype(), &shape).map_err(werr)?;
        let mut buf = Vec::new();
        let mut stats = ExportStats {
            frames: 0,
            bytes: 0,
        };
        for frame in study.frames() {
            let frame = frame?;
            buf.clear();
            frame.samples.extend_le_bytes(&mut buf);
            w.write_all(&buf).map_err(werr)?;
            stats.frames += 1;
            stats.bytes += buf.len() as u64;
        }
        w.flush().map_err(werr)?;
        Ok(stats)
    })();
    match result {
        Ok(stats) => {
            std::fs::rename(&tmp, path).map_err(werr)?;
            Ok(stats)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// What [`export_study`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportStats {
    /// Frames written.
    pub frames: usize,
    /// Payload bytes written (excluding the header).
    pub bytes: u64,
}
