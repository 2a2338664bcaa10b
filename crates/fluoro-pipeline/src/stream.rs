//! A raw frame stream: the simplest way for a frame grabber or a C-arm bridge to feed the
//! live loop, over TCP or a pipe.
//!
//! Each frame is a 32-byte little-endian header followed by the pixels:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `FLRO` |
//! | 4 | 2 | version, 1 |
//! | 6 | 2 | sample type: 1 = u8, 2 = u16, 3 = i16, 4 = f32 |
//! | 8 | 4 | width (columns) |
//! | 12 | 4 | height (rows) |
//! | 16 | 8 | frame index (u64) |
//! | 24 | 8 | mm per pixel in the isocentre plane (f64; 0 or NaN = unknown) |
//! | 32 | w*h*size | samples, row-major, little-endian, dense = low (MONOCHROME2) |
//!
//! The end of the stream (EOF at a frame boundary) ends the session. A bad header is an
//! error that names the problem; sizes are bounded so a lying header cannot make the
//! reader allocate more than one 16384 x 16384 frame.

use crate::live::FrameSource;
use fluoro_core::Frame;
use std::io::{self, Read, Write};
use std::time::Instant;

/// Header magic.
pub const MAGIC: &[u8; 4] = b"FLRO";
/// Largest accepted side.
pub const MAX_SIDE: u32 = 16384;

/// Sample types of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    /// Unsigned 8-bit.
    U8 = 1,
    /// Unsigned 16-bit.
    U16 = 2,
    /// Signed 16-bit.
    I16 = 3,
    /// 32-bit float.
    F32 = 4,
}

impl SampleType {
    fn size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::F32 => 4,
        }
    }
}

/// One frame's header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    /// Sample type.
    pub sample: SampleType,
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Frame index.
    pub index: u64,
    /// Scale, when known.
    pub mm_per_px: Option<f64>,
}

impl Header {
    /// Serialises the header.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..4].copy_from_slice(MAGIC);
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        b[6..8].copy_from_slice(&(self.sample as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.width.to_le_bytes());
        b[12..16].copy_from_slice(&self.height.to_le_bytes());
        b[16..24].copy_from_slice(&self.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.mm_per_px.unwrap_or(0.0).to_le_bytes());
        b
    }

    /// Parses and validates a header.
    pub fn parse(b: &[u8; 32]) -> Result<Self, String> {
        if &b[0..4] != MAGIC {
            return Err(format!("bad magic {:02X?} (expected \"FLRO\")", &b[0..4]));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != 1 {
            return Err(format!("unsupported stream version {version}"));
        }
        let sample = match u16::from_le_bytes([b[6], b[7]]) {
            1 => SampleType::U8,
            2 => SampleType::U16,
            3 => SampleType::I16,
            4 => SampleType::F32,
            t => return Err(format!("unknown sample type {t}")),
        };
        let width = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let height = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!("frame size {width}x{height} outside 1..{MAX_SIDE}"));
        }
        let index = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        let mm = f64::from_le_bytes(b[24..32].try_into().expect("8 bytes"));
        let mm_per_px = (mm.is_finite() && mm > 0.0).then_some(mm);
        Ok(Self {
            sample,
            width,
            height,
            index,
            mm_per_px,
        })
    }
}

/// Writes one frame (for senders and tests).
pub fn write_frame<W: Write>(w: &mut W, header: &Header, samples: &[u8]) -> io::Result<()> {
    w.write_all(&header.to_bytes())?;
    w.write_all(samples)
}

