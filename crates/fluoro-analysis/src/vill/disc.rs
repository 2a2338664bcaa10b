//! The lamina mask of a disc searched for corners, a row at a time.

/// The disc of `VillDetector::corners_at` and the shaft, for its lamina mask's rows.
pub(super) struct DiscRows {
    pub(super) centre: [f64; 2],
    pub(super) r: f64,
    pub(super) rear: [f64; 2],
    /// Rear to tip.
    pub(super) d: [f64; 2],
    /// `|d|^2`.
    pub(super) l2: f64,
    /// Distance from the shaft's axis (px) within which a pixel is the shaft's.
    pub(super) reach: f64,
    /// The lamina darkness threshold.
    pub(super) dark: f32,
}

/// One row `y` of the disc's lamina mask, columns from `x0`: inside the disc and the field,
/// dark, not a thin line or its fringe, and not the shaft. A row of slices with the pixel
/// positions as `i32` conversions, so it vectorises (the per-pixel `get`s, with a square
/// root per pixel, did not); the sums are the same.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
pub(super) fn roi_row(
    g: &DiscRows,
    (x0, y): (usize, usize),
    (mask, dark, thin): (&[u8], &[f32], &[u8]),
    out: &mut [u8],
) {
    let py = y as f64;
    let ddy = py - g.centre[1];
    let [dx, dy] = g.d;
    let cells = out.iter_mut().zip(mask).zip(dark.iter().zip(thin));
    for (i, ((o, &m), (&dk, &th))) in cells.enumerate() {
        // frames are far below 2^31 pixels wide
        let px = f64::from((x0 + i) as i32);
        let ddx = px - g.centre[0];
        let inside = (ddx * ddx + ddy * ddy <= g.r * g.r) & (m != 0);
        let u = (((px - g.rear[0]) * dx + (py - g.rear[1]) * dy) / g.l2).clamp(0.0, 1.0);
        let (qx, qy) = (g.rear[0] + dx * u, g.rear[1] + dy * u);
        let near_shaft = ((px - qx).powi(2) + (py - qy).powi(2)).sqrt() <= g.reach;
        *o = u8::from(inside & (dk > g.dark) & (th == 0) & !near_shaft);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-pixel definition the row replaces, at pixel `(x, y)`.
    fn reference(g: &DiscRows, x: usize, y: usize, m: u8, dk: f32, th: u8) -> u8 {
        let p = [x as f64, y as f64];
        let (ddx, ddy) = (p[0] - g.centre[0], p[1] - g.centre[1]);
        let inside = ddx * ddx + ddy * ddy <= g.r * g.r && m != 0;
        let [dx, dy] = g.d;
        let u = (((p[0] - g.rear[0]) * dx + (p[1] - g.rear[1]) * dy) / g.l2).clamp(0.0, 1.0);
        let (qx, qy) = (g.rear[0] + dx * u, g.rear[1] + dy * u);
        let near_shaft = ((p[0] - qx).powi(2) + (p[1] - qy).powi(2)).sqrt() <= g.reach;
        u8::from(inside && dk > g.dark && th == 0 && !near_shaft)
    }

    /// Every pixel of rows crossing the disc is the per-pixel definition's: the shaft's
    /// rear and tip lie inside it (pixels behind the rear, along the shaft and beyond the
    /// tip), with masked, light and thin pixels among them.
    #[test]
    fn rows_equal_the_per_pixel_definition() {
        let (rear, tip) = ([12.0, 9.5], [26.1, 28.3]);
        let d = [tip[0] - rear[0], tip[1] - rear[1]];
        let g = DiscRows {
            centre: [20.4, 19.1],
            r: 15.5,
            rear,
            d,
            l2: d[0] * d[0] + d[1] * d[1],
            reach: 3.4,
            dark: 0.5,
        };
        let (x0, w) = (2, 41);
        let mut counts = [0usize; 2];
        for y in 0..48 {
            let mask: Vec<u8> = (0..w).map(|i| u8::from((i + y) % 9 != 0)).collect();
            let dark: Vec<f32> = (0..w)
                .map(|i| ((i * 7 + y * 3) % 10) as f32 / 9.0)
                .collect();
            let thin: Vec<u8> = (0..w).map(|i| u8::from((i * 5 + y) % 13 == 0)).collect();
            let mut out = vec![9u8; w];
            roi_row(&g, (x0, y), (&mask, &dark, &thin), &mut out);
            for (i, &o) in out.iter().enumerate() {
                let want = reference(&g, x0 + i, y, mask[i], dark[i], thin[i]);
                assert_eq!(o, want, "({}, {y})", x0 + i);
                counts[usize::from(o)] += 1;
            }
        }
        assert!(counts[0] > 300 && counts[1] > 200, "{counts:?}");
    }
}
