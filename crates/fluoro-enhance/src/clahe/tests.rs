//! CLAHE against a float64 reference, with masks, partial bin tables and small frames.

use super::*;
use crate::gaussian::tests::random_frame;

/// Float64 CLAHE written for clarity: one tile mapping per pixel neighbourhood, no reuse.
fn reference(src: &Frame<f32>, mask: &Frame<u8>, lo: f64, hi: f64, p: &ClaheParams) -> Frame<f64> {
    let (w, h) = src.size();
    let (tx, ty) = (p.tiles_x, p.tiles_y);
    let (tw, th) = (w.div_ceil(tx), h.div_ceil(ty));
    let bins = p.bins;
    let bin = |v: f32| {
        (((f64::from(v) - lo) * bins as f64 / (hi - lo)).floor() as i64).clamp(0, bins as i64 - 1)
            as usize
    };
    let mapping = |bx: usize, by: usize| -> Vec<f64> {
        let mut hist = vec![0f64; bins];
        let mut n = 0;
        for y in by * th..((by + 1) * th).min(h) {
            for x in bx * tw..((bx + 1) * tw).min(w) {
                if mask.get(x, y) != 0 {
                    hist[bin(src.get(x, y))] += 1.0;
                    n += 1;
                }
            }
        }
        // clip at the limit, spread the excess evenly
        let limit = f64::from((p.clip_limit * n as f32 / bins as f32).max(1.0));
        let excess: f64 = hist.iter().map(|&c| (c - limit).max(0.0)).sum();
        let mut acc = 0.0;
        hist.iter()
            .map(|&c| {
                acc += c.min(limit) + excess / bins as f64;
                lo + acc * (hi - lo) / n as f64
            })
            .collect()
    };
    let maps: Vec<Vec<f64>> = (0..ty)
        .flat_map(|by| (0..tx).map(move |bx| (bx, by)))
        .map(|(bx, by)| mapping(bx, by))
        .collect();
    Frame::from_fn(w, h, |x, y| {
        let fx = x as f64 / tw as f64 - 0.5;
        let fy = y as f64 / th as f64 - 0.5;
        let (x1, y1) = (fx.floor(), fy.floor());
        let (xa, ya) = (fx - x1, fy - y1);
        let cx = |v: f64| (v.max(0.0) as usize).min(tx - 1);
        let cy = |v: f64| (v.max(0.0) as usize).min(ty - 1);
        let b = bin(src.get(x, y));
        let m = |yy: usize, xx: usize| maps[yy * tx + xx][b];
        let top = m(cy(y1), cx(x1)) * (1.0 - xa) + m(cy(y1), cx(x1 + 1.0)) * xa;
        let bot = m(cy(y1 + 1.0), cx(x1)) * (1.0 - xa) + m(cy(y1 + 1.0), cx(x1 + 1.0)) * xa;
        top * (1.0 - ya) + bot * ya
    })
}

#[test]
fn matches_the_reference_with_a_mask() {
    let src = random_frame(67, 45, 4).map(|v| (v * 0.3).powf(0.9));
    let mask = Frame::from_fn(67, 45, |x, y| {
        u8::from((x as i32 - 33).pow(2) + (y as i32 - 22).pow(2) < 600)
    });
    let p = ClaheParams {
        tiles_x: 4,
        tiles_y: 3,
        clip_limit: 2.0,
        bins: 512,
    };
    let mut dst = Frame::new(0, 0);
    clahe(
        &src,
        &mask,
        (0.0, 1000.0),
        &p,
        &mut ClaheScratch::default(),
        &mut dst,
    );
    let r = reference(&src, &mask, 0.0, 1000.0, &p);
    // mappings are stored in 1000 / 65535 steps: rounding moves them by up to 0.0077
    for (a, b) in dst.data().iter().zip(r.data()) {
        assert!((f64::from(*a) - b).abs() < 0.01, "{a} vs {b}");
    }
}

