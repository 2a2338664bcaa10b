//! Connected components of a binary mask, with the moments a line detector needs.

use fluoro_core::Frame;

/// One 8-connected component.
#[derive(Clone, Debug)]
pub struct Component {
    /// Pixel coordinates `(x, y)`.
    pub pixels: Vec<(u32, u32)>,
}

impl Component {
    /// Principal axis of the (optionally weighted) pixels: centroid, unit direction,
    /// standard deviation along and across the axis.
    pub fn principal_axis(&self, weight: impl Fn(u32, u32) -> f64) -> Option<Axis> {
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for &(x, y) in &self.pixels {
            let w = weight(x, y);
            sw += w;
            sx += w * f64::from(x);
            sy += w * f64::from(y);
        }
        if sw <= 0.0 {
            return None;
        }
        let (cx, cy) = (sx / sw, sy / sw);
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for &(x, y) in &self.pixels {
            let w = weight(x, y);
            let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
            sxx += w * dx * dx;
            syy += w * dy * dy;
            sxy += w * dx * dy;
        }
        let (sxx, syy, sxy) = (sxx / sw, syy / sw, sxy / sw);
        let tr = sxx + syy;
        let det = sxx * syy - sxy * sxy;
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
        let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
        Some(Axis {
            centre: [cx, cy],
            dir: [angle.cos(), angle.sin()],
            sd_along: l1.sqrt(),
            sd_across: l2.sqrt(),
        })
    }
}

/// A principal axis.
#[derive(Clone, Copy, Debug)]
pub struct Axis {
    /// Weighted centroid `[x, y]`.
    pub centre: [f64; 2],
    /// Unit direction.
    pub dir: [f64; 2],
    /// Standard deviation along the axis, px.
    pub sd_along: f64,
    /// Standard deviation across the axis, px.
    pub sd_across: f64,
}

/// Labels the 8-connected components of `mask != 0`, returning those with at least
/// `min_pixels` pixels. `labels` is scratch (resized to the mask).
pub fn components(mask: &Frame<u8>, min_pixels: usize, labels: &mut Vec<u32>) -> Vec<Component> {
    let (w, h) = mask.size();
    labels.clear();
    labels.resize(w * h, 0);
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut next = 1u32;
    for y0 in 0..h {
        for x0 in 0..w {
            if mask.get(x0, y0) == 0 || labels[y0 * w + x0] != 0 {
                continue;
            }
            let mut pixels = Vec::new();
            labels[y0 * w + x0] = next;
            stack.push((x0 as u32, y0 as u32));
            while let Some((x, y)) = stack.pop() {
                pixels.push((x, y));
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                        if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                            continue;
                        }
                        let i = ny as usize * w + nx as usize;
                        if mask.data()[i] != 0 && labels[i] == 0 {
                            labels[i] = next;
                            stack.push((nx as u32, ny as u32));
                        }
                    }
                }
            }
            next += 1;
            if pixels.len() >= min_pixels {
                out.push(Component { pixels });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_diagonal_line_and_its_axis() {
        let m = Frame::from_fn(50, 50, |x, y| {
            u8::from((x as i64 - y as i64).abs() <= 1 && x > 5 && x < 45)
        });
        let c = components(&m, 5, &mut Vec::new());
        assert_eq!(c.len(), 1);
        let a = c[0].principal_axis(|_, _| 1.0).unwrap();
        assert!(
            (a.dir[0].abs() - a.dir[1].abs()).abs() < 0.02,
            "{:?}",
            a.dir
        );
        assert!(a.sd_along > 10.0 && a.sd_across < 1.0);
    }
}
