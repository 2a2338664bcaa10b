//! A DICOM study opened for reading, frame by frame.

use crate::error::{DicomError, Result};
use crate::lut::{ModalityLut, VoiLut};
use crate::meta;
use crate::pixels::{PixelFormat, StoredFrame, native_frame};
use crate::{attrs, structure};
use dicom_core::Tag;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::file::{OpenFileOptions, ReadPreamble};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use fluoro_core::{Frame, FrameTiming, Geometry, MmSource, Shutter};
use serde::Serialize;
use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

mod encapsulated;

/// Largest frame accepted, in pixels (16384 x 16384), so a lying Rows/Columns pair cannot
/// make the reader allocate gigabytes.
pub const MAX_FRAME_PIXELS: usize = 1 << 28;

/// Everything a researcher wants to know first about a study (`fluoro info`).
#[derive(Clone, Debug, Serialize)]
pub struct StudyInfo {
    /// The file.
    pub path: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// Its name.
    pub sop_class_name: String,
    /// Modality (0008,0060).
    pub modality: Option<String>,
    /// Transfer Syntax UID.
    pub transfer_syntax_uid: String,
    /// Its name.
    pub transfer_syntax_name: String,
    /// True when the file had no meta group and the transfer syntax was inferred.
    pub transfer_syntax_inferred: bool,
    /// True when the pixel data is encapsulated (compressed).
    pub encapsulated: bool,
    /// True when the compression or Lossy Image Compression says data was lost.
    pub lossy: bool,
    /// True for Enhanced multi-frame IODs (functional groups).
    pub enhanced: bool,
    /// Number of frames.
    pub frames: usize,
    /// Pixel layout.
    pub pixel_format: PixelFormat,
    /// NumPy dtype of the exported stored values.
    pub npy_dtype: String,
    /// Pixel Intensity Relationship (0028,1040): LIN, LOG, DISP.
    pub pixel_intensity_relationship: Option<String>,
    /// Pixel Intensity Relationship Sign (0028,1041).
    pub pixel_intensity_relationship_sign: Option<i64>,
    /// Frame times.
    pub timing: FrameTiming,
    /// Median frame interval, ms.
    pub frame_interval_ms: Option<f64>,
    /// Geometry attributes.
    pub geometry: Geometry,
    /// Isocentre-plane scale per the contract.
    pub mm_per_px: Option<f64>,
    /// Where `mm_per_px` came from.
    pub mm_source: MmSource,
    /// `ImagerPixelSpacing / ERMF`, where both exist.
    pub mm_per_px_magnification_corrected: Option<f64>,
    /// Display shutter.
    pub shutter: Shutter,
    /// Modality LUT of the first frame.
    pub modality_lut: ModalityLut,
    /// VOI LUT of the first frame.
    pub voi_lut: Option<VoiLut>,
    /// Assumptions made while reading (missing Type 1 attributes and the like).
    pub warnings: Vec<String>,
}

