//! `gemm.cu` through the host emulator, against the f64 oracle (`reference.rs`) evaluated on the
//! inputs rounded to the kernel's dtype, and against the CPU `gemm_batched` for f32.
//!
//! Every case checks the whole C buffer, so elements outside the C view (row padding, gaps between
//! batch members, the tail) must come back untouched. Sizes are chosen to be not multiples of the
//! block tiles (128×128×8 f32, 64×64×16 f64, 128×128×32 tensor cores), with K below 16 and 32,
//! every combination of transposed A, B and C, batches with broadcast operands and a broadcast
//! (shared) C, and m, n, k = 1. Aligned views take the cp.async paths, unaligned ones the strided
//! loaders. At most four blocks per launch keep each emulated test within a few seconds.
//!
//! The emulated `mma.sync` (mma.cuh) rebuilds A and B from the 32 lanes' fragments following the
//! PTX ISA fragment layout, so a kernel that puts any element into the wrong fragment slot gets a
//! wrong product and fails here (checked by hand: swapping the kernel's A fragment registers 1 and 2
//! ({a2,a3} ↔ {a4,a5}), or B's two registers, made all four tensor-core tests fail). The emulated
//! cp.async (cp_async.cuh) copies only at the wait, so the cp.async test fails if the kernel waits
//! after its barrier instead of before it, or copies whole 16-byte chunks past k (both checked). The
//! emulated ldmatrix (mma.cuh) follows the documented per-lane row addresses and .trans element
//! distribution: swapping the kernel's matrix order for transposed A, or B's register order, fails
//! (checked). `emulated_ldmatrix_and_mma_follow_the_ptx_fragment_layout` pins the emulation itself:
//! an emulator-only probe kernel (gemm.cu, not in the PTX) loads fragments the way the GEMM does,
//! and every lane's registers are compared with the ISA's fragment formulas written out here, and D
//! bit for bit with an exact integer product.
//!
//! Tolerances (|got − want| ≤ abs + rel·|want|, want in f64 on the same rounded inputs):
//! * f32 out (`gemm_f32`, `*_out_f32`): f32 accumulation of k exact-or-rounded products,
//!   `Tolerance::F32.for_reduction(k)` (rel 1e-4·√k, abs 1e-5·√k); inputs are uniform in [-1, 1),
//!   so |C| is O(√k). The tensor cores' summation order is unspecified, so never bit-exact.
//! * f64: `Tolerance::F64.for_reduction(k)`.
//! * bf16/f16 out: the f32 result is rounded once (half an ulp: 2⁻⁹ bf16, 2⁻¹² f16 relative); the
//!   reference rounds its f64 result the same way, so the two may differ by one ulp where the f32
//!   and f64 values straddle a rounding boundary, plus the f32 term: rel 2⁻⁷ (bf16) / 2⁻¹⁰ (f16)
//!   (two ulps, covering the per-member roundings of a broadcast C) plus the f32 tolerance.

use super::cuda::{self, GemmArgs, OperandView};
use super::reference::gemm_ref;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{StorageDtype, TestRng, Tolerance, assert_close};
use half::{bf16, f16};

unsafe extern "C" {
    fn gemm_f32(a: *const f32, b: *const f32, c: *mut f32, p: GemmArgs);
    fn gemm_f64(a: *const f64, b: *const f64, c: *mut f64, p: GemmArgs);
    fn gemm_bf16(a: *const u16, b: *const u16, c: *mut u16, p: GemmArgs);
    fn gemm_f16(a: *const u16, b: *const u16, c: *mut u16, p: GemmArgs);
    fn gemm_bf16_out_f32(a: *const u16, b: *const u16, c: *mut f32, p: GemmArgs);
    fn gemm_f16_out_f32(a: *const u16, b: *const u16, c: *mut f32, p: GemmArgs);
    fn gemm_emu_probe_fragments(a: *const u16, bt: *const u16, regs: *mut u32, d: *mut f32);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    F32,
    F64,
    Bf16,
    F16,
    Bf16OutF32,
    F16OutF32,
}
use Kind::*;

