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
    /// The DICOM study to play (or --listen for a live raw frame stream).
    #[arg(required_unless_present = "listen")]
    study: Option<PathBuf>,
    /// Listen for a raw frame stream (format: `fluoro live --help`, README) on this address,
    /// e.g. 127.0.0.1:4000. Bind to a non-loopback address only on a trusted network.
    #[arg(long, conflicts_with = "study")]
    listen: Option<String>,
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
    let backend = match a.backend {
        BackendArg::Cpu => fluoro_pipeline::Backend::Cpu,
        BackendArg::Gpu => fluoro_pipeline::Backend::Gpu,
        BackendArg::Auto => fluoro_pipeline::Backend::Auto,
    };
    let (source, title) = match (&a.study, &a.listen) {
        (Some(path), _) => (
            app::Source::Study(Box::new(fluoro_dicom::Study::open(path)?)),
            format!("fluoro-view - {}", path.display()),
        ),
        (None, Some(addr)) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            eprintln!("listening on {local}");
            let (conn, peer) = listener
                .accept()
                .with_context(|| format!("accept on {local}"))?;
            conn.set_nodelay(true).ok();
            (
                app::Source::Stream(
                    Box::new(std::io::BufReader::with_capacity(1 << 20, conn)),
                    peer.to_string(),
                ),
                format!("fluoro-view - live from {peer}"),
            )
        }
        (None, None) => bail!("give a STUDY or --listen ADDR"),
    };
    let viewer = app::Viewer::new(
        source,
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
