//! GEMM tests against the naive f64 oracle (`reference.rs`).
//!
//! Tolerances: f32 results accumulate k products in f32 (in a blocked order), compared with an f64
//! reference: `Tolerance::F32.for_reduction(k)` (rel/abs grown like √k). Inputs are uniform in
//! [-1, 1), so |C| is O(√k) and the bound is meaningful. f64: `Tolerance::F64.for_reduction(k)`.
//! Every f32 case runs with every micro-kernel this CPU supports (AVX-512, AVX2, portable).

use super::cpu::{Kernel, Scalar};
use super::reference::gemm_ref;
use super::simd::{F64_GENERIC, f32_kernels};
use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;

/// One operand layout: offset, row stride, column stride.
type Lay = (usize, usize, usize);

/// Row-major `rows×cols` with `pad` extra columns per row and an offset.
fn row_major(_rows: usize, cols: usize, pad: usize, off: usize) -> Lay {
    (off, cols + pad, 1)
}

/// Column-major (a transposed view) `rows×cols` with `pad` extra rows per column.
fn col_major(rows: usize, _cols: usize, pad: usize, off: usize) -> Lay {
    (off, 1, rows + pad)
}

fn need(rows: usize, cols: usize, l: Lay) -> usize {
    if rows == 0 || cols == 0 { l.0 + 1 } else { l.0 + (rows - 1) * l.1 + (cols - 1) * l.2 + 1 }
}

trait Conv: Scalar {
    fn of(x: f64) -> Self;
    fn tol(k: usize) -> Tolerance;
}
impl Conv for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
    fn tol(k: usize) -> Tolerance {
        Tolerance::F32.for_reduction(k)
    }
}
impl Conv for f64 {
    fn of(x: f64) -> Self {
        x
    }
    fn tol(k: usize) -> Tolerance {
        Tolerance::F64.for_reduction(k)
    }
}

/// Runs `gemm_typed` with `kern` and the oracle on the same random data; checks the whole C buffer
/// (elements outside the C view must be untouched).
#[allow(clippy::too_many_arguments)]
fn check<T: Conv>(
    kern: &Kernel<T>,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    beta: f64,
    la: Lay,
    lb: Lay,
    lc: Lay,
    nan_c: bool,
    seed: u64,
) {
    let mut rng = TestRng::new(seed);
    let a64 = rng.vec_f64(need(m, k, la));
    let b64 = rng.vec_f64(need(k, n, lb));
    let mut c64 = rng.vec_f64(need(m, n, lc));
    // Round inputs to T first so the oracle sees exactly what the kernel sees.
    let a: Vec<T> = a64.iter().map(|&x| T::of(x)).collect();
    let b: Vec<T> = b64.iter().map(|&x| T::of(x)).collect();
    if nan_c {
        for i in 0..m {
            for j in 0..n {
                c64[lc.0 + i * lc.1 + j * lc.2] = f64::NAN;
            }
        }
    }
    let mut c: Vec<T> = c64.iter().map(|&x| T::of(x)).collect();
    let (ar, br, cr): (Vec<f64>, Vec<f64>, Vec<f64>) = (
        a.iter().map(|x| x.to_f64()).collect(),
        b.iter().map(|x| x.to_f64()).collect(),
        c.iter().map(|x| x.to_f64()).collect(),
    );
    let mut want = cr;
    gemm_ref(m, n, k, alpha, &ar, la, &br, lb, beta, &mut want, lc);
    gemm_typed(
        kern,
        1,
        m,
        n,
        k,
        T::of(alpha),
        MatRef { data: &a, offset: la.0, rs: la.1, cs: la.2 },
        0,
        MatRef { data: &b, offset: lb.0, rs: lb.1, cs: lb.2 },
        0,
        T::of(beta),
        MatMut { data: &mut c, offset: lc.0, rs: lc.1, cs: lc.2 },
        0,
    );
    let got: Vec<f64> = c.iter().map(|x| x.to_f64()).collect();
    assert_close(
        &format!("gemm[{}] {m}x{n}x{k} alpha={alpha} beta={beta} A{la:?} B{lb:?} C{lc:?}", kern.name),
        &got,
        &want,
        T::tol(k),
    );
}

