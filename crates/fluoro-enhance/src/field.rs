//! The field's extent row by row: from each row's first to its last pixel inside the
//! shutter mask. Filters use it to skip the pixels outside (a round field leaves about a
//! quarter of a square frame outside), passing those through unchanged.

use fluoro_core::Frame;

/// Each row's columns `a..b` from its first to its last field pixel (`0..0` for a row
/// with none), or every row whole when there is no mask.
///
/// The spans are kept while the mask is unchanged ([`Frame::stamp`]): a study's mask is
/// the same frame after frame, and scanning it again in each filter that skips the
/// outside cost about 1% of a 1024 frame's CPU time.
#[derive(Clone, Debug, Default)]
pub struct FieldSpans {
    spans: Vec<(usize, usize)>,
    /// Per row: the mask has outside pixels between the row's first and last field pixel.
    gaps: Vec<bool>,
    /// What the spans were made from: the mask's stamp (0: no mask) and the size.
    made_from: Option<(u64, usize, usize)>,
}

impl FieldSpans {
    /// The spans of `mask`, or of a `w` x `h` frame without one (every row whole), with
    /// each row's gaps flag. The mask is scanned 32 bytes at a time from each end of a row,
    /// then each span once for gaps; nothing is scanned when the spans were last made from
    /// this very mask, unchanged.
    pub fn update(&mut self, mask: Option<&Frame<u8>>, w: usize, h: usize) {
        let source = (mask.map_or(0, Frame::stamp), w, h);
        if self.made_from == Some(source) {
            return;
        }
        self.made_from = Some(source);
        self.spans.clear();
        self.gaps.clear();
        let Some(m) = mask else {
            self.spans.resize(h, (0, w));
            self.gaps.resize(h, false);
            return;
        };
        for y in 0..m.height() {
            let row = m.row(y);
            let (a, b) = row_span(row);
            self.spans.push((a, b));
            self.gaps.push(has_zero(&row[a..b]));
        }
    }

    /// Whether row `y` has pixels outside the field between its first and last field pixel
    /// (a field that is not convex there); false past the last row.
    pub fn gaps(&self, y: usize) -> bool {
        self.gaps.get(y).copied().unwrap_or(false)
    }

    /// Row `y`'s span (`0..0` past the last row).
    pub fn row(&self, y: usize) -> (usize, usize) {
        self.spans.get(y).copied().unwrap_or((0, 0))
    }

    /// The smallest span holding the spans of rows `ys` (rows past either end ignored),
    /// or `None` when none of them has a field pixel.
    pub fn union(&self, ys: std::ops::RangeInclusive<isize>) -> Option<(usize, usize)> {
        let lo = (*ys.start()).max(0) as usize;
        let hi = (*ys.end()).min(self.spans.len() as isize - 1);
        if hi < lo as isize {
            return None;
        }
        self.spans[lo..=hi as usize]
            .iter()
            .filter(|(a, b)| a < b)
            .fold(None, |u, &(a, b)| match u {
                None => Some((a, b)),
                Some((ua, ub)) => Some((ua.min(a), ub.max(b))),
            })
    }
}

/// Bytes per step of [`row_span`]'s scan.
const CHUNK: usize = 32;

/// Whether a chunk has a non-zero byte: its four 8-byte words or'd, which compiles to a
/// few vector instructions (a byte-by-byte search does not vectorise, and 8-byte words one
/// at a time took three times as long: 100 µs for a 1024 round field).
fn any_set(chunk: &[u8; CHUNK]) -> bool {
    let (words, _) = chunk.as_chunks::<8>();
    words
        .iter()
        .fold(0u64, |acc, w| acc | u64::from_ne_bytes(*w))
        != 0
}

/// From the row's first to its last non-zero byte, found [`CHUNK`] bytes at a time from
/// either end.
fn row_span(row: &[u8]) -> (usize, usize) {
    let (head, tail) = row.as_chunks::<CHUNK>();
    let body = head.len() * CHUNK;
    let a = match head.iter().position(any_set) {
        Some(i) => i * CHUNK + row[i * CHUNK..].iter().position(|&v| v != 0).unwrap_or(0),
        None => match tail.iter().position(|&v| v != 0) {
            Some(k) => body + k,
            None => return (0, 0),
        },
    };
    let b = match tail.iter().rposition(|&v| v != 0) {
        Some(k) => body + k + 1,
        None => {
            // a chunk with a field pixel exists: the one holding `a` at least
            let j = head.iter().rposition(any_set).unwrap_or(a / CHUNK);
            j * CHUNK + head[j].iter().rposition(|&v| v != 0).map_or(0, |k| k + 1)
        }
    };
    (a, b.max(a + 1))
}

/// Whether `mask` has a 0 (a min reduction, which vectorises).
fn has_zero(mask: &[u8]) -> bool {
    mask.iter().fold(u8::MAX, |x, &v| x.min(v)) == 0
}

