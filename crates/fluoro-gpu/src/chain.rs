//! The enhancement chain on the GPU: frames are uploaded once, stay on the device through
//! normalisation, the recursive filter, the bilateral filter, CLAHE and detail enhancement,
//! and only the denoised frame (for analysis) and the output (for display) come back; the
//! motion gate's percentile is selected on the device, so a frame is one submission.
//!
//! Buffers, bind groups and pipelines are created once per frame size; the steady state
//! allocates nothing and compiles nothing.

mod resources;

use crate::context::{GpuContext, GpuError};
use crate::uniforms::{BilU, ClaheU, ConvU, DetailU, NormU, TempU};
use fluoro_core::Frame;
use fluoro_enhance::EnhanceParams;
use fluoro_enhance::normalize::{Intensity, LOG_SCALE};
use resources::{Modules, Sized, Uniforms};

/// The GPU enhancement chain (same parameters and results as `fluoro_enhance::Enhancer`).
pub struct GpuEnhancer {
    ctx: GpuContext,
    params: EnhanceParams,
    m: Modules,
    u: Uniforms,
    sized: Option<Sized>,
    primed: bool,
    /// Whether `gate` holds the scale measured on the last frame (the CPU path's
    /// `GateScale::FromPrevious`).
    gate_measured: bool,
    current: usize,
    /// Read-back slots of the submitted frames not yet collected, oldest first.
    in_flight: std::collections::VecDeque<usize>,
    submitted: u64,
    mask_copy: Vec<u8>,
    readback: Vec<f32>,
    denoised: Frame<f32>,
    output: Frame<f32>,
    profiler: Option<crate::profile::GpuProfiler>,
}

impl GpuEnhancer {
    /// Compiles every pipeline on `ctx`.
    pub fn new(ctx: GpuContext, params: EnhanceParams) -> Self {
        let m = Modules::new(&ctx.device);
        let u = Uniforms::new(&ctx.device, &ctx.queue, &params);
        Self {
            profiler: None,
            u,
            m,
            ctx,
            params,
            sized: None,
            primed: false,
            gate_measured: false,
            in_flight: std::collections::VecDeque::with_capacity(2),
            submitted: 0,
            current: 0,
            mask_copy: Vec::new(),
            readback: Vec::new(),
            denoised: Frame::new(0, 0),
            output: Frame::new(0, 0),
        }
    }

    /// Times every stage with timestamp queries from the next frame on (costs a small
    /// read-back per frame, so it is off unless asked for, e.g. by `fluoro bench`); a device
    /// without timestamps stays unprofiled.
    pub fn set_profiling(&mut self, on: bool) {
        if on != self.profiler.is_some() {
            self.profiler = if on {
                crate::profile::GpuProfiler::new(&self.ctx)
            } else {
                None
            };
        }
    }

    /// Whether per-stage timing is on.
    pub fn profiling(&self) -> bool {
        self.profiler.is_some()
    }

    /// GPU milliseconds per stage of the last frame (`profile::STAGES`), when profiling on
    /// a device that records timestamps.
    pub fn stage_ms(&self) -> Option<[f64; 6]> {
        self.profiler.as_ref().map(|p| p.stage_ms())
    }

    /// The context (adapter information).
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The parameters.
    pub fn params(&self) -> &EnhanceParams {
        &self.params
    }

    /// Forgets the temporal history.
    pub fn reset(&mut self) {
        self.primed = false;
        self.gate_measured = false;
    }

    /// The denoised frame (after temporal and spatial filtering) of the last call.
    pub fn denoised(&self) -> &Frame<f32> {
        &self.denoised
    }

    /// The enhanced output of the last call.
    pub fn output(&self) -> &Frame<f32> {
        &self.output
    }

