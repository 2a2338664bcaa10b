//! What the GPU chain creates once: its shader modules and uniform buffers, and, per
//! frame size, its buffers and bind groups.

use crate::layout::{Module, Slot};
use crate::shaders;
use fluoro_enhance::EnhanceParams;
use fluoro_enhance::gaussian::kernel;

/// The chain's compiled shader modules.
pub(super) struct Modules {
    pub(super) norm: Module,
    pub(super) temporal: Module,
    pub(super) bilateral: Module,
    pub(super) conv: Module,
    pub(super) clahe: Module,
    pub(super) detail: Module,
}

impl Modules {
    /// Compiles every pipeline.
    pub(super) fn new(d: &wgpu::Device) -> Self {
        use Slot::{Read as R, Uniform as U, Write as W};
        Self {
            norm: Module::new(
                d,
                "normalize",
                shaders::NORMALIZE,
                &[U, R, R, W, W, W],
                &["transform", "reduce", "fill"],
            ),
            temporal: Module::new(
                d,
                "temporal",
                shaders::TEMPORAL,
                &[U, R, R, W, W, R, W, W],
                &["sample_gate", "hsum", "blend", "gate_select"],
            ),
            bilateral: Module::new(d, "bilateral", shaders::BILATERAL, &[U, R, W, R], &["main"]),
            conv: Module::new(d, "gaussian", shaders::GAUSSIAN, &[U, R, W, R], &["main"]),
            clahe: Module::new(
                d,
                "clahe",
                shaders::CLAHE,
                &[U, R, R, W, W, W],
                &["clear", "histogram", "mapping", "apply"],
            ),
            detail: Module::new(
                d,
                "detail",
                shaders::DETAIL,
                &[U, R, R, W, R, W, R],
                &["down", "combine"],
            ),
        }
    }
}

/// The uniform buffers of each dispatch and the detail stage's two blur kernels (which
/// depend only on the parameters: computed and uploaded once).
pub(super) struct Uniforms {
    pub(super) norm: wgpu::Buffer,
    pub(super) temp: wgpu::Buffer,
    pub(super) bil: wgpu::Buffer,
    pub(super) clahe: wgpu::Buffer,
    pub(super) conv: [wgpu::Buffer; 4],
    pub(super) detail: wgpu::Buffer,
    pub(super) k_fine: wgpu::Buffer,
    pub(super) k_coarse: wgpu::Buffer,
    /// The radii of `k_fine` and `k_coarse`.
    pub(super) kernel_radii: (usize, usize),
}

impl Uniforms {
    /// Creates the buffers and uploads the detail kernels of `params`.
    pub(super) fn new(d: &wgpu::Device, queue: &wgpu::Queue, params: &EnhanceParams) -> Self {
        let ub = |l: &str, s: usize| buf(d, l, s as u64, UNIFORM);
        let dp = params.detail.unwrap_or_default();
        let kf = kernel(dp.fine_sigma);
        let quarter_sigma = fluoro_enhance::detail::coarse_quarter_sigma(&dp);
        let kc = kernel(quarter_sigma);
        let (k_fine, k_coarse) = (
            buf(d, "k_fine", 4 * 512, STORAGE),
            buf(d, "k_coarse", 4 * 512, STORAGE),
        );
        queue.write_buffer(&k_fine, 0, bytemuck::cast_slice(&kf[..kf.len().min(512)]));
        queue.write_buffer(&k_coarse, 0, bytemuck::cast_slice(&kc[..kc.len().min(512)]));
        Self {
            norm: ub("u_norm", 32),
            temp: ub("u_temp", 32),
            bil: ub("u_bil", 32),
            clahe: ub("u_clahe", 48),
            conv: [
                ub("u_conv0", 16),
                ub("u_conv1", 16),
                ub("u_conv2", 16),
                ub("u_conv3", 16),
            ],
            detail: ub("u_detail", 32),
            k_fine,
            k_coarse,
            kernel_radii: (kf.len().min(511) / 2, kc.len().min(511) / 2),
        }
    }
}

/// Everything sized for one frame size.
pub(super) struct Sized {
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) input: wgpu::Buffer,
    pub(super) mask: wgpu::Buffer,
    pub(super) norm: wgpu::Buffer,
    pub(super) hist: [wgpu::Buffer; 2],
    pub(super) out: wgpu::Buffer,
    pub(super) den_ref: wgpu::Buffer,
    /// Read-back buffers (denoised, output) per slot: two frames can be in flight.
    pub(super) stage: [(wgpu::Buffer, wgpu::Buffer); 2],
    pub(super) n_samples: usize,
    pub(super) sample_grid: (u32, u32, u32),
    // bind groups
    pub(super) bg_norm: wgpu::BindGroup,
    pub(super) bg_temporal: [wgpu::BindGroup; 2],
    pub(super) bg_bilateral: [wgpu::BindGroup; 2],
    pub(super) bg_clahe: wgpu::BindGroup,
    pub(super) bg_conv: [wgpu::BindGroup; 4],
    pub(super) bg_detail: wgpu::BindGroup,
    /// CLAHE's histograms and tables, held with the bind group that uses them.
    _clahe: [wgpu::Buffer; 2],
}

