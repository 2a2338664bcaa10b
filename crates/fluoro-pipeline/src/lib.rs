//! The frame loop and the study processing built on it.
//!
//! [`FrameLoop`] takes one frame (dense = low values) through enhancement, analysis and
//! overlay; [`process_study`] runs a whole DICOM study through it and writes the contract's
//! output folder. The live viewer drives the same `FrameLoop`.

pub mod font;
pub mod frame_loop;
pub mod live;
pub mod overlay;
pub mod received;
pub mod source;
pub mod stats;
pub mod stream;
pub mod writer;

pub use frame_loop::{Backend, FrameLoop, FrameTimes, LoopError, PipelineParams};
pub use stats::TimeStats;

use fluoro_core::Frame;
use fluoro_core::record::{FrameRecord, SafetyState, TimingRecord};
use fluoro_dicom::Study;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// The live loop scores the anatomy model on every n-th frame (~4 times a second at 15
/// frames/s; the label map in between reuses the last scores with the current instrument).
pub const LIVE_ANATOMY_EVERY: usize = 4;

/// Default port of the DICOM receiver (the registered DICOM port).
pub const DICOM_PORT: u16 = 11112;
/// Default port of the raw frame stream.
pub const STREAM_PORT: u16 = 4000;

/// The address a listener binds: empty = loopback on `default_port`, a bare port = that
/// port on loopback, anything else as given. Listeners stay on localhost unless told
/// otherwise.
pub fn listen_address(arg: &str, default_port: u16) -> String {
    let a = arg.trim();
    if a.is_empty() {
        format!("127.0.0.1:{default_port}")
    } else if a.parse::<u16>().is_ok() {
        format!("127.0.0.1:{a}")
    } else {
        a.to_string()
    }
}

/// `params` adapted to a study: its intensity model and value range, and the view (the VILL
/// only in oblique views; the edge-touch rule off in AP and lateral views).
pub fn study_params(
    study: &Study,
    input: &source::StudyInput,
    params: &PipelineParams,
) -> PipelineParams {
    let mut params = params.clone();
    params.enhance.intensity = input.intensity;
    params.enhance.range = input.range;
    let clo_like = study
        .info()
        .geometry
        .primary_angle_deg
        .is_none_or(|a| a.abs() > 15.0 && a.abs() < 75.0);
    params.analysis.vill_enabled = params.analysis.vill_enabled && clo_like;
    if !clo_like {
        // In AP and lateral views the portal is foreshortened and may end inside the field;
        // the edge-touch rule (which rejects edge-on contrast lines in CLO) does not apply.
        params.analysis.instrument.edge_touch_frac = f32::INFINITY;
    }
    params
}

