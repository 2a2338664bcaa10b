//! Motion-adaptive recursive temporal filter.
//!
//! `out = w * previous_out + (1 - w) * current`, with a per-pixel weight `w` that falls from
//! `recursion` to 0 as the local (3x3-averaged) frame difference grows past the noise level,
//! so static anatomy is averaged over several frames while a moving instrument is taken
//! from the current frame and does not smear.

mod current;

use crate::par::{par_chunks_with, reused};
pub use current::Current;
use fluoro_core::Frame;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of the recursive filter.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemporalParams {
    /// Weight of the history where nothing moves, in [0, 1); 0 disables the filter.
    /// 0.75 averages about 7 frames.
    pub recursion: f32,
    /// Difference, in robust standard deviations of the 3x3-averaged frame difference
    /// (measured on every frame, so noise correlation and the history's own noise are
    /// accounted for), at which the history weight reaches 0.
    pub motion_k: f32,
}

impl Default for TemporalParams {
    fn default() -> Self {
        Self {
            recursion: 0.75,
            motion_k: 4.0,
        }
    }
}

/// Robust noise sigma of a frame: median absolute horizontal difference / (0.6745 sqrt 2),
/// on a subsampled grid inside the mask.
pub fn estimate_noise_sigma(f: &Frame<f32>, mask: &Frame<u8>, scratch: &mut Vec<f32>) -> f32 {
    let (w, h) = f.size();
    scratch.clear();
    let step = if w * h > 256 * 256 { 4 } else { 1 };
    for y in (0..h).step_by(step) {
        let row = f.row(y);
        let m = mask.row(y);
        for x in (0..w.saturating_sub(1)).step_by(step) {
            if m[x] != 0 && m[x + 1] != 0 {
                scratch.push((row[x + 1] - row[x]).abs());
            }
        }
    }
    if scratch.is_empty() {
        return 1.0;
    }
    let mid = scratch.len() / 2;
    let (_, med, _) = scratch.select_nth_unstable_by(mid, f32::total_cmp);
    (*med / (0.6745 * std::f32::consts::SQRT_2)).max(1e-6)
}

/// The filter's state: the last output (updated in place, as the next frame's history), and
/// the motion gate's scale measured on the last frame.
#[derive(Debug, Default)]
pub struct RecursiveFilter {
    hist: Frame<f32>,
    /// Per block of [`BLOCK_ROWS`] rows: the horizontal difference sums of the row above it
    /// and of the row below it, taken before any block overwrites its rows.
    halos: Vec<f32>,
    /// Current-frame rows made for the halos ([`Current::Filled`]).
    halo_rows: Vec<Vec<f32>>,
    primed: bool,
    gate: GateScale,
    scratch: Vec<f32>,
    bands: Vec<BandScratch>,
}

/// What the gate knows of the noise before a frame is blended.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
enum GateScale {
    /// Nothing measured since the last reset: the frame measures its own first.
    #[default]
    Unmeasured,
    /// The robust sigma of the previous frame's 3x3-averaged difference (`None`: too few
    /// samples inside the mask).
    FromPrevious(Option<f32>),
}

/// One parallel band's buffers, kept across frames.
#[derive(Debug, Default)]
struct BandScratch {
    /// A 3-row ring of horizontal difference sums.
    ring: Vec<f32>,
    /// Rows of the current frame made here ([`Current::Filled`]): two, by row parity, in
    /// the blending pass; three in the gate's measurement.
    cur: Vec<f32>,
    /// The gate samples of the band's rows.
    samples: Vec<f32>,
}

/// Rows per parallel block of the fused pass (each block keeps a 3-row ring of horizontal
/// difference sums in cache).
const BLOCK_ROWS: usize = 32;

impl RecursiveFilter {
    /// Forgets the history (e.g. after a cut or a size change).
    pub fn reset(&mut self) {
        self.primed = false;
        self.gate = GateScale::Unmeasured;
    }

    /// The last output.
    pub fn output(&self) -> &Frame<f32> {
        &self.hist
    }

    /// Filters `cur`; `noise_sigma` is the per-pixel noise of `cur`. The result is
    /// [`RecursiveFilter::output`] (and is the history for the next frame).
    pub fn filter(
        &mut self,
        cur: &Frame<f32>,
        mask: &Frame<u8>,
        noise_sigma: f32,
        p: &TemporalParams,
    ) -> &Frame<f32> {
        self.filter_with(cur, mask, || noise_sigma, p)
    }

