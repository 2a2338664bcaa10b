//! Bad input: truncated and corrupted copies of real files must give an error or a decoded
//! frame, never a panic, a hang or a huge allocation.
//!
//! The sources are small corpus files covering each decoder (native, RLE, JPEG baseline,
//! 12-bit JPEG, JPEG lossless, JPEG-LS, JPEG 2000, deflate); they are read from the shared
//! corpus and mutated in a temporary folder.

use fluoro_dicom::Study;

const SOURCES: &[&str] = &[
    "MultiframeWindowing.dcm",
    "Issue140.dcm",
    "JPEGBaseline_1s_1f_u_08_08.dcm",
    "2021-02-19-MalaterreCP246.dcm",
    "OsirixFake16BitsStoredFakeSpacing.dcm",
    "XA1_JPLY",
    "NM1_JLSN",
    "MR4_RLE",
    "1.2.840.10008.1.2.1.99.dcm",
    "CR-MONO1-10-chest",
];

mod common;
use common::corpus_dir;

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens and decodes every frame; returns a short outcome string. Panics propagate.
fn exercise(path: &std::path::Path) -> &'static str {
    match Study::open(path) {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg}"
            );
            "rejected"
        }
        Ok(s) => {
            for i in 0..s.frame_count().min(4) {
                if s.frame(i).is_err() {
                    return "frame error";
                }
            }
            "decoded"
        }
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let Some(dir) = corpus_dir() else {
        eprintln!("SKIPPED: shared/dicom-corpus not found (set FLUORO_DICOM_CORPUS)");
        return;
    };
    let tmp = std::env::temp_dir().join(format!("fluoro-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = 0;
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for name in SOURCES {
        let Ok(orig) = std::fs::read(dir.join("files").join(name)) else {
            continue;
        };
        let p = tmp.join("case.dcm");
        // truncations at 40 offsets spread over the file, plus the first 300 bytes densely
        let mut cuts: Vec<usize> = (0..40).map(|k| orig.len() * k / 40).collect();
        cuts.extend((0..300).step_by(7));
        for cut in cuts {
            std::fs::write(&p, &orig[..cut.min(orig.len())]).unwrap();
            *outcomes.entry(exercise(&p)).or_default() += 1;
            cases += 1;
        }
        // 60 corruptions: random bytes, lengths set to 0xFFFFFFFF-ish values, bit flips
        for k in 0..60 {
            let mut data = orig.clone();
            let at = (rng.next() as usize) % data.len();
            match k % 3 {
                0 => data[at] = rng.next() as u8,
                1 => {
                    for b in data.iter_mut().skip(at).take(4) {
                        *b = 0xFF;
                    }
                }
                _ => {
                    for _ in 0..16 {
                        let i = (rng.next() as usize) % data.len();
                        data[i] ^= 1 << (rng.next() % 8);
                    }
                }
            }
            std::fs::write(&p, &data).unwrap();
            *outcomes.entry(exercise(&p)).or_default() += 1;
            cases += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!("{cases} mutated files: {outcomes:?}");
    assert!(cases > 500);
    assert!(
        outcomes.get("rejected").copied().unwrap_or(0) > 100,
        "too few rejections: {outcomes:?}"
    );
}
