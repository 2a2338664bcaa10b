//! The viewer's window: the newest frame, the guidance numbers, controls and status.

use anyhow::Result;
use eframe::egui::{
    self, Color32, ColorImage, Key, RichText, TextureHandle, TextureOptions, ViewportCommand,
};
use fluoro_analysis::{Plan, PlanChoice};
use fluoro_core::Frame;
use fluoro_core::record::SafetyState;
use fluoro_pipeline::live::{Controls, LiveLoop, LiveResult, PlaybackSource};
use fluoro_pipeline::received::{ReceivedSource, ReceiverStatus};
use fluoro_pipeline::{Backend, FrameLoop, PipelineParams};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Where frames come from.
pub enum Source {
    /// A recorded study, played at its timing.
    Study(Box<fluoro_dicom::Study>),
    /// A raw frame stream (reader, peer name).
    Stream(Box<dyn std::io::Read + Send>, String),
    /// Instances pushed by DICOM C-STORE; the first has already arrived.
    Received(
        Box<ReceivedSource>,
        Frame<u8>,
        Option<f64>,
        fluoro_scp::ScpHandle,
    ),
}

/// The viewer state.
pub struct Viewer {
    live: Option<LiveLoop>,
    controls: Arc<Mutex<Controls>>,
    speed: Arc<AtomicU64>,
    paused: Arc<AtomicBool>,
    step: Arc<AtomicBool>,
    backend: String,
    frames: usize,
    latest: Option<LiveResult>,
    texture: Option<TextureHandle>,
    shown: u64,
    shown_times: std::collections::VecDeque<Instant>,
    started: Instant,
    exit_after: Option<f64>,
    screenshot: Option<PathBuf>,
    screenshot_requested: bool,
    closing: bool,
    help: bool,
    plan_pending: Option<[f64; 2]>,
    plan_mode: bool,
    image_size: [usize; 2],
    /// The DICOM receiver (kept alive while the window is open) and its counters.
    receiver: Option<(
        fluoro_scp::ScpHandle,
        Arc<AtomicBool>,
        Arc<Mutex<ReceiverStatus>>,
    )>,
}

