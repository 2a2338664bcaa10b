//! The contract's output folder: `frames.jsonl`, `labels/`, `annotated/`, `summary.json`.
//! PNG encoding runs on a background thread behind a bounded queue, so the frame loop is not
//! held up by compression and memory stays bounded.

use fluoro_core::Frame;
use fluoro_core::record::FrameRecord;
use image::{GrayImage, RgbImage};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct WriteError {
    /// The file or folder.
    pub path: PathBuf,
    /// What failed.
    pub detail: String,
}

fn werr(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

struct Job {
    index: usize,
    labels: Option<GrayImage>,
    annotated: Option<RgbImage>,
}

/// Writes one study's outputs.
pub struct OutputWriter {
    dir: PathBuf,
    jsonl: std::io::BufWriter<std::fs::File>,
    tx: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<Result<(), WriteError>>>,
}

impl OutputWriter {
    /// Creates `dir`, `dir/labels` and `dir/annotated`.
    pub fn create(dir: &Path) -> Result<Self, WriteError> {
        for d in [dir.to_path_buf(), dir.join("labels"), dir.join("annotated")] {
            std::fs::create_dir_all(&d).map_err(|e| werr(&d, e))?;
        }
        let p = dir.join("frames.jsonl");
        let jsonl = std::io::BufWriter::new(std::fs::File::create(&p).map_err(|e| werr(&p, e))?);
        let (tx, rx) = sync_channel::<Job>(4);
        let d = dir.to_path_buf();
        let worker = std::thread::Builder::new()
            .name("png-writer".into())
            .spawn(move || {
                for job in rx {
                    if let Some(l) = job.labels {
                        let p = d.join("labels").join(format!("{:06}.png", job.index));
                        l.save(&p).map_err(|e| werr(&p, e))?;
                    }
                    if let Some(a) = job.annotated {
                        let p = d.join("annotated").join(format!("{:06}.png", job.index));
                        a.save(&p).map_err(|e| werr(&p, e))?;
                    }
                }
                Ok(())
            })
            .map_err(|e| werr(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            jsonl,
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Appends one frame: its record, label map and annotated image.
    pub fn write_frame(
        &mut self,
        record: &FrameRecord,
        labels: &Frame<u8>,
        annotated: Option<&RgbImage>,
    ) -> Result<(), WriteError> {
        let p = self.dir.join("frames.jsonl");
        serde_json::to_writer(&mut self.jsonl, record).map_err(|e| werr(&p, e))?;
        self.jsonl.write_all(b"\n").map_err(|e| werr(&p, e))?;
        let l = GrayImage::from_raw(
            labels.width() as u32,
            labels.height() as u32,
            labels.data().to_vec(),
        );
        let job = Job {
            index: record.frame,
            labels: l,
            annotated: annotated.cloned(),
        };
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            // the worker stopped: collect its error
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| werr(&self.dir, "PNG writer stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> Result<(), WriteError> {
        self.tx = None;
        match self.worker.take() {
            Some(h) => h
                .join()
                .map_err(|_| werr(&self.dir, "PNG writer panicked"))?,
            None => Ok(()),
        }
    }

    /// Flushes everything and writes `summary.json`.
    pub fn finish(mut self, summary: &serde_json::Value) -> Result<(), WriteError> {
        let p = self.dir.join("frames.jsonl");
        self.jsonl.flush().map_err(|e| werr(&p, e))?;
        self.join()?;
        let s = self.dir.join("summary.json");
        std::fs::write(
            &s,
            serde_json::to_vec_pretty(summary).map_err(|e| werr(&s, e))?,
        )
        .map_err(|e| werr(&s, e))
    }
}
