//! A sequential-DCT Huffman JPEG decoder (ITU T.81 processes 1, 2 and 4) for 8- and
//! 12-bit samples.
//!
//! dicom-pixeldata 0.10 delegates JPEG to jpeg-decoder, which rejects 12-bit DCT data
//! ("Unsupported(SamplePrecision(12))"). 12-bit JPEG Extended (1.2.840.10008.1.2.4.51) is
//! common in archived XA/RF studies, and no maintained pure-Rust crate decodes it, so this
//! module does. Scope: baseline and extended sequential Huffman, any number of components
//! without subsampling (every DICOM 12-bit file is grayscale), restart intervals, 8/16-bit
//! quantisation tables. The IDCT is exact (double precision); IJG's integer IDCT differs by
//! at most one unit, well inside the tolerance for lossy data.

/// A decoded image: samples interleaved by component, row-major.
#[derive(Debug, Clone)]
pub struct JpegImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Sample precision in bits (8 or 12).
    pub precision: u8,
    /// Components per pixel.
    pub components: usize,
    /// Samples, `width * height * components`.
    pub samples: Vec<u16>,
}

const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Largest image accepted (pixels), to bound allocation from a lying SOF.
const MAX_PIXELS: usize = 1 << 28;

#[derive(Clone, Default)]
struct Huffman {
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Self, String> {
        let total: usize = counts.iter().map(|&c| c as usize).sum();
        if total != values.len() || total > 256 {
            return Err("Huffman table counts do not match its values".into());
        }
        let mut h = Huffman {
            values,
            ..Default::default()
        };
        let mut code: i32 = 0;
        let mut k: i32 = 0;
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            if n == 0 {
                h.maxcode[len] = -1;
            } else {
                h.valptr[len] = k;
                h.mincode[len] = code;
                code += n;
                k += n;
                h.maxcode[len] = code - 1;
            }
            if code > (1 << len) {
                return Err("Huffman table has more codes than fit".into());
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        Ok(h)
    }
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    count: u32,
    marker_hit: bool,
}

impl<'a> Bits<'a> {
    fn fill(&mut self) {
        while self.count <= 56 {
            let mut byte = 0u8;
            if !self.marker_hit && self.pos < self.data.len() {
                let b = self.data[self.pos];
                if b == 0xFF {
                    let next = self.data.get(self.pos + 1).copied().unwrap_or(0xD9);
                    if next == 0x00 {
                        self.pos += 2;
                        byte = 0xFF;
                    } else {
                        self.marker_hit = true;
                    }
                } else {
                    self.pos += 1;
                    byte = b;
                }
            }
            self.acc |= u64::from(byte) << (56 - self.count);
            self.count += 8;
        }
    }

    fn bit(&mut self) -> u32 {
        if self.count == 0 {
            self.fill();
        }
        let b = (self.acc >> 63) as u32;
        self.acc <<= 1;
        self.count -= 1;
        b
    }

    fn bits(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        if self.count < n {
            self.fill();
        }
        let v = (self.acc >> (64 - n)) as u32;
        self.acc <<= n;
        self.count -= n;
        v
    }

    fn decode(&mut self, h: &Huffman) -> Result<u8, String> {
        let mut code = self.bit() as i32;
        for len in 1..=16 {
            if code <= h.maxcode[len] {
                let idx = h.valptr[len] + code - h.mincode[len];
                return h
                    .values
                    .get(idx as usize)
                    .copied()
                    .ok_or_else(|| "bad Huffman code".to_string());
            }
            code = (code << 1) | self.bit() as i32;
        }
        Err("invalid Huffman code in entropy-coded data".into())
    }

    fn receive_extend(&mut self, s: u32) -> Result<i32, String> {
        if s == 0 {
            return Ok(0);
        }
        if s > 16 {
            return Err(format!("coefficient magnitude category {s} is too large"));
        }
        let v = self.bits(s) as i32;
        Ok(if v < (1 << (s - 1)) {
            v - (1 << s) + 1
        } else {
            v
        })
    }

