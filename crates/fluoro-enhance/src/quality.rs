//! Image-quality measures used to judge the chain on simulated studies with ground truth:
//! noise, contrast-to-noise ratio, edge width and the position of the instrument's end.

use fluoro_core::Frame;

/// Standard deviation of `a - b` over the pixels where `select` is true.
pub fn std_of_difference(
    a: &Frame<f32>,
    b: &Frame<f32>,
    select: impl Fn(usize, usize) -> bool,
) -> f64 {
    let (w, h) = a.size();
    let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0usize);
    for y in 0..h {
        for x in 0..w {
            if select(x, y) {
                let d = f64::from(a.get(x, y) - b.get(x, y));
                s += d;
                s2 += d * d;
                n += 1;
            }
        }
    }
    if n < 2 {
        return f64::NAN;
    }
    let m = s / n as f64;
    ((s2 / n as f64 - m * m).max(0.0) * n as f64 / (n - 1) as f64).sqrt()
}

/// Mean of `f` over the pixels where `select` is true.
pub fn mean_where(f: &Frame<f32>, select: impl Fn(usize, usize) -> bool) -> f64 {
    let (w, h) = f.size();
    let (mut s, mut n) = (0.0f64, 0usize);
    for y in 0..h {
        for x in 0..w {
            if select(x, y) {
                s += f64::from(f.get(x, y));
                n += 1;
            }
        }
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

/// Samples `f` along the segment `p + t * dir` for `t` in `t0..=t1` at `step` px.
pub fn profile(
    f: &Frame<f32>,
    p: [f64; 2],
    dir: [f64; 2],
    t0: f64,
    t1: f64,
    step: f64,
) -> Vec<(f64, f32)> {
    let n = ((t1 - t0) / step).floor() as usize;
    (0..=n)
        .map(|i| {
            let t = t0 + i as f64 * step;
            (
                t,
                f.sample_bilinear((p[0] + t * dir[0]) as f32, (p[1] + t * dir[1]) as f32),
            )
        })
        .collect()
}

/// 10-90 % width (px) of the two edges of a dark line profile (instrument darker than its
/// surroundings), averaged over both sides; `None` when the profile has no clear dip.
pub fn dark_line_edge_width(prof: &[(f64, f32)]) -> Option<f64> {
    let (imin, &(_, vmin)) = prof
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.1.total_cmp(&b.1.1))?;
    let k = (prof.len() / 8).max(1);
    let bg_left: f32 = prof[..k].iter().map(|p| p.1).sum::<f32>() / k as f32;
    let bg_right: f32 = prof[prof.len() - k..].iter().map(|p| p.1).sum::<f32>() / k as f32;
    let mut widths = Vec::new();
    for (bg, side) in [(bg_left, -1i64), (bg_right, 1)] {
        let depth = bg - vmin;
        if depth <= 0.0 {
            continue;
        }
        let level = |q: f32| vmin + q * depth;
        let cross = |q: f32| -> Option<f64> {
            let mut i = imin as i64;
            while i + side >= 0 && ((i + side) as usize) < prof.len() {
                let (a, b) = (prof[i as usize], prof[(i + side) as usize]);
                if (a.1 - level(q)) * (b.1 - level(q)) <= 0.0 && a.1 != b.1 {
                    let u = f64::from((level(q) - a.1) / (b.1 - a.1));
                    return Some(a.0 + u * (b.0 - a.0));
                }
                i += side;
            }
            None
        };
        if let (Some(a), Some(b)) = (cross(0.1), cross(0.9)) {
            widths.push((b - a).abs());
        }
    }
    (!widths.is_empty()).then(|| widths.iter().sum::<f64>() / widths.len() as f64)
}

/// Where a dark object ends along a profile running from inside it outwards: the first
/// position where the value rises through the midpoint between the inside level (first
/// samples) and the outside level (last samples).
pub fn dark_end_position(prof: &[(f64, f32)]) -> Option<f64> {
    let k = (prof.len() / 8).max(1);
    let inside: f32 = prof[..k].iter().map(|p| p.1).sum::<f32>() / k as f32;
    let outside: f32 = prof[prof.len() - k..].iter().map(|p| p.1).sum::<f32>() / k as f32;
    let mid = (inside + outside) / 2.0;
    prof.windows(2)
        .find(|w| w[0].1 <= mid && w[1].1 > mid)
        .map(|w| {
            let u = f64::from((mid - w[0].1) / (w[1].1 - w[0].1));
            w[0].0 + u * (w[1].0 - w[0].0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_width_of_a_linear_ramp() {
        // dip from 100 to 0 with 10 px linear ramps: 10-90% width is 8 px
        let prof: Vec<(f64, f32)> = (0..=80)
            .map(|i| {
                let t = i as f64;
                let v = if t < 20.0 {
                    100.0
                } else if t < 30.0 {
                    100.0 - (t - 20.0) * 10.0
                } else if t < 50.0 {
                    0.0
                } else if t < 60.0 {
                    (t - 50.0) * 10.0
                } else {
                    100.0
                };
                (t, v as f32)
            })
            .collect();
        let w = dark_line_edge_width(&prof).unwrap();
        assert!((w - 8.0).abs() < 1e-6, "{w}");
        let end = dark_end_position(&prof[30..]).unwrap();
        assert!((end - 55.0).abs() < 1e-6, "{end}");
    }
}
