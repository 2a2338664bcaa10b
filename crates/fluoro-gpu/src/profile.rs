//! GPU-side stage times (timestamp queries around each compute pass) and the memory traffic
//! each stage must at least cause, so `fluoro bench --backend gpu` can say how close every
//! stage comes to the device's bandwidth floor.

use crate::{GpuContext, GpuError};

/// The chain's GPU stages, in order.
pub const STAGES: [&str; 6] = [
    "normalize",
    "gate",
    "temporal",
    "bilateral",
    "clahe",
    "detail",
];

/// Bytes per pixel each stage must read and write at the least (f32 frames): normalize,
/// bilateral and detail read the frame and the mask and write the result (the last two
/// filter only inside the field); the gate only samples a sparse grid (not counted);
/// temporal reads the frame and the history and writes the new history; CLAHE reads the
/// frame and the mask for its histograms, then reads and writes the frame. What an
/// implementation moves beyond this (separable passes, quarter-resolution buffers, the 3x3
/// gate sums) is overhead the floor does not excuse.
pub const FLOOR_BYTES_PER_PIXEL: [u64; 6] = [12, 0, 12, 12, 16, 12];

/// Timestamp queries around the chain's passes.
pub struct GpuProfiler {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    period_ns: f64,
    raw: Vec<u64>,
    written: [bool; 6],
    last_ms: [f64; 6],
}

impl GpuProfiler {
    /// A profiler, or `None` when the device has no timestamp queries.
    pub fn new(ctx: &GpuContext) -> Option<Self> {
        if !ctx.timestamps {
            return None;
        }
        let d = &ctx.device;
        let n = 2 * STAGES.len() as u32;
        let set = d.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("stage-timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: n,
        });
        let bytes = u64::from(n) * 8;
        let resolve = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps-resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps-staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Some(Self {
            set,
            resolve,
            staging,
            period_ns: f64::from(ctx.queue.get_timestamp_period()),
            raw: Vec::with_capacity(n as usize),
            written: [false; 6],
            last_ms: [0.0; 6],
        })
    }

    /// Starts a frame: no stage written yet.
    pub fn begin_frame(&mut self) {
        self.written = [false; 6];
    }

    /// The timestamp writes for the pass of `stage` (an index into [`STAGES`]).
    pub fn writes(&mut self, stage: usize) -> wgpu::ComputePassTimestampWrites<'_> {
        self.written[stage] = true;
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * stage as u32),
            end_of_pass_write_index: Some(2 * stage as u32 + 1),
        }
    }

    /// Records the resolve and the copy to the read-back buffer into `enc` (the frame's last
    /// encoder).
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        let n = 2 * STAGES.len() as u32;
        enc.resolve_query_set(&self.set, 0..n, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, u64::from(n) * 8);
    }

    /// Reads the frame's timestamps (after its last submission) into per-stage times.
    pub fn read(&mut self, ctx: &GpuContext) -> Result<(), GpuError> {
        ctx.map_read_pod(&self.staging, 2 * STAGES.len(), &mut self.raw)?;
        for (i, ms) in self.last_ms.iter_mut().enumerate() {
            let (a, b) = (self.raw[2 * i], self.raw[2 * i + 1]);
            *ms = if self.written[i] && b >= a {
                (b - a) as f64 * self.period_ns / 1e6
            } else {
                0.0
            };
        }
        Ok(())
    }

    /// GPU milliseconds of each stage in the last frame (0 for a stage that did not run).
    pub fn stage_ms(&self) -> [f64; 6] {
        self.last_ms
    }
}

/// Device-memory bandwidth achieved by a large buffer-to-buffer copy (bytes read plus
/// bytes written per second, in GB/s): the reference for the floor.
pub fn copy_bandwidth_gbps(ctx: &GpuContext) -> Result<f64, GpuError> {
    let d = &ctx.device;
    let size = (256u64 << 20)
        .min(ctx.limits.max_buffer_size)
        .min(ctx.limits.max_storage_buffer_binding_size)
        & !255;
    let make = |label| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let (a, b) = (make("bw-a"), make("bw-b"));
    let run = |reps: u32| -> Result<f64, GpuError> {
        let mut enc = d.create_command_encoder(&Default::default());
        for _ in 0..reps {
            enc.copy_buffer_to_buffer(&a, 0, &b, 0, size);
        }
        let t = std::time::Instant::now();
        ctx.queue.submit([enc.finish()]);
        d.poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        Ok(t.elapsed().as_secs_f64())
    };
    run(1)?;
    let reps = 8;
    let secs = run(reps)?.max(1e-9);
    Ok(2.0 * size as f64 * f64::from(reps) / secs / 1e9)
}
