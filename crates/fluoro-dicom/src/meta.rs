//! Study metadata beyond the pixel layout: timing, geometry, shutter, LUTs, names.

use crate::attrs::{self, float, floats, in_functional_groups, items, lookup, string, strings};
use crate::lut::{ModalityLut, VoiLut, WindowFunction};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use fluoro_core::{FrameTiming, Geometry, Shutter, TimingSource};

/// Tags used here, named (dicom-dictionary-std has them too, but spelling them out keeps
/// the PS3.6 numbers next to the code that reads them).
pub mod tag {
    use dicom_core::Tag;
    /// Frame Time (0018,1063).
    pub const FRAME_TIME: Tag = Tag(0x0018, 0x1063);
    /// Frame Time Vector (0018,1065).
    pub const FRAME_TIME_VECTOR: Tag = Tag(0x0018, 0x1065);
    /// Cine Rate (0018,0040).
    pub const CINE_RATE: Tag = Tag(0x0018, 0x0040);
    /// Recommended Display Frame Rate (0008,2144).
    pub const RECOMMENDED_DISPLAY_FRAME_RATE: Tag = Tag(0x0008, 0x2144);
    /// Frame Acquisition DateTime (0018,9074).
    pub const FRAME_ACQUISITION_DATETIME: Tag = Tag(0x0018, 0x9074);
    /// Frame Reference DateTime (0018,9151).
    pub const FRAME_REFERENCE_DATETIME: Tag = Tag(0x0018, 0x9151);
    /// Positioner Primary Angle (0018,1510).
    pub const POSITIONER_PRIMARY_ANGLE: Tag = Tag(0x0018, 0x1510);
    /// Positioner Secondary Angle (0018,1511).
    pub const POSITIONER_SECONDARY_ANGLE: Tag = Tag(0x0018, 0x1511);
    /// Distance Source to Detector (0018,1110).
    pub const DISTANCE_SOURCE_TO_DETECTOR: Tag = Tag(0x0018, 0x1110);
    /// Distance Source to Patient (0018,1111).
    pub const DISTANCE_SOURCE_TO_PATIENT: Tag = Tag(0x0018, 0x1111);
    /// Estimated Radiographic Magnification Factor (0018,1114).
    pub const ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR: Tag = Tag(0x0018, 0x1114);
    /// Imager Pixel Spacing (0018,1164).
    pub const IMAGER_PIXEL_SPACING: Tag = Tag(0x0018, 0x1164);
    /// Pixel Spacing (0028,0030).
    pub const PIXEL_SPACING: Tag = Tag(0x0028, 0x0030);
    /// Shutter Shape (0018,1600).
    pub const SHUTTER_SHAPE: Tag = Tag(0x0018, 0x1600);
    /// Shutter Left Vertical Edge (0018,1602).
    pub const SHUTTER_LEFT: Tag = Tag(0x0018, 0x1602);
    /// Shutter Right Vertical Edge (0018,1604).
    pub const SHUTTER_RIGHT: Tag = Tag(0x0018, 0x1604);
    /// Shutter Upper Horizontal Edge (0018,1606).
    pub const SHUTTER_UPPER: Tag = Tag(0x0018, 0x1606);
    /// Shutter Lower Horizontal Edge (0018,1608).
    pub const SHUTTER_LOWER: Tag = Tag(0x0018, 0x1608);
    /// Center of Circular Shutter (0018,1610).
    pub const SHUTTER_CENTER: Tag = Tag(0x0018, 0x1610);
    /// Radius of Circular Shutter (0018,1612).
    pub const SHUTTER_RADIUS: Tag = Tag(0x0018, 0x1612);
    /// Vertices of the Polygonal Shutter (0018,1620).
    pub const SHUTTER_VERTICES: Tag = Tag(0x0018, 0x1620);
    /// Rescale Intercept (0028,1052).
    pub const RESCALE_INTERCEPT: Tag = Tag(0x0028, 0x1052);
    /// Rescale Slope (0028,1053).
    pub const RESCALE_SLOPE: Tag = Tag(0x0028, 0x1053);
    /// Modality LUT Sequence (0028,3000).
    pub const MODALITY_LUT_SEQUENCE: Tag = Tag(0x0028, 0x3000);
    /// LUT Descriptor (0028,3002).
    pub const LUT_DESCRIPTOR: Tag = Tag(0x0028, 0x3002);
    /// LUT Data (0028,3006).
    pub const LUT_DATA: Tag = Tag(0x0028, 0x3006);
    /// Window Center (0028,1050).
    pub const WINDOW_CENTER: Tag = Tag(0x0028, 0x1050);
    /// Window Width (0028,1051).
    pub const WINDOW_WIDTH: Tag = Tag(0x0028, 0x1051);
    /// VOI LUT Function (0028,1056).
    pub const VOI_LUT_FUNCTION: Tag = Tag(0x0028, 0x1056);
    /// VOI LUT Sequence (0028,3010).
    pub const VOI_LUT_SEQUENCE: Tag = Tag(0x0028, 0x3010);
    /// Frame Content Sequence (0020,9111).
    pub const FRAME_CONTENT_SEQUENCE: Tag = Tag(0x0020, 0x9111);
}

