//! Writing X-Ray Angiographic multi-frame files (used by the simulator), with the
//! attributes a C-arm writes: timing, positioner, distances, spacing, shutter, window.

use crate::error::{DicomError, Result};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use std::path::Path;

/// X-Ray Angiographic Image Storage.
pub const XA_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.12.1";

/// What goes into an XA file besides the pixels.
#[derive(Clone, Debug)]
pub struct XaAttributes {
    /// UID root used for study, series and instance UIDs (`2.25.<n>` style).
    pub uid_seed: u128,
    /// Columns.
    pub columns: u16,
    /// Rows.
    pub rows: u16,
    /// Bits stored (bits allocated is 16).
    pub bits_stored: u16,
    /// Frame time, ms.
    pub frame_time_ms: f64,
    /// Positioner primary angle, degrees.
    pub primary_angle_deg: f64,
    /// Positioner secondary angle, degrees.
    pub secondary_angle_deg: f64,
    /// Source to detector, mm.
    pub sid_mm: f64,
    /// Source to patient (isocentre), mm.
    pub sod_mm: f64,
    /// Imager pixel spacing, mm.
    pub imager_pixel_spacing_mm: f64,
    /// Circular shutter: centre `[x, y]` (zero-based) and radius, px.
    pub circular_shutter: Option<([f64; 2], f64)>,
    /// Window centre and width.
    pub window: (f64, f64),
    /// Tube voltage, kV.
    pub kvp: f64,
    /// Free text for Series Description.
    pub description: String,
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn put_u16(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

fn ds(v: f64) -> String {
    // DS is at most 16 characters
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    s.chars().take(16).collect()
}

/// Writes a multi-frame XA file of `frames` (each `rows * columns` 16-bit stored values)
/// in Explicit VR Little Endian.
pub fn write_xa(path: &Path, attrs: &XaAttributes, frames: &[Vec<u16>]) -> Result<()> {
    let n = usize::from(attrs.rows) * usize::from(attrs.columns);
    let werr = |d: String| DicomError::Write {
        path: path.to_path_buf(),
        detail: d,
    };
    if frames.is_empty() || frames.iter().any(|f| f.len() != n) {
        return Err(werr(format!("every frame must have {n} samples")));
    }
    let uid = |k: u128| {
        format!(
            "2.25.{}",
            attrs.uid_seed.wrapping_mul(31).wrapping_add(k) % 10u128.pow(38)
        )
    };
    let sop_instance = uid(3);
    let mut o = InMemDicomObject::new_empty();
    put_str(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    put_str(
        &mut o,
        tags::IMAGE_TYPE,
        VR::CS,
        "ORIGINAL\\PRIMARY\\SINGLE PLANE",
    );
    put_str(&mut o, tags::SOP_CLASS_UID, VR::UI, XA_SOP_CLASS);
    put_str(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &sop_instance);
    put_str(&mut o, tags::STUDY_DATE, VR::DA, "20260101");
    put_str(&mut o, tags::STUDY_TIME, VR::TM, "120000");
    put_str(&mut o, tags::ACCESSION_NUMBER, VR::SH, "");
    put_str(&mut o, tags::MODALITY, VR::CS, "XA");
    put_str(&mut o, tags::MANUFACTURER, VR::LO, "fluoro-synth");
    put_str(&mut o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &attrs.description.chars().take(64).collect::<String>(),
    );
    put_str(&mut o, tags::PATIENT_NAME, VR::PN, "SYNTHETIC^PHANTOM");
    put_str(&mut o, tags::PATIENT_ID, VR::LO, "SYNTH");
    put_str(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, "");
    put_str(&mut o, tags::PATIENT_SEX, VR::CS, "O");
    put_str(&mut o, tags::PATIENT_POSITION, VR::CS, "HFP");
    put_str(&mut o, tags::KVP, VR::DS, &ds(attrs.kvp));
    put_str(&mut o, tags::RADIATION_SETTING, VR::CS, "GR");
    put_str(&mut o, tags::RADIATION_MODE, VR::CS, "PULSED");
    put_str(&mut o, tags::FRAME_TIME, VR::DS, &ds(attrs.frame_time_ms));
    put_str(
        &mut o,
        tags::CINE_RATE,
        VR::IS,
        &format!("{}", (1000.0 / attrs.frame_time_ms).round() as i64),
    );
    put_str(
        &mut o,
        tags::DISTANCE_SOURCE_TO_DETECTOR,
        VR::DS,
        &ds(attrs.sid_mm),
    );
    put_str(
        &mut o,
        tags::DISTANCE_SOURCE_TO_PATIENT,
        VR::DS,
        &ds(attrs.sod_mm),
    );
    put_str(
        &mut o,
        tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR,
        VR::DS,
        &ds(attrs.sid_mm / attrs.sod_mm),
    );
    let ips = ds(attrs.imager_pixel_spacing_mm);
    put_str(
        &mut o,
        tags::IMAGER_PIXEL_SPACING,
        VR::DS,
        &format!("{ips}\\{ips}"),
    );
    put_str(&mut o, tags::POSITIONER_MOTION, VR::CS, "STATIC");
    put_str(
        &mut o,
        tags::POSITIONER_PRIMARY_ANGLE,
        VR::DS,
        &ds(attrs.primary_angle_deg),
    );
    put_str(
        &mut o,
        tags::POSITIONER_SECONDARY_ANGLE,
        VR::DS,
        &ds(attrs.secondary_angle_deg),
    );
    if let Some(([cx, cy], r)) = attrs.circular_shutter {
        put_str(&mut o, tags::SHUTTER_SHAPE, VR::CS, "CIRCULAR");
        put_str(
            &mut o,
            tags::CENTER_OF_CIRCULAR_SHUTTER,
            VR::IS,
            &format!(
                "{}\\{}",
                (cy + 1.0).round() as i64,
                (cx + 1.0).round() as i64
            ),
        );
        put_str(
            &mut o,
            tags::RADIUS_OF_CIRCULAR_SHUTTER,
            VR::IS,
            &format!("{}", r.round() as i64),
        );
    }
    put_str(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &uid(1));
    put_str(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &uid(2));
    put_str(&mut o, tags::STUDY_ID, VR::SH, "1");
    put_str(&mut o, tags::SERIES_NUMBER, VR::IS, "1");
    put_str(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_u16(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    put_str(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put_str(
        &mut o,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &frames.len().to_string(),
    );
    o.put(DataElement::new(
        tags::FRAME_INCREMENT_POINTER,
        VR::AT,
        PrimitiveValue::Tags(vec![tags::FRAME_TIME].into()),
    ));
    put_u16(&mut o, tags::ROWS, attrs.rows);
    put_u16(&mut o, tags::COLUMNS, attrs.columns);
    put_u16(&mut o, tags::BITS_ALLOCATED, 16);
    put_u16(&mut o, tags::BITS_STORED, attrs.bits_stored);
    put_u16(&mut o, tags::HIGH_BIT, attrs.bits_stored - 1);
    put_u16(&mut o, tags::PIXEL_REPRESENTATION, 0);
    put_str(&mut o, tags::WINDOW_CENTER, VR::DS, &ds(attrs.window.0));
    put_str(&mut o, tags::WINDOW_WIDTH, VR::DS, &ds(attrs.window.1));
    put_str(&mut o, tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LOG");
    o.put(DataElement::new(
        tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
        VR::SS,
        PrimitiveValue::from(1i16),
    ));
    put_str(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    let mut pixels = Vec::with_capacity(n * frames.len());
    for f in frames {
        pixels.extend_from_slice(f);
    }
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels.into()),
    ));
    let file = o
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid(XA_SOP_CLASS)
                .media_storage_sop_instance_uid(sop_instance),
        )
        .map_err(|e| werr(e.to_string()))?;
    file.write_to_file(path).map_err(|e| werr(e.to_string()))
}
