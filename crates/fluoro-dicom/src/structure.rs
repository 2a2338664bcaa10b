//! A bounded structural walk over a DICOM file, done before the full parse.
//!
//! dicom-rs trusts declared lengths: a 4 GiB length in a 1 KiB file makes it reserve and
//! zero 4 GiB before the read fails. This walk checks every declared length against the bytes
//! that really remain in its container, bounds nesting depth, and finds the transfer syntax,
//! so that malformed files are rejected with a precise message and the parser never sees a
//! lie. It reads headers only and seeks over values, so it costs a few milliseconds even for
//! a large study.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

/// Deepest sequence nesting accepted (real files rarely exceed 5).
const MAX_DEPTH: usize = 32;
/// Undefined length marker.
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// What the walk learned about the file.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Offset of the file meta group ("DICM" magic), when present.
    pub meta_offset: Option<u64>,
    /// Transfer syntax UID from the meta group, or inferred for meta-less files.
    pub transfer_syntax: String,
    /// True when the transfer syntax had to be inferred (no meta group).
    pub transfer_syntax_inferred: bool,
    /// Offset where the main data set starts.
    pub dataset_offset: u64,
}

/// A structural defect, with the byte offset where it was found.
#[derive(Debug)]
pub struct StructureError(pub String);

type Res<T> = Result<T, StructureError>;

fn err<T>(msg: String) -> Res<T> {
    Err(StructureError(msg))
}

struct Walker<R> {
    src: BufReader<R>,
    pos: u64,
    len: u64,
    explicit: bool,
    big_endian: bool,
}

