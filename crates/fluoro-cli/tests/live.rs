//! The live loop as a user runs it: recorded playback, raw frame streams over TCP and
//! DICOM instances pushed by storescu or a C-arm.

mod common;

use common::{fail, fixtures, fluoro, succeed, tmp};

#[test]
fn live_playback_reports_latency_and_accounts_for_every_frame() {
    let out = succeed(
        fluoro()
            .arg("live")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .args(["--speed", "4", "--plan", "auto", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["report"];
    assert_eq!(r["arrived"], 16, "{v}");
    assert_eq!(
        r["processed"].as_u64().unwrap() + r["dropped"].as_u64().unwrap(),
        16,
        "{v}"
    );
    assert!(r["latency"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    // a malformed plan is refused before anything runs
    let bad = fail(
        fluoro()
            .arg("live")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .args(["--plan", "1,2,3"]),
    );
    assert!(bad.contains("entry_x,entry_y"));
}

#[test]
fn a_raw_frame_stream_over_tcp_feeds_the_live_loop() {
    let mut listener = fluoro()
        .args(["live", "--listen", "127.0.0.1:0", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the listener prints the port it bound
    let (addr, _err) = bound_address(&mut listener);
    let send = fluoro()
        .arg("stream")
        .arg(fixtures().join("clo-cross-256.dcm"))
        .args(["--to", &addr, "--speed", "4"])
        .output()
        .unwrap();
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let out = listener.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"]["arrived"], 16, "{v}");
    assert_eq!(
        v["report"]["processed"].as_u64().unwrap() + v["report"]["dropped"].as_u64().unwrap(),
        16,
        "{v}"
    );
    // a garbage stream is an error that names the peer, not a hang or a panic
    let mut listener = fluoro()
        .args(["live", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, mut err) = bound_address(&mut listener);
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(&[0x47; 64]).unwrap();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(!listener.wait().unwrap().success());
    assert!(
        rest.contains("magic") && !rest.contains("panicked"),
        "{rest}"
    );
}

/// Starts `fluoro live --dicom-listen` on a free port; returns it and the address it bound.
fn dicom_live(store: &std::path::Path, seconds: &str) -> (std::process::Child, String) {
    let mut live = fluoro()
        .args([
            "live",
            "--dicom-listen",
            "127.0.0.1:0",
            "--json",
            "--seconds",
            seconds,
        ])
        .arg("--store-dir")
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = bound_address(&mut live);
    (live, addr)
}

/// The address a listener reports on its first stderr line (`... listening on ADDR[, ...]`),
/// with the rest of its stderr.
fn bound_address(
    child: &mut std::process::Child,
) -> (String, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::BufRead;
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.trim().split(',').next())
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    (addr, err)
}

#[test]
fn instances_pushed_by_storescu_feed_the_live_loop() {
    let have = std::process::Command::new("storescu")
        .arg("--version")
        .output()
        .is_ok();
    if !have {
        assert!(
            std::env::var("FLUORO_REQUIRE_DCMTK").is_err(),
            "storescu missing but FLUORO_REQUIRE_DCMTK is set"
        );
        eprintln!("storescu not installed: DICOM push to `fluoro live` not checked");
        return;
    }
    let store = tmp("received");
    let (live, addr) = dicom_live(&store, "3");
    let port = addr.rsplit(':').next().unwrap().to_string();
    // the second study has another size: refused for this session, the first plays on
    let sent = std::process::Command::new("storescu")
        .args(["-aec", "FLUORO", "127.0.0.1", &port])
        .arg(fixtures().join("ap-short-128.dcm"))
        .arg(fixtures().join("clo-cross-256.dcm"))
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["received"]["instances"], 1, "{v}");
    assert_eq!(v["received"]["refused"], 1, "{v}");
    assert_eq!(v["report"]["arrived"], 6, "{v}");
    assert!(v["report"]["processed"].as_u64().unwrap() >= 1, "{v}");
    // both instances were kept on disk, as sent
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 2);
}

#[test]
fn a_c_arm_pushing_single_frames_feeds_the_live_loop() {
    let store = tmp("per-frame");
    let (live, addr) = dicom_live(&store, "2");
    let sent = fluoro()
        .arg("send")
        .arg(fixtures().join("ap-short-128.dcm"))
        .args(["--to", &addr, "--per-frame"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let out = live.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // six single-frame instances: each shown, or superseded by a newer one and counted
    assert_eq!(v["received"]["instances"], 6, "{v}");
    let (arrived, skipped) = (
        v["report"]["arrived"].as_u64().unwrap(),
        v["received"]["frames_skipped"].as_u64().unwrap(),
    );
    assert_eq!(arrived + skipped, 6, "{v}");
    assert!(v["report"]["processed"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(std::fs::read_dir(&store).unwrap().count(), 6);
    // a sender aimed at nothing fails with a message, not a hang
    let bad = fail(
        fluoro()
            .arg("send")
            .arg(fixtures().join("ap-short-128.dcm"))
            .args(["--to", "127.0.0.1:1"]),
    );
    assert!(bad.contains("127.0.0.1:1"));
}
