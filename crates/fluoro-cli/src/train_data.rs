//! `fluoro train-data`: the training set of the anatomy model (`scripts/train_anatomy.py`).
//! Simulates studies with the suite's configurations but their own seeds (3001 on; the
//! development suite uses 5001-5012 and the held-out suite 9001-9012), runs each through the
//! same reader and frame loop as `fluoro process`, and writes the anatomy features of every
//! grid cell of every `--every`-th frame with the truth class at the cell's centre:
//! `X.npy` (float32, N x features), `y.npy` (uint8: 0 background, 1 lamina, 2 ligamentum
//! flavum, 3 contrast) and `study.npy` (uint16, the study of each row, for validation
//! splits). Instrument cells are left out (the detector labels the instrument), and
//! background cells are subsampled to a quarter.

use anyhow::{Context, Result};
use clap::Args;
use fluoro_analysis::anatomy::N_FEATURES;
use fluoro_core::Frame;
use fluoro_pipeline::{FrameLoop, PipelineParams};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options of `fluoro train-data`.
#[derive(Args, Debug)]
pub struct TrainDataArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of studies (cycling through the suite's 12 configurations).
    #[arg(long, default_value_t = 96)]
    pub studies: usize,
    /// Seed of the first study.
    #[arg(long, default_value_t = 3001)]
    pub first_seed: u64,
    /// Use every n-th frame.
    #[arg(long, default_value_t = 5)]
    pub every: usize,
}

/// One `.npy` file: the header (`fluoro_dicom::npy`) then `bytes`.
fn write_npy(path: &Path, descr: &str, shape: &[usize], bytes: &[u8]) -> Result<()> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path)
            .with_context(|| format!("{}: cannot create", path.display()))?,
    );
    fluoro_dicom::npy::write_header(&mut f, descr, shape)?;
    f.write_all(bytes)?;
    f.flush()?;
    Ok(())
}

/// Runs `fluoro train-data`.
pub fn run(a: &TrainDataArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create", a.out.display()))?;
    let configs = crate::suite::studies(false);
    let (mut x, mut y, mut sid) = (Vec::<f32>::new(), Vec::<u8>::new(), Vec::<u16>::new());
    let every = a.every.max(1);
    for i in 0..a.studies {
        let (name, mut cfg) = configs[i % configs.len()].clone();
        cfg.seed = a.first_seed + i as u64;
        let s = fluoro_synth::generate(&cfg);
        let path = a.out.join("study.dcm");
        fluoro_synth::output::write_dicom(&s, &path)?;
        let study = fluoro_dicom::Study::open(&path)?;
        let input = fluoro_pipeline::source::StudyInput::new(&study);
        let params = fluoro_pipeline::study_params(&study, &input, &PipelineParams::default());
        let mut fl = FrameLoop::new(params);
        fl.set_keep_anatomy_features(true);
        let mask = study.shutter_mask();
        let mm = study.info().mm_per_px;
        let mut frame = Frame::new(0, 0);
        let before = y.len();
        for j in 0..study.frame_count() {
            input.read(&study, j, &mut frame)?;
            fl.process(&frame, &mask, mm, false)?;
            if j % every != 0 {
                continue;
            }
            let feats = fl.analyzer().anatomy_features();
            let (gw, gh, k) = feats.grid();
            let truth = &s.labels[j];
            for gy in 0..gh {
                for gx in 0..gw {
                    if !feats.visible(gx, gy) {
                        continue;
                    }
                    let (px, py) = (
                        (gx * k + k / 2).min(truth.width() - 1),
                        (gy * k + k / 2).min(truth.height() - 1),
                    );
                    let class = truth.get(px, py);
                    if class > 3 {
                        continue;
                    }
                    // a quarter of the background, chosen by a hash of the position
                    let hash = (gx as u64 * 73_856_093)
                        ^ (gy as u64 * 19_349_663)
                        ^ (j as u64 * 83_492_791);
                    if class == 0 && !hash.is_multiple_of(4) {
                        continue;
                    }
                    let c = (gy * gw + gx) * N_FEATURES;
                    x.extend_from_slice(&feats.features()[c..c + N_FEATURES]);
                    y.push(class);
                    sid.push(i as u16);
                }
            }
        }
        eprintln!("{name} seed {}: {} cells", cfg.seed, y.len() - before);
        let _ = std::fs::remove_file(&path);
    }
    let n = y.len();
    let xb: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&a.out.join("X.npy"), "<f4", &[n, N_FEATURES], &xb)?;
    write_npy(&a.out.join("y.npy"), "|u1", &[n], &y)?;
    let sb: Vec<u8> = sid.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(&a.out.join("study.npy"), "<u2", &[n], &sb)?;
    println!(
        "wrote {n} cells of {} studies to {}",
        a.studies,
        a.out.display()
    );
    Ok(())
}
