//! Analytic solids and exact ray path lengths through them.
//!
//! Every solid is an affine image of a unit shape (sphere, cylinder, cube) in a local frame,
//! so a ray is transformed into that frame and intersected exactly: path lengths are exact,
//! not sampled.

use nalgebra::{Matrix3, Vector3};
use serde::Serialize;

/// 3-vector in patient millimetres.
pub type V3 = Vector3<f64>;

/// The unit shape a solid is made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// x^2 + y^2 + z^2 <= 1.
    Ellipsoid,
    /// x^2 + y^2 <= 1, |z| <= 1 (axis along local z).
    Cylinder,
    /// |x|, |y|, |z| <= 1.
    Box,
}

/// A solid: `kind` scaled by `half` along the orthonormal `axes` (columns), centred at `center`.
#[derive(Clone, Debug, Serialize)]
pub struct Solid {
    /// Unit shape.
    pub kind: Kind,
    /// Centre, mm.
    pub center: V3,
    /// Local axes as matrix columns (orthonormal).
    #[serde(serialize_with = "ser_axes")]
    pub axes: Matrix3<f64>,
    /// Half extents (radii) along the local axes, mm.
    pub half: V3,
}

fn ser_axes<S: serde::Serializer>(m: &Matrix3<f64>, s: S) -> Result<S::Ok, S::Error> {
    let cols: Vec<[f64; 3]> = (0..3).map(|c| [m[(0, c)], m[(1, c)], m[(2, c)]]).collect();
    cols.serialize(s)
}

impl Solid {
    /// A solid with the given unit shape, centre, axes (columns) and half extents.
    pub fn new(kind: Kind, center: V3, axes: Matrix3<f64>, half: V3) -> Self {
        Self {
            kind,
            center,
            axes,
            half,
        }
    }

    /// A cylinder of `radius` from `a` to `b`.
    pub fn rod(a: V3, b: V3, radius: f64) -> Self {
        let axis = b - a;
        let len = axis.norm().max(1e-9);
        let z = axis / len;
        let helper = if z.x.abs() < 0.9 { V3::x() } else { V3::y() };
        let x = helper.cross(&z).normalize();
        let y = z.cross(&x);
        Self::new(
            Kind::Cylinder,
            (a + b) / 2.0,
            Matrix3::from_columns(&[x, y, z]),
            V3::new(radius, radius, len / 2.0),
        )
    }

    /// The parameter interval `[t0, t1]` (in units of `dir`'s length) where the ray
    /// `origin + t dir` is inside, if any.
    pub fn interval(&self, origin: &V3, dir: &V3) -> Option<(f64, f64)> {
        // into unit space: p' = A^T (p - c) / half
        let o = self
            .axes
            .tr_mul(&(origin - self.center))
            .component_div(&self.half);
        let d = self.axes.tr_mul(dir).component_div(&self.half);
        match self.kind {
            Kind::Ellipsoid => quadratic(d.dot(&d), 2.0 * o.dot(&d), o.dot(&o) - 1.0),
            Kind::Cylinder => {
                let (mut t0, mut t1) = slab(o.z, d.z)?;
                let a = d.x * d.x + d.y * d.y;
                if a < 1e-15 {
                    if o.x * o.x + o.y * o.y > 1.0 {
                        return None;
                    }
                } else {
                    let (q0, q1) = quadratic(
                        a,
                        2.0 * (o.x * d.x + o.y * d.y),
                        o.x * o.x + o.y * o.y - 1.0,
                    )?;
                    t0 = t0.max(q0);
                    t1 = t1.min(q1);
                }
                (t1 > t0).then_some((t0, t1))
            }
            Kind::Box => {
                let (ax, bx) = slab(o.x, d.x)?;
                let (ay, by) = slab(o.y, d.y)?;
                let (az, bz) = slab(o.z, d.z)?;
                let t0 = ax.max(ay).max(az);
                let t1 = bx.min(by).min(bz);
                (t1 > t0).then_some((t0, t1))
            }
        }
    }

    /// Length (mm) of the part of the unit-speed ray inside the solid.
    pub fn path_length(&self, origin: &V3, unit_dir: &V3) -> f64 {
        self.interval(origin, unit_dir)
            .map(|(a, b)| (b - a).max(0.0))
            .unwrap_or(0.0)
    }

    /// True when `p` is inside.
    pub fn contains(&self, p: &V3) -> bool {
        let q = self
            .axes
            .tr_mul(&(p - self.center))
            .component_div(&self.half);
        match self.kind {
            Kind::Ellipsoid => q.norm_squared() <= 1.0,
            Kind::Cylinder => q.x * q.x + q.y * q.y <= 1.0 && q.z.abs() <= 1.0,
            Kind::Box => q.x.abs() <= 1.0 && q.y.abs() <= 1.0 && q.z.abs() <= 1.0,
        }
    }

