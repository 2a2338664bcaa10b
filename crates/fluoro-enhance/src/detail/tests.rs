use super::*;
use crate::border::reflect101;
use crate::gaussian::tests::random_frame;

/// Separable blur in f64 with reflect-101 borders, written for clarity.
fn blur64(src: &[f64], w: usize, h: usize, k: &[f32]) -> Vec<f64> {
    let r = (k.len() / 2) as isize;
    let pass = |get: &dyn Fn(isize, isize) -> f64, horizontal: bool| -> Vec<f64> {
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                out[y as usize * w + x as usize] = (-r..=r)
                    .map(|i| {
                        let (xx, yy) = if horizontal { (x + i, y) } else { (x, y + i) };
                        f64::from(k[(i + r) as usize]) * get(xx, yy)
                    })
                    .sum();
            }
        }
        out
    };
    let at = |v: &[f64], x: isize, y: isize| v[reflect101(y, h) * w + reflect101(x, w)];
    let tmp = pass(&|x, y| at(src, x, y), true);
    pass(&|x, y| at(&tmp, x, y), false)
}

/// The documented algorithm in f64: fine blur, 2x2 mean of the source's 2x2 means,
/// quarter-resolution blur, bilinear upsampling at centred sample positions, then the
/// two bands.
#[test]
fn matches_a_float64_reference() {
    let p = DetailParams::default();
    // (120, 400): tall enough for the blur's bands of rows (the others: whole passes)
    for (w, h) in [(45, 37), (64, 30), (1, 9), (120, 400)] {
        let src = random_frame(w, h, (w * h) as u64);
        let x: Vec<f64> = src.data().iter().map(|&v| f64::from(v)).collect();
        let fine = blur64(&x, w, h, &kernel(p.fine_sigma));
        // 2x2 means, an odd last row or column paired with itself
        let halve = |v: &[f64], w: usize, h: usize| {
            let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
            let mut half = vec![0.0; hw * hh];
            for y in 0..hh {
                for xx in 0..hw {
                    let f = |a: usize, b: usize| v[b.min(h - 1) * w + a.min(w - 1)];
                    half[y * hw + xx] = 0.25
                        * (f(2 * xx, 2 * y)
                            + f(2 * xx + 1, 2 * y)
                            + f(2 * xx, 2 * y + 1)
                            + f(2 * xx + 1, 2 * y + 1));
                }
            }
            (half, hw, hh)
        };
        let (half, hw, hh) = halve(&x, w, h);
        let (quarter, qw, qh) = halve(&half, hw, hh);
        let qs = ((p.coarse_sigma.powi(2) - 4.0).max(1.0)).sqrt() / 4.0;
        let coarse = blur64(&quarter, qw, qh, &kernel(qs));
        let sample = |fx: f64, fy: f64| {
            let fx = fx.clamp(0.0, (qw - 1) as f64);
            let fy = fy.clamp(0.0, (qh - 1) as f64);
            let (x0, y0) = (fx.floor() as usize, fy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(qw - 1), (y0 + 1).min(qh - 1));
            let (ax, ay) = (fx - x0 as f64, fy - y0 as f64);
            let c = |a: usize, b: usize| coarse[b * qw + a];
            let top = c(x0, y0) + ax * (c(x1, y0) - c(x0, y0));
            let bot = c(x0, y1) + ax * (c(x1, y1) - c(x0, y1));
            top + ay * (bot - top)
        };
        let mut out = Frame::new(0, 0);
        enhance_detail(&src, &p, &mut DetailScratch::default(), &mut out);
        for y in 0..h {
            for xx in 0..w {
                let i = y * w + xx;
                let c = sample((xx as f64 - 1.5) / 4.0, (y as f64 - 1.5) / 4.0);
                let want = x[i]
                    + f64::from(p.fine_gain) * (x[i] - fine[i])
                    + f64::from(p.coarse_gain) * (fine[i] - c);
                let got = f64::from(out.get(xx, y));
                assert!(
                    (got - want).abs() < 2e-3,
                    "{w}x{h} ({xx}, {y}): {got} vs {want}"
                );
            }
        }
    }
}