const TC_KINDS: [Kind; 4] = [Bf16, F16, Bf16OutF32, F16OutF32];

impl Kind {
    /// The dtype of this kernel's inputs.
    fn input(self) -> StorageDtype {
        match self {
            F32 => StorageDtype::F32,
            F64 => StorageDtype::F64,
            Bf16 | Bf16OutF32 => StorageDtype::Bf16,
            F16 | F16OutF32 => StorageDtype::F16,
        }
    }
    /// The dtype of this kernel's output C.
    fn output(self) -> StorageDtype {
        match self {
            F32 | Bf16OutF32 | F16OutF32 => StorageDtype::F32,
            F64 => StorageDtype::F64,
            Bf16 => StorageDtype::Bf16,
            F16 => StorageDtype::F16,
        }
    }
    /// The value an input element takes in this kernel's input dtype.
    fn round_in(self, x: f64) -> f64 {
        self.input().round(x)
    }
    /// The value a C element takes in this kernel's output dtype.
    fn round_out(self, x: f64) -> f64 {
        self.output().round(x)
    }
    fn tol(self, k: usize) -> Tolerance {
        self.output().reduction_tol(k)
    }
}

/// One GEMM problem: sizes, which operands are transposed (column-major views), which are broadcast
/// over the batch (batch stride 0), alpha and beta.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    at: bool,
    bt: bool,
    ct: bool,
    a_bcast: bool,
    b_bcast: bool,
    c_bcast: bool,
    alpha: f64,
    beta: f64,
    /// Offsets, leading strides and batch strides multiples of 8 elements (16 bytes for 16-bit
    /// types), so k-contiguous operands take the tensor-core kernels' cp.async path.
    aligned: bool,
}

impl Case {
    fn new(m: usize, n: usize, k: usize) -> Self {
        Case {
            batch: 1,
            m,
            n,
            k,
            at: false,
            bt: false,
            ct: false,
            a_bcast: false,
            b_bcast: false,
            c_bcast: false,
            alpha: 1.0,
            beta: 0.0,
            aligned: false,
        }
    }
    fn aligned(self) -> Self {
        Case { aligned: true, ..self }
    }
    fn trans(self, at: bool, bt: bool, ct: bool) -> Self {
        Case { at, bt, ct, ..self }
    }
    fn scaled(self, alpha: f64, beta: f64) -> Self {
        Case { alpha, beta, ..self }
    }
    fn batched(self, batch: usize, a_bcast: bool, b_bcast: bool, c_bcast: bool) -> Self {
        Case { batch, a_bcast, b_bcast, c_bcast, ..self }
    }
}

/// A `rows×cols` view (row-major, or column-major when `trans`) with `pad` extra elements per
/// row/column, an offset, and a batch stride (0 when broadcast); returns the view and a buffer length.
fn view(
    rows: usize,
    cols: usize,
    trans: bool,
    pad: usize,
    off: usize,
    batch: usize,
    bcast: bool,
) -> (OperandView, usize) {
    view_al(rows, cols, trans, pad, off, batch, bcast, false)
}

/// [`view`], with the offset, leading stride and batch stride rounded up to multiples of 8 when
/// `aligned`.
#[allow(clippy::too_many_arguments)]
fn view_al(
    rows: usize,
    cols: usize,
    trans: bool,
    pad: usize,
    off: usize,
    batch: usize,
    bcast: bool,
    aligned: bool,
) -> (OperandView, usize) {
    let up = |x: usize| if aligned { x.next_multiple_of(8) } else { x };
    let (rs, cs) = if trans { (1, up(rows + pad)) } else { (up(cols + pad), 1) };
    let span = if rows == 0 || cols == 0 { 0 } else { (rows - 1) * rs + (cols - 1) * cs + 1 };
    let bs = if bcast { 0 } else { up(span + 3) };
    let off = up(off);
    ((off, rs, cs, bs), off + (batch.max(1) - 1) * bs + span + 2)
}