/// Frame times from the attributes, in the contract's order of preference.
pub fn timing(obj: &InMemDicomObject, frames: usize) -> FrameTiming {
    if let Some(v) = floats(obj, tag::FRAME_TIME_VECTOR)
        && v.len() >= frames.saturating_sub(1).max(1)
        && v.iter().skip(1).any(|&x| x > 0.0)
    {
        // The vector has one entry per frame (first is 0); tolerate a missing leading 0.
        let incr: Vec<f64> = if v.len() + 1 == frames {
            std::iter::once(0.0).chain(v).collect()
        } else {
            v
        };
        return FrameTiming::from_increments(&incr, frames, TimingSource::FrameTimeVector);
    }
    if let Some(ft) = float(obj, tag::FRAME_TIME).filter(|&v| v > 0.0) {
        return FrameTiming::uniform(frames, ft, TimingSource::FrameTime);
    }
    if let Some(rate) = float(obj, tag::CINE_RATE).filter(|&v| v > 0.0) {
        return FrameTiming::uniform(frames, 1000.0 / rate, TimingSource::CineRate);
    }
    if frames > 1
        && let Some(t) = frame_content_times(obj, frames)
    {
        return t;
    }
    if let Some(rate) = float(obj, tag::RECOMMENDED_DISPLAY_FRAME_RATE).filter(|&v| v > 0.0) {
        return FrameTiming::uniform(
            frames,
            1000.0 / rate,
            TimingSource::RecommendedDisplayFrameRate,
        );
    }
    FrameTiming::uniform(frames, 1000.0 / 15.0, TimingSource::Assumed15Fps)
}

/// Enhanced IODs: per-frame Frame Acquisition (or Reference) DateTime.
fn frame_content_times(obj: &InMemDicomObject, frames: usize) -> Option<FrameTiming> {
    let per_frame = items(obj, attrs::PER_FRAME_FG);
    if per_frame.len() < frames {
        return None;
    }
    let mut abs = Vec::with_capacity(frames);
    for item in per_frame.iter().take(frames) {
        let content = items(item, tag::FRAME_CONTENT_SEQUENCE).first()?;
        let dt = string(content, tag::FRAME_ACQUISITION_DATETIME)
            .or_else(|| string(content, tag::FRAME_REFERENCE_DATETIME))?;
        abs.push(attrs::parse_datetime_ms(&dt)?);
    }
    let t0 = abs[0];
    let times: Vec<f64> = abs.iter().map(|t| t - t0).collect();
    let monotonic = times.windows(2).all(|w| w[1] >= w[0]);
    (monotonic && times.last().copied().unwrap_or(0.0) > 0.0).then_some(FrameTiming {
        times_ms: times,
        source: TimingSource::FrameContent,
    })
}

fn pair(obj: &InMemDicomObject, frame: usize, t: Tag) -> Option<[f64; 2]> {
    let v = lookup(obj, frame, t).and_then(attrs::f64s_of)?;
    match v.as_slice() {
        [a, b, ..] => Some([*a, *b]),
        [a] => Some([*a, *a]),
        _ => None,
    }
}

