//! The VILL detector on drawn scenes: window-facing corners, a faint fused process, a disc
//! cutting a lamina, oblique approaches, implausible lengths, corners inside the shaft, the
//! second search in the frame of the corners' own line.

use super::*;

/// Two laminae either side of a horizontal approach at row 100 (ventral = +x); the caudal
/// one has a faint ventral process fused to it (`faint` darker than the background).
fn scene(faint: f32) -> Frame<f32> {
    Frame::from_fn(200, 200, |x, y| {
        let cranial = (80..110).contains(&x) && (60..92).contains(&y);
        let caudal = (85..115).contains(&x) && (108..140).contains(&y);
        let process = (115..135).contains(&x) && (108..115).contains(&y);
        if cranial || caudal {
            600.0
        } else if process {
            1000.0 - faint
        } else {
            1000.0
        }
    })
}

fn corners(params: VillParams, f: &Frame<f32>) -> Vill {
    corners_from(params, f, 85.0)
}

fn corners_from(params: VillParams, f: &Frame<f32>, tip_x: f64) -> Vill {
    corners_along(params, f, [0.0, 100.0], [tip_x, 100.0])
}

fn corners_along(params: VillParams, f: &Frame<f32>, rear: [f64; 2], tip: [f64; 2]) -> Vill {
    // the scene's window is 16.8 px = 5 mm at 0.3 mm/px, below the anatomical minimum
    let params = VillParams {
        min_len_mm: 4.0,
        ..params
    };
    find_along(params, f, rear, tip).expect("a line")
}

fn find_along(params: VillParams, f: &Frame<f32>, rear: [f64; 2], tip: [f64; 2]) -> Option<Vill> {
    find_with_width(params, f, rear, tip, 3.0)
}

fn find_with_width(
    params: VillParams,
    f: &Frame<f32>,
    rear: [f64; 2],
    tip: [f64; 2],
    half_width: f64,
) -> Option<Vill> {
    let mask = Frame::from_fn(200, 200, |_, _| 1u8);
    let no_lines = Frame::from_fn(200, 200, |_, _| 0.0f32);
    let shaft = Shaft {
        rear,
        tip,
        half_width,
    };
    let mut d = VillDetector::new(params);
    d.detect_corners(f, &mask, (&no_lines, 1.0), 1000.0, Some(shaft), Some(0.3))
}

/// The larger of a line's two end point distances (px) from the true corners.
fn worst_corner_error(l: Vill, truth: Vill) -> f64 {
    let d = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]);
    d(l[0], truth[0]).max(d(l[1], truth[1]))
}

#[test]
fn corners_are_the_window_facing_ventral_corners_not_a_faint_process() {
    let near = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]) < 4.0;
    // without the process: the cranial lamina's ventral-caudal corner (109.5, 91.5) and
    // the caudal one's ventral-cranial corner (114.5, 107.5), within 4 px (the corners
    // come out ~2 px inside, the dorsal side: boundary pixels lie inside the edge and
    // smoothing shifts the darkness level; the extreme point alone is ~3.4 px inside)
    let clean = corners(VillParams::default(), &scene(0.0));
    assert!(near(clean[0], [109.5, 91.5]), "{clean:?}");
    assert!(near(clean[1], [114.5, 107.5]), "{clean:?}");
    // the process is dark enough to join the caudal lamina at the darkness threshold
    // but fainter than half its core: the corner stays on the lamina
    let with_process = corners(VillParams::default(), &scene(200.0));
    assert!(near(with_process[1], [114.5, 107.5]), "{with_process:?}");
    // without the core rule the process would carry the corner ~18 px ventral
    let naive = VillParams {
        core_frac: 0.0,
        ..Default::default()
    };
    let dragged = corners(naive, &scene(200.0));
    assert!(dragged[1][0] > 125.0, "{dragged:?}");
}

#[test]
fn a_lamina_cut_by_the_search_disc_gives_no_corner_there() {
    // from x = 40 the disc at the tip (16 mm = 53 px) reaches only x = 93: both laminae
    // are cut by its rim; a disc further ahead holds their corners
    let far = corners_from(VillParams::default(), &scene(0.0), 40.0);
    let near = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]) < 4.0;
    assert!(near(far[0], [109.5, 91.5]), "{far:?}");
    assert!(near(far[1], [114.5, 107.5]), "{far:?}");
    // taking the rim as a corner puts the line 15 px dorsal
    let naive = VillParams {
        rim_mm: -1000.0,
        ..Default::default()
    };
    let cut = corners_from(naive, &scene(0.0), 40.0);
    assert!(cut[0][0] < 100.0 && cut[1][0] < 100.0, "{cut:?}");
}

