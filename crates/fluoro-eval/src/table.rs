//! The scores as a table for people.

use crate::{Dist, Scores};

/// A table for people.
pub fn table(s: &Scores) -> String {
    let f = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into());
    let dist = |d: &Dist, unit: &str| {
        format!(
            "median {} p95 {} {unit} (n={})",
            f(d.median, 2),
            f(d.p95, 2),
            d.n
        )
    };
    let mut o = String::new();
    let mut line = |k: &str, v: String| o.push_str(&format!("{k:<26}{v}\n"));
    line("frames", s.frames.to_string());
    line(
        "detection recall",
        format!(
            "{} ({}/{} visible)",
            f(s.detection_recall, 3),
            s.detected_when_visible,
            s.truth_visible
        ),
    );
    line(
        "false positives",
        format!(
            "{} ({}/{} empty)",
            f(s.false_positive_rate, 3),
            s.false_positives,
            s.truth_empty
        ),
    );
    line("tip error", dist(&s.tip_error_mm, "mm"));
    line("tip error", dist(&s.tip_error_px, "px"));
    line("axis error", dist(&s.axis_error_deg, "deg"));
    line("VILL distance", dist(&s.vill_distance_mm, "mm"));
    line("VILL angle", dist(&s.vill_angle_deg, "deg"));
    line("VILL missed", s.vill_missed.to_string());
    line(
        "tip-to-VILL error",
        format!(
            "{} (result - truth; > 0: unsafe side)",
            dist(&s.depth_error_mm, "mm")
        ),
    );
    line("  due to the tip", dist(&s.depth_error_tip_mm, "mm"));
    line("  due to the line", dist(&s.depth_error_line_mm, "mm"));
    for (k, e) in s.vill_end_error_mm.iter().enumerate() {
        line(
            &format!("VILL p{k} error"),
            format!(
                "ventral {} {}, into window {} {} mm (median, p95)",
                f(e.ventral.median, 2),
                f(e.ventral.p95, 2),
                f(e.into_window.median, 2),
                f(e.into_window.p95, 2)
            ),
        );
    }
    line("state accuracy", f(s.state_accuracy, 3));
    line(
        "MISSED STOPS",
        format!(
            "{} (truth stop, said safe); stop not flagged: {}",
            s.missed_stops, s.stop_not_flagged
        ),
    );
    o.push_str("states (rows truth, cols result): safe caution stop unknown\n");
    for (i, name) in ["safe", "caution", "stop", "unknown"].iter().enumerate() {
        let row = &s.state_confusion[i];
        o.push_str(&format!(
            "  {name:<8}{:>7}{:>8}{:>6}{:>8}\n",
            row[0], row[1], row[2], row[3]
        ));
    }
    for (k, name) in ["lamina", "ligamentum flavum", "contrast", "instrument"]
        .iter()
        .enumerate()
    {
        o.push_str(&format!(
            "{:<26}{}\n",
            format!("Dice {name}"),
            f(s.dice[k], 3)
        ));
    }
    if let Some(p) = &s.plan {
        let unit = if s.mm_per_px.is_some() { "mm" } else { "px" };
        o.push_str(&format!(
            "{:<26}{:.2} deg off the true path, target {:.2} {unit} from the VILL's middle\n",
            format!("plan ({})", p.source),
            p.angle_to_true_path_deg,
            p.target_to_vill_middle_mm
        ));
    }
    o
}