#[allow(clippy::too_many_arguments)]
fn all_f32(m: usize, n: usize, k: usize, alpha: f64, beta: f64, la: Lay, lb: Lay, lc: Lay, nan_c: bool) {
    for kern in f32_kernels() {
        check::<f32>(&kern, m, n, k, alpha, beta, la, lb, lc, nan_c, (m * 1000 + n * 10 + k) as u64);
    }
}

fn rm(m: usize, n: usize, k: usize) -> (Lay, Lay, Lay) {
    (row_major(m, k, 0, 0), row_major(k, n, 0, 0), row_major(m, n, 0, 0))
}

#[test]
fn awkward_sizes_every_kernel() {
    // 1, primes, and just around the tile sizes (mr 4/6/14, nr 8/16/32) of every kernel.
    let ms = [1, 3, 5, 6, 7, 13, 14, 15, 29, 31];
    let ns = [1, 7, 15, 16, 17, 31, 32, 33, 47];
    let ks = [1, 2, 17];
    for &m in &ms {
        for &n in &ns {
            for &k in &ks {
                let (la, lb, lc) = rm(m, n, k);
                all_f32(m, n, k, 1.0, 0.0, la, lb, lc, false);
            }
        }
    }
}

#[test]
fn depth_around_kc() {
    // kc = 256 for every kernel: k = 255, 256, 257 and several depth blocks.
    for k in [255, 256, 257, 513] {
        let (m, n) = (15, 33);
        let (la, lb, lc) = rm(m, n, k);
        all_f32(m, n, k, 0.5, 0.25, la, lb, lc, false);
    }
}

#[test]
fn wide_b_crosses_nc() {
    // nc = 1024 (f32): n = 1025 and 2049 need two/three column blocks; k crosses kc too.
    for (m, n, k) in [(5, 1025, 3), (3, 2049, 300)] {
        let (la, lb, lc) = rm(m, n, k);
        all_f32(m, n, k, 1.0, 1.0, la, lb, lc, false);
    }
}

#[test]
fn transposed_and_strided_operands() {
    let (m, n, k) = (23, 37, 41);
    for ta in [false, true] {
        for tb in [false, true] {
            let la = if ta { col_major(m, k, 3, 5) } else { row_major(m, k, 2, 7) };
            let lb = if tb { col_major(k, n, 1, 2) } else { row_major(k, n, 4, 1) };
            // C: padded row-major, column-major and fully strided.
            for lc in [row_major(m, n, 3, 4), col_major(m, n, 2, 1), (3, 2 * n + 5, 2)] {
                all_f32(m, n, k, 1.5, -0.5, la, lb, lc, false);
            }
        }
    }
    // Both strides non-unit on A and B.
    all_f32(m, n, k, 1.0, 0.0, (1, 3 * k, 3), (2, 2, 2 * k + 1), row_major(m, n, 0, 0), false);
}

#[test]
fn alpha_beta_and_nan_in_c() {
    let (m, n, k) = (17, 35, 9);
    let (la, lb, lc) = rm(m, n, k);
    for (alpha, beta) in [(1.0, 0.0), (2.0, 1.0), (-0.5, 3.0), (0.0, 2.0), (0.0, 0.0)] {
        all_f32(m, n, k, alpha, beta, la, lb, lc, false);
    }
    // beta == 0 must ignore NaN in C (the check fails if any NaN survives).
    all_f32(m, n, k, 1.0, 0.0, la, lb, lc, true);
    all_f32(m, n, k, 1.0, 0.0, la, lb, col_major(m, n, 0, 0), true);
    // beta != 0 propagates it: the oracle has NaN there too.
    all_f32(3, 5, 2, 1.0, 1.0, rm(3, 5, 2).0, rm(3, 5, 2).1, rm(3, 5, 2).2, true);
}

