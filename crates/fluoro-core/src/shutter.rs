//! The collimator (display) shutter and the visibility mask it defines.

use crate::Frame;
use serde::{Deserialize, Serialize};

/// A display shutter: the visible field is the intersection of every shape present.
///
/// Coordinates are the contract's: `[x, y]` zero-based pixel centres (the DICOM attributes are
/// one-based row/column and are converted when read).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shutter {
    /// Rectangle `[x_min, x_max, y_min, y_max]`, inclusive pixel bounds.
    pub rectangle: Option<[f64; 4]>,
    /// Circle `(centre [x, y], radius px)`.
    pub circle: Option<([f64; 2], f64)>,
    /// Polygon vertices `[x, y]`, in order.
    pub polygon: Option<Vec<[f64; 2]>>,
}

impl Shutter {
    /// True when no shape is present (everything visible).
    pub fn is_empty(&self) -> bool {
        self.rectangle.is_none()
            && self.circle.is_none()
            && self.polygon.as_ref().is_none_or(|p| p.len() < 3)
    }

    /// True when pixel centre `(x, y)` is inside the visible field.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if let Some([x0, x1, y0, y1]) = self.rectangle
            && (x < x0 || x > x1 || y < y0 || y > y1)
        {
            return false;
        }
        if let Some(([cx, cy], r)) = self.circle
            && (x - cx).powi(2) + (y - cy).powi(2) > r * r
        {
            return false;
        }
        if let Some(poly) = &self.polygon
            && poly.len() >= 3
            && !point_in_polygon(poly, x, y)
        {
            return false;
        }
        true
    }

    /// A `width x height` mask: 1 inside the visible field, 0 outside.
    pub fn mask(&self, width: usize, height: usize) -> Frame<u8> {
        if self.is_empty() {
            return Frame::filled(width, height, 1);
        }
        Frame::from_fn(width, height, |x, y| {
            u8::from(self.contains(x as f64, y as f64))
        })
    }
}

/// Even-odd rule point-in-polygon test.
fn point_in_polygon(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let [xi, yi] = poly[i];
        let [xj, yj] = poly[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_intersect() {
        let s = Shutter {
            rectangle: Some([2.0, 7.0, 0.0, 9.0]),
            circle: Some(([4.5, 4.5], 4.0)),
            polygon: None,
        };
        let m = s.mask(10, 10);
        assert_eq!(m.get(4, 4), 1);
        assert_eq!(m.get(1, 4), 0); // outside rectangle
        assert_eq!(m.get(4, 0), 0); // outside circle
        assert_eq!(m.get(7, 4), 1);
    }

    #[test]
    fn polygon_triangle() {
        let s = Shutter {
            polygon: Some(vec![[0.0, 0.0], [9.0, 0.0], [0.0, 9.0]]),
            ..Default::default()
        };
        assert!(s.contains(1.0, 1.0));
        assert!(!s.contains(8.0, 8.0));
        assert!(Shutter::default().is_empty());
    }
}