impl Viewer {
    /// Starts the live loop on `source`.
    pub fn new(
        source: Source,
        backend: Backend,
        speed: f64,
        repeat: bool,
        exit_after: Option<f64>,
        screenshot: Option<PathBuf>,
        plan: Option<PlanChoice>,
    ) -> Result<Self> {
        // the loop runs with the parameters `fluoro process` would use for the same study
        let loop_for = |mut params: PipelineParams| {
            params.analysis.anatomy_every = fluoro_pipeline::LIVE_ANATOMY_EVERY;
            params.set_plan_choice(plan);
            FrameLoop::with_backend(params, backend)
        };
        let backend_name: String;
        // the controls start as the loop does, so the first change keeps the plan
        let controls = Arc::new(Mutex::new(Controls {
            window: (0.0, 1.0),
            plan,
            ..Default::default()
        }));
        let (speed, paused, step) = (
            Arc::new(AtomicU64::new(speed.to_bits())),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut receiver = None;
        let (live, frames, image_size, speed, paused, step) = match source {
            Source::Received(src, mask, mm, handle) => {
                let image_size = [mask.width(), mask.height()];
                receiver = Some((handle, src.stop_handle(), src.status_handle()));
                let fl = loop_for(src.study_params(&PipelineParams::default()))?;
                backend_name = fl.backend().to_string();
                (
                    LiveLoop::start_with_controls(src, fl, mask, mm, controls.clone()),
                    0,
                    image_size,
                    speed,
                    paused,
                    step,
                )
            }
            Source::Study(study) => {
                let study = *study;
                let mask = study.shutter_mask();
                let mm = study.info().mm_per_px;
                let image_size = [study.format().columns, study.format().rows];
                let src = PlaybackSource::new(
                    study,
                    f64::from_bits(speed.load(Ordering::Relaxed)),
                    repeat,
                );
                let frames = src.len();
                let handles = (src.speed_handle(), src.pause_handle(), src.step_handle());
                let fl = loop_for(src.study_params(&PipelineParams::default()))?;
                backend_name = fl.backend().to_string();
                (
                    LiveLoop::start_with_controls(Box::new(src), fl, mask, mm, controls.clone()),
                    frames,
                    image_size,
                    handles.0,
                    handles.1,
                    handles.2,
                )
            }
            Source::Stream(reader, peer) => {
                let mut src = fluoro_pipeline::stream::StreamSource::new(reader, peer.clone());
                let (h, first) = src
                    .peek_frame()
                    .map_err(anyhow::Error::msg)?
                    .ok_or_else(|| anyhow::anyhow!("{peer}: closed before the first frame"))?;
                let mask = fluoro_pipeline::source::estimate_shutter_mask(&first);
                let image_size = [h.width as usize, h.height as usize];
                let fl = loop_for(PipelineParams::default())?;
                backend_name = fl.backend().to_string();
                (
                    LiveLoop::start_with_controls(
                        Box::new(src),
                        fl,
                        mask,
                        h.mm_per_px,
                        controls.clone(),
                    ),
                    0,
                    image_size,
                    speed,
                    paused,
                    step,
                )
            }
        };
        Ok(Self {
            live: Some(live),
            controls,
            speed,
            paused,
            step,
            backend: backend_name,
            frames,
            latest: None,
            texture: None,
            shown: 0,
            shown_times: Default::default(),
            started: Instant::now(),
            exit_after,
            screenshot,
            screenshot_requested: false,
            closing: false,
            help: false,
            plan_pending: None,
            plan_mode: false,
            image_size,
            receiver,
        })
    }

    fn update_controls(&self, f: impl FnOnce(&mut Controls)) {
        if let Ok(mut c) = self.controls.lock() {
            f(&mut c);
            c.generation += 1;
        }
    }

    fn speed(&self) -> f64 {
        f64::from_bits(self.speed.load(Ordering::Relaxed))
    }

    fn set_speed(&self, v: f64) {
        self.speed
            .store(v.clamp(0.125, 8.0).to_bits(), Ordering::Relaxed);
    }

    fn keys(&mut self, ctx: &egui::Context) {
        let pressed = |k: Key| ctx.input(|i| i.key_pressed(k));
        if pressed(Key::Space) {
            let p = !self.paused.load(Ordering::Relaxed);
            self.paused.store(p, Ordering::Relaxed);
        }
        if pressed(Key::ArrowRight) {
            self.paused.store(true, Ordering::Relaxed);
            self.step.store(true, Ordering::Relaxed);
        }
        if pressed(Key::Plus) || pressed(Key::Equals) {
            self.set_speed(self.speed() * 2.0);
        }
        if pressed(Key::Minus) {
            self.set_speed(self.speed() / 2.0);
        }
        if pressed(Key::L) {
            self.update_controls(|c| c.overlay.labels = !c.overlay.labels);
        }
        if pressed(Key::V) {
            self.update_controls(|c| c.overlay.vill = !c.overlay.vill);
        }
        if pressed(Key::I) {
            self.update_controls(|c| c.overlay.instrument = !c.overlay.instrument);
        }
        if pressed(Key::T) {
            self.update_controls(|c| c.overlay.text = !c.overlay.text);
        }
        if pressed(Key::P) {
            self.plan_mode = !self.plan_mode;
            self.plan_pending = None;
        }
        if pressed(Key::A) {
            self.update_controls(|c| c.plan = Some(PlanChoice::Landmarks));
        }
        if pressed(Key::C) {
            self.update_controls(|c| c.plan = None);
        }
        if pressed(Key::R) {
            self.update_controls(|c| c.window = (0.0, 1.0));
        }
        if pressed(Key::H) || pressed(Key::F1) {
            self.help = !self.help;
        }
        if pressed(Key::Q) || pressed(Key::Escape) {
            self.closing = true;
        }
    }
}

fn state_colour(s: SafetyState) -> Color32 {
    match s {
        SafetyState::Safe => Color32::from_rgb(40, 200, 70),
        SafetyState::Caution => Color32::from_rgb(255, 176, 0),
        SafetyState::Stop => Color32::from_rgb(235, 30, 30),
        SafetyState::Unknown => Color32::from_gray(150),
    }
}

const HELP: &[(&str, &str)] = &[
    ("Space", "play / pause"),
    ("Right", "step one frame (pauses)"),
    ("+ / -", "speed x2 / /2"),
    ("drag", "window (left-right) and level (up-down)"),
    ("R", "reset window/level"),
    ("L V I T", "toggle labels, VILL, instrument, text"),
    ("P", "plan mode: click entry, then target"),
    (
        "A",
        "plan from the landmarks: instrument entry to the VILL's middle",
    ),
    ("C", "clear the plan"),
    ("H / F1", "this help"),
    ("Q / Esc", "quit"),
];

impl eframe::App for Viewer {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.keys(&ctx);
        if let Some(live) = &self.live
            && let Some(r) = live.results.try_take()
        {
            let img = ColorImage::from_rgb(
                [r.annotated.width() as usize, r.annotated.height() as usize],
                r.annotated.as_raw(),
            );
            match &mut self.texture {
                Some(t) => t.set(img, TextureOptions::LINEAR),
                None => self.texture = Some(ctx.load_texture("frame", img, TextureOptions::LINEAR)),
            }
            self.shown += 1;
            self.shown_times.push_back(Instant::now());
            while self.shown_times.len() > 30 {
                self.shown_times.pop_front();
            }
            if let Some(old) = self.latest.replace(r) {
                live.recycle(old);
            }
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let shot_at = self.exit_after.map(|e| (e - 1.0).max(0.5)).unwrap_or(3.0);
        if let Some(path) = self.screenshot.clone()
            && !self.screenshot_requested
            && elapsed >= shot_at
            && self.latest.is_some()
        {
            self.screenshot_requested = true;
            ctx.send_viewport_cmd(ViewportCommand::Screenshot(egui::ScreenshotCallback::new(
                move |img| {
                    let rgba: Vec<u8> = img.pixels.iter().flat_map(|c| c.to_array()).collect();
                    if let Some(buf) =
                        image::RgbaImage::from_raw(img.size[0] as u32, img.size[1] as u32, rgba)
                    {
                        match buf.save(&path) {
                            Ok(()) => eprintln!("screenshot saved to {}", path.display()),
                            Err(e) => {
                                eprintln!("error: cannot save screenshot {}: {e}", path.display())
                            }
                        }
                    }
                },
            )));
        }
        if self.exit_after.is_some_and(|e| elapsed >= e) || self.closing {
            if let Some(live) = &self.live {
                live.stop();
                self.paused.store(false, Ordering::Relaxed);
            }
            ctx.send_viewport_cmd(ViewportCommand::Close);
        }
        let report = self.live.as_ref().map(|l| l.report());
        let fps = match (self.shown_times.front(), self.shown_times.back()) {
            (Some(a), Some(b)) if self.shown_times.len() > 1 => {
                (self.shown_times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64().max(1e-6)
            }
            _ => 0.0,
        };
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                let lat = self.latest.as_ref().map(|r| r.latency_ms).unwrap_or(0.0);
                let (p95, dropped) = report.as_ref().map(|r| (r.latency.p95_ms, r.dropped)).unwrap_or((0.0, 0));
                ui.label(format!(
                    "{:.1} fps | latency {lat:.1} ms (p95 {p95:.1}) | dropped {dropped} | frame {}{} | speed x{} | {} | {}",
                    fps,
                    self.latest.as_ref().map(|r| r.index + 1).unwrap_or(0),
                    if self.frames > 0 { format!(" / {}", self.frames) } else { " (live)".into() },
                    self.speed(),
                    if self.paused.load(Ordering::Relaxed) { "paused" } else { "playing" },
                    self.backend
                ));
                if let Some((_, _, status)) = &self.receiver
                    && let Ok(st) = status.lock()
                {
                    ui.label(format!(
                        "| received {} (refused {}, skipped {})",
                        st.instances, st.refused, st.frames_skipped
                    ))
                    .on_hover_text(st.problems.join("\n"));
                }
            });
        });
        egui::Panel::right("guidance").show(ui, |ui| {
            ui.set_min_width(260.0);
            if let Some(r) = &self.latest {
                let g = &r.analysis.guidance;
                ui.add_space(8.0);
                ui.label(RichText::new("TIP TO VILL").size(18.0));
                let dist = match (g.tip_to_vill_mm, g.tip_to_vill_px) {
                    (Some(mm), _) => format!("{mm:+.1} mm"),
                    (None, Some(px)) => format!("{px:+.0} px"),
                    _ => "--".into(),
                };
                ui.label(RichText::new(dist).size(54.0).strong());
                ui.label(
                    RichText::new(g.state.as_str().to_uppercase())
                        .size(44.0)
                        .strong()
                        .color(state_colour(g.state)),
                );
                ui.separator();
                if let (Some(a), Some(o)) = (g.angle_to_plan_deg, g.offset_to_plan_mm) {
                    ui.label(RichText::new(format!("plan: {a:.1} deg, {o:.1} mm")).size(18.0));
                }
                ui.label(format!(
                    "instrument: {}",
                    if r.analysis.tool.detected {
                        "detected"
                    } else {
                        "not seen"
                    }
                ));
                ui.label(format!(
                    "VILL: {}",
                    if r.analysis.vill.is_some() {
                        "found"
                    } else {
                        "not found"
                    }
                ));
            } else {
                ui.label("waiting for the first frame...");
            }
            ui.separator();
            let mut c = self.controls.lock().map(|c| c.clone()).unwrap_or_default();
            let before = (
                c.overlay.labels,
                c.overlay.vill,
                c.overlay.instrument,
                c.overlay.text,
            );
            ui.checkbox(&mut c.overlay.labels, "labels (L)");
            ui.checkbox(&mut c.overlay.vill, "VILL (V)");
            ui.checkbox(&mut c.overlay.instrument, "instrument (I)");
            ui.checkbox(&mut c.overlay.text, "text (T)");
            if before
                != (
                    c.overlay.labels,
                    c.overlay.vill,
                    c.overlay.instrument,
                    c.overlay.text,
                )
            {
                self.update_controls(|x| x.overlay = c.overlay);
            }
            ui.horizontal(|ui| {
                let playing = !self.paused.load(Ordering::Relaxed);
                if ui.button(if playing { "pause" } else { "play" }).clicked() {
                    self.paused.store(playing, Ordering::Relaxed);
                }
                if ui.button("step").clicked() {
                    self.paused.store(true, Ordering::Relaxed);
                    self.step.store(true, Ordering::Relaxed);
                }
                if ui.button("slower").clicked() {
                    self.set_speed(self.speed() / 2.0);
                }
                if ui.button("faster").clicked() {
                    self.set_speed(self.speed() * 2.0);
                }
            });
            if ui
                .button(if self.plan_mode {
                    "plan: click entry, then target"
                } else {
                    "set plan (P)"
                })
                .clicked()
            {
                self.plan_mode = !self.plan_mode;
                self.plan_pending = None;
            }
            if ui.button("help (H)").clicked() {
                self.help = !self.help;
            }
            if self.help {
                ui.separator();
                egui::Grid::new("help").show(ui, |ui| {
                    for (k, v) in HELP {
                        ui.label(RichText::new(*k).strong());
                        ui.label(*v);
                        ui.end_row();
                    }
                });
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(t) = &self.texture {
                let avail = ui.available_size();
                let [w, h] = self.image_size;
                let scale = (avail.x / w as f32).min(avail.y / h as f32).max(0.05);
                let size = egui::vec2(w as f32 * scale, h as f32 * scale);
                let resp =
                    ui.add(egui::Image::new((t.id(), size)).sense(egui::Sense::click_and_drag()));
                if resp.dragged() {
                    let d = resp.drag_delta();
                    self.update_controls(|c| {
                        c.window.0 += d.y / 400.0;
                        c.window.1 *= (d.x / 300.0).exp();
                    });
                }
                if resp.clicked()
                    && self.plan_mode
                    && let Some(pos) = resp.interact_pointer_pos()
                {
                    let p = [
                        ((pos.x - resp.rect.min.x) / scale) as f64,
                        ((pos.y - resp.rect.min.y) / scale) as f64,
                    ];
                    match self.plan_pending.take() {
                        None => self.plan_pending = Some(p),
                        Some(entry) => {
                            let given = PlanChoice::Given(Plan { entry, target: p });
                            self.update_controls(|c| c.plan = Some(given));
                            self.plan_mode = false;
                        }
                    }
                }
            } else {
                ui.centered_and_justified(|ui| ui.label(format!("starting ({})...", self.backend)));
            }
        });
        ctx.request_repaint();
    }

    fn on_exit(&mut self) {
        if let Some(live) = self.live.take() {
            live.stop();
            if let Some((_, stop, _)) = &self.receiver {
                stop.store(true, Ordering::Relaxed);
            }
            self.paused.store(false, Ordering::Relaxed);
            let _ = live.join();
        }
    }
}
