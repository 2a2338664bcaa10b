//! "No allocation in the steady state", checked with a counting global allocator: after a
//! warm-up, neither processing a frame (enhance, analyse, overlay) nor the whole live loop
//! (reader thread, processing thread, a display that recycles results) may allocate more
//! than a small, fixed budget per frame — a few short strings for the overlay text, nothing
//! that scales with the image. Before the scratch buffers were made persistent this was
//! ~440 allocations and ~800 KB per 256x256 frame.

use fluoro_core::Frame;
use fluoro_pipeline::live::{FrameSource, LiveLoop};
use fluoro_pipeline::source::StudyInput;
use fluoro_pipeline::{FrameLoop, PipelineParams};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new as u64, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counters() -> (u64, u64) {
    (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    )
}

/// Allocations and bytes per frame allowed in the steady state.
const MAX_ALLOCS: u64 = 10;
const MAX_BYTES: u64 = 32 * 1024;

struct Fixture {
    frames: Vec<Frame<f32>>,
    mask: Frame<u8>,
    mm: Option<f64>,
}

fn fixture() -> Fixture {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clo-cross-256.dcm");
    let study = fluoro_dicom::Study::open(&path).unwrap();
    let input = StudyInput::new(&study);
    let frames = (0..study.frame_count())
        .map(|i| {
            let mut f = Frame::new(0, 0);
            input.read(&study, i, &mut f).unwrap();
            f
        })
        .collect();
    Fixture {
        frames,
        mask: study.shutter_mask(),
        mm: study.info().mm_per_px,
    }
}

/// Cycles the fixture's frames in lockstep with the display: a frame is sent once the
/// previous one has been shown, so nothing is dropped however fast the machine is.
struct Cycle {
    frames: Vec<Frame<f32>>,
    next: usize,
    left: usize,
    shown: Arc<AtomicU64>,
}

impl FrameSource for Cycle {
    fn next_frame(&mut self, buf: &mut Frame<f32>) -> Option<Result<(usize, Instant), String>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        while self.shown.load(Ordering::Acquire) < self.next as u64 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let f = &self.frames[self.next % self.frames.len()];
        buf.reshape(f.width(), f.height());
        buf.data_mut().copy_from_slice(f.data());
        self.next += 1;
        Some(Ok((self.next - 1, Instant::now())))
    }
}

// one test, so that no other test thread allocates while this one counts
#[test]
fn the_frame_loop_and_the_live_loop_do_not_allocate_per_frame() {
    let fx = fixture();
    let n = fx.frames.len() as u64;

    // the frame loop alone: one pass to warm up, one counted
    let mut fl = FrameLoop::new(PipelineParams::default());
    for f in &fx.frames {
        fl.process(f, &fx.mask, fx.mm, true).unwrap();
    }
    let (a0, b0) = counters();
    for f in &fx.frames {
        fl.process(f, &fx.mask, fx.mm, true).unwrap();
    }
    let (a1, b1) = counters();
    let (a, b) = ((a1 - a0) / n, (b1 - b0) / n);
    eprintln!("frame loop: {a} allocations, {b} bytes per frame");
    assert!(
        a <= MAX_ALLOCS && b <= MAX_BYTES,
        "frame loop: {a} allocations, {b} bytes per frame"
    );

    // the live loop: reader + processing threads, a display that recycles what it showed
    let shown_count = Arc::new(AtomicU64::new(0));
    let live = LiveLoop::start(
        Box::new(Cycle {
            frames: fx.frames.clone(),
            next: 0,
            left: 80,
            shown: shown_count.clone(),
        }),
        FrameLoop::new(PipelineParams::default()),
        fx.mask.clone(),
        fx.mm,
    );
    let (mut shown, mut start, mut end) = (0u64, None, None);
    let mut first_counted = 0;
    loop {
        match live.results.try_take() {
            Some(r) => {
                shown += 1;
                if shown == 30 {
                    start = Some(counters());
                    first_counted = live.report().arrived;
                }
                if shown == 70 {
                    end = Some((counters(), live.report().arrived));
                }
                live.recycle(r);
                shown_count.store(shown, Ordering::Release);
            }
            None if live.finished() => break,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    live.join().unwrap();
    let ((a0, b0), ((a1, b1), last)) = (start.unwrap(), end.expect("70 results shown"));
    let frames = (last - first_counted).max(1);
    let (a, b) = ((a1 - a0) / frames, (b1 - b0) / frames);
    eprintln!("live loop: {a} allocations, {b} bytes per frame over {frames} frames");
    assert!(
        a <= MAX_ALLOCS && b <= MAX_BYTES,
        "live loop: {a} allocations, {b} bytes per frame"
    );
}
