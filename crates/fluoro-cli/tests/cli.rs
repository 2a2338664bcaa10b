//! The `fluoro` binary as a user runs it: info, export and synth on committed fixtures,
//! and clear errors on bad input.

mod common;

use common::{fail, fixtures, fluoro, succeed, tmp};
use std::path::Path;

#[test]
fn info_json_describes_the_fixture() {
    let out = fluoro()
        .args(["info", "--json"])
        .arg(fixtures().join("clo-cross-256.dcm"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 16);
    assert_eq!(v["sop_class_name"], "X-Ray Angiographic Image");
    assert_eq!(v["pixel_format"]["bits_stored"], 12);
    assert_eq!(v["mm_source"], "imager_spacing_and_distances");
    assert_eq!(v["timing"]["source"], "frame_time");
    assert!(v["shutter"]["circle"].is_array());
    let mm = v["mm_per_px"].as_f64().unwrap();
    assert!((mm - 1.164 * 650.0 / 1020.0).abs() < 1e-3, "{mm}");
    let text = fluoro()
        .arg("info")
        .arg(fixtures().join("clo-cross-256.dcm"))
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&text.stdout);
    assert!(
        s.contains("primary -45 deg") && s.contains("mm per pixel"),
        "{s}"
    );
}

#[test]
fn export_writes_npy_of_the_right_shape() {
    let d = tmp("export");
    let out = fluoro()
        .arg("export")
        .arg(fixtures().join("clo-cross-256.dcm"))
        .arg("--out")
        .arg(&d)
        .arg("--png")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(d.join("frames.npy")).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<u2'") && header.contains("'shape': (16, 256, 256)"),
        "{header}"
    );
    assert_eq!(bytes.len(), 10 + header_len + 16 * 256 * 256 * 2);
    assert!(d.join("png/000015.png").exists());
    assert!(!d.join("frames.npy.partial").exists());
}