/// An opened study. Pixel data stays encoded in memory once; frames are decoded on demand.
pub struct Study {
    path: PathBuf,
    obj: DefaultDicomObject,
    info: StudyInfo,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("path", &self.path)
            .field("frames", &self.info.frames)
            .finish()
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Study {
    /// Opens and validates a study: structure, required attributes, declared sizes.
    /// No frame is decoded yet.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |e| DicomError::Io {
            path: path.clone(),
            source: e,
        };
        let file = File::open(&path).map_err(io)?;
        let layout = structure::check(file).map_err(|e| DicomError::Malformed {
            path: path.clone(),
            detail: e.0,
        })?;
        let obj = catch_unwind(AssertUnwindSafe(|| parse(&path, &layout))).map_err(|p| {
            DicomError::Parse {
                path: path.clone(),
                detail: format!("parser panicked: {}", panic_message(p)),
            }
        })??;
        let info = describe(&path, &obj, &layout)?;
        Ok(Self { path, obj, info })
    }

    /// The file this study was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Metadata.
    pub fn info(&self) -> &StudyInfo {
        &self.info
    }

    /// Pixel layout.
    pub fn format(&self) -> &PixelFormat {
        &self.info.pixel_format
    }

    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        self.info.frames
    }

    /// The parsed data set (for callers that need attributes this crate does not model).
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.obj
    }

    /// The Modality LUT of frame `index`.
    pub fn modality_lut(&self, index: usize) -> ModalityLut {
        meta::modality_lut(&self.obj, index, self.info.pixel_format.signed)
    }

    /// The VOI LUT of frame `index`, if the file has one.
    pub fn voi_lut(&self, index: usize) -> Option<VoiLut> {
        meta::voi_lut(&self.obj, index)
    }

    /// Decodes frame `index` to stored values.
    pub fn frame(&self, index: usize) -> Result<StoredFrame> {
        if index >= self.info.frames {
            return Err(DicomError::FrameIndex {
                path: self.path.clone(),
                frame: index,
                frames: self.info.frames,
            });
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            if self.info.encapsulated {
                self.encapsulated_frame(index)
            } else {
                self.native(index)
            }
        }));
        r.map_err(|p| DicomError::Decode {
            path: self.path.clone(),
            frame: index,
            detail: format!("decoder panicked: {}", panic_message(p)),
        })?
    }

    /// Frame `index` as `f32` stored values into `out` (resized), the same values as
    /// `frame(index)?.write_f32(out)`. Native 8- and 16-bit grayscale frames are converted
    /// straight from the pixel data, without an intermediate frame or any allocation once
    /// `out` has its size (the live loop's read path); other layouts decode as usual.
    pub fn frame_f32(&self, index: usize, out: &mut Frame<f32>) -> Result<()> {
        let fmt = &self.info.pixel_format;
        let n = fmt.samples_per_frame();
        let fast = !self.info.encapsulated
            && index < self.info.frames
            && fmt.samples_per_pixel == 1
            && matches!(fmt.bits_allocated, 8 | 16);
        if fast {
            let slot = match self.pixel_value() {
                Some(Value::Primitive(PrimitiveValue::U16(v))) if fmt.bits_allocated == 16 => v
                    .get(index * n..(index + 1) * n)
                    .map(crate::pixels::Words::U16),
                Some(Value::Primitive(PrimitiveValue::U8(v))) if fmt.bits_allocated == 8 => v
                    .get(index * n..(index + 1) * n)
                    .map(crate::pixels::Words::U8),
                _ => None,
            };
            if let Some(words) = slot {
                out.reshape(fmt.columns, fmt.rows);
                crate::pixels::stored_to_f32(fmt, words, out.data_mut());
                return Ok(());
            }
        }
        self.frame(index)?.write_f32(out);
        Ok(())
    }

    /// Iterates over all frames in order, decoding one at a time.
    pub fn frames(&self) -> impl Iterator<Item = Result<StoredFrame>> + '_ {
        (0..self.info.frames).map(|i| self.frame(i))
    }

    /// The shutter mask (1 = visible) at the frame size.
    pub fn shutter_mask(&self) -> Frame<u8> {
        self.info
            .shutter
            .mask(self.info.pixel_format.columns, self.info.pixel_format.rows)
    }

    /// Maps a frame to 8-bit for display as the modality intended: Modality LUT, then the
    /// file's VOI LUT (or the min-max range of the visible field when it has none), then
    /// MONOCHROME1 inversion.
    pub fn display_u8(&self, frame: &StoredFrame, index: usize) -> Frame<u8> {
        let gray = frame.to_f32();
        let mlut = self.modality_lut(index);
        let modality = gray.map(|v| mlut.apply(f64::from(v)));
        let voi = self.voi_lut(index).unwrap_or_else(|| {
            let mask = self.shutter_mask();
            let (lo, hi) = modality
                .data()
                .iter()
                .zip(mask.data())
                .filter(|(_, m)| **m != 0)
                .fold((f64::MAX, f64::MIN), |(lo, hi), (&v, _)| {
                    (lo.min(v), hi.max(v))
                });
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
            VoiLut::Window {
                center: (lo + hi) / 2.0,
                width: (hi - lo).max(1.0),
                function: crate::lut::WindowFunction::LinearExact,
            }
        });
        let invert = self.info.pixel_format.is_monochrome1();
        modality.map(|v| {
            let y = voi.apply(v);
            let y = if invert { 1.0 - y } else { y };
            (y * 255.0).round() as u8
        })
    }

    fn pixel_value(&self) -> Option<&Value<InMemDicomObject, Vec<u8>>> {
        self.obj.get(tags::PIXEL_DATA).map(|e| e.value())
    }

    fn native(&self, index: usize) -> Result<StoredFrame> {
        let fmt = &self.info.pixel_format;
        let bits_per_frame = fmt.native_frame_bits();
        let start_bit = bits_per_frame * index as u64;
        let start = (start_bit / 8) as usize;
        let end = (start_bit + bits_per_frame).div_ceil(8) as usize;
        let Some(Value::Primitive(p)) = self.pixel_value() else {
            return Err(DicomError::NoPixelData {
                path: self.path.clone(),
                detail: "Pixel Data is not a native value".into(),
            });
        };
        let bytes: Cow<[u8]> = match p {
            PrimitiveValue::U8(v) => Cow::Borrowed(&v[..]),
            PrimitiveValue::U16(v) => {
                // words as read (native order): re-encode only this frame's range as LE bytes
                let w0 = start / 2;
                let w1 = end.div_ceil(2).min(v.len());
                let mut out = Vec::with_capacity((w1.saturating_sub(w0)) * 2);
                for w in v.get(w0..w1).unwrap_or(&[]) {
                    out.extend_from_slice(&w.to_le_bytes());
                }
                let skip = (start - w0 * 2).min(out.len());
                return self.native_from(&out[skip..], start_bit - (start as u64) * 8, index);
            }
            other => other.to_bytes(),
        };
        if bytes.len() < end {
            return Err(DicomError::PixelDataSize {
                path: self.path.clone(),
                detail: format!(
                    "frame {index} needs bytes up to {end} but Pixel Data holds {}",
                    bytes.len()
                ),
            });
        }
        self.native_from(&bytes[start..end], start_bit - (start as u64) * 8, index)
    }

    fn native_from(&self, bytes: &[u8], bit_offset: u64, index: usize) -> Result<StoredFrame> {
        let fmt = &self.info.pixel_format;
        let need = (bit_offset + fmt.native_frame_bits()).div_ceil(8) as usize;
        if bytes.len() < need {
            return Err(DicomError::PixelDataSize {
                path: self.path.clone(),
                detail: format!(
                    "frame {index} is truncated: {} of {need} bytes present",
                    bytes.len()
                ),
            });
        }
        Ok(native_frame(fmt, bytes, bit_offset))
    }
}

