//! Connected components of a binary mask, with the moments a line detector needs. The
//! labelling keeps its buffers between frames ([`Components`]), so the steady state of the
//! live loop does not allocate.

use fluoro_core::Frame;

/// One 8-connected component (a view into [`Components`] or any pixel list).
#[derive(Clone, Copy, Debug)]
pub struct Component<'a> {
    /// Pixel coordinates `(x, y)`.
    pub pixels: &'a [(u32, u32)],
}

impl Component<'_> {
    /// Principal axis of the (optionally weighted) pixels: centroid, unit direction,
    /// standard deviation along and across the axis.
    pub fn principal_axis(&self, weight: impl Fn(u32, u32) -> f64) -> Option<Axis> {
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for &(x, y) in self.pixels {
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
        for &(x, y) in self.pixels {
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

/// The 8-connected components of a mask, with the labelling buffers kept for the next call.
#[derive(Debug, Default)]
pub struct Components {
    labels: Vec<u32>,
    stack: Vec<(u32, u32)>,
    pixels: Vec<(u32, u32)>,
    spans: Vec<(usize, usize)>,
}

impl Components {
    /// Labels the components of `mask != 0`, keeping those with at least `min_pixels`
    /// pixels (they replace the previous call's).
    pub fn label(&mut self, mask: &Frame<u8>, min_pixels: usize) {
        let (w, h) = mask.size();
        let Self {
            labels,
            stack,
            pixels,
            spans,
        } = self;
        labels.clear();
        labels.resize(w * h, 0);
        pixels.clear();
        spans.clear();
        let mut next = 1u32;
        for y0 in 0..h {
            for x0 in 0..w {
                if mask.get(x0, y0) == 0 || labels[y0 * w + x0] != 0 {
                    continue;
                }
                let start = pixels.len();
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
                if pixels.len() - start >= min_pixels {
                    spans.push((start, pixels.len()));
                } else {
                    pixels.truncate(start);
                }
            }
        }
    }

    /// Number of components kept.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when none was kept.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Component `i`.
    pub fn get(&self, i: usize) -> Component<'_> {
        let (a, b) = self.spans[i];
        Component {
            pixels: &self.pixels[a..b],
        }
    }

    /// The components in labelling order.
    pub fn iter(&self) -> impl Iterator<Item = Component<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_diagonal_line_and_its_axis() {
        let m = Frame::from_fn(50, 50, |x, y| {
            u8::from((x as i64 - y as i64).abs() <= 1 && x > 5 && x < 45)
        });
        let mut c = Components::default();
        // a second blob below the size limit is dropped, and a second call reuses the buffers
        let mut m2 = m.clone();
        m2.set(48, 2, 1);
        c.label(&m2, 5);
        c.label(&m, 5);
        assert_eq!(c.len(), 1);
        let a = c.get(0).principal_axis(|_, _| 1.0).unwrap();
        assert!(
            (a.dir[0].abs() - a.dir[1].abs()).abs() < 0.02,
            "{:?}",
            a.dir
        );
        assert!(a.sd_along > 10.0 && a.sd_across < 1.0);
    }
}