/// `v` copied into a buffer whose element `start` is 16-byte aligned (a Vec<u16> is only 2-byte
/// aligned), so that the kernels' alignment checks depend on the views alone, as on a GPU where
/// allocations are 256-byte aligned.
fn aligned_copy<T: Copy + Default>(v: &[T]) -> (Vec<T>, usize) {
    let mut buf = vec![T::default(); v.len() + 16];
    let addr = buf.as_ptr() as usize;
    let start = (addr.next_multiple_of(16) - addr) / std::mem::size_of::<T>();
    buf[start..start + v.len()].copy_from_slice(v);
    (buf, start)
}

fn launch_kind(kind: Kind, args: GemmArgs, a: &[f64], b: &[f64], c: &mut [f64]) {
    let dims = match kind {
        F32 => cuda::launch_dims_f32(&args),
        F64 => cuda::launch_dims_f64(&args),
        _ => cuda::launch_dims_tc(&args),
    };
    let Some(dims) = dims else { return };
    let bits = |v: &[f64]| -> Vec<u16> {
        match kind {
            Bf16 | Bf16OutF32 => v.iter().map(|&x| bf16::from_f64(x).to_bits()).collect(),
            _ => v.iter().map(|&x| f16::from_f64(x).to_bits()).collect(),
        }
    };
    match kind {
        F32 => {
            let (a32, b32): (Vec<f32>, Vec<f32>) =
                (a.iter().map(|&x| x as f32).collect(), b.iter().map(|&x| x as f32).collect());
            let c32: Vec<f32> = c.iter().map(|&x| x as f32).collect();
            let (mut cbuf, sc) = aligned_copy(&c32);
            let (pa, pb, pc) = (CPtr::of(&a32), CPtr::of(&b32), Ptr::of(&mut cbuf[sc..]));
            // SAFETY: the buffers cover every element the views of `args` address (see `view`).
            emu::launch(dims, || unsafe { gemm_f32(pa.get(), pb.get(), pc.get(), args) }).unwrap();
            c.iter_mut().zip(&cbuf[sc..]).for_each(|(d, &s)| *d = s as f64);
        }
        F64 => {
            let (mut cbuf, sc) = aligned_copy(c);
            let (pa, pb, pc) = (CPtr::of(a), CPtr::of(b), Ptr::of(&mut cbuf[sc..]));
            // SAFETY: as above.
            emu::launch(dims, || unsafe { gemm_f64(pa.get(), pb.get(), pc.get(), args) }).unwrap();
            c.copy_from_slice(&cbuf[sc..sc + c.len()]);
        }
        Bf16 | F16 => {
            let ((a16, sa), (b16, sb)) = (aligned_copy(&bits(a)), aligned_copy(&bits(b)));
            let (mut c16, sc) = aligned_copy(&bits(c));
            let (pa, pb) = (CPtr::of(&a16[sa..]), CPtr::of(&b16[sb..]));
            let pc = Ptr::of(&mut c16[sc..]);
            let f = if kind == Bf16 { gemm_bf16 } else { gemm_f16 };
            // SAFETY: as above (the slices start at the copies of the buffers).
            emu::launch(dims, || unsafe { f(pa.get(), pb.get(), pc.get(), args) }).unwrap();
            c.iter_mut().zip(&c16[sc..]).for_each(|(d, &s)| {
                *d = if kind == Bf16 { bf16::from_bits(s).to_f64() } else { f16::from_bits(s).to_f64() }
            });
        }
        Bf16OutF32 | F16OutF32 => {
            let ((a16, sa), (b16, sb)) = (aligned_copy(&bits(a)), aligned_copy(&bits(b)));
            let mut c32: Vec<f32> = c.iter().map(|&x| x as f32).collect();
            let (pa, pb, pc) = (CPtr::of(&a16[sa..]), CPtr::of(&b16[sb..]), Ptr::of(&mut c32));
            let f = if kind == Bf16OutF32 { gemm_bf16_out_f32 } else { gemm_f16_out_f32 };
            // SAFETY: as above.
            emu::launch(dims, || unsafe { f(pa.get(), pb.get(), pc.get(), args) }).unwrap();
            c.iter_mut().zip(&c32).for_each(|(d, &s)| *d = s as f64);
        }
    }
}

