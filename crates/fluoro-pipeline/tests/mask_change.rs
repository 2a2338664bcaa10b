//! A shutter mask changed in place between frames is seen as changed: the loop (and the
//! stages that keep what they derived from the mask, see `Frame::stamp`) gives the same
//! results as a loop handed a new mask frame with the new content.

use fluoro_core::Frame;

mod common;
use fluoro_pipeline::{FrameLoop, PipelineParams};

#[test]
fn a_mask_changed_in_place_is_used_as_changed() {
    let (study, frames) = common::fixture_frames(5);
    let mm = study.info().mm_per_px;
    let first = study.shutter_mask();
    let (w, h) = first.size();
    // the second mask: the first with a notch cut into its left side (not convex)
    let notched = |x: usize, y: usize| x < w / 3 && (h / 3..h / 2).contains(&y);
    let mut in_place = first.clone();
    let (mut changed, mut fresh) = (
        FrameLoop::new(PipelineParams::default()),
        FrameLoop::new(PipelineParams::default()),
    );
    for (i, f) in frames.iter().enumerate() {
        if i == 2 {
            for y in 0..h {
                for (x, m) in in_place.row_mut(y).iter_mut().enumerate() {
                    if notched(x, y) {
                        *m = 0;
                    }
                }
            }
        }
        // a new frame every time, with the content the in-place one has now
        let new_mask = Frame::from_fn(w, h, |x, y| in_place.get(x, y));
        let (a, _) = changed.process(f, &in_place, mm, true).unwrap();
        let (b, _) = fresh.process(f, &new_mask, mm, true).unwrap();
        assert_eq!(a, b, "frame {i}");
        assert_eq!(
            changed.labels().data(),
            fresh.labels().data(),
            "labels, frame {i}"
        );
        assert!(
            changed.annotated().as_raw() == fresh.annotated().as_raw(),
            "annotated frame {i}"
        );
    }
    // the notch reached the output: the labels there are background
    let labels = changed.labels();
    assert!((h / 3..h / 2).all(|y| (0..w / 3).all(|x| labels.get(x, y) == 0)));
}
