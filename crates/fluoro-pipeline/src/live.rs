//! The live loop: frames arrive on one thread, are processed on another, and results are
//! handed to whoever displays them. Between stages sit single-slot mailboxes where the
//! newest frame wins: when processing falls behind, stale frames are dropped (and counted),
//! never queued, so latency stays bounded and the display never freezes on a backlog.
//! Frame buffers are recycled through a small pool, so the steady state does not allocate.

use crate::frame_loop::{FrameLoop, LoopError};
use crate::stats::TimeStats;
use fluoro_analysis::Analysis;
use fluoro_core::Frame;
use image::RgbImage;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One frame from a source.
#[derive(Debug)]
pub struct SourceFrame {
    /// Index in the source.
    pub index: usize,
    /// When it arrived (latency is measured from here).
    pub arrival: Instant,
    /// Pixel values, dense = low.
    pub data: Frame<f32>,
}

/// A producer of frames (playback, a C-arm link, a frame grabber).
pub trait FrameSource: Send {
    /// Fills `buf` with the next frame when it is due and returns its index and arrival time
    /// (when it became available, before any decoding, so latency includes the decode);
    /// `None` at the end of the stream. Implementations pace themselves.
    fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>>;
}

/// A single-slot mailbox: `put` replaces an unconsumed item (returning it, so the caller can
/// count the drop and recycle the buffer); `take` waits for an item or the end.
pub struct Mailbox<T> {
    slot: Mutex<(Option<T>, bool)>,
    ready: Condvar,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new((None, false)),
            ready: Condvar::new(),
        }
    }
}

impl<T> Mailbox<T> {
    /// Puts `item`, returning the stale item it replaced, if any.
    pub fn put(&self, item: T) -> Option<T> {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let old = g.0.replace(item);
        self.ready.notify_one();
        old
    }

    /// Marks the end: `take` returns `None` once the slot is empty.
    pub fn close(&self) {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        g.1 = true;
        self.ready.notify_all();
    }

    /// Waits for an item; `None` when closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut g = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = g.0.take() {
                return Some(v);
            }
            if g.1 {
                return None;
            }
            g = self.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The item if one is waiting, without blocking.
    pub fn try_take(&self) -> Option<T> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).0.take()
    }
}

/// A processed frame.
#[derive(Debug, Clone)]
pub struct LiveResult {
    /// Source index.
    pub index: usize,
    /// The analysis.
    pub analysis: Analysis,
    /// The annotated frame.
    pub annotated: RgbImage,
    /// Arrival to result, ms.
    pub latency_ms: f64,
}

/// Counters shared by the live threads.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Frames read from the source.
    pub arrived: AtomicU64,
    /// Frames dropped before processing (a newer one arrived first).
    pub dropped: AtomicU64,
    /// Frames processed.
    pub processed: AtomicU64,
    /// Results replaced before the display took them.
    pub not_shown: AtomicU64,
}

/// Settings the display side changes while the loop runs; the processing thread applies
/// them before each frame.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    /// Overlay layers.
    pub overlay: crate::overlay::OverlayOptions,
    /// Window level shift (fraction of the width) and contrast factor.
    pub window: (f32, f32),
    /// The plan, if set: given, or from the landmarks (instrument entry to the VILL's
    /// middle).
    pub plan: Option<fluoro_analysis::PlanChoice>,
    /// Incremented to apply the fields above.
    pub generation: u64,
}

/// A running live loop.
pub struct LiveLoop {
    /// Results, newest wins.
    pub results: Arc<Mailbox<LiveResult>>,
    /// Counters.
    pub counters: Arc<LiveCounters>,
    stop: Arc<AtomicBool>,
    latencies: Arc<Mutex<Vec<f64>>>,
    threads: Vec<JoinHandle<Result<(), String>>>,
    spare_images: SyncSender<RgbImage>,
}

