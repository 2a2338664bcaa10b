//! The frame loop with the next frame queued ahead on the GPU gives the same analysis as
//! one frame at a time, and refuses a frame other than the one it announced. Runs on
//! whatever adapter exists (CI: lavapipe); `FLUORO_SKIP_GPU=1` skips it on a machine with
//! none.

mod common;

use fluoro_pipeline::{Backend, FrameLoop, LoopError, PipelineParams};

fn gpu_loop() -> Option<FrameLoop> {
    if std::env::var("FLUORO_SKIP_GPU").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: FLUORO_SKIP_GPU=1");
        return None;
    }
    Some(FrameLoop::with_backend(PipelineParams::default(), Backend::Gpu).unwrap())
}

#[test]
fn queued_ahead_equals_one_at_a_time_and_checks_the_order() {
    let (Some(mut one), Some(mut ahead)) = (gpu_loop(), gpu_loop()) else {
        return;
    };
    let (study, frames) = common::fixture_frames(8);
    let (mask, mm) = (study.shutter_mask(), study.info().mm_per_px);
    for (i, f) in frames.iter().enumerate() {
        let (a, _) = one.process(f, &mask, mm, false).unwrap();
        let (b, _) = ahead
            .process_ahead(f, &mask, frames.get(i + 1), mm, false)
            .unwrap();
        assert_eq!(a, b, "frame {i}");
        assert_eq!(
            one.labels().data(),
            ahead.labels().data(),
            "labels, frame {i}"
        );
    }
    // announce frame 1, then hand over frame 0 again: refused, and the loop recovers
    ahead.reset();
    ahead
        .process_ahead(&frames[0], &mask, Some(&frames[1]), mm, false)
        .unwrap();
    let err = ahead
        .process_ahead(&frames[0], &mask, None, mm, false)
        .unwrap_err();
    assert!(matches!(err, LoopError::NotAnnounced), "{err}");
    ahead.process(&frames[2], &mask, mm, false).unwrap();
}
