//! DICOM RLE Lossless (PS3.5 Annex G) decoding.
//!
//! Written here because dicom-pixeldata 0.10's RLE adapter panics (index out of bounds) on
//! a frame split over several fragments (`D_CLUNIE_CT1_RLE_FRAGS`), and a panic in a decoder
//! is not acceptable for the live loop. The format is small: a 64-byte header of segment
//! offsets, then one PackBits segment per byte plane, most significant byte first.

use crate::pixels::PixelFormat;

/// Decodes one frame (its fragments joined) into raw sample values in pixel order,
/// colour interleaved.
pub fn decode(data: &[u8], fmt: &PixelFormat) -> Result<Vec<u32>, String> {
    if data.len() < 64 {
        return Err(format!(
            "RLE frame of {} bytes is shorter than its 64-byte header",
            data.len()
        ));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]) as usize
    };
    let segments = word(0);
    let bytes_per_sample = usize::from(fmt.bits_allocated.div_ceil(8));
    let expect = bytes_per_sample * fmt.samples_per_pixel;
    if segments != expect {
        return Err(format!(
            "RLE header has {segments} segments, expected {expect}"
        ));
    }
    let pixels = fmt.rows * fmt.columns;
    let mut out = vec![0u32; pixels * fmt.samples_per_pixel];
    let mut plane = vec![0u8; pixels];
    for seg in 0..segments {
        let start = word(seg + 1);
        let end = if seg + 1 < segments {
            word(seg + 2)
        } else {
            data.len()
        };
        if start < 64 || start > end || end > data.len() {
            return Err(format!("RLE segment {seg} has bad offsets {start}..{end}"));
        }
        packbits(&data[start..end], &mut plane).map_err(|e| format!("RLE segment {seg}: {e}"))?;
        let sample = seg / bytes_per_sample;
        let shift = 8 * (bytes_per_sample - 1 - seg % bytes_per_sample);
        for (p, &b) in plane.iter().enumerate() {
            out[p * fmt.samples_per_pixel + sample] |= u32::from(b) << shift;
        }
    }
    Ok(out)
}

/// Decodes one PackBits segment, filling exactly `out.len()` bytes.
fn packbits(src: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut i = 0;
    let mut o = 0;
    while o < out.len() {
        let Some(&n) = src.get(i) else {
            return Err(format!("segment ends after {o} of {} bytes", out.len()));
        };
        i += 1;
        let n = n as i8;
        if n >= 0 {
            let count = n as usize + 1;
            let lit = src
                .get(i..i + count)
                .ok_or("literal run past the end of the segment")?;
            let take = count.min(out.len() - o);
            out[o..o + take].copy_from_slice(&lit[..take]);
            o += take;
            i += count;
        } else if n != -128 {
            let count = (1 - n as isize) as usize;
            let &v = src
                .get(i)
                .ok_or("replicate run past the end of the segment")?;
            let take = count.min(out.len() - o);
            out[o..o + take].fill(v);
            o += take;
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literals_and_runs() {
        let mut out = [0u8; 7];
        packbits(&[1, 10, 20, (-2i8) as u8, 7, 0x80, 1, 9, 9], &mut out).unwrap();
        assert_eq!(out, [10, 20, 7, 7, 7, 9, 9]);
        assert!(packbits(&[5, 1], &mut [0u8; 6]).is_err());
    }

    #[test]
    fn sixteen_bit_planes_combine_msb_first() {
        let fmt = PixelFormat {
            rows: 1,
            columns: 2,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 16,
            high_bit: 15,
            signed: false,
            photometric: "MONOCHROME2".into(),
            planar: false,
        };
        let mut data = vec![0u8; 64];
        data[0] = 2;
        data[4] = 64;
        data[8] = 67;
        data.extend([1, 0x12, 0x34]); // high bytes
        data.extend([1, 0x56, 0x78]); // low bytes
        assert_eq!(decode(&data, &fmt).unwrap(), vec![0x1256, 0x3478]);
    }
}