/// An approach 30 degrees off the laminae's faces, through the window: the extreme point
/// along the search direction slides along the face lying across it (3.9 px off a
/// corner); the meeting point of the two fitted faces stays within 2.5 px of both. At 40
/// degrees from the same tip the axis passes beside the window, not into it (both corners
/// on one side): no line.
#[test]
fn an_oblique_approach_still_finds_the_corners_where_the_faces_meet() {
    let off = |l: Vill| worst_corner_error(l, [[109.5, 91.5], [114.5, 107.5]]);
    let fit = VillParams {
        min_len_mm: 4.0,
        ..Default::default()
    };
    let extreme = VillParams {
        face_fit_mm: 0.0,
        ..fit
    };
    for deg in [30.0f64, -30.0] {
        let t = deg.to_radians();
        let v = [t.cos(), -t.sin()];
        // 25 px before the window's middle, aimed at it
        let tip = [112.0 - 25.0 * v[0], 99.5 - 25.0 * v[1]];
        let rear = [tip[0] - 85.0 * v[0], tip[1] - 85.0 * v[1]];
        let fitted = find_along(fit, &scene(0.0), rear, tip).expect("a line");
        let slid = find_along(extreme, &scene(0.0), rear, tip).expect("a line");
        assert!(off(fitted) < 2.5, "{deg}: {fitted:?}");
        assert!(off(slid) > off(fitted) + 1.0, "{deg}: {slid:?}");
    }
    for deg in [40.0f64, -40.0] {
        let t = deg.to_radians();
        let tip = [85.0, 100.0];
        let rear = [tip[0] - 85.0 * t.cos(), tip[1] + 85.0 * t.sin()];
        assert_eq!(find_along(fit, &scene(0.0), rear, tip), None, "{deg}");
    }
}

/// Two dark regions closer than a window can be (or further apart) are not the laminae
/// bounding one: no line rather than a line that could put the tip on the wrong side.
#[test]
fn a_corner_pair_of_implausible_length_gives_no_line() {
    let (rear, tip) = ([0.0, 100.0], [85.0, 100.0]);
    // the scene's corners are 5 mm apart
    let at = |min_len_mm: f64, max_len_mm: f64| {
        let p = VillParams {
            min_len_mm,
            max_len_mm,
            ..Default::default()
        };
        find_along(p, &scene(0.0), rear, tip)
    };
    assert!(at(4.0, 30.0).is_some());
    assert!(at(6.0, 30.0).is_none(), "shorter than the minimum");
    assert!(at(1.0, 4.5).is_none(), "longer than the maximum");
}

/// The darkness made in a search disc's rectangle (the frame smoothed over the rectangle
/// plus the kernel's margin, the background sampled there) is exactly the whole-frame
/// maps' difference, at the frame's edges and inside.
#[test]
fn disc_darkness_equals_the_whole_frame_maps() {
    let f = Frame::from_fn(200, 160, |x, y| {
        1000.0 + ((x * 37 + y * 101) % 97) as f32 * 3.0 + (x as f32 / 9.0).sin() * 80.0
    });
    let mm = 0.3;
    let mut d = VillDetector::new(VillParams::default());
    d.kern = kernel(d.smooth_sigma(mm));
    d.large.prepare(&f, (6.0 / mm) as f32);
    d.searched = true;
    let mut parts = Vec::new();
    for (x0, y0, rw, rh) in [(0, 0, 50, 40), (63, 41, 70, 55), (150, 120, 50, 40)] {
        d.darkness_in(&f, x0, y0, rw, rh);
        parts.push(((x0, y0, rw, rh), d.roi_dark.clone()));
    }
    let (bg, sm) = d.darkness_maps(&f, Some(mm)).expect("maps");
    for ((x0, y0, rw, rh), part) in parts {
        for yy in 0..rh {
            for xx in 0..rw {
                let (x, y) = (x0 + xx, y0 + yy);
                assert_eq!(part.get(xx, yy), bg.get(x, y) - sm.get(x, y), "({x}, {y})");
            }
        }
    }
}

/// A corner within the shaft's half-width of its axis (here the corners lie 9-10 px
/// either side of it) is not one bounding the window the shaft heads into: no line.
#[test]
fn corners_inside_the_shaft_give_no_line() {
    let p = VillParams {
        min_len_mm: 4.0,
        ..Default::default()
    };
    let (rear, tip) = ([0.0, 100.0], [85.0, 100.0]);
    assert!(find_with_width(p, &scene(0.0), rear, tip, 3.0).is_some());
    assert!(find_with_width(p, &scene(0.0), rear, tip, 12.0).is_none());
}