/// Acquisition geometry (first frame for Enhanced IODs).
pub fn geometry(obj: &InMemDicomObject) -> Geometry {
    let f = |t| lookup(obj, 0, t).and_then(attrs::f64_of);
    Geometry {
        primary_angle_deg: f(tag::POSITIONER_PRIMARY_ANGLE),
        secondary_angle_deg: f(tag::POSITIONER_SECONDARY_ANGLE),
        source_to_detector_mm: f(tag::DISTANCE_SOURCE_TO_DETECTOR),
        source_to_patient_mm: f(tag::DISTANCE_SOURCE_TO_PATIENT),
        imager_pixel_spacing_mm: pair(obj, 0, tag::IMAGER_PIXEL_SPACING),
        pixel_spacing_mm: pair(obj, 0, tag::PIXEL_SPACING),
        magnification_factor: f(tag::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR),
    }
}

/// The display shutter, converted to zero-based `[x, y]` pixel coordinates.
pub fn shutter(obj: &InMemDicomObject) -> Shutter {
    let shapes: Vec<String> = {
        let s = strings(obj, tag::SHUTTER_SHAPE);
        if s.is_empty() {
            lookup(obj, 0, tag::SHUTTER_SHAPE)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.split('\\').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default()
        } else {
            s
        }
    };
    let num = |t| lookup(obj, 0, t).and_then(attrs::f64_of);
    let nums = |t| lookup(obj, 0, t).and_then(attrs::f64s_of);
    let mut s = Shutter::default();
    for shape in &shapes {
        match shape.as_str() {
            "RECTANGULAR" => {
                if let (Some(l), Some(r), Some(u), Some(d)) = (
                    num(tag::SHUTTER_LEFT),
                    num(tag::SHUTTER_RIGHT),
                    num(tag::SHUTTER_UPPER),
                    num(tag::SHUTTER_LOWER),
                ) {
                    s.rectangle = Some([l - 1.0, r - 1.0, u - 1.0, d - 1.0]);
                }
            }
            "CIRCULAR" => {
                if let (Some(c), Some(r)) = (nums(tag::SHUTTER_CENTER), num(tag::SHUTTER_RADIUS))
                    && c.len() >= 2
                {
                    s.circle = Some(([c[1] - 1.0, c[0] - 1.0], r));
                }
            }
            "POLYGONAL" => {
                if let Some(v) = nums(tag::SHUTTER_VERTICES)
                    && v.len() >= 6
                {
                    s.polygon = Some(
                        v.chunks_exact(2)
                            .map(|rc| [rc[1] - 1.0, rc[0] - 1.0])
                            .collect(),
                    );
                }
            }
            _ => {}
        }
    }
    s
}

fn frame_attr(
    obj: &InMemDicomObject,
    frame: usize,
    t: Tag,
) -> Option<&dicom_object::mem::InMemElement> {
    if attrs::is_enhanced(obj) {
        in_functional_groups(obj, frame, t).or_else(|| obj.get(t))
    } else {
        obj.get(t)
    }
}

fn lut_table(item: &InMemDicomObject, signed_input: bool) -> Option<(i64, Vec<f64>, u32)> {
    let desc = item.get(tag::LUT_DESCRIPTOR)?.to_multi_int::<i64>().ok()?;
    if desc.len() < 3 {
        return None;
    }
    let entries = if desc[0] == 0 {
        65536
    } else {
        desc[0] as usize
    };
    let first = if signed_input && desc[1] > 32767 {
        desc[1] - 65536
    } else {
        desc[1]
    };
    let bits = desc[2].clamp(1, 16) as u32;
    let raw: Vec<u32> = item.get(tag::LUT_DATA)?.to_multi_int::<u32>().ok()?;
    let data: Vec<f64> = if bits <= 8 && raw.len() * 2 == entries {
        raw.iter()
            .flat_map(|w| [f64::from(w & 0xFF), f64::from(w >> 8)])
            .collect()
    } else {
        raw.iter().map(|&v| f64::from(v)).collect()
    };
    (!data.is_empty()).then_some((first, data, bits))
}