/// Random operands for `case`, the kernel result and the oracle's, on the whole C buffer.
fn run(kind: Kind, case: Case, seed: u64) -> (Vec<f64>, Vec<f64>, GemmArgs) {
    let Case { batch, m, n, k, .. } = case;
    let mut rng = TestRng::new(seed);
    let al = case.aligned;
    let (av, alen) = view_al(m, k, case.at, 3, 5, batch, case.a_bcast, al);
    let (bv, blen) = view_al(k, n, case.bt, 2, 1, batch, case.b_bcast, al);
    let (cv, clen) = view_al(m, n, case.ct, 1, 4, batch, case.c_bcast, al);
    let a: Vec<f64> = (0..alen).map(|_| kind.round_in(rng.uniform())).collect();
    let b: Vec<f64> = (0..blen).map(|_| kind.round_in(rng.uniform())).collect();
    let c0: Vec<f64> = (0..clen).map(|_| kind.round_out(rng.uniform())).collect();
    let args = GemmArgs::new(batch, m, n, k, case.alpha, av, bv, case.beta, cv);

    let mut want = c0.clone();
    for z in 0..batch {
        gemm_ref(
            m,
            n,
            k,
            case.alpha,
            &a,
            (av.0 + z * av.3, av.1, av.2),
            &b,
            (bv.0 + z * bv.3, bv.1, bv.2),
            case.beta,
            &mut want,
            (cv.0 + z * cv.3, cv.1, cv.2),
        );
        // The kernel stores (and, for a shared C, re-reads) each member's result in the output dtype.
        want.iter_mut().for_each(|x| *x = kind.round_out(*x));
    }
    let mut got = c0;
    launch_kind(kind, args, &a, &b, &mut got);
    (got, want, args)
}

fn check(kind: Kind, case: Case, seed: u64) {
    let (got, want, _) = run(kind, case, seed);
    assert_close(&format!("{kind:?} {case:?}"), &got, &want, kind.tol(case.k));
}

/// Every transposition of A, B and C at one size.
fn all_transposes(kind: Kind, m: usize, n: usize, k: usize, seed: u64) {
    for t in 0..8 {
        let case = Case::new(m, n, k).trans(t & 1 != 0, t & 2 != 0, t & 4 != 0);
        check(kind, case, seed + t as u64);
    }
}

#[test]
fn f32_odd_sizes_every_transpose() {
    // 37×45×70: one partial block, 5 k-tiles (the last partial); all eight stride combinations.
    all_transposes(F32, 37, 45, 70, 100);
    // Two 128×128 blocks each way, k = 9: one full 8-deep k-tile and a 1-deep one.
    all_transposes(F32, 150, 140, 9, 200);
    // Aligned C rows: complete runs of 4 columns are read and written as 16-byte vectors, the
    // partial run at n = 45 element-wise.
    for t in 0..4 {
        let case = Case::new(37, 45, 20).trans(t & 1 != 0, t & 2 != 0, false).aligned().scaled(0.5, 2.0);
        check(F32, case, 210 + t as u64);
    }
}

