//! The viewer as a person uses it: started under Xvfb on a study, it must draw the frame with
//! the guidance overlay; its own screenshot is checked for the overlay's colours.
//! Skips (saying so) without xvfb-run, except under CI, where `.ci/run` installs it.

use std::path::PathBuf;
use std::process::Command;

fn has_xvfb() -> bool {
    Command::new("sh")
        .args(["-c", "command -v xvfb-run"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn viewer_draws_the_overlay_under_xvfb() {
    if !has_xvfb() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install xvfb (see .ci/run)"
        );
        eprintln!("SKIPPED: xvfb-run not installed");
        return;
    }
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clo-cross-256.dcm");
    let shot = std::env::temp_dir().join(format!("fluoro-view-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&shot);
    let runtime = std::env::temp_dir().join(format!("fluoro-view-xdg-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .args(["xvfb-run", "-a", "-s", "-screen 0 1400x900x24"])
        .arg(env!("CARGO_BIN_EXE_fluoro-view"))
        .arg(&fixture)
        // with the landmark plan, as a user at the table would start it
        .args([
            "--plan",
            "auto",
            "--once",
            "--exit-after",
            "5",
            "--screenshot",
        ])
        .arg(&shot)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "viewer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot)
        .unwrap_or_else(|e| {
            panic!(
                "no screenshot: {e}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_rgb8();
    assert!(
        img.width() >= 800 && img.height() >= 600,
        "{:?}",
        img.dimensions()
    );
    // the last frame of the crossing fixture: the state border is red (stop) and the VILL
    // is drawn in cyan; count pixels near those colours
    let near = |c: &image::Rgb<u8>, t: [u8; 3]| {
        c.0.iter()
            .zip(t)
            .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() < 40)
    };
    let red = img.pixels().filter(|c| near(c, [235, 30, 30])).count();
    let cyan = img.pixels().filter(|c| near(c, [0, 220, 255])).count();
    let yellow = img.pixels().filter(|c| near(c, [255, 230, 0])).count();
    assert!(red > 1000, "state colour not drawn ({red} px)");
    assert!(cyan > 20, "VILL not drawn ({cyan} px)");
    assert!(yellow > 20, "instrument axis not drawn ({yellow} px)");
    let _ = std::fs::remove_file(&shot);
}
