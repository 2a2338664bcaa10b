//! Tools over result folders: `fluoro process` on a batch of studies, `fluoro compare`.

mod common;
use common::*;

/// `fluoro process A B C --out DIR`: each study in its own sub-folder named after the file
/// (a repeated name gets a suffix), a bad file reported and skipped without stopping the
/// batch, `batch.json` listing all three, and a failing exit status naming the count.
#[test]
fn process_runs_a_batch_past_a_bad_study() {
    let d = tmp("batch");
    let fixture = fixtures().join("clo-cross-256.dcm");
    let bad = d.join("bad.dcm");
    std::fs::write(&bad, &std::fs::read(&fixture).unwrap()[..3000]).unwrap();
    let twin = d.join("x");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::copy(&fixture, twin.join("clo-cross-256.dcm")).unwrap();
    let out = d.join("out");
    let err = fail(
        fluoro()
            .arg("process")
            .arg(&fixture)
            .arg(&bad)
            .arg(twin.join("clo-cross-256.dcm"))
            .args(["--quiet", "--out"])
            .arg(&out),
    );
    assert!(
        err.contains("bad.dcm") && err.contains("1 of 3 studies failed"),
        "{err}"
    );
    for name in ["clo-cross-256", "clo-cross-256-2"] {
        assert!(out.join(name).join("frames.jsonl").is_file(), "{name}");
        assert!(out.join(name).join("summary.json").is_file(), "{name}");
    }
    assert!(!out.join("bad").exists());
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("batch.json")).unwrap()).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["ok"], true);
    assert_eq!(list[0]["frames"], 16);
    assert_eq!(list[1]["ok"], false);
    assert!(list[1]["error"].as_str().unwrap().contains("bad.dcm"));
    assert_eq!(list[2]["out"], "clo-cross-256-2");
    // one study: straight into --out, as before
    let single = d.join("single");
    succeed(
        fluoro()
            .arg("process")
            .arg(&fixture)
            .args(["--quiet", "--out"])
            .arg(&single),
    );
    assert!(single.join("frames.jsonl").is_file());
    assert!(!single.join("batch.json").exists());
}

/// Processes the CLO fixture into `out` and returns its `frames.jsonl`.
fn process_fixture(out: &std::path::Path) -> String {
    succeed(
        fluoro()
            .arg("process")
            .arg(fixtures().join("clo-cross-256.dcm"))
            .args(["--quiet", "--out"])
            .arg(out),
    );
    std::fs::read_to_string(out.join("frames.jsonl")).unwrap()
}

/// `frames.jsonl` text with frame `i`'s state changed (safe to stop, anything else to safe).
fn with_state_flipped(text: &str, i: usize) -> String {
    let mut frames: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let s = &mut frames[i]["guidance"]["state"];
    *s = if *s == "safe" { "stop" } else { "safe" }.into();
    let lines: Vec<String> = frames.iter().map(|v| v.to_string()).collect();
    lines.join("\n")
}

/// `fluoro compare A B --json JSON`, which must succeed; returns the JSON.
fn compare_json(
    a: &std::path::Path,
    b: &std::path::Path,
    json: &std::path::Path,
) -> serde_json::Value {
    succeed(
        fluoro()
            .arg("compare")
            .arg(a)
            .arg(b)
            .arg("--json")
            .arg(json),
    );
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

/// `fluoro compare`: a result agrees with itself; a changed state is counted, and
/// `--strict` then fails naming both folders.
#[test]
fn compare_counts_differing_frames() {
    let d = tmp("compare");
    let a = d.join("a");
    let text = process_fixture(&a);
    let b = d.join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("frames.jsonl"), &text).unwrap();
    let same = succeed(fluoro().arg("compare").arg(&a).arg(&b).arg("--strict"));
    assert!(
        String::from_utf8_lossy(&same.stdout).contains("state differs 0"),
        "{same:?}"
    );
    // the last frame's state changed in b
    let n = text.lines().count();
    std::fs::write(b.join("frames.jsonl"), with_state_flipped(&text, n - 1)).unwrap();
    let g = compare_json(&a, &b, &d.join("agreement.json"));
    assert_eq!(g["state_differs"], 1, "{g}");
    assert_eq!(g["frames"], n, "{g}");
    let err = fail(fluoro().arg("compare").arg(&a).arg(&b).arg("--strict"));
    assert!(
        err.contains("different guidance") && err.contains("b"),
        "{err}"
    );
}

/// `fluoro compare` on two batch or suite folders: studies matched by name (batch layout
/// `NAME/frames.jsonl` and suite layout `NAME/result/frames.jsonl` both found), pooled; a
/// study missing on one side is refused.
#[test]
fn compare_pools_batch_and_suite_folders() {
    let d = tmp("compare-many");
    let text = process_fixture(&d.join("one"));
    let put = |dir: &std::path::Path, body: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("frames.jsonl"), body).unwrap();
    };
    let (a, b) = (d.join("a"), d.join("b"));
    put(&a.join("x"), &text);
    put(&a.join("y").join("result"), &text);
    put(&b.join("x"), &text);
    put(&b.join("y").join("result"), &with_state_flipped(&text, 5));
    let v = compare_json(&a, &b, &d.join("pooled.json"));
    assert_eq!(v["studies"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["studies"][1]["study"], "y", "{v}");
    assert_eq!(v["studies"][1]["agreement"]["state_differs"], 1, "{v}");
    assert_eq!(v["pooled"]["state_differs"], 1, "{v}");
    assert_eq!(v["pooled"]["frames"], 2 * text.lines().count(), "{v}");
    std::fs::remove_dir_all(b.join("x")).unwrap();
    let err = fail(fluoro().arg("compare").arg(&a).arg(&b));
    assert!(err.contains("different studies"), "{err}");
}
