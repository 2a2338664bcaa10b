//! `fluoro`: the command-line front end of the fluoroscopy guidance pipeline.

mod bench;
mod demo;
mod eval;
mod host_load;
mod info;
mod live;
mod preview;
mod process;
mod send;
mod suite;
mod synth;
mod train_data;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Fluoroscopy image guidance for the mild procedure: read DICOM fluoroscopy, inspect and
/// export it.
#[derive(Parser, Debug)]
#[command(name = "fluoro", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe a study: SOP class, transfer syntax, frames, size, bits, photometric,
    /// frame timing, C-arm geometry, mm per pixel and its source, shutter.
    Info {
        /// The DICOM file.
        study: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Export every frame's stored pixel values to DIR/frames.npy, shape (frames, rows,
    /// columns), dtype of the stored data, before any LUT.
    Export {
        /// The DICOM file.
        study: PathBuf,
        /// Output folder (created if absent).
        #[arg(long)]
        out: PathBuf,
        /// Also write each frame as an 8-bit PNG (modality LUT, VOI LUT, MONOCHROME1
        /// inversion applied) to DIR/png/NNNNNN.png.
        #[arg(long)]
        png: bool,
    },
    /// Simulate a mild-procedure fluoroscopy study with exact ground truth: an XA
    /// multi-frame DICOM file plus the truth folder (frames.jsonl, labels/, scene.json).
    Synth(synth::SynthArgs),
    /// Process a study: enhance every frame, find the instrument tip and the VILL, compute
    /// the tip-to-VILL distance and safety state, and write DIR/frames.jsonl, labels/,
    /// annotated/ and summary.json.
    Process(process::ProcessArgs),
    /// Score a result folder against a ground-truth folder: detection, tip and axis error,
    /// VILL, safety states (missed stops), Dice per label.
    Eval(eval::EvalArgs),
    /// Compare two results of the same study frame by frame (e.g. `--backend gpu` against
    /// `cpu`, or two parameter settings): frames whose state, detection or VILL presence
    /// differ, and the largest tip, VILL and depth differences.
    Compare(eval::CompareArgs),
    /// Time the whole per-frame chain (enhance, analyse, overlay) on a synthetic study in
    /// memory: median, p95 and p99 ms per stage.
    Bench(bench::BenchArgs),
    /// Generate a study, process it, evaluate it, and say where the annotated frames are.
    Demo(demo::DemoArgs),
    /// The held-out evaluation suite: 12 simulated studies (seeds, sizes, doses, angles,
    /// views, scenarios, contrast, side), each processed and scored, then pooled.
    Suite(suite::SuiteArgs),
    /// Play a study through the live loop at its recorded timing (frames in on one thread,
    /// processing on another, newest frame wins) and report latency and dropped frames.
    Live(live::LiveArgs),
    /// Send a study as a raw frame stream (the format of `fluoro live --listen`) at its
    /// recorded timing: a stand-in for a frame grabber.
    Stream(live::StreamArgs),
    /// Push a study to a DICOM Storage SCP with C-STORE (`--per-frame`: one single-frame
    /// instance per frame at the recorded timing, as a C-arm does).
    Send(send::SendArgs),
    /// Export the anatomy model's training set (features and truth classes of simulated
    /// studies with their own seeds) for `scripts/train_anatomy.py`.
    TrainData(train_data::TrainDataArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { study, json } => info::run(&study, json),
        Command::Export { study, out, png } => export(&study, &out, png),
        Command::Synth(args) => synth::run(&args),
        Command::Process(args) => process::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Compare(args) => eval::compare(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Suite(args) => suite::run(&args),
        Command::Live(args) => live::run(&args),
        Command::Stream(args) => live::stream(&args),
        Command::Send(args) => send::run(&args),
        Command::TrainData(args) => train_data::run(&args),
    }
}

fn export(study: &std::path::Path, out: &std::path::Path, png: bool) -> Result<()> {
    let s = fluoro_dicom::Study::open(study)?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create output folder", out.display()))?;
    let path = out.join("frames.npy");
    let stats = fluoro_dicom::npy::export_study(&s, &path)?;
    let f = s.format();
    println!(
        "wrote {} ({} frames of {}x{}, dtype {}, {:.1} MB)",
        path.display(),
        stats.frames,
        f.columns,
        f.rows,
        f.npy_dtype(),
        stats.bytes as f64 / 1e6
    );
    if png {
        let dir = out.join("png");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create folder", dir.display()))?;
        for i in 0..s.frame_count() {
            let frame = s.frame(i)?;
            let d = s.display_u8(&frame, i);
            let p = dir.join(format!("{i:06}.png"));
            image::GrayImage::from_raw(d.width() as u32, d.height() as u32, d.into_vec())
                .context("frame buffer size")?
                .save(&p)
                .with_context(|| format!("{}: cannot write PNG", p.display()))?;
        }
        println!("wrote {} PNG frames to {}", s.frame_count(), dir.display());
    }
    Ok(())
}