fn parse(path: &Path, layout: &structure::Layout) -> Result<DefaultDicomObject> {
    let parse_err = |d: String| DicomError::Parse {
        path: path.to_path_buf(),
        detail: d,
    };
    match layout.meta_offset {
        Some(_) => {
            let strict = OpenFileOptions::new()
                .read_preamble(if layout.meta_offset == Some(128) {
                    ReadPreamble::Always
                } else {
                    ReadPreamble::Never
                })
                .open_file(path);
            match strict {
                Ok(obj) => Ok(obj),
                // dicom-rs rejects some non-conformant meta groups (e.g. an Implementation
                // Version Name longer than 16 characters); the walk already found the
                // transfer syntax, so read the data set after the meta group directly.
                Err(e) if e.to_string().contains("meta group") => {
                    parse_dataset(path, layout, layout.dataset_offset)
                }
                Err(e) => Err(parse_err(e.to_string())),
            }
        }
        None => parse_dataset(path, layout, 0),
    }
}

/// Parses the data set at `offset` in the layout's transfer syntax and attaches a meta group.
fn parse_dataset(
    path: &Path,
    layout: &structure::Layout,
    offset: u64,
) -> Result<DefaultDicomObject> {
    use std::io::{Seek, SeekFrom};
    let parse_err = |d: String| DicomError::Parse {
        path: path.to_path_buf(),
        detail: d,
    };
    let io = |e| DicomError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let ts = TransferSyntaxRegistry
        .get(&layout.transfer_syntax)
        .ok_or_else(|| {
            parse_err(format!(
                "unknown transfer syntax {}",
                layout.transfer_syntax
            ))
        })?;
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let obj = InMemDicomObject::read_dataset_with_ts(BufReader::new(file), ts)
        .map_err(|e| parse_err(e.to_string()))?;
    let sop_class = attrs::string(&obj, tags::SOP_CLASS_UID)
        .unwrap_or_else(|| "1.2.840.10008.5.1.4.1.1.7".into());
    let sop_inst = attrs::string(&obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| "2.25.0".into());
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(layout.transfer_syntax.as_str())
            .media_storage_sop_class_uid(sop_class)
            .media_storage_sop_instance_uid(sop_inst),
    )
    .map_err(|e| parse_err(format!("cannot build file meta: {e}")))
}

