//! Stored pixel values: the layout of a frame and the typed samples decoded from it.
//!
//! "Stored values" follow PS3.5 8.1.1: bits outside `BitsStored` are masked off (after
//! shifting so `HighBit` is the top stored bit) and signed data is sign-extended from
//! `BitsStored`. Nothing else is applied: no modality or VOI LUT, no MONOCHROME1 inversion.

use fluoro_core::Frame;
use serde::Serialize;

/// How a frame's samples are laid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PixelFormat {
    /// Rows (0028,0010).
    pub rows: usize,
    /// Columns (0028,0011).
    pub columns: usize,
    /// Samples per Pixel (0028,0002): 1 or 3.
    pub samples_per_pixel: usize,
    /// Bits Allocated (0028,0100): 1, 8, 16 or 32.
    pub bits_allocated: u16,
    /// Bits Stored (0028,0101).
    pub bits_stored: u16,
    /// High Bit (0028,0102).
    pub high_bit: u16,
    /// Pixel Representation (0028,0103) = 1.
    pub signed: bool,
    /// Photometric Interpretation (0028,0004).
    pub photometric: String,
    /// Planar Configuration (0028,0006) = 1: colour planes stored one after another.
    pub planar: bool,
}

impl PixelFormat {
    /// Samples in one frame.
    pub fn samples_per_frame(&self) -> usize {
        self.rows * self.columns * self.samples_per_pixel
    }

    /// Bytes of one native frame (for 1-bit data, rounded up; frames may share a byte).
    pub fn native_frame_bits(&self) -> u64 {
        self.samples_per_frame() as u64 * u64::from(self.bits_allocated)
    }

    /// The NumPy dtype of the stored values, as the export contract names it.
    pub fn npy_dtype(&self) -> &'static str {
        match (self.bits_allocated, self.signed) {
            (1, _) | (8, false) => "|u1",
            (8, true) | (16, true) => "<i2",
            (16, false) => "<u2",
            (32, false) => "<u4",
            (32, true) => "<i4",
            _ => "<i4",
        }
    }

    /// True for MONOCHROME1 (minimum value shown white).
    pub fn is_monochrome1(&self) -> bool {
        self.photometric == "MONOCHROME1"
    }

    /// Masks and sign-extends one raw sample to its stored value.
    #[inline]
    pub fn stored_value(&self, raw: u32) -> i64 {
        if self.bits_allocated == 1 {
            return i64::from(raw & 1);
        }
        let stored = u32::from(self.bits_stored.clamp(1, 32));
        let shift = (u32::from(self.high_bit) + 1)
            .saturating_sub(stored)
            .min(31);
        let v = raw >> shift;
        let v = if stored >= 32 {
            v
        } else {
            v & ((1u32 << stored) - 1)
        };
        if self.signed && stored < 32 && (v >> (stored - 1)) & 1 == 1 {
            i64::from(v) - (1i64 << stored)
        } else if self.signed && stored >= 32 {
            i64::from(v as i32)
        } else {
            i64::from(v)
        }
    }
}

/// The typed samples of one frame, row-major, colour interleaved.
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// Unsigned 8-bit (and 1-bit, as 0/1).
    U8(Vec<u8>),
    /// Unsigned 16-bit.
    U16(Vec<u16>),
    /// Signed 8- or 16-bit.
    I16(Vec<i16>),
    /// Unsigned 32-bit.
    U32(Vec<u32>),
    /// Signed 32-bit.
    I32(Vec<i32>),
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::U32(v) => v.len(),
            Self::I32(v) => v.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `i` widened to i64.
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        match self {
            Self::U8(v) => i64::from(v[i]),
            Self::U16(v) => i64::from(v[i]),
            Self::I16(v) => i64::from(v[i]),
            Self::U32(v) => i64::from(v[i]),
            Self::I32(v) => i64::from(v[i]),
        }
    }

    /// Appends the samples as little-endian bytes (the `.npy` payload).
    pub fn extend_le_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Self::U8(v) => out.extend_from_slice(v),
            Self::U16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// One decoded frame of stored values.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFrame {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// 1 (grayscale) or 3 (colour, interleaved).
    pub samples_per_pixel: usize,
    /// The samples.
    pub samples: Samples,
}

