//! `fluoro-view`: the live viewer at the table. Frames are played, received over DICOM
//! (C-STORE) or read from a raw stream, through the live loop; the window shows the newest
//! processed frame with the guidance overlay, the tip-to-VILL distance and state in large
//! type, and controls for playback, window/level, overlay layers and the plan.

mod app;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// The live fluoroscopy guidance viewer.
#[derive(Parser, Debug)]
#[command(name = "fluoro-view", version, about)]
struct Args {
    /// The DICOM study to play (or --dicom-listen / --listen for live input).
    #[arg(required_unless_present_any = ["listen", "dicom_listen"])]
    study: Option<PathBuf>,
    /// Receive instances pushed with DICOM C-STORE (e.g. from the C-arm or DCMTK's
    /// `storescu`) on this address (alone: 127.0.0.1:11112; a bare port: that port on
    /// 127.0.0.1). The window opens when the first instance has arrived. Bind to a
    /// non-loopback address only on a trusted network.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADDR", conflicts_with_all = ["study", "listen"])]
    dicom_listen: Option<String>,
    /// Our AE title for --dicom-listen.
    #[arg(long, default_value = "FLUORO")]
    ae_title: String,
    /// Where --dicom-listen keeps the received instances.
    #[arg(long, default_value = "fluoro-received")]
    store_dir: PathBuf,
    /// Listen for a raw frame stream (format: `fluoro live --help`, README) on this address
    /// (alone: 127.0.0.1:4000; a bare port: that port on 127.0.0.1). Bind to a non-loopback
    /// address only on a trusted network.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADDR", conflicts_with = "study")]
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
    /// Planned trajectory in pixels, entry_x,entry_y,target_x,target_y, or `auto` to plan
    /// from the landmarks (the A key does it too).
    #[arg(long)]
    plan: Option<fluoro_analysis::PlanChoice>,
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
        (None, None) if a.dicom_listen.is_some() => {
            let addr = &fluoro_pipeline::listen_address(
                a.dicom_listen.as_deref().unwrap_or_default(),
                fluoro_pipeline::DICOM_PORT,
            );
            let mut cfg = fluoro_scp::ScpConfig::new(&a.store_dir);
            cfg.ae_title = a.ae_title.clone();
            let scp = fluoro_scp::StoreScp::bind(addr, cfg)?;
            let local = scp.local_addr();
            eprintln!(
                "DICOM receiver {} listening on {local}, storing to {}; waiting for the first instance",
                a.ae_title,
                a.store_dir.display()
            );
            let (tx, rx) = std::sync::mpsc::channel();
            let handle = scp.spawn(tx);
            let mut src = fluoro_pipeline::received::ReceivedSource::new(rx);
            let (mask, mm) = src
                .wait_first(a.exit_after.map(std::time::Duration::from_secs_f64))
                .map_err(anyhow::Error::msg)?;
            (
                app::Source::Received(Box::new(src), mask, mm, handle),
                format!("fluoro-view - DICOM receiver {} on {local}", a.ae_title),
            )
        }
        (Some(path), _) => (
            app::Source::Study(Box::new(fluoro_dicom::Study::open(path)?)),
            format!("fluoro-view - {}", path.display()),
        ),
        (None, Some(addr)) => {
            let addr = &fluoro_pipeline::listen_address(addr, fluoro_pipeline::STREAM_PORT);
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
        (None, None) => bail!("give a STUDY, --dicom-listen ADDR or --listen ADDR"),
    };
    let viewer = app::Viewer::new(
        source,
        backend,
        a.speed,
        !a.once,
        a.exit_after,
        a.screenshot.clone(),
        a.plan,
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
