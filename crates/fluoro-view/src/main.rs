//! `fluoro-view`: the live viewer at the table. Frames are played (or, later, received)
//! through the live loop; the window shows the newest processed frame with the guidance
//! overlay, the tip-to-VILL distance and state in large type, and controls for playback,
//! window/level, overlay layers and the plan.

mod app;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// The live fluoroscopy guidance viewer.
#[derive(Parser, Debug)]
#[command(name = "fluoro-view", version, about)]
struct Args {
    /// The DICOM study to play.
    study: PathBuf,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Playback speed (1 = recorded timing).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Play once instead of looping.
    #[arg(long)]
    once: bool,
    /// Close the window after this many seconds (for scripts and tests).
    #[arg(long)]
    exit_after: Option<f64>,
    /// Save a screenshot of the window here (taken just before --exit-after, or after 3 s).
    #[arg(long)]
    screenshot: Option<PathBuf>,
}

/// Compute backend.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    /// CPU.
    Cpu,
    /// GPU (any adapter).
    Gpu,
    /// A hardware GPU when there is one, else the CPU.
    Auto,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let a = Args::parse();
    if !(a.speed.is_finite() && a.speed > 0.0) {
        bail!("--speed {}: must be > 0", a.speed);
    }
    let study = fluoro_dicom::Study::open(&a.study)?;
    let backend = match a.backend {
        BackendArg::Cpu => fluoro_pipeline::Backend::Cpu,
        BackendArg::Gpu => fluoro_pipeline::Backend::Gpu,
        BackendArg::Auto => fluoro_pipeline::Backend::Auto,
    };
    let title = format!("fluoro-view - {}", a.study.display());
    let viewer = app::Viewer::new(
        study,
        backend,
        a.speed,
        !a.once,
        a.exit_after,
        a.screenshot.clone(),
    )?;
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 860.0])
            .with_title(&title),
        ..Default::default()
    };
    eframe::run_native("fluoro-view", options, Box::new(|_cc| Ok(Box::new(viewer))))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("window")
}
