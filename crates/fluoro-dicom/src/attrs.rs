//! Attribute access helpers, including Enhanced multi-frame functional groups.

use dicom_core::Tag;
use dicom_core::value::Value;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

/// Shared Functional Groups Sequence (5200,9229).
pub const SHARED_FG: Tag = Tag(0x5200, 0x9229);
/// Per-frame Functional Groups Sequence (5200,9230).
pub const PER_FRAME_FG: Tag = Tag(0x5200, 0x9230);

/// Trimmed string value.
pub fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    let s = e.to_str().ok()?;
    let t = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!t.is_empty()).then(|| t.to_string())
}

/// All string values (multi-valued CS and the like), trimmed.
pub fn strings(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| {
            e.value()
                .to_multi_str()
                .ok()
                .map(|v| v.iter().map(|s| s.trim().to_string()).collect())
        })
        .unwrap_or_default()
}

/// First numeric value as f64 (DS, IS, US, FL ... all accepted); non-finite values are `None`.
pub fn f64_of(e: &InMemElement) -> Option<f64> {
    e.to_float64().ok().filter(|v| v.is_finite())
}

/// All numeric values as f64.
pub fn f64s_of(e: &InMemElement) -> Option<Vec<f64>> {
    let v = e.to_multi_float64().ok()?;
    (!v.is_empty() && v.iter().all(|x| x.is_finite())).then_some(v)
}

/// First numeric value as f64.
pub fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    obj.get(tag).and_then(f64_of)
}

/// All numeric values as f64.
pub fn floats(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag).and_then(f64s_of)
}

/// First value as an integer.
pub fn int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag).and_then(|e| e.to_int::<i64>().ok())
}

/// Items of a sequence attribute (empty when absent or not a sequence).
pub fn items(obj: &InMemDicomObject, tag: Tag) -> &[InMemDicomObject] {
    match obj.get(tag).map(|e| e.value()) {
        Some(Value::Sequence(seq)) => seq.items(),
        _ => &[],
    }
}

/// Finds `tag` for `frame`: at the top level, else in the frame's per-frame functional
/// groups, else in the shared functional groups (searching one macro level deep, which is
/// where Enhanced IODs put every attribute this reader uses).
pub fn lookup(obj: &InMemDicomObject, frame: usize, tag: Tag) -> Option<&InMemElement> {
    if let Some(e) = obj.get(tag) {
        return Some(e);
    }
    in_functional_groups(obj, frame, tag)
}

/// Like [`lookup`] but functional groups take precedence over the top level (for
/// attributes that Enhanced IODs define per frame).
pub fn in_functional_groups(
    obj: &InMemDicomObject,
    frame: usize,
    tag: Tag,
) -> Option<&InMemElement> {
    let per_frame = items(obj, PER_FRAME_FG).get(frame);
    let shared = items(obj, SHARED_FG).first();
    for group in per_frame.into_iter().chain(shared) {
        for macro_elem in group.iter() {
            if let Value::Sequence(seq) = macro_elem.value() {
                for item in seq.items() {
                    if let Some(e) = item.get(tag) {
                        return Some(e);
                    }
                }
            }
        }
    }
    None
}

/// True when the object has Enhanced functional groups.
pub fn is_enhanced(obj: &InMemDicomObject) -> bool {
    !items(obj, SHARED_FG).is_empty() || !items(obj, PER_FRAME_FG).is_empty()
}

/// Parses a DICOM DT (`YYYYMMDDHHMMSS.FFFFFF&ZZXX`, any trailing part optional) to
/// milliseconds on a continuous scale (days since 0000-03-01; only differences matter).
pub fn parse_datetime_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let main = s.split(['+', '-']).next()?;
    let (whole, frac) = match main.split_once('.') {
        Some((w, f)) => (w, f),
        None => (main, ""),
    };
    if whole.len() < 8 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<i64> {
        whole.get(a..b).map(|t| t.parse().unwrap_or(0)).or(Some(0))
    };
    let (y, mo, d) = (num(0, 4)?, num(4, 6)?.max(1), num(6, 8)?.max(1));
    let (h, mi, se) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    let frac_s: f64 = if frac.is_empty() {
        0.0
    } else {
        format!("0.{frac}").parse().ok()?
    };
    // days from civil (Howard Hinnant's algorithm)
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    Some(secs as f64 * 1000.0 + frac_s * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_differences() {
        let a = parse_datetime_ms("20240229235959.900").unwrap();
        let b = parse_datetime_ms("20240301000000.033+0100").unwrap();
        assert!((b - a - 133.0).abs() < 1e-6);
        assert!(parse_datetime_ms("2024").is_none());
    }
}
