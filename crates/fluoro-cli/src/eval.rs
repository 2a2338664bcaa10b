//! `fluoro eval`: scores against ground truth.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Options of `fluoro eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Ground-truth folder (from `fluoro synth --truth`).
    #[arg(long)]
    pub truth: PathBuf,
    /// Result folder (from `fluoro process --out`).
    #[arg(long)]
    pub result: PathBuf,
    /// Also write the scores as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `fluoro eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let s = fluoro_eval::evaluate(&a.truth, &a.result)?;
    print!("{}", fluoro_eval::table(&s));
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&s)?)
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    Ok(())
}

/// Options of `fluoro compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// First result folder (from `fluoro process --out`).
    pub a: PathBuf,
    /// Second result folder of the same study.
    pub b: PathBuf,
    /// Also write the agreement as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fail (exit status 1) unless every frame has the same state, detection and VILL
    /// presence, with tips, VILL ends and depths within 0.01 px / 0.05 px / 0.01 mm.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `fluoro compare`.
pub fn compare(a: &CompareArgs) -> Result<()> {
    let g = fluoro_eval::agreement::agreement(&a.a, &a.b)?;
    println!("{}", g.summary());
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&g)?)
            .with_context(|| format!("{}: cannot write", p.display()))?;
    }
    if a.strict && !g.identical_within(0.01, 0.05, 0.01) {
        anyhow::bail!(
            "{} and {} give different guidance",
            a.a.display(),
            a.b.display()
        );
    }
    Ok(())
}
