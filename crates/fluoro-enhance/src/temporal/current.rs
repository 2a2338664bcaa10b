//! The current frame as the recursive filter reads it, a row at a time.

use fluoro_core::Frame;

/// The current frame as [`super::RecursiveFilter::filter_current`] reads it.
#[derive(Clone, Copy, Debug)]
pub enum Current<'a> {
    /// A frame in the filter's domain (normalised).
    Frame(&'a Frame<f32>),
    /// Stored values already in the log domain, every pixel outside `mask` read as
    /// `fill`: [`crate::normalize::normalize`]'s output for such data when `fill` is its
    /// inside mean ([`crate::normalize::inside_mean`]), made a row at a time where the
    /// filter reads it, so the normalised frame is never written. `mask` must have `src`'s
    /// size.
    Filled {
        /// Stored values.
        src: &'a Frame<f32>,
        /// The field.
        mask: &'a Frame<u8>,
        /// The value of every pixel outside the field.
        fill: f32,
    },
}

impl Current<'_> {
    /// Width and height.
    pub(super) fn size(&self) -> (usize, usize) {
        match self {
            Current::Frame(f) => f.size(),
            Current::Filled { src, .. } => src.size(),
        }
    }

    /// Row `y` written into `out` (a row long), stored or made.
    pub(super) fn copy_row(&self, y: usize, out: &mut [f32]) {
        match self {
            Current::Frame(f) => out.copy_from_slice(f.row(y)),
            Current::Filled { src, mask, fill } => fill_row(src.row(y), mask.row(y), *fill, out),
        }
    }

    /// Makes row `y` in `buf` (a row long) where it is not stored; [`Current::row`] then
    /// reads it from there.
    pub(super) fn make(&self, y: usize, buf: &mut [f32]) {
        if let Current::Filled { .. } = self {
            self.copy_row(y, buf);
        }
    }

    /// Row `y`: the stored frame's, or `buf` as [`Current::make`] left it.
    pub(super) fn row<'b>(&'b self, y: usize, buf: &'b [f32]) -> &'b [f32] {
        match self {
            Current::Frame(f) => f.row(y),
            Current::Filled { .. } => buf,
        }
    }

    /// Row `y`, made in `buf` where it is not stored.
    pub(super) fn row_in<'b>(&'b self, y: usize, buf: &'b mut [f32]) -> &'b [f32] {
        self.make(y, buf);
        self.row(y, buf)
    }
}

/// `src` with every pixel outside `mask` set to `fill`: the values
/// [`crate::normalize::normalize`] writes for log-domain data (a copy, then the outside
/// filled). A select, so it vectorises.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+fma",
    "x86_64+avx2+fma"
))]
fn fill_row(src: &[f32], mask: &[u8], fill: f32, out: &mut [f32]) {
    for ((o, &v), &m) in out.iter_mut().zip(src).zip(mask) {
        *o = if m != 0 { v } else { fill };
    }
}
