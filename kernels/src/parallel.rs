//! Thread count and parallel loops used by every kernel.
//!
//! Backed by rayon's global pool. The thread count comes from `MATRYOSHKA_NUM_THREADS` (else
//! `RAYON_NUM_THREADS`, else all cores) and is fixed at the first parallel call.
//! Kernels split work into at most a few tasks per thread and fall back to a plain loop when the work
//! is too small to pay for a fork (the caller passes the work estimate).

use rayon::prelude::*;
use std::sync::Once;

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        let n = std::env::var("MATRYOSHKA_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > 0);
        if let Some(n) = n {
            // Another library may have built the global pool first; then its size wins.
            let _ = rayon::ThreadPoolBuilder::new().num_threads(n).build_global();
        }
    });
}

/// Number of worker threads kernels use.
pub fn num_threads() -> usize {
    init();
    rayon::current_num_threads()
}

/// Below this many scalar operations a kernel runs on the calling thread.
pub const MIN_PARALLEL_WORK: usize = 1 << 15;

/// Runs `f(i)` for every `i in 0..n`, in parallel when `work` (an estimate of the total scalar
/// operations) is large enough and there is more than one task.
pub fn par_for(n: usize, work: usize, f: impl Fn(usize) + Sync + Send) {
    init();
    if n <= 1 || work < MIN_PARALLEL_WORK || rayon::current_num_threads() == 1 {
        (0..n).for_each(f);
    } else {
        (0..n).into_par_iter().for_each(f);
    }
}

/// Splits `data` into chunks of `chunk` elements (the last may be shorter) and runs
/// `f(chunk_index, chunk)` on each, in parallel when `work` is large enough.
pub fn par_chunks_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    init();
    let chunk = chunk.max(1);
    if data.len() <= chunk || work < MIN_PARALLEL_WORK || rayon::current_num_threads() == 1 {
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        data.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// Runs two closures, potentially in parallel.
pub fn join<A: FnOnce() -> RA + Send, B: FnOnce() -> RB + Send, RA: Send, RB: Send>(a: A, b: B) -> (RA, RB) {
    init();
    rayon::join(a, b)
}
