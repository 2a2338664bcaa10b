//! `fluoro synth`: write a synthetic study and its ground truth.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fluoro_synth::{Scenario, SynthConfig, View};
use std::path::PathBuf;
use std::time::Instant;

/// C-arm view.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ViewArg {
    /// Contralateral oblique, rotated away from the instrument by --angle.
    Clo,
    /// Posterior-anterior ("AP").
    Ap,
    /// Lateral.
    Lateral,
}

/// How far the tool goes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScenarioArg {
    /// Stops dorsal to the VILL.
    Short,
    /// Stops on the VILL.
    Touch,
    /// Crosses the VILL by 3 mm.
    Cross,
}

/// Options of `fluoro synth`.
#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Output DICOM file (X-Ray Angiographic, multi-frame).
    #[arg(long)]
    out: PathBuf,
    /// Ground-truth folder: frames.jsonl, labels/NNNNNN.png, scene.json.
    #[arg(long)]
    truth: PathBuf,
    /// Start from a preset (bench-512, bench-1024, bench-1536, demo, fixture); other
    /// options given override it.
    #[arg(long)]
    preset: Option<String>,
    /// Seed: anatomy, instrument path and noise. Same seed, same bytes.
    #[arg(long)]
    seed: Option<u64>,
    /// Detector size in pixels (square).
    #[arg(long)]
    size: Option<usize>,
    /// Number of frames.
    #[arg(long)]
    frames: Option<usize>,
    /// View.
    #[arg(long, value_enum)]
    view: Option<ViewArg>,
    /// CLO angle in degrees (typically 35-55).
    #[arg(long)]
    angle: Option<f64>,
    /// Dose: photons per pixel through soft tissue (300 is low, 1000 normal).
    #[arg(long)]
    dose: Option<f64>,
    /// Instrument scenario.
    #[arg(long, value_enum)]
    scenario: Option<ScenarioArg>,
    /// Inject epidural contrast (an epidurogram).
    #[arg(long)]
    contrast: bool,
    /// Frames per second.
    #[arg(long)]
    fps: Option<f64>,
    /// Write a side-by-side PNG of the last frame and its ground truth here.
    #[arg(long)]
    preview: Option<PathBuf>,
}

/// Builds the config from a preset and overrides.
pub fn config(a: &SynthArgs) -> Result<SynthConfig> {
    let mut c = match &a.preset {
        Some(p) => SynthConfig::preset(p).with_context(|| {
            format!(
                "unknown preset '{p}' (known: {})",
                SynthConfig::PRESETS.join(", ")
            )
        })?,
        None => SynthConfig::default(),
    };
    if let Some(v) = a.seed {
        c.seed = v;
    }
    if let Some(v) = a.size {
        if !(32..=4096).contains(&v) {
            bail!("--size {v}: must be 32..4096");
        }
        c.size = v;
    }
    if let Some(v) = a.frames {
        if v == 0 || v > 10_000 {
            bail!("--frames {v}: must be 1..10000");
        }
        c.frames = v;
    }
    if let Some(v) = a.view {
        c.view = match v {
            ViewArg::Clo => View::Clo,
            ViewArg::Ap => View::Ap,
            ViewArg::Lateral => View::Lateral,
        };
    }
    if let Some(v) = a.angle {
        if !(0.0..=90.0).contains(&v) {
            bail!("--angle {v}: must be 0..90 degrees");
        }
        c.angle_deg = v;
    }
    if let Some(v) = a.dose {
        if !(v > 1.0 && v < 1e7) {
            bail!("--dose {v}: must be between 1 and 1e7 photons per pixel");
        }
        c.dose = v;
    }
    if let Some(v) = a.scenario {
        c.scenario = match v {
            ScenarioArg::Short => Scenario::Short,
            ScenarioArg::Touch => Scenario::Touch,
            ScenarioArg::Cross => Scenario::Cross,
        };
    }
    if a.contrast {
        c.contrast = true;
    }
    if let Some(v) = a.fps {
        if !(v > 0.0 && v <= 120.0) {
            bail!("--fps {v}: must be in (0, 120]");
        }
        c.fps = v;
    }
    Ok(c)
}

/// Runs `fluoro synth`.
pub fn run(a: &SynthArgs) -> Result<()> {
    let c = config(a)?;
    let t = Instant::now();
    let study = fluoro_synth::generate(&c);
    let render_s = t.elapsed().as_secs_f64();
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    }
    fluoro_synth::output::write_dicom(&study, &a.out)?;
    fluoro_synth::output::write_truth(&study, &a.truth)?;
    if let Some(p) = &a.preview {
        crate::preview::write_truth_preview(&study, p)?;
    }
    let stops = study
        .records
        .iter()
        .filter(|r| r.guidance.state == fluoro_core::record::SafetyState::Stop)
        .count();
    println!(
        "wrote {} ({} frames {}x{}, {:?} {:?}{}) and truth in {}: rendered in {:.2} s ({:.0} ms/frame), {} stop frames",
        a.out.display(),
        c.frames,
        c.size,
        c.size,
        c.view,
        c.scenario,
        if c.contrast { " +contrast" } else { "" },
        a.truth.display(),
        render_s,
        render_s * 1000.0 / c.frames as f64,
        stops
    );
    Ok(())
}