    fn ensure(&mut self, w: usize, h: usize) -> Result<(), GpuError> {
        if self.sized.as_ref().is_some_and(|s| s.w == w && s.h == h) {
            return Ok(());
        }
        let bytes = (w * h * 4) as u64;
        let limit = self.ctx.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(GpuError::TooLarge {
                width: w,
                height: h,
                limit,
            });
        }
        self.sized = Some(Sized::new(
            &self.ctx.device,
            &self.m,
            &self.u,
            &self.params,
            (w, h),
        ));
        self.primed = false;
        self.gate_measured = false;
        self.mask_copy.clear();
        Ok(())
    }

    /// Enhances one frame: [`GpuEnhancer::submit`] then [`GpuEnhancer::collect`]. Supported
    /// configuration: every stage of `EnhanceParams::default()` enabled (the GPU chain
    /// always runs the full chain; disabled stages are refused).
    pub fn process(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> Result<(), GpuError> {
        self.submit(input, mask)?;
        self.collect().map(|_| ())
    }

    /// Frames submitted and not yet collected (0, 1 or 2).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Uploads `input` and queues its whole chain without waiting for it, so that the
    /// device works on it while the caller analyses the previous frame (collected with
    /// [`GpuEnhancer::collect`], oldest first). At most two frames are in flight: a third
    /// submission first collects the oldest (its results are then the current ones). The
    /// queue runs submissions in order, so the recursive filter sees the frames in order
    /// and each frame's uniforms are the ones written before its submission.
    pub fn submit(&mut self, input: &Frame<f32>, mask: &Frame<u8>) -> Result<(), GpuError> {
        let (w, h) = input.size();
        if self.sized.as_ref().is_some_and(|s| (s.w, s.h) != (w, h)) {
            // a new size rebuilds the buffers: finish what is queued on the old ones
            while self.collect()? {}
        }
        if self.in_flight.len() == 2 {
            self.collect()?;
        }
        if self.profiler.is_some() && !self.in_flight.is_empty() {
            // one set of timestamp queries: profiled frames run one at a time
            self.collect()?;
        }
        self.ensure(w, h)?;
        let p = self.params.clone();
        let (Some(tp), Some(bp), Some(cp), Some(dp)) = (p.temporal, p.spatial, p.clahe, p.detail)
        else {
            return Err(GpuError::Readback(
                "the GPU chain runs every stage: enable temporal, spatial, CLAHE and detail".into(),
            ));
        };
        let s = self.sized.as_ref().expect("ensured");
        let q = &self.ctx.queue;
        let d = &self.ctx.device;
        q.write_buffer(&s.input, 0, bytemuck::cast_slice(input.data()));
        if self.mask_copy.as_slice() != mask.data() {
            let mf: Vec<f32> = mask.data().iter().map(|&m| f32::from(m)).collect();
            q.write_buffer(&s.mask, 0, bytemuck::cast_slice(&mf));
            self.mask_copy = mask.data().to_vec();
        }
        let groups = (w * h).div_ceil(256) as u32;
        q.write_buffer(
            &self.u.norm,
            0,
            bytemuck::bytes_of(&NormU {
                width: w as u32,
                height: h as u32,
                linear: u32::from(p.intensity == Intensity::Linear),
                groups,
                log_scale: LOG_SCALE,
                ..Default::default()
            }),
        );
        let (gx, gy) = (w.div_ceil(16) as u32, h.div_ceil(16) as u32);
        let next = 1 - self.current;
        if let Some(p) = &mut self.profiler {
            p.begin_frame();
        }
        let mut enc = d.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("chain-a"),
        });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("normalize"),
                timestamp_writes: self.profiler.as_mut().map(|p| p.writes(0)),
            });
            pass.set_bind_group(0, &s.bg_norm, &[]);
            pass.set_pipeline(&self.m.norm.pipelines[0]);
            pass.dispatch_workgroups(groups, 1, 1);
            pass.set_pipeline(&self.m.norm.pipelines[1]);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&self.m.norm.pipelines[2]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        let filtering = self.primed && tp.recursion > 0.0;
        if filtering {
            let (step, sw, _) = s.sample_grid;
            q.write_buffer(
                &self.u.temp,
                0,
                bytemuck::bytes_of(&TempU {
                    width: w as u32,
                    height: h as u32,
                    step,
                    sw,
                    a: tp.recursion.clamp(0.0, 0.99),
                    motion_k: tp.motion_k,
                    n: s.n_samples as u32,
                    _p: 0.0,
                }),
            );
            let (_, sw, sh) = s.sample_grid;
            let sample = |pass: &mut wgpu::ComputePass| {
                pass.set_pipeline(&self.m.temporal.pipelines[0]);
                pass.dispatch_workgroups(sw.div_ceil(16), sh.div_ceil(16), 1);
                pass.set_pipeline(&self.m.temporal.pipelines[3]);
                pass.dispatch_workgroups(1, 1, 1);
            };
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("temporal"),
                    timestamp_writes: self.profiler.as_mut().map(|p| p.writes(2)),
                });
                pass.set_bind_group(0, &s.bg_temporal[self.current], &[]);
                pass.set_pipeline(&self.m.temporal.pipelines[1]);
                pass.dispatch_workgroups(gx, gy, 1);
                if !self.gate_measured {
                    // the first frame after a reset gates itself
                    sample(&mut pass);
                }
                pass.set_pipeline(&self.m.temporal.pipelines[2]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            // the gate of the next frame, from this frame's horizontal sums
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gate"),
                timestamp_writes: self.profiler.as_mut().map(|p| p.writes(1)),
            });
            pass.set_bind_group(0, &s.bg_temporal[self.current], &[]);
            sample(&mut pass);
            self.gate_measured = true;
        } else {
            enc.copy_buffer_to_buffer(&s.norm, 0, &s.hist[next], 0, (w * h * 4) as u64);
            self.gate_measured = false;
        }
        self.primed = true;
        // bilateral: from the new history into den
        q.write_buffer(
            &self.u.bil,
            0,
            bytemuck::bytes_of(&BilU::new(w, h, &bp, true)),
        );
        // CLAHE
        let (tx, ty) = (cp.tiles_x.clamp(1, w), cp.tiles_y.clamp(1, h));
        let (lo, hi) = (p.range.0, p.range.1.max(p.range.0 + 1e-3));
        let bins = cp.bins.max(2);
        q.write_buffer(
            &self.u.clahe,
            0,
            bytemuck::bytes_of(&ClaheU {
                width: w as u32,
                height: h as u32,
                tx: tx as u32,
                ty: ty as u32,
                tw: w.div_ceil(tx) as u32,
                th: h.div_ceil(ty) as u32,
                bins: bins as u32,
                _p0: 0,
                lo,
                hi,
                scale: bins as f32 / (hi - lo),
                clip: cp.clip_limit,
            }),
        );
        // detail
        let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
        let (qw, qh) = (hw.div_ceil(2), hh.div_ceil(2));
        // the kernels were uploaded once, in `new`
        let (rf, rc) = self.u.kernel_radii;
        let conv = [
            (w, h, rf, 0),
            (w, h, rf, 1),
            (qw, qh, rc, 0),
            (qw, qh, rc, 1),
        ];
        for (u, (cw, ch, r, axis)) in self.u.conv.iter().zip(conv) {
            q.write_buffer(u, 0, bytemuck::bytes_of(&ConvU::new(cw, ch, r, axis)));
        }
        q.write_buffer(
            &self.u.detail,
            0,
            bytemuck::bytes_of(&DetailU {
                width: w as u32,
                height: h as u32,
                hw: hw as u32,
                hh: hh as u32,
                gf: dp.fine_gain,
                gc: dp.coarse_gain,
                qw: qw as u32,
                qh: qh as u32,
            }),
        );
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bilateral"),
                timestamp_writes: self.profiler.as_mut().map(|p| p.writes(3)),
            });
            pass.set_bind_group(0, &s.bg_bilateral[next], &[]);
            pass.set_pipeline(&self.m.bilateral.pipelines[0]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("clahe"),
                timestamp_writes: self.profiler.as_mut().map(|p| p.writes(4)),
            });
            pass.set_bind_group(0, &s.bg_clahe, &[]);
            pass.set_pipeline(&self.m.clahe.pipelines[0]);
            pass.dispatch_workgroups(((tx * ty * bins) as u32).div_ceil(256), 1, 1);
            pass.set_pipeline(&self.m.clahe.pipelines[1]);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_pipeline(&self.m.clahe.pipelines[2]);
            pass.dispatch_workgroups((tx * ty) as u32, 1, 1);
            pass.set_pipeline(&self.m.clahe.pipelines[3]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("detail"),
                timestamp_writes: self.profiler.as_mut().map(|p| p.writes(5)),
            });
            pass.set_pipeline(&self.m.conv.pipelines[0]);
            pass.set_bind_group(0, &s.bg_conv[0], &[]);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_bind_group(0, &s.bg_conv[1], &[]);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_bind_group(0, &s.bg_detail, &[]);
            pass.set_pipeline(&self.m.detail.pipelines[0]);
            let (qx, qy) = (qw.div_ceil(16) as u32, qh.div_ceil(16) as u32);
            pass.dispatch_workgroups(qx, qy, 1);
            pass.set_pipeline(&self.m.conv.pipelines[0]);
            pass.set_bind_group(0, &s.bg_conv[2], &[]);
            pass.dispatch_workgroups(qx, qy, 1);
            pass.set_bind_group(0, &s.bg_conv[3], &[]);
            pass.dispatch_workgroups(qx, qy, 1);
            pass.set_bind_group(0, &s.bg_detail, &[]);
            pass.set_pipeline(&self.m.detail.pipelines[1]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        let slot = (self.submitted % 2) as usize;
        let (stage_den, stage_out) = &s.stage[slot];
        enc.copy_buffer_to_buffer(&s.den_ref, 0, stage_den, 0, (w * h * 4) as u64);
        enc.copy_buffer_to_buffer(&s.out, 0, stage_out, 0, (w * h * 4) as u64);
        if let Some(p) = &self.profiler {
            p.resolve(&mut enc);
        }
        q.submit([enc.finish()]);
        self.current = next;
        self.submitted += 1;
        self.in_flight.push_back(slot);
        Ok(())
    }

    /// Waits for the oldest submitted frame and reads its denoised and enhanced frames back
    /// ([`GpuEnhancer::denoised`], [`GpuEnhancer::output`]). `false` when nothing was in
    /// flight (the previous results stay).
    pub fn collect(&mut self) -> Result<bool, GpuError> {
        let Some(slot) = self.in_flight.pop_front() else {
            return Ok(false);
        };
        let s = self.sized.as_ref().expect("a frame was submitted");
        let (w, h) = (s.w, s.h);
        let (stage_den, stage_out) = &s.stage[slot];
        self.ctx.map_read(stage_den, w * h, &mut self.readback)?;
        self.denoised.reshape(w, h);
        self.denoised
            .data_mut()
            .copy_from_slice(&self.readback[..w * h]);
        self.ctx.map_read(stage_out, w * h, &mut self.readback)?;
        self.output.reshape(w, h);
        self.output
            .data_mut()
            .copy_from_slice(&self.readback[..w * h]);
        if let Some(p) = &mut self.profiler {
            p.read(&self.ctx)?;
        }
        Ok(true)
    }
}
