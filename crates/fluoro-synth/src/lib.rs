//! Synthetic mild-procedure fluoroscopy with exact ground truth (`fluoro synth`).
//!
//! A lumbar phantom of analytic solids ([`phantom`]) and the mild instruments
//! ([`instrument`]) are projected by a pinhole C-arm ([`carm`]) with exact path lengths
//! ([`shape`]); the detector adds scatter, Poisson noise and blur and log-transforms to
//! stored values ([`render`]). The result is written as an XA multi-frame DICOM file plus
//! the contract's ground-truth folder ([`output`]).

pub mod carm;
pub mod instrument;
pub mod output;
pub mod phantom;
pub mod render;
pub mod shape;

use carm::CArm;
use fluoro_core::record::{
    FrameRecord, GuidanceRecord, SafetyState, ToolRecord, VillRecord, axis_deg,
    signed_distance_to_line,
};
use fluoro_core::{Frame, Shutter};
pub use instrument::{InstrumentPath, Scenario};
pub use phantom::Phantom;
use render::Detector;
use serde::{Deserialize, Serialize};
use shape::V3;

/// The C-arm view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Contralateral oblique: rotated away from the instrument by `angle_deg`.
    #[default]
    Clo,
    /// Posterior-anterior beam (called AP in the procedure).
    Ap,
    /// Lateral, from the instrument side.
    Lateral,
}

/// Everything that defines a synthetic study; the same config and seed give the same bytes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Seed for anatomy, noise and gas.
    pub seed: u64,
    /// Detector columns and rows.
    pub size: usize,
    /// Number of frames.
    pub frames: usize,
    /// View.
    pub view: View,
    /// CLO rotation, degrees (used for `view = clo`).
    pub angle_deg: f64,
    /// Cranial (+) / caudal tilt, degrees.
    pub tilt_deg: f64,
    /// Photons per pixel through the soft-tissue background.
    pub dose: f64,
    /// How far the tool goes.
    pub scenario: Scenario,
    /// Epidural contrast present.
    pub contrast: bool,
    /// Frames per second.
    pub fps: f64,
    /// Breathing amplitude, mm (craniocaudal; half of it dorsoventral).
    pub breathing_mm: f64,
    /// Target interlaminar space index: 0 = L2-L3 ... 3 = L5-S1.
    pub target_space: usize,
    /// Instrument side: +1 patient left, -1 right.
    pub side: f64,
    /// Bits stored, 12-16.
    pub bits_stored: u16,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            size: 1024,
            frames: 60,
            view: View::Clo,
            angle_deg: 45.0,
            tilt_deg: 0.0,
            dose: 1000.0,
            scenario: Scenario::Short,
            contrast: false,
            fps: 15.0,
            breathing_mm: 1.0,
            target_space: 2,
            side: 1.0,
            bits_stored: 12,
        }
    }
}

impl SynthConfig {
    /// Named presets for benchmark suites and tests.
    pub fn preset(name: &str) -> Option<Self> {
        let base = Self::default();
        Some(match name {
            "bench-512" => Self {
                size: 512,
                frames: 100,
                ..base
            },
            "bench-1024" => Self {
                size: 1024,
                frames: 100,
                ..base
            },
            "bench-1536" => Self {
                size: 1536,
                frames: 100,
                ..base
            },
            "demo" => Self {
                size: 512,
                frames: 40,
                scenario: Scenario::Cross,
                contrast: true,
                ..base
            },
            "fixture" => Self {
                size: 256,
                frames: 16,
                scenario: Scenario::Cross,
                contrast: true,
                ..base
            },
            _ => return None,
        })
    }

    /// Preset names.
    pub const PRESETS: [&str; 5] = ["bench-512", "bench-1024", "bench-1536", "demo", "fixture"];

    /// The C-arm for this config: a 1536-pixel, 0.194 mm, SID 1020 mm panel binned to `size`.
    pub fn carm(&self) -> CArm {
        let primary = match self.view {
            View::Clo => -self.side * self.angle_deg,
            View::Ap => 0.0,
            View::Lateral => self.side * 90.0,
        };
        let pixel = 0.194 * 1536.0 / self.size as f64;
        CArm::new(
            primary,
            self.tilt_deg,
            1020.0,
            650.0,
            pixel,
            self.size,
            self.size,
        )
    }

    fn detector(&self) -> Detector {
        Detector {
            dose_photons: self.dose,
            scatter_fraction: 0.25,
            blur_sigma_px: 0.6,
            collimator_leakage: 0.0005,
            bits_stored: self.bits_stored,
        }
    }
}

