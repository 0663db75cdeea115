//! Measured limits of this machine: FMA throughput and memory copy bandwidth.
//!
//! The numbers are measured, never assumed: a register-resident FMA loop with many independent
//! accumulators (so latency is hidden and only the FMA ports limit it), and a large buffer copy
//! (bytes counted as read + written; the write-allocate traffic of plain stores is not counted).

use std::hint::black_box;
use std::time::Instant;

/// Measured limits, per core (1 thread) and in total (all kernel threads).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Which FMA loop was measured (`"avx512"`, `"avx2+fma"` or `"scalar"`).
    pub isa: &'static str,
    pub threads: usize,
    pub fma_gflops_1t: f64,
    pub fma_gflops_all: f64,
    pub copy_gbs_1t: f64,
    pub copy_gbs_all: f64,
}

/// Independent accumulators in the FMA loops (enough to cover 2 ports × 4-cycle latency twice).
const ACC: usize = 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_loop_avx512(iters: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let vx = _mm512_set1_ps(x);
    let vy = _mm512_set1_ps(black_box(0.999_999));
    let mut acc = [_mm512_set1_ps(0.5); ACC];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm512_fmadd_ps(*a, vy, vx);
        }
    }
    let mut s = _mm512_setzero_ps();
    for a in acc {
        s = _mm512_add_ps(s, a);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(iters: usize, x: f32) -> f32 {
    use std::arch::x86_64::*;
    let vx = _mm256_set1_ps(x);
    let vy = _mm256_set1_ps(black_box(0.999_999));
    let mut acc = [_mm256_set1_ps(0.5); ACC];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(*a, vy, vx);
        }
    }
    let mut out = [0f32; 8];
    let mut s = _mm256_setzero_ps();
    for a in acc {
        s = _mm256_add_ps(s, a);
    }
    // SAFETY: `out` holds 8 f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
    out.iter().sum()
}

fn fma_loop_scalar(iters: usize, x: f32) -> f32 {
    let y = black_box(0.999_999f32);
    let mut acc = [0.5f32; ACC];
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = *a * y + x;
        }
    }
    acc.iter().sum()
}

/// (ISA name, flops per iteration, loop) of the widest FMA this CPU has.
fn fma_kernel() -> (&'static str, f64, fn(usize, f32) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: avx512f was detected just above.
            return ("avx512", (ACC * 16 * 2) as f64, |n, x| unsafe { fma_loop_avx512(n, x) });
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: avx2 and fma were detected just above.
            return ("avx2+fma", (ACC * 8 * 2) as f64, |n, x| unsafe { fma_loop_avx2(n, x) });
        }
    }
    ("scalar", (ACC * 2) as f64, fma_loop_scalar)
}

/// Best-of-`reps` FMA throughput in GFLOP/s with `threads` threads each running the loop.
pub fn fma_gflops(threads: usize, iters: usize, reps: usize) -> (&'static str, f64) {
    let (isa, flops_per_iter, f) = fma_kernel();
    let mut best = 0.0f64;
    for _ in 0..reps {
        let t = Instant::now();
        kernels::parallel::par_for(threads, usize::MAX, |i| {
            black_box(f(black_box(iters), 1e-3 * i as f32));
        });
        let dt = t.elapsed().as_secs_f64();
        best = best.max(threads as f64 * iters as f64 * flops_per_iter / dt / 1e9);
    }
    (isa, best)
}

/// Best-of-`reps` copy bandwidth in GB/s (read + write bytes) of a `bytes`-sized f32 buffer copy, using
/// `threads` chunks in parallel (1 = the calling thread).
pub fn copy_gbs(bytes: usize, threads: usize, reps: usize) -> f64 {
    let n = bytes / 4;
    let src: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut dst = vec![0f32; n]; // touched (zeroed pages are faulted in by the first copy below)
    let chunk = n.div_ceil(threads.max(1));
    let copy = |dst: &mut [f32]| {
        if threads <= 1 {
            dst.copy_from_slice(&src);
        } else {
            kernels::parallel::par_chunks_mut(dst, chunk, usize::MAX, |i, d| {
                d.copy_from_slice(&src[i * chunk..i * chunk + d.len()]);
            });
        }
    };
    copy(&mut dst);
    // Best of `reps`: the limit is what the machine can do, not what a busy moment allows.
    let mut t = f64::INFINITY;
    for _ in 0..reps.max(1) {
        let s = Instant::now();
        copy(black_box(&mut dst));
        t = t.min(s.elapsed().as_secs_f64());
    }
    black_box(&dst);
    2.0 * (n * 4) as f64 / t / 1e9
}

/// Measures everything (about 2 s on an idle machine).
pub fn measure() -> Limits {
    let threads = kernels::parallel::num_threads();
    // Many short runs (a few ms each), best kept: on a shared machine a short run is more likely
    // to get a core to itself.
    let iters = 2_000_000;
    let (isa, fma1) = fma_gflops(1, iters, 40);
    let (_, fma_all) = fma_gflops(threads, iters, 40);
    let size = 128 << 20;
    Limits {
        isa,
        threads,
        fma_gflops_1t: fma1,
        fma_gflops_all: fma_all,
        copy_gbs_1t: copy_gbs(size, 1, 8),
        copy_gbs_all: copy_gbs(size, threads, 8),
    }
}
