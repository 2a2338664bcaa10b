//! Tip tracking with a constant-velocity Kalman filter (nalgebra).
//!
//! The filter smooths measurement noise and rejects a single implausible jump: a measurement
//! outside the gate is held back, and accepted (re-initialising the track) only when the next
//! frame confirms it. A jump forward along the shaft (the tip looks deeper, the cautious
//! side) is the exception: it is reported at once, since holding it back would say "not
//! detected" just as the tip advances past the VILL. A frame without a measurement reports
//! "not detected": the tracker never invents a tip.

use nalgebra::{Matrix2, Matrix2x4, Matrix4, Vector2, Vector4};

/// Tracker tuning.
#[derive(Clone, Copy, Debug)]
pub struct TrackParams {
    /// Measurement noise sigma, px.
    pub measurement_sigma: f64,
    /// Acceleration noise sigma, px / frame^2.
    pub acceleration_sigma: f64,
    /// Gate in standard deviations of the innovation.
    pub gate_sigmas: f64,
    /// Frames without a measurement after which the track is dropped.
    pub max_missing: usize,
    /// A held jump is confirmed by a next measurement within this distance, px.
    pub confirm_px: f64,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            measurement_sigma: 0.35,
            acceleration_sigma: 1.5,
            gate_sigmas: 6.0,
            max_missing: 3,
            confirm_px: 24.0,
        }
    }
}

impl TrackParams {
    /// Parameters scaled to the frame size (motion in pixels grows with resolution):
    /// the defaults are for 512 pixels.
    pub fn for_size(size: usize) -> Self {
        let k = (size as f64 / 512.0).max(0.5);
        Self {
            acceleration_sigma: 1.5 * k,
            confirm_px: 24.0 * k,
            ..Self::default()
        }
    }
}

/// The tracker state.
#[derive(Clone, Debug, Default)]
pub struct TipTracker {
    params: TrackParamsOpt,
    x: Vector4<f64>,
    p: Matrix4<f64>,
    live: bool,
    missing: usize,
    held: Option<[f64; 2]>,
}

#[derive(Clone, Copy, Debug, Default)]
struct TrackParamsOpt(Option<TrackParams>);

impl TipTracker {
    /// A tracker with these parameters.
    pub fn new(params: TrackParams) -> Self {
        Self {
            params: TrackParamsOpt(Some(params)),
            ..Default::default()
        }
    }

    fn prm(&self) -> TrackParams {
        self.params.0.unwrap_or_default()
    }

    /// Forgets the track.
    pub fn reset(&mut self) {
        self.live = false;
        self.held = None;
        self.missing = 0;
    }

    fn init(&mut self, z: [f64; 2]) {
        let r = self.prm().measurement_sigma.powi(2);
        self.x = Vector4::new(z[0], z[1], 0.0, 0.0);
        self.p = Matrix4::from_diagonal(&Vector4::new(r, r, 25.0, 25.0));
        self.live = true;
        self.missing = 0;
        self.held = None;
    }

    /// Feeds one frame's measurement (or none) and returns the tip to report, if any.
    pub fn update(&mut self, measurement: Option<[f64; 2]>) -> Option<[f64; 2]> {
        self.update_along(measurement, None)
    }

