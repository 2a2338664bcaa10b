//! A dense, row-major 2D image.

use ndarray::{ArrayView2, ArrayViewMut2};
use std::sync::atomic::{AtomicU64, Ordering};

/// A dense row-major image of `width x height` pixels of type `T`.
///
/// This is the unit of work of every pipeline stage: frames are allocated once and reused
/// across a study (see [`Frame::reshape`]), so the steady state allocates nothing.
///
/// Equality compares sizes and pixels only (not [`Frame::stamp`]).
#[derive(Clone, Debug, Default)]
pub struct Frame<T> {
    width: usize,
    height: usize,
    data: Vec<T>,
    stamp: Stamp,
}

impl<T: PartialEq> PartialEq for Frame<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.width, self.height) == (other.width, other.height) && self.data == other.data
    }
}

/// The content version behind [`Frame::stamp`]: 0 until read, then a number no other
/// content has had; every mutable access sets it back to 0. A clone starts with its
/// original's (the same pixels).
#[derive(Debug, Default)]
struct Stamp(AtomicU64);

impl Clone for Stamp {
    fn clone(&self) -> Self {
        Self(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

/// The last stamp handed out (stamps start at 1; 0 means "none yet").
static LAST_STAMP: AtomicU64 = AtomicU64::new(0);

impl Stamp {
    /// Forgets the stamp: the content may change.
    #[inline(always)]
    fn clear(&mut self) {
        *self.0.get_mut() = 0;
    }
}

impl<T: Copy + Default> Frame<T> {
    /// A frame filled with `T::default()`.
    pub fn new(width: usize, height: usize) -> Self {
        Self::filled(width, height, T::default())
    }

    /// Resizes in place, reusing the allocation; contents are unspecified afterwards
    /// (newly exposed pixels are `T::default()`).
    pub fn reshape(&mut self, width: usize, height: usize) {
        self.stamp.clear();
        self.width = width;
        self.height = height;
        self.data.resize(width * height, T::default());
    }
}

impl<T: Copy> Frame<T> {
    /// A frame with every pixel set to `value`.
    pub fn filled(width: usize, height: usize, value: T) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
            stamp: Stamp::default(),
        }
    }

    /// Wraps a row-major buffer; `None` when its length is not `width * height`.
    pub fn from_vec(width: usize, height: usize, data: Vec<T>) -> Option<Self> {
        (width.checked_mul(height) == Some(data.len())).then_some(Self {
            width,
            height,
            data,
            stamp: Stamp::default(),
        })
    }

    /// A frame whose pixel at `(x, y)` is `f(x, y)`.
    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            for x in 0..width {
                data.push(f(x, y));
            }
        }
        Self {
            width,
            height,
            data,
            stamp: Stamp::default(),
        }
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// `(width, height)`.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The pixels, row-major.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The pixels, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [T] {
        self.stamp.clear();
        &mut self.data
    }

    /// A number for the frame's current content (size and pixels), so that a stage can
    /// keep what it derived from a frame (a mask's row spans, say) for as long as the
    /// frame is unchanged without comparing pixels: two calls that return the same number
    /// saw the same content. Every mutable access ([`Frame::data_mut`], [`Frame::row_mut`],
    /// [`Frame::set`], [`Frame::view_mut`], [`Frame::reshape`]) makes the next call return
    /// a new number; a clone keeps its original's until either changes. Never 0.
    pub fn stamp(&self) -> u64 {
        let s = self.stamp.0.load(Ordering::Relaxed);
        if s != 0 {
            return s;
        }
        let new = LAST_STAMP.fetch_add(1, Ordering::Relaxed) + 1;
        // another thread reading the same unchanged frame may have set one first
        match self
            .stamp
            .0
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(current) => current,
        }
    }

    /// Takes the buffer out.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Pixel at column `x`, row `y`. Panics when out of bounds, like slice indexing.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> T {
        self.data[y * self.width + x]
    }

    /// Sets the pixel at column `x`, row `y`.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, value: T) {
        self.stamp.clear();
        self.data[y * self.width + x] = value;
    }

    /// Row `y`.
    #[inline]
    pub fn row(&self, y: usize) -> &[T] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    /// Row `y`, mutable.
    #[inline]
    pub fn row_mut(&mut self, y: usize) -> &mut [T] {
        self.stamp.clear();
        &mut self.data[y * self.width..(y + 1) * self.width]
    }

    /// A new frame with `f` applied to every pixel.
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Frame<U> {
        Frame {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| f(v)).collect(),
            stamp: Stamp::default(),
        }
    }

    /// An ndarray view with shape `(rows, columns)`.
    pub fn view(&self) -> ArrayView2<'_, T> {
        ArrayView2::from_shape((self.height, self.width), &self.data)
            .expect("frame length is width*height")
    }

    /// A mutable ndarray view with shape `(rows, columns)`.
    pub fn view_mut(&mut self) -> ArrayViewMut2<'_, T> {
        self.stamp.clear();
        ArrayViewMut2::from_shape((self.height, self.width), &mut self.data)
            .expect("frame length is width*height")
    }
}