    /// Skips to just after the next RSTn marker and resets the bit buffer.
    fn restart(&mut self) -> Result<(), String> {
        self.acc = 0;
        self.count = 0;
        self.marker_hit = false;
        while self.pos + 1 < self.data.len() {
            if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                self.pos += 2;
                return Ok(());
            }
            self.pos += 1;
        }
        Err("missing restart marker".into())
    }
}

struct Component {
    id: u8,
    quant: usize,
    dc_table: usize,
    ac_table: usize,
}

fn be16(d: &[u8], at: usize) -> Result<usize, String> {
    d.get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| "truncated JPEG".into())
}

fn idct_tables() -> [[f64; 8]; 8] {
    let mut t = [[0.0; 8]; 8];
    for (u, row) in t.iter_mut().enumerate() {
        let cu = if u == 0 {
            std::f64::consts::FRAC_1_SQRT_2
        } else {
            1.0
        };
        for (x, v) in row.iter_mut().enumerate() {
            *v = 0.5 * cu * (((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI) / 16.0).cos();
        }
    }
    t
}

/// Decodes one JPEG codestream (sequential DCT, Huffman). When `expected` gives
/// `(width, height)`, a frame header declaring another size is rejected before anything is
/// allocated.
pub fn decode(data: &[u8], expected: Option<(usize, usize)>) -> Result<JpegImage, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
        return Err("JPEG data does not start with an SOI marker".into());
    }
    let mut pos = 2;
    let mut qt = [[0u16; 64]; 4];
    let mut dc: [Option<Huffman>; 4] = Default::default();
    let mut ac: [Option<Huffman>; 4] = Default::default();
    let mut restart_interval = 0usize;
    let mut frame: Option<(usize, usize, u8, Vec<Component>)> = None;
    let mut coeffs: Vec<i32> = Vec::new(); // component-major blocks of 64 coefficients
    let mut scanned = false;
    loop {
        // find the next marker
        while pos < data.len() && data[pos] != 0xFF {
            pos += 1;
        }
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            if scanned {
                break; // tolerate a missing EOI
            }
            return Err("JPEG data ends before any scan".into());
        };
        pos += 1;
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 => break,
            _ => {}
        }
        let len = be16(data, pos)?;
        if len < 2 || pos + len > data.len() {
            return Err(format!(
                "JPEG segment FF{marker:02X} has a bad length {len}"
            ));
        }
        let seg = &data[pos + 2..pos + len];
        match marker {
            0xC0 | 0xC1 => {
                if seg.len() < 6 {
                    return Err("truncated SOF".into());
                }
                let precision = seg[0];
                if precision != 8 && precision != 12 {
                    return Err(format!("sample precision {precision} is not 8 or 12"));
                }
                let height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                let width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                let nf = usize::from(seg[5]);
                if width == 0 || height == 0 || width * height > MAX_PIXELS {
                    return Err(format!("implausible JPEG size {width}x{height}"));
                }
                if let Some((ew, eh)) = expected
                    && (ew, eh) != (width, height)
                {
                    return Err(format!(
                        "JPEG frame is {width}x{height} but the attributes say {ew}x{eh}"
                    ));
                }
                if nf == 0 || nf > 4 || seg.len() < 6 + 3 * nf {
                    return Err("bad component count in SOF".into());
                }
                let mut comps = Vec::new();
                for i in 0..nf {
                    let c = &seg[6 + 3 * i..9 + 3 * i];
                    if c[1] != 0x11 {
                        return Err(
                            "chroma subsampling is not supported by the 12-bit JPEG path".into(),
                        );
                    }
                    comps.push(Component {
                        id: c[0],
                        quant: usize::from(c[2] & 3),
                        dc_table: 0,
                        ac_table: 0,
                    });
                }
                let blocks = width.div_ceil(8) * height.div_ceil(8);
                coeffs = vec![0; blocks * 64 * nf];
                frame = Some((width, height, precision, comps));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(format!(
                    "JPEG process FF{marker:02X} (progressive, lossless or arithmetic) is not supported here"
                ));
            }
            0xC4 => {
                let mut p = 0;
                while p < seg.len() {
                    let tc = seg[p] >> 4;
                    let th = usize::from(seg[p] & 3);
                    let counts: [u8; 16] = seg
                        .get(p + 1..p + 17)
                        .ok_or("truncated DHT")?
                        .try_into()
                        .map_err(|_| "DHT")?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = seg
                        .get(p + 17..p + 17 + n)
                        .ok_or("truncated DHT values")?
                        .to_vec();
                    let h = Huffman::new(&counts, values)?;
                    if tc == 0 {
                        dc[th] = Some(h)
                    } else {
                        ac[th] = Some(h)
                    }
                    p += 17 + n;
                }
            }
            0xDB => {
                let mut p = 0;
                while p < seg.len() {
                    let pq = seg[p] >> 4;
                    let tq = usize::from(seg[p] & 3);
                    let size = if pq == 0 { 64 } else { 128 };
                    let t = seg.get(p + 1..p + 1 + size).ok_or("truncated DQT")?;
                    for k in 0..64 {
                        qt[tq][ZIGZAG[k]] = if pq == 0 {
                            u16::from(t[k])
                        } else {
                            u16::from_be_bytes([t[2 * k], t[2 * k + 1]])
                        };
                    }
                    p += 1 + size;
                }
            }
            0xDD => restart_interval = be16(seg, 0)?,
            0xDA => {
                let Some((width, height, _, comps)) = frame.as_mut() else {
                    return Err("SOS before SOF".into());
                };
                let ns = usize::from(*seg.first().ok_or("truncated SOS")?);
                if ns == 0 || seg.len() < 1 + 2 * ns + 3 {
                    return Err("bad SOS".into());
                }
                let mut scan = Vec::new();
                for i in 0..ns {
                    let id = seg[1 + 2 * i];
                    let t = seg[2 + 2 * i];
                    let ci = comps
                        .iter()
                        .position(|c| c.id == id)
                        .ok_or("SOS names an unknown component")?;
                    comps[ci].dc_table = usize::from(t >> 4) & 3;
                    comps[ci].ac_table = usize::from(t & 15) & 3;
                    scan.push(ci);
                }
                let start = pos + len;
                let consumed = decode_scan(
                    &data[start..],
                    *width,
                    *height,
                    comps,
                    &scan,
                    &dc,
                    &ac,
                    restart_interval,
                    &mut coeffs,
                )?;
                pos = start + consumed;
                scanned = true;
                continue;
            }
            _ => {}
        }
        pos += len;
    }
    let (width, height, precision, comps) = frame.ok_or("no SOF0/SOF1 frame header")?;
    if !scanned {
        return Err("no scan in JPEG data".into());
    }
    Ok(reconstruct(width, height, precision, &comps, &qt, &coeffs))
}

