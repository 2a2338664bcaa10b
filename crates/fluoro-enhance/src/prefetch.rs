//! Software prefetch of a slice's cache lines.

/// Asks the CPU to bring `s`'s cache lines into L1 ahead of use (no-op off x86_64).
#[inline]
#[allow(unsafe_code)]
pub fn prefetch<T>(s: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = s.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(s);
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is
            // part of every x86_64 CPU
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}
