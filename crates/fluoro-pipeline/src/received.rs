//! Frames from instances pushed over DICOM (`fluoro-scp`'s C-STORE receiver), as a
//! [`FrameSource`] for the live loop.
//!
//! A single-frame instance is one live frame, shown as soon as it is stored. A multi-frame
//! instance (a recorded run) is played at its own frame timing from the moment it was
//! stored. The newest instance wins: when another arrives while a run is still playing, the
//! rest of the run is skipped (and counted), as a C-arm's newest image supersedes the last.
//! Instances of another size than the first are refused for the session (the shutter mask
//! and geometry were set up from the first).

use crate::live::FrameSource;
use crate::source::StudyInput;
use fluoro_core::Frame;
use fluoro_dicom::Study;
use fluoro_scp::{ReceivedInstance, ScpEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver source has seen, for status lines and reports.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReceiverStatus {
    /// Instances stored and opened.
    pub instances: u64,
    /// Frames of runs cut short by a newer instance.
    pub frames_skipped: u64,
    /// Instances refused (by the receiver, unreadable, or of another size).
    pub refused: u64,
    /// The last few problems, newest last.
    pub problems: Vec<String>,
    /// The newest instance's file.
    pub last_instance: Option<String>,
}

impl ReceiverStatus {
    fn problem(&mut self, p: String) {
        self.refused += 1;
        self.note(p);
    }

    /// Keeps the last eight problems.
    fn note(&mut self, p: String) {
        if self.problems.len() == 8 {
            self.problems.remove(0);
        }
        self.problems.push(p);
    }
}

struct Playing {
    study: Study,
    input: StudyInput,
    times_ms: Vec<f64>,
    next: usize,
    stored_at: Instant,
}

/// A [`FrameSource`] over a receiver's events.
pub struct ReceivedSource {
    events: Receiver<ScpEvent>,
    playing: Option<Playing>,
    waiting: Option<Playing>,
    size: Option<(usize, usize)>,
    emitted: usize,
    status: Arc<Mutex<ReceiverStatus>>,
    stop: Arc<AtomicBool>,
}

impl ReceivedSource {
    /// A source reading `events` (from [`fluoro_scp::StoreScp::spawn`]).
    pub fn new(events: Receiver<ScpEvent>) -> Self {
        Self {
            events,
            playing: None,
            waiting: None,
            size: None,
            emitted: 0,
            status: Arc::default(),
            stop: Arc::default(),
        }
    }

    /// Shared counters, readable while the loop runs.
    pub fn status_handle(&self) -> Arc<Mutex<ReceiverStatus>> {
        self.status.clone()
    }

    /// Setting this ends the stream at the next wait (the live loop's `stop` cannot
    /// interrupt a source that is waiting for the network).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Waits up to `timeout` (forever with `None`) for the first readable instance and
    /// returns its shutter mask and mm per pixel, which the live loop needs to start.
    pub fn wait_first(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<(Frame<u8>, Option<f64>), String> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if wait.is_some_and(|w| w.is_zero()) || self.stop.load(Ordering::Relaxed) {
                return Err("no readable instance received".into());
            }
            let step = wait
                .unwrap_or(Duration::MAX)
                .min(Duration::from_millis(100));
            match self.events.recv_timeout(step) {
                Ok(ev) => {
                    self.on_event(ev);
                    if let Some(p) = self.waiting.take() {
                        let mask = p.study.shutter_mask();
                        let mm = p.study.info().mm_per_px;
                        self.playing = Some(p);
                        return Ok((mask, mm));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the receiver stopped before an instance arrived".into());
                }
            }
        }
    }

    /// `base` adapted to the instance being played (after [`ReceivedSource::wait_first`]:
    /// the first): its intensity model, value range and view, as `fluoro process` would.
    pub fn study_params(&self, base: &crate::PipelineParams) -> crate::PipelineParams {
        match &self.playing {
            Some(p) => crate::study_params(&p.study, &p.input, base),
            None => base.clone(),
        }
    }

    fn on_event(&mut self, ev: ScpEvent) {
        let opened = match &ev {
            ScpEvent::Stored(inst) => Some(self.open(inst)),
            _ => None,
        };
        let status = self.status.clone();
        let mut st = status.lock().unwrap_or_else(|e| e.into_inner());
        match ev {
            ScpEvent::Stored(inst) => match opened.expect("opened above") {
                Ok(p) => {
                    st.instances += 1;
                    st.last_instance = Some(inst.path.display().to_string());
                    if let Some(old) = self.waiting.replace(p) {
                        st.frames_skipped += old.times_ms.len() as u64;
                    }
                }
                Err(e) => st.problem(e),
            },
            ScpEvent::Refused {
                sop_instance_uid,
                reason,
            } => st.problem(format!("instance {sop_instance_uid} refused: {reason}")),
            ScpEvent::Failed(e) => st.note(e),
        }
    }

    fn open(&mut self, inst: &ReceivedInstance) -> Result<Playing, String> {
        let study = Study::open(&inst.path).map_err(|e| e.to_string())?;
        let f = study.format();
        let size = (f.columns, f.rows);
        let first = *self.size.get_or_insert(size);
        if size != first || study.frame_count() == 0 {
            return Err(format!(
                "{}: {}x{} with {} frames does not fit this session ({}x{})",
                inst.path.display(),
                size.0,
                size.1,
                study.frame_count(),
                first.0,
                first.1
            ));
        }
        let input = StudyInput::new(&study);
        let mut times_ms = study.info().timing.times_ms.clone();
        times_ms.resize(study.frame_count(), times_ms.last().copied().unwrap_or(0.0));
        Ok(Playing {
            study,
            input,
            times_ms,
            next: 0,
            stored_at: inst.completed,
        })
    }

    fn drain(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.on_event(ev);
        }
    }
}

impl FrameSource for ReceivedSource {
    fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>> {
        loop {
            self.drain();
            let exhausted = self
                .playing
                .as_ref()
                .is_none_or(|p| p.next >= p.times_ms.len());
            if self.waiting.is_some() {
                if let Some(p) = &self.playing
                    && !exhausted
                {
                    let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
                    st.frames_skipped += (p.times_ms.len() - p.next) as u64;
                }
                self.playing = self.waiting.take();
            } else if exhausted {
                if self.stop.load(Ordering::Relaxed) {
                    return None;
                }
                match self.events.recv_timeout(Duration::from_millis(50)) {
                    Ok(ev) => self.on_event(ev),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return None,
                }
                continue;
            }
            let p = self.playing.as_mut().expect("a run is playing");
            let i = p.next;
            p.next += 1;
            let due = p.stored_at
                + Duration::from_secs_f64((p.times_ms[i] - p.times_ms[0]).max(0.0) / 1000.0);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // a damaged frame costs that frame, not the session
            if let Err(e) = p.input.read(&p.study, i, buf) {
                let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
                st.problem(e.to_string());
                continue;
            }
            self.emitted += 1;
            return Some(Ok((self.emitted - 1, due)));
        }
    }
}