impl<R: Read + Seek> Walker<R> {
    fn read<const N: usize>(&mut self) -> Res<[u8; N]> {
        let mut b = [0u8; N];
        self.src
            .read_exact(&mut b)
            .map_err(|e| StructureError(format!("truncated at byte {}: {e}", self.pos)))?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u16(&mut self) -> Res<u16> {
        let b = self.read::<2>()?;
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self) -> Res<u32> {
        let b = self.read::<4>()?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn skip(&mut self, n: u64) -> Res<()> {
        if n > self.len - self.pos {
            return err(format!(
                "value of {n} bytes at byte {} runs past the end of the file",
                self.pos
            ));
        }
        let n_i64 = i64::try_from(n).map_err(|_| StructureError("length overflow".into()))?;
        self.src
            .seek_relative(n_i64)
            .map_err(|e| StructureError(format!("seek failed: {e}")))?;
        self.pos += n;
        Ok(())
    }

    /// Reads an element header: (group, element, vr, length).
    fn header(&mut self) -> Res<(u16, u16, [u8; 2], u32)> {
        let group = self.u16()?;
        let elem = self.u16()?;
        if group == 0xFFFE {
            // item / delimiters: never carry a VR
            let len = self.u32()?;
            return Ok((group, elem, *b"  ", len));
        }
        if !self.explicit {
            let len = self.u32()?;
            return Ok((group, elem, *b"  ", len));
        }
        let vr = self.read::<2>()?;
        if !vr.iter().all(|c| c.is_ascii_uppercase()) {
            return err(format!(
                "invalid VR bytes {:02X} {:02X} in element ({group:04X},{elem:04X}) at byte {}",
                vr[0],
                vr[1],
                self.pos - 2
            ));
        }
        let long = matches!(
            &vr,
            b"OB"
                | b"OW"
                | b"OF"
                | b"SQ"
                | b"UT"
                | b"UN"
                | b"UC"
                | b"UR"
                | b"OD"
                | b"OL"
                | b"OV"
                | b"SV"
                | b"UV"
        );
        let len = if long {
            self.read::<2>()?;
            self.u32()?
        } else {
            u32::from(self.u16()?)
        };
        Ok((group, elem, vr, len))
    }

    /// Walks elements until `end` (defined length) or until the item delimiter (`end == None`).
    fn dataset(&mut self, end: Option<u64>, depth: usize) -> Res<()> {
        if depth > MAX_DEPTH {
            return err(format!(
                "sequences nested deeper than {MAX_DEPTH} at byte {}",
                self.pos
            ));
        }
        loop {
            match end {
                Some(e) if self.pos >= e => return Ok(()),
                None if self.pos >= self.len => {
                    return err(
                        "undefined-length item has no item delimiter before end of file".into(),
                    );
                }
                _ => {}
            }
            // trailing padding shorter than a header at the top level is tolerated
            if depth == 0 && self.len - self.pos < 8 {
                return self.skip(self.len - self.pos);
            }
            let at = self.pos;
            let (group, elem, vr, len) = self.header()?;
            if group == 0xFFFE {
                if elem == 0xE00D && end.is_none() {
                    return Ok(());
                }
                if depth == 0 && (elem == 0xE00D || elem == 0xE0DD) {
                    // stray delimiter at top level: tolerated by most readers
                    continue;
                }
                if elem == 0xE000 && len != UNDEFINED {
                    // a stray defined-length item (seen in real files): dicom-rs skips it too
                    if self.pos + u64::from(len) > end.unwrap_or(self.len) {
                        return err(format!(
                            "stray item at byte {at} declares {len} bytes past its container"
                        ));
                    }
                    self.skip(u64::from(len))?;
                    continue;
                }
                return err(format!(
                    "unexpected item tag (FFFE,{elem:04X}) at byte {at}"
                ));
            }
            let container_end = end.unwrap_or(self.len);
            let is_pixel_data = group == 0x7FE0 && elem == 0x0010;
            if len == UNDEFINED {
                if is_pixel_data {
                    self.fragments(depth + 1)?;
                } else if !self.explicit || &vr == b"SQ" || &vr == b"UN" {
                    self.items(None, depth + 1)?;
                } else {
                    return err(format!(
                        "element ({group:04X},{elem:04X}) with VR {} has undefined length at byte {at}",
                        String::from_utf8_lossy(&vr)
                    ));
                }
                continue;
            }
            let len = u64::from(len);
            if self.pos + len > container_end {
                return err(format!(
                    "element ({group:04X},{elem:04X}) at byte {at} declares {len} bytes but only {} remain in its container",
                    container_end.saturating_sub(self.pos)
                ));
            }
            let looks_like_sequence =
                &vr == b"SQ" || (!self.explicit && len >= 8 && self.peek_item_tag()?);
            if looks_like_sequence {
                let e = self.pos + len;
                self.items(Some(e), depth + 1)?;
                if self.pos != e {
                    return err(format!(
                        "sequence ({group:04X},{elem:04X}) at byte {at} overruns its length"
                    ));
                }
            } else {
                self.skip(len)?;
            }
        }
    }

    fn peek_item_tag(&mut self) -> Res<bool> {
        let buf = self
            .src
            .fill_buf()
            .map_err(|e| StructureError(format!("read failed: {e}")))?;
        if buf.len() < 4 {
            return Ok(false);
        }
        let item = if self.big_endian {
            [0xFF, 0xFE, 0xE0, 0x00]
        } else {
            [0xFE, 0xFF, 0x00, 0xE0]
        };
        Ok(buf[..4] == item)
    }

    /// Walks sequence items until `end` or the sequence delimiter.
    fn items(&mut self, end: Option<u64>, depth: usize) -> Res<()> {
        loop {
            if let Some(e) = end
                && self.pos >= e
            {
                return Ok(());
            }
            let at = self.pos;
            let group = self.u16()?;
            let elem = self.u16()?;
            let len = self.u32()?;
            match (group, elem) {
                (0xFFFE, 0xE0DD) if end.is_none() => return Ok(()),
                (0xFFFE, 0xE000) => {
                    if len == UNDEFINED {
                        self.dataset(None, depth)?;
                    } else {
                        let e = self.pos + u64::from(len);
                        if e > end.unwrap_or(self.len) {
                            return err(format!(
                                "item at byte {at} declares {len} bytes, past its sequence"
                            ));
                        }
                        self.dataset(Some(e), depth)?;
                        if self.pos != e {
                            return err(format!("item at byte {at} overruns its length"));
                        }
                    }
                }
                _ => {
                    return err(format!(
                        "expected an item tag at byte {at}, found ({group:04X},{elem:04X})"
                    ));
                }
            }
        }
    }

    /// Walks encapsulated pixel data fragments until the sequence delimiter.
    fn fragments(&mut self, _depth: usize) -> Res<()> {
        loop {
            let at = self.pos;
            let group = self.u16()?;
            let elem = self.u16()?;
            let len = self.u32()?;
            match (group, elem) {
                (0xFFFE, 0xE0DD) => return Ok(()),
                (0xFFFE, 0xE000) if len != UNDEFINED => self.skip(u64::from(len))?,
                _ => {
                    return err(format!(
                        "encapsulated pixel data: expected a fragment item at byte {at}, found ({group:04X},{elem:04X}) length {len:#X}"
                    ));
                }
            }
        }
    }
}

/// Walks the file; `Err` names the first defect.
pub fn check<R: Read + Seek>(mut file: R) -> Res<Layout> {
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| StructureError(format!("seek failed: {e}")))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| StructureError(format!("seek failed: {e}")))?;
    let mut w = Walker {
        src: BufReader::with_capacity(64 * 1024, file),
        pos: 0,
        len,
        explicit: true,
        big_endian: false,
    };
    if len < 8 {
        return err(format!("only {len} bytes: too short to be DICOM"));
    }
    // Preamble + magic, or magic alone, or neither (raw data set).
    let mut head = [0u8; 132];
    let n = (len as usize).min(132);
    w.src
        .read_exact(&mut head[..n])
        .map_err(|e| StructureError(format!("read failed: {e}")))?;
    let meta_offset = if n == 132 && &head[128..132] == b"DICM" {
        Some(128)
    } else if &head[0..4] == b"DICM" {
        Some(0)
    } else {
        None
    };
    w.src
        .seek(SeekFrom::Start(0))
        .map_err(|e| StructureError(format!("seek failed: {e}")))?;
    w.pos = 0;
    let (transfer_syntax, inferred, dataset_offset) = match meta_offset {
        Some(off) => {
            w.skip(off + 4)?;
            let (ts, end) = meta_group(&mut w)?;
            (ts, false, end)
        }
        None => {
            // Raw data set: explicit if bytes 4..6 look like a VR.
            let explicit = head[4].is_ascii_uppercase()
                && head[5].is_ascii_uppercase()
                && head[0..2] != [0xFE, 0xFF];
            let group = u16::from_le_bytes([head[0], head[1]]);
            if group > 0x0008 && group != 0x0018 && group != 0x0020 && group != 0x0028 {
                return err(format!(
                    "no DICM magic and the first tag group {group:04X} is not a plausible data set start"
                ));
            }
            let ts = if explicit {
                "1.2.840.10008.1.2.1"
            } else {
                "1.2.840.10008.1.2"
            };
            (ts.to_string(), true, 0)
        }
    };
    match transfer_syntax.as_str() {
        "1.2.840.10008.1.2.1.99" => {
            // deflated: the body is a zlib stream and cannot be walked without inflating it
            return Ok(Layout {
                meta_offset,
                transfer_syntax,
                transfer_syntax_inferred: inferred,
                dataset_offset,
            });
        }
        "1.2.840.10008.1.2" => w.explicit = false,
        "1.2.840.10008.1.2.2" => w.big_endian = true,
        _ => {}
    }
    w.dataset(Some(len), 0)?;
    Ok(Layout {
        meta_offset,
        transfer_syntax,
        transfer_syntax_inferred: inferred,
        dataset_offset,
    })
}