#[test]
fn empty_dims() {
    // m == 0 / n == 0: nothing touched (the check covers the whole C buffer).
    for (m, n, k) in [(0, 5, 3), (4, 0, 3), (0, 0, 0)] {
        let (la, lb, lc) = rm(m, n, k);
        all_f32(m, n, k, 1.0, 0.5, la, lb, lc, false);
    }
    // k == 0: C = beta * C (and zero for beta == 0, even over NaN).
    let (la, lb, lc) = rm(6, 7, 0);
    all_f32(6, 7, 0, 1.0, 0.5, la, lb, lc, false);
    all_f32(6, 7, 0, 1.0, 0.0, la, lb, lc, true);
    // Public API with empty A/B buffers.
    let mut c = vec![1.0f32; 6];
    let e: [f32; 0] = [];
    gemm(
        2,
        3,
        0,
        1.0,
        MatRef { data: &e, offset: 0, rs: 0, cs: 1 },
        MatRef { data: &e, offset: 0, rs: 3, cs: 1 },
        2.0,
        MatMut { data: &mut c, offset: 0, rs: 3, cs: 1 },
    );
    assert_eq!(c, vec![2.0; 6]);
}

#[test]
fn f64_path() {
    for (m, n, k) in [(1, 1, 1), (3, 9, 5), (5, 7, 257), (13, 17, 31), (9, 520, 3)] {
        let (la, lb, lc) = rm(m, n, k);
        check::<f64>(&F64_GENERIC, m, n, k, 1.25, 0.5, la, lb, lc, false, 7);
    }
    check::<f64>(
        &F64_GENERIC,
        11,
        6,
        21,
        1.0,
        0.0,
        col_major(11, 21, 1, 2),
        col_major(21, 6, 0, 1),
        (0, 1, 13),
        true,
        8,
    );
    // Through the public generic entry (TypeId dispatch).
    let mut rng = TestRng::new(3);
    let (m, n, k) = (7, 5, 6);
    let a = rng.vec_f64(m * k);
    let b = rng.vec_f64(k * n);
    let mut c = vec![f64::NAN; m * n];
    let mut want = vec![0.0; m * n];
    gemm_ref(m, n, k, 1.0, &a, (0, k, 1), &b, (0, n, 1), 0.0, &mut want, (0, n, 1));
    gemm(
        m,
        n,
        k,
        1.0,
        MatRef { data: &a, offset: 0, rs: k, cs: 1 },
        MatRef { data: &b, offset: 0, rs: n, cs: 1 },
        0.0,
        MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
    );
    assert_close("gemm f64 public", &c, &want, Tolerance::F64.for_reduction(k));
}

#[test]
fn large_parallel_matches_reference() {
    // Above PARALLEL_MIN_MNK: exercises the threaded split (over m strips) and the public dispatch.
    let (m, n, k) = (131, 129, 130);
    let mut rng = TestRng::new(11);
    let a = rng.vec_f32(m * k);
    let b = rng.vec_f32(k * n);
    let mut c = rng.vec_f32(m * n);
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let mut want = f(&c);
    gemm_ref(m, n, k, 1.0, &f(&a), (0, 1, m), &f(&b), (0, n, 1), 1.0, &mut want, (0, n, 1));
    // A given transposed (column-major m×k).
    let at = a.clone(); // the oracle above reads `a` column-major too
    gemm(
        m,
        n,
        k,
        1.0,
        MatRef { data: &at, offset: 0, rs: 1, cs: m },
        MatRef { data: &b, offset: 0, rs: n, cs: 1 },
        1.0,
        MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
    );
    assert_close("gemm f32 parallel", &c, &want, Tolerance::F32.for_reduction(k));
    // Few row strips, many columns: the split goes over column panels.
    let (m, n, k) = (5, 3000, 200);
    let a = rng.vec_f32(m * k);
    let b = rng.vec_f32(k * n);
    let mut c = vec![f32::NAN; m * n];
    let mut want = vec![0.0; m * n];
    gemm_ref(m, n, k, 1.0, &f(&a), (0, k, 1), &f(&b), (0, n, 1), 0.0, &mut want, (0, n, 1));
    gemm(
        m,
        n,
        k,
        1.0,
        MatRef { data: &a, offset: 0, rs: k, cs: 1 },
        MatRef { data: &b, offset: 0, rs: n, cs: 1 },
        0.0,
        MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
    );
    assert_close("gemm f32 wide", &c, &want, Tolerance::F32.for_reduction(k));
}

