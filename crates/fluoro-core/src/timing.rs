//! Frame times and where they came from.

use serde::{Deserialize, Serialize};

/// Which attribute gave the frame times, in the contract's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingSource {
    /// Frame Time Vector (0018,1065): per-frame increments.
    FrameTimeVector,
    /// Frame Time (0018,1063): constant ms per frame.
    FrameTime,
    /// Cine Rate (0018,0040) frames per second.
    CineRate,
    /// Enhanced IODs: Frame Acquisition DateTime / Frame Reference DateTime per frame.
    FrameContent,
    /// Recommended Display Frame Rate (0008,2144).
    RecommendedDisplayFrameRate,
    /// Nothing in the file: an assumed 15 frames/s.
    Assumed15Fps,
}

/// The time of every frame, from the first frame, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameTiming {
    /// `time_ms` for each frame; `times_ms[0] == 0`.
    pub times_ms: Vec<f64>,
    /// Where the times came from.
    pub source: TimingSource,
}

impl FrameTiming {
    /// Evenly spaced frames, `interval_ms` apart.
    pub fn uniform(frames: usize, interval_ms: f64, source: TimingSource) -> Self {
        Self {
            times_ms: (0..frames).map(|i| i as f64 * interval_ms).collect(),
            source,
        }
    }

    /// From per-frame increments as in Frame Time Vector, whose first entry is 0 by the
    /// standard (any value there is ignored so the first frame is at 0).
    pub fn from_increments(increments: &[f64], frames: usize, source: TimingSource) -> Self {
        let mut times = Vec::with_capacity(frames);
        let mut t = 0.0;
        for i in 0..frames {
            if i > 0 {
                t += increments
                    .get(i)
                    .copied()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .unwrap_or(0.0);
            }
            times.push(t);
        }
        Self {
            times_ms: times,
            source,
        }
    }

    /// The median interval between frames, ms (`None` for a single frame).
    pub fn median_interval_ms(&self) -> Option<f64> {
        let mut d: Vec<f64> = self.times_ms.windows(2).map(|w| w[1] - w[0]).collect();
        if d.is_empty() {
            return None;
        }
        d.sort_by(f64::total_cmp);
        Some(d[d.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_accumulate_from_zero() {
        let t = FrameTiming::from_increments(&[33.0, 33.0, 34.0], 3, TimingSource::FrameTimeVector);
        assert_eq!(t.times_ms, vec![0.0, 33.0, 67.0]);
        assert_eq!(t.median_interval_ms(), Some(34.0));
    }
}