/// Pixels of row `a..b` (`out`) outside the field (`mask`, the same columns) set to the
/// source's (`src`): for a field that is not convex, whose rows have outside pixels
/// between their first and last field pixel.
fn keep_outside(mask: &[u8], src: &[f32], out: &mut [f32]) {
    for ((o, &m), &s) in out.iter_mut().zip(mask).zip(src) {
        if m == 0 {
            *o = s;
        }
    }
}

/// Row `out` (filtered in `a..b` only) with every pixel outside the field set to the
/// source's: those outside the row's span `(a, b)` and, when the row has `gaps`
/// ([`FieldSpans::gaps`]), those between that the mask leaves out. The one outside rule of
/// the filters that skip the outside of the field.
pub fn keep_outside_row(
    mask: &[u8],
    src: &[f32],
    (a, b): (usize, usize),
    gaps: bool,
    out: &mut [f32],
) {
    let b = b.max(a);
    out[..a].copy_from_slice(&src[..a]);
    out[b..].copy_from_slice(&src[b..]);
    if gaps {
        keep_outside(&mask[a..b], &src[a..b], &mut out[a..b]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_each_rows_first_to_last_field_pixel() {
        // rows of 21 bytes: two 8-byte words and a 5-byte tail
        let rows: [&[usize]; 6] = [&[], &[0], &[20], &[3, 17], &[9, 10, 11], &[7, 8, 16]];
        let mask = Frame::from_fn(21, rows.len(), |x, y| u8::from(rows[y].contains(&x)));
        let mut s = FieldSpans::default();
        s.update(Some(&mask), 21, 6);
        let want = [(0, 0), (0, 1), (20, 21), (3, 18), (9, 12), (7, 17)];
        for (y, w) in want.iter().enumerate() {
            assert_eq!(s.row(y), *w, "row {y}");
        }
        assert_eq!(s.union(-3..=1), Some((0, 1)));
        assert_eq!(s.union(0..=0), None);
        assert_eq!(s.union(3..=9), Some((3, 18)));
        assert_eq!(s.union(7..=9), None);
        s.update(None, 21, 2);
        assert_eq!((s.row(0), s.row(1), s.row(2)), ((0, 21), (0, 21), (0, 0)));
    }

    /// Spans are kept for the same unchanged mask and made again when it changes in place
    /// or another mask comes; rows with outside pixels inside their span have gaps.
    #[test]
    fn spans_follow_the_mask_and_flag_gaps() {
        let mut mask = Frame::from_fn(40, 3, |x, y| u8::from((5..30).contains(&x) && y != 2));
        let mut s = FieldSpans::default();
        s.update(Some(&mask), 40, 3);
        assert_eq!((s.row(0), s.gaps(0)), ((5, 30), false));
        assert_eq!((s.row(2), s.gaps(2)), ((0, 0), false));
        mask.row_mut(0)[12] = 0;
        mask.row_mut(2)[39] = 1;
        s.update(Some(&mask), 40, 3);
        assert_eq!((s.row(0), s.gaps(0)), ((5, 30), true));
        assert_eq!((s.row(1), s.gaps(1)), ((5, 30), false));
        assert_eq!(s.row(2), (39, 40));
        let other = Frame::filled(40, 3, 1u8);
        s.update(Some(&other), 40, 3);
        assert_eq!((s.row(0), s.gaps(0)), ((0, 40), false));
        s.update(Some(&mask), 40, 3);
        assert_eq!((s.row(0), s.gaps(0)), ((5, 30), true));
        let mut out = vec![-1.0f32; 40];
        let src: Vec<f32> = (0..40).map(|x| x as f32).collect();
        keep_outside_row(mask.row(0), &src, s.row(0), s.gaps(0), &mut out);
        let kept: Vec<usize> = (0..40).filter(|&x| out[x] == src[x]).collect();
        let want: Vec<usize> = (0..5).chain([12]).chain(30..40).collect();
        assert_eq!(kept, want);
    }

    /// Every pair of first and last pixel on rows of widths around the scan's chunks
    /// (inside one chunk, across chunks, in the tail), against a plain search.
    #[test]
    fn spans_match_a_plain_search_on_every_layout() {
        for w in [1, 31, 32, 33, 64, 75, 96, 100] {
            for a in 0..w {
                for b in a..w {
                    // pixels a and b set, and one between them when there is room
                    let row: Vec<u8> = (0..w)
                        .map(|x| u8::from(x == a || x == b || (b > a + 1 && x == (a + b) / 2)))
                        .collect();
                    assert_eq!(row_span(&row), (a, b + 1), "width {w}, pixels {a}..={b}");
                }
            }
            assert_eq!(row_span(&vec![0u8; w]), (0, 0), "width {w}, empty");
            assert_eq!(row_span(&vec![255u8; w]), (0, w), "width {w}, full");
        }
    }
}