#[test]
fn f64_odd_sizes_transposes_and_scaling() {
    all_transposes(F64, 37, 45, 70, 300);
    // Two 64×64 blocks each way, k below the 16-deep k-tile.
    all_transposes(F64, 65, 100, 9, 320);
    check(F64, Case::new(70, 45, 17).aligned().scaled(-1.0, 0.5), 330); // vector C runs
    check(F64, Case::new(70, 45, 17).aligned().batched(2, false, true, false), 331);
    check(F64, Case::new(70, 3, 17).trans(true, false, true).scaled(-0.75, 1.25), 310);
}

#[test]
fn f32_degenerate_sizes() {
    for (i, &(m, n, k)) in [(1, 1, 1), (1, 67, 5), (70, 1, 33), (1, 1, 40), (3, 2, 1)].iter().enumerate() {
        check(F32, Case::new(m, n, k).trans(i % 2 == 1, i % 3 == 1, false).scaled(0.5, -2.0), 400 + i as u64);
    }
}

#[test]
fn f32_batched_broadcast_alpha_beta_and_cpu_gemm() {
    use super::{MatMut, MatRef, gemm_batched};
    let cases = [
        // A broadcast over the batch, alpha and beta.
        Case::new(37, 20, 23).batched(3, true, false, false).scaled(-1.5, 0.5),
        // B broadcast, transposed A.
        Case::new(20, 37, 23).trans(true, false, false).batched(3, false, true, false).scaled(2.0, 1.0),
        // A shared C: the members accumulate into it in order (beta = 1).
        Case::new(30, 26, 19).batched(4, false, false, true).scaled(1.0, 1.0),
        // Shared C with beta ≠ 1: order matters, C_z = alpha·A_z B_z + beta·C_{z-1}.
        Case::new(9, 70, 12).trans(false, true, true).batched(3, false, true, true).scaled(0.5, -0.5),
    ];
    for (i, &case) in cases.iter().enumerate() {
        let (got, want, args) = run(F32, case, 500 + i as u64);
        let tol = F32.tol(case.k);
        assert_close(&format!("gemm_f32 vs oracle {case:?}"), &got, &want, tol);
        // The same problem through the CPU kernel (same semantics, f32 throughout).
        let mut rng = TestRng::new(500 + i as u64);
        let (av, alen) = view(case.m, case.k, case.at, 3, 5, case.batch, case.a_bcast);
        let (bv, blen) = view(case.k, case.n, case.bt, 2, 1, case.batch, case.b_bcast);
        let (cv, clen) = view(case.m, case.n, case.ct, 1, 4, case.batch, case.c_bcast);
        let a: Vec<f32> = (0..alen).map(|_| rng.uniform() as f32).collect();
        let b: Vec<f32> = (0..blen).map(|_| rng.uniform() as f32).collect();
        let mut c: Vec<f32> = (0..clen).map(|_| rng.uniform() as f32).collect();
        assert_eq!((args.a_bs as usize, args.c_bs as usize), (av.3, cv.3));
        gemm_batched(
            case.batch,
            case.m,
            case.n,
            case.k,
            case.alpha as f32,
            MatRef { data: &a, offset: av.0, rs: av.1, cs: av.2 },
            av.3,
            MatRef { data: &b, offset: bv.0, rs: bv.1, cs: bv.2 },
            bv.3,
            case.beta as f32,
            MatMut { data: &mut c, offset: cv.0, rs: cv.1, cs: cv.2 },
            cv.3,
        );
        let tol2 = Tolerance::new(2.0 * tol.rel, 2.0 * tol.abs);
        assert_close(&format!("gemm_f32 vs CPU gemm_batched {case:?}"), &got, &c, tol2);
    }
}