    /// [`RecursiveFilter::filter`] with the per-pixel noise sigma of `cur` computed only
    /// when it is needed: the gate measures its own scale on the frame difference and
    /// falls back on the pixel sigma only where the mask leaves too few samples for that
    /// (e.g. [`estimate_noise_sigma`], a serial 65 000-sample median at 1024, is then
    /// paid only for such frames).
    ///
    /// The gate's scale is measured in the blending pass, from the 3x3 sums it computes
    /// anyway, and used for the next frame: the noise of a study changes far slower than
    /// a frame, and a separate pass to measure it first read a third of both frames again
    /// (about 40% of this stage's time). The first frame after a reset measures its own.
    pub fn filter_with(
        &mut self,
        cur: &Frame<f32>,
        mask: &Frame<u8>,
        noise_sigma: impl FnOnce() -> f32 + Send,
        p: &TemporalParams,
    ) -> &Frame<f32> {
        self.filter_current(Current::Frame(cur), mask, noise_sigma, p)
    }

    /// [`RecursiveFilter::filter_with`] reading the current frame a row at a time
    /// ([`Current`]): with [`Current::Filled`], the normalised frame of log-domain data is
    /// never written, each of its rows made where the filter reads it. The same result as
    /// [`RecursiveFilter::filter_with`] on the normalised frame.
    pub fn filter_current(
        &mut self,
        cur: Current,
        mask: &Frame<u8>,
        noise_sigma: impl FnOnce() -> f32 + Send,
        p: &TemporalParams,
    ) -> &Frame<f32> {
        // its two parallel passes handed to the pool once
        crate::par::in_pool(|| self.filter_here(cur, mask, noise_sigma, p))
    }

    /// [`RecursiveFilter::filter_current`] on the calling thread.
    fn filter_here(
        &mut self,
        cur: Current,
        mask: &Frame<u8>,
        noise_sigma: impl FnOnce() -> f32,
        p: &TemporalParams,
    ) -> &Frame<f32> {
        let (w, h) = cur.size();
        let empty = w == 0 || h == 0;
        if !self.primed || self.hist.size() != (w, h) || p.recursion <= 0.0 || empty {
            self.hist.reshape(w, h);
            self.hist
                .data_mut()
                .par_chunks_mut(w.max(1))
                .enumerate()
                .for_each(|(y, o)| cur.copy_row(y, o));
            self.primed = true;
            self.gate = GateScale::Unmeasured;
            return &self.hist;
        }
        let a = p.recursion.clamp(0.0, 0.99);
        let grid = SampleGrid::new(w, h);
        let Self {
            hist,
            halos,
            halo_rows,
            gate,
            scratch,
            bands,
            ..
        } = self;
        // the gate's scale: the robust spread of the 3x3-averaged difference itself (noise
        // correlation and the history's own noise included); fallback from the pixel sigma
        let measured = match *gate {
            GateScale::FromPrevious(g) => g,
            GateScale::Unmeasured => measure_gate(cur, hist, mask, &grid, bands, scratch),
        };
        let gate_sigma = measured.unwrap_or_else(|| noise_sigma() * 1.1 / 3.0);
        // blend_row receives 3x3 sums (9x the mean)
        let inv_t = 1.0 / (p.motion_k * gate_sigma.max(1e-6) * 9.0);
        // The history is blended in place (no second frame to write, whose cache lines
        // would first be read in): a block's own rows are summed before it overwrites
        // them, and the rows just outside it, which other blocks overwrite, are summed
        // first, here.
        let blocks = h.div_ceil(BLOCK_ROWS);
        halos.resize(blocks * 2 * w, 0.0);
        let prev = &*hist;
        par_chunks_with(halos, 2 * w, halo_rows, |b, halo, buf: &mut Vec<f32>| {
            let buf = reused(buf, w);
            let (above, below) = halo.split_at_mut(w);
            let (y0, y1) = (b * BLOCK_ROWS, ((b + 1) * BLOCK_ROWS).min(h));
            let y = y0.saturating_sub(1);
            diff_hsum_row(cur.row_in(y, buf), prev.row(y), above);
            let y = y1.min(h - 1);
            diff_hsum_row(cur.row_in(y, buf), prev.row(y), below);
        });
        let halos = &*halos;
        bands.iter_mut().for_each(|b| b.samples.clear());
        par_chunks_with(
            hist.data_mut(),
            w * BLOCK_ROWS,
            bands,
            |b, block, band: &mut BandScratch| {
                let ring = reused(&mut band.ring, 3 * w);
                // the current frame's rows by parity: row y is made for its difference
                // sums and read again when it is blended
                let (even, odd) = reused(&mut band.cur, 2 * w).split_at_mut(w);
                let made = [even, odd];
                let y0 = b * BLOCK_ROWS;
                let rows = block.len() / w;
                let (above, below) = halos[b * 2 * w..(b + 1) * 2 * w].split_at(w);
                // ring slot k holds the horizontal sums of row (y0 - 1 + k) % 3
                let (s0, rest) = ring.split_at_mut(w);
                let (s1, s2) = rest.split_at_mut(w);
                let mut slots = [s0, s1, s2];
                slots[0].copy_from_slice(above);
                cur.make(y0, made[y0 % 2]);
                diff_hsum_row(cur.row(y0, made[y0 % 2]), &block[..w], slots[1]);
                for r in 0..rows {
                    let y = y0 + r;
                    if r + 1 < rows {
                        let next = &block[(r + 1) * w..(r + 2) * w];
                        cur.make(y + 1, made[(y + 1) % 2]);
                        diff_hsum_row(cur.row(y + 1, made[(y + 1) % 2]), next, slots[2]);
                    } else {
                        slots[2].copy_from_slice(below);
                    }
                    let o = &mut block[r * w..(r + 1) * w];
                    let c = cur.row(y, made[y % 2]);
                    blend_row(slots[0], slots[1], slots[2], c, a, inv_t, o);
                    grid.collect(
                        y,
                        [&*slots[0], &*slots[1], &*slots[2]],
                        mask,
                        &mut band.samples,
                    );
                    slots.rotate_left(1);
                }
            },
        );
        *gate = GateScale::FromPrevious(p25_sigma(bands, scratch));
        &self.hist
    }

