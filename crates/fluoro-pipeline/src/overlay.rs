//! The annotated frame a clinician looks at: the enhanced image, a subtle label tint, the
//! VILL, the instrument axis extended ahead of the tip, the plan, and the tip-to-VILL distance
//! with the safety state as text and colour.

use crate::font;
use fluoro_analysis::{Analysis, Plan};
use fluoro_core::Frame;
use fluoro_core::record::SafetyState;
use fluoro_enhance::display::{Window, to_u8_row};
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_circle_mut, draw_hollow_circle_mut, draw_line_segment_mut};
use serde::{Deserialize, Serialize};

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverlayOptions {
    /// Tint the label map.
    pub labels: bool,
    /// Tint opacity.
    pub label_alpha: f32,
    /// Draw the VILL.
    pub vill: bool,
    /// Draw the instrument axis and its extension.
    pub instrument: bool,
    /// Draw the distance and state panel.
    pub text: bool,
    /// Length of the axis extension ahead of the tip, mm (px x 0.3 when mm is unknown).
    pub extension_mm: f64,
}

impl Default for OverlayOptions {
    fn default() -> Self {
        Self {
            labels: true,
            label_alpha: 0.22,
            vill: true,
            instrument: true,
            text: true,
            extension_mm: 15.0,
        }
    }
}

const TINT: [[u8; 3]; 5] = [
    [0, 0, 0],
    [90, 150, 255],
    [255, 200, 40],
    [40, 230, 140],
    [255, 80, 80],
];

/// Colour of a safety state.
pub fn state_colour(s: SafetyState) -> Rgb<u8> {
    match s {
        SafetyState::Safe => Rgb([40, 200, 70]),
        SafetyState::Caution => Rgb([255, 176, 0]),
        SafetyState::Stop => Rgb([235, 30, 30]),
        SafetyState::Unknown => Rgb([150, 150, 150]),
    }
}

fn thick_line(img: &mut RgbImage, a: [f64; 2], b: [f64; 2], width: u32, c: Rgb<u8>) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = (dx * dx + dy * dy).sqrt().max(1e-9);
    let n = [-dy / l, dx / l];
    let half = (width as f64 - 1.0) / 2.0;
    let steps = (width * 2).max(1);
    for k in 0..steps {
        let o = -half + k as f64 * (2.0 * half) / (steps.max(2) - 1) as f64;
        let o = if width <= 1 { 0.0 } else { o };
        draw_line_segment_mut(
            img,
            ((a[0] + n[0] * o) as f32, (a[1] + n[1] * o) as f32),
            ((b[0] + n[0] * o) as f32, (b[1] + n[1] * o) as f32),
            c,
        );
    }
}

fn dashed(img: &mut RgbImage, a: [f64; 2], b: [f64; 2], width: u32, dash: f64, c: Rgb<u8>) {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l = (dx * dx + dy * dy).sqrt();
    let n = (l / dash).ceil() as usize;
    for i in (0..n).step_by(2) {
        let t0 = i as f64 / n as f64;
        let t1 = ((i + 1) as f64 / n as f64).min(1.0);
        thick_line(
            img,
            [a[0] + dx * t0, a[1] + dy * t0],
            [a[0] + dx * t1, a[1] + dy * t1],
            width,
            c,
        );
    }
}

/// The rectangle of `rw` x `rh` pixels from `(x, y)`, clipped to the image, filled with
/// `c` (the pixels `imageproc`'s `draw_filled_rect_mut` fills, without its bounds check
/// per pixel): the first row by doubling copies, the others copied from it.
fn fill_rect(img: &mut RgbImage, (x, y): (i32, i32), (rw, rh): (u32, u32), c: Rgb<u8>) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let (x0, y0) = (i64::from(x).max(0), i64::from(y).max(0));
    let (x1, y1) = (
        (i64::from(x) + i64::from(rw)).min(w),
        (i64::from(y) + i64::from(rh)).min(h),
    );
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let stride = 3 * w as usize;
    let (a, b, first) = (3 * x0 as usize, 3 * x1 as usize, y0 as usize);
    let buf: &mut [u8] = img;
    let (head, rest) = buf.split_at_mut((first + 1) * stride);
    // the first row's run by doubling copies, then copied into the rows below
    let run = &mut head[first * stride + a..first * stride + b];
    run[..3].copy_from_slice(&c.0);
    let mut done = 3;
    while done < run.len() {
        let n = done.min(run.len() - done);
        run.copy_within(0..n, done);
        done += n;
    }
    let rows = (y1 - y0) as usize - 1;
    for row in rest.chunks_exact_mut(stride).take(rows) {
        row[a..b].copy_from_slice(run);
    }
}