    /// The 8 corners of a box enclosing the solid (for projected bounding boxes).
    pub fn bounding_corners(&self) -> [V3; 8] {
        let mut out = [V3::zeros(); 8];
        for (i, c) in out.iter_mut().enumerate() {
            let s = V3::new(
                if i & 1 == 0 { -1.0 } else { 1.0 },
                if i & 2 == 0 { -1.0 } else { 1.0 },
                if i & 4 == 0 { -1.0 } else { 1.0 },
            );
            *c = self.center + self.axes * s.component_mul(&self.half);
        }
        out
    }
}

/// Interval where `|o + t d| <= 1` on one axis.
fn slab(o: f64, d: f64) -> Option<(f64, f64)> {
    if d.abs() < 1e-15 {
        return (o.abs() <= 1.0).then_some((f64::NEG_INFINITY, f64::INFINITY));
    }
    let a = (-1.0 - o) / d;
    let b = (1.0 - o) / d;
    Some((a.min(b), a.max(b)))
}

/// Roots of `a t^2 + b t + c = 0` as an interval where the quadratic is <= 0.
fn quadratic(a: f64, b: f64, c: f64) -> Option<(f64, f64)> {
    let disc = b * b - 4.0 * a * c;
    if disc <= 0.0 || a <= 0.0 {
        return None;
    }
    let s = disc.sqrt();
    // numerically stable form
    let q = -0.5 * (b + b.signum() * s);
    let (r0, r1) = if q == 0.0 {
        (-s / (2.0 * a), s / (2.0 * a))
    } else {
        (q / a, c / q)
    };
    Some((r0.min(r1), r0.max(r1)))
}

/// Rotation matrix about the x axis by `deg`.
pub fn rot_x(deg: f64) -> Matrix3<f64> {
    let (s, c) = deg.to_radians().sin_cos();
    Matrix3::new(1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c)
}

/// Rotation matrix about the y axis by `deg`.
pub fn rot_y(deg: f64) -> Matrix3<f64> {
    let (s, c) = deg.to_radians().sin_cos();
    Matrix3::new(c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dense numerical integration of the inside indicator along the ray.
    fn numeric(s: &Solid, o: &V3, d: &V3) -> f64 {
        let n = 200_000;
        let (a, b) = (-200.0, 200.0);
        let h = (b - a) / n as f64;
        (0..n)
            .filter(|&i| s.contains(&(o + d * (a + (i as f64 + 0.5) * h))))
            .count() as f64
            * h
    }

    #[test]
    fn exact_lengths_match_dense_integration() {
        let axes = rot_x(25.0) * rot_y(-40.0);
        let solids = [
            Solid::new(
                Kind::Ellipsoid,
                V3::new(3.0, -2.0, 1.0),
                axes,
                V3::new(20.0, 12.0, 7.0),
            ),
            Solid::new(
                Kind::Cylinder,
                V3::new(-4.0, 5.0, 2.0),
                axes,
                V3::new(9.0, 6.0, 30.0),
            ),
            Solid::new(
                Kind::Box,
                V3::new(1.0, 1.0, -3.0),
                axes,
                V3::new(15.0, 4.0, 9.0),
            ),
            Solid::rod(V3::new(-30.0, -10.0, 5.0), V3::new(25.0, 12.0, -8.0), 2.55),
        ];
        let rays = [
            (V3::new(-100.0, 0.5, 0.3), V3::new(1.0, 0.02, 0.05)),
            (V3::new(2.0, -100.0, 1.0), V3::new(0.05, 1.0, -0.03)),
            (V3::new(0.0, 3.0, -100.0), V3::new(-0.1, 0.1, 1.0)),
            (V3::new(-60.0, -60.0, -60.0), V3::new(1.0, 1.0, 1.0)),
        ];
        for s in &solids {
            for (o, d) in &rays {
                let d = d.normalize();
                let exact = s.path_length(o, &d);
                let num = numeric(s, o, &d);
                assert!(
                    (exact - num).abs() < 0.01,
                    "{:?}: exact {exact} numeric {num}",
                    s.kind
                );
            }
        }
    }

    #[test]
    fn miss_gives_zero() {
        let s = Solid::new(
            Kind::Box,
            V3::zeros(),
            Matrix3::identity(),
            V3::new(1.0, 1.0, 1.0),
        );
        assert_eq!(s.path_length(&V3::new(0.0, 5.0, -10.0), &V3::z()), 0.0);
        assert!((s.path_length(&V3::new(0.0, 0.0, -10.0), &V3::z()) - 2.0).abs() < 1e-12);
    }
}
