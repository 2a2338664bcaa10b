//! Per-frame result records: one line of `frames.jsonl` (see the output contract).
//!
//! Fields that could not be determined are `null`, never omitted; only `timing` is absent,
//! and only from ground truth.

use serde::{Deserialize, Serialize};

/// Default caution margin in mm.
pub const DEFAULT_CAUTION_MM: f64 = 3.0;

/// One line of `frames.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Frame index from 0.
    pub frame: usize,
    /// Time from the first frame, ms.
    pub time_ms: f64,
    /// The instrument.
    pub tool: ToolRecord,
    /// The ventral interlaminar line; `null` where it is not meaningful or not found.
    pub vill: Option<VillRecord>,
    /// Tip-to-VILL distance, safety state and plan deviation.
    pub guidance: GuidanceRecord,
    /// Processing time; absent from ground truth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingRecord>,
}

/// The instrument as seen in one frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolRecord {
    /// True when the tip lies inside the visible field.
    pub detected: bool,
    /// Distal end `[x, y]`, px.
    pub tip: Option<[f64; 2]>,
    /// Where the visible instrument leaves the visible field or ends, `[x, y]`, px.
    pub rear: Option<[f64; 2]>,
    /// `atan2(dy, dx)` of rear -> tip, degrees in (-180, 180].
    pub axis_deg: Option<f64>,
    /// Detector confidence in [0, 1] (1 in ground truth).
    pub confidence: Option<f64>,
}

/// The VILL as a line through two points, px.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VillRecord {
    /// First point `[x, y]` (the cranial lamina's ventral-caudal corner).
    pub p0: [f64; 2],
    /// Second point `[x, y]` (the caudal lamina's ventral-cranial corner).
    pub p1: [f64; 2],
}

/// The guidance numbers for one frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuidanceRecord {
    /// Signed tip-to-VILL distance, mm; positive on the dorsal (safe) side.
    pub tip_to_vill_mm: Option<f64>,
    /// The same distance in px.
    pub tip_to_vill_px: Option<f64>,
    /// The safety state.
    pub state: SafetyState,
    /// Angle between the instrument axis and the plan, degrees.
    pub angle_to_plan_deg: Option<f64>,
    /// Perpendicular distance of the tip from the planned line, mm.
    pub offset_to_plan_mm: Option<f64>,
}

/// Per-frame processing time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimingRecord {
    /// Milliseconds from frame arrival to overlay.
    pub total_ms: f64,
}

/// The contract's safety states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SafetyState {
    /// `tip_to_vill_mm > caution_mm`.
    Safe,
    /// `0 < tip_to_vill_mm <= caution_mm`.
    Caution,
    /// `tip_to_vill_mm <= 0`: reached or crossed the VILL.
    Stop,
    /// Tip or VILL not found in this frame.
    #[default]
    Unknown,
}

impl SafetyState {
    /// All states, in a fixed order (for confusion matrices).
    pub const ALL: [SafetyState; 4] = [Self::Safe, Self::Caution, Self::Stop, Self::Unknown];

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Caution => "caution",
            Self::Stop => "stop",
            Self::Unknown => "unknown",
        }
    }

    /// Classifies a signed distance.
    ///
    /// With a millimetre scale the contract's thresholds apply. Without one (`distance_mm` is
    /// `None` but `distance_px` is known) the margin cannot be measured, so the state is never
    /// `safe`: `caution` on the dorsal side, `stop` at or past the line.
    pub fn classify(distance_mm: Option<f64>, distance_px: Option<f64>, caution_mm: f64) -> Self {
        match (distance_mm, distance_px) {
            (Some(d), _) if d.is_finite() => {
                if d <= 0.0 {
                    Self::Stop
                } else if d <= caution_mm {
                    Self::Caution
                } else {
                    Self::Safe
                }
            }
            (_, Some(px)) if px.is_finite() => {
                if px <= 0.0 {
                    Self::Stop
                } else {
                    Self::Caution
                }
            }
            _ => Self::Unknown,
        }
    }
}

/// Signed distance, px, from `tip` to the infinite line through `p0`,`p1`: positive when
/// `tip` is on the same side as `rear` (the dorsal, safe side). `None` for a degenerate line.
///
/// When `rear` lies on the line itself the side cannot be told; the distance is then
/// returned as negative (conservative).
pub fn signed_distance_to_line(
    tip: [f64; 2],
    rear: [f64; 2],
    p0: [f64; 2],
    p1: [f64; 2],
) -> Option<f64> {
    let (dx, dy) = (p1[0] - p0[0], p1[1] - p0[1]);
    let len = (dx * dx + dy * dy).sqrt();
    if len.is_nan() || len <= 1e-9 {
        return None;
    }
    let side = |p: [f64; 2]| (dx * (p[1] - p0[1]) - dy * (p[0] - p0[0])) / len;
    let d_tip = side(tip);
    let d_rear = side(rear);
    if d_rear == 0.0 {
        return Some(-d_tip.abs());
    }
    Some(d_tip * d_rear.signum())
}

/// `atan2(dy, dx)` of the direction `from -> to`, degrees in (-180, 180].
pub fn axis_deg(from: [f64; 2], to: [f64; 2]) -> f64 {
    let a = (to[1] - from[1]).atan2(to[0] - from[0]).to_degrees();
    if a <= -180.0 { a + 360.0 } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_contract() {
        assert_eq!(
            SafetyState::classify(Some(4.0), Some(20.0), 3.0),
            SafetyState::Safe
        );
        assert_eq!(
            SafetyState::classify(Some(3.0), Some(15.0), 3.0),
            SafetyState::Caution
        );
        assert_eq!(
            SafetyState::classify(Some(0.0), Some(0.0), 3.0),
            SafetyState::Stop
        );
        assert_eq!(
            SafetyState::classify(Some(-1.0), Some(-5.0), 3.0),
            SafetyState::Stop
        );
        assert_eq!(SafetyState::classify(None, None, 3.0), SafetyState::Unknown);
        assert_eq!(
            SafetyState::classify(None, Some(50.0), 3.0),
            SafetyState::Caution
        );
    }

    #[test]
    fn sign_follows_the_rear_end() {
        // Vertical line x = 10; rear at x = 0 (left); tip left of line = positive.
        let d = signed_distance_to_line([7.0, 5.0], [0.0, 5.0], [10.0, 0.0], [10.0, 20.0]).unwrap();
        assert!((d - 3.0).abs() < 1e-12);
        let d =
            signed_distance_to_line([12.0, 5.0], [0.0, 5.0], [10.0, 20.0], [10.0, 0.0]).unwrap();
        assert!((d + 2.0).abs() < 1e-12);
        assert!(signed_distance_to_line([1.0, 1.0], [0.0, 0.0], [3.0, 3.0], [3.0, 3.0]).is_none());
    }

    #[test]
    fn axis_range() {
        assert_eq!(axis_deg([0.0, 0.0], [-1.0, 0.0]), 180.0);
        assert!((axis_deg([0.0, 0.0], [1.0, 1.0]) - 45.0).abs() < 1e-12);
    }

    #[test]
    fn nulls_are_written_not_omitted() {
        let r = FrameRecord {
            frame: 0,
            time_ms: 0.0,
            tool: ToolRecord::default(),
            vill: None,
            guidance: GuidanceRecord::default(),
            timing: None,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(s.contains("\"vill\":null"));
        assert!(s.contains("\"tip\":null"));
        assert!(s.contains("\"state\":\"unknown\""));
        assert!(!s.contains("timing"));
        let back: FrameRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
    }
}