#[allow(clippy::too_many_arguments)]
fn decode_scan(
    data: &[u8],
    width: usize,
    height: usize,
    comps: &[Component],
    scan: &[usize],
    dc: &[Option<Huffman>; 4],
    ac: &[Option<Huffman>; 4],
    restart_interval: usize,
    coeffs: &mut [i32],
) -> Result<usize, String> {
    let bw = width.div_ceil(8);
    let bh = height.div_ceil(8);
    let per_comp = bw * bh * 64;
    let mut bits = Bits {
        data,
        pos: 0,
        acc: 0,
        count: 0,
        marker_hit: false,
    };
    let mut pred = [0i32; 4];
    let mcus = bw * bh;
    for mcu in 0..mcus {
        if restart_interval > 0 && mcu > 0 && mcu % restart_interval == 0 {
            bits.restart()?;
            pred = [0; 4];
        }
        for &ci in scan {
            let c = &comps[ci];
            let dct = dc[c.dc_table]
                .as_ref()
                .ok_or("scan uses an undefined DC table")?;
            let act = ac[c.ac_table]
                .as_ref()
                .ok_or("scan uses an undefined AC table")?;
            let block = &mut coeffs[ci * per_comp + mcu * 64..ci * per_comp + mcu * 64 + 64];
            let t = bits.decode(dct)?;
            let diff = bits.receive_extend(u32::from(t))?;
            pred[ci] = pred[ci].wrapping_add(diff);
            block[0] = pred[ci];
            let mut k = 1;
            while k < 64 {
                let rs = bits.decode(act)?;
                let r = usize::from(rs >> 4);
                let s = u32::from(rs & 15);
                if s == 0 {
                    if r == 15 {
                        k += 16;
                        continue;
                    }
                    break;
                }
                k += r;
                if k > 63 {
                    return Err("AC coefficient index past 63".into());
                }
                block[ZIGZAG[k]] = bits.receive_extend(s)?;
                k += 1;
            }
        }
    }
    // position of the first byte not consumed: where the marker was hit, or current pos
    Ok(bits.pos)
}