#[test]
fn f32_beta_zero_ignores_nan_and_k_zero_scales_c() {
    // beta == 0: C is overwritten, NaN already there does not propagate.
    let case = Case::new(5, 7, 3).scaled(1.0, 0.0);
    let mut rng = TestRng::new(600);
    let (av, alen) = view(5, 3, false, 0, 0, 1, false);
    let (bv, blen) = view(3, 7, false, 0, 0, 1, false);
    let (cv, clen) = view(5, 7, false, 0, 0, 1, false);
    let a: Vec<f64> = (0..alen).map(|_| rng.uniform() as f32 as f64).collect();
    let b: Vec<f64> = (0..blen).map(|_| rng.uniform() as f32 as f64).collect();
    let args = GemmArgs::new(1, 5, 7, 3, case.alpha, av, bv, 0.0, cv);
    let mut got = vec![f64::NAN; clen];
    launch_kind(F32, args, &a, &b, &mut got);
    let mut want = vec![f64::NAN; clen];
    gemm_ref(5, 7, 3, 1.0, &a, (0, 3, 1), &b, (0, 7, 1), 0.0, &mut want, (0, 7, 1));
    assert_close("beta = 0 over NaN", &got, &want, F32.tol(3));
    assert!(got[..35].iter().all(|x| x.is_finite()));

    // k == 0: C = beta·C for every kind (and C = 0 with beta = 0, even over NaN).
    for kind in [F32, F64, Bf16, F16, Bf16OutF32, F16OutF32] {
        let args = GemmArgs::new(2, 3, 4, 0, 7.0, (0, 1, 1, 0), (0, 1, 1, 0), 0.5, (0, 4, 1, 12));
        let mut got: Vec<f64> = (0..24).map(|i| i as f64).collect();
        launch_kind(kind, args, &[0.0], &[0.0], &mut got);
        let want: Vec<f64> = (0..24).map(|i| 0.5 * i as f64).collect();
        assert_close(&format!("{kind:?} k = 0"), &got, &want, Tolerance::new(0.0, 0.0));
        let args = GemmArgs { beta: 0.0, ..args };
        let mut got = vec![f64::NAN; 24];
        launch_kind(kind, args, &[0.0], &[0.0], &mut got);
        assert!(got.iter().all(|&x| x == 0.0), "{kind:?}: k = 0, beta = 0 must zero C: {got:?}");
    }
}

#[test]
fn tensor_core_odd_sizes_every_transpose() {
    // One partial 128×128 block; 70 = two full 32-deep k-tiles plus a partial one that ends inside
    // its first k16 step: every edge of the tile is masked.
    for (i, kind) in TC_KINDS.into_iter().enumerate() {
        all_transposes(kind, 37, 45, 70, 700 + 10 * i as u64);
    }
}

#[test]
fn tensor_core_small_k_and_degenerate_sizes() {
    for (i, kind) in TC_KINDS.into_iter().enumerate() {
        let s = 800 + 10 * i as u64;
        check(kind, Case::new(19, 13, 5).scaled(-1.0, 0.75), s); // K < 16: one zero-padded k16 step
        check(kind, Case::new(17, 9, 15).trans(true, true, false), s + 1);
        check(kind, Case::new(1, 1, 1).scaled(2.0, 0.5), s + 2);
        check(kind, Case::new(1, 33, 16).trans(false, true, true), s + 3); // exactly one k16 step
        check(kind, Case::new(40, 1, 48).trans(true, false, false).scaled(0.25, 1.0), s + 4);
    }
}

#[test]
fn tensor_core_multi_block() {
    // 2×2 blocks of 128×128, both partial at the far edge; k = 40 (one full k-tile plus half a
    // k16 step); A transposed, so both loader orientations are used across the tests.
    for (i, kind) in TC_KINDS.into_iter().enumerate() {
        let case = Case::new(150, 140, 40).trans(i % 2 == 0, i >= 2, i == 1).scaled(1.0, -0.5);
        check(kind, case, 900 + i as u64);
    }
}