/// A generated study in memory.
pub struct SynthStudy {
    /// The config that made it.
    pub config: SynthConfig,
    /// The C-arm.
    pub carm: CArm,
    /// The anatomy.
    pub phantom: Phantom,
    /// The instrument path.
    pub path: InstrumentPath,
    /// The collimator shutter.
    pub shutter: Shutter,
    /// Detector parameters.
    pub detector: Detector,
    /// Incident photons per pixel.
    pub incident_photons: f64,
    /// Stored values per frame, row-major.
    pub frames: Vec<Vec<u16>>,
    /// Label maps per frame.
    pub labels: Vec<Frame<u8>>,
    /// Ground truth per frame.
    pub records: Vec<FrameRecord>,
    /// Noiseless stored values per frame (before quantisation), kept only by
    /// [`generate_with_clean`]: the reference for noise and lag measurements.
    pub clean_frames: Vec<Vec<f32>>,
}

/// Breathing displacement at time `t_ms`.
fn breathing(cfg: &SynthConfig, t_ms: f64) -> V3 {
    let ph = (2.0 * std::f64::consts::PI * t_ms / 4000.0).sin();
    V3::new(0.0, cfg.breathing_mm * ph, 0.5 * cfg.breathing_mm * ph)
}

/// Renders the whole study (frames in parallel rows with rayon).
pub fn generate(cfg: &SynthConfig) -> SynthStudy {
    generate_impl(cfg, false)
}

/// Like [`generate`], also keeping each frame without noise (expected counts through the
/// same log mapping, unquantised).
pub fn generate_with_clean(cfg: &SynthConfig) -> SynthStudy {
    generate_impl(cfg, true)
}

fn generate_impl(cfg: &SynthConfig, keep_clean: bool) -> SynthStudy {
    let carm = cfg.carm();
    let phantom = Phantom::new(cfg.seed, cfg.target_space, cfg.side, cfg.contrast);
    let [v0, v1] = phantom.vill_3d;
    let target = (v0 + v1) / 2.0;
    let lateral_deg = 20.0 + 10.0 * ((cfg.seed % 7) as f64 / 6.0);
    let path = InstrumentPath::new(
        target,
        cfg.side,
        lateral_deg,
        25.0,
        cfg.scenario,
        cfg.frames,
    );
    let shutter = render::default_shutter(cfg.size, cfg.size);
    let mask = shutter.mask(cfg.size, cfg.size);
    let detector = cfg.detector();
    // incident photons from the soft-tissue path of the central ray
    let torso = phantom
        .parts
        .iter()
        .find(|p| p.name == "torso")
        .expect("torso");
    let l_bg = torso.solid.path_length(&carm.source, &carm.beam) * torso.material.mu();
    let incident = cfg.dose * l_bg.exp();
    let mm = carm.mm_per_px();
    let mut frames = Vec::with_capacity(cfg.frames);
    let mut labels = Vec::with_capacity(cfg.frames);
    let mut records = Vec::with_capacity(cfg.frames);
    let mut clean_frames = Vec::new();
    for n in 0..cfg.frames {
        let t_ms = n as f64 * 1000.0 / cfg.fps;
        let shift = breathing(cfg, t_ms);
        let mut parts = phantom.parts.clone();
        parts.extend(path.parts(n));
        let proj = render::project(&carm, &parts, shift, &mask);
        let expected = detector.expected_counts(&proj.line_integral, incident, &mask);
        if keep_clean {
            clean_frames.push(detector.to_log_f32(&expected, incident));
        }
        let noisy = detector.noisy_counts(
            &expected,
            cfg.seed.wrapping_mul(1_000_003).wrapping_add(n as u64),
        );
        frames.push(detector.to_stored(&noisy, incident));
        labels.push(proj.labels);
        records.push(truth_record(
            cfg, &carm, &phantom, &path, &shutter, n, t_ms, shift, mm,
        ));
    }
    SynthStudy {
        config: cfg.clone(),
        carm,
        phantom,
        path,
        shutter,
        detector,
        incident_photons: incident,
        frames,
        labels,
        records,
        clean_frames,
    }
}

fn visible(carm: &CArm, shutter: &Shutter, p: [f64; 2]) -> bool {
    p[0] >= -0.5
        && p[1] >= -0.5
        && p[0] <= carm.width as f64 - 0.5
        && p[1] <= carm.height as f64 - 0.5
        && shutter.contains(p[0], p[1])
}

