//! The WGSL sources, embedded at build time from the workspace's `shaders/` folder.

/// Bilateral filter (with the common prelude).
pub const BILATERAL: &str = concat!(
    include_str!("../../../shaders/common.wgsl"),
    include_str!("../../../shaders/bilateral.wgsl")
);
/// Separable symmetric convolution, one axis per dispatch (with the common prelude).
pub const GAUSSIAN: &str = concat!(
    include_str!("../../../shaders/common.wgsl"),
    include_str!("../../../shaders/gaussian.wgsl")
);

/// Normalisation (log of linear data, masked mean fill).
pub const NORMALIZE: &str = include_str!("../../../shaders/normalize.wgsl");
/// Motion-adaptive recursive filter.
pub const TEMPORAL: &str = include_str!("../../../shaders/temporal.wgsl");
/// CLAHE.
pub const CLAHE: &str = include_str!("../../../shaders/clahe.wgsl");
/// Two-band detail enhancement.
pub const DETAIL: &str = include_str!("../../../shaders/detail.wgsl");

/// Every shader with its file name (for validation).
pub const ALL: &[(&str, &str)] = &[
    ("bilateral.wgsl", BILATERAL),
    ("gaussian.wgsl", GAUSSIAN),
    ("normalize.wgsl", NORMALIZE),
    ("temporal.wgsl", TEMPORAL),
    ("clahe.wgsl", CLAHE),
    ("detail.wgsl", DETAIL),
];