#[allow(clippy::needless_range_loop)] // block index arithmetic reads better with explicit indices
fn reconstruct(
    width: usize,
    height: usize,
    precision: u8,
    comps: &[Component],
    qt: &[[u16; 64]; 4],
    coeffs: &[i32],
) -> JpegImage {
    let t = idct_tables();
    let bw = width.div_ceil(8);
    let bh = height.div_ceil(8);
    let nc = comps.len();
    let per_comp = bw * bh * 64;
    let max = f64::from((1u32 << precision) - 1);
    let shift = f64::from(1u32 << (precision - 1));
    let mut samples = vec![0u16; width * height * nc];
    let mut tmp = [0f64; 64];
    for (ci, c) in comps.iter().enumerate() {
        let q = &qt[c.quant];
        for b in 0..bw * bh {
            let blk = &coeffs[ci * per_comp + b * 64..ci * per_comp + b * 64 + 64];
            // rows: tmp[v][x] = sum_u F[v][u] * t[u][x]
            for v in 0..8 {
                for x in 0..8 {
                    let mut s = 0.0;
                    for u in 0..8 {
                        s += f64::from(blk[v * 8 + u]) * f64::from(q[v * 8 + u]) * t[u][x];
                    }
                    tmp[v * 8 + x] = s;
                }
            }
            let (bx, by) = (b % bw, b / bw);
            for y in 0..8 {
                let py = by * 8 + y;
                if py >= height {
                    break;
                }
                for x in 0..8 {
                    let px = bx * 8 + x;
                    if px >= width {
                        break;
                    }
                    let mut s = 0.0;
                    for v in 0..8 {
                        s += tmp[v * 8 + x] * t[v][y];
                    }
                    let val = (s + shift).round().clamp(0.0, max);
                    samples[(py * width + px) * nc + ci] = val as u16;
                }
            }
        }
    }
    JpegImage {
        width,
        height,
        precision,
        components: nc,
        samples,
    }
}

/// The sample precision declared by the first SOF marker, if any (used to route 12-bit
/// streams here and leave the rest to dicom-pixeldata).
pub fn sof_precision(data: &[u8]) -> Option<(u8, u8)> {
    let mut pos = 2;
    while pos + 4 < data.len() {
        if data[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = data[pos + 1];
        if (0xC0..=0xCF).contains(&marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
            return data.get(pos + 4).map(|&p| (marker, p));
        }
        if marker == 0xD8 || marker == 0xFF || (0xD0..=0xD7).contains(&marker) {
            pos += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[pos + 2], data[pos + 3]]));
        pos += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(decode(&[], None).is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF], None).is_err());
        let mut bytes = vec![
            0xFF, 0xD8, 0xFF, 0xC1, 0x00, 0x0B, 12, 0, 8, 0, 8, 1, 1, 0x11, 0,
        ];
        bytes.extend([0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0, 0x12, 0x34]);
        assert!(decode(&bytes, None).is_err()); // no Huffman tables
        assert!(
            decode(&bytes, Some((16, 16)))
                .unwrap_err()
                .contains("attributes")
        );
    }

    #[test]
    fn idct_of_dc_only_block_is_flat() {
        // A DC coefficient of 8*k gives a flat block of value k + level shift.
        let comps = vec![Component {
            id: 1,
            quant: 0,
            dc_table: 0,
            ac_table: 0,
        }];
        let mut qt = [[1u16; 64]; 4];
        qt[0][0] = 8;
        let mut coeffs = vec![0i32; 64];
        coeffs[0] = 10;
        let img = reconstruct(8, 8, 12, &comps, &qt, &coeffs);
        assert!(img.samples.iter().all(|&s| s == 2048 + 10));
    }
}
