//! Reads every file of the shared public DICOM corpus and compares the stored values with
//! the reference decode (`reference.jsonl`): exact hashes for lossless files, a tolerance
//! for lossy ones, and a clear error for each malformed file.

use fluoro_dicom::{Study, npy};
use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;
use common::corpus_dir;

fn frame_hash(frame: &fluoro_dicom::StoredFrame) -> String {
    let mut h = Sha256::new();
    for i in 0..frame.samples.len() {
        h.update((frame.samples.get(i) as i32).to_le_bytes());
    }
    format!("{:x}", h.finalize())
}

#[test]
fn corpus_matches_reference_decode() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIPPED: shared/dicom-corpus not found (set FLUORO_DICOM_CORPUS)");
        return;
    };
    let text = std::fs::read_to_string(dir.join("reference.jsonl")).unwrap();
    let out = std::env::temp_dir().join(format!("fluoro-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let r: Value = serde_json::from_str(line).unwrap();
        let name = r["file_name"].as_str().unwrap();
        let path = dir.join("files").join(name);
        let decodable = r["decodable"].as_bool().unwrap();
        let opened = Study::open(&path);
        if !decodable {
            match opened.and_then(|s| {
                let o = out.join(format!("{name}.npy"));
                npy::export_study(&s, &o).map(|_| ())
            }) {
                Ok(()) => failures.push(format!("{name}: malformed file was accepted")),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(name), "error does not name the file: {msg}");
                    eprintln!("rejected as expected: {msg}");
                }
            }
            checked += 1;
            continue;
        }
        let study = match opened {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: open failed: {e}"));
                continue;
            }
        };
        let info = study.info();
        let expect_frames = r["number_of_frames"].as_u64().unwrap() as usize;
        if info.frames != expect_frames
            || info.pixel_format.rows != r["rows"].as_u64().unwrap() as usize
            || info.pixel_format.columns != r["cols"].as_u64().unwrap() as usize
        {
            failures.push(format!(
                "{name}: shape {}x{}x{} differs from reference",
                info.frames, info.pixel_format.rows, info.pixel_format.columns
            ));
            continue;
        }
        let dtype_expect = match r["dtype"].as_str().unwrap() {
            "uint8" => "|u1",
            "uint16" => "<u2",
            "int16" => "<i2",
            "uint32" => "<u4",
            "int32" => "<i4",
            other => other,
        };
        if info.npy_dtype != dtype_expect {
            failures.push(format!(
                "{name}: dtype {} but reference {dtype_expect}",
                info.npy_dtype
            ));
        }
        let lossy = r["lossy"].as_bool().unwrap_or(false);
        let refs = r["frames"].as_array().unwrap();
        let alts: Vec<String> = r["alt_frame_sha256"]
            .as_object()
            .map(|m| {
                m.values()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for (i, fr) in refs.iter().enumerate() {
            let frame = match study.frame(i) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(format!("{name}: frame {i}: {e}"));
                    break;
                }
            };
            let h = frame_hash(&frame);
            if h == fr["sha256"].as_str().unwrap() || alts.contains(&h) {
                continue;
            }
            let (min, max) = frame.min_max();
            let mean = (0..frame.samples.len())
                .map(|k| frame.samples.get(k) as f64)
                .sum::<f64>()
                / frame.samples.len() as f64;
            let (rmin, rmax, rmean) = (
                fr["min"].as_i64().unwrap(),
                fr["max"].as_i64().unwrap(),
                fr["mean"].as_f64().unwrap(),
            );
            let close =
                (min - rmin).abs() <= 2 && (max - rmax).abs() <= 2 && (mean - rmean).abs() <= 0.5;
            if !(lossy && close) {
                failures.push(format!(
                    "{name}: frame {i} differs: min/max/mean {min}/{max}/{mean:.3} vs reference {rmin}/{rmax}/{rmean:.3}{}",
                    if lossy { " (beyond lossy tolerance)" } else { " (lossless: hash must match)" }
                ));
                break;
            }
        }
        // export must succeed and have the right size
        let o = out.join(format!("{name}.npy"));
        match npy::export_study(&study, &o) {
            Ok(stats) => assert_eq!(stats.frames, expect_frames),
            Err(e) => failures.push(format!("{name}: export failed: {e}")),
        }
        checked += 1;
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(checked >= 40, "only {checked} corpus files checked");
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fast `frame_f32` path gives exactly the values of the general decode, on every
/// readable corpus file (8/16-bit, signed, odd high bits) and the fixtures.
#[test]
fn frame_f32_matches_the_general_decode() {
    let mut files: Vec<std::path::PathBuf> =
        ["fixtures/clo-cross-256.dcm", "fixtures/ap-short-128.dcm"]
            .iter()
            .map(|f| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(f)
            })
            .collect();
    if let Some(dir) = common::corpus_dir() {
        let mut c: Vec<_> = std::fs::read_dir(dir.join("files"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        c.sort();
        files.extend(c);
    }
    let (mut checked, mut fast_paths) = (0, 0);
    for path in files {
        let Ok(study) = fluoro_dicom::Study::open(&path) else {
            continue;
        };
        for i in [0, study.frame_count().saturating_sub(1)] {
            let Ok(frame) = study.frame(i) else { continue };
            let (mut a, mut b) = (fluoro_core::Frame::new(0, 0), fluoro_core::Frame::new(0, 0));
            frame.write_f32(&mut a);
            study.frame_f32(i, &mut b).unwrap();
            assert_eq!(a.size(), b.size(), "{}", path.display());
            assert!(a.data() == b.data(), "{} frame {i}", path.display());
            checked += 1;
            fast_paths += usize::from(!study.info().encapsulated && frame.samples_per_pixel == 1);
        }
    }
    assert!(
        checked >= 4 && fast_paths >= 4,
        "{checked} frames, {fast_paths} native"
    );
}
