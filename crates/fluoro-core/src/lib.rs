//! Core types shared by every crate of the fluoro pipeline.
//!
//! - [`Frame`]: a dense row-major 2D image, the unit of work of every stage.
//! - [`geometry`]: C-arm geometry and the millimetre scale of the isocentre plane.
//! - [`shutter`]: the collimator shutter and the mask it defines.
//! - [`labels`]: the label-map values fixed by the output contract.
//! - [`record`]: the per-frame result records written to `frames.jsonl`.
//! - [`timing`]: frame times and where they came from.

pub mod frame;
pub mod geometry;
pub mod labels;
pub mod record;
pub mod shutter;
pub mod timing;

pub use frame::Frame;
pub use geometry::{Geometry, MmSource};
pub use shutter::Shutter;
pub use timing::{FrameTiming, TimingSource};
