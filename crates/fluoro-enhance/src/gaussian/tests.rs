//! The blur's tests, against a float64 reference and across its paths.

use super::*;

/// Straightforward float64 2D convolution with the outer-product kernel.
pub fn reference(src: &Frame<f32>, sigma: f32) -> Frame<f64> {
    let k: Vec<f64> = kernel(sigma).iter().map(|&v| f64::from(v)).collect();
    let r = (k.len() / 2) as isize;
    let (w, h) = src.size();
    Frame::from_fn(w, h, |x, y| {
        let mut s = 0.0;
        for (j, kj) in k.iter().enumerate() {
            for (i, ki) in k.iter().enumerate() {
                let xx = reflect101(x as isize + i as isize - r, w);
                let yy = reflect101(y as isize + j as isize - r, h);
                s += ki * kj * f64::from(src.get(xx, yy));
            }
        }
        s
    })
}

/// Runs `f` on a pool of two threads: the band heights depend on the thread count, so
/// tests that must take a given path fix it.
pub fn on_two_threads(f: impl FnOnce() + Send) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(f)
}

pub fn random_frame(w: usize, h: usize, seed: u64) -> Frame<f32> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    Frame::from_fn(w, h, |_, _| rng.random::<f32>() * 4000.0)
}

/// Inside the field, [`blur_in_field`] gives [`blur`]'s bits; outside, the source's:
/// the banded path over several column strips (rows whose field misses a strip), and
/// the two-pass path of small frames; a round field and one with a hole and a notch.
#[test]
fn in_field_equals_the_whole_frame_blur_inside_and_keeps_the_outside() {
    on_two_threads(|| {
        let (mut tmp, mut whole, mut part) = (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
        let mut spans = FieldSpans::default();
        for (w, h, sigma) in [(1100, 330, 1.5), (1000, 200, 1.0), (60, 50, 1.5)] {
            let src = random_frame(w, h, w as u64);
            let k = kernel(sigma);
            let (cx, cy, rr) = (w as f32 / 2.0, h as f32 / 2.0, 0.45 * h as f32);
            let round = Frame::from_fn(w, h, |x, y| {
                u8::from((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < rr * rr)
            });
            let holed = Frame::from_fn(w, h, |x, y| {
                let hole = (x as f32 - cx).abs() < 9.0 && (y as f32 - cy).abs() < 5.0;
                u8::from(y > 3 && y + 4 < h && !hole && !(x > w / 2 && y < h / 3))
            });
            blur(&src, &k, &mut tmp, &mut whole);
            for mask in [&round, &holed] {
                blur_in_field(&src, mask, &mut spans, &k, &mut tmp, &mut part);
                for i in 0..w * h {
                    let want = if mask.data()[i] != 0 {
                        whole.data()[i]
                    } else {
                        src.data()[i]
                    };
                    assert_eq!(part.data()[i].to_bits(), want.to_bits(), "{w}x{h} at {i}");
                }
            }
        }
    });
}

/// The finishing step sees every pixel once, in its row and at its column, holding the
/// blur's final value (the field's outside restored), and what it writes is the
/// output: the banded path over several column strips and the two-pass path, with a
/// field and without.
#[test]
fn finishing_sees_each_piece_once_with_its_final_values() {
    on_two_threads(|| {
        for (w, h) in [(1100, 400), (60, 50)] {
            let src = random_frame(w, h, 11);
            let k = kernel(1.5);
            let (cx, cy, rr) = (w as f32 / 2.0, h as f32 / 2.0, 0.45 * h as f32);
            let round = Frame::from_fn(w, h, |x, y| {
                u8::from((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) < rr * rr)
            });
            for (mask, multiple) in [(None, 1), (Some(&round), 1), (Some(&round), 4)] {
                let (mut tmp, mut want, mut got) =
                    (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
                let mut spans = FieldSpans::default();
                match mask {
                    Some(m) => blur_in_field(&src, m, &mut spans, &k, &mut tmp, &mut want),
                    None => blur(&src, &k, &mut tmp, &mut want),
                }
                // each band records the pieces it saw; each piece is checked, then negated
                let mut seen: Vec<Vec<(usize, usize, usize)>> = Vec::new();
                let want_ref = &want;
                let finish = |s: &mut Vec<(usize, usize, usize)>, y, x0, piece: &mut [f32]| {
                    assert!(piece == &want_ref.row(y)[x0..x0 + piece.len()], "row {y}");
                    s.push((y, x0, piece.len()));
                    piece.iter_mut().for_each(|v| *v = -*v);
                };
                let finishing = Finishing {
                    states: &mut seen,
                    step: finish,
                    rows_multiple: multiple,
                };
                if let Some(m) = mask {
                    spans.update(Some(m), w, h);
                }
                let field = mask.map(|m| (m, &spans));
                blur_finishing(&src, field, &k, (&mut tmp, &mut got), finishing);
                let mut count = Frame::<u8>::new(w, h);
                for &(y, x0, n) in seen.iter().flatten() {
                    count.row_mut(y)[x0..x0 + n]
                        .iter_mut()
                        .for_each(|c| *c += 1);
                }
                assert!(count.data().iter().all(|&c| c == 1), "{w}x{h}: pieces");
                // each band's rows in order from a multiple of `multiple`, strip by strip
                for band in seen.iter().filter(|b| !b.is_empty()) {
                    assert_eq!(band[0].0 % multiple, 0, "{w}x{h}: a band's first row");
                    let ordered = band
                        .windows(2)
                        .all(|p| (p[1].0 == p[0].0 + 1 && p[1].1 == p[0].1) || (p[1].1 > p[0].1));
                    assert!(ordered, "{w}x{h}: a band's pieces out of order");
                }
                let negated = got.data().iter().zip(want.data()).all(|(g, v)| *g == -*v);
                assert!(
                    negated,
                    "{w}x{h}: the finishing step's writes are the output"
                );
                assert!(w < 1000 || seen.iter().flatten().any(|p| p.1 > 0), "strips");
            }
        }
    });
}

/// The banded ring path gives the same bits as the plain two passes (tall frames take
/// it; the borders of every band, strip and of the frame included; narrow and wide
/// kernels, whose frame ends are filtered differently).
#[test]
fn banded_blur_equals_the_two_pass_blur() {
    // the band height depends on the thread count: fix it so every case takes the path
    on_two_threads(banded_blur_cases);
}

fn banded_blur_cases() {
    for (w, h, sigma) in [
        (200, 400, 1.0),
        (131, 517, 2.0),
        (64, 1000, 0.8),
        (1000, 700, 1.5),
        (1000, 1200, 3.0),
        // strips of 320 columns: one ends inside the right border, the last is
        // narrower than the kernel radius
        (965, 1200, 3.0),
        (600, 900, 2.0),
    ] {
        let src = random_frame(w, h, 3);
        let k = kernel(sigma);
        assert!(h.div_ceil(rayon::current_num_threads() * 4) >= 8 * (k.len() / 2));
        let (mut tmp, mut banded, mut plain) =
            (Frame::new(0, 0), Frame::new(0, 0), Frame::new(0, 0));
        blur(&src, &k, &mut tmp, &mut banded);
        assert!(tmp.height() < h, "the banded path ran");
        two_pass(&src, &k, &mut tmp, &mut plain);
        assert_eq!(plain.size(), (w, h));
        let same = banded
            .data()
            .iter()
            .zip(plain.data())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{w}x{h} sigma {sigma}: the paths differ");
    }
    let src = random_frame(40, 600, 4);
    let (mut tmp, mut dst) = (Frame::new(0, 0), Frame::new(0, 0));
    blur(&src, &kernel(2.0), &mut tmp, &mut dst);
    let r = reference(&src, 2.0);
    for (a, b) in dst.data().iter().zip(r.data()) {
        assert!((f64::from(*a) - b).abs() < 0.02, "{a} vs {b}");
    }
}

/// Small frames (rows shorter than a block of outputs), and rows longer than a block
/// but not a multiple of it, which end with an overlapping block.
#[test]
fn matches_the_reference() {
    for (w, h, sigma) in [(37, 23, 2.0), (5, 4, 1.0), (64, 64, 0.8), (150, 70, 1.5)] {
        let src = random_frame(w, h, 1);
        let (mut tmp, mut dst) = (Frame::new(0, 0), Frame::new(0, 0));
        blur(&src, &kernel(sigma), &mut tmp, &mut dst);
        let r = reference(&src, sigma);
        for (a, b) in dst.data().iter().zip(r.data()) {
            assert!((f64::from(*a) - b).abs() < 0.02, "{a} vs {b}");
        }
    }
}
