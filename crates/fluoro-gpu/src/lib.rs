//! GPU compute with wgpu: the enhancement stages as WGSL compute shaders (in the
//! workspace's `shaders/` folder), producing the CPU path's results within stated
//! tolerances.
//!
//! [`GpuContext`] owns the device; [`filters::GpuFilters`] runs individual stages with
//! buffers and pipelines created once and reused for every frame of the same size.

pub mod chain;
pub mod context;
pub mod filters;
pub mod layout;
pub mod profile;
pub mod shaders;
mod uniforms;

pub use context::{GpuContext, GpuError};
