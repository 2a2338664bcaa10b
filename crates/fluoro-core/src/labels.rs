//! Label-map values fixed by the output contract (`labels/NNNNNN.png`).
//!
//! Where structures overlap in projection the higher value wins.

/// Background, and every pixel outside the collimator shutter.
pub const BACKGROUND: u8 = 0;
/// Bone of the posterior arch (laminae, spinous processes).
pub const LAMINA: u8 = 1;
/// Ligamentum flavum.
pub const LIGAMENTUM_FLAVUM: u8 = 2;
/// Epidural contrast.
pub const CONTRAST: u8 = 3;
/// Instrument metal (portal, cannula, trocar, sculptor).
pub const INSTRUMENT: u8 = 4;

/// Human-readable names indexed by label value.
pub const NAMES: [&str; 5] = [
    "background",
    "lamina",
    "ligamentum_flavum",
    "contrast",
    "instrument",
];

/// Combines two labels of one pixel: the higher value wins.
#[inline]
pub fn combine(a: u8, b: u8) -> u8 {
    a.max(b)
}
