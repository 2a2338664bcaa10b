//! A lumbar phantom (L2-S1) in millimetres, built from analytic solids.
//!
//! Attenuation values are linear coefficients per mm at an effective energy near 60 keV,
//! given as the excess over soft tissue (the torso itself is soft tissue over air), so
//! overlapping solids add up as the tissues they replace.

use crate::shape::{Kind, Solid, V3, rot_x};
use fluoro_core::labels;
use nalgebra::Matrix3;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;
use serde::Serialize;

/// Tissue classes with their attenuation (1/mm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Material {
    /// Soft tissue over air.
    SoftTissue,
    /// Trabecular bone core (negative: less dense than the cortical shell it sits in).
    TrabecularCore,
    /// Bone of the vertebral body shell, pedicles, facets and transverse processes.
    Bone,
    /// Laminae and spinous processes (labelled as lamina).
    Lamina,
    /// Ligamentum flavum.
    Ligament,
    /// Cerebrospinal fluid in the dural sac.
    Csf,
    /// Iodinated epidural contrast.
    Contrast,
    /// Bowel gas.
    Gas,
    /// Stainless steel instruments.
    Metal,
}

impl Material {
    /// Linear attenuation per mm (excess over soft tissue, except soft tissue itself).
    pub fn mu(self) -> f64 {
        match self {
            Self::SoftTissue => 0.020,
            Self::TrabecularCore => -0.014,
            Self::Bone => 0.036,
            Self::Lamina => 0.045,
            Self::Ligament => 0.002,
            Self::Csf => 0.0,
            Self::Contrast => 0.15,
            Self::Gas => -0.0195,
            Self::Metal => 0.9,
        }
    }

    /// The contract label this material contributes to, with the minimum path (mm) a ray
    /// must cross to be labelled.
    pub fn label(self) -> Option<(u8, f64)> {
        match self {
            Self::Lamina => Some((labels::LAMINA, 1.0)),
            Self::Ligament => Some((labels::LIGAMENTUM_FLAVUM, 1.0)),
            Self::Contrast => Some((labels::CONTRAST, 0.5)),
            Self::Metal => Some((labels::INSTRUMENT, 0.5)),
            _ => None,
        }
    }
}

/// One named solid of one material.
#[derive(Clone, Debug, Serialize)]
pub struct Part {
    /// What it is, e.g. `L4 lamina left`.
    pub name: String,
    /// Its material.
    pub material: Material,
    /// Its shape.
    pub solid: Solid,
}

/// The varied anatomical dimensions (drawn from the seed).
#[derive(Clone, Debug, Serialize)]
pub struct Anatomy {
    /// Vertebral spacing centre to centre, mm.
    pub spacing_mm: f64,
    /// Lamina slope in the axial plane, degrees from horizontal.
    pub lamina_slope_deg: f64,
    /// Lamina sagittal tilt (shingling), degrees.
    pub lamina_tilt_deg: f64,
    /// Lamina thickness, mm.
    pub lamina_thickness_mm: f64,
    /// Lamina height, mm.
    pub lamina_height_mm: f64,
    /// Ligamentum flavum thickness per interlaminar space (cranial to caudal), mm.
    pub lf_thickness_mm: Vec<f64>,
}

/// The phantom: parts plus the landmarks the truth is built from.
#[derive(Clone, Debug, Serialize)]
pub struct Phantom {
    /// Level names, cranial to caudal.
    pub levels: Vec<String>,
    /// Dimensions used.
    pub anatomy: Anatomy,
    /// All solids.
    pub parts: Vec<Part>,
    /// Index of the target interlaminar space (between `levels[t]` and `levels[t+1]`).
    pub target_space: usize,
    /// Instrument side: +1 patient left, -1 patient right.
    pub side: f64,
    /// VILL end points in 3D: ventral-caudal corner of the cranial lamina and ventral-cranial
    /// corner of the caudal lamina, instrument side, at the lamina's mid-length.
    pub vill_3d: [V3; 2],
    /// Unit vector along the instrument-side lamina (midline to lateral): the edge-on direction.
    pub lamina_axis: V3,
}

const LEVELS: [&str; 5] = ["L2", "L3", "L4", "L5", "S1"];

fn lamina_axes(side: f64, slope_deg: f64, tilt_deg: f64) -> Matrix3<f64> {
    let (sp, cp) = slope_deg.to_radians().sin_cos();
    let a1 = V3::new(side * cp, 0.0, -sp);
    let (st, ct) = tilt_deg.to_radians().sin_cos();
    let a2 = V3::new(0.0, ct, -st);
    let a2 = (a2 - a1 * a2.dot(&a1)).normalize();
    let mut a3 = a1.cross(&a2).normalize();
    if a3.z < 0.0 {
        a3 = -a3;
    }
    Matrix3::from_columns(&[a1, a2, a3])
}

