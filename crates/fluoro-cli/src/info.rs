//! `fluoro info`: what a researcher wants to know first about a study.

use anyhow::Result;
use fluoro_dicom::{Study, StudyInfo};
use std::path::Path;

/// Prints the study description as text or JSON.
pub fn run(path: &Path, json: bool) -> Result<()> {
    let study = Study::open(path)?;
    let info = study.info();
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
    } else {
        print!("{}", describe(info));
    }
    Ok(())
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    v.map(|v| format!("{v}{unit}"))
        .unwrap_or_else(|| "-".into())
}

/// A human-readable description.
pub fn describe(i: &StudyInfo) -> String {
    let f = &i.pixel_format;
    let g = &i.geometry;
    let mut s = String::new();
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<22}{v}\n"));
    line("file", i.path.clone());
    line(
        "SOP class",
        format!("{} ({})", i.sop_class_name, i.sop_class_uid),
    );
    line("modality", opt(i.modality.as_deref(), ""));
    line(
        "transfer syntax",
        format!(
            "{} ({}){}{}",
            i.transfer_syntax_name,
            i.transfer_syntax_uid,
            if i.transfer_syntax_inferred {
                ", inferred"
            } else {
                ""
            },
            if i.lossy { ", lossy" } else { "" }
        ),
    );
    line(
        "frames",
        format!(
            "{}{}",
            i.frames,
            if i.enhanced {
                " (enhanced multi-frame)"
            } else {
                ""
            }
        ),
    );
    line(
        "size",
        format!(
            "{} columns x {} rows x {} samples",
            f.columns, f.rows, f.samples_per_pixel
        ),
    );
    line(
        "bits",
        format!(
            "allocated {}, stored {}, high bit {}, {}",
            f.bits_allocated,
            f.bits_stored,
            f.high_bit,
            if f.signed { "signed" } else { "unsigned" }
        ),
    );
    line(
        "photometric",
        format!(
            "{}{}",
            f.photometric,
            if f.planar { ", planar" } else { "" }
        ),
    );
    line("export dtype", i.npy_dtype.clone());
    line(
        "pixel intensity",
        format!(
            "{} (sign {})",
            opt(i.pixel_intensity_relationship.as_deref(), ""),
            opt(i.pixel_intensity_relationship_sign, "")
        ),
    );
    let dur = i.timing.times_ms.last().copied().unwrap_or(0.0);
    line(
        "frame timing",
        format!(
            "{} ms/frame median, {:.1} s total, from {:?}",
            opt(i.frame_interval_ms.map(|v| format!("{v:.2}")), ""),
            dur / 1000.0,
            i.timing.source
        ),
    );
    line(
        "positioner",
        format!(
            "primary {} secondary {}",
            opt(g.primary_angle_deg, " deg"),
            opt(g.secondary_angle_deg, " deg")
        ),
    );
    line(
        "distances",
        format!(
            "source-detector {} source-patient {}",
            opt(g.source_to_detector_mm, " mm"),
            opt(g.source_to_patient_mm, " mm")
        ),
    );
    line(
        "spacing",
        format!(
            "imager {} pixel {} magnification {}",
            opt(
                g.imager_pixel_spacing_mm
                    .map(|s| format!("{}x{}", s[0], s[1])),
                " mm"
            ),
            opt(
                g.pixel_spacing_mm.map(|s| format!("{}x{}", s[0], s[1])),
                " mm"
            ),
            opt(g.magnification_factor, "")
        ),
    );
    line(
        "mm per pixel",
        format!(
            "{} from {}",
            opt(i.mm_per_px.map(|v| format!("{v:.5}")), ""),
            i.mm_source.describe()
        ),
    );
    let sh = &i.shutter;
    let mut shapes = Vec::new();
    if let Some(r) = sh.rectangle {
        shapes.push(format!(
            "rectangle x {}..{} y {}..{}",
            r[0], r[1], r[2], r[3]
        ));
    }
    if let Some((c, r)) = sh.circle {
        shapes.push(format!("circle centre ({}, {}) radius {}", c[0], c[1], r));
    }
    if let Some(p) = &sh.polygon {
        shapes.push(format!("polygon of {} vertices", p.len()));
    }
    line(
        "shutter",
        if shapes.is_empty() {
            "none".into()
        } else {
            shapes.join("; ")
        },
    );
    line(
        "modality LUT",
        format!("{:?}", i.modality_lut).chars().take(80).collect(),
    );
    line(
        "VOI LUT",
        opt(
            i.voi_lut
                .as_ref()
                .map(|v| format!("{v:?}").chars().take(80).collect::<String>()),
            "",
        ),
    );
    for w in &i.warnings {
        line("warning", w.clone());
    }
    s
}