/// Latency and drop statistics of a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    /// Frames read.
    pub arrived: u64,
    /// Frames processed.
    pub processed: u64,
    /// Frames dropped before processing.
    pub dropped: u64,
    /// Arrival-to-result latency.
    pub latency: TimeStats,
}

impl LiveLoop {
    /// Starts reading from `source` and processing with `fl`, `mask` and `mm_per_px`.
    pub fn start(
        source: Box<dyn FrameSource>,
        fl: FrameLoop,
        mask: Frame<u8>,
        mm_per_px: Option<f64>,
    ) -> Self {
        let controls = Arc::new(Mutex::new(Controls {
            window: (0.0, 1.0),
            ..Default::default()
        }));
        Self::start_with_controls(source, fl, mask, mm_per_px, controls)
    }

    /// Like [`LiveLoop::start`], with settings the caller can change while it runs.
    pub fn start_with_controls(
        mut source: Box<dyn FrameSource>,
        mut fl: FrameLoop,
        mask: Frame<u8>,
        mm_per_px: Option<f64>,
        controls: Arc<Mutex<Controls>>,
    ) -> Self {
        let inbox: Arc<Mailbox<SourceFrame>> = Arc::new(Mailbox::default());
        let results: Arc<Mailbox<LiveResult>> = Arc::new(Mailbox::default());
        let counters = Arc::new(LiveCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let latencies = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        // annotated images the display is done with come back here (see `recycle`)
        let (spare_tx, spare_rx): (SyncSender<RgbImage>, Receiver<RgbImage>) = sync_channel(4);
        // recycled frame buffers: processing hands them back to the reader
        let (recycle_tx, recycle_rx): (SyncSender<Frame<f32>>, Receiver<Frame<f32>>) =
            sync_channel(4);
        let reader = {
            let (inbox, counters, stop, recycle_tx) = (
                inbox.clone(),
                counters.clone(),
                stop.clone(),
                recycle_tx.clone(),
            );
            std::thread::Builder::new()
                .name("live-reader".into())
                .spawn(move || {
                    let result = loop {
                        if stop.load(Ordering::Relaxed) {
                            break Ok(());
                        }
                        let mut buf = recycle_rx.try_recv().unwrap_or_default();
                        match source.next_frame(&mut buf) {
                            None => break Ok(()),
                            Some(Err(e)) => break Err(e),
                            Some(Ok((index, arrival))) => {
                                counters.arrived.fetch_add(1, Ordering::Relaxed);
                                if let Some(stale) = inbox.put(SourceFrame {
                                    index,
                                    arrival,
                                    data: buf,
                                }) {
                                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                                    let _ = recycle_tx.try_send(stale.data);
                                }
                            }
                        }
                    };
                    inbox.close();
                    result
                })
                .expect("spawn reader")
        };
        let worker = {
            let (inbox, results, counters, latencies) = (
                inbox.clone(),
                results.clone(),
                counters.clone(),
                latencies.clone(),
            );
            std::thread::Builder::new()
                .name("live-process".into())
                .spawn(move || {
                    let mut seen = u64::MAX;
                    let mut spare: Vec<RgbImage> = Vec::with_capacity(2);
                    let out = loop {
                        let Some(frame) = inbox.take() else {
                            break Ok(());
                        };
                        if let Ok(c) = controls.lock()
                            && c.generation != seen
                        {
                            seen = c.generation;
                            fl.set_overlay(c.overlay);
                            fl.set_plan_choice(c.plan);
                            fl.set_window_adjust(c.window.0, c.window.1);
                        }
                        let r: Result<(Analysis, _), LoopError> =
                            fl.process(&frame.data, &mask, mm_per_px, true);
                        let (analysis, _) = match r {
                            Ok(v) => v,
                            Err(e) => break Err(e.to_string()),
                        };
                        let latency_ms = frame.arrival.elapsed().as_secs_f64() * 1000.0;
                        counters.processed.fetch_add(1, Ordering::Relaxed);
                        latencies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(latency_ms);
                        let mut annotated = spare
                            .pop()
                            .or_else(|| spare_rx.try_recv().ok())
                            .unwrap_or_default();
                        copy_image(fl.annotated(), &mut annotated);
                        let res = LiveResult {
                            index: frame.index,
                            analysis,
                            annotated,
                            latency_ms,
                        };
                        if let Some(stale) = results.put(res) {
                            counters.not_shown.fetch_add(1, Ordering::Relaxed);
                            spare.push(stale.annotated);
                        }
                        let _ = recycle_tx.try_send(frame.data);
                    };
                    results.close();
                    out
                })
                .expect("spawn worker")
        };
        Self {
            results,
            counters,
            stop,
            latencies,
            threads: vec![reader, worker],
            spare_images: spare_tx,
        }
    }

    /// Hands a result the display is done with back to the loop, so its image buffer is
    /// reused instead of a new one being allocated for a later frame.
    pub fn recycle(&self, r: LiveResult) {
        let _ = self.spare_images.try_send(r.annotated);
    }

    /// True when both threads have ended (the source is exhausted or stopped and the last
    /// frame is processed).
    pub fn finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Asks the source to stop after the current frame.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The statistics so far.
    pub fn report(&self) -> LiveReport {
        let lat = self
            .latencies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        LiveReport {
            arrived: self.counters.arrived.load(Ordering::Relaxed),
            processed: self.counters.processed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            latency: TimeStats::of(&lat),
        }
    }

    /// Waits for both threads; the first error wins.
    pub fn join(self) -> Result<LiveReport, String> {
        let report_src = (self.latencies.clone(), self.counters.clone());
        for t in self.threads {
            t.join()
                .map_err(|_| "a live thread panicked".to_string())??;
        }
        let lat = report_src
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let c = report_src.1;
        Ok(LiveReport {
            arrived: c.arrived.load(Ordering::Relaxed),
            processed: c.processed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            latency: TimeStats::of(&lat),
        })
    }
}

/// Copies `src` into `dst`, reusing `dst`'s buffer when the sizes match.
fn copy_image(src: &RgbImage, dst: &mut RgbImage) {
    if dst.dimensions() == src.dimensions() {
        dst.copy_from_slice(src);
    } else {
        *dst = src.clone();
    }
}

/// Plays a recorded study at its own timing (Frame Time Vector / Frame Time / Cine Rate),
/// scaled by `speed` (2.0 = twice as fast; 0 = as fast as possible).
pub struct PlaybackSource {
    study: fluoro_dicom::Study,
    input: crate::source::StudyInput,
    times_ms: Vec<f64>,
    speed: Arc<AtomicU64>,
    paused: Arc<AtomicBool>,
    step: Arc<AtomicBool>,
    next: usize,
    start: Option<Instant>,
    loop_forever: bool,
}

impl PlaybackSource {
    /// Opens playback of `study` at `speed`.
    pub fn new(study: fluoro_dicom::Study, speed: f64, loop_forever: bool) -> Self {
        let input = crate::source::StudyInput::new(&study);
        let times_ms = study.info().timing.times_ms.clone();
        Self {
            study,
            input,
            times_ms,
            speed: Arc::new(AtomicU64::new(speed.to_bits())),
            paused: Arc::new(AtomicBool::new(false)),
            step: Arc::new(AtomicBool::new(false)),
            next: 0,
            start: None,
            loop_forever,
        }
    }

