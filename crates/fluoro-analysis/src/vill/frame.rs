//! The frame a lamina corner is sought in, and how far a line turns.

use super::Vill;

/// The frame of the line from `p0` (the corner on the `-c` side) to `p1`: the direction
/// across it that is ventral (on the side of the approach `v`) and the one along it towards
/// `p1` (on the side of `c`), as the corner search takes them; `None` for coincident points.
pub(super) fn line_frame(
    p0: [f64; 2],
    p1: [f64; 2],
    v: [f64; 2],
    c: [f64; 2],
) -> Option<[[f64; 2]; 2]> {
    let (dx, dy) = (p1[0] - p0[0], p1[1] - p0[1]);
    let l = dx.hypot(dy);
    if l < 1e-9 {
        return None;
    }
    let mut along = [dx / l, dy / l];
    if along[0] * c[0] + along[1] * c[1] < 0.0 {
        along = [-along[0], -along[1]];
    }
    let mut ventral = [-along[1], along[0]];
    if ventral[0] * v[0] + ventral[1] * v[1] < 0.0 {
        ventral = [-ventral[0], -ventral[1]];
    }
    Some([ventral, along])
}

/// The angle (degrees, 0-180) from the direction of line `a` to that of line `b`.
pub(super) fn turn_deg(a: Vill, b: Vill) -> f64 {
    let u = [a[1][0] - a[0][0], a[1][1] - a[0][1]];
    let w = [b[1][0] - b[0][0], b[1][1] - b[0][1]];
    let cross = u[0] * w[1] - u[1] * w[0];
    let dot = u[0] * w[0] + u[1] * w[1];
    cross.atan2(dot).abs().to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_ventral_and_towards_the_window_whatever_the_order() {
        // an approach to +x; c points to +y; the line runs from (10, 0) to (12, 20)
        let (v, c) = ([1.0, 0.0], [0.0, 1.0]);
        for (a, b) in [([10.0, 0.0], [12.0, 20.0]), ([12.0, 20.0], [10.0, 0.0])] {
            let [ventral, along] = line_frame(a, b, v, c).expect("a frame");
            assert!(along[1] > 0.99 && along[0] > 0.0, "{along:?}");
            assert!(ventral[0] > 0.99 && ventral[1] < 0.0, "{ventral:?}");
        }
        assert_eq!(line_frame([1.0, 1.0], [1.0, 1.0], v, c), None);
    }

    #[test]
    fn turns_are_unsigned_degrees() {
        let a = [[0.0, 0.0], [10.0, 0.0]];
        assert!((turn_deg(a, [[0.0, 0.0], [10.0, 10.0]]) - 45.0).abs() < 1e-9);
        assert!((turn_deg(a, [[0.0, 0.0], [10.0, -10.0]]) - 45.0).abs() < 1e-9);
        assert!((turn_deg(a, [[10.0, 0.0], [0.0, 0.0]]) - 180.0).abs() < 1e-9);
        assert!(turn_deg(a, [[5.0, 3.0], [25.0, 3.0]]).abs() < 1e-9);
    }
}
