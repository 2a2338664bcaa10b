//! The reduced-resolution blur against its definition and the full blur, and its fused
//! and sampled forms against the whole frame's.

use super::*;
use crate::gaussian::tests::{random_frame, reference};

#[test]
fn large_blur_is_close_to_the_full_blur_on_smooth_data() {
    let src = Frame::from_fn(256, 200, |x, y| {
        1000.0
            + 300.0 * ((x as f32) / 40.0).sin() * ((y as f32) / 55.0).cos()
            + if x > 128 { 200.0 } else { 0.0 }
    });
    let (mut tmp, mut full, mut fast) = (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
    blur(&src, &kernel(16.0), &mut tmp, &mut full);
    blur_large(&src, 16.0, &mut LargeBlurScratch::default(), &mut fast);
    // interior (borders differ in handling)
    let mut worst = 0.0f32;
    for y in 40..160 {
        for x in 40..216 {
            worst = worst.max((full.get(x, y) - fast.get(x, y)).abs());
        }
    }
    assert!(worst < 8.0, "max difference {worst} on a 800-unit signal");
}

/// The reduced-resolution blur is exactly its definition: box average by k (partial
/// blocks at the right and bottom averaged over the pixels they hold), Gaussian of the
/// remaining sigma (reflect-101), bilinear interpolation back (clamped at the ends);
/// here in float64, written out directly.
#[test]
fn large_blur_is_box_average_blur_and_bilinear_upsampling() {
    for (w, h, sigma) in [(203, 157, 13.0f32), (256, 96, 25.0)] {
        let src = random_frame(w, h, 9);
        let mut k = 1usize;
        while sigma / (2 * k) as f32 >= 3.0 && w / (2 * k) >= 8 && h / (2 * k) >= 8 {
            k *= 2;
        }
        assert!(k >= 2);
        let (sw, sh) = (w.div_ceil(k), h.div_ceil(k));
        let small = Frame::from_fn(sw, sh, |bx, by| {
            let (mut acc, mut n) = (0.0f64, 0.0f64);
            for y in by * k..((by + 1) * k).min(h) {
                for x in bx * k..((bx + 1) * k).min(w) {
                    acc += f64::from(src.get(x, y));
                    n += 1.0;
                }
            }
            (acc / n) as f32
        });
        let rest = (sigma * sigma - ((k * k) as f32 - 1.0) / 12.0)
            .max(0.25)
            .sqrt()
            / k as f32;
        let blurred = reference(&small, rest);
        let at = |t: usize, n: usize| {
            let f = ((t as f64 + 0.5) / k as f64 - 0.5).clamp(0.0, (n - 1) as f64);
            let i = f as usize;
            (i, (i + 1).min(n - 1), f - i as f64)
        };
        let mut fast = Frame::new(0, 0);
        blur_large(&src, sigma, &mut LargeBlurScratch::default(), &mut fast);
        let mut worst = 0.0f64;
        for y in 0..h {
            let (y0, y1, ay) = at(y, sh);
            for x in 0..w {
                let (x0, x1, ax) = at(x, sw);
                let row =
                    |yy| blurred.get(x0, yy) + ax * (blurred.get(x1, yy) - blurred.get(x0, yy));
                let want = row(y0) + ay * (row(y1) - row(y0));
                worst = worst.max((want - f64::from(fast.get(x, y))).abs());
            }
        }
        // on values up to 4000: float32 rounding only
        assert!(worst < 0.01, "{w}x{h} sigma {sigma}: {worst}");
    }
}

/// A rectangle sampled after `prepare`, or after `prepare_around` it, holds exactly
/// what the whole-frame blur holds there, reduced or not, at the frame's edges and
/// inside.
#[test]
fn a_sampled_rectangle_equals_the_whole_frame_blur_there() {
    for (w, h, sigma) in [(203, 157, 13.0f32), (256, 96, 25.0), (120, 90, 4.0)] {
        let src = random_frame(w, h, 5);
        let mut whole = Frame::new(0, 0);
        blur_large(&src, sigma, &mut LargeBlurScratch::default(), &mut whole);
        let mut s = LargeBlurScratch::default();
        s.prepare(&src, sigma);
        let (mut part, mut around) = (Frame::new(0, 0), LargeBlurScratch::default());
        for (x0, y0, rw, rh) in [(0, 0, 40, 30), (17, 23, 61, 44), (w - 50, h - 37, 50, 37)] {
            // prepared for the whole frame, then around the rectangle only (a part of
            // the grid, whose blur may take another path than the whole grid's)
            around.prepare_around(&src, sigma, [x0, y0, x0 + rw, y0 + rh]);
            for (how, prepared) in [("whole", &mut s), ("around", &mut around)] {
                prepared.sample_rect(x0, y0, rw, rh, &mut part);
                for yy in 0..rh {
                    assert_eq!(
                        part.row(yy),
                        &whole.row(y0 + yy)[x0..x0 + rw],
                        "{w}x{h} sigma {sigma} rect at ({x0}, {y0}) row {yy}, {how}"
                    );
                }
            }
        }
        // an area outside the frame, or inverted, is clipped to it: no panic
        for area in [
            [w + 5, h + 9, w + 20, h + 30],
            [40, 30, 10, 5],
            [0, 0, 0, 0],
        ] {
            around.prepare_around(&src, sigma, area);
        }
        // and the rows blended where they are used give the same values (4.0: no
        // reduction, the rows are the full blur's)
        s.prepare_rows(&src, sigma);
        for y in 0..h {
            let (a, c, ay) = s.rows_at(y);
            let row: Vec<f32> = a.iter().zip(c).map(|(&a, &c)| a + ay * (c - a)).collect();
            assert_eq!(&row[..], whole.row(y), "{w}x{h} sigma {sigma} row {y}");
        }
    }
}

/// The fused blur and preparation give the separate calls' bits: the blur, and every
/// row of the prepared background; reductions 4, 2 and none, bands of rows (690 rows: 87 a band unless aligned) over
/// several strips and whole passes, with a field and without, on two threads (and
/// again on the same scratch).
#[test]
fn blur_and_prepare_rows_equals_the_separate_calls() {
    crate::gaussian::tests::on_two_threads(|| {
        let k1 = kernel(1.0);
        let mut fused = LargeBlurScratch::default();
        for (w, h, sigma) in [(1100, 690, 26.0f32), (300, 90, 13.0), (203, 157, 4.0)] {
            let src = random_frame(w, h, 21);
            let (cx, cy, rr) = (w as f32 / 2.0, h as f32 / 2.0, 0.45 * h as f32);
            let round = Frame::from_fn(w, h, |x, y| {
                u8::from((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < rr * rr)
            });
            for mask in [None, Some(&round), None] {
                let mut spans = FieldSpans::default();
                let (mut tmp, mut want, mut got) =
                    (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
                match mask {
                    Some(m) => blur_in_field(&src, m, &mut spans, &k1, &mut tmp, &mut want),
                    None => blur(&src, &k1, &mut tmp, &mut want),
                }
                let mut separate = LargeBlurScratch::default();
                separate.prepare_rows(&want, sigma);
                let frames = (&mut tmp, &mut got);
                fused.blur_and_prepare_rows(&src, mask, &mut spans, &k1, frames, sigma);
                assert!(got == want, "{w}x{h}: the blur");
                for y in 0..h {
                    assert!(fused.rows_at(y) == separate.rows_at(y), "{w}x{h} row {y}");
                }
            }
        }
    });
}
