//! Helpers shared by the binary's integration tests.

use std::path::PathBuf;
use std::process::Command;

/// The binary under test.
pub fn fluoro() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fluoro"))
}

/// Runs `c` and checks that it succeeded (its stderr in the message if not).
pub fn succeed(c: &mut Command) -> std::process::Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `c`, checks that it failed, and returns its stderr (the message a user reads).
pub fn fail(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The committed fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A fresh scratch folder for one test.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fluoro-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
