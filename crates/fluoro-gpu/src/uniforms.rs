//! Uniform blocks of the shaders in `shaders/`, laid out as the WGSL `Params` structs
//! (16-byte aligned), shared by the chain and the single-stage filters.

use bytemuck::{Pod, Zeroable};
use fluoro_enhance::bilateral::BilateralParams;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct NormU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) linear: u32,
    pub(crate) groups: u32,
    pub(crate) log_scale: f32,
    pub(crate) _p: [f32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct TempU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) step: u32,
    pub(crate) sw: u32,
    pub(crate) a: f32,
    pub(crate) motion_k: f32,
    pub(crate) n: u32,
    pub(crate) _p: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct BilU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) radius: u32,
    /// 1: pixels outside the mask keep their value (the chain's `bilateral_in_field`).
    pub(crate) masked: u32,
    pub(crate) inv_2ss: f32,
    pub(crate) range_c: f32,
    pub(crate) _p: [f32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct ConvU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) radius: u32,
    pub(crate) axis: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct ClaheU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) tx: u32,
    pub(crate) ty: u32,
    pub(crate) tw: u32,
    pub(crate) th: u32,
    pub(crate) bins: u32,
    pub(crate) _p0: u32,
    pub(crate) lo: f32,
    pub(crate) hi: f32,
    pub(crate) scale: f32,
    pub(crate) clip: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
pub(crate) struct DetailU {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The source's 2x2 means' size.
    pub(crate) hw: u32,
    pub(crate) hh: u32,
    pub(crate) gf: f32,
    pub(crate) gc: f32,
    /// The coarse band's grid (the source's 4x4 means).
    pub(crate) qw: u32,
    pub(crate) qh: u32,
}

impl BilU {
    /// The bilateral filter's block for a `w` x `h` frame; `masked`: only inside the
    /// mask bound beside it.
    pub(crate) fn new(w: usize, h: usize, p: &BilateralParams, masked: bool) -> Self {
        Self {
            width: w as u32,
            height: h as u32,
            radius: p.radius as u32,
            masked: u32::from(masked),
            inv_2ss: 1.0 / (2.0 * p.sigma_space * p.sigma_space),
            range_c: 1.0 / (2.0 * p.sigma_range * p.sigma_range),
            _p: [0.0; 2],
        }
    }
}

impl ConvU {
    /// One pass (`axis` 0 horizontal, 1 vertical) of a separable blur of `radius`.
    pub(crate) fn new(w: usize, h: usize, radius: usize, axis: u32) -> Self {
        Self {
            width: w as u32,
            height: h as u32,
            radius: radius as u32,
            axis,
        }
    }
}
