//! Individual GPU stages with persistent buffers: upload a frame, run, read back.

use crate::context::{GpuContext, GpuError};
use crate::shaders;
use bytemuck::{Pod, Zeroable};
use fluoro_core::Frame;
use fluoro_enhance::bilateral::BilateralParams;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BilateralUniform {
    width: u32,
    height: u32,
    radius: u32,
    _pad: u32,
    inv_2ss: f32,
    range_c: f32,
    _pad2: f32,
    _pad3: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ConvUniform {
    width: u32,
    height: u32,
    radius: u32,
    axis: u32,
}

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
    bilateral: wgpu::ComputePipeline,
    conv: wgpu::ComputePipeline,
    bil_uniform: wgpu::Buffer,
    conv_uniform: [wgpu::Buffer; 2],
    kernel: wgpu::Buffer,
    bufs: Option<Buffers>,
    readback: Vec<f32>,
}

fn pipeline(device: &wgpu::Device, label: &str, src: &str) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
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
        let bilateral = pipeline(d, "bilateral", shaders::BILATERAL);
        let conv = pipeline(d, "gaussian", shaders::GAUSSIAN);
        let bil_uniform = uniform(d, std::mem::size_of::<BilateralUniform>() as u64);
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

    fn bind(&self, pipe: &wgpu::ComputePipeline, entries: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let layout = pipe.get_bind_group_layout(0);
        let e: Vec<wgpu::BindGroupEntry> = entries
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &e,
            })
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
        let u = BilateralUniform {
            width: w as u32,
            height: h as u32,
            radius: p.radius as u32,
            _pad: 0,
            inv_2ss: 1.0 / (2.0 * p.sigma_space * p.sigma_space),
            range_c: 1.0 / (2.0 * p.sigma_range * p.sigma_range),
            _pad2: 0.0,
            _pad3: 0.0,
        };
        q.write_buffer(&self.bil_uniform, 0, bytemuck::bytes_of(&u));
        let bg = self.bind(&self.bilateral, &[&self.bil_uniform, &b.a, &b.b]);
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
            pass.set_pipeline(&self.bilateral);
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
        let r = (k.len() / 2) as u32;
        for (axis, u) in self.conv_uniform.iter().enumerate() {
            q.write_buffer(
                u,
                0,
                bytemuck::bytes_of(&ConvUniform {
                    width: w as u32,
                    height: h as u32,
                    radius: r,
                    axis: axis as u32,
                }),
            );
        }
        let bg0 = self.bind(
            &self.conv,
            &[&self.conv_uniform[0], &b.a, &b.c, &self.kernel],
        );
        let bg1 = self.bind(
            &self.conv,
            &[&self.conv_uniform[1], &b.c, &b.b, &self.kernel],
        );
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
            pass.set_pipeline(&self.conv);
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