impl StoredFrame {
    /// Builds typed stored values from raw sample values (already in sample order).
    pub fn from_raw(format: &PixelFormat, raw: impl Iterator<Item = u32>) -> Self {
        let n = format.samples_per_frame();
        let raw = raw.take(n);
        let samples = match (format.bits_allocated, format.signed) {
            (1, _) | (8, false) => Samples::U8(raw.map(|r| format.stored_value(r) as u8).collect()),
            (8, true) | (16, true) => {
                Samples::I16(raw.map(|r| format.stored_value(r) as i16).collect())
            }
            (16, false) => Samples::U16(raw.map(|r| format.stored_value(r) as u16).collect()),
            (32, false) => Samples::U32(raw.map(|r| format.stored_value(r) as u32).collect()),
            _ => Samples::I32(raw.map(|r| format.stored_value(r) as i32).collect()),
        };
        Self {
            width: format.columns,
            height: format.rows,
            samples_per_pixel: format.samples_per_pixel,
            samples,
        }
    }

    /// Grayscale stored values as `f32` (colour frames are reduced to luma), for processing.
    pub fn to_f32(&self) -> Frame<f32> {
        let mut out = Frame::new(self.width, self.height);
        self.write_f32(&mut out);
        out
    }

    /// Like [`StoredFrame::to_f32`] but into an existing frame, reusing its buffer.
    pub fn write_f32(&self, out: &mut Frame<f32>) {
        out.reshape(self.width, self.height);
        let spp = self.samples_per_pixel;
        let dst = out.data_mut();
        if spp == 1 {
            match &self.samples {
                Samples::U8(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = f32::from(s)),
                Samples::U16(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = f32::from(s)),
                Samples::I16(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = f32::from(s)),
                Samples::U32(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = s as f32),
                Samples::I32(v) => dst.iter_mut().zip(v).for_each(|(d, &s)| *d = s as f32),
            }
        } else {
            for (i, d) in dst.iter_mut().enumerate() {
                let r = self.samples.get(i * spp) as f32;
                let g = self.samples.get(i * spp + 1) as f32;
                let b = self.samples.get(i * spp + 2) as f32;
                *d = 0.299 * r + 0.587 * g + 0.114 * b;
            }
        }
    }

    /// Minimum and maximum stored value.
    pub fn min_max(&self) -> (i64, i64) {
        (0..self.samples.len())
            .map(|i| self.samples.get(i))
            .fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }
}

/// One native frame's raw samples, as the data set holds them.
#[derive(Clone, Copy, Debug)]
pub enum Words<'a> {
    /// 8-bit samples.
    U8(&'a [u8]),
    /// 16-bit samples (already in native order).
    U16(&'a [u16]),
}

/// Converts raw samples to stored values (bits stored, high bit, sign) as `f32`, in one
/// pass with the shift, mask and sign extension set up once.
pub fn stored_to_f32(format: &PixelFormat, words: Words<'_>, out: &mut [f32]) {
    let stored = u32::from(format.bits_stored.clamp(1, 16));
    let shift = (u32::from(format.high_bit) + 1)
        .saturating_sub(stored)
        .min(15);
    let mask = ((1u32 << stored) - 1) as i32;
    let sign = if format.signed {
        1i32 << (stored - 1)
    } else {
        0
    };
    // (v ^ sign) - sign sign-extends a `stored`-bit value when `sign` is its top bit
    let conv = |raw: u32| ((((raw >> shift) as i32 & mask) ^ sign) - sign) as f32;
    match words {
        Words::U8(b) => out
            .iter_mut()
            .zip(b)
            .for_each(|(o, &v)| *o = conv(u32::from(v))),
        Words::U16(w) => out
            .iter_mut()
            .zip(w)
            .for_each(|(o, &v)| *o = conv(u32::from(v))),
    }
}

/// Reads raw samples from native (uncompressed) little-endian bytes.
///
/// `bit_offset` is where the frame starts (1-bit frames need not start on a byte).
pub fn native_frame(format: &PixelFormat, bytes: &[u8], bit_offset: u64) -> StoredFrame {
    let n = format.samples_per_frame();
    let frame = match format.bits_allocated {
        1 => {
            let start = bit_offset;
            StoredFrame::from_raw(
                format,
                (0..n as u64).map(|i| {
                    let b = start + i;
                    u32::from((bytes[(b / 8) as usize] >> (b % 8)) & 1)
                }),
            )
        }
        8 => {
            let o = (bit_offset / 8) as usize;
            StoredFrame::from_raw(format, bytes[o..o + n].iter().map(|&b| u32::from(b)))
        }
        16 => {
            let o = (bit_offset / 8) as usize;
            StoredFrame::from_raw(
                format,
                bytes[o..o + 2 * n]
                    .chunks_exact(2)
                    .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))),
            )
        }
        _ => {
            let o = (bit_offset / 8) as usize;
            StoredFrame::from_raw(
                format,
                bytes[o..o + 4 * n]
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            )
        }
    };
    if format.planar && format.samples_per_pixel == 3 {
        interleave_planes(frame)
    } else {
        frame
    }
}

