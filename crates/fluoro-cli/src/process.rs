//! `fluoro process`: a study through the frame loop into the contract's output folder.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use fluoro_analysis::PlanChoice;
use fluoro_pipeline::{PipelineParams, process_study};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Compute backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The CPU path (rayon + SIMD).
    Cpu,
    /// The wgpu compute path on whatever adapter exists (a software one included).
    Gpu,
    /// A hardware GPU when there is one, else the CPU.
    Auto,
}

impl From<Backend> for fluoro_pipeline::Backend {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Cpu => Self::Cpu,
            Backend::Gpu => Self::Gpu,
            Backend::Auto => Self::Auto,
        }
    }
}

/// Options of `fluoro process`.
#[derive(Args, Debug)]
pub struct ProcessArgs {
    /// The DICOM study; several (e.g. `recordings/*.dcm`) make a batch: each goes to its
    /// own sub-folder of `--out`, named after the file, and `--out/batch.json` lists them.
    #[arg(required = true)]
    pub study: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Planned trajectory in pixels: entry_x,entry_y,target_x,target_y; or `auto` to plan
    /// from the landmarks (from where the instrument enters the field to the middle of the
    /// VILL it heads into; it follows the VILL until the line is locked, then stays fixed).
    #[arg(long)]
    pub plan: Option<PlanChoice>,
    /// Caution margin in mm: "caution" when 0 < tip-to-VILL <= this.
    #[arg(long, default_value_t = 3.0)]
    pub caution_mm: f64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `fluoro process` and prints the summary paragraph.
pub fn process(
    study: &Path,
    out: &Path,
    plan: Option<PlanChoice>,
    caution_mm: f64,
    backend: Backend,
    quiet: bool,
) -> Result<fluoro_pipeline::ProcessReport> {
    if !(caution_mm.is_finite() && caution_mm >= 0.0) {
        bail!("--caution-mm {caution_mm}: must be a non-negative number");
    }
    let mut params = PipelineParams::default();
    params.analysis.caution_mm = caution_mm;
    params.set_plan_choice(plan);
    let tty = std::io::stderr().is_terminal() && !quiet;
    let report = process_study(study, out, &params, backend.into(), |i, n| {
        if tty {
            let w = 30;
            let done = i * w / n.max(1);
            eprint!(
                "\r[{}{}] {i}/{n} frames",
                "#".repeat(done),
                " ".repeat(w - done)
            );
            let _ = std::io::stderr().flush();
            if i == n {
                eprintln!();
            }
        }
    })
    .with_context(|| format!("processing {}", study.display()))?;
    let s = report.states;
    println!(
        "Processed {} frames of {} into {}: the instrument was found in {} frames and the VILL in {}; states: {} safe, {} caution, {} stop, {} unknown. Per frame {:.1} ms median, {:.1} ms p95 ({}). Annotated frames are in {}.",
        report.frames,
        study.display(),
        out.display(),
        report.detected,
        report.with_vill,
        s[0],
        s[1],
        s[2],
        s[3],
        report.total.median_ms,
        report.total.p95_ms,
        report.backend,
        out.join("annotated").display()
    );
    if plan == Some(PlanChoice::Landmarks) {
        match report.landmark_plan {
            Some((p, i)) => println!(
                "Landmark plan (unchanged from frame {i} on): entry ({:.1}, {:.1}) px, target ({:.1}, {:.1}) px, the middle of the VILL.",
                p.entry[0], p.entry[1], p.target[0], p.target[1],
            ),
            None => println!("No landmark plan: no frame had both the instrument and the VILL."),
        }
    }
    Ok(report)
}

/// Runs `fluoro process`.
pub fn run(a: &ProcessArgs) -> Result<()> {
    let one =
        |study: &Path, out: &Path| process(study, out, a.plan, a.caution_mm, a.backend, a.quiet);
    match a.study.as_slice() {
        [study] => one(study, &a.out).map(|_| ()),
        studies => batch(studies, &a.out, one),
    }
}

/// Processes several studies, each into `out/NAME` (the file's stem, made unique), on
/// past any that fails, then writes `out/batch.json` (one entry per study: its folder, or
/// the error) and fails if any study did.
fn batch(
    studies: &[PathBuf],
    out: &Path,
    mut one: impl FnMut(&Path, &Path) -> Result<fluoro_pipeline::ProcessReport>,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut taken = std::collections::HashSet::new();
    let mut entries = Vec::new();
    let mut failed = 0;
    for study in studies {
        let stem = study
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "study".into());
        let name = (1..)
            .map(|k| {
                if k == 1 {
                    stem.clone()
                } else {
                    format!("{stem}-{k}")
                }
            })
            .find(|n| taken.insert(n.clone()))
            .expect("an unused name");
        let dir = out.join(&name);
        entries.push(match one(study, &dir) {
            Ok(r) => serde_json::json!({
                "study": study, "out": name, "ok": true, "frames": r.frames,
                "detected": r.detected, "with_vill": r.with_vill,
                "states": {"safe": r.states[0], "caution": r.states[1],
                           "stop": r.states[2], "unknown": r.states[3]},
                "total_ms": {"median": r.total.median_ms, "p95": r.total.p95_ms},
                "backend": r.backend,
            }),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#} (skipped; the batch goes on)");
                serde_json::json!({"study": study, "out": name, "ok": false, "error": format!("{e:#}")})
            }
        });
    }
    let path = out.join("batch.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&entries)?)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    println!(
        "Batch: {} of {} studies processed into {} (list: {}).",
        studies.len() - failed,
        studies.len(),
        out.display(),
        path.display()
    );
    if failed > 0 {
        bail!(
            "{failed} of {} studies failed (see {})",
            studies.len(),
            path.display()
        );
    }
    Ok(())
}