    /// Like [`RecursiveFilter::filter`] but copies the result into `out`.
    pub fn apply(
        &mut self,
        cur: &Frame<f32>,
        mask: &Frame<u8>,
        noise_sigma: f32,
        p: &TemporalParams,
        out: &mut Frame<f32>,
    ) {
        let r = self.filter(cur, mask, noise_sigma, p);
        out.reshape(r.width(), r.height());
        out.data_mut().copy_from_slice(r.data());
    }
}

/// Where the gate samples the 3x3 mean of the difference: a grid of about 16 000 points
/// with `step` between them, starting 2 px inside the frame.
#[derive(Clone, Copy, Debug)]
struct SampleGrid {
    step: usize,
    nx: usize,
    ny: usize,
}

impl SampleGrid {
    fn new(w: usize, h: usize) -> Self {
        let step = ((w * h / 16_000) as f64).sqrt().max(1.0) as usize;
        Self {
            step,
            nx: w.saturating_sub(4).div_ceil(step),
            ny: h.saturating_sub(4).div_ceil(step),
        }
    }

    /// Appends to `out` the samples of row `y`, if it is a grid row, from the horizontal
    /// difference sums of rows `y - 1, y, y + 1` (`hs`): `|3x3 sum| / 9` at the grid's
    /// columns whose points lie at least 2 px inside the mask (up, down, left, right).
    fn collect(&self, y: usize, hs: [&[f32]; 3], mask: &Frame<u8>, out: &mut Vec<f32>) {
        if y < 2 || !(y - 2).is_multiple_of(self.step) || (y - 2) / self.step >= self.ny {
            return;
        }
        let (m_up, m, m_down) = (mask.row(y - 2), mask.row(y), mask.row(y + 2));
        for i in 0..self.nx {
            let x = 2 + i * self.step;
            if m[x - 2] != 0 && m[x + 2] != 0 && m_up[x] != 0 && m_down[x] != 0 {
                out.push(((hs[0][x] + hs[1][x] + hs[2][x]) / 9.0).abs());
            }
        }
    }
}

/// The gate's scale measured on this frame's difference before blending (the first frame
/// after a reset): the samples [`SampleGrid::collect`] takes in the blending pass, from
/// the same horizontal sums, so the two agree to the bit.
fn measure_gate(
    cur: Current,
    prev: &Frame<f32>,
    mask: &Frame<u8>,
    grid: &SampleGrid,
    bands: &mut Vec<BandScratch>,
    all: &mut Vec<f32>,
) -> Option<f32> {
    let w = cur.size().0;
    let threads = rayon::current_num_threads() * 4;
    if bands.len() < threads {
        bands.resize_with(threads, BandScratch::default);
    }
    // every band (some may hold samples from the last blending pass) takes rows
    let n = bands.len();
    bands.par_iter_mut().enumerate().for_each(|(b, band)| {
        band.samples.clear();
        let ring = reused(&mut band.ring, 3 * w);
        let buf = reused(&mut band.cur, w);
        for j in (b..grid.ny).step_by(n) {
            let y = 2 + j * grid.step;
            for (k, slot) in ring.chunks_exact_mut(w).enumerate() {
                let c = cur.row_in(y + k - 1, buf);
                diff_hsum_row(c, prev.row(y + k - 1), slot);
            }
            let (s0, rest) = ring.split_at(w);
            let (s1, s2) = rest.split_at(w);
            grid.collect(y, [s0, s1, s2], mask, &mut band.samples);
        }
    });
    p25_sigma(bands, all)
}