/// Converts a planar (RRR..GGG..BBB..) colour frame to interleaved.
fn interleave_planes(mut f: StoredFrame) -> StoredFrame {
    let plane = f.width * f.height;
    fn inter<T: Copy>(v: &[T], plane: usize) -> Vec<T> {
        (0..plane)
            .flat_map(|i| [v[i], v[plane + i], v[2 * plane + i]])
            .collect()
    }
    f.samples = match &f.samples {
        Samples::U8(v) => Samples::U8(inter(v, plane)),
        Samples::U16(v) => Samples::U16(inter(v, plane)),
        Samples::I16(v) => Samples::I16(inter(v, plane)),
        Samples::U32(v) => Samples::U32(inter(v, plane)),
        Samples::I32(v) => Samples::I32(inter(v, plane)),
    };
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(bits_allocated: u16, bits_stored: u16, signed: bool) -> PixelFormat {
        PixelFormat {
            rows: 1,
            columns: 4,
            samples_per_pixel: 1,
            bits_allocated,
            bits_stored,
            high_bit: bits_stored - 1,
            signed,
            photometric: "MONOCHROME2".into(),
            planar: false,
        }
    }

    #[test]
    fn the_f32_fast_path_equals_stored_value() {
        let raws: Vec<u16> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u16)
            .chain([0, 1, 0x7FFF, 0x8000, 0xFFFF])
            .collect();
        for signed in [false, true] {
            for stored in [8u16, 10, 12, 15, 16] {
                for high in [stored - 1, 15] {
                    let mut f = fmt(16, stored, signed);
                    f.high_bit = high;
                    let mut out = vec![0f32; raws.len()];
                    stored_to_f32(&f, Words::U16(&raws), &mut out);
                    for (&r, &o) in raws.iter().zip(&out) {
                        assert_eq!(o, f.stored_value(u32::from(r)) as f32, "{f:?} raw {r:#x}");
                    }
                }
            }
            let f = fmt(8, 8, signed);
            let bytes: Vec<u8> = (0..=255).collect();
            let mut out = vec![0f32; 256];
            stored_to_f32(&f, Words::U8(&bytes), &mut out);
            for (&r, &o) in bytes.iter().zip(&out) {
                assert_eq!(o, f.stored_value(u32::from(r)) as f32);
            }
        }
    }

    #[test]
    fn masks_and_sign_extends() {
        let f = fmt(16, 12, true);
        assert_eq!(f.stored_value(0xF800), -2048); // top bits garbage, bit 11 set
        assert_eq!(f.stored_value(0x07FF), 2047);
        assert_eq!(f.stored_value(0xFFFF), -1);
        let u = fmt(16, 10, false);
        assert_eq!(u.stored_value(0xFC01), 1);
        let w = fmt(32, 32, true);
        assert_eq!(w.stored_value(0xFFFF_FFFE), -2);
        let w = fmt(32, 24, false);
        assert_eq!(w.stored_value(0xFF00_0001), 1);
    }

    #[test]
    fn one_bit_frames_at_bit_offsets() {
        let f = fmt(1, 1, false);
        let bytes = [0b1010_0110u8];
        let a = native_frame(&f, &bytes, 0);
        assert_eq!(a.samples, Samples::U8(vec![0, 1, 1, 0]));
        let b = native_frame(&f, &bytes, 4);
        assert_eq!(b.samples, Samples::U8(vec![0, 1, 0, 1]));
    }

    #[test]
    fn planar_colour_is_interleaved() {
        let mut f = fmt(8, 8, false);
        f.columns = 2;
        f.samples_per_pixel = 3;
        f.planar = true;
        let bytes = [1, 2, 10, 20, 100, 200];
        let fr = native_frame(&f, &bytes, 0);
        assert_eq!(fr.samples, Samples::U8(vec![1, 10, 100, 2, 20, 200]));
    }
}