fn describe(
    path: &Path,
    obj: &DefaultDicomObject,
    layout: &structure::Layout,
) -> Result<StudyInfo> {
    let attr_err = |attribute: &'static str, detail: String| DicomError::Attribute {
        path: path.to_path_buf(),
        attribute,
        detail,
    };
    let mut warnings = Vec::new();
    if layout.transfer_syntax_inferred {
        warnings.push(format!(
            "no file meta group: transfer syntax inferred as {}",
            layout.transfer_syntax
        ));
    }
    let pixel = obj
        .get(tags::PIXEL_DATA)
        .ok_or_else(|| DicomError::NoPixelData {
            path: path.to_path_buf(),
            detail: "no (7FE0,0010) Pixel Data element".into(),
        })?;
    let get_u = |t: Tag| attrs::int(obj, t);
    let rows = get_u(tags::ROWS)
        .filter(|&v| v > 0)
        .ok_or_else(|| attr_err("Rows (0028,0010)", String::new()))? as usize;
    let columns = get_u(tags::COLUMNS)
        .filter(|&v| v > 0)
        .ok_or_else(|| attr_err("Columns (0028,0011)", String::new()))? as usize;
    let bits_allocated = get_u(tags::BITS_ALLOCATED)
        .ok_or_else(|| attr_err("BitsAllocated (0028,0100)", String::new()))?;
    if !matches!(bits_allocated, 1 | 8 | 16 | 32) {
        return Err(DicomError::Unsupported {
            path: path.to_path_buf(),
            detail: format!("BitsAllocated {bits_allocated}"),
        });
    }
    let bits_allocated = bits_allocated as u16;
    let bits_stored = match get_u(tags::BITS_STORED) {
        Some(b) if b >= 1 && b <= i64::from(bits_allocated) => b as u16,
        Some(b) => {
            return Err(attr_err(
                "BitsStored (0028,0101)",
                format!("{b} with BitsAllocated {bits_allocated}"),
            ));
        }
        None => {
            warnings.push(format!("BitsStored missing; assumed {bits_allocated}"));
            bits_allocated
        }
    };
    let high_bit = match get_u(tags::HIGH_BIT) {
        Some(h) if h >= i64::from(bits_stored) - 1 && h < i64::from(bits_allocated) => h as u16,
        _ => bits_stored - 1,
    };
    let signed = match get_u(tags::PIXEL_REPRESENTATION) {
        Some(v) => v == 1,
        None => {
            warnings.push("PixelRepresentation missing (Type 1); assumed 0 (unsigned)".into());
            false
        }
    };
    let samples_per_pixel = match get_u(tags::SAMPLES_PER_PIXEL) {
        Some(v @ (1 | 3)) => v as usize,
        Some(v) => {
            return Err(DicomError::Unsupported {
                path: path.to_path_buf(),
                detail: format!("SamplesPerPixel {v}"),
            });
        }
        None => {
            warnings.push("SamplesPerPixel missing (Type 1); assumed 1".into());
            1
        }
    };
    let photometric = attrs::string(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_else(|| {
        warnings.push("PhotometricInterpretation missing; assumed MONOCHROME2".into());
        if samples_per_pixel == 3 {
            "RGB".into()
        } else {
            "MONOCHROME2".into()
        }
    });
    let planar = samples_per_pixel == 3 && get_u(tags::PLANAR_CONFIGURATION) == Some(1);
    let frames = match get_u(tags::NUMBER_OF_FRAMES) {
        Some(n) if n >= 1 => n as usize,
        Some(n) => return Err(attr_err("NumberOfFrames (0028,0008)", format!("{n}"))),
        None => 1,
    };
    let frame_pixels = rows * columns;
    if frame_pixels > MAX_FRAME_PIXELS {
        return Err(DicomError::PixelDataSize {
            path: path.to_path_buf(),
            detail: format!(
                "declared frame of {rows} x {columns} = {frame_pixels} pixels exceeds the {MAX_FRAME_PIXELS}-pixel limit"
            ),
        });
    }
    let pixel_format = PixelFormat {
        rows,
        columns,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        high_bit,
        signed,
        photometric,
        planar,
    };
    let ts_uid = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    let ts = TransferSyntaxRegistry.get(&ts_uid);
    let encapsulated = match pixel.value() {
        Value::PixelSequence(seq) => {
            if seq.fragments().is_empty() || seq.fragments().iter().all(|f| f.is_empty()) {
                return Err(DicomError::NoPixelData {
                    path: path.to_path_buf(),
                    detail: "encapsulated Pixel Data has no fragments".into(),
                });
            }
            if frames > 1 && seq.fragments().len() < frames && seq.offset_table().len() != frames {
                return Err(DicomError::PixelDataSize {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{frames} frames declared but only {} fragments and no Basic Offset Table",
                        seq.fragments().len()
                    ),
                });
            }
            true
        }
        Value::Primitive(p) => {
            let have = match p {
                PrimitiveValue::U16(v) => v.len() as u64 * 2,
                PrimitiveValue::U8(v) => v.len() as u64,
                other => other.calculate_byte_len() as u64,
            };
            if have == 0 {
                return Err(DicomError::NoPixelData {
                    path: path.to_path_buf(),
                    detail: "(7FE0,0010) Pixel Data element is empty".into(),
                });
            }
            let need = (pixel_format.native_frame_bits() * frames as u64).div_ceil(8);
            if have < need {
                return Err(DicomError::PixelDataSize {
                    path: path.to_path_buf(),
                    detail: format!(
                        "{frames} frame(s) of {rows} x {columns} x {samples_per_pixel} at {bits_allocated} bits need {need} bytes but Pixel Data holds {have}"
                    ),
                });
            }
            false
        }
        Value::Sequence(_) => {
            return Err(DicomError::NoPixelData {
                path: path.to_path_buf(),
                detail: "Pixel Data is a sequence".into(),
            });
        }
    };
    let sop_class_uid = attrs::string(obj, tags::SOP_CLASS_UID).unwrap_or_else(|| {
        obj.meta()
            .media_storage_sop_class_uid()
            .trim_end_matches('\0')
            .to_string()
    });
    let lossy = meta::is_lossy_transfer_syntax(&ts_uid)
        || attrs::string(obj, tags::LOSSY_IMAGE_COMPRESSION).as_deref() == Some("01");
    let timing = meta::timing(obj, frames);
    let geometry = meta::geometry(obj);
    let (mm_per_px, mm_source) = geometry.mm_per_px();
    let mm_corr = geometry.magnification_corrected_mm_per_px();
    if timing.source == fluoro_core::TimingSource::Assumed15Fps && frames > 1 {
        warnings.push("no frame timing in the file: assumed 15 frames/s".into());
    }
    Ok(StudyInfo {
        path: path.display().to_string(),
        sop_class_name: meta::sop_class_name(&sop_class_uid).to_string(),
        sop_class_uid,
        modality: attrs::string(obj, tags::MODALITY),
        transfer_syntax_name: ts
            .map(|t| t.name().to_string())
            .unwrap_or_else(|| "unknown".into()),
        transfer_syntax_uid: ts_uid,
        transfer_syntax_inferred: layout.transfer_syntax_inferred,
        encapsulated,
        lossy,
        enhanced: attrs::is_enhanced(obj),
        frames,
        npy_dtype: pixel_format.npy_dtype().to_string(),
        pixel_format,
        pixel_intensity_relationship: attrs::string(obj, Tag(0x0028, 0x1040)),
        pixel_intensity_relationship_sign: attrs::int(obj, Tag(0x0028, 0x1041)),
        frame_interval_ms: timing.median_interval_ms(),
        timing,
        geometry,
        mm_per_px,
        mm_source,
        mm_per_px_magnification_corrected: mm_corr,
        shutter: meta::shutter(obj),
        modality_lut: meta::modality_lut(obj, 0, signed),
        voi_lut: meta::voi_lut(obj, 0),
        warnings,
    })
}
