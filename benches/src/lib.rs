//! Benchmark helpers shared by the criterion benches and the `roofline` program.
//!
//! - [`machine`]: measured FMA peak and copy bandwidth of this machine.
//! - [`roofline`]: the table of cases (`Case`) timed against those limits.

pub mod machine;
pub mod roofline;
pub mod s2_step;

use std::time::Instant;

/// Median wall time in seconds of `runs` calls of `f` (after one warm-up call).
pub fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

/// Deterministic pseudo-random f32 values in [-1, 1) (benchmark inputs).
pub fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = kernels::testing::TestRng::new(seed);
    rng.vec_f32(n)
}
