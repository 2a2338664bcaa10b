//! Encapsulated (compressed) pixel data: a frame's fragments, and decoding them with our
//! own 12-bit JPEG and RLE decoders or dicom-pixeldata's codecs.

use super::Study;
use crate::error::{DicomError, Result};
use crate::pixels::StoredFrame;
use crate::{jpeg12, rle};
use dicom_core::value::Value;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

impl Study {
    /// The encoded bytes of frame `index` (fragments joined).
    pub fn encoded_frame(&self, index: usize) -> Result<Vec<u8>> {
        let Some(Value::PixelSequence(seq)) = self.pixel_value() else {
            return Err(DicomError::NoPixelData {
                path: self.path.clone(),
                detail: "Pixel Data is not encapsulated".into(),
            });
        };
        let frags = seq.fragments();
        let bot = seq.offset_table();
        let frames = self.info.frames;
        let bad = |d: String| DicomError::Decode {
            path: self.path.clone(),
            frame: index,
            detail: d,
        };
        if frames == 1 {
            return Ok(frags.iter().flat_map(|f| f.iter().copied()).collect());
        }
        if frags.len() == frames {
            return Ok(frags[index].clone());
        }
        if bot.len() == frames {
            // offsets count item headers (8 bytes) before each fragment
            let mut starts = Vec::with_capacity(frags.len());
            let mut off = 0u64;
            for f in frags {
                starts.push(off);
                off += 8 + f.len() as u64;
            }
            let begin = u64::from(bot[index]);
            let end = bot.get(index + 1).map(|&v| u64::from(v)).unwrap_or(off);
            let joined: Vec<u8> = frags
                .iter()
                .zip(&starts)
                .filter(|(_, s)| **s >= begin && **s < end)
                .flat_map(|(f, _)| f.iter().copied())
                .collect();
            if joined.is_empty() {
                return Err(bad(format!(
                    "Basic Offset Table entry {begin} matches no fragment"
                )));
            }
            return Ok(joined);
        }
        Err(bad(format!(
            "{} fragments for {frames} frames and no usable Basic Offset Table: cannot tell which fragments belong to which frame",
            frags.len()
        )))
    }

    pub(super) fn encapsulated_frame(&self, index: usize) -> Result<StoredFrame> {
        let fmt = &self.info.pixel_format;
        let ts = self.info.transfer_syntax_uid.as_str();
        let decode_err = |d: String| DicomError::Decode {
            path: self.path.clone(),
            frame: index,
            detail: d,
        };
        if matches!(ts, "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51") {
            let data = self.encoded_frame(index)?;
            if let Some((_, 12)) = jpeg12::sof_precision(&data) {
                let img =
                    jpeg12::decode(&data, Some((fmt.columns, fmt.rows))).map_err(decode_err)?;
                if img.width != fmt.columns
                    || img.height != fmt.rows
                    || img.components != fmt.samples_per_pixel
                {
                    return Err(decode_err(format!(
                        "JPEG stream is {}x{}x{} but the attributes say {}x{}x{}",
                        img.width,
                        img.height,
                        img.components,
                        fmt.columns,
                        fmt.rows,
                        fmt.samples_per_pixel
                    )));
                }
                return Ok(StoredFrame::from_raw(
                    fmt,
                    img.samples.iter().map(|&s| u32::from(s)),
                ));
            }
        }
        if ts == "1.2.840.10008.1.2.5" {
            let data = self.encoded_frame(index)?;
            let raw = rle::decode(&data, fmt).map_err(decode_err)?;
            return Ok(StoredFrame::from_raw(fmt, raw.into_iter()));
        }
        let registry_ts =
            TransferSyntaxRegistry
                .get(ts)
                .ok_or_else(|| DicomError::Unsupported {
                    path: self.path.clone(),
                    detail: format!("transfer syntax {ts}"),
                })?;
        let reader = registry_ts
            .pixel_data_reader()
            .ok_or_else(|| DicomError::Unsupported {
                path: self.path.clone(),
                detail: format!(
                    "no decoder for transfer syntax {} ({ts})",
                    registry_ts.name()
                ),
            })?;
        let mut out = Vec::new();
        reader
            .decode_frame(&self.obj, index as u32, &mut out)
            .map_err(|e| decode_err(e.to_string()))?;
        let n = fmt.samples_per_frame();
        let bytes_per = usize::from(fmt.bits_allocated.div_ceil(8));
        if out.len() < n * bytes_per {
            return Err(decode_err(format!(
                "decoder returned {} bytes, expected {}",
                out.len(),
                n * bytes_per
            )));
        }
        Ok(match bytes_per {
            1 => StoredFrame::from_raw(fmt, out.iter().map(|&b| u32::from(b))),
            2 => StoredFrame::from_raw(
                fmt,
                out.chunks_exact(2)
                    .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))),
            ),
            _ => StoredFrame::from_raw(
                fmt,
                out.chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
        })
    }
}
