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