#[test]
fn tensor_core_batched_broadcast() {
    for (i, kind) in TC_KINDS.into_iter().enumerate() {
        let s = 1000 + 10 * i as u64;
        check(kind, Case::new(21, 30, 33).batched(3, true, false, false).scaled(0.5, 0.25), s);
        check(kind, Case::new(21, 30, 33).trans(false, true, false).batched(3, false, true, false), s + 1);
        // Shared C, accumulated in order (rounded to the output dtype after each member).
        check(kind, Case::new(12, 10, 20).batched(3, false, false, true).scaled(1.0, 1.0), s + 2);
    }
}

#[test]
fn tensor_core_cp_async_path() {
    // Aligned views, so every operand whose staged index has unit stride is copied with cp.async:
    // A row-major (As[m][k]) or transposed (At[k][m], fragments by ldmatrix.trans), B column-major
    // (Bs[n][k]) or row-major (Bt[k][n], ldmatrix.trans): all four layout pairs. K = 70 and 5 end
    // inside a 16-byte chunk (zero-filled by the copy's src-size), m = 37 and n = 45 inside one
    // (the transposed layouts copy along m and n), rows past m, n, k are zero-filled whole.
    for (i, kind) in TC_KINDS.into_iter().enumerate() {
        let s = 1100 + 10 * i as u64;
        for t in 0..4 {
            let (at, bt) = (t & 1 != 0, t & 2 != 0);
            check(kind, Case::new(37, 45, 70).trans(at, bt, t == 3).aligned(), s + t as u64);
            check(
                kind,
                Case::new(19, 13, 5).trans(at, bt, t == 0).aligned().scaled(1.5, -1.0),
                s + 4 + t as u64,
            );
        }
        check(kind, Case::new(150, 140, 40).trans(false, true, false).aligned(), s + 8);
        check(kind, Case::new(130, 136, 24).trans(true, false, false).aligned(), s + 9);
        // Batched, broadcast operands, shared C (batch strides multiples of 8 or 0).
        check(kind, Case::new(33, 20, 24).aligned().batched(3, false, true, false), s + 10);
        check(
            kind,
            Case::new(33, 20, 24).trans(true, true, false).aligned().batched(2, true, false, false),
            s + 11,
        );
        let shared_c =
            Case::new(40, 24, 72).trans(false, true, false).aligned().batched(3, true, false, true);
        check(kind, shared_c.scaled(1.0, 1.0), s + 12);
    }
}

#[test]
fn emulated_ldmatrix_and_mma_follow_the_ptx_fragment_layout() {
    // A[i][k] = i·16 + k and B[k][j] = (k·8 + j) mod 13 − 6: distinct, exactly representable in bf16
    // (≤ 256), products and sums exact in f32, so D must match bit for bit.
    let a: Vec<f64> = (0..256).map(|x| x as f64).collect();
    let bmat = |k: usize, j: usize| ((k * 8 + j) % 13) as f64 - 6.0;
    let bt: Vec<u16> = (0..128).map(|x| bf16::from_f64(bmat(x % 16, x / 16)).to_bits()).collect();
    let a16: Vec<u16> = a.iter().map(|&x| bf16::from_f64(x).to_bits()).collect();
    let (mut regs, mut d) = (vec![0u32; 32 * 12], vec![0f32; 32 * 4]);
    let (pa, pb, pr, pd) = (CPtr::of(&a16), CPtr::of(&bt), Ptr::of(&mut regs), Ptr::of(&mut d));
    let dims = crate::cuda_abi::LaunchDims { grid: (1, 1, 1), block: (32, 1, 1), shared_mem_bytes: 0 };
    // SAFETY: a holds 256 and bt 128 elements, regs 32·12 and d 32·4, as the probe reads/writes.
    emu::launch(dims, || unsafe { gemm_emu_probe_fragments(pa.get(), pb.get(), pr.get(), pd.get()) })
        .unwrap();
    let bits = |x: f64| bf16::from_f64(x).to_bits() as u32;
    for lane in 0..32 {
        let (g, t) = (lane >> 2, lane % 4);
        // PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type": A element ai has
        // row g (i in 0,1,4,5) or g+8, column 2t + (i&1) (+8 for i ≥ 4); register r holds a(2r), a(2r+1).
        let a_el = |i: usize| {
            let row = if i < 2 || (4..6).contains(&i) { g } else { g + 8 };
            let col = 2 * t + (i & 1) + if i >= 4 { 8 } else { 0 };
            a[row * 16 + col]
        };
        // Both staging layouts (k-major via ldmatrix, transposed via ldmatrix.trans) must give it.
        for (layout, base) in [("k-major", 0), ("transposed", 6)] {
            for r in 0..4 {
                let want = bits(a_el(2 * r)) | (bits(a_el(2 * r + 1)) << 16);
                assert_eq!(regs[lane * 12 + base + r], want, "{layout}: lane {lane} A register {r}");
            }
            // B element bi: row (k) 2t + (i&1) (+8 for i ≥ 2), column g.
            for r in 0..2 {
                let b_el = |i: usize| bmat(2 * t + (i & 1) + if i >= 2 { 8 } else { 0 }, g);
                let want = bits(b_el(2 * r)) | (bits(b_el(2 * r + 1)) << 16);
                assert_eq!(regs[lane * 12 + base + 4 + r], want, "{layout}: lane {lane} B register {r}");
            }
        }
        // D element ci: row g (i < 2) or g+8, column 2t + (i&1).
        for i in 0..4 {
            let (row, col) = (g + if i >= 2 { 8 } else { 0 }, 2 * t + (i & 1));
            let want: f64 = (0..16).map(|k| a[row * 16 + k] * bmat(k, col)).sum();
            assert_eq!(d[lane * 4 + i] as f64, want, "lane {lane} D element {i}");
        }
    }
}