fn text(img: &mut RgbImage, s: &str, x: i64, y: i64, scale: u32, c: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    font::render(s, x, y, scale, |px, py| {
        if px >= 0 && py >= 0 && px < w && py < h {
            img.put_pixel(px as u32, py as u32, c);
        }
    });
}

/// Sixteen grey levels as sixteen RGB pixels (48 bytes): a fixed pattern of byte copies,
/// which compiles to three byte shuffles (`pshufb`) of one 16-byte load. Written with
/// indices: as `chunks_exact_mut(3)` and `copy_from_slice` it compiled to byte stores,
/// 3.7 times slower.
#[inline(always)]
fn grey16(g: &[u8; 16]) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (i, &v) in g.iter().enumerate() {
        out[3 * i] = v;
        out[3 * i + 1] = v;
        out[3 * i + 2] = v;
    }
    out
}

/// One row of the frame as RGB: the grey level, or where `lab` (the label map's row) has a
/// label, that grey level tinted (`tinted[label][grey]`, label 0 being plain grey). Sixteen
/// pixels without a label (most of a frame) are spread with [`grey16`]'s shuffles, the
/// others looked up one by one. Compiled for AVX2 and SSSE3 (the shuffle) with runtime
/// dispatch: 0.33 against 0.79 ms per 1024 frame on one thread for four pixels at a time
/// with shifts.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+ssse3"))]
fn rgb_row(row: &mut [u8], grey: &[u8], lab: Option<&[u8]>, tinted: &[[[u8; 3]; 256]; 5]) {
    let lookup = |px: &mut [u8], g: &[u8], l: &[u8]| {
        for ((p, &g), &l) in px.chunks_exact_mut(3).zip(g).zip(l) {
            p.copy_from_slice(&tinted[usize::from(l).min(4)][usize::from(g)]);
        }
    };
    let blocks = row.chunks_exact_mut(48).zip(grey.chunks_exact(16));
    let done = grey.len() / 16 * 16;
    match lab {
        Some(lab) => {
            for ((px, g), l) in blocks.zip(lab.chunks_exact(16)) {
                let l: &[u8; 16] = l.try_into().expect("16 labels");
                if u128::from_ne_bytes(*l) == 0 {
                    px.copy_from_slice(&grey16(g.try_into().expect("16 grey levels")));
                } else {
                    lookup(px, g, l);
                }
            }
            lookup(&mut row[3 * done..], &grey[done..], &lab[done..]);
        }
        None => {
            for (px, g) in blocks {
                px.copy_from_slice(&grey16(g.try_into().expect("16 grey levels")));
            }
            let rest = grey.len() - done;
            lookup(&mut row[3 * done..], &grey[done..], &[0; 16][..rest]);
        }
    }
}

/// The grey picture under the overlay.
#[derive(Clone, Copy, Debug)]
pub enum Grey<'a> {
    /// 8-bit display values.
    Display(&'a Frame<u8>),
    /// The enhanced frame, its field mask and the display window: the 8-bit values of
    /// [`fluoro_enhance::display::to_u8`], made a row at a time as the rows are drawn, so
    /// the frame loop never writes (1 MB at 1024) and reads back a frame of them. A mask
    /// of another size than the frame is ignored (every pixel inside).
    Windowed(&'a Frame<f32>, &'a Frame<u8>, Window),
}