/// Robust sigma of the 3x3 mean of the difference from the bands' samples: their 25th
/// percentile magnitude / 0.3186 (the 25th percentile of |N(0, 1)|). The low quantile
/// stays a noise measure while up to 75% of the field changes (a large instrument, a
/// pan); the median would not. `None` with fewer than 16 samples.
fn p25_sigma(bands: &[BandScratch], all: &mut Vec<f32>) -> Option<f32> {
    all.clear();
    for b in bands {
        all.extend_from_slice(&b.samples);
    }
    if all.len() < 16 {
        return None;
    }
    let q = all.len() / 4;
    let (_, v, _) = all.select_nth_unstable_by(q, f32::total_cmp);
    Some(*v / 0.3186)
}

/// `d[x] = sum of (cur - prev) over x-1..=x+1` (edges clamped).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn diff_hsum_row(cur: &[f32], prev: &[f32], d: &mut [f32]) {
    let w = d.len();
    let at = |x: usize| cur[x] - prev[x];
    if w < 3 {
        let s: f32 = (0..w).map(at).sum::<f32>() + if w == 1 { 2.0 * at(0) } else { 0.0 };
        let s = if w == 2 { s + (at(0) + at(1)) / 2.0 } else { s };
        d.iter_mut().for_each(|v| *v = s);
        return;
    }
    let n = w - 2;
    let (c0, c1, c2) = (&cur[0..n], &cur[1..n + 1], &cur[2..n + 2]);
    let (q0, q1, q2) = (&prev[0..n], &prev[1..n + 1], &prev[2..n + 2]);
    for i in 0..n {
        d[i + 1] = (c0[i] - q0[i]) + (c1[i] - q1[i]) + (c2[i] - q2[i]);
    }
    d[0] = 2.0 * at(0) + at(1);
    d[w - 1] = 2.0 * at(w - 1) + at(w - 2);
}