/// The Modality LUT of `frame`.
pub fn modality_lut(obj: &InMemDicomObject, frame: usize, signed: bool) -> ModalityLut {
    if let Some(item) = items(obj, tag::MODALITY_LUT_SEQUENCE).first()
        && let Some((first, data, _)) = lut_table(item, signed)
    {
        let entries = data.len();
        return ModalityLut::Table {
            first,
            data,
            entries,
        };
    }
    let slope = frame_attr(obj, frame, tag::RESCALE_SLOPE).and_then(attrs::f64_of);
    let intercept = frame_attr(obj, frame, tag::RESCALE_INTERCEPT).and_then(attrs::f64_of);
    match (slope, intercept) {
        (None, None) => ModalityLut::Identity,
        (s, i) => {
            let (slope, intercept) = (s.unwrap_or(1.0), i.unwrap_or(0.0));
            if slope == 1.0 && intercept == 0.0 {
                ModalityLut::Identity
            } else {
                ModalityLut::Rescale { slope, intercept }
            }
        }
    }
}

/// The first VOI transformation of `frame` (window or LUT), if the file has one.
pub fn voi_lut(obj: &InMemDicomObject, frame: usize) -> Option<VoiLut> {
    let center = frame_attr(obj, frame, tag::WINDOW_CENTER).and_then(attrs::f64_of);
    let width = frame_attr(obj, frame, tag::WINDOW_WIDTH).and_then(attrs::f64_of);
    if let (Some(center), Some(width)) = (center, width)
        && width > 0.0
    {
        let function = match frame_attr(obj, frame, tag::VOI_LUT_FUNCTION)
            .and_then(|e| e.to_str().ok())
            .as_deref()
            .map(str::trim)
        {
            Some("LINEAR_EXACT") => WindowFunction::LinearExact,
            Some("SIGMOID") => WindowFunction::Sigmoid,
            _ => WindowFunction::Linear,
        };
        return Some(VoiLut::Window {
            center,
            width,
            function,
        });
    }
    let item = items(obj, tag::VOI_LUT_SEQUENCE).first()?;
    let (first, data, bits) = lut_table(item, false)?;
    Some(VoiLut::Table {
        first,
        data,
        out_max: f64::from((1u32 << bits) - 1),
    })
}

/// A readable name for the SOP classes researchers meet with fluoroscopy.
pub fn sop_class_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.5.1.4.1.1.12.1" => "X-Ray Angiographic Image",
        "1.2.840.10008.5.1.4.1.1.12.1.1" => "Enhanced XA Image",
        "1.2.840.10008.5.1.4.1.1.12.2" => "X-Ray Radiofluoroscopic Image",
        "1.2.840.10008.5.1.4.1.1.12.2.1" => "Enhanced XRF Image",
        "1.2.840.10008.5.1.4.1.1.7" => "Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.7.1" => "Multi-frame Single Bit Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.7.2" => "Multi-frame Grayscale Byte Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.7.3" => "Multi-frame Grayscale Word Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.7.4" => "Multi-frame True Color Secondary Capture Image",
        "1.2.840.10008.5.1.4.1.1.1" => "Computed Radiography Image",
        "1.2.840.10008.5.1.4.1.1.1.1" => "Digital X-Ray Image - For Presentation",
        "1.2.840.10008.5.1.4.1.1.1.1.1" => "Digital X-Ray Image - For Processing",
        "1.2.840.10008.5.1.4.1.1.1.2" => "Digital Mammography X-Ray Image - For Presentation",
        "1.2.840.10008.5.1.4.1.1.2" => "CT Image",
        "1.2.840.10008.5.1.4.1.1.2.1" => "Enhanced CT Image",
        "1.2.840.10008.5.1.4.1.1.4" => "MR Image",
        "1.2.840.10008.5.1.4.1.1.4.1" => "Enhanced MR Image",
        "1.2.840.10008.5.1.4.1.1.6.1" => "Ultrasound Image",
        "1.2.840.10008.5.1.4.1.1.3.1" => "Ultrasound Multi-frame Image",
        "1.2.840.10008.5.1.4.1.1.20" => "Nuclear Medicine Image",
        "1.2.840.10008.5.1.4.1.1.128" => "Positron Emission Tomography Image",
        "1.2.840.10008.5.1.4.1.1.66.4" => "Segmentation",
        _ => "other",
    }
}

/// True for transfer syntaxes whose compression may lose information.
pub fn is_lossy_transfer_syntax(uid: &str) -> bool {
    matches!(
        uid,
        "1.2.840.10008.1.2.4.50"
            | "1.2.840.10008.1.2.4.51"
            | "1.2.840.10008.1.2.4.81"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.93"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203"
    )
}