/// Inside the field the stage gives [`enhance_detail`]'s bits (the coarse band comes
/// from the source, the fine blur is the whole frame's there); outside, the fine band is
/// 0: `x + coarse_gain (x - coarse)`. Small and large frames (whole passes and bands of
/// rows), a field with a hole.
#[test]
fn in_field_is_the_plain_stage_inside_and_coarse_only_outside() {
    let p = DetailParams::default();
    crate::gaussian::tests::on_two_threads(|| {
        for (w, h) in [(45, 37), (300, 700)] {
            let src = random_frame(w, h, (w + 5 * h) as u64);
            let (cx, cy, r) = (w as i64 / 2, h as i64 / 2, w.min(h) as i64 / 2);
            let mask = Frame::from_fn(w, h, |x, y| {
                let d = (x as i64 - cx).pow(2) + (y as i64 - cy).pow(2);
                u8::from(d < r * r && d > 9)
            });
            let (mut plain, mut field) = (Frame::new(0, 0), Frame::new(0, 0));
            enhance_detail(&src, &p, &mut DetailScratch::default(), &mut plain);
            enhance_detail_in_field(&src, &mask, &p, &mut DetailScratch::default(), &mut field);
            // the coarse band alone, from the plain stage run without its fine band
            let coarse_only = DetailParams {
                fine_gain: 0.0,
                ..p
            };
            let mut c = Frame::new(0, 0);
            enhance_detail(&src, &coarse_only, &mut DetailScratch::default(), &mut c);
            let mut fine = Frame::new(0, 0);
            let kf = kernel(p.fine_sigma);
            crate::gaussian::blur(&src, &kf, &mut Frame::new(0, 0), &mut fine);
            // the coarse band, from `c = x + gc (fine - coarse)`
            let coarse = |x, y| fine.get(x, y) - (c.get(x, y) - src.get(x, y)) / p.coarse_gain;
            let (mut inside, mut outside) = (0, 0);
            for y in 0..h {
                for x in 0..w {
                    let got = field.get(x, y);
                    if mask.get(x, y) != 0 {
                        assert_eq!(got, plain.get(x, y), "{w}x{h} ({x}, {y})");
                        inside += 1;
                    } else {
                        // x + gc (x - coarse) against x + gc (fine - coarse), fine = x
                        let v = src.get(x, y);
                        let want = v + p.coarse_gain * (v - coarse(x, y));
                        assert!((got - want).abs() < 1e-2, "{w}x{h} ({x}, {y})");
                        outside += 1;
                    }
                }
            }
            assert!(inside > 0 && outside > 0);
        }
    });
}

/// A row combined in pieces gives each pixel the bits of the whole row, wherever the
/// pieces start (odd and even columns, the ends).
#[test]
fn pieces_give_the_whole_rows_values() {
    let p = DetailParams::default();
    for w in [1usize, 2, 5, 7, 64, 131] {
        let qw = w.div_ceil(4);
        let row = |seed: u64| random_frame(w, 1, seed).data().to_vec();
        let (x, fine) = (row(1), row(2));
        let quarter = |seed: u64| random_frame(qw, 1, seed).data().to_vec();
        let (c0, c1) = (quarter(3), quarter(4));
        let mut scratch = vec![0.0; combine_scratch_len(w)];
        let mut whole = fine.clone();
        combine_piece(&x, 0, (&c0, &c1, 0.3), &p, &mut scratch, &mut whole);
        for cut in [1usize, 2, 3, 5, 6] {
            let mut pieces = fine.clone();
            let mut at = 0;
            while at < w {
                let end = (at + cut).min(w);
                let s = &mut vec![0.0; combine_scratch_len(end - at)];
                combine_piece(
                    &x[at..end],
                    at,
                    (&c0, &c1, 0.3),
                    &p,
                    s,
                    &mut pieces[at..end],
                );
                at = end;
            }
            assert_eq!(pieces, whole, "width {w}, pieces of {cut}");
        }
    }
}