/// Blends one row into its history (`hist`, updated in place): weight from the 3x3
/// difference sum, history where nothing moves.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn blend_row(
    r0: &[f32],
    r1: &[f32],
    r2: &[f32],
    cur: &[f32],
    a: f32,
    inv_t: f32,
    hist: &mut [f32],
) {
    // a * max(1 - |s| inv_t, 0) as max(a - |s| (a inv_t), 0): one multiply-add
    let a_inv_t = a * inv_t;
    for i in 0..hist.len() {
        let s = (r0[i] + r1[i] + r2[i]).abs();
        let wgt = (-s).mul_add(a_inv_t, a).max(0.0);
        hist[i] = cur[i] + wgt * (hist[i] - cur[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::tests::random_frame;

    #[test]
    fn static_noise_is_averaged_and_a_step_passes_at_once() {
        let mask = Frame::filled(64, 64, 1u8);
        let mut f = RecursiveFilter::default();
        let p = TemporalParams::default();
        let mut out = Frame::new(0, 0);
        let mut last = Frame::new(0, 0);
        for n in 0..30 {
            let noise = random_frame(64, 64, n);
            // uniform noise of width 200: sigma 57.7
            let cur = noise.map(|v| 1000.0 + (v - 2000.0) * 0.05);
            f.apply(&cur, &mask, 57.7, &p, &mut out);
            last = out.clone();
        }
        let mean = last.data().iter().sum::<f32>() / 4096.0;
        let var = last.data().iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4096.0;
        assert!(
            var.sqrt() < 57.7 * 0.75,
            "sigma {} (static noise should drop)",
            var.sqrt()
        );
        // a large step (moving instrument) is passed through without lag
        let step = Frame::from_fn(64, 64, |x, _| if x < 32 { 1000.0 } else { 200.0 });
        f.apply(&step, &mask, 57.7, &p, &mut out);
        assert!((out.get(50, 30) - 200.0).abs() < 5.0, "{}", out.get(50, 30));
        assert!(estimate_noise_sigma(&step, &mask, &mut Vec::new()) < 1.0);
    }

    /// The filter in f64, written for clarity: the 3x3 sums of the difference with clamped
    /// edges, the gate's 25th percentile on the sample grid of the previous frame's
    /// difference (the frame's own on the first), and the blend.
    fn reference(frames: &[Frame<f32>], mask: &Frame<u8>, p: &TemporalParams) -> Frame<f64> {
        let (w, h) = frames[0].size();
        let mut out = frames[0].map(f64::from);
        let mut measured: Option<Option<f64>> = None;
        let grid = SampleGrid::new(w, h);
        for cur in &frames[1..] {
            let box_sum = |x: usize, y: usize| {
                let mut s = 0.0;
                for dy in -1..=1isize {
                    for dx in -1..=1isize {
                        let xx = (x as isize + dx).clamp(0, w as isize - 1) as usize;
                        let yy = (y as isize + dy).clamp(0, h as isize - 1) as usize;
                        s += f64::from(cur.get(xx, yy)) - out.get(xx, yy);
                    }
                }
                s
            };
            let mut samples = Vec::new();
            for j in 0..grid.ny {
                for i in 0..grid.nx {
                    let (x, y) = (2 + i * grid.step, 2 + j * grid.step);
                    let inside = [(x - 2, y), (x + 2, y), (x, y - 2), (x, y + 2)]
                        .iter()
                        .all(|&(xx, yy)| mask.get(xx, yy) != 0);
                    if inside {
                        samples.push((box_sum(x, y) / 9.0).abs());
                    }
                }
            }
            samples.sort_by(f64::total_cmp);
            let this = (samples.len() >= 16).then(|| samples[samples.len() / 4] / 0.3186);
            let gate = measured.unwrap_or(this).expect("enough samples");
            measured = Some(this);
            let a = f64::from(p.recursion);
            let t = f64::from(p.motion_k) * gate * 9.0;
            out = Frame::from_fn(w, h, |x, y| {
                let c = f64::from(cur.get(x, y));
                let wgt = a * (1.0 - box_sum(x, y).abs() / t).max(0.0);
                c + wgt * (out.get(x, y) - c)
            });
        }
        out
    }

    #[test]
    fn matches_the_reference_when_the_noise_jumps() {
        use rand::SeedableRng;
        use rand_distr_shim::gauss;
        let (w, h) = (83, 61);
        let mask = Frame::from_fn(w, h, |x, y| {
            u8::from((x as i32 - 41).pow(2) + (y as i32 - 30).pow(2) < 38 * 38)
        });
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        // a static scene whose noise quadruples at frame 4, with a bar moving across it
        let frames: Vec<Frame<f32>> = (0..8)
            .map(|n| {
                let sigma = if n < 4 { 10.0 } else { 40.0 };
                Frame::from_fn(w, h, |x, y| {
                    let bar = if x.abs_diff(10 + 7 * n) < 3 {
                        -300.0
                    } else {
                        0.0
                    };
                    1000.0 + 2.0 * y as f32 + bar + sigma * gauss(&mut rng)
                })
            })
            .collect();
        let p = TemporalParams::default();
        let mut f = RecursiveFilter::default();
        for n in 0..frames.len() {
            let got = f.filter(&frames[n], &mask, 1.0, &p).clone();
            let want = reference(&frames[..=n], &mask, &p);
            let worst = got
                .data()
                .iter()
                .zip(want.data())
                .map(|(g, w)| (f64::from(*g) - w).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-2, "frame {n}: off by {worst}");
        }
    }

    #[test]
    fn empty_frames_pass_through() {
        let mut f = RecursiveFilter::default();
        let p = TemporalParams::default();
        for (w, h) in [(0, 0), (0, 0), (0, 5), (5, 0), (5, 0)] {
            let out = f.filter(&Frame::new(w, h), &Frame::new(w, h), 1.0, &p);
            assert_eq!(out.size(), (w, h));
        }
    }

    #[test]
    fn noise_estimate_is_close() {
        let mask = Frame::filled(300, 300, 1u8);
        use rand::SeedableRng;
        use rand_distr_shim::gauss;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(3);
        let f = Frame::from_fn(300, 300, |_, _| 500.0 + 20.0 * gauss(&mut rng));
        let s = estimate_noise_sigma(&f, &mask, &mut Vec::new());
        assert!((s - 20.0).abs() < 1.5, "{s}");
    }

    mod rand_distr_shim {
        use rand::RngExt;
        /// Box-Muller normal sample.
        pub fn gauss(rng: &mut rand_pcg::Pcg64) -> f32 {
            let u1: f32 = rng.random::<f32>().max(1e-7);
            let u2: f32 = rng.random::<f32>();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
        }
    }
}
