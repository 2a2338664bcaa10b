//! Branch-free math the compiler can vectorise.

/// `t` as an integer, for an integer-valued `t` in `[0, 2^23)`: `t + 2^23` has the integer
/// in its mantissa bits, so this is exact and vectorises, where the saturating `as` casts
/// compile to one scalar conversion per value. (NaN gives a value whose low byte is 0.)
#[inline(always)]
pub fn small_int_bits(t: f32) -> u32 {
    const MAGIC: f32 = 8_388_608.0; // 2^23
    (t + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits())
}

/// `exp(x)` for `x <= 0` (clamped below at -87), relative error < 2e-5 (limited by rounding
/// `x log2 e` in f32): [`exp2_neg`] of `x log2 e`.
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    exp2_neg(x * std::f32::consts::LOG2_E)
}

/// `2^t` for `t <= 0` (clamped below at -126), relative error < 4e-6: an integer power built
/// from exponent bits times a degree-4 polynomial on [-0.5, 0.5]. Rounding uses the
/// 1.5 * 2^23 trick instead of `floor`, which has no SSE2 instruction and would stop the
/// loop from vectorising. The polynomial uses `mul_add`: one instruction per degree where
/// the CPU has FMA (the callers are compiled for it), and the same correctly rounded result
/// where it has not.
#[inline(always)]
pub fn exp2_neg(t: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let t = t.max(-126.0);
    let r = t + MAGIC;
    let f = t - (r - MAGIC);
    let i = (r.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    // degree 4, least squares on Chebyshev nodes: 3.6e-6 relative on [-0.5, 0.5], below the
    // f32 rounding of `x log2 e` (degree 6 bought nothing)
    let p = f
        .mul_add(0.009_672_17, 0.055_922_04)
        .mul_add(f, 0.240_222_3)
        .mul_add(f, 0.693_121)
        .mul_add(f, 1.0);
    // times 2^i by adding i to the exponent field: an integer add, where the multiply by
    // 2^i took a multiply unit (the bilateral filter's pair weights: 4% faster); the same
    // bits, as p * 2^i is a normal number for every t >= -126 (i = -126 only with f = 0,
    // p = 1)
    f32::from_bits(p.to_bits().wrapping_add((i as u32) << 23))
}

/// [`exp2_neg`] as it was written first, multiplying by `2^i`: the reference its exponent
/// add must match bit for bit.
#[cfg(test)]
fn exp2_neg_multiplying(t: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    let t = t.max(-126.0);
    let r = t + MAGIC;
    let f = t - (r - MAGIC);
    let i = (r.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let p = f
        .mul_add(0.009_672_17, 0.055_922_04)
        .mul_add(f, 0.240_222_3)
        .mul_add(f, 0.693_121)
        .mul_add(f, 1.0);
    p * f32::from_bits((i.wrapping_add(127) as u32) << 23)
}

/// `ln(x)` for a positive normal `x`, relative error below 2e-7 (1.1e-7 measured): the
/// exponent bits give `e` and a mantissa `m` in [sqrt(1/2), sqrt(2)), and `ln m =
/// 2 atanh(z)`, `z = (m - 1) / (m + 1)`, `|z| < 0.172`, by its series to `z^9` (the next
/// term is below 4e-9). Every step vectorises, where `f32::ln` is a libm call per value
/// (about 1.4 ms per 1024 x 1024 frame).
#[inline(always)]
pub fn ln_pos(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let p = z2
        .mul_add(1.0 / 9.0, 1.0 / 7.0)
        .mul_add(z2, 1.0 / 5.0)
        .mul_add(z2, 1.0 / 3.0)
        .mul_add(z2, 1.0);
    (2.0 * z).mul_add(p, e as f32 * std::f32::consts::LN_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_close_to_std() {
        let mut worst = 0.0f64;
        // every stored value a 16-bit detector gives, and values around powers of two and
        // sqrt(2), where the mantissa range switches
        let mut xs: Vec<f32> = (1..=65535).map(|v| v as f32).collect();
        for k in -20..40 {
            let p = 2f32.powi(k);
            for v in [p, p * std::f32::consts::SQRT_2, 1.2345 * p] {
                xs.extend([v.next_down(), v, v.next_up()]);
            }
        }
        for x in xs {
            let want = f64::from(x).ln();
            let err = (f64::from(ln_pos(x)) - want).abs() / want.abs().max(1e-3);
            worst = worst.max(err);
        }
        assert!(worst < 2e-7, "{worst}");
    }

    #[test]
    fn close_to_std_exp() {
        let mut worst = 0.0f32;
        for k in 0..20_000 {
            let x = -(k as f32) * 0.004;
            let rel = (exp_neg(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
        }
        assert!(worst < 2e-5, "{worst}");
    }

    /// The exponent add gives the multiply's bits over the domain, t <= 0: every 251st f32
    /// from 0 down to -2 (where most of them lie), a fine grid down to -130, both sides of
    /// every integer and half-integer (where the rounding switches) and of the clamp, and
    /// the infinity below and NaN (clamped).
    #[test]
    fn exponent_add_equals_the_multiply() {
        let mut ts: Vec<f32> = Vec::new();
        let (zero, two) = ((-0.0f32).to_bits(), (-2.0f32).to_bits());
        ts.extend((zero..=two).step_by(251).map(f32::from_bits));
        ts.extend((0..1_000_000u32).map(|k| -(k as f32) * 1.3e-4));
        for n in 0..=130 {
            let v = -(n as f32);
            for x in [v, v - 0.5, v + 0.5] {
                ts.extend([x.next_down(), x, x.next_up()]);
            }
        }
        ts.extend([-126.0, -125.5, -126.5, f32::NEG_INFINITY, f32::NAN]);
        for t in ts.into_iter().filter(|t| t.is_nan() || *t <= 0.0) {
            let (got, want) = (exp2_neg(t), exp2_neg_multiplying(t));
            assert_eq!(got.to_bits(), want.to_bits(), "{t}: {got} vs {want}");
        }
    }

    #[test]
    fn exp2_close_to_std() {
        let mut worst = 0.0f64;
        for k in 0..20_000 {
            let t = -(k as f32) * 0.006;
            let want = f64::from(t).exp2();
            worst = worst.max((f64::from(exp2_neg(t)) - want).abs() / want);
        }
        assert!(worst < 4e-6, "{worst}");
    }
}