#[allow(clippy::too_many_arguments)]
fn truth_record(
    cfg: &SynthConfig,
    carm: &CArm,
    phantom: &Phantom,
    path: &InstrumentPath,
    shutter: &Shutter,
    n: usize,
    t_ms: f64,
    shift: V3,
    mm: f64,
) -> FrameRecord {
    let mut tool = ToolRecord {
        detected: false,
        tip: None,
        rear: None,
        axis_deg: None,
        confidence: None,
    };
    if let Some(tip3) = path.tip(n)
        && let (Some(tip), Some(back)) = (
            carm.project(&(tip3 + shift)),
            carm.project(&(path.rear_end() + shift)),
        )
        && visible(carm, shutter, tip)
    {
        // walk from the tip towards the outside end until the visible field ends
        let len = ((back[0] - tip[0]).powi(2) + (back[1] - tip[1]).powi(2)).sqrt();
        let steps = (len * 8.0).ceil().max(1.0) as usize;
        let mut rear = tip;
        for s in 1..=steps {
            let u = s as f64 / steps as f64;
            let p = [
                tip[0] + (back[0] - tip[0]) * u,
                tip[1] + (back[1] - tip[1]) * u,
            ];
            if !visible(carm, shutter, p) {
                break;
            }
            rear = p;
        }
        tool = ToolRecord {
            detected: true,
            tip: Some(tip),
            rear: Some(rear),
            axis_deg: Some(axis_deg(rear, tip)),
            confidence: Some(1.0),
        };
    }
    let vill = if cfg.view == View::Clo {
        match (
            carm.project(&(phantom.vill_3d[0] + shift)),
            carm.project(&(phantom.vill_3d[1] + shift)),
        ) {
            (Some(p0), Some(p1)) => Some(VillRecord { p0, p1 }),
            _ => None,
        }
    } else {
        None
    };
    let mut guidance = GuidanceRecord::default();
    if let (Some(v), Some(tip), Some(rear)) = (vill, tool.tip, tool.rear)
        && let Some(px) = signed_distance_to_line(tip, rear, v.p0, v.p1)
    {
        guidance.tip_to_vill_px = Some(px);
        guidance.tip_to_vill_mm = Some(px * mm);
    }
    guidance.state = SafetyState::classify(
        guidance.tip_to_vill_mm,
        guidance.tip_to_vill_px,
        fluoro_core::record::DEFAULT_CAUTION_MM,
    );
    FrameRecord {
        frame: n,
        time_ms: t_ms,
        tool,
        vill,
        guidance,
        timing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(scenario: Scenario) -> SynthConfig {
        SynthConfig {
            size: 128,
            frames: 12,
            scenario,
            contrast: true,
            seed: 3,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = generate(&small(Scenario::Touch));
        let b = generate(&small(Scenario::Touch));
        assert_eq!(a.frames, b.frames);
        assert_eq!(a.records, b.records);
    }

    #[test]
    fn truth_tip_and_vill_match_the_scene() {
        let s = generate(&small(Scenario::Cross));
        let n = s.config.frames - 1;
        let r = &s.records[n];
        let shift = breathing(&s.config, r.time_ms);
        let tip = s.carm.project(&(s.path.tip(n).unwrap() + shift)).unwrap();
        assert_eq!(r.tool.tip, Some(tip));
        let v = r.vill.unwrap();
        assert_eq!(Some(v.p0), s.carm.project(&(s.phantom.vill_3d[0] + shift)));
        // crossing scenario ends past the line: stop
        assert_eq!(r.guidance.state, SafetyState::Stop);
        assert!(r.guidance.tip_to_vill_mm.unwrap() < 0.0);
        // first frame has no instrument
        assert!(!s.records[0].tool.detected);
        assert_eq!(s.records[0].guidance.state, SafetyState::Unknown);
    }

    #[test]
    fn scenarios_end_in_their_states() {
        let short = generate(&SynthConfig {
            size: 128,
            frames: 10,
            seed: 4,
            ..SynthConfig::default()
        });
        let last = short.records.last().unwrap();
        assert!(last.guidance.tip_to_vill_mm.unwrap() > 0.0, "{last:?}");
        let touch = generate(&small(Scenario::Touch));
        assert!(
            touch
                .records
                .last()
                .unwrap()
                .guidance
                .tip_to_vill_mm
                .unwrap()
                .abs()
                < 0.05
        );
    }

    #[test]
    fn labels_contain_every_structure_in_clo_with_contrast() {
        let s = generate(&SynthConfig {
            size: 192,
            frames: 12,
            scenario: Scenario::Touch,
            contrast: true,
            seed: 5,
            ..SynthConfig::default()
        });
        let last = s.labels.last().unwrap();
        for label in 1..=4u8 {
            let count = last.data().iter().filter(|&&v| v == label).count();
            assert!(count > 20, "label {label}: {count} pixels");
        }
        // nothing outside the shutter
        let mask = s.shutter.mask(192, 192);
        assert!(
            last.data()
                .iter()
                .zip(mask.data())
                .all(|(&l, &m)| m == 1 || l == 0)
        );
    }
}