/// Tables made only for the bins the frame's pixels take give the bits of tables made
/// for every bin: two pixels outside the mask at the range's ends (they are mapped but
/// never counted) make the frame use every bin, and every other pixel must come out
/// the same.
#[test]
fn tables_for_the_used_bins_give_the_full_tables_bits() {
    let (w, h) = (70, 53);
    // a narrow band of values in the middle of the range, a clip that bites
    let src = random_frame(w, h, 8).map(|v| 1500.0 + v * 0.1);
    let mask = Frame::from_fn(w, h, |x, y| u8::from(x > 2 && y > 1));
    let mut wide = src.clone();
    wide.set(0, 0, 0.0);
    wide.set(1, 0, 4095.0);
    let p = ClaheParams {
        tiles_x: 5,
        tiles_y: 4,
        clip_limit: 2.0,
        ..Default::default()
    };
    let (mut narrow_out, mut wide_out) = (Frame::new(0, 0), Frame::new(0, 0));
    clahe(
        &wide,
        &mask,
        (0.0, 4095.0),
        &p,
        &mut ClaheScratch::default(),
        &mut wide_out,
    );
    // the narrow frame after another one in the same scratch: that frame's table
    // entries outside the used bins stay, and must never be read
    let mut s = ClaheScratch::default();
    let other = random_frame(w, h, 9);
    clahe(&other, &mask, (0.0, 4095.0), &p, &mut s, &mut narrow_out);
    clahe(&src, &mask, (0.0, 4095.0), &p, &mut s, &mut narrow_out);
    for (i, (a, b)) in narrow_out.data().iter().zip(wide_out.data()).enumerate() {
        if i > 1 {
            assert_eq!(a.to_bits(), b.to_bits(), "pixel {i}: {a} vs {b}");
        }
    }
    // and the narrow frame's output is a contrast stretch, not the identity
    let (mn, mx) = narrow_out.data()[w * 2..]
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(mx - mn > 100.0, "range {}", mx - mn);
}

/// With the detail stage's 4x4 means taken along, the result is [`clahe`]'s and the
/// means are those of the result, with the bits of two 2x2 halvings (sizes that are not
/// multiples of four: the last rows and columns pair with themselves; wider than the
/// means' column blocks).
#[test]
fn means_taken_along_are_the_results() {
    let p = ClaheParams::default();
    for (w, h) in [(45, 37), (64, 30), (1, 1), (9, 2), (1100, 7), (6, 13)] {
        let src = random_frame(w, h, 4);
        let mask = Frame::filled(w, h, 1u8);
        let (mut want, mut got, mut quarter) =
            (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
        clahe(
            &src,
            &mask,
            (0.0, 4000.0),
            &p,
            &mut ClaheScratch::default(),
            &mut want,
        );
        let mut s = ClaheScratch::default();
        let range = (0.0, 4000.0);
        clahe_with_means(&src, &mask, range, &p, &mut s, &mut got, Some(&mut quarter));
        assert!(got == want, "{w}x{h}");
        // two halvings of the result, each row and column pairing as reduce_row does
        let halve = |f: &Frame<f32>| {
            let (fw, fh) = f.size();
            let mut half = Frame::filled(fw.div_ceil(2), fh.div_ceil(2), 0.0f32);
            for y in 0..fh.div_ceil(2) {
                let (r0, r1) = (f.row(2 * y), f.row((2 * y + 1).min(fh - 1)));
                crate::detail::reduce_row(r0, r1, half.row_mut(y));
            }
            half
        };
        let expected = halve(&halve(&want));
        assert_eq!(quarter.size(), (w.div_ceil(4), h.div_ceil(4)));
        assert!(quarter == expected, "{w}x{h}");
    }
}

/// Frames narrower or shorter than the tile grid leave the last tiles empty (their
/// columns start past the edge) and are equalised without a panic.
#[test]
fn frames_smaller_than_the_tile_grid() {
    let mut s = ClaheScratch::default();
    for (w, h) in [(20, 20), (10, 3), (3, 10), (1, 1), (9, 17)] {
        let src = random_frame(w, h, 3);
        let mut dst = Frame::new(0, 0);
        let p = ClaheParams::default();
        clahe(
            &src,
            &Frame::filled(w, h, 1u8),
            (0.0, 4000.0),
            &p,
            &mut s,
            &mut dst,
        );
        assert_eq!(dst.size(), (w, h));
        let ok = |v: &f32| (-0.1..=4000.1).contains(v);
        assert!(dst.data().iter().all(ok), "{w}x{h}: {:?}", dst.data());
    }
}

#[test]
fn empty_frames_give_empty_results() {
    let mut s = ClaheScratch::default();
    for (w, h) in [(0, 0), (0, 5), (5, 0)] {
        let mut dst = Frame::filled(3, 3, 1.0f32);
        let p = ClaheParams::default();
        clahe(
            &Frame::new(w, h),
            &Frame::new(w, h),
            (0.0, 1.0),
            &p,
            &mut s,
            &mut dst,
        );
        assert_eq!(dst.size(), (w, h));
    }
}

#[test]
fn stretches_a_low_contrast_region() {
    let src = Frame::from_fn(64, 64, |x, y| 2000.0 + ((x * 7 + y * 3) % 40) as f32);
    let mask = Frame::filled(64, 64, 1u8);
    let mut dst = Frame::new(0, 0);
    clahe(
        &src,
        &mask,
        (0.0, 4095.0),
        &ClaheParams {
            clip_limit: 40.0,
            ..Default::default()
        },
        &mut ClaheScratch::default(),
        &mut dst,
    );
    let (mn, mx) = dst
        .data()
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(mx - mn > 400.0, "range {}", mx - mn);
}