impl Phantom {
    /// Builds the phantom for `seed`, targeting the space below `levels[target_space]`,
    /// instrument on `side`, with or without epidural contrast.
    pub fn new(seed: u64, target_space: usize, side: f64, contrast: bool) -> Self {
        let mut rng = Pcg64::seed_from_u64(seed ^ 0x05EE_D0F5_017E);
        let mut vary = |mean: f64, spread: f64| mean + spread * (rng.random::<f64>() * 2.0 - 1.0);
        let anatomy = Anatomy {
            spacing_mm: vary(36.0, 2.5),
            lamina_slope_deg: vary(42.0, 5.0),
            lamina_tilt_deg: vary(18.0, 5.0),
            lamina_thickness_mm: vary(6.2, 0.6),
            lamina_height_mm: vary(21.0, 2.0),
            lf_thickness_mm: (0..4).map(|_| vary(5.5, 3.0)).collect(),
        };
        let target_space = target_space.min(3);
        let a = &anatomy;
        let mut parts = Vec::new();
        let mut add = |name: String, material: Material, solid: Solid| {
            parts.push(Part {
                name,
                material,
                solid,
            })
        };
        let id = Matrix3::identity();
        let along_y = Matrix3::from_columns(&[V3::x(), V3::z(), V3::y()]);
        let tilt = rot_x(-a.lamina_tilt_deg);
        // torso and bowel gas
        add(
            "torso".into(),
            Material::SoftTissue,
            Solid::new(
                Kind::Cylinder,
                V3::new(0.0, 0.0, -30.0),
                along_y,
                V3::new(170.0, 120.0, 400.0),
            ),
        );
        for g in 0..3 {
            let c = V3::new(vary(0.0, 60.0), vary(0.0, 60.0), vary(-100.0, 15.0));
            add(
                format!("bowel gas {g}"),
                Material::Gas,
                Solid::new(
                    Kind::Ellipsoid,
                    c,
                    id,
                    V3::new(vary(18.0, 6.0), vary(14.0, 5.0), vary(10.0, 4.0)),
                ),
            );
        }
        // window of the target space sits at y = 0: vertebra k centre
        let lam_offset = -6.0; // laminae sit caudal to the body centre
        let y_of = |k: usize| -> f64 {
            (target_space as f64 + 0.5 - k as f64) * a.spacing_mm - lam_offset
        };
        let h2 = a.lamina_height_mm / 2.0;
        let h3 = a.lamina_thickness_mm / 2.0;
        let h1 = 9.0;
        let mut laminae: Vec<[(V3, Matrix3<f64>); 2]> = Vec::new();
        for (k, name) in LEVELS.iter().enumerate() {
            let y = y_of(k);
            add(
                format!("{name} body shell"),
                Material::Bone,
                Solid::new(
                    Kind::Cylinder,
                    V3::new(0.0, y, -30.0),
                    along_y,
                    V3::new(24.0, 17.0, 13.0),
                ),
            );
            add(
                format!("{name} body core"),
                Material::TrabecularCore,
                Solid::new(
                    Kind::Cylinder,
                    V3::new(0.0, y, -30.0),
                    along_y,
                    V3::new(21.5, 14.5, 12.0),
                ),
            );
            let mut pair = [(V3::zeros(), id), (V3::zeros(), id)];
            for (si, s) in [-1.0f64, 1.0].into_iter().enumerate() {
                let side_name = if s > 0.0 { "left" } else { "right" };
                add(
                    format!("{name} pedicle {side_name}"),
                    Material::Bone,
                    Solid::rod(
                        V3::new(s * 13.0, y + 2.0, -14.0),
                        V3::new(s * 14.0, y + 1.0, 6.0),
                        5.0,
                    ),
                );
                add(
                    format!("{name} transverse process {side_name}"),
                    Material::Bone,
                    Solid::new(
                        Kind::Box,
                        V3::new(s * 34.0, y + 2.0, 2.0),
                        id,
                        V3::new(17.0, 5.0, 3.0),
                    ),
                );
                add(
                    format!("{name} inferior facet {side_name}"),
                    Material::Bone,
                    Solid::new(
                        Kind::Ellipsoid,
                        V3::new(s * 16.0, y - 13.0 + lam_offset, 10.0),
                        id,
                        V3::new(5.0, 7.0, 5.0),
                    ),
                );
                add(
                    format!("{name} superior facet {side_name}"),
                    Material::Bone,
                    Solid::new(
                        Kind::Ellipsoid,
                        V3::new(s * 18.0, y + 13.0 + lam_offset, 8.0),
                        id,
                        V3::new(5.0, 7.0, 5.0),
                    ),
                );
                let axes = lamina_axes(s, a.lamina_slope_deg, a.lamina_tilt_deg);
                let medial_top = V3::new(0.0, y + lam_offset, 18.0);
                let centre = medial_top + axes.column(0) * h1;
                add(
                    format!("{name} lamina {side_name}"),
                    Material::Lamina,
                    Solid::new(Kind::Box, centre, axes, V3::new(h1, h2, h3)),
                );
                pair[si] = (centre, axes);
            }
            add(
                format!("{name} spinous process"),
                Material::Lamina,
                Solid::new(
                    Kind::Box,
                    V3::new(0.0, y + lam_offset - 4.0, 34.0),
                    tilt,
                    V3::new(3.0, 10.0, 14.0),
                ),
            );
            laminae.push(pair);
        }
        // ligamentum flavum in every space on both sides, contrast ventral to it
        let mut vill = [V3::zeros(), V3::zeros()];
        let mut lamina_axis = V3::x();
        for sp in 0..4 {
            let t = a.lf_thickness_mm[sp];
            for (si, s) in [-1.0f64, 1.0].into_iter().enumerate() {
                let (c0, ax0) = laminae[sp][si];
                let (c1, ax1) = laminae[sp + 1][si];
                let p0 = c0 + ax0 * V3::new(0.0, -h2, -h3);
                let p1 = c1 + ax1 * V3::new(0.0, h2, -h3);
                if sp == target_space && (s > 0.0) == (side > 0.0) {
                    vill = [p0, p1];
                    lamina_axis = ax0.column(0).into_owned();
                }
                let e2 = (p0 - p1).normalize();
                let e1 = (ax0.column(0) - e2 * ax0.column(0).dot(&e2)).normalize();
                let mut e3 = e1.cross(&e2);
                if e3.z < 0.0 {
                    e3 = -e3;
                }
                let axes = Matrix3::from_columns(&[e1, e2, e3]);
                let len = (p0 - p1).norm() / 2.0 + 5.0;
                // the ligament hugs the laminae ventrally and fills the window
                let centre = (p0 + p1) / 2.0 + e1 * 0.0 - e3 * (t / 2.0 - h3);
                let side_name = if s > 0.0 { "left" } else { "right" };
                add(
                    format!(
                        "{}-{} ligamentum flavum {side_name}",
                        LEVELS[sp],
                        LEVELS[sp + 1]
                    ),
                    Material::Ligament,
                    Solid::new(Kind::Box, centre, axes, V3::new(h1, len, t / 2.0 + h3)),
                );
                if contrast && sp.abs_diff(target_space) <= 1 && (s > 0.0) == (side > 0.0) {
                    let cc = (p0 + p1) / 2.0 - e3 * (t + 1.0);
                    add(
                        format!(
                            "{}-{} epidural contrast {side_name}",
                            LEVELS[sp],
                            LEVELS[sp + 1]
                        ),
                        Material::Contrast,
                        Solid::new(Kind::Box, cc, axes, V3::new(h1 + 1.0, len + 4.0, 0.9)),
                    );
                }
            }
        }
        add(
            "dural sac".into(),
            Material::Csf,
            Solid::new(
                Kind::Cylinder,
                V3::new(0.0, 0.0, -2.0),
                along_y,
                V3::new(9.0, 7.0, 200.0),
            ),
        );
        Self {
            levels: LEVELS.iter().map(|s| s.to_string()).collect(),
            anatomy,
            parts,
            target_space,
            side,
            vill_3d: vill,
            lamina_axis,
        }
    }

