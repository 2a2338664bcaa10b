//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// The shared public DICOM corpus: `$FLUORO_DICOM_CORPUS`, else `../shared/dicom-corpus`
/// beside the repository; `None` when absent (tests then skip, saying so).
pub fn corpus_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("FLUORO_DICOM_CORPUS") {
        return Some(PathBuf::from(d));
    }
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/dicom-corpus");
    d.join("reference.jsonl").exists().then_some(d)
}