/// Errors of study processing.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Reading the study failed.
    #[error(transparent)]
    Dicom(#[from] fluoro_dicom::DicomError),
    /// Writing outputs failed.
    #[error(transparent)]
    Write(#[from] writer::WriteError),
    /// The frame loop failed (GPU).
    #[error(transparent)]
    Loop(#[from] LoopError),
}

/// What a processed study produced, for the summary paragraph.
#[derive(Clone, Debug)]
pub struct ProcessReport {
    /// Frames processed.
    pub frames: usize,
    /// Frames with the instrument detected.
    pub detected: usize,
    /// Frames with a VILL.
    pub with_vill: usize,
    /// Count per safety state (safe, caution, stop, unknown).
    pub states: [usize; 4],
    /// Per-frame total processing time statistics.
    pub total: TimeStats,
    /// The summary written to `summary.json`.
    pub summary: serde_json::Value,
    /// The landmark plan as it ended, and the frame from which it stayed unchanged (its
    /// `landmark_plan` in the summary).
    pub landmark_plan: Option<(fluoro_analysis::Plan, usize)>,
    /// The backend that ran.
    pub backend: String,
}

/// Runs every frame of `study_path` through a [`FrameLoop`] and writes `out`.
/// `progress(i, n)` is called after each frame.
pub fn process_study(
    study_path: &Path,
    out: &Path,
    params: &PipelineParams,
    backend: Backend,
    mut progress: impl FnMut(usize, usize),
) -> Result<ProcessReport, PipelineError> {
    let study = Study::open(study_path)?;
    let info = study.info().clone();
    let input = source::StudyInput::new(&study);
    let params = study_params(&study, &input, params);
    let mut fl = FrameLoop::with_backend(params.clone(), backend)?;
    let mask = study.shutter_mask();
    let mm = info.mm_per_px;
    let mut w = writer::OutputWriter::create(out)?;
    // one frame read ahead: the GPU backend queues its enhancement while this one is analysed
    let (mut frame, mut next) = (Frame::new(0, 0), Frame::new(0, 0));
    let n = study.frame_count();
    let mut decode_ms = 0.0;
    if n > 0 {
        let t = Instant::now();
        input.read(&study, 0, &mut frame)?;
        decode_ms = t.elapsed().as_secs_f64() * 1000.0;
    }
    let (mut totals, mut enh, mut ana, mut ovl, mut dec) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut states = [0usize; 4];
    let (mut detected, mut with_vill) = (0, 0);
    // the plan the frames were measured against, and the frame it took its last value
    let mut plan_used: Option<(fluoro_analysis::Plan, usize)> = None;
    for i in 0..n {
        let mut next_decode_ms = 0.0;
        // a frame that fails to decode is reported after this one is written, not instead
        let mut next_error = None;
        if i + 1 < n {
            let t = Instant::now();
            match input.read(&study, i + 1, &mut next) {
                Ok(()) => next_decode_ms = t.elapsed().as_secs_f64() * 1000.0,
                Err(e) => next_error = Some(e),
            }
        }
        let ahead = (i + 1 < n && next_error.is_none()).then_some(&next);
        let (a, times) = fl.process_ahead(&frame, &mask, ahead, mm, true)?;
        let total = decode_ms + times.total_ms;
        let rec = FrameRecord {
            frame: i,
            time_ms: info.timing.times_ms.get(i).copied().unwrap_or(0.0),
            tool: a.tool.clone(),
            vill: a.vill,
            guidance: a.guidance.clone(),
            timing: Some(TimingRecord { total_ms: total }),
        };
        w.write_frame(&rec, fl.labels(), Some(fl.annotated()))?;
        states[SafetyState::ALL
            .iter()
            .position(|s| *s == a.guidance.state)
            .unwrap_or(3)] += 1;
        detected += usize::from(a.tool.detected);
        with_vill += usize::from(a.vill.is_some());
        if let Some(p) = a.plan
            && plan_used.is_none_or(|(q, _)| q != p)
        {
            plan_used = Some((p, i));
        }
        totals.push(total);
        dec.push(decode_ms);
        enh.push(times.enhance_ms);
        ana.push(times.analyse_ms);
        ovl.push(times.overlay_ms);
        progress(i + 1, n);
        if let Some(e) = next_error {
            return Err(e.into());
        }
        std::mem::swap(&mut frame, &mut next);
        decode_ms = next_decode_ms;
    }
    let total = TimeStats::of(&totals);
    let landmark_plan = plan_used.filter(|_| params.plan.is_none());
    let summary = json!({
        "software": concat!("fluoro ", env!("CARGO_PKG_VERSION")),
        "study": {
            "path": info.path,
            "sop_class_uid": info.sop_class_uid,
            "sop_class_name": info.sop_class_name,
            "transfer_syntax_uid": info.transfer_syntax_uid,
            "frames": n,
            "rows": info.pixel_format.rows,
            "columns": info.pixel_format.columns,
            "positioner_primary_angle_deg": info.geometry.primary_angle_deg,
            "positioner_secondary_angle_deg": info.geometry.secondary_angle_deg,
        },
        "mm_per_px": mm,
        "mm_source": info.mm_source,
        "timing_source": info.timing.source,
        "time_assumed_15fps": info.timing.source == fluoro_core::TimingSource::Assumed15Fps,
        "options": {
            "caution_mm": params.analysis.caution_mm,
            "plan": params.plan.map(|p| json!({"entry": p.entry, "target": p.target})),
            "plan_from_landmarks": params.plan.is_none() && params.analysis.plan_from_landmarks,
            "vill_enabled": params.analysis.vill_enabled,
            "pipeline": params,
            "backend": fl.backend(),
        },
        // the landmark plan as it ended (fixed from `since_frame` on), when one was made
        "landmark_plan": landmark_plan
            .map(|(p, i)| json!({"entry": p.entry, "target": p.target, "since_frame": i})),
        "counts": {
            "frames": n,
            "instrument_detected": detected,
            "vill_found": with_vill,
            "states": {"safe": states[0], "caution": states[1], "stop": states[2], "unknown": states[3]},
        },
        "timing_ms": {
            "decode": TimeStats::of(&dec),
            "enhance": TimeStats::of(&enh),
            "analyse": TimeStats::of(&ana),
            "overlay": TimeStats::of(&ovl),
            "total": total,
        },
    });
    w.finish(&summary)?;
    let backend = fl.backend().to_string();
    Ok(ProcessReport {
        frames: n,
        detected,
        with_vill,
        states,
        total,
        summary,
        landmark_plan,
        backend,
    })
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listeners_default_to_loopback() {
        assert_eq!(listen_address("", 11112), "127.0.0.1:11112");
        assert_eq!(listen_address("4100", 4000), "127.0.0.1:4100");
        assert_eq!(listen_address("0.0.0.0:104", 4000), "0.0.0.0:104");
        assert_eq!(listen_address("[::1]:5000", 4000), "[::1]:5000");
    }
}