    /// Name of the target interlaminar space, e.g. `L4-L5`.
    pub fn target_name(&self) -> String {
        format!(
            "{}-{}",
            self.levels[self.target_space],
            self.levels[self.target_space + 1]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vill_points_lie_on_the_lamina_surfaces() {
        let p = Phantom::new(7, 2, 1.0, true);
        let [p0, p1] = p.vill_3d;
        // p0 is the caudal edge of the cranial lamina: a point just inside it is inside
        let cranial = p.parts.iter().find(|q| q.name == "L4 lamina left").unwrap();
        let caudal = p.parts.iter().find(|q| q.name == "L5 lamina left").unwrap();
        let into = |q: &Part, pt: V3| q.solid.contains(&(pt + (q.solid.center - pt) * 0.01));
        assert!(into(cranial, p0) && into(caudal, p1));
        // cranial above caudal, and the window between them is 8-20 mm
        assert!(p0.y > p1.y);
        let gap = (p0 - p1).norm();
        assert!((6.0..22.0).contains(&gap), "gap {gap}");
    }

    #[test]
    fn seeds_vary_dimensions() {
        let a = Phantom::new(1, 2, 1.0, false).anatomy;
        let b = Phantom::new(2, 2, 1.0, false).anatomy;
        assert_ne!(a.spacing_mm, b.spacing_mm);
        assert!(a.lf_thickness_mm.iter().all(|t| (2.5..=8.5).contains(t)));
    }
}