/// Reads the file meta group (always explicit VR little endian); returns the transfer
/// syntax and the offset where the data set begins.
fn meta_group<R: Read + Seek>(w: &mut Walker<R>) -> Res<(String, u64)> {
    let mut ts = None;
    loop {
        if w.pos + 8 > w.len {
            break;
        }
        let buf = w
            .src
            .fill_buf()
            .map_err(|e| StructureError(format!("read failed: {e}")))?;
        if buf.len() < 2 || u16::from_le_bytes([buf[0], buf[1]]) != 0x0002 {
            break;
        }
        let at = w.pos;
        let (_, elem, vr, len) = w.header()?;
        if len == UNDEFINED || u64::from(len) > w.len - w.pos {
            return err(format!(
                "file meta element (0002,{elem:04X}) at byte {at} has an impossible length {len}"
            ));
        }
        if elem == 0x0010 {
            if &vr != b"UI" || len > 64 {
                return err(format!(
                    "Transfer Syntax UID at byte {at} is not a UI of at most 64 bytes"
                ));
            }
            let mut v = vec![0u8; len as usize];
            w.src
                .read_exact(&mut v)
                .map_err(|e| StructureError(format!("truncated meta: {e}")))?;
            w.pos += u64::from(len);
            let s = String::from_utf8_lossy(&v)
                .trim_end_matches(['\0', ' '])
                .to_string();
            ts = Some(s);
        } else {
            w.skip(u64::from(len))?;
        }
    }
    let ts = ts.ok_or_else(|| {
        StructureError("file meta group has no Transfer Syntax UID (0002,0010)".into())
    })?;
    Ok((ts, w.pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn explicit_le(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(tag.0.to_le_bytes());
        v.extend(tag.1.to_le_bytes());
        v.extend(vr);
        v.extend((value.len() as u16).to_le_bytes());
        v.extend(value);
        v
    }

    fn file_with(body: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 128];
        f.extend(b"DICM");
        f.extend(explicit_le((2, 0x10), b"UI", b"1.2.840.10008.1.2.1\0"));
        f.extend(body);
        f
    }

    #[test]
    fn accepts_a_small_valid_file() {
        let f = file_with(&explicit_le((0x0028, 0x0010), b"US", &2u16.to_le_bytes()));
        let l = check(Cursor::new(f)).unwrap();
        assert_eq!(l.transfer_syntax, "1.2.840.10008.1.2.1");
        assert_eq!(l.meta_offset, Some(128));
    }

    #[test]
    fn rejects_a_lying_length() {
        let mut body = Vec::new();
        body.extend(0x7FE0u16.to_le_bytes());
        body.extend(0x0010u16.to_le_bytes());
        body.extend(b"OW\0\0");
        body.extend(0xFFFF_FFF0u32.to_le_bytes());
        body.extend([0u8; 16]);
        let e = check(Cursor::new(file_with(&body))).unwrap_err();
        assert!(e.0.contains("declares"), "{}", e.0);
    }

    #[test]
    fn rejects_deep_nesting() {
        let mut body = Vec::new();
        for _ in 0..40 {
            body.extend(0x0008u16.to_le_bytes());
            body.extend(0x1115u16.to_le_bytes());
            body.extend(b"SQ\0\0");
            body.extend(UNDEFINED.to_le_bytes());
            body.extend(0xFFFEu16.to_le_bytes());
            body.extend(0xE000u16.to_le_bytes());
            body.extend(UNDEFINED.to_le_bytes());
        }
        let e = check(Cursor::new(file_with(&body))).unwrap_err();
        assert!(
            e.0.contains("nested") || e.0.contains("truncated"),
            "{}",
            e.0
        );
    }
}
