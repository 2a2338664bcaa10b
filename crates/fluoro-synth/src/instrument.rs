//! The mild instruments (6 G portal and a working tool) and their path over the study.

use crate::phantom::{Material, Part};
use crate::shape::{Solid, V3};
use serde::{Deserialize, Serialize};

/// How far the tool goes relative to the VILL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Stops about 6 mm (along its path) dorsal to the VILL.
    #[default]
    Short,
    /// Stops with the tip on the VILL.
    Touch,
    /// Crosses the VILL by 3 mm.
    Cross,
}

impl Scenario {
    /// Final tip position along the path, mm dorsal of the target (negative = past it).
    pub fn final_depth_mm(self) -> f64 {
        match self {
            Self::Short => 6.0,
            Self::Touch => 0.0,
            Self::Cross => -3.0,
        }
    }
}

/// Portal outer radius (6 G, 5.1 mm diameter), mm.
pub const PORTAL_OUTER_R: f64 = 2.55;
/// Portal inner radius (wall 0.45 mm), mm.
pub const PORTAL_INNER_R: f64 = 2.1;
/// Working tool (trocar, rongeur, sculptor) radius, mm.
pub const TOOL_R: f64 = 1.6;

/// The straight path of the instruments and the depth schedule.
#[derive(Clone, Debug, Serialize)]
pub struct InstrumentPath {
    /// Target point (on the VILL, instrument side), mm.
    pub target: V3,
    /// Unit direction into the patient (entry -> target).
    pub direction: V3,
    /// Depth (mm dorsal of the target along the path) where the portal docks on the lamina.
    pub dock_depth_mm: f64,
    /// The scenario.
    pub scenario: Scenario,
    /// Tip depth per frame, mm dorsal of the target; `None` = no instrument in that frame.
    pub depth_mm: Vec<Option<f64>>,
}

fn lerp(a: f64, b: f64, u: f64) -> f64 {
    a + (b - a) * u.clamp(0.0, 1.0)
}

impl InstrumentPath {
    /// A path to `target` entering laterally on `side` (+1 left), `lateral_deg` from the
    /// sagittal plane and `cranial_deg` towards the head, over `frames` frames.
    pub fn new(
        target: V3,
        side: f64,
        lateral_deg: f64,
        cranial_deg: f64,
        scenario: Scenario,
        frames: usize,
    ) -> Self {
        let (sl, cl) = lateral_deg.to_radians().sin_cos();
        let (sc, cc) = cranial_deg.to_radians().sin_cos();
        let direction = V3::new(-side * sl * cc, sc, -cl * cc).normalize();
        let dock = 9.0;
        let fin = scenario.final_depth_mm();
        let depth_mm = (0..frames)
            .map(|n| {
                let u = if frames > 1 {
                    n as f64 / (frames - 1) as f64
                } else {
                    1.0
                };
                if u < 0.08 {
                    None
                } else if u < 0.35 {
                    Some(lerp(55.0, dock, (u - 0.08) / 0.27))
                } else if u < 0.45 {
                    Some(dock)
                } else if u < 0.70 {
                    Some(lerp(dock, fin + 2.0, (u - 0.45) / 0.25))
                } else if u < 0.78 {
                    Some(lerp(fin + 2.0, fin + 4.0, (u - 0.70) / 0.08))
                } else if u < 0.92 {
                    Some(lerp(fin + 4.0, fin, (u - 0.78) / 0.14))
                } else {
                    Some(fin)
                }
            })
            .collect();
        Self {
            target,
            direction,
            dock_depth_mm: dock,
            scenario,
            depth_mm,
        }
    }

    /// The point `depth` mm dorsal of the target along the path.
    pub fn point(&self, depth: f64) -> V3 {
        self.target - self.direction * depth
    }

    /// The tip position of frame `n`, if an instrument is present.
    pub fn tip(&self, n: usize) -> Option<V3> {
        self.depth_mm
            .get(n)
            .copied()
            .flatten()
            .map(|d| self.point(d))
    }

    /// The far (outside) end of the portal, well outside the skin.
    pub fn rear_end(&self) -> V3 {
        self.point(150.0)
    }

    /// Metal solids of frame `n`: the hollow portal (as outer rod plus a negative inner rod)
    /// and the working tool.
    pub fn parts(&self, n: usize) -> Vec<Part> {
        let Some(depth) = self.depth_mm.get(n).copied().flatten() else {
            return Vec::new();
        };
        let portal_tip = depth.max(self.dock_depth_mm);
        let back = self.rear_end();
        let mut parts = vec![
            Part {
                name: "portal".into(),
                material: Material::Metal,
                solid: Solid::rod(back, self.point(portal_tip), PORTAL_OUTER_R),
            },
            Part {
                name: "portal lumen".into(),
                material: Material::Metal,
                solid: Solid::rod(back, self.point(portal_tip - 0.01), PORTAL_INNER_R),
            },
        ];
        // the tool fills the lumen from 40 mm behind the portal tip to the tip itself
        parts.push(Part {
            name: "tool".into(),
            material: Material::Metal,
            solid: Solid::rod(self.point(portal_tip + 40.0), self.point(depth), TOOL_R),
        });
        parts
    }
}

/// True for the negative (subtracted) lumen part.
pub fn is_lumen(p: &Part) -> bool {
    p.name == "portal lumen"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_has_absence_pause_pullback_and_final_depth() {
        let p = InstrumentPath::new(V3::zeros(), 1.0, 25.0, 20.0, Scenario::Cross, 100);
        assert!(p.depth_mm[0].is_none());
        let d: Vec<f64> = p.depth_mm.iter().flatten().copied().collect();
        assert_eq!(*d.last().unwrap(), -3.0);
        assert!(d.windows(2).any(|w| w[1] > w[0]), "no pull-back");
        assert!(d.windows(2).any(|w| w[1] == w[0]), "no pause");
        // path goes ventral (-z) and medial (towards x = 0 from +x side)
        assert!(p.direction.z < 0.0 && p.direction.x < 0.0);
    }
}