#[test]
fn bad_input_is_a_clear_error_naming_the_file() {
    let d = tmp("bad");
    let missing = d.join("nope.dcm");
    let not_dicom = d.join("text.dcm");
    std::fs::write(
        &not_dicom,
        b"this is not a DICOM file at all, just some text bytes",
    )
    .unwrap();
    let empty = d.join("empty.dcm");
    std::fs::write(&empty, b"").unwrap();
    for (p, expect) in [
        (&missing, "cannot read"),
        (&not_dicom, "malformed"),
        (&empty, "malformed"),
    ] {
        let out = fluoro().arg("info").arg(p).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&p.display().to_string()) && err.contains(expect),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = fluoro()
        .arg("export")
        .arg(&not_dicom)
        .arg("--out")
        .arg(d.join("o"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!d.join("o/frames.npy").exists());
    // a seed shift below seed 0 is refused before anything is written
    let out = fluoro()
        .args(["suite", "--quick", "--seed-shift", "-100000", "--out"])
        .arg(d.join("suite"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--seed-shift"),
        "{err}"
    );
    assert!(!d.join("suite").exists());
}

fn synth(dir: &Path, extra: &[&str]) {
    let out = fluoro()
        .arg("synth")
        .arg("--out")
        .arg(dir.join("s.dcm"))
        .arg("--truth")
        .arg(dir.join("truth"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn synth_is_deterministic_and_matches_the_committed_fixture() {
    let a = tmp("synth-a");
    let b = tmp("synth-b");
    synth(&a, &["--preset", "fixture", "--seed", "101"]);
    synth(&b, &["--preset", "fixture", "--seed", "101"]);
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a.join("s.dcm")), read(&b.join("s.dcm")));
    assert_eq!(
        read(&a.join("truth/frames.jsonl")),
        read(&fixtures().join("clo-cross-256.truth/frames.jsonl"))
    );
    assert_eq!(
        read(&a.join("s.dcm")),
        read(&fixtures().join("clo-cross-256.dcm")),
        "fixture is stale: regenerate it (README)"
    );
    // the generated study reads back through the project's own reader
    let out = fluoro()
        .args(["info", "--json"])
        .arg(a.join("s.dcm"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["frames"], 16);
    let labels = std::fs::read_dir(a.join("truth/labels")).unwrap().count();
    assert_eq!(labels, 16);
    assert!(a.join("truth/scene.json").exists());
}

#[test]
fn synth_rejects_bad_options() {
    let d = tmp("synth-bad");
    for args in [
        vec!["--size", "5"],
        vec!["--preset", "nope"],
        vec!["--dose", "-3"],
        vec!["--frames", "0"],
    ] {
        let out = fluoro()
            .arg("synth")
            .arg("--out")
            .arg(d.join("x.dcm"))
            .arg("--truth")
            .arg(d.join("t"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
}

/// `fluoro eval --json` of a result folder against the CLO fixture's truth.
fn fixture_scores(result: &Path) -> serde_json::Value {
    let json = result.with_file_name("scores.json");
    succeed(
        fluoro()
            .arg("eval")
            .arg("--truth")
            .arg(fixtures().join("clo-cross-256.truth"))
            .arg("--result")
            .arg(result)
            .arg("--json")
            .arg(&json),
    );
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

#[test]
fn process_and_eval_on_the_fixture_catch_regressions() {
    let d = tmp("process");
    let out = d.join("result");
    let st = fluoro()
        .arg("process")
        .arg(fixtures().join("clo-cross-256.dcm"))
        .arg("--out")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    // the contract's output folder
    for f in [
        "frames.jsonl",
        "summary.json",
        "labels/000015.png",
        "annotated/000015.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let lines = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for k in ["frame", "time_ms", "tool", "vill", "guidance", "timing"] {
        assert!(first.get(k).is_some(), "field {k} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["mm_source"], "imager_spacing_and_distances");
    let s = fixture_scores(&out);
    // regression thresholds measured on this fixture (see the README's accuracy table)
    assert!(s["detection_recall"].as_f64().unwrap() >= 0.85, "{s}");
    assert!(s["false_positive_rate"].as_f64().unwrap() <= 0.1, "{s}");
    assert!(s["tip_error_mm"]["median"].as_f64().unwrap() <= 0.5, "{s}");
    assert!(
        s["axis_error_deg"]["median"].as_f64().unwrap() <= 1.0,
        "{s}"
    );
    assert_eq!(s["missed_stops"], 0, "a missed stop: {s}");
    assert!(s["dice"][3].as_f64().unwrap() >= 0.7, "instrument Dice {s}");
    // the tip-to-VILL error's unsafe tail (result says further from crossing than it is):
    // 0.02 mm on this fixture; a VILL drifting ventral or a tip found late raises it
    assert!(s["depth_error_mm"]["n"].as_u64().unwrap() >= 10, "{s}");
    assert!(s["depth_error_mm"]["p95"].as_f64().unwrap() <= 0.5, "{s}");
}

/// `--plan auto`: a plan from the instrument's entry to the middle of the VILL, fixed once
/// the line is locked, recorded in the summary and measured against on every frame after.
#[test]
fn plan_from_the_landmarks_aims_at_the_window_middle() {
    let out = tmp("plan-auto").join("result");
    succeed(
        fluoro()
            .arg("process")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .args(["--plan", "auto", "--quiet", "--out"])
            .arg(&out),
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["options"]["plan_from_landmarks"], true);
    let since = summary["landmark_plan"]["since_frame"].as_u64().unwrap() as usize;
    let result: Vec<serde_json::Value> = std::fs::read_to_string(out.join("frames.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // fixed for at least the last 4 frames (measured: from frame 12 of 16; a plan that is
    // never fixed has since_frame 15)
    assert!(
        since + 4 <= result.len(),
        "plan fixed only at frame {since}"
    );
    // every frame from then on is measured against it
    for r in &result[since..] {
        if r["tool"]["detected"] == true {
            assert!(r["guidance"]["angle_to_plan_deg"].is_f64(), "{r}");
            assert!(r["guidance"]["offset_to_plan_mm"].is_f64(), "{r}");
        }
    }
    // against the truth (`fluoro eval`): the simulated instrument heads for the middle of
    // the true VILL; measured 0.59 deg and 0.78 mm on this fixture
    let s = fixture_scores(&out);
    assert_eq!(s["plan"]["source"], "landmarks", "{s}");
    let deg = s["plan"]["angle_to_true_path_deg"].as_f64().unwrap();
    assert!(deg < 3.0, "plan {deg:.2} deg off the true path");
    let miss = s["plan"]["target_to_vill_middle_mm"].as_f64().unwrap();
    assert!(
        miss < 4.0,
        "plan target {miss:.2} mm from the window middle"
    );
    // a malformed plan is refused, naming what is expected
    let bad = fail(
        fluoro()
            .arg("process")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .args(["--plan", "automatic", "--out"])
            .arg(tmp("plan-bad")),
    );
    assert!(bad.contains("'auto'"));
}

#[test]
fn bench_json_has_the_documented_shape() {
    let out = fluoro()
        .args(["bench", "--size", "128", "--frames", "3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "backend", "adapter", "size", "frames", "threads", "stages", "total",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert!(v["total"]["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(v["stages"]["enhance"]["median_ms"].as_f64().is_some());
    // the CPU kernels' instruction set, as this process detects it
    assert_eq!(v["simd"], fluoro_enhance::simd_level(), "{v}");
    // `fluoro process`'s configuration scores the anatomy model on every frame
    assert_eq!(v["anatomy_every"], 1, "{v}");
    assert_eq!(v["anatomy_scored_frames"], 3, "{v}");
    // the live loop's scores every 4th of the 3 warm-up and 8 timed frames: 4 and 8
    let live = fluoro()
        .args(["bench", "--size", "128", "--frames", "8", "--json"])
        .args(["--anatomy-every", "4"])
        .output()
        .unwrap();
    let l: serde_json::Value = serde_json::from_slice(&live.stdout).unwrap();
    assert_eq!(l["anatomy_scored_frames"], 2, "{l}");
    // the rest of the machine's load: null where /proc cannot tell or the run was shorter
    // than a clock tick, else two shares of the machine's CPU time
    let host = &v["host"];
    assert!(v.get("host").is_some(), "host missing: {v}");
    if !host.is_null() {
        for k in ["steal_frac", "others_frac"] {
            let f = host[k].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&f), "{k}: {host}");
        }
    }
    // CPU time: wherever this test process can read its own scheduler statistics, the
    // bench can read its own
    if std::fs::read_to_string("/proc/thread-self/schedstat").is_ok() {
        let cpu = &v["cpu"];
        assert!(cpu["ms_per_frame"].as_f64().unwrap() > 0.0, "{cpu}");
        let busy = cpu["busy_threads"].as_f64().unwrap();
        let threads = v["threads"].as_f64().unwrap();
        // the pool's threads and the calling one, each busy at most all the time
        assert!(busy > 0.0 && busy <= threads + 1.0, "{cpu}");
    }
    if !std::env::var("FLUORO_SKIP_GPU").is_ok_and(|v| v == "1") {
        let gpu = fluoro()
            .args([
                "bench",
                "--size",
                "128",
                "--frames",
                "2",
                "--backend",
                "gpu",
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            gpu.status.success(),
            "{}",
            String::from_utf8_lossy(&gpu.stderr)
        );
        let g: serde_json::Value = serde_json::from_slice(&gpu.stdout).unwrap();
        assert_eq!(g["backend"], "gpu", "{g}");
        assert!(g["adapter"].as_str().unwrap().starts_with("gpu: "), "{g}");
        // per-stage GPU times against the bandwidth floor (lavapipe records timestamps)
        assert!(
            g["gpu"]["copy_bandwidth_gbps"].as_f64().unwrap() > 0.0,
            "{g}"
        );
        let chain = &g["gpu"]["chain"];
        assert!(chain["median_ms"].as_f64().unwrap() > 0.0, "{g}");
        let f = chain["floor_fraction"].as_f64().unwrap();
        assert!(f > 0.0 && f <= 1.0, "{g}");
        assert!(g["throughput_fps"].as_f64().unwrap() > 0.0, "{g}");
    }
}

/// Runs `fluoro suite` with `args` in a fresh folder and returns its JSON scores.
fn suite_scores(name: &str, args: &[&str]) -> serde_json::Value {
    let d = tmp(name);
    let json = d.join("suite.json");
    let out = fluoro()
        .arg("suite")
        .args(args)
        .arg("--out")
        .arg(d.join("w"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
}

#[test]
fn quick_suite_has_no_missed_stops() {
    let v = suite_scores("suite", &["--quick", "--plan-auto"]);
    let p = &v["pooled"];
    // the landmark plans against the truth: measured 1.25 deg (max 1.55) and 2.66 mm (max
    // 3.20) over the three studies
    let plans = &v["plans"];
    assert_eq!(plans["studies"], 3, "{plans}");
    assert!(plans["angle_deg"]["max"].as_f64().unwrap() < 3.0, "{plans}");
    assert!(plans["target_mm"]["max"].as_f64().unwrap() < 4.5, "{plans}");
    // regression thresholds on the held-out quick suite (3 studies at 256-320 px)
    assert_eq!(p["missed_stops"], 0, "a missed stop: {p}");
    assert!(p["detection_recall"].as_f64().unwrap() >= 0.8, "{p}");
    assert!(p["tip_error_mm"]["median"].as_f64().unwrap() <= 0.5, "{p}");
    assert!(p["state_accuracy"].as_f64().unwrap() >= 0.75, "{p}");
    // Dice per label (lamina, LF, contrast, instrument); measured 0.78 / 0.80 / 0.78 / 0.94
    for (i, min) in [0.65, 0.65, 0.6, 0.8].into_iter().enumerate() {
        assert!(p["dice"][i].as_f64().unwrap() >= min, "Dice {i}: {p}");
    }
}

/// The studies that once gave missed stops (`fluoro suite --regression`: CLO 35 deg at
/// 384 px, seeds 3005, 10005 and 21005, 2, 10 and 2 missed stops before their fixes) give
/// none.
#[test]
fn regression_studies_have_no_missed_stops() {
    let v = suite_scores("regression", &["--regression"]);
    let studies = v["studies"].as_array().unwrap();
    assert_eq!(studies.len(), 3);
    for st in studies {
        assert_eq!(st["scores"]["missed_stops"], 0, "{}", st["study"]);
        // where a line is found, it errs on the safe side (measured p95 -1.3 mm pooled): a
        // line well ventral of the truth is a missed stop waiting for a deeper tip
        if let Some(p95) = st["scores"]["depth_error_mm"]["p95"].as_f64() {
            assert!(p95 <= 0.5, "{}: depth error p95 {p95}", st["study"]);
        }
    }
}

#[test]
fn gpu_and_cpu_backends_give_the_same_guidance() {
    if std::env::var("FLUORO_SKIP_GPU").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: FLUORO_SKIP_GPU=1");
        return;
    }
    let d = tmp("backends");
    let run = |backend: &str| {
        let out = d.join(backend);
        let st = fluoro()
            .arg("process")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .arg("--out")
            .arg(&out)
            .args(["--quiet", "--backend", backend])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let text = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (cpu, gpu) = (run("cpu"), run("gpu"));
    for (a, b) in cpu.iter().zip(&gpu) {
        assert_eq!(
            a["guidance"]["state"], b["guidance"]["state"],
            "frame {}",
            a["frame"]
        );
        assert_eq!(
            a["tool"]["detected"], b["tool"]["detected"],
            "frame {}",
            a["frame"]
        );
        if let (Some(p), Some(q)) = (a["tool"]["tip"].as_array(), b["tool"]["tip"].as_array()) {
            for k in 0..2 {
                let (x, y) = (p[k].as_f64().unwrap(), q[k].as_f64().unwrap());
                assert!((x - y).abs() < 0.01, "frame {}: tip {x} vs {y}", a["frame"]);
            }
        }
        assert_eq!(
            a["vill"].is_null(),
            b["vill"].is_null(),
            "frame {}",
            a["frame"]
        );
    }
}

/// `fluoro suite --backend gpu --compare-cpu` on the quick suite (3 studies, 120 frames):
/// the GPU chain (lavapipe in CI) gives the CPU's guidance on every frame. Measured: no
/// state, detection or line differs, and tips, lines and depths agree to 1e-4.
#[test]
fn gpu_guidance_equals_cpu_on_the_quick_suite() {
    if std::env::var("FLUORO_SKIP_GPU").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: FLUORO_SKIP_GPU=1");
        return;
    }
    let v = suite_scores(
        "suite-gpu",
        &["--quick", "--backend", "gpu", "--compare-cpu"],
    );
    let b = &v["backends"];
    assert_eq!(b["backend"], "gpu", "{b}");
    let g = &b["agreement"];
    assert_eq!(g["frames"], 120, "{g}");
    for k in [
        "unmatched_frames",
        "state_differs",
        "detection_differs",
        "vill_presence_differs",
    ] {
        assert_eq!(g[k], 0, "{k}: {g}");
    }
    assert!(g["tip_max_px"].as_f64().unwrap() < 0.01, "{g}");
    assert!(g["vill_max_px"].as_f64().unwrap() < 0.05, "{g}");
    assert!(g["depth_max_mm"].as_f64().unwrap() < 0.01, "{g}");
}