impl Sized {
    /// Every buffer and bind group for `w` x `h` frames (the caller checks the size
    /// against the device's limits).
    pub(super) fn new(
        d: &wgpu::Device,
        m: &Modules,
        u: &Uniforms,
        params: &EnhanceParams,
        (w, h): (usize, usize),
    ) -> Self {
        let bytes = (w * h * 4) as u64;
        let f = |l: &str| buf(d, l, bytes, STORAGE);
        // the detail stage's coarse grid: the source's 4x4 means
        let qbytes = (w.div_ceil(4) * h.div_ceil(4) * 4) as u64;
        let step = ((w * h / 16_000) as f64).sqrt().max(1.0) as usize;
        let sw = (w.saturating_sub(4)).div_ceil(step).max(1);
        let sh = (h.saturating_sub(4)).div_ceil(step).max(1);
        let n_samples = sw * sh;
        let groups = (w * h).div_ceil(256);
        let partial = buf(d, "partial", (groups * 8) as u64, STORAGE);
        let mean = buf(d, "mean", 16, STORAGE);
        let cp = params.clahe.unwrap_or_default();
        let tiles = cp.tiles_x.clamp(1, w) * cp.tiles_y.clamp(1, h);
        let hist = buf(
            d,
            "clahe_hist",
            (tiles * cp.bins.max(2) * 4) as u64,
            STORAGE,
        );
        let luts = buf(
            d,
            "clahe_luts",
            (tiles * cp.bins.max(2) * 4) as u64,
            STORAGE,
        );
        let (input, mask, norm) = (f("input"), f("mask"), f("norm"));
        let hist_bufs = [f("hist0"), f("hist1")];
        let (hs, den, cl, tmp, fine, out) =
            (f("hs"), f("den"), f("cl"), f("tmp"), f("fine"), f("out"));
        let (quarter, quarter_tmp, quarter_blur) = (
            buf(d, "quarter", qbytes, STORAGE),
            buf(d, "quarter_tmp", qbytes, STORAGE),
            buf(d, "quarter_blur", qbytes, STORAGE),
        );
        let samples = buf(d, "samples", (n_samples * 4) as u64, STORAGE);
        // the gate's result (1 / threshold), computed on the device: nothing is read back
        let gate = buf(d, "gate", 16, STORAGE);
        let bg_norm = m
            .norm
            .bind(d, &[&u.norm, &input, &mask, &norm, &partial, &mean]);
        let bg_temporal = [
            m.temporal.bind(
                d,
                &[
                    &u.temp,
                    &norm,
                    &hist_bufs[0],
                    &hs,
                    &hist_bufs[1],
                    &mask,
                    &samples,
                    &gate,
                ],
            ),
            m.temporal.bind(
                d,
                &[
                    &u.temp,
                    &norm,
                    &hist_bufs[1],
                    &hs,
                    &hist_bufs[0],
                    &mask,
                    &samples,
                    &gate,
                ],
            ),
        ];
        let bg_bilateral = [
            m.bilateral.bind(d, &[&u.bil, &hist_bufs[0], &den, &mask]),
            m.bilateral.bind(d, &[&u.bil, &hist_bufs[1], &den, &mask]),
        ];
        let bg_clahe = m.clahe.bind(d, &[&u.clahe, &den, &mask, &hist, &luts, &cl]);
        let bg_conv = [
            m.conv.bind(d, &[&u.conv[0], &cl, &tmp, &u.k_fine]),
            m.conv.bind(d, &[&u.conv[1], &tmp, &fine, &u.k_fine]),
            m.conv
                .bind(d, &[&u.conv[2], &quarter, &quarter_tmp, &u.k_coarse]),
            m.conv
                .bind(d, &[&u.conv[3], &quarter_tmp, &quarter_blur, &u.k_coarse]),
        ];
        let bg_detail = m.detail.bind(
            d,
            &[&u.detail, &cl, &fine, &quarter, &quarter_blur, &out, &mask],
        );
        Self {
            w,
            h,
            input,
            mask,
            norm,
            hist: hist_bufs,
            out,
            den_ref: den.clone(),
            stage: [
                (
                    buf(d, "stage_den0", bytes, STAGING),
                    buf(d, "stage_out0", bytes, STAGING),
                ),
                (
                    buf(d, "stage_den1", bytes, STAGING),
                    buf(d, "stage_out1", bytes, STAGING),
                ),
            ],
            n_samples,
            sample_grid: (step as u32, sw as u32, sh as u32),
            bg_norm,
            bg_temporal,
            bg_bilateral,
            bg_clahe,
            bg_conv,
            bg_detail,
            _clahe: [hist, luts],
        }
    }
}

/// A buffer of `size` bytes (at least 16).
fn buf(d: &wgpu::Device, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    d.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(16),
        usage,
        mapped_at_creation: false,
    })
}

const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);
const UNIFORM: wgpu::BufferUsages = wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);
const STAGING: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
