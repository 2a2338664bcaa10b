//! `fluoro live`: the viewer's loop without the window. Plays a study at its recorded
//! timing, receives instances pushed over DICOM (C-STORE), or listens for a raw frame
//! stream (TCP or stdin; format in `fluoro_pipeline::stream`), and reports
//! arrival-to-overlay latency and dropped frames.
//! `fluoro stream`: sends a study as a raw frame stream (a stand-in for a frame grabber).

use crate::process::Backend;
use anyhow::{Context, Result, bail};
use clap::Args;
use fluoro_core::Frame;
use fluoro_pipeline::live::{FrameSource, LiveLoop, PlaybackSource};
use fluoro_pipeline::received::ReceivedSource;
use fluoro_pipeline::stream::{Header, SampleType, StreamSource, write_frame};
use fluoro_pipeline::{FrameLoop, PipelineParams};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `fluoro live`.
#[derive(Args, Debug)]
pub struct LiveArgs {
    /// The DICOM study to play (or use --dicom-listen / --listen / --stdin).
    pub study: Option<PathBuf>,
    /// Receive instances pushed with DICOM C-STORE (any storage SCU, e.g. DCMTK's
    /// `storescu`) on this address (alone: 127.0.0.1:11112; a bare port: that port on
    /// 127.0.0.1). Bind to a non-loopback address only on a trusted network.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADDR", conflicts_with_all = ["study", "stdin", "listen"])]
    pub dicom_listen: Option<String>,
    /// Our AE title for --dicom-listen.
    #[arg(long, default_value = "FLUORO")]
    pub ae_title: String,
    /// Where --dicom-listen keeps the received instances.
    #[arg(long, default_value = "fluoro-received")]
    pub store_dir: PathBuf,
    /// Listen for one raw frame stream on this address (alone: 127.0.0.1:4000; a bare
    /// port: that port on 127.0.0.1; port 0 picks a free one). Bind to a non-loopback
    /// address only on a trusted network.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADDR", conflicts_with_all = ["study", "stdin"])]
    pub listen: Option<String>,
    /// Read a raw frame stream from standard input.
    #[arg(long, conflicts_with = "study")]
    pub stdin: bool,
    /// Playback speed (1 = recorded timing, 0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Planned trajectory in pixels, entry_x,entry_y,target_x,target_y, or `auto` to plan
    /// from the landmarks (as `fluoro process --plan`).
    #[arg(long)]
    pub plan: Option<fluoro_analysis::PlanChoice>,
    /// Loop the study until --seconds have passed.
    #[arg(long, requires = "seconds")]
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
    let mut receiver = None;
    // the loop runs with the parameters `fluoro process` would use for the same study
    let mut params = PipelineParams::default();
    let (source, mask, mm): (Box<dyn FrameSource>, Frame<u8>, Option<f64>) =
        if let Some(path) = &a.study {
            let study = fluoro_dicom::Study::open(path)?;
            let mask = study.shutter_mask();
            let mm = study.info().mm_per_px;
            let src = PlaybackSource::new(study, a.speed, a.repeat);
            params = src.study_params(&params);
            (Box::new(src), mask, mm)
        } else if let Some(addr) = &a.dicom_listen {
            let addr = &fluoro_pipeline::listen_address(addr, fluoro_pipeline::DICOM_PORT);
            let mut cfg = fluoro_scp::ScpConfig::new(&a.store_dir);
            cfg.ae_title = a.ae_title.clone();
            let scp = fluoro_scp::StoreScp::bind(addr, cfg)?;
            eprintln!(
                "DICOM receiver {} listening on {}, storing to {}",
                a.ae_title,
                scp.local_addr(),
                a.store_dir.display()
            );
            let _ = std::io::stderr().flush();
            let (tx, rx) = std::sync::mpsc::channel();
            let handle = scp.spawn(tx);
            let mut src = ReceivedSource::new(rx);
            let wait = a.seconds.map(Duration::from_secs_f64);
            let (mask, mm) = src.wait_first(wait).map_err(anyhow::Error::msg)?;
            params = src.study_params(&params);
            receiver = Some((handle, src.stop_handle(), src.status_handle()));
            (Box::new(src), mask, mm)
        } else if let Some(addr) = &a.listen {
            let addr = &fluoro_pipeline::listen_address(addr, fluoro_pipeline::STREAM_PORT);
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            eprintln!("listening on {local}");
            let _ = std::io::stderr().flush();
            let (conn, peer) = listener
                .accept()
                .with_context(|| format!("accept on {local}"))?;
            conn.set_nodelay(true).ok();
            let mut src = StreamSource::new(
                std::io::BufReader::with_capacity(1 << 20, conn),
                peer.to_string(),
            );
            let (h, first) = src
                .peek_frame()
                .map_err(anyhow::Error::msg)?
                .with_context(|| format!("{peer}: closed before the first frame"))?;
            (
                Box::new(src),
                fluoro_pipeline::source::estimate_shutter_mask(&first),
                h.mm_per_px,
            )
        } else if a.stdin {
            let mut src = StreamSource::new(
                std::io::BufReader::with_capacity(1 << 20, std::io::stdin()),
                "stdin",
            );
            let (h, first) = src
                .peek_frame()
                .map_err(anyhow::Error::msg)?
                .context("stdin: closed before the first frame")?;
            (
                Box::new(src),
                fluoro_pipeline::source::estimate_shutter_mask(&first),
                h.mm_per_px,
            )
        } else {
            bail!("give a STUDY, --dicom-listen ADDR, --listen ADDR or --stdin");
        };
    params.analysis.anatomy_every = fluoro_pipeline::LIVE_ANATOMY_EVERY;
    params.set_plan_choice(a.plan);
    let fl = FrameLoop::with_backend(params, a.backend.into())?;
    let backend = fl.backend().to_string();
    let live = LiveLoop::start(source, fl, mask, mm);
    let t0 = Instant::now();
    let (mut shown, mut last_state) = (0u64, "-");
    // the "display": takes the newest result as it comes
    loop {
        if a.seconds.is_some_and(|s| t0.elapsed().as_secs_f64() >= s) {
            live.stop();
            if let Some((_, stop, _)) = &receiver {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        match live.results.try_take() {
            Some(r) => {
                shown += 1;
                last_state = r.analysis.guidance.state.as_str();
                live.recycle(r);
            }
            None if live.finished() => break,
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let rep = live
        .join()
        .map_err(anyhow::Error::msg)
        .context("live loop")?;
    let received = receiver.map(|(handle, _, status)| {
        handle.stop();
        status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    });
    if a.json {
        println!(
            "{}",
            serde_json::json!({"backend": backend, "report": rep, "shown": shown, "received": received})
        );
    } else {
        if let Some(r) = &received {
            println!(
                "received {} instances ({} refused, {} frames of superseded runs skipped){}",
                r.instances,
                r.refused,
                r.frames_skipped,
                r.problems
                    .last()
                    .map(|p| format!("; last problem: {p}"))
                    .unwrap_or_default()
            );
        }
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

/// Options of `fluoro stream`.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// The DICOM study to send.
    pub study: PathBuf,
    /// Where a `fluoro live --listen` (or the viewer) is listening, e.g. 127.0.0.1:4000.
    #[arg(long)]
    pub to: String,
    /// Speed (1 = recorded timing, 0 = as fast as possible).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

/// Runs `fluoro stream`.
pub fn stream(a: &StreamArgs) -> Result<()> {
    let study = fluoro_dicom::Study::open(&a.study)?;
    let input = fluoro_pipeline::source::StudyInput::new(&study);
    let mm = study.info().mm_per_px;
    let times = study.info().timing.times_ms.clone();
    let mut conn = std::io::BufWriter::new(
        std::net::TcpStream::connect(&a.to)
            .with_context(|| format!("cannot connect to {}", a.to))?,
    );
    let mut f = Frame::new(0, 0);
    let mut bytes = Vec::new();
    let t0 = Instant::now();
    for (i, t) in times.iter().enumerate() {
        if a.speed > 0.0 {
            let due = Duration::from_secs_f64(t / a.speed / 1000.0);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        input.read(&study, i, &mut f)?;
        bytes.clear();
        bytes.extend(f.data().iter().flat_map(|v| v.to_le_bytes()));
        let h = Header {
            sample: SampleType::F32,
            width: f.width() as u32,
            height: f.height() as u32,
            index: i as u64,
            mm_per_px: mm,
        };
        write_frame(&mut conn, &h, &bytes)
            .with_context(|| format!("sending frame {i} to {}", a.to))?;
        conn.flush()?;
    }
    eprintln!("sent {} frames to {}", times.len(), a.to);
    Ok(())
}
