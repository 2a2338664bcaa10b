//! A region's corner as the meeting point of its two faces.
//!
//! The extreme point of a dark region in a fixed direction is a biased corner: smoothing
//! rounds the corner, and when a face is nearly perpendicular to the search direction (the
//! lamina's faces follow the anatomy, the direction follows the instrument) the extreme
//! point slides along that face. Fitting a straight line to each face's boundary pixels
//! near the extreme point and intersecting the two gives the vertex itself.

use crate::components::Component;

/// The boundary pixels near a corner, sorted into its two faces by their outward normal.
#[derive(Debug, Default)]
pub struct CornerFit {
    faces: [Vec<(u32, u32)>; 2],
}

/// A line by total least squares (the points' principal axis): centroid and unit
/// direction, or `None` when the points are too few or do not spread along a line.
fn fit_line(pts: &[(u32, u32)], min_len: f64) -> Option<([f64; 2], [f64; 2])> {
    if pts.len() < 3 {
        return None;
    }
    let axis = Component { pixels: pts }.principal_axis(|_, _| 1.0)?;
    let ([cx, cy], dir) = (axis.centre, axis.dir);
    // the points must spread along the line (a face, not a blob)
    let (lo, hi) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(x, y)| {
        let t = (f64::from(x) - cx) * dir[0] + (f64::from(y) - cy) * dir[1];
        (lo.min(t), hi.max(t))
    });
    (hi - lo >= min_len).then_some(([cx, cy], dir))
}

impl CornerFit {
    /// The vertex where the region's two faces meet near `extreme`.
    ///
    /// `member(x, y)` says whether a pixel belongs to the region, `dark(x, y)` is the
    /// darkness that falls outward across its boundary; `pixels` are the region's pixels.
    /// `normals` are the faces' expected outward normals (unit vectors): a boundary pixel
    /// within `radius` of `extreme` joins the face whose normal is within 45 degrees of its
    /// own. Each face needs boundary pixels spread over `min_len`; the faces must meet at
    /// more than 30 degrees, and the vertex must lie within `radius` of `extreme`.
    /// Otherwise `None` (the caller keeps the extreme point).
    #[allow(clippy::too_many_arguments)]
    pub fn vertex(
        &mut self,
        pixels: impl Iterator<Item = (i64, i64)>,
        member: impl Fn(i64, i64) -> bool,
        dark: impl Fn(i64, i64) -> f32,
        extreme: [f64; 2],
        normals: [[f64; 2]; 2],
        radius: f64,
        min_len: f64,
    ) -> Option<[f64; 2]> {
        for f in &mut self.faces {
            f.clear();
        }
        for (x, y) in pixels {
            // region pixels have non-negative coordinates; anything else is not one
            let (Ok(ux), Ok(uy)) = (u32::try_from(x), u32::try_from(y)) else {
                continue;
            };
            let p = [x as f64, y as f64];
            if (p[0] - extreme[0]).hypot(p[1] - extreme[1]) > radius {
                continue;
            }
            let edge =
                !(member(x - 1, y) && member(x + 1, y) && member(x, y - 1) && member(x, y + 1));
            if !edge {
                continue;
            }
            // outward normal: the way darkness falls
            let g = [
                dark(x - 1, y) - dark(x + 1, y),
                dark(x, y - 1) - dark(x, y + 1),
            ];
            let gl = f64::from(g[0]).hypot(f64::from(g[1]));
            if gl <= 0.0 {
                continue;
            }
            let n = [f64::from(g[0]) / gl, f64::from(g[1]) / gl];
            for (face, m) in self.faces.iter_mut().zip(normals) {
                if n[0] * m[0] + n[1] * m[1] > std::f64::consts::FRAC_1_SQRT_2 {
                    face.push((ux, uy));
                }
            }
        }
        let (a, da) = fit_line(&self.faces[0], min_len)?;
        let (b, db) = fit_line(&self.faces[1], min_len)?;
        let cross = da[0] * db[1] - da[1] * db[0];
        if cross.abs() < 0.5 {
            return None;
        }
        // a + s da = b + t db
        let s = ((b[0] - a[0]) * db[1] - (b[1] - a[1]) * db[0]) / cross;
        let v = [a[0] + s * da[0], a[1] + s * da[1]];
        ((v[0] - extreme[0]).hypot(v[1] - extreme[1]) <= radius).then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rounded_sheared_corner_gives_its_vertex() {
        // a parallelogram with its lower-right vertex at (40, 30): right face x = 40 + (y - 30)/4
        // (leaning), bottom face y = 30; the corner cut off by a chamfer x + y = 66
        let inside = |x: i64, y: i64| {
            let (x, y) = (x as f64, y as f64);
            (0.0..=30.0).contains(&y) && x >= 0.0 && x <= 40.0 + (y - 30.0) / 4.0 && x + y <= 66.0
        };
        let dark = |x: i64, y: i64| if inside(x, y) { 1.0f32 } else { 0.0 };
        let pixels = (0..=45)
            .flat_map(|y| (0..=45).map(move |x| (x, y)))
            .filter(|&(x, y)| inside(x, y));
        let mut fit = CornerFit::default();
        let v = fit
            .vertex(
                pixels,
                inside,
                dark,
                [38.0, 28.0],
                [[1.0, 0.0], [0.0, 1.0]],
                15.0,
                4.0,
            )
            .expect("a vertex");
        assert!(
            (v[0] - 40.0).abs() < 1.0 && (v[1] - 30.0).abs() < 1.0,
            "{v:?}"
        );
    }
}
