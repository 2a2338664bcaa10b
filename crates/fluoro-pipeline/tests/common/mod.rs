//! What the frame loop's tests share.

use fluoro_core::Frame;
use fluoro_pipeline::source::StudyInput;

/// The committed 256 px study and its first `n` frames (fewer if it has fewer).
pub fn fixture_frames(n: usize) -> (fluoro_dicom::Study, Vec<Frame<f32>>) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clo-cross-256.dcm");
    let study = fluoro_dicom::Study::open(&path).unwrap();
    let input = StudyInput::new(&study);
    let frames = (0..study.frame_count().min(n))
        .map(|i| {
            let mut f = Frame::new(0, 0);
            input.read(&study, i, &mut f).unwrap();
            f
        })
        .collect();
    (study, frames)
}
