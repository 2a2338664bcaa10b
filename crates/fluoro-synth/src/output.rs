//! Writing a synthetic study: the XA DICOM file and the ground-truth folder.

use crate::SynthStudy;
use fluoro_dicom::writer::{XaAttributes, write_xa};
use std::io::Write;
use std::path::Path;

/// Errors writing a study.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The DICOM writer failed.
    #[error(transparent)]
    Dicom(#[from] fluoro_dicom::DicomError),
    /// A truth file could not be written.
    #[error("{path}: {detail}")]
    Truth {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// Writes the frames as an X-Ray Angiographic multi-frame file.
pub fn write_dicom(study: &SynthStudy, path: &Path) -> Result<(), OutputError> {
    let c = &study.config;
    let (offset, scale) = study.detector.log_mapping();
    // window: from the densest bone/metal to just above the background
    let lo = offset - scale * 7.0;
    let hi = offset - scale * 2.0;
    let attrs = XaAttributes {
        uid_seed: u128::from(c.seed) * 1_000_003 + c.size as u128,
        columns: c.size as u16,
        rows: c.size as u16,
        bits_stored: c.bits_stored,
        frame_time_ms: 1000.0 / c.fps,
        primary_angle_deg: study.carm.primary_deg,
        secondary_angle_deg: study.carm.secondary_deg,
        sid_mm: study.carm.sid_mm,
        sod_mm: study.carm.sod_mm,
        imager_pixel_spacing_mm: study.carm.pixel_mm,
        circular_shutter: study.shutter.circle,
        window: ((lo + hi) / 2.0, hi - lo),
        kvp: 75.0,
        description: format!("fluoro-synth {:?} {:?} seed {}", c.view, c.scenario, c.seed),
    };
    Ok(write_xa(path, &attrs, &study.frames)?)
}

fn terr(path: &Path, e: impl std::fmt::Display) -> OutputError {
    OutputError::Truth {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Writes `frames.jsonl`, `labels/NNNNNN.png` and `scene.json` into `dir`.
pub fn write_truth(study: &SynthStudy, dir: &Path) -> Result<(), OutputError> {
    let labels_dir = dir.join("labels");
    std::fs::create_dir_all(&labels_dir).map_err(|e| terr(&labels_dir, e))?;
    let jsonl = dir.join("frames.jsonl");
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(&jsonl).map_err(|e| terr(&jsonl, e))?);
    for r in &study.records {
        serde_json::to_writer(&mut f, r).map_err(|e| terr(&jsonl, e))?;
        f.write_all(b"\n").map_err(|e| terr(&jsonl, e))?;
    }
    f.flush().map_err(|e| terr(&jsonl, e))?;
    for (i, l) in study.labels.iter().enumerate() {
        let p = labels_dir.join(format!("{i:06}.png"));
        image::GrayImage::from_raw(l.width() as u32, l.height() as u32, l.data().to_vec())
            .ok_or_else(|| terr(&p, "label buffer size"))?
            .save(&p)
            .map_err(|e| terr(&p, e))?;
    }
    let scene = serde_json::json!({
        "generator": concat!("fluoro-synth ", env!("CARGO_PKG_VERSION")),
        "config": study.config,
        "coordinates": "patient mm: +x left, +y cranial, +z dorsal; isocentre at the origin; prone",
        "carm": study.carm,
        "mm_per_px": study.carm.mm_per_px(),
        "detector": study.detector,
        "incident_photons_per_pixel": study.incident_photons,
        "shutter": study.shutter,
        "phantom": study.phantom,
        "target_space": study.phantom.target_name(),
        "instrument_path": study.path,
    });
    let sp = dir.join("scene.json");
    std::fs::write(
        &sp,
        serde_json::to_vec_pretty(&scene).map_err(|e| terr(&sp, e))?,
    )
    .map_err(|e| terr(&sp, e))
}
