//! `fluoro bench`: the whole per-frame chain on a synthetic study in memory.

use crate::host_load::CpuTicks;
use crate::process::Backend;
use anyhow::{Result, bail};
use clap::Args;
use fluoro_core::Frame;
use fluoro_pipeline::{FrameLoop, PipelineParams, TimeStats};
use serde_json::json;

/// Options of `fluoro bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Frame size (square).
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Frames to time (after 3 warm-up frames).
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// Score the anatomy model on every n-th frame only: 1 is `fluoro process`'s
    /// configuration (the default), 4 the live loop's (`fluoro live`, `fluoro-view`), where
    /// the label map between scorings reuses the last scores with the current instrument.
    #[arg(long, default_value_t = 1)]
    pub anatomy_every: usize,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `fluoro bench`.
pub fn run(a: &BenchArgs) -> Result<()> {
    if !(64..=4096).contains(&a.size) || a.frames == 0 || a.anatomy_every == 0 {
        bail!("--size must be 64..4096, --frames and --anatomy-every at least 1");
    }
    let warm = 3;
    // a short study, cycled: rendering is not what is timed
    let n_unique = (a.frames + warm).min(40);
    let cfg = fluoro_synth::SynthConfig {
        size: a.size,
        frames: n_unique,
        contrast: true,
        scenario: fluoro_synth::Scenario::Touch,
        ..Default::default()
    };
    let s = fluoro_synth::generate(&cfg);
    let frames: Vec<Frame<f32>> = s
        .frames
        .iter()
        .map(|v| {
            Frame::from_vec(a.size, a.size, v.iter().map(|&x| f32::from(x)).collect())
                .expect("size")
        })
        .collect();
    let mask = s.shutter.mask(a.size, a.size);
    let mm = Some(s.carm.mm_per_px());
    let mut params = PipelineParams::default();
    params.analysis.anatomy_every = a.anatomy_every;
    let mut fl = FrameLoop::with_backend(params, a.backend.into())?;
    fl.set_gpu_profiling(true);
    let backend = fl.backend().to_string();
    let (mut enh, mut ana, mut ovl, mut tot) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut a_ins, mut a_vill, mut a_seg) = (Vec::new(), Vec::new(), Vec::new());
    let mut e_sub: [Vec<f64>; 5] = Default::default();
    let mut gpu_ms: Vec<[f64; 6]> = Vec::new();
    let mut scored = 0usize;
    let mut cpu_start = None;
    let mut host_start = None;
    let mut wall_start = std::time::Instant::now();
    for i in 0..a.frames + warm {
        if i == warm {
            cpu_start = process_cpu_ns();
            host_start = CpuTicks::now();
            wall_start = std::time::Instant::now();
        }
        let (_, t) = fl.process(&frames[i % n_unique], &mask, mm, true)?;
        if i >= warm {
            enh.push(t.enhance_ms);
            ana.push(t.analyse_ms);
            a_ins.push(t.analysis.instrument_ms);
            a_vill.push(t.analysis.vill_ms);
            a_seg.push(t.analysis.segment_ms);
            if let Some(e) = fl.cpu_stage_ms() {
                let v = [
                    e.normalize_ms,
                    e.temporal_ms,
                    e.spatial_ms,
                    e.clahe_ms,
                    e.detail_ms,
                ];
                for (dst, x) in e_sub.iter_mut().zip(v) {
                    dst.push(x);
                }
            }
            gpu_ms.extend(fl.gpu_stage_ms());
            ovl.push(t.overlay_ms);
            tot.push(t.total_ms);
            scored += usize::from(fl.analyzer().anatomy_scored());
        }
    }
    let wall_ms = wall_start.elapsed().as_secs_f64() * 1000.0;
    let host = host_start
        .zip(CpuTicks::now())
        .and_then(|(s, e)| s.until(&e));
    // CPU time of every thread of the process over the timed frames (rayon's spin-waits
    // included): with the wall time, how busy the threads were
    let cpu = match (cpu_start, process_cpu_ns()) {
        (Some(s), Some(e)) if e >= s => {
            let ms = (e - s) as f64 / 1e6;
            json!({"ms_per_frame": ms / a.frames as f64, "busy_threads": ms / wall_ms.max(1e-9)})
        }
        _ => serde_json::Value::Null,
    };
    let mut stages = vec![("enhance", TimeStats::of(&enh))];
    // sub-stages of the CPU chain (the GPU's have their own table below)
    if !e_sub[0].is_empty() {
        let names = [
            "  normalize",
            "  temporal",
            "  spatial",
            "  clahe",
            "  detail",
        ];
        stages.extend(
            names
                .into_iter()
                .zip(e_sub.iter().map(|v| TimeStats::of(v))),
        );
    }
    stages.extend([
        ("analyse", TimeStats::of(&ana)),
        ("  instrument", TimeStats::of(&a_ins)),
        ("  vill", TimeStats::of(&a_vill)),
        ("  segment", TimeStats::of(&a_seg)),
        ("overlay", TimeStats::of(&ovl)),
    ]);
    let total = TimeStats::of(&tot);
    let threads = rayon::current_num_threads();
    let simd = fluoro_enhance::simd_level();
    let gpu = gpu_report(&fl, &gpu_ms, a.size)?;
    // the GPU backend again, unprofiled, with each next frame queued ahead: the device
    // enhances frame n + 1 while the CPU analyses frame n
    let pipelined = if backend.starts_with("gpu") {
        fl.set_gpu_profiling(false);
        fl.reset();
        let t = std::time::Instant::now();
        for i in 0..a.frames {
            let next = (i + 1 < a.frames).then(|| &frames[(i + 1) % n_unique]);
            fl.process_ahead(&frames[i % n_unique], &mask, next, mm, true)?;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0 / a.frames as f64;
        json!({"ms_per_frame": ms, "frames_per_s": 1000.0 / ms.max(1e-9)})
    } else {
        serde_json::Value::Null
    };
    if a.json {
        let st: serde_json::Map<String, serde_json::Value> = stages
            .iter()
            .scan("", |parent, (n, s)| {
                // sub-stages appear as "analyse.instrument", "enhance.clahe" etc.
                let name = match n.strip_prefix("  ") {
                    Some(sub) => format!("{parent}.{sub}"),
                    None => {
                        *parent = n;
                        n.to_string()
                    }
                };
                Some((name, json!({"median_ms": s.median_ms, "p95_ms": s.p95_ms})))
            })
            .collect();
        println!(
            "{}",
            json!({"backend": if backend.starts_with("gpu") { "gpu" } else { "cpu" }, "adapter": backend, "simd": simd, "size": a.size, "frames": a.frames, "threads": threads,
                   "anatomy_every": a.anatomy_every, "anatomy_scored_frames": scored,
                   "stages": st, "total": {"median_ms": total.median_ms, "p95_ms": total.p95_ms, "p99_ms": total.p99_ms},
                   "throughput_fps": 1000.0 / total.median_ms.max(1e-9), "cpu": cpu, "gpu": gpu, "pipelined": pipelined,
                   "host": host.map(|h| json!({"steal_frac": h.steal_frac, "others_frac": h.others_frac}))})
        );
    } else {
        println!(
            "{} frames of {}x{} on {threads} threads ({backend}; CPU kernels: {simd}); \
             anatomy model scored on {scored} of them:",
            a.frames, a.size, a.size
        );
        println!("{:<14}{:>10}{:>10}{:>10}", "stage", "median", "p95", "p99");
        for (n, s) in stages.iter().chain(std::iter::once(&("total", total))) {
            println!(
                "{n:<14}{:>10.2}{:>10.2}{:>10.2}",
                s.median_ms, s.p95_ms, s.p99_ms
            );
        }
        println!(
            "throughput {:.1} frames/s",
            1000.0 / total.median_ms.max(1e-9)
        );
        if !cpu.is_null() {
            println!(
                "CPU time {:.2} ms per frame, all threads ({:.2} of {threads} busy on average, \
                 spin-waits included)",
                cpu["ms_per_frame"].as_f64().unwrap_or(0.0),
                cpu["busy_threads"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(h) = host {
            let busy = h.steal_frac > NOISY_STEAL || h.others_frac > NOISY_OTHERS;
            println!(
                "host: {:.0}% of CPU time stolen by the hypervisor, {:.0}% used by other \
                 processes{}",
                100.0 * h.steal_frac,
                100.0 * h.others_frac,
                if busy {
                    " (a busy host: compare runs interleaved with each other, not with \
                     figures taken at another time)"
                } else {
                    ""
                }
            );
        }
        if !backend.starts_with("gpu") {
            println!(
                "(the display half of the chain, clahe and detail, runs beside analyse: \
                 stage times overlap; total is the frame's wall time)"
            );
        }
        if !pipelined.is_null() {
            println!(
                "next frame queued ahead (GPU overlaps the CPU's analysis): {:.2} ms/frame, {:.1} frames/s",
                pipelined["ms_per_frame"].as_f64().unwrap_or(0.0),
                pipelined["frames_per_s"].as_f64().unwrap_or(0.0)
            );
        }
        if !gpu.is_null() {
            println!(
                "\nGPU stages (timestamps; floor = bytes the stage must move / copy bandwidth {:.1} GB/s):",
                gpu["copy_bandwidth_gbps"].as_f64().unwrap_or(0.0)
            );
            println!(
                "{:<14}{:>10}{:>10}{:>10}",
                "stage", "median", "floor", "fraction"
            );
            let stages = gpu["stages"].as_object().cloned().unwrap_or_default();
            for name in fluoro_gpu::profile::STAGES
                .iter()
                .chain(std::iter::once(&"chain"))
            {
                let s = if *name == "chain" {
                    &gpu["chain"]
                } else {
                    &stages[*name]
                };
                println!(
                    "{name:<14}{:>10.3}{:>10.3}{:>10.3}",
                    s["median_ms"].as_f64().unwrap_or(0.0),
                    s["floor_ms"].as_f64().unwrap_or(0.0),
                    s["floor_fraction"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}

/// Per-stage GPU times (medians over the frames), the bytes each stage must move, and how
/// close each comes to that floor at the measured copy bandwidth; `null` on the CPU or on a
/// device without timestamps.
fn gpu_report(fl: &FrameLoop, per_frame: &[[f64; 6]], size: usize) -> Result<serde_json::Value> {
    use fluoro_gpu::profile::{FLOOR_BYTES_PER_PIXEL, STAGES};
    let Some(bw) = fl.gpu_copy_bandwidth_gbps() else {
        return Ok(serde_json::Value::Null);
    };
    let bw = bw?;
    if per_frame.is_empty() {
        return Ok(json!({"copy_bandwidth_gbps": bw, "stages": null}));
    }
    let px = (size * size) as f64;
    let mut stages = serde_json::Map::new();
    let (mut sum_ms, mut sum_floor) = (0.0, 0.0);
    for (i, name) in STAGES.iter().enumerate() {
        let v: Vec<f64> = per_frame.iter().map(|m| m[i]).collect();
        let med = TimeStats::of(&v).median_ms;
        let bytes = FLOOR_BYTES_PER_PIXEL[i] as f64 * px;
        let floor_ms = bytes / (bw * 1e9) * 1e3;
        sum_ms += med;
        sum_floor += floor_ms;
        stages.insert(
            name.to_string(),
            json!({"median_ms": med, "bytes": bytes, "floor_ms": floor_ms,
                   "floor_fraction": if med > 0.0 { floor_ms / med } else { 0.0 }}),
        );
    }
    Ok(json!({
        "copy_bandwidth_gbps": bw,
        "stages": stages,
        "chain": {"median_ms": sum_ms, "floor_ms": sum_floor,
                  "floor_fraction": if sum_ms > 0.0 { sum_floor / sum_ms } else { 0.0 }},
    }))
}

/// Above these shares of the machine's CPU time taken by the hypervisor or by other
/// processes, the run's times are flagged as taken on a busy host.
const NOISY_STEAL: f64 = 0.05;
const NOISY_OTHERS: f64 = 0.10;

/// Nanoseconds every thread of this process has run on a CPU, from Linux's per-thread
/// scheduler statistics (`/proc/self/task/*/schedstat`, first field); `None` where they
/// cannot be read (other systems). Threads that ended before the call are not counted, so
/// take both readings while the same threads live (rayon's pool does).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}