#[test]
fn launch_dims_cover_the_problem() {
    let a = GemmArgs::new(5, 129, 64, 7, 1.0, (0, 7, 1, 0), (0, 64, 1, 0), 0.0, (0, 64, 1, 129 * 64));
    let d = cuda::launch_dims_tc(&a).unwrap();
    assert_eq!((d.grid, d.block, d.shared_mem_bytes), ((2, 1, 5), (256, 1, 1), 0));
    assert_eq!(cuda::launch_dims_f32(&a).unwrap().grid, (2, 1, 5));
    assert_eq!(cuda::launch_dims_f64(&a).unwrap().grid, (3, 1, 5));
    // A shared C keeps the batch inside each block.
    let shared = GemmArgs { c_bs: 0, ..a };
    assert_eq!(cuda::launch_dims_f64(&shared).unwrap().grid.2, 1);
    assert_eq!(cuda::launch_dims_tc(&shared).unwrap().grid.2, 1);
    // Nothing to do.
    assert!(cuda::launch_dims_tc(&GemmArgs { m: 0, ..a }).is_none());
    assert!(cuda::launch_dims_f32(&GemmArgs { batch: 0, ..a }).is_none());
    assert!(cuda::launch_dims_f64(&GemmArgs { n: 0, ..a }).is_none());
    // The fallible form used by the runtime: same shapes, an error past the grid limits.
    assert_eq!(cuda::try_launch_dims(&a, "f32").unwrap(), cuda::launch_dims_f32(&a));
    assert_eq!(cuda::try_launch_dims(&a, "f64").unwrap(), cuda::launch_dims_f64(&a));
    assert_eq!(cuda::try_launch_dims(&a, "bf16").unwrap(), cuda::launch_dims_tc(&a));
    assert_eq!(cuda::try_launch_dims(&a, "f16").unwrap(), cuda::launch_dims_tc(&a));
    assert!(cuda::try_launch_dims(&GemmArgs { n: 128 * 65536, ..a }, "bf16").is_err());
    assert!(cuda::try_launch_dims(&GemmArgs { n: 128 * 65535, ..a }, "bf16").unwrap().is_some());
    assert!(cuda::try_launch_dims(&a, "i64").is_err());
}
