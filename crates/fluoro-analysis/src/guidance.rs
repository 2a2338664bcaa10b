//! Guidance numbers from a tip, a VILL and an optional plan.

use fluoro_core::record::{GuidanceRecord, SafetyState, signed_distance_to_line};

/// A planned trajectory in pixels: entry and target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Entry point `[x, y]`.
    pub entry: [f64; 2],
    /// Target point `[x, y]`.
    pub target: [f64; 2],
}

impl Plan {
    /// The plan read from the landmarks: from `entry` (where the instrument enters the
    /// visible field: the skin entry is set before the oblique view and cannot move) to the
    /// middle of the VILL of the window it heads into, the point of that line with the most
    /// clearance from both laminae. `None` when the two coincide.
    pub fn from_landmarks(vill: [[f64; 2]; 2], entry: [f64; 2]) -> Option<Plan> {
        let [p0, p1] = vill;
        let target = [(p0[0] + p1[0]) / 2.0, (p0[1] + p1[1]) / 2.0];
        let len = (target[0] - entry[0]).hypot(target[1] - entry[1]);
        (len > 1e-6).then_some(Plan { entry, target })
    }
}

/// Where the plan comes from (`--plan` on the command lines).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PlanChoice {
    /// Given in pixels.
    Given(Plan),
    /// Read from the landmarks ([`Plan::from_landmarks`]).
    Landmarks,
}

impl std::str::FromStr for PlanChoice {
    type Err = String;

    /// `entry_x,entry_y,target_x,target_y` in pixels, or `auto` for the landmarks.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(PlanChoice::Landmarks);
        }
        let expected = "expected four numbers, entry_x,entry_y,target_x,target_y, or 'auto'";
        let v: Vec<f64> = s
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .map_err(|e| format!("'{t}': {e}; {expected}"))
            })
            .collect::<Result<_, _>>()?;
        match v.as_slice() {
            [a, b, c, d] if v.iter().all(|x| x.is_finite()) => Ok(PlanChoice::Given(Plan {
                entry: [*a, *b],
                target: [*c, *d],
            })),
            _ => Err(expected.into()),
        }
    }
}

/// Computes the guidance record. `tool` is `(tip, rear)` when detected.
pub fn guidance(
    tool: Option<([f64; 2], [f64; 2])>,
    vill: Option<[[f64; 2]; 2]>,
    plan: Option<Plan>,
    mm_per_px: Option<f64>,
    caution_mm: f64,
) -> GuidanceRecord {
    let mut g = GuidanceRecord::default();
    if let (Some((tip, rear)), Some([p0, p1])) = (tool, vill)
        && let Some(px) = signed_distance_to_line(tip, rear, p0, p1)
    {
        g.tip_to_vill_px = Some(px);
        g.tip_to_vill_mm = mm_per_px.map(|m| px * m);
    }
    g.state = SafetyState::classify(g.tip_to_vill_mm, g.tip_to_vill_px, caution_mm);
    if let (Some((tip, rear)), Some(plan)) = (tool, plan) {
        let a = (tip[1] - rear[1]).atan2(tip[0] - rear[0]);
        let b = (plan.target[1] - plan.entry[1]).atan2(plan.target[0] - plan.entry[0]);
        let mut d = (a - b).to_degrees();
        while d > 180.0 {
            d -= 360.0;
        }
        while d <= -180.0 {
            d += 360.0;
        }
        g.angle_to_plan_deg = Some(d.abs());
        let (dx, dy) = (
            plan.target[0] - plan.entry[0],
            plan.target[1] - plan.entry[1],
        );
        let l = (dx * dx + dy * dy).sqrt();
        if l > 1e-9 {
            let off = ((tip[0] - plan.entry[0]) * dy - (tip[1] - plan.entry[1]) * dx).abs() / l;
            g.offset_to_plan_mm = mm_per_px.map(|m| off * m);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_state_and_plan() {
        let g = guidance(
            Some(([10.0, 0.0], [0.0, 0.0])),
            Some([[20.0, -5.0], [20.0, 5.0]]),
            Some(Plan {
                entry: [0.0, 1.0],
                target: [30.0, 1.0],
            }),
            Some(0.5),
            3.0,
        );
        assert_eq!(g.tip_to_vill_px, Some(10.0));
        assert_eq!(g.tip_to_vill_mm, Some(5.0));
        assert_eq!(g.state, SafetyState::Safe);
        assert!(g.angle_to_plan_deg.unwrap() < 1e-9);
        assert!((g.offset_to_plan_mm.unwrap() - 0.5).abs() < 1e-9);
        let none = guidance(None, None, None, Some(0.5), 3.0);
        assert_eq!(none.state, SafetyState::Unknown);
        assert!(none.angle_to_plan_deg.is_none());
    }

    /// The landmark plan runs from the instrument's entry to the VILL's middle.
    #[test]
    fn plan_from_landmarks_aims_at_the_window_middle() {
        let vill = [[120.0, 80.0], [130.0, 120.0]];
        let p = Plan::from_landmarks(vill, [10.0, 150.0]).expect("a plan");
        assert_eq!(p.entry, [10.0, 150.0]);
        assert_eq!(p.target, [125.0, 100.0]);
        // an instrument on that line is on the plan
        let g = guidance(
            Some(([67.5, 125.0], [10.0, 150.0])),
            Some(vill),
            Some(p),
            Some(0.5),
            3.0,
        );
        assert!(g.angle_to_plan_deg.unwrap() < 1e-9);
        assert!(g.offset_to_plan_mm.unwrap() < 1e-9);
        assert!(Plan::from_landmarks(vill, [125.0, 100.0]).is_none());
    }

    #[test]
    fn plan_choices_parse() {
        assert_eq!("auto".parse::<PlanChoice>(), Ok(PlanChoice::Landmarks));
        assert_eq!(" AUTO ".parse::<PlanChoice>(), Ok(PlanChoice::Landmarks));
        let given = "1, 2,3.5,4".parse::<PlanChoice>();
        let plan = Plan {
            entry: [1.0, 2.0],
            target: [3.5, 4.0],
        };
        assert_eq!(given, Ok(PlanChoice::Given(plan)));
        for bad in ["1,2,3", "1,2,3,inf", "automatic", ""] {
            let e = bad.parse::<PlanChoice>().unwrap_err();
            assert!(e.contains("'auto'"), "{bad}: {e}");
        }
    }
}