    /// A handle to change the speed while playing.
    pub fn speed_handle(&self) -> Arc<AtomicU64> {
        self.speed.clone()
    }

    /// A handle to pause and resume.
    pub fn pause_handle(&self) -> Arc<AtomicBool> {
        self.paused.clone()
    }

    /// A handle to let one frame through while paused.
    pub fn step_handle(&self) -> Arc<AtomicBool> {
        self.step.clone()
    }

    /// `base` adapted to the study (intensity model, value range, view), as `fluoro process`
    /// would.
    pub fn study_params(&self, base: &crate::PipelineParams) -> crate::PipelineParams {
        crate::study_params(&self.study, &self.input, base)
    }

    /// Frames in the study.
    pub fn len(&self) -> usize {
        self.times_ms.len()
    }

    /// True for a study without frames.
    pub fn is_empty(&self) -> bool {
        self.times_ms.is_empty()
    }
}

impl FrameSource for PlaybackSource {
    fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>> {
        if self.next >= self.times_ms.len() {
            if !self.loop_forever || self.times_ms.is_empty() {
                return None;
            }
            self.next = 0;
            self.start = None;
        }
        let mut stepping = false;
        while self.paused.load(Ordering::Relaxed) {
            if self.step.swap(false, Ordering::Relaxed) {
                stepping = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            self.start = None;
        }
        let i = self.next;
        let speed = f64::from_bits(self.speed.load(Ordering::Relaxed));
        let t_ms = self.times_ms[i];
        let start = *self.start.get_or_insert_with(|| {
            Instant::now()
                - Duration::from_secs_f64(if speed > 0.0 {
                    t_ms / speed / 1000.0
                } else {
                    0.0
                })
        });
        let mut arrival = Instant::now();
        if speed > 0.0 && !stepping {
            let due = start + Duration::from_secs_f64(t_ms / speed / 1000.0);
            if due > arrival {
                std::thread::sleep(due - arrival);
            }
            arrival = arrival.max(due);
        }
        self.next += 1;
        Some(
            self.input
                .read(&self.study, i, buf)
                .map(|_| (i, arrival))
                .map_err(|e| e.to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_uses_the_parameters_process_would() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let base = crate::PipelineParams::default();
        let ap = PlaybackSource::new(
            fluoro_dicom::Study::open(dir.join("ap-short-128.dcm")).unwrap(),
            1.0,
            false,
        );
        let clo = PlaybackSource::new(
            fluoro_dicom::Study::open(dir.join("clo-cross-256.dcm")).unwrap(),
            1.0,
            false,
        );
        // no VILL in an AP view, as in `fluoro process`
        assert!(!ap.study_params(&base).analysis.vill_enabled);
        assert!(clo.study_params(&base).analysis.vill_enabled);
        assert_eq!(clo.study_params(&base).enhance.range, (0.0, 4095.0));
    }

    #[test]
    fn mailbox_keeps_only_the_newest() {
        let m = Mailbox::default();
        assert!(m.put(1).is_none());
        assert_eq!(m.put(2), Some(1));
        assert_eq!(m.take(), Some(2));
        m.close();
        assert_eq!(m.take(), None);
    }

    struct Burst {
        n: usize,
        size: usize,
    }

    impl FrameSource for Burst {
        fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>> {
            if self.n == 0 {
                return None;
            }
            self.n -= 1;
            buf.reshape(self.size, self.size);
            buf.data_mut()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 1000.0 + (i % 97) as f32);
            Some(Ok((self.n, Instant::now())))
        }
    }

    #[test]
    fn a_fast_source_drops_frames_instead_of_queueing() {
        // frames arrive as fast as they can be made; processing is slower: most are dropped,
        // none wait in a queue, and every arrival is either processed or counted as dropped
        let fl = FrameLoop::new(crate::PipelineParams::default());
        let size = 96;
        let live = LiveLoop::start(
            Box::new(Burst { n: 300, size }),
            fl,
            Frame::filled(size, size, 1u8),
            Some(0.3),
        );
        let r = live.join().unwrap();
        assert_eq!(r.arrived, 300);
        assert_eq!(r.processed + r.dropped, r.arrived);
        assert!(r.dropped > 0, "{r:?}");
        assert!(r.latency.max_ms < 1000.0, "{r:?}");
    }
}
