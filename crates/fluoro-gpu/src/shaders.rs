//! The WGSL sources, embedded at build time from the workspace's `shaders/` folder.

/// Bilateral filter.
pub const BILATERAL: &str = include_str!("../../../shaders/bilateral.wgsl");
/// Separable symmetric convolution (one axis per dispatch).
pub const GAUSSIAN: &str = include_str!("../../../shaders/gaussian.wgsl");

/// Every shader with its file name (for validation).
pub const ALL: &[(&str, &str)] = &[("bilateral.wgsl", BILATERAL), ("gaussian.wgsl", GAUSSIAN)];