impl Grey<'_> {
    fn size(&self) -> (usize, usize) {
        match self {
            Grey::Display(f) => f.size(),
            Grey::Windowed(f, ..) => f.size(),
        }
    }
}

/// Pixels of a windowed row mapped to 8 bits at a time (a stack buffer; a multiple of
/// [`rgb_row`]'s 16-pixel blocks).
const WINDOWED_SPAN: usize = 1024;

/// A span's mask where the mask given does not fit the frame.
const ALL_INSIDE: [u8; WINDOWED_SPAN] = [1; WINDOWED_SPAN];

/// Draws the overlay for one frame into `out` (resized to the frame).
pub fn draw(
    grey: Grey,
    labels: Option<&Frame<u8>>,
    a: &Analysis,
    plan: Option<Plan>,
    mm_per_px: Option<f64>,
    opts: &OverlayOptions,
    out: &mut RgbImage,
) {
    let (w, h) = grey.size();
    if out.width() != w as u32 || out.height() != h as u32 {
        *out = RgbImage::new(w as u32, h as u32);
    }
    let alpha = opts.label_alpha.clamp(0.0, 1.0);
    {
        use rayon::prelude::*;
        let buf: &mut [u8] = out;
        let labels = labels.filter(|_| opts.labels).map(|m| m.data());
        // the tinted colour of every (label, grey level), so each pixel is one lookup
        let mut tinted = [[[0u8; 3]; 256]; 5];
        for (l, table) in tinted.iter_mut().enumerate() {
            for (g, px) in table.iter_mut().enumerate() {
                let g = g as u8;
                *px = if l == 0 {
                    [g, g, g]
                } else {
                    TINT[l].map(|t| (f32::from(g) * (1.0 - alpha) + f32::from(t) * alpha) as u8)
                };
            }
        }
        buf.par_chunks_mut(3 * w).enumerate().for_each(|(y, row)| {
            let lab = labels.map(|l| &l[y * w..(y + 1) * w]);
            match grey {
                Grey::Display(d) => rgb_row(row, d.row(y), lab, &tinted),
                Grey::Windowed(f, mask, win) => {
                    let mut g = [0u8; WINDOWED_SPAN];
                    let fits = mask.size() == f.size();
                    for x0 in (0..w).step_by(WINDOWED_SPAN) {
                        let x1 = (x0 + WINDOWED_SPAN).min(w);
                        let g = &mut g[..x1 - x0];
                        let m = match fits {
                            true => &mask.row(y)[x0..x1],
                            false => &ALL_INSIDE[..x1 - x0],
                        };
                        to_u8_row(&f.row(y)[x0..x1], m, win, g);
                        let lab = lab.map(|l| &l[x0..x1]);
                        rgb_row(&mut row[3 * x0..3 * x1], g, lab, &tinted);
                    }
                }
            }
        });
    }
    let size = w.min(h) as u32;
    let lw = (size / 400).max(1);
    let scale = (size / 256).max(1);
    let state = a.guidance.state;
    let sc = state_colour(state);
    if let Some(p) = plan {
        dashed(
            out,
            p.entry,
            p.target,
            lw,
            6.0 * f64::from(lw),
            Rgb([230, 230, 230]),
        );
        draw_hollow_circle_mut(
            out,
            (p.target[0] as i32, p.target[1] as i32),
            (3 * lw) as i32,
            Rgb([230, 230, 230]),
        );
    }
    if opts.vill
        && let Some(v) = a.vill
    {
        let (dx, dy) = (v.p1[0] - v.p0[0], v.p1[1] - v.p0[1]);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        let k = f64::from(size) * 0.12 / l;
        let a0 = [v.p0[0] - dx * k, v.p0[1] - dy * k];
        let b0 = [v.p1[0] + dx * k, v.p1[1] + dy * k];
        dashed(out, a0, v.p0, lw, 5.0 * f64::from(lw), Rgb([0, 220, 255]));
        dashed(out, v.p1, b0, lw, 5.0 * f64::from(lw), Rgb([0, 220, 255]));
        thick_line(out, v.p0, v.p1, lw + 1, Rgb([0, 220, 255]));
        for p in [v.p0, v.p1] {
            draw_hollow_circle_mut(
                out,
                (p[0] as i32, p[1] as i32),
                (3 * lw) as i32,
                Rgb([0, 220, 255]),
            );
        }
    }
    if opts.instrument
        && let (Some(tip), Some(rear)) = (a.tool.tip, a.tool.rear)
    {
        let (dx, dy) = (tip[0] - rear[0], tip[1] - rear[1]);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        let ext = opts.extension_mm / mm_per_px.unwrap_or(0.3);
        let ahead = [tip[0] + dx / l * ext, tip[1] + dy / l * ext];
        thick_line(out, rear, tip, lw, Rgb([255, 230, 0]));
        dashed(out, tip, ahead, lw, 4.0 * f64::from(lw), Rgb([255, 230, 0]));
        draw_filled_circle_mut(
            out,
            (tip[0].round() as i32, tip[1].round() as i32),
            (2 * lw + 1) as i32,
            sc,
        );
    }
    // state border, so the state is seen without reading
    let b = (3 * lw) as i32;
    for (x, y, rw, rh) in [
        (0, 0, w as u32, b as u32),
        (0, h as i32 - b, w as u32, b as u32),
        (0, 0, b as u32, h as u32),
        (w as i32 - b, 0, b as u32, h as u32),
    ] {
        fill_rect(out, (x, y), (rw, rh), sc);
    }
    if opts.text {
        let dist = match (a.guidance.tip_to_vill_mm, a.guidance.tip_to_vill_px) {
            (Some(mm), _) => format!("{mm:+.1} MM"),
            (None, Some(px)) => format!("{px:+.0} PX"),
            _ => "--".into(),
        };
        let line1 = format!("TIP-VILL {dist}");
        let line2 = state.as_str().to_uppercase();
        let pad = 4 * scale as i64;
        let tw = font::text_width(&line1, scale).max(font::text_width(&line2, scale * 2)) as i64;
        let th = (7 * scale + 4 * scale + 14 * scale) as i64;
        fill_rect(
            out,
            (b + 2, b + 2),
            ((tw + 2 * pad) as u32, (th + 2 * pad) as u32),
            Rgb([0, 0, 0]),
        );
        text(
            out,
            &line1,
            i64::from(b) + 2 + pad,
            i64::from(b) + 2 + pad,
            scale,
            Rgb([255, 255, 255]),
        );
        text(
            out,
            &line2,
            i64::from(b) + 2 + pad,
            i64::from(b) + 2 + pad + i64::from(11 * scale),
            scale * 2,
            sc,
        );
        if let Some(ang) = a.guidance.angle_to_plan_deg {
            let s = format!(
                "PLAN {ang:.1} DEG {}",
                a.guidance
                    .offset_to_plan_mm
                    .map(|m| format!("{m:.1} MM"))
                    .unwrap_or_default()
            );
            text(
                out,
                &s,
                i64::from(b) + 2 + pad,
                i64::from(b) + 2 + 2 * pad + th,
                scale,
                Rgb([230, 230, 230]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fill_rect` fills what `imageproc`'s rectangle fill does: inside, across each edge,
    /// over a corner and wholly outside.
    #[test]
    fn fill_rect_matches_imageproc() {
        let c = Rgb([200, 30, 90]);
        for (x, y, rw, rh) in [
            (3, 4, 10, 5),
            (-4, 2, 9, 3),
            (30, -2, 20, 8),
            (-5, 20, 7, 40),
            (45, 34, 6, 6),
            (60, 5, 3, 3),
            (0, 0, 48, 36),
        ] {
            let mut ours = RgbImage::new(48, 36);
            let mut theirs = ours.clone();
            fill_rect(&mut ours, (x, y), (rw, rh), c);
            imageproc::drawing::draw_filled_rect_mut(
                &mut theirs,
                imageproc::rect::Rect::at(x, y).of_size(rw, rh),
                c,
            );
            assert!(ours == theirs, "rect at ({x}, {y}) of {rw} x {rh}");
        }
    }
    use fluoro_core::record::{GuidanceRecord, ToolRecord};

    /// The tinted frame inside the 3 px state border, blocks of 16 pixels with and without
    /// labels and the last pixels of a row not filling a block included, is the per-pixel
    /// definition: grey where there is no label (or the tint is off), else the grey level
    /// blended with the label's colour.
    #[test]
    fn tint_matches_the_per_pixel_definition() {
        // 16-pixel blocks with and without labels, and 5 pixels after the last block
        let (w, h, border) = (53, 14, 3);
        let display = Frame::from_fn(w, h, |x, y| (x * 11 + y * 37) as u8);
        let labels = Frame::from_fn(w, h, |x, y| match (x + 3 * y) % 9 {
            _ if y % 3 == 0 || (y % 3 == 1 && x < 34) => 0,
            0..=4 => 0,
            k => (k - 4 + y) as u8 % 7,
        });
        let a = Analysis {
            tool: ToolRecord::default(),
            vill: None,
            guidance: GuidanceRecord::default(),
            plan: None,
        };
        let mut opts = OverlayOptions {
            text: false,
            ..Default::default()
        };
        for tint in [true, false] {
            opts.labels = tint;
            let mut out = RgbImage::new(1, 1);
            draw(
                Grey::Display(&display),
                Some(&labels),
                &a,
                None,
                None,
                &opts,
                &mut out,
            );
            for y in border..h - border {
                for x in border..w - border {
                    let g = display.get(x, y);
                    let l = if tint { labels.get(x, y).min(4) } else { 0 };
                    let want = if l == 0 {
                        [g, g, g]
                    } else {
                        TINT[usize::from(l)].map(|t| {
                            let al = opts.label_alpha;
                            (f32::from(g) * (1.0 - al) + f32::from(t) * al) as u8
                        })
                    };
                    assert_eq!(out.get_pixel(x as u32, y as u32).0, want, "({x}, {y})");
                }
            }
        }
    }

    /// The enhanced frame drawn through its window is the same picture as its 8-bit
    /// display mapping drawn, over several 1024-pixel spans of a row; a mask that does not
    /// fit the frame counts every pixel inside.
    #[test]
    fn windowed_grey_is_the_display_mapping() {
        // rows 3 and up to h - 3 lie inside the state border
        let (w, h) = (2 * WINDOWED_SPAN + 37, 12);
        let f = Frame::from_fn(w, h, |x, y| ((x * 7 + y * 13) % 300) as f32 - 20.5);
        let mask = Frame::from_fn(w, h, |x, y| u8::from((x + y) % 11 != 0));
        let labels = Frame::from_fn(w, h, |x, y| ((x / 5 + y) % 6) as u8);
        let win = Window {
            center: 130.0,
            width: 240.0,
        };
        let a = Analysis {
            tool: ToolRecord::default(),
            vill: None,
            guidance: GuidanceRecord::default(),
            plan: None,
        };
        let opts = OverlayOptions {
            text: false,
            ..Default::default()
        };
        let picture = |grey: Grey| {
            let mut out = RgbImage::new(1, 1);
            draw(grey, Some(&labels), &a, None, None, &opts, &mut out);
            out
        };
        for (m, fitted) in [
            (&mask, mask.clone()),
            (&Frame::filled(3, 3, 0), Frame::filled(w, h, 1)),
        ] {
            let mut display = Frame::new(0, 0);
            fluoro_enhance::display::to_u8(&f, &fitted, win, &mut display);
            assert!(display.data().contains(&0) && display.data().contains(&255));
            let want = picture(Grey::Display(&display));
            // grey and tinted pixels inside the border, in every span
            let inside = |x: usize| want.get_pixel(x as u32, 5).0;
            assert!(
                (0..w)
                    .step_by(WINDOWED_SPAN)
                    .all(|x| inside(x + 1) != inside(x + 30))
            );
            assert!(picture(Grey::Windowed(&f, m, win)) == want);
        }
    }
}