    /// Like [`TipTracker::update`], with the shaft's unit direction (rear to tip): a jump
    /// outside the gate that goes forward along the shaft, and sideways no more than the
    /// gate allows, is accepted at once.
    pub fn update_along(
        &mut self,
        measurement: Option<[f64; 2]>,
        dir: Option<[f64; 2]>,
    ) -> Option<[f64; 2]> {
        let prm = self.prm();
        let Some(z) = measurement else {
            self.missing += 1;
            if self.missing > prm.max_missing {
                self.reset();
            } else if self.live {
                self.predict();
            }
            return None;
        };
        if !self.live {
            self.init(z);
            return Some(z);
        }
        self.predict();
        let h = Matrix2x4::new(1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        let r = Matrix2::from_diagonal(&Vector2::new(
            prm.measurement_sigma.powi(2),
            prm.measurement_sigma.powi(2),
        ));
        let s = h * self.p * h.transpose() + r;
        let innov = Vector2::new(z[0], z[1]) - h * self.x;
        let Some(s_inv) = s.try_inverse() else {
            self.init(z);
            return Some(z);
        };
        let d2 = (innov.transpose() * s_inv * innov)[0];
        if d2 > prm.gate_sigmas.powi(2) {
            // forward along the shaft and not sideways: the tip looks deeper, report it now
            let gate_px = prm.gate_sigmas * ((s[(0, 0)] + s[(1, 1)]) / 2.0).sqrt();
            if let Some(d) = dir
                && innov[0] * d[0] + innov[1] * d[1] > 0.0
                && (innov[0] * d[1] - innov[1] * d[0]).abs() <= gate_px
            {
                self.init(z);
                return Some(z);
            }
            // an implausible jump: accept only if the next frame confirms it
            if let Some(prev) = self.held
                && ((prev[0] - z[0]).powi(2) + (prev[1] - z[1]).powi(2)).sqrt()
                    < 4.0 * prm.measurement_sigma.max(1.0) * prm.gate_sigmas
            {
                self.init(z);
                return Some(z);
            }
            self.held = Some(z);
            return None;
        }
        self.held = None;
        self.missing = 0;
        let k = self.p * h.transpose() * s_inv;
        self.x += k * innov;
        self.p = (Matrix4::identity() - k * h) * self.p;
        Some([self.x[0], self.x[1]])
    }

    fn predict(&mut self) {
        let f = Matrix4::new(
            1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        );
        let q = self.prm().acceleration_sigma.powi(2);
        // discrete white-noise acceleration model, dt = 1 frame
        let qm = Matrix4::new(
            0.25, 0.0, 0.5, 0.0, 0.0, 0.25, 0.0, 0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 0.5, 0.0, 1.0,
        ) * q;
        self.x = f * self.x;
        self.p = f * self.p * f.transpose() + qm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_motion_rejects_a_single_outlier_and_never_invents() {
        let mut t = TipTracker::new(TrackParams::default());
        let mut last = [0.0, 0.0];
        for n in 0..20 {
            let z = [100.0 + 2.0 * n as f64, 50.0 + n as f64];
            last = t.update(Some(z)).unwrap();
        }
        assert!(
            (last[0] - 138.0).abs() < 0.5 && (last[1] - 69.0).abs() < 0.5,
            "{last:?}"
        );
        // one wild measurement is held back
        assert!(t.update(Some([300.0, 300.0])).is_none());
        let back = t.update(Some([142.0, 71.0])).unwrap();
        assert!((back[0] - 142.0).abs() < 1.0);
        // no measurement, no tip
        assert!(t.update(None).is_none());
        // a real jump confirmed by two frames is accepted
        assert!(t.update(Some([10.0, 10.0])).is_none());
        assert_eq!(t.update(Some([10.5, 10.2])), Some([10.5, 10.2]));
    }

    /// A jump forward along the shaft is reported at once; the same jump backward, or
    /// sideways, is held back until the next frame confirms it.
    #[test]
    fn a_jump_forward_along_the_shaft_is_reported_at_once() {
        let track = || {
            let mut t = TipTracker::new(TrackParams::default());
            for n in 0..10 {
                t.update_along(Some([100.0 + 2.0 * n as f64, 50.0]), Some([1.0, 0.0]));
            }
            t
        };
        let dir = Some([1.0, 0.0]);
        // predicted next: (120, 50)
        assert_eq!(
            track().update_along(Some([130.0, 50.0]), dir),
            Some([130.0, 50.0])
        );
        assert!(track().update_along(Some([110.0, 50.0]), dir).is_none());
        assert!(track().update_along(Some([130.0, 65.0]), dir).is_none());
        // without the direction every jump is held back
        assert!(track().update_along(Some([130.0, 50.0]), None).is_none());
    }
}
