//! Individual GPU stages with persistent buffers: upload a frame, run, read back.

use crate::context::{GpuContext, GpuError};
use crate::layout::{Module, Slot};
use crate::shaders;
use crate::uniforms::{BilU, ConvU};
use fluoro_core::Frame;
use fluoro_enhance::bilateral::BilateralParams;

/// Buffers sized for one frame size.
struct Buffers {
    width: usize,
    height: usize,
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
    staging: wgpu::Buffer,
}

/// Compiled pipelines plus per-size buffers.
pub struct GpuFilters {
    ctx: GpuContext,
    bilateral: Module,
    conv: Module,
    bil_uniform: wgpu::Buffer,
    conv_uniform: [wgpu::Buffer; 2],
    kernel: wgpu::Buffer,
    bufs: Option<Buffers>,
    readback: Vec<f32>,
}

fn uniform(device: &wgpu::Device, size: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("uniform"),
        size,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl GpuFilters {
    /// Compiles the pipelines on `ctx`.
    pub fn new(ctx: GpuContext) -> Self {
        let d = &ctx.device;
        let (u, r, w) = (Slot::Uniform, Slot::Read, Slot::Write);
        let bilateral = Module::new(d, "bilateral", shaders::BILATERAL, &[u, r, w, r], &["main"]);
        let conv = Module::new(d, "gaussian", shaders::GAUSSIAN, &[u, r, w, r], &["main"]);
        let bil_uniform = uniform(d, std::mem::size_of::<BilU>() as u64);
        let conv_uniform = [uniform(d, 16), uniform(d, 16)];
        let kernel = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel"),
            size: 4 * 256,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            ctx,
            bilateral,
            conv,
            bil_uniform,
            conv_uniform,
            kernel,
            bufs: None,
            readback: Vec::new(),
        }
    }

    /// The context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    fn ensure(&mut self, width: usize, height: usize) -> Result<(), GpuError> {
        if self
            .bufs
            .as_ref()
            .is_some_and(|b| b.width == width && b.height == height)
        {
            return Ok(());
        }
        let bytes = (width * height * 4) as u64;
        let limit = self.ctx.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(GpuError::TooLarge {
                width,
                height,
                limit,
            });
        }
        let d = &self.ctx.device;
        let storage = |label| {
            d.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let staging = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.bufs = Some(Buffers {
            width,
            height,
            a: storage("a"),
            b: storage("b"),
            c: storage("c"),
            staging,
        });
        Ok(())
    }

    fn groups(width: usize, height: usize) -> (u32, u32) {
        (width.div_ceil(16) as u32, height.div_ceil(16) as u32)
    }

    /// Bilateral filter of `src` into `out` (same parameters as the CPU stage).
    pub fn bilateral(
        &mut self,
        src: &Frame<f32>,
        p: &BilateralParams,
        out: &mut Frame<f32>,
    ) -> Result<(), GpuError> {
        let (w, h) = src.size();
        self.ensure(w, h)?;
        let b = self.bufs.as_ref().expect("ensured");
        let q = &self.ctx.queue;
        q.write_buffer(&b.a, 0, bytemuck::cast_slice(src.data()));
        q.write_buffer(
            &self.bil_uniform,
            0,
            bytemuck::bytes_of(&BilU::new(w, h, p, false)),
        );
        // unmasked: the mask slot is bound to the source, never read
        let bg = self
            .bilateral
            .bind(&self.ctx.device, &[&self.bil_uniform, &b.a, &b.b, &b.a]);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("bilateral"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("bilateral"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.bilateral.pipelines[0]);
            pass.set_bind_group(0, &bg, &[]);
            let (gx, gy) = Self::groups(w, h);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        q.submit([enc.finish()]);
        self.download(w, h, out)
    }

    /// Separable blur of `src` with the symmetric `kernel` into `out`.
    pub fn blur(
        &mut self,
        src: &Frame<f32>,
        kernel: &[f32],
        out: &mut Frame<f32>,
    ) -> Result<(), GpuError> {
        let (w, h) = src.size();
        self.ensure(w, h)?;
        let b = self.bufs.as_ref().expect("ensured");
        let q = &self.ctx.queue;
        q.write_buffer(&b.a, 0, bytemuck::cast_slice(src.data()));
        let k: Vec<f32> = kernel.iter().copied().take(256).collect();
        q.write_buffer(&self.kernel, 0, bytemuck::cast_slice(&k));
        let r = k.len() / 2;
        for (axis, u) in self.conv_uniform.iter().enumerate() {
            q.write_buffer(u, 0, bytemuck::bytes_of(&ConvU::new(w, h, r, axis as u32)));
        }
        let d = &self.ctx.device;
        let bg0 = self
            .conv
            .bind(d, &[&self.conv_uniform[0], &b.a, &b.c, &self.kernel]);
        let bg1 = self
            .conv
            .bind(d, &[&self.conv_uniform[1], &b.c, &b.b, &self.kernel]);
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("blur"),
            });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("blur"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.conv.pipelines[0]);
            let (gx, gy) = Self::groups(w, h);
            pass.set_bind_group(0, &bg0, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
            pass.set_bind_group(0, &bg1, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        q.submit([enc.finish()]);
        self.download(w, h, out)
    }

    fn download(&mut self, w: usize, h: usize, out: &mut Frame<f32>) -> Result<(), GpuError> {
        let b = self.bufs.as_ref().expect("ensured");
        self.ctx
            .read_f32(&b.b, &b.staging, w * h, &mut self.readback)?;
        out.reshape(w, h);
        out.data_mut().copy_from_slice(&self.readback[..w * h]);
        Ok(())
    }
}