/// Reads one header; `Ok(None)` at a clean end of stream.
pub fn read_header<R: Read>(r: &mut R) -> Result<Option<Header>, String> {
    let mut b = [0u8; 32];
    let mut got = 0;
    while got < 32 {
        match r.read(&mut b[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(format!("stream ended inside a header ({got} of 32 bytes)")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Header::parse(&b).map(Some)
}

/// A [`FrameSource`] over any byte stream (a TCP connection, stdin, a file).
pub struct StreamSource<R> {
    reader: R,
    name: String,
    payload: Vec<u8>,
    pending: Option<Header>,
    size: Option<(u32, u32)>,
    first: Option<Frame<f32>>,
    first_index: usize,
}

impl<R: Read + Send> StreamSource<R> {
    /// A source reading from `reader`; `name` appears in errors (e.g. the peer address).
    pub fn new(reader: R, name: impl Into<String>) -> Self {
        Self {
            reader,
            name: name.into(),
            payload: Vec::new(),
            pending: None,
            size: None,
            first: None,
            first_index: 0,
        }
    }

    /// Reads the first frame ahead (to learn the size, the scale and the collimator before
    /// starting the loop); it is delivered again by the first `next_frame`.
    pub fn peek_frame(&mut self) -> Result<Option<(Header, Frame<f32>)>, String> {
        let Some(h) = self.peek_header()? else {
            return Ok(None);
        };
        let mut f = Frame::new(0, 0);
        match self.next_frame(&mut f) {
            Some(Ok(_)) => {
                self.first = Some(f.clone());
                Ok(Some((h, f)))
            }
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    /// Reads the first header (to learn the frame size and scale before starting the loop).
    pub fn peek_header(&mut self) -> Result<Option<Header>, String> {
        if self.pending.is_none() {
            self.pending =
                read_header(&mut self.reader).map_err(|e| format!("{}: {e}", self.name))?;
        }
        Ok(self.pending)
    }
}

impl<R: Read + Send> FrameSource for StreamSource<R> {
    fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>> {
        if let Some(f) = self.first.take() {
            *buf = f;
            return Some(Ok((self.first_index, Instant::now())));
        }
        let header = match self.pending.take() {
            Some(h) => h,
            None => match read_header(&mut self.reader) {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => return Some(Err(format!("{}: {e}", self.name))),
            },
        };
        let arrival = Instant::now();
        let size = (header.width, header.height);
        if let Some(s) = self.size
            && s != size
        {
            return Some(Err(format!(
                "{}: frame {} is {}x{} but the stream started at {}x{}",
                self.name, header.index, size.0, size.1, s.0, s.1
            )));
        }
        self.size = Some(size);
        let (w, h) = (header.width as usize, header.height as usize);
        let n = w * h;
        self.payload.resize(n * header.sample.size(), 0);
        if let Err(e) = self.reader.read_exact(&mut self.payload) {
            return Some(Err(format!(
                "{}: frame {} truncated: {e}",
                self.name, header.index
            )));
        }
        buf.reshape(w, h);
        let d = buf.data_mut();
        let p = &self.payload;
        match header.sample {
            SampleType::U8 => d.iter_mut().zip(p).for_each(|(o, &v)| *o = f32::from(v)),
            SampleType::U16 => d
                .iter_mut()
                .zip(p.chunks_exact(2))
                .for_each(|(o, c)| *o = f32::from(u16::from_le_bytes([c[0], c[1]]))),
            SampleType::I16 => d
                .iter_mut()
                .zip(p.chunks_exact(2))
                .for_each(|(o, c)| *o = f32::from(i16::from_le_bytes([c[0], c[1]]))),
            SampleType::F32 => d
                .iter_mut()
                .zip(p.chunks_exact(4))
                .for_each(|(o, c)| *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        }
        self.first_index = header.index as usize;
        Some(Ok((header.index as usize, arrival)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frame_bytes(index: u64, w: u32, h: u32) -> Vec<u8> {
        let hd = Header {
            sample: SampleType::U16,
            width: w,
            height: h,
            index,
            mm_per_px: Some(0.3),
        };
        let px: Vec<u8> = (0..w * h)
            .flat_map(|i| ((1000 + i % 50) as u16).to_le_bytes())
            .collect();
        let mut v = Vec::new();
        write_frame(&mut v, &hd, &px).unwrap();
        v
    }

    #[test]
    fn round_trip_and_end_of_stream() {
        let mut data = frame_bytes(0, 8, 4);
        data.extend(frame_bytes(1, 8, 4));
        let mut s = StreamSource::new(Cursor::new(data), "test");
        assert_eq!(s.peek_header().unwrap().unwrap().mm_per_px, Some(0.3));
        let mut f = Frame::new(0, 0);
        assert_eq!(s.next_frame(&mut f).unwrap().unwrap().0, 0);
        assert_eq!(f.size(), (8, 4));
        assert_eq!(f.get(1, 0), 1001.0);
        assert_eq!(s.next_frame(&mut f).unwrap().unwrap().0, 1);
        assert!(s.next_frame(&mut f).is_none());
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic_or_a_huge_allocation() {
        let mut bad = frame_bytes(0, 8, 4);
        bad[0] = b'X';
        let mut f = Frame::new(0, 0);
        let e = StreamSource::new(Cursor::new(bad), "peer")
            .next_frame(&mut f)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("peer") && e.contains("magic"), "{e}");
        let mut huge = frame_bytes(0, 8, 4);
        huge[8..12].copy_from_slice(&100_000u32.to_le_bytes());
        let e = StreamSource::new(Cursor::new(huge), "peer")
            .next_frame(&mut f)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("outside"), "{e}");
        let truncated = frame_bytes(0, 8, 4)[..40].to_vec();
        let e = StreamSource::new(Cursor::new(truncated), "peer")
            .next_frame(&mut f)
            .unwrap()
            .unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let mut resized = frame_bytes(0, 8, 4);
        resized.extend(frame_bytes(1, 4, 4));
        let mut s = StreamSource::new(Cursor::new(resized), "peer");
        assert!(s.next_frame(&mut f).unwrap().is_ok());
        assert!(
            s.next_frame(&mut f)
                .unwrap()
                .unwrap_err()
                .contains("started at")
        );
    }
}