impl Frame<f32> {
    /// Bilinear sample at sub-pixel `(x, y)` (pixel centres at integers), clamped to the edge.
    pub fn sample_bilinear(&self, x: f32, y: f32) -> f32 {
        let xm = (self.width - 1) as f32;
        let ym = (self.height - 1) as f32;
        let x = x.clamp(0.0, xm);
        let y = y.clamp(0.0, ym);
        let x0 = x.floor() as usize;
        let y0 = y.floor() as usize;
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let fx = x - x0 as f32;
        let fy = y - y0 as f32;
        let top = self.get(x0, y0) * (1.0 - fx) + self.get(x1, y0) * fx;
        let bottom = self.get(x0, y1) * (1.0 - fx) + self.get(x1, y1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp stays while the content does and changes with every kind of mutable
    /// access; clones share it until either changes; equality ignores it.
    #[test]
    fn stamps_follow_the_content() {
        let mut f = Frame::filled(4, 3, 1u8);
        let s = f.stamp();
        assert_ne!(s, 0);
        assert_eq!(f.stamp(), s);
        let g = f.clone();
        assert_eq!(g.stamp(), s);
        let other = Frame::filled(4, 3, 1u8);
        assert_ne!(other.stamp(), s);
        assert_eq!(other, f);
        let mut seen = vec![s];
        let mut check = |f: &Frame<u8>| {
            let t = f.stamp();
            assert!(!seen.contains(&t), "stamp {t} reused");
            seen.push(t);
        };
        f.data_mut()[0] = 2;
        check(&f);
        f.row_mut(1)[2] = 3;
        check(&f);
        f.set(3, 2, 4);
        check(&f);
        f.view_mut()[[0, 1]] = 5;
        check(&f);
        f.reshape(2, 2);
        check(&f);
        assert_eq!(g.stamp(), s, "the clone kept its stamp");
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(Frame::from_vec(3, 2, vec![0u8; 6]).is_some());
        assert!(Frame::from_vec(3, 2, vec![0u8; 5]).is_none());
    }

    #[test]
    fn indexing_is_row_major() {
        let f = Frame::from_fn(4, 3, |x, y| (y * 10 + x) as u16);
        assert_eq!(f.get(3, 2), 23);
        assert_eq!(f.row(1), &[10, 11, 12, 13]);
        assert_eq!(f.view()[(2, 3)], 23);
    }

    #[test]
    fn bilinear_interpolates_between_centres() {
        let f = Frame::from_fn(2, 2, |x, y| (x + 2 * y) as f32);
        assert!((f.sample_bilinear(0.5, 0.5) - 1.5).abs() < 1e-6);
        assert!((f.sample_bilinear(-3.0, 0.0) - 0.0).abs() < 1e-6);
    }

    #[test]
    fn reshape_reuses_buffer() {
        let mut f = Frame::<u8>::new(8, 8);
        let cap = f.data.capacity();
        f.reshape(4, 4);
        assert_eq!(f.data().len(), 16);
        assert_eq!(f.data.capacity(), cap);
    }
}
