//! `fluoro demo`: simulate, process, evaluate.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Options of `fluoro demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Working folder (study, truth, result).
    #[arg(long, default_value = "fluoro-demo")]
    pub out: PathBuf,
    /// Seed of the simulated study.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// Runs `fluoro demo`.
pub fn run(a: &DemoArgs) -> Result<()> {
    let mut cfg = fluoro_synth::SynthConfig::preset("demo").expect("demo preset");
    cfg.seed = a.seed;
    std::fs::create_dir_all(&a.out)?;
    let study = a.out.join("study.dcm");
    let truth = a.out.join("truth");
    let result = a.out.join("result");
    let s = fluoro_synth::generate(&cfg);
    fluoro_synth::output::write_dicom(&s, &study)?;
    fluoro_synth::output::write_truth(&s, &truth)?;
    println!(
        "simulated {} ({} frames, {}x{}, CLO, the tool crosses the VILL; truth in {})",
        study.display(),
        cfg.frames,
        cfg.size,
        cfg.size,
        truth.display()
    );
    crate::process::process(
        &study,
        &result,
        Some(fluoro_analysis::PlanChoice::Landmarks),
        3.0,
        crate::process::Backend::Cpu,
        false,
    )?;
    let scores = fluoro_eval::evaluate(&truth, &result)?;
    print!("{}", fluoro_eval::table(&scores));
    println!("annotated frames: {}", result.join("annotated").display());
    Ok(())
}
