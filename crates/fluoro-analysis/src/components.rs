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
///
/// Labelling works on runs: each row's runs of set pixels are joined to the overlapping runs
/// of the row above (8-connectivity: overlap after widening by one pixel) in a union-find
/// whose root is always the set's first run, so components come out in raster order of
/// their first pixel and their pixels in raster order. No label image is written.
#[derive(Debug, Default)]
pub struct Components {
    /// `(y, x0, x1)` per run, raster order.
    runs: Vec<(u32, u32, u32)>,
    parent: Vec<u32>,
    /// Pixels per set (at its root), then the output component of each root (or `u32::MAX`).
    count: Vec<u32>,
    /// The kept components' pixels, each component's together (`spans`); entries past the
    /// last span are left from earlier calls.
    pixels: Vec<(u32, u32)>,
    spans: Vec<(usize, usize)>,
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        let p = parent[i as usize];
        parent[i as usize] = parent[p as usize];
        i = p;
    }
    i
}

impl Components {
    /// Labels the components of `mask != 0`, keeping those with at least `min_pixels`
    /// pixels (they replace the previous call's).
    pub fn label(&mut self, mask: &Frame<u8>, min_pixels: usize) {
        let (w, h) = mask.size();
        let Self {
            runs,
            parent,
            count,
            pixels,
            spans,
        } = self;
        runs.clear();
        parent.clear();
        spans.clear();
        let mut prev = 0..0;
        for y in 0..h {
            let row = mask.row(y);
            let start = runs.len();
            let mut x = next_set(row, 0);
            while x < w {
                let x0 = x;
                x = next_clear(row, x);
                parent.push(runs.len() as u32);
                runs.push((y as u32, x0 as u32, x as u32));
                x = next_set(row, x);
            }
            // join with the row above: runs [a0, a1) and [b0, b1) touch when a0 <= b1 and b0 <= a1
            let mut p = prev.start;
            for r in start..runs.len() {
                let (_, b0, b1) = runs[r];
                while p < prev.end && runs[p].2 < b0 {
                    p += 1;
                }
                let mut q = p;
                while q < prev.end && runs[q].1 <= b1 {
                    let (ra, rb) = (find(parent, q as u32), find(parent, r as u32));
                    if ra != rb {
                        let (lo, hi) = (ra.min(rb), ra.max(rb));
                        parent[hi as usize] = lo;
                    }
                    q += 1;
                }
            }
            prev = start..runs.len();
        }
        // pixels per root, then which roots are kept, in order of their first run
        count.clear();
        count.resize(runs.len(), 0);
        for (r, &(_, x0, x1)) in runs.iter().enumerate() {
            let root = find(parent, r as u32) as usize;
            count[root] += x1 - x0;
        }
        let mut total = 0usize;
        for r in 0..runs.len() {
            if parent[r] as usize == r && count[r] as usize >= min_pixels {
                let n = count[r] as usize;
                spans.push((total, total + n));
                count[r] = spans.len() as u32 - 1;
                total += n;
            } else if parent[r] as usize == r {
                count[r] = u32::MAX;
            }
        }
        // grown, never cleared: every pixel a span reads is written below (zeroing the
        // whole list every frame was about 0.3% of a frame's CPU time)
        if pixels.len() < total {
            pixels.resize(total, (0, 0));
        }
        // fill, using each span's start as its write cursor
        for (r, &(y, x0, x1)) in runs.iter().enumerate() {
            let root = find(parent, r as u32) as usize;
            let k = count[root];
            if k == u32::MAX {
                continue;
            }
            let span = &mut spans[k as usize];
            for x in x0..x1 {
                pixels[span.0] = (x, y);
                span.0 += 1;
            }
        }
        // every cursor ran to its span's end; spans are contiguous, so restore the starts
        let mut start = 0;
        for s in spans.iter_mut() {
            s.0 = start;
            start = s.1;
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

/// The first non-zero byte of `row` at or after `x` (`row.len()` if none). Binary maps are
/// mostly zeros: 32 bytes are skipped at a time (four 8-byte words or'd, a few vector
/// instructions), then 8.
fn next_set(row: &[u8], mut x: usize) -> usize {
    let word = |x: usize| u64::from_le_bytes(row[x..x + 8].try_into().expect("8 bytes"));
    while x + 32 <= row.len() && (word(x) | word(x + 8) | word(x + 16) | word(x + 24)) == 0 {
        x += 32;
    }
    while x + 8 <= row.len() {
        let chunk = word(x);
        if chunk != 0 {
            return x + (chunk.trailing_zeros() / 8) as usize;
        }
        x += 8;
    }
    while x < row.len() && row[x] == 0 {
        x += 1;
    }
    x
}

/// The first zero byte of `row` at or after `x` (`row.len()` if none): the end of a run
/// of set bytes, found 8 bytes at a time (a word's first zero byte by the carry trick).
fn next_clear(row: &[u8], mut x: usize) -> usize {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while x + 8 <= row.len() {
        let v = u64::from_le_bytes(row[x..x + 8].try_into().expect("8 bytes"));
        // the lowest zero byte gets its high bit set (bytes above it may too: only the
        // lowest is read)
        let zero = v.wrapping_sub(LOW) & !v & HIGH;
        if zero != 0 {
            return x + (zero.trailing_zeros() / 8) as usize;
        }
        x += 8;
    }
    while x < row.len() && row[x] != 0 {
        x += 1;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise searches find what a byte-by-byte search finds, from every start, on
    /// rows of every length around the 8- and 32-byte steps with set bytes of any value.
    #[test]
    fn searches_match_a_plain_scan() {
        let mut s = 99u64;
        for len in 0..80 {
            for density in [1u64, 4, 16, 64] {
                let row: Vec<u8> = (0..len)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        let v = (s >> 33) as u8;
                        if (s >> 40).is_multiple_of(density) {
                            v | 1
                        } else {
                            0
                        }
                    })
                    .collect();
                for x in 0..=len {
                    let set = (x..len).find(|&i| row[i] != 0).unwrap_or(len);
                    let clear = (x..len).find(|&i| row[i] == 0).unwrap_or(len);
                    assert_eq!(next_set(&row, x), set, "next set, length {len} from {x}");
                    assert_eq!(
                        next_clear(&row, x),
                        clear,
                        "next clear, length {len} from {x}"
                    );
                }
            }
        }
    }

    /// Straightforward 8-connected flood fill, for comparison.
    fn reference(mask: &Frame<u8>, min_pixels: usize) -> Vec<Vec<(u32, u32)>> {
        let (w, h) = mask.size();
        let mut seen = vec![false; w * h];
        let mut out = Vec::new();
        for y0 in 0..h {
            for x0 in 0..w {
                if mask.get(x0, y0) == 0 || seen[y0 * w + x0] {
                    continue;
                }
                let (mut comp, mut stack) = (Vec::new(), vec![(x0, y0)]);
                seen[y0 * w + x0] = true;
                while let Some((x, y)) = stack.pop() {
                    comp.push((x as u32, y as u32));
                    for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                        for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                            if mask.get(nx, ny) != 0 && !seen[ny * w + nx] {
                                seen[ny * w + nx] = true;
                                stack.push((nx, ny));
                            }
                        }
                    }
                }
                if comp.len() >= min_pixels {
                    comp.sort_by_key(|&(x, y)| (y, x));
                    out.push(comp);
                }
            }
        }
        out
    }

    #[test]
    fn run_labelling_equals_flood_fill_on_random_masks() {
        let mut c = Components::default();
        let mut state = 12345u64;
        for (density, min_pixels) in [(0.2, 1), (0.45, 3), (0.6, 10), (0.05, 1)] {
            for _ in 0..10 {
                let m = Frame::from_fn(53, 37, |_, _| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    u8::from(((state >> 33) as f64 / (1u64 << 31) as f64) < density)
                });
                c.label(&m, min_pixels);
                let want = reference(&m, min_pixels);
                assert_eq!(c.len(), want.len());
                for (i, comp) in want.iter().enumerate() {
                    assert_eq!(c.get(i).pixels, &comp[..], "component {i}");
                }
            }
        }
    }

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
