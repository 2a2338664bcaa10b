//! The frame loop refuses frames it cannot process with a typed error, never a panic: no
//! pixels, a shutter mask of another size, a next frame of another size; and the loop
//! goes on with the next good frame as if the bad one had not come.

use fluoro_core::Frame;
use fluoro_pipeline::{FrameLoop, LoopError, PipelineParams};

fn frame(w: usize, h: usize, n: usize) -> Frame<f32> {
    Frame::from_fn(w, h, |x, y| 1500.0 + ((x * 13 + y * 7 + n * 5) % 50) as f32)
}

#[test]
fn bad_frames_are_refused_and_the_loop_goes_on() {
    let (w, h) = (96, 80);
    let mask = Frame::filled(w, h, 1u8);
    let mut fl = FrameLoop::new(PipelineParams::default());
    let mut clean = FrameLoop::new(PipelineParams::default());
    for (fw, fh) in [(0, 0), (0, 80), (96, 0)] {
        let err = fl
            .process(&Frame::new(fw, fh), &Frame::new(fw, fh), Some(0.2), true)
            .unwrap_err();
        assert!(matches!(err, LoopError::EmptyFrame { .. }), "{err}");
    }
    let good = frame(w, h, 0);
    let err = fl
        .process(&good, &Frame::filled(w, h - 1, 1u8), Some(0.2), true)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoopError::SizeMismatch {
                what: "the mask",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("(96, 79)"), "{err}");
    let err = fl
        .process_ahead(&good, &mask, Some(&frame(w + 1, h, 1)), Some(0.2), true)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoopError::SizeMismatch {
                what: "the next frame",
                ..
            }
        ),
        "{err}"
    );
    // the refused frames left no trace: the same results as a loop that never saw them
    for n in 0..3 {
        let f = frame(w, h, n);
        let (a, _) = fl.process(&f, &mask, Some(0.2), true).unwrap();
        let (b, _) = clean.process(&f, &mask, Some(0.2), true).unwrap();
        assert_eq!(a, b, "frame {n}");
        assert_eq!(fl.labels().data(), clean.labels().data());
    }
}
