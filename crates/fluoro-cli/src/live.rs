//! `fluoro live`: plays a study through the live loop at its own timing (the viewer's loop
//! without the window) and reports latency and dropped frames.

use crate::process::Backend;
use anyhow::{Context, Result, bail};
use clap::Args;
use fluoro_pipeline::live::{LiveLoop, PlaybackSource};
use fluoro_pipeline::{FrameLoop, PipelineParams};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `fluoro live`.
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The DICOM study to play.
    pub study: PathBuf,
    /// Playback speed (1 = recorded timing, 0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Loop the study until --seconds have passed.
    #[arg(long)]
    pub repeat: bool,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fluoro live`.
pub fn run(a: &LiveArgs) -> Result<()> {
    if !(a.speed.is_finite() && a.speed >= 0.0) {
        bail!("--speed {}: must be >= 0", a.speed);
    }
    let study = fluoro_dicom::Study::open(&a.study)?;
    let mask = study.shutter_mask();
    let mm = study.info().mm_per_px;
    let frames = study.frame_count();
    let fl = FrameLoop::with_backend(PipelineParams::default(), a.backend.into())?;
    let backend = fl.backend().to_string();
    let src = PlaybackSource::new(study, a.speed, a.repeat);
    let live = LiveLoop::start(Box::new(src), fl, mask, mm);
    let t0 = Instant::now();
    let mut shown = 0u64;
    let mut last_state = String::new();
    // the "display": takes the newest result at up to 120 Hz
    loop {
        if let Some(r) = live.results.try_take() {
            shown += 1;
            last_state = r.analysis.guidance.state.as_str().to_string();
        }
        if a.seconds.is_some_and(|s| t0.elapsed().as_secs_f64() >= s) {
            live.stop();
        }
        let rep = live.report();
        if !a.repeat && rep.arrived as usize >= frames && rep.processed + rep.dropped >= rep.arrived
        {
            break;
        }
        if a.repeat
            && a.seconds
                .is_some_and(|s| t0.elapsed().as_secs_f64() >= s + 1.0)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(8));
    }
    live.stop();
    let rep = live
        .join()
        .map_err(anyhow::Error::msg)
        .context("live loop")?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"backend": backend, "report": rep, "shown": shown})
        );
    } else {
        println!(
            "{} frames arrived, {} processed, {} dropped, {shown} shown; latency arrival->overlay p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1} ({backend}); last state {last_state}",
            rep.arrived,
            rep.processed,
            rep.dropped,
            rep.latency.median_ms,
            rep.latency.p95_ms,
            rep.latency.p99_ms,
            rep.latency.max_ms
        );
    }
    Ok(())
}