fn batched_case(batch: usize, m: usize, n: usize, k: usize, a_bs0: bool, b_bs0: bool, beta: f64) {
    let mut rng = TestRng::new(batch as u64 * 31 + m as u64);
    let (a_bs, b_bs, c_bs) =
        (if a_bs0 { 0 } else { m * k + 3 }, if b_bs0 { 0 } else { k * n + 1 }, m * n + 2);
    let a = rng.vec_f32(a_bs * batch + m * k);
    let b = rng.vec_f32(b_bs * batch + k * n);
    let mut c = rng.vec_f32(c_bs * batch);
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let (a64, b64) = (f(&a), f(&b));
    let mut want = f(&c);
    for i in 0..batch {
        gemm_ref(
            m,
            n,
            k,
            0.75,
            &a64,
            (i * a_bs, k, 1),
            &b64,
            (i * b_bs, n, 1),
            beta,
            &mut want,
            (i * c_bs, n, 1),
        );
    }
    gemm_batched(
        batch,
        m,
        n,
        k,
        0.75,
        MatRef { data: &a, offset: 0, rs: k, cs: 1 },
        a_bs,
        MatRef { data: &b, offset: 0, rs: n, cs: 1 },
        b_bs,
        beta as f32,
        MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
        c_bs,
    );
    assert_close(&format!("gemm_batched {batch}x{m}x{n}x{k}"), &c, &want, Tolerance::F32.for_reduction(k));
}

#[test]
fn batched_with_broadcast() {
    // Small matrices, many of them: the batch-parallel path; and a few large ones (serial batch).
    for (a0, b0) in [(false, false), (true, false), (false, true), (true, true)] {
        batched_case(64, 15, 33, 20, a0, b0, 0.5);
        batched_case(3, 70, 40, 90, a0, b0, 0.0);
    }
    batched_case(1, 1, 1, 1, false, false, 1.0);
    batched_case(0, 4, 4, 4, false, false, 1.0);
}

#[test]
fn batched_broadcast_c_accumulates_in_order() {
    // c_bs == 0: every batch member updates the same C, one after another.
    let (m, n, k) = (3, 4, 5);
    let a: Vec<f32> = (0..2 * m * k).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let mut c = vec![1.0f32; m * n];
    let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let mut want = f(&c);
    for i in 0..2 {
        gemm_ref(m, n, k, 1.0, &f(&a), (i * m * k, k, 1), &f(&b), (0, n, 1), 1.0, &mut want, (0, n, 1));
    }
    gemm_batched(
        2,
        m,
        n,
        k,
        1.0,
        MatRef { data: &a, offset: 0, rs: k, cs: 1 },
        m * k,
        MatRef { data: &b, offset: 0, rs: n, cs: 1 },
        0,
        1.0,
        MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
        0,
    );
    assert_close("gemm_batched c_bs=0", &c, &want, Tolerance::F32);
}

#[test]
#[should_panic(expected = "buffer B")]
fn short_buffer_panics() {
    let a = vec![0.0f32; 6];
    let b = vec![0.0f32; 5];
    let mut c = vec![0.0f32; 4];
    gemm(
        2,
        2,
        3,
        1.0,
        MatRef { data: &a, offset: 0, rs: 3, cs: 1 },
        MatRef { data: &b, offset: 0, rs: 2, cs: 1 },
        0.0,
        MatMut { data: &mut c, offset: 0, rs: 2, cs: 1 },
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_sizes_and_strides(
        m in 0usize..40, n in 0usize..70, k in 0usize..40,
        ta in any::<bool>(), tb in any::<bool>(), tc in any::<bool>(),
        pa in 0usize..3, pb in 0usize..3, pc in 0usize..3, off in 0usize..4,
        beta in prop::sample::select(vec![0.0, 1.0, -0.5]),
    ) {
        let la = if ta { col_major(m, k, pa, off) } else { row_major(m, k, pa, off) };
        let lb = if tb { col_major(k, n, pb, off) } else { row_major(k, n, pb, off) };
        let lc = if tc { col_major(m, n, pc, off) } else { row_major(m, n, pc, off) };
        all_f32(m, n, k, 1.25, beta, la, lb, lc, beta == 0.0);
        check::<f64>(&F64_GENERIC, m, n, k, 1.25, beta, la, lb, lc, beta == 0.0, 5);
    }
}

#[test]
fn injective_detection() {
    assert!(injective(3, 4, 4, 1));
    assert!(injective(3, 4, 1, 3));
    assert!(!injective(3, 4, 0, 1));
    assert!(!injective(3, 4, 2, 1));
    assert!(injective(1, 4, 0, 1));
    assert!(injective(5, 1, 1, 0));
}
