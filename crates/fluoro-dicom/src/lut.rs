//! Modality LUT (stored value -> modality value) and VOI LUT (modality value -> display),
//! as PS3.3 C.11.1 and C.11.2 define them.

use serde::Serialize;

/// Stored value -> modality value (e.g. Hounsfield units, or unchanged for XA).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModalityLut {
    /// No transformation.
    Identity,
    /// `slope * stored + intercept`.
    Rescale {
        /// Rescale Slope (0028,1053).
        slope: f64,
        /// Rescale Intercept (0028,1052).
        intercept: f64,
    },
    /// A lookup table (Modality LUT Sequence (0028,3000)).
    Table {
        /// First stored value mapped.
        first: i64,
        /// Output values.
        #[serde(skip)]
        data: Vec<f64>,
        /// Number of entries.
        entries: usize,
    },
}

impl ModalityLut {
    /// Applies the LUT to one stored value. Table inputs outside the table clamp to its ends.
    #[inline]
    pub fn apply(&self, stored: f64) -> f64 {
        match self {
            Self::Identity => stored,
            Self::Rescale { slope, intercept } => slope * stored + intercept,
            Self::Table { first, data, .. } => {
                if data.is_empty() {
                    return stored;
                }
                let i = (stored - *first as f64)
                    .round()
                    .clamp(0.0, (data.len() - 1) as f64) as usize;
                data[i]
            }
        }
    }
}

/// The VOI LUT function (0028,1056) used with a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WindowFunction {
    /// The default: PS3.3 C.11.2.1.2.1.
    Linear,
    /// C.11.2.1.3.2: no half-unit offsets.
    LinearExact,
    /// C.11.2.1.3.1.
    Sigmoid,
}

/// Modality value -> normalised display value in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VoiLut {
    /// A window.
    Window {
        /// Window Center (0028,1050).
        center: f64,
        /// Window Width (0028,1051).
        width: f64,
        /// VOI LUT Function.
        function: WindowFunction,
    },
    /// A lookup table (VOI LUT Sequence (0028,3010)).
    Table {
        /// First input value mapped.
        first: i64,
        /// Output values.
        #[serde(skip)]
        data: Vec<f64>,
        /// Largest possible output value (2^bits - 1).
        out_max: f64,
    },
}

impl VoiLut {
    /// Applies the VOI transformation; the result is in [0, 1].
    #[inline]
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Self::Window {
                center: c,
                width: w,
                function,
            } => match function {
                WindowFunction::Linear => {
                    let w = w.max(1.0);
                    if x <= c - 0.5 - (w - 1.0) / 2.0 {
                        0.0
                    } else if x > c - 0.5 + (w - 1.0) / 2.0 || w <= 1.0 {
                        1.0
                    } else {
                        ((x - (c - 0.5)) / (w - 1.0) + 0.5).clamp(0.0, 1.0)
                    }
                }
                WindowFunction::LinearExact => {
                    let w = w.max(f64::MIN_POSITIVE);
                    if x <= c - w / 2.0 {
                        0.0
                    } else if x > c + w / 2.0 {
                        1.0
                    } else {
                        ((x - c) / w + 0.5).clamp(0.0, 1.0)
                    }
                }
                WindowFunction::Sigmoid => {
                    1.0 / (1.0 + (-4.0 * (x - c) / w.max(f64::MIN_POSITIVE)).exp())
                }
            },
            Self::Table {
                first,
                ref data,
                out_max,
            } => {
                if data.is_empty() || out_max <= 0.0 {
                    return 0.0;
                }
                let i = (x - first as f64)
                    .round()
                    .clamp(0.0, (data.len() - 1) as f64) as usize;
                (data[i] / out_max).clamp(0.0, 1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_window_matches_the_standard() {
        let v = VoiLut::Window {
            center: 2048.0,
            width: 4096.0,
            function: WindowFunction::Linear,
        };
        assert_eq!(v.apply(-10.0), 0.0);
        assert_eq!(v.apply(5000.0), 1.0);
        assert!((v.apply(2047.5) - 0.5).abs() < 1e-9);
        let e = VoiLut::Window {
            center: 100.0,
            width: 50.0,
            function: WindowFunction::LinearExact,
        };
        assert!((e.apply(100.0) - 0.5).abs() < 1e-12);
        assert_eq!(e.apply(75.0), 0.0);
        let s = VoiLut::Window {
            center: 0.0,
            width: 10.0,
            function: WindowFunction::Sigmoid,
        };
        assert!((s.apply(0.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn tables_clamp() {
        let m = ModalityLut::Table {
            first: 10,
            data: vec![1.0, 2.0, 3.0],
            entries: 3,
        };
        assert_eq!(m.apply(0.0), 1.0);
        assert_eq!(m.apply(11.0), 2.0);
        assert_eq!(m.apply(99.0), 3.0);
        let r = ModalityLut::Rescale {
            slope: 2.0,
            intercept: -1024.0,
        };
        assert_eq!(r.apply(1000.0), 976.0);
    }
}