/// The coarse band (quarter resolution, upsampled) is the full-resolution sigma-6 blur
/// it stands for, on two crossing steps of 100 and 50: within 2.3 at worst (2.0 is
/// measured, where the interpolation bends around an edge; 0.8 at half resolution) and
/// 0.12 on average (0.08; the quarter blur's sigma left uncorrected for the means and
/// the interpolation gives 0.24, corrected for the means only 0.20).
#[test]
fn coarse_band_is_the_full_resolution_low_pass() {
    let (w, h) = (240, 200);
    let src = Frame::from_fn(w, h, |x, y| {
        let a = if x > 101 { 100.0 } else { 0.0 };
        let b = if x as f32 * 0.6 + y as f32 > 150.0 {
            50.0
        } else {
            0.0
        };
        a + b
    });
    // with the fine band off and the coarse gain 1: out = x + fine - coarse
    let p = DetailParams {
        fine_gain: 0.0,
        coarse_gain: 1.0,
        ..DetailParams::default()
    };
    let mut out = Frame::new(0, 0);
    enhance_detail(&src, &p, &mut DetailScratch::default(), &mut out);
    let blurred = |sigma: f32| {
        let mut b = Frame::new(0, 0);
        crate::gaussian::blur(&src, &kernel(sigma), &mut Frame::new(0, 0), &mut b);
        b
    };
    let (fine, full) = (blurred(p.fine_sigma), blurred(p.coarse_sigma));
    let (mut worst, mut sum) = (0f32, 0f64);
    for y in 0..h {
        for x in 0..w {
            let coarse = fine.get(x, y) - (out.get(x, y) - src.get(x, y));
            let d = (coarse - full.get(x, y)).abs();
            worst = worst.max(d);
            sum += f64::from(d);
        }
    }
    let mean = sum / (w * h) as f64;
    assert!(worst < 2.3 && mean < 0.12, "worst {worst}, mean {mean}");
}

#[test]
fn flat_stays_flat_and_edges_get_steeper() {
    let flat = Frame::filled(32, 32, 500.0f32);
    let mut out = Frame::new(0, 0);
    let mut s = DetailScratch::default();
    enhance_detail(&flat, &DetailParams::default(), &mut s, &mut out);
    assert!(out.data().iter().all(|v| (v - 500.0).abs() < 1e-3));
    let edge = Frame::from_fn(64, 8, |x, _| if x < 32 { 100.0 } else { 300.0 });
    enhance_detail(&edge, &DetailParams::default(), &mut s, &mut out);
    assert!(out.get(33, 4) - out.get(30, 4) > 200.0);
}

/// The samples taken as the rows are written are those the display window takes from
/// the finished frame (the same multiset), and the frame is the unsampled stage's: one
/// and several pixels per sample, bands on two threads, a mask of another size.
#[test]
fn samples_taken_in_the_pass_are_the_windows() {
    let p = DetailParams::default();
    crate::gaussian::tests::on_two_threads(|| {
        // (700, 420): bands of rows over two column strips
        for (w, h) in [(45, 37), (311, 263), (200, 500), (700, 420)] {
            let src = random_frame(w, h, (3 * w + h) as u64);
            let round = Frame::from_fn(w, h, |x, y| {
                u8::from((x as i64 - 20).pow(2) + (y as i64 - 18).pow(2) < 30 * 30)
            });
            // rows with gaps: a hole, and a notch cut from the right half
            let holed = Frame::from_fn(w, h, |x, y| {
                let hole = (x as i64 - w as i64 / 2).abs() < 9 && (y as i64 - 20).abs() < 6;
                u8::from(!(hole || (x > w / 2 && y % 7 == 3)))
            });
            for mask in [round, holed, Frame::filled(2, 3, 1)] {
                let (mut want, mut got) = (Frame::new(0, 0), Frame::new(0, 0));
                let mut s = DetailScratch::default();
                enhance_detail_in_field(&src, &mask, &p, &mut s, &mut want);
                let (mut expected, mut taken) = (Vec::new(), vec![7.0]);
                crate::display::samples(&want, &mask, &mut expected);
                expected.sort_by(f32::total_cmp);
                // twice on one scratch: no band keeps the last call's samples
                for _ in 0..2 {
                    enhance_detail_sampled(&src, &mask, &p, &mut s, &mut taken, &mut got);
                    assert!(got == want, "{w}x{h}");
                    taken.sort_by(f32::total_cmp);
                    assert!(taken == expected, "{w}x{h}");
                }
                // (a mask of another size samples as the window would: a few pixels)
                assert!(mask.size() != (w, h) || expected.len() > 100);
            }
        }
    });
}