/// A thin dark strand (3 px, 0.9 mm) runs on from the cranial lamina's corner to the frame
/// edge, the way the missed part of a contrast line does: every disc's rim cuts it, so the
/// first pass gives no pair; the second, on the opened mask, finds the corners.
#[test]
fn a_thin_strand_fused_to_a_lamina_is_opened_away() {
    let base = scene(0.0);
    let f = Frame::from_fn(200, 200, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let strand = x >= 109.0 && (y - (91.0 + 0.3 * (x - 109.0))).abs() < 1.5;
        if strand {
            300.0
        } else {
            base.get(x as usize, y as usize)
        }
    });
    let near = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]) < 4.0;
    let found = corners(VillParams::default(), &f);
    assert!(near(found[0], [109.5, 91.5]), "{found:?}");
    assert!(near(found[1], [114.5, 107.5]), "{found:?}");
    // without the second pass there is no line at all
    let single = VillParams {
        open_mm: 0.0,
        min_len_mm: 4.0,
        ..Default::default()
    };
    assert!(find_along(single, &f, [0.0, 100.0], [85.0, 100.0]).is_none());
}

/// Far from the window the disc at the tip holds no lamina corner, only two dorsal
/// structures: on the cranial side a faint one (a lamina seen en face), on the caudal side
/// a dark one. Their corners make a plausible pair, 5 mm apart, straddling the axis, but
/// one is far fainter than the other: not two laminae bounding one window, so the disc
/// gives no line and a disc ahead finds the window's corners.
#[test]
fn a_pair_of_unlike_darkness_is_not_the_window() {
    let base = scene(0.0);
    let f = Frame::from_fn(200, 200, |x, y| {
        if (35..55).contains(&x) && (75..92).contains(&y) {
            850.0
        } else if (35..55).contains(&x) && (108..125).contains(&y) {
            600.0
        } else {
            base.get(x, y)
        }
    });
    let (rear, tip) = ([0.0, 100.0], [20.0, 100.0]);
    let near = |p: [f64; 2], q: [f64; 2]| (p[0] - q[0]).hypot(p[1] - q[1]) < 4.0;
    let found = corners_along(VillParams::default(), &f, rear, tip);
    assert!(near(found[0], [109.5, 91.5]), "{found:?}");
    assert!(near(found[1], [114.5, 107.5]), "{found:?}");
    // without the test the disc at the tip pairs the two dorsal structures
    let naive = VillParams {
        min_darkness_ratio: 0.0,
        ..Default::default()
    };
    let dorsal = corners_along(naive, &f, rear, tip);
    assert!(dorsal[0][0] < 60.0 && dorsal[1][0] < 60.0, "{dorsal:?}");
}

/// A window 30 px (9 mm) high between a cranial lamina 20 px wide and a caudal one, and an
/// approach from below at 45 and 50 degrees, aimed at the window: the 45 degree front the
/// approach sets for the cranial lamina lies along (45) or nearly along (50) its ventral
/// face, so points up that face are as extreme as the corner and the search takes one
/// 11-30 px up it. Sought again in the frame of the line that pair makes (which turns
/// less than 20 degrees), both corners come within 2 px.
#[test]
fn corners_are_sought_again_in_the_frame_of_their_line() {
    let f = Frame::from_fn(200, 200, |x, y| {
        let cranial = (90..110).contains(&x) && (60..92).contains(&y);
        let caudal = (85..115).contains(&x) && (122..154).contains(&y);
        if cranial || caudal { 600.0 } else { 1000.0 }
    });
    let off = |l: Vill| worst_corner_error(l, [[109.5, 91.5], [114.5, 121.5]]);
    let line = VillParams {
        min_len_mm: 4.0,
        ..Default::default()
    };
    let instrument = VillParams {
        line_frame: false,
        ..line
    };
    for deg in [45.0f64, 50.0] {
        let t = deg.to_radians();
        let v = [t.cos(), -t.sin()];
        let tip = [112.0 - 25.0 * v[0], 107.0 - 25.0 * v[1]];
        let rear = [tip[0] - 85.0 * v[0], tip[1] - 85.0 * v[1]];
        let found = find_along(line, &f, rear, tip).expect("a line");
        assert!(off(found) < 2.0, "{deg}: {found:?}");
        let slid = find_along(instrument, &f, rear, tip).expect("a line");
        assert!(off(slid) > 10.0, "{deg}: {slid:?}");
    }
}
