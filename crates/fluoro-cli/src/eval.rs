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
    /// First result folder (from `fluoro process --out`), or a batch or suite folder
    /// (one result per sub-folder: `NAME/frames.jsonl` or `NAME/result/frames.jsonl`).
    pub a: PathBuf,
    /// Second result folder of the same study, or a batch or suite folder with the same
    /// study names.
    pub b: PathBuf,
    /// Also write the agreement as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fail (exit status 1) unless every frame has the same state, detection and VILL
    /// presence, with tips, VILL ends and depths within 0.01 px / 0.05 px / 0.01 mm.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `fluoro compare`: one result against another, or every study of a batch or suite
/// run against the same-named study of another (pooled).
pub fn compare(a: &CompareArgs) -> Result<()> {
    use fluoro_eval::agreement::{Agreement, agreement, result_folders};
    let (g, json) = if a.a.join("frames.jsonl").is_file() {
        let g = agreement(&a.a, &a.b)?;
        println!("{}", g.summary());
        let json = serde_json::to_value(&g)?;
        (g, json)
    } else {
        let (ra, rb) = (result_folders(&a.a)?, result_folders(&a.b)?);
        if ra.is_empty() {
            anyhow::bail!(
                "{}: no frames.jsonl, and no sub-folder holds a result",
                a.a.display()
            );
        }
        let names = |r: &[(String, PathBuf)]| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(&ra) != names(&rb) {
            anyhow::bail!(
                "{} and {} hold different studies: {:?} vs {:?}",
                a.a.display(),
                a.b.display(),
                names(&ra),
                names(&rb)
            );
        }
        let mut pooled = Agreement::default();
        let mut studies = Vec::new();
        for ((name, pa), (_, pb)) in ra.iter().zip(&rb) {
            let g = agreement(pa, pb)?;
            println!("{name:<30} {}", g.summary());
            pooled.add(&g);
            studies.push(serde_json::json!({"study": name, "agreement": g}));
        }
        println!("all {} studies: {}", studies.len(), pooled.summary());
        let json = serde_json::json!({"studies": studies, "pooled": pooled});
        (pooled, json)
    };
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&json)?)
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
