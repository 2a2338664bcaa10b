//! Chunk-parallel loops whose per-worker scratch lives across frames. rayon's
//! `for_each_init` builds a fresh scratch for every split of the work, i.e. allocates every
//! frame; here the work is cut into a fixed number of bands (4 per thread, for balance) and
//! each band owns one scratch value kept by the caller, so the steady state allocates nothing.

use rayon::prelude::*;

/// Runs `f` on a rayon worker thread, in place when called on one already.
///
/// Called from outside the pool, every parallel loop hands its work to the workers and
/// puts the caller to sleep until they finish: about 20-30 us per loop on a two-core VM
/// (an empty 8-item loop measured 22-33 us from outside the pool, 0.1-0.2 us inside). A
/// stage of several loops pays that once through here.
pub fn in_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::join(f, || ()).0
}

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
    fn in_pool_runs_on_a_worker_and_in_place_on_one() {
        // the test thread is not one of the pool's
        assert_eq!(rayon::current_thread_index(), None);
        let on = in_pool(|| {
            let here = rayon::current_thread_index();
            // called again on a worker, it stays on that worker
            (here, in_pool(rayon::current_thread_index))
        });
        assert!(on.0.is_some(), "{on:?}");
        assert_eq!(on.0, on.1);
        // its result and the closure's borrows come back
        let mut v = vec![1, 2];
        let n = in_pool(|| {
            v.push(3);
            v.len()
        });
        assert_eq!((n, v.len()), (3, 3));
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
