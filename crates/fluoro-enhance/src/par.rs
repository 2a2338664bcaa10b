//! Chunk-parallel loops whose per-worker scratch lives across frames. rayon's
//! `for_each_init` builds a fresh scratch for every split of the work, i.e. allocates every
//! frame; here the work is cut into a fixed number of bands (4 per thread, for balance) and
//! each band owns one scratch value kept by the caller, so the steady state allocates nothing.

use rayon::prelude::*;

/// Calls `f(index, chunk, scratch)` for every `chunk`-sized piece of `data` in parallel.
/// `scratch` grows (with `S::default()`) only when there are more bands than before; `f`
/// sizes its scratch itself (e.g. `Vec::resize`, which allocates only the first time).
pub fn par_chunks_with<T, S, F>(data: &mut [T], chunk: usize, scratch: &mut Vec<S>, f: F)
where
    T: Send,
    S: Send + Default,
    F: Fn(usize, &mut [T], &mut S) + Sync + Send,
{
    let chunk = chunk.max(1);
    let n = data.len().div_ceil(chunk);
    if n == 0 {
        return;
    }
    let per_band = n.div_ceil((rayon::current_num_threads() * 4).clamp(1, n));
    let bands = n.div_ceil(per_band);
    if scratch.len() < bands {
        scratch.resize_with(bands, S::default);
    }
    data.par_chunks_mut(per_band * chunk)
        .zip(scratch[..bands].par_iter_mut())
        .enumerate()
        .for_each(|(b, (band, s))| {
            for (i, c) in band.chunks_mut(chunk).enumerate() {
                f(b * per_band + i, c, s);
            }
        });
}

/// The first `n` values of `v`, grown with zeros if it is shorter (allocates only when it
/// grows): stale values from earlier use, for buffers the caller overwrites whole.
/// Cheaper than [`zeroed`] in loops that take a buffer per row.
pub fn reused<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::default());
    }
    &mut v[..n]
}

/// `v` resized to `n` zeros (allocates only when it grows).
pub fn zeroed<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.clear();
    v.resize(n, T::default());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_visited_once_with_its_index() {
        for len in [0usize, 1, 7, 64, 1000] {
            let mut data = vec![0usize; len];
            let mut scratch: Vec<Vec<u8>> = Vec::new();
            par_chunks_with(&mut data, 3, &mut scratch, |i, c, s| {
                s.push(1);
                c.iter_mut().for_each(|v| *v += i + 1);
            });
            for (k, v) in data.iter().enumerate() {
                assert_eq!(*v, k / 3 + 1);
            }
            let kept = scratch.len();
            par_chunks_with(&mut data, 3, &mut scratch, |_, _, _| {});
            assert_eq!(scratch.len(), kept, "scratch is reused, not rebuilt");
        }
    }

    #[test]
    fn reused_buffers_grow_but_keep_their_allocation() {
        let mut v = vec![7u32; 4];
        assert_eq!(reused(&mut v, 2), &[7, 7]);
        assert_eq!(reused(&mut v, 6), &[7, 7, 7, 7, 0, 0]);
        let at = v.as_ptr();
        reused(&mut v, 3).fill(1);
        assert_eq!(
            (v.as_ptr(), v.len()),
            (at, 6),
            "no reallocation when it shrinks"
        );
    }
}
