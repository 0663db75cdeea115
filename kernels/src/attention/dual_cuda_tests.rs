//! `dual.cu` through the host emulator, against two independent single attentions: the CPU flash
//! f32 kernel per branch (summed) and the naive f64 reference per branch (`reference.rs`, on the
//! inputs rounded to f32). Every test runs the whole chain the GPU runtime runs: the fused forward,
//! then `dual_attn_bwd_pre` → `dual_attn_bwd_dq` and `flash_attn_bwd_dkdv` once per branch, on the
//! kernels' own `out1`, `out2`, `lse1`, `lse2`. Output buffers start as NaN, so an element a kernel
//! forgets to write fails the comparison.
//!
//! Tolerances (|got − want| ≤ abs + rel·|want|): per-branch quantities (`out1`, `out2`, `lse*`,
//! `dk*`, `dv*`) get `Tolerance::F32.for_reduction(n)` with n the longest reduction
//! (`max(lq, l1, l2, d, dv)`), the bound the single-attention kernel is held to (values and
//! gradients are O(1) here; both sides accumulate in f32 in different orders, `expf` vs the CPU
//! polynomial). The sums `out` and `dq` add two such errors, so they get twice that bound. A fully
//! masked branch must give exactly `lse = -inf`, `out_b = 0` and zero gradients.
//!
//! The accuracy rule of the issue (`fused_error_at_most_twice_composed`): the max error of the
//! fused kernels against the f64 reference is at most 2× that of a plain composed f32
//! implementation (matmul → softmax → matmul per branch, summed in f32) on the same inputs, plus an
//! abs floor of 1e-6 (the single-attention rule's floor). Observed (`--nocapture`): out 3.1e-7 vs
//! 5.0e-7 composed, dq 1.2e-7 vs 1.0e-7; the per-branch dK/dV (the single-attention dK/dV kernel)
//! reach 2.2× composed for dk2 at (lq 65, l2 17, d 64): 8.5e-7 vs 3.8e-7, inside the floor.
//!
//! Seen to fail on a purpose-made bug: `dd1` used for branch 2 in the dQ kernel
//! (`masked_branch_and_fully_masked_rows`: 570 of 864 dq elements off, by up to 0.3).

use super::cuda::AttnArgs;
use super::dual_cuda::{self, DualAttnArgs};
use super::{
    AttentionShape, DualAttentionShape, attention_backward, attention_composed_backward,
    attention_composed_forward, attention_forward, reference,
};
use crate::cuda_abi::LaunchDims;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{TestRng, Tolerance, assert_close};

unsafe extern "C" {
    fn dual_attn_fwd_f32(
        q: *const f32,
        k1: *const f32,
        v1: *const f32,
        mask1: *const u8,
        k2: *const f32,
        v2: *const f32,
        mask2: *const u8,
        out: *mut f32,
        out1: *mut f32,
        out2: *mut f32,
        lse1: *mut f32,
        lse2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_pre_f32(
        out1: *const f32,
        out2: *const f32,
        dout: *const f32,
        dd1: *mut f32,
        dd2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_dq_f32(
        q: *const f32,
        k1: *const f32,
        v1: *const f32,
        mask1: *const u8,
        k2: *const f32,
        v2: *const f32,
        mask2: *const u8,
        lse1: *const f32,
        lse2: *const f32,
        dd1: *const f32,
        dd2: *const f32,
        dout: *const f32,
        dq: *mut f32,
        a: DualAttnArgs,
    );
    fn flash_attn_bwd_dkdv_f32(
        q: *const f32,
        k: *const f32,
        v: *const f32,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const f32,
        dk: *mut f32,
        dv: *mut f32,
        a: AttnArgs,
    );
}

/// One dual-attention problem in f64 (rounded to the kernel's dtype by the runners).
struct Case {
    sh: DualAttentionShape,
    q: Vec<f64>,
    k1: Vec<f64>,
    v1: Vec<f64>,
    k2: Vec<f64>,
    v2: Vec<f64>,
    dout: Vec<f64>,
    mask1: Option<Vec<u8>>,
    mask2: Option<Vec<u8>>,
    scale: f64,
}

/// Mask kinds: 0 none, 1 random (~30% masked) with batch 0 fully masked, 2 random only.
fn mask(r: &mut TestRng, batch: usize, l: usize, kind: u8) -> Option<Vec<u8>> {
    if kind == 0 {
        return None;
    }
    let mut m: Vec<u8> = (0..batch * l).map(|_| u8::from(r.next_u64() % 10 >= 3)).collect();
    if kind == 1 {
        m[..l].iter_mut().for_each(|x| *x = 0);
    }
    Some(m)
}

fn sh(
    batch: usize,
    heads: usize,
    lq: usize,
    l1: usize,
    l2: usize,
    d: usize,
    dv: usize,
) -> DualAttentionShape {
    DualAttentionShape { batch, heads, lq, l1, l2, d, dv }
}

fn case(s: DualAttentionShape, m1: u8, m2: u8, seed: u64) -> Case {
    let mut r = TestRng::new(seed);
    let bh = s.batch * s.heads;
    // q scaled up so the softmaxes are peaked (scores of O(few)), as in the single-attention tests.
    let q = (0..bh * s.lq * s.d).map(|_| 3.0 * r.uniform()).collect();
    let (k1, v1) = (r.vec_f64(bh * s.l1 * s.d), r.vec_f64(bh * s.l1 * s.dv));
    let (k2, v2) = (r.vec_f64(bh * s.l2 * s.d), r.vec_f64(bh * s.l2 * s.dv));
    let dout = r.vec_f64(bh * s.lq * s.dv);
    let mask1 = mask(&mut r, s.batch, s.l1, m1);
    let mask2 = mask(&mut r, s.batch, s.l2, m2);
    Case { sh: s, q, k1, v1, k2, v2, dout, mask1, mask2, scale: 1.0 / (s.d.max(1) as f64).sqrt() }
}

/// out, out1, out2, lse1, lse2, dq, dk1, dv1, dk2, dv2.
type All<T> = [Vec<T>; 10];
const NAMES: [&str; 10] = ["out", "out1", "out2", "lse1", "lse2", "dq", "dk1", "dv1", "dk2", "dv2"];

fn f32s(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}
fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Runs one launch (race-checked when `checked`: any report fails the test).
fn go(dims: Option<LaunchDims>, checked: bool, what: &str, f: impl Fn() + Sync) {
    let Some(dims) = dims else { return };
    if checked {
        let races = emu::launch_checked(dims, f).unwrap();
        assert!(races.is_empty(), "{what}: shared-memory races:\n{}", races.join("\n"));
    } else {
        emu::launch(dims, f).unwrap();
    }
}

/// The fused CUDA chain on the case's inputs rounded to f32.
fn gpu(c: &Case, checked: bool) -> All<f32> {
    let (q, k1, v1, k2, v2, g) =
        (f32s(&c.q), f32s(&c.k1), f32s(&c.v1), f32s(&c.k2), f32s(&c.v2), f32s(&c.dout));
    let (lo, ll) = c.sh.out_lens();
    let nan = |n: usize| vec![f32::NAN; n];
    let (mut out, mut out1, mut out2) = (nan(lo), nan(lo), nan(lo));
    let (mut lse1, mut lse2, mut dd1, mut dd2) = (nan(ll), nan(ll), nan(ll), nan(ll));
    let (mut dq, mut dk1, mut dv1, mut dk2, mut dv2) =
        (nan(q.len()), nan(k1.len()), nan(v1.len()), nan(k2.len()), nan(v2.len()));
    let a = DualAttnArgs::new(&c.sh, c.mask1.is_some(), c.mask2.is_some(), c.scale as f32 as f64);
    let m1: Vec<u8> = c.mask1.clone().unwrap_or_else(|| vec![0xAB]);
    let m2: Vec<u8> = c.mask2.clone().unwrap_or_else(|| vec![0xCD]);
    let (pq, pk1, pv1, pk2, pv2, pg) =
        (CPtr::of(&q), CPtr::of(&k1), CPtr::of(&v1), CPtr::of(&k2), CPtr::of(&v2), CPtr::of(&g));
    let (pm1, pm2) = (CPtr::of(&m1), CPtr::of(&m2));
    {
        let (po, po1, po2) = (Ptr::of(&mut out), Ptr::of(&mut out1), Ptr::of(&mut out2));
        let (pl1, pl2) = (Ptr::of(&mut lse1), Ptr::of(&mut lse2));
        // SAFETY: every buffer has the length `DualAttnArgs` implies (Case::sh; masks batch·l_b).
        go(dual_cuda::launch_dims_fwd(&a), checked, "fwd", || unsafe {
            dual_attn_fwd_f32(
                pq.get(),
                pk1.get(),
                pv1.get(),
                pm1.get(),
                pk2.get(),
                pv2.get(),
                pm2.get(),
                po.get(),
                po1.get(),
                po2.get(),
                pl1.get(),
                pl2.get(),
                a,
            )
        });
    }
    let (po1, po2, pl1, pl2) = (CPtr::of(&out1), CPtr::of(&out2), CPtr::of(&lse1), CPtr::of(&lse2));
    {
        let (pd1, pd2) = (Ptr::of(&mut dd1), Ptr::of(&mut dd2));
        // SAFETY: as above.
        go(dual_cuda::launch_dims_bwd_pre(&a), checked, "bwd_pre", || unsafe {
            dual_attn_bwd_pre_f32(po1.get(), po2.get(), pg.get(), pd1.get(), pd2.get(), a)
        });
    }
    let (pd1, pd2) = (CPtr::of(&dd1), CPtr::of(&dd2));
    {
        let pdq = Ptr::of(&mut dq);
        // SAFETY: as above.
        go(dual_cuda::launch_dims_bwd_dq(&a), checked, "bwd_dq", || unsafe {
            dual_attn_bwd_dq_f32(
                pq.get(),
                pk1.get(),
                pv1.get(),
                pm1.get(),
                pk2.get(),
                pv2.get(),
                pm2.get(),
                pl1.get(),
                pl2.get(),
                pd1.get(),
                pd2.get(),
                pg.get(),
                pdq.get(),
                a,
            )
        });
    }
    for (b, (pk, pv, pm, pl, pd, dk, dv)) in
        [(pk1, pv1, pm1, pl1, pd1, &mut dk1, &mut dv1), (pk2, pv2, pm2, pl2, pd2, &mut dk2, &mut dv2)]
            .into_iter()
            .enumerate()
    {
        let ab = a.branch(b + 1);
        let (pdk, pdv) = (Ptr::of(dk), Ptr::of(dv));
        // SAFETY: as above; branch b's buffers have the lengths of `ab`.
        go(dual_cuda::launch_dims_bwd_dkdv(&a, b + 1), checked, "bwd_dkdv", || unsafe {
            flash_attn_bwd_dkdv_f32(
                pq.get(),
                pk.get(),
                pv.get(),
                pm.get(),
                pl.get(),
                pd.get(),
                pg.get(),
                pdk.get(),
                pdv.get(),
                ab,
            )
        });
    }
    [out, out1, out2, lse1, lse2, dq, dk1, dv1, dk2, dv2]
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The two-single-attention oracle in f64 on the inputs rounded to f32.
fn reference_all(c: &Case) -> All<f64> {
    let r = |x: &[f64]| f64s(&f32s(x));
    let (q, k1, v1, k2, v2, g) = (r(&c.q), r(&c.k1), r(&c.v1), r(&c.k2), r(&c.v2), r(&c.dout));
    let s = c.scale as f32 as f64;
    let (s1, s2) = (c.sh.branch(1), c.sh.branch(2));
    let (m1, m2) = (c.mask1.as_deref(), c.mask2.as_deref());
    let (o1, l1) = reference::forward(&s1, &q, &k1, &v1, m1, s);
    let (o2, l2) = reference::forward(&s2, &q, &k2, &v2, m2, s);
    let (dq1, dk1, dv1) = reference::backward(&s1, &q, &k1, &v1, m1, s, &g);
    let (dq2, dk2, dv2) = reference::backward(&s2, &q, &k2, &v2, m2, s, &g);
    [add(&o1, &o2), o1, o2, l1, l2, add(&dq1, &dq2), dk1, dv1, dk2, dv2]
}

/// Two single attentions in f32 on the CPU, flash (`composed = false`) or composed, summed in f32.
fn cpu32(c: &Case, composed: bool) -> All<f32> {
    let (q, k1, v1, k2, v2, g) =
        (f32s(&c.q), f32s(&c.k1), f32s(&c.v1), f32s(&c.k2), f32s(&c.v2), f32s(&c.dout));
    let s = c.scale as f32;
    let run = |sh: &AttentionShape, k: &[f32], v: &[f32], m: Option<&[u8]>| {
        let (lo, ll) = c.sh.out_lens();
        let (mut o, mut l) = (vec![0f32; lo], vec![0f32; ll]);
        let (mut dq, mut dk, mut dv) = (vec![0f32; q.len()], vec![0f32; k.len()], vec![0f32; v.len()]);
        if composed {
            attention_composed_forward(sh, &q, k, v, m, s, &mut o, &mut l);
            attention_composed_backward(sh, &q, k, v, m, s, &o, &l, &g, &mut dq, &mut dk, &mut dv);
        } else {
            attention_forward(sh, &q, k, v, m, s, &mut o, &mut l);
            attention_backward(sh, &q, k, v, m, s, &o, &l, &g, &mut dq, &mut dk, &mut dv);
        }
        (o, l, dq, dk, dv)
    };
    let (o1, l1, dq1, dk1, dv1) = run(&c.sh.branch(1), &k1, &v1, c.mask1.as_deref());
    let (o2, l2, dq2, dk2, dv2) = run(&c.sh.branch(2), &k2, &v2, c.mask2.as_deref());
    let sum = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<f32>>();
    [sum(&o1, &o2), o1, o2, l1, l2, sum(&dq1, &dq2), dk1, dv1, dk2, dv2]
}

fn red(s: &DualAttentionShape) -> usize {
    s.lq.max(s.l1).max(s.l2).max(s.d).max(s.dv)
}

fn compare(what: &str, got: &All<f32>, want: &All<f64>, tol: Tolerance) {
    let twice = Tolerance::new(2.0 * tol.rel, 2.0 * tol.abs);
    for i in 0..10 {
        let t = if i == 0 || i == 5 { twice } else { tol };
        assert_close(&format!("{what} {}", NAMES[i]), &f64s(&got[i]), &want[i], t);
    }
}

/// The fused kernels vs the f64 reference and vs the CPU flash f32 kernel (two single attentions).
fn check(c: &Case, checked: bool) -> All<f32> {
    let what = format!("{:?} masks={},{}", c.sh, c.mask1.is_some(), c.mask2.is_some());
    let got = gpu(c, checked);
    let tol = Tolerance::F32.for_reduction(red(&c.sh));
    compare(&format!("dual cuda vs f64 reference {what}"), &got, &reference_all(c), tol);
    let cpu = cpu32(c, false);
    let cpu: All<f64> = std::array::from_fn(|i| f64s(&cpu[i]));
    compare(&format!("dual cuda vs cpu flash {what}"), &got, &cpu, tol);
    got
}

#[test]
fn awkward_lengths_and_head_dims() {
    // lq, l1, l2 not multiples of any tile (64/32 forward, 32/16 backward), including 1; l1 != l2.
    let lens = [1usize, 17, 65];
    for (i, &lq) in lens.iter().enumerate() {
        for (j, &d) in [32usize, 64].iter().enumerate() {
            let (l1, l2) = (lens[(i + 1) % 3], lens[(i + 2) % 3]);
            check(&case(sh(2, 1, lq, l1, l2, d, d), (i % 2) as u8 * 2, 2, 100 + (3 * i + j) as u64), false);
        }
    }
    check(&case(sh(1, 2, 17, 40, 7, 64, 32), 0, 0, 7), false); // d != dv
}

#[test]
fn masked_branch_and_fully_masked_rows() {
    // batch 3 × heads 2; branch 2 fully masked for batch 0 (mask kind 1), branch 1 fully masked
    // for batch 0 too in the second case: that row's output is 0 and every gradient of it is 0.
    let c = case(sh(3, 2, 9, 37, 11, 16, 16), 2, 1, 21);
    let g = check(&c, false);
    let n = 2 * 9; // rows of batch 0
    assert!(g[4][..n].iter().all(|&x| x == f32::NEG_INFINITY), "lse2 of the masked branch");
    assert!(g[4][n..].iter().all(|x| x.is_finite()));
    assert!(g[2][..n * 16].iter().all(|&x| x == 0.0), "out2 of the masked branch");
    assert_eq!(g[0][..n * 16], g[1][..n * 16], "out = out1 where branch 2 is masked");
    assert!(g[8][..2 * 11 * 16].iter().chain(&g[9][..2 * 11 * 16]).all(|&x| x == 0.0), "dk2, dv2");
    let c = case(sh(3, 2, 9, 37, 11, 16, 16), 1, 1, 22);
    let g = check(&c, false);
    assert!(g[3][..n].iter().chain(&g[4][..n]).all(|&x| x == f32::NEG_INFINITY));
    assert!(g[0][..n * 16].iter().all(|&x| x == 0.0));
    assert!(g[5][..n * 16].iter().all(|&x| x == 0.0), "dq of a row with both branches masked");
    assert!(
        g.iter()
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .all(|(_, v)| v.iter().all(|x| x.is_finite()))
    );
}

#[test]
fn empty_branches_and_degenerate_sizes() {
    check(&case(sh(2, 1, 5, 0, 9, 8, 4), 0, 2, 1), false); // branch 1 empty
    check(&case(sh(2, 1, 5, 9, 0, 8, 4), 2, 0, 2), false); // branch 2 empty
    check(&case(sh(1, 1, 5, 0, 0, 8, 4), 0, 0, 3), false); // both empty: out 0, dq 0
    check(&case(sh(1, 2, 0, 9, 4, 8, 4), 0, 0, 4), false); // no queries: dk, dv 0
    check(&case(sh(1, 1, 1, 1, 1, 1, 1), 0, 0, 5), false);
}

#[test]
fn no_shared_memory_races() {
    // Every kernel of the chain under the race checker (small: it takes a global lock per access).
    check(&case(sh(1, 1, 33, 20, 9, 8, 8), 2, 2, 41), true);
}

/// Max |a − ref| over the elements.
fn max_err(a: &[f32], r: &[f64]) -> f64 {
    a.iter().zip(r).map(|(&x, y)| (x as f64 - y).abs()).fold(0.0, f64::max)
}

#[test]
fn fused_error_at_most_twice_composed() {
    for c in [case(sh(1, 2, 65, 65, 17, 64, 64), 0, 2, 1), case(sh(2, 1, 40, 70, 33, 32, 32), 2, 1, 2)] {
        let want = reference_all(&c);
        let fused = gpu(&c, false);
        let comp = cpu32(&c, true);
        for i in [0usize, 5, 6, 7, 8, 9] {
            let (ef, ec) = (max_err(&fused[i], &want[i]), max_err(&comp[i], &want[i]));
            println!("{:?} {}: fused {ef:e}, composed {ec:e}", c.sh, NAMES[i]);
            assert!(
                ef <= 2.0 * ec + 1e-6,
                "{:?}: fused {} error {ef:e} > 2 × composed error {ec:e} + 1e-6",
                c.sh,
                NAMES[i]
            );
        }
    }
}

// ---- 16-bit storage (bf16 / f16; f32 math) ----

type Fwd16 = unsafe extern "C" fn(
    *const u16,
    *const u16,
    *const u16,
    *const u8,
    *const u16,
    *const u16,
    *const u8,
    *mut u16,
    *mut u16,
    *mut u16,
    *mut f32,
    *mut f32,
    DualAttnArgs,
);
type Pre16 = unsafe extern "C" fn(*const u16, *const u16, *const u16, *mut f32, *mut f32, DualAttnArgs);
type Dq16 = unsafe extern "C" fn(
    *const u16,
    *const u16,
    *const u16,
    *const u8,
    *const u16,
    *const u16,
    *const u8,
    *const f32,
    *const f32,
    *const f32,
    *const f32,
    *const u16,
    *mut u16,
    DualAttnArgs,
);
type Dkdv16 = unsafe extern "C" fn(
    *const u16,
    *const u16,
    *const u16,
    *const u8,
    *const f32,
    *const f32,
    *const u16,
    *mut u16,
    *mut u16,
    AttnArgs,
);

unsafe extern "C" {
    fn dual_attn_fwd_bf16(
        q: *const u16,
        k1: *const u16,
        v1: *const u16,
        mask1: *const u8,
        k2: *const u16,
        v2: *const u16,
        mask2: *const u8,
        out: *mut u16,
        out1: *mut u16,
        out2: *mut u16,
        lse1: *mut f32,
        lse2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_fwd_f16(
        q: *const u16,
        k1: *const u16,
        v1: *const u16,
        mask1: *const u8,
        k2: *const u16,
        v2: *const u16,
        mask2: *const u8,
        out: *mut u16,
        out1: *mut u16,
        out2: *mut u16,
        lse1: *mut f32,
        lse2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_pre_bf16(
        out1: *const u16,
        out2: *const u16,
        dout: *const u16,
        dd1: *mut f32,
        dd2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_pre_f16(
        out1: *const u16,
        out2: *const u16,
        dout: *const u16,
        dd1: *mut f32,
        dd2: *mut f32,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_dq_bf16(
        q: *const u16,
        k1: *const u16,
        v1: *const u16,
        mask1: *const u8,
        k2: *const u16,
        v2: *const u16,
        mask2: *const u8,
        lse1: *const f32,
        lse2: *const f32,
        dd1: *const f32,
        dd2: *const f32,
        dout: *const u16,
        dq: *mut u16,
        a: DualAttnArgs,
    );
    fn dual_attn_bwd_dq_f16(
        q: *const u16,
        k1: *const u16,
        v1: *const u16,
        mask1: *const u8,
        k2: *const u16,
        v2: *const u16,
        mask2: *const u8,
        lse1: *const f32,
        lse2: *const f32,
        dd1: *const f32,
        dd2: *const f32,
        dout: *const u16,
        dq: *mut u16,
        a: DualAttnArgs,
    );
    fn flash_attn_bwd_dkdv_bf16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const u16,
        dk: *mut u16,
        dv: *mut u16,
        a: AttnArgs,
    );
    fn flash_attn_bwd_dkdv_f16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const u16,
        dk: *mut u16,
        dv: *mut u16,
        a: AttnArgs,
    );
}

/// The 16-bit chain (bf16 when `bf`) against the f64 two-attention reference on the inputs rounded
/// to the dtype. Tolerances: as the single-attention 16-bit tests (`cuda_tests.rs`, `check_tc_bwd`):
/// abs = rel = 2⁻⁷ (bf16) / 2⁻¹⁰ (f16), two ulps of an O(1) value, for the per-branch outputs and
/// gradients (f32 math; the error is the rounding of inputs seen by `D_b`, of `out_b`, and of each
/// result), twice that for the sums `out` (one more rounding of `out1` before the add) and `dq`;
/// `lse_b` (f32) gets the f32 bound.
fn check16(c: &Case, bf: bool) {
    use half::{bf16, f16};
    let to_bits = |x: &[f64]| -> Vec<u16> {
        x.iter().map(|&v| if bf { bf16::from_f64(v).to_bits() } else { f16::from_f64(v).to_bits() }).collect()
    };
    let from_bits = |b: u16| if bf { bf16::from_bits(b).to_f64() } else { f16::from_bits(b).to_f64() };
    let r = |x: &[u16]| x.iter().map(|&b| from_bits(b)).collect::<Vec<f64>>();
    let (q, k1, v1, k2, v2, g) =
        (to_bits(&c.q), to_bits(&c.k1), to_bits(&c.v1), to_bits(&c.k2), to_bits(&c.v2), to_bits(&c.dout));
    let (lo, ll) = c.sh.out_lens();
    let nan16 = |n: usize| vec![0x7fc0u16; n];
    let nan = |n: usize| vec![f32::NAN; n];
    let (mut out, mut out1, mut out2) = (nan16(lo), nan16(lo), nan16(lo));
    let (mut lse1, mut lse2, mut dd1, mut dd2) = (nan(ll), nan(ll), nan(ll), nan(ll));
    let (mut dq, mut dk1, mut dv1, mut dk2, mut dv2) =
        (nan16(q.len()), nan16(k1.len()), nan16(v1.len()), nan16(k2.len()), nan16(v2.len()));
    let a = DualAttnArgs::new(&c.sh, c.mask1.is_some(), c.mask2.is_some(), c.scale as f32 as f64);
    let m1: Vec<u8> = c.mask1.clone().unwrap_or_else(|| vec![0xAB]);
    let m2: Vec<u8> = c.mask2.clone().unwrap_or_else(|| vec![0xCD]);
    let (fwd, pre, dqk, dkdv): (Fwd16, Pre16, Dq16, Dkdv16) = if bf {
        (dual_attn_fwd_bf16, dual_attn_bwd_pre_bf16, dual_attn_bwd_dq_bf16, flash_attn_bwd_dkdv_bf16)
    } else {
        (dual_attn_fwd_f16, dual_attn_bwd_pre_f16, dual_attn_bwd_dq_f16, flash_attn_bwd_dkdv_f16)
    };
    let (pq, pk1, pv1, pk2, pv2, pg) =
        (CPtr::of(&q), CPtr::of(&k1), CPtr::of(&v1), CPtr::of(&k2), CPtr::of(&v2), CPtr::of(&g));
    let (pm1, pm2) = (CPtr::of(&m1), CPtr::of(&m2));
    {
        let (po, po1, po2) = (Ptr::of(&mut out), Ptr::of(&mut out1), Ptr::of(&mut out2));
        let (pl1, pl2) = (Ptr::of(&mut lse1), Ptr::of(&mut lse2));
        // SAFETY: every buffer has the length `DualAttnArgs` implies (Case::sh; masks batch·l_b).
        go(dual_cuda::launch_dims_fwd(&a), false, "fwd16", || unsafe {
            fwd(
                pq.get(),
                pk1.get(),
                pv1.get(),
                pm1.get(),
                pk2.get(),
                pv2.get(),
                pm2.get(),
                po.get(),
                po1.get(),
                po2.get(),
                pl1.get(),
                pl2.get(),
                a,
            )
        });
    }
    let (po1, po2, pl1, pl2) = (CPtr::of(&out1), CPtr::of(&out2), CPtr::of(&lse1), CPtr::of(&lse2));
    {
        let (pd1, pd2) = (Ptr::of(&mut dd1), Ptr::of(&mut dd2));
        // SAFETY: as above.
        go(dual_cuda::launch_dims_bwd_pre(&a), false, "pre16", || unsafe {
            pre(po1.get(), po2.get(), pg.get(), pd1.get(), pd2.get(), a)
        });
    }
    let (pd1, pd2) = (CPtr::of(&dd1), CPtr::of(&dd2));
    {
        let pdq = Ptr::of(&mut dq);
        // SAFETY: as above.
        go(dual_cuda::launch_dims_bwd_dq(&a), false, "dq16", || unsafe {
            dqk(
                pq.get(),
                pk1.get(),
                pv1.get(),
                pm1.get(),
                pk2.get(),
                pv2.get(),
                pm2.get(),
                pl1.get(),
                pl2.get(),
                pd1.get(),
                pd2.get(),
                pg.get(),
                pdq.get(),
                a,
            )
        });
    }
    for (b, (pk, pv, pm, pl, pd, dk, dv)) in
        [(pk1, pv1, pm1, pl1, pd1, &mut dk1, &mut dv1), (pk2, pv2, pm2, pl2, pd2, &mut dk2, &mut dv2)]
            .into_iter()
            .enumerate()
    {
        let ab = a.branch(b + 1);
        let (pdk, pdv) = (Ptr::of(dk), Ptr::of(dv));
        // SAFETY: as above; branch b's buffers have the lengths of `ab`.
        go(dual_cuda::launch_dims_bwd_dkdv(&a, b + 1), false, "dkdv16", || unsafe {
            dkdv(
                pq.get(),
                pk.get(),
                pv.get(),
                pm.get(),
                pl.get(),
                pd.get(),
                pg.get(),
                pdk.get(),
                pdv.get(),
                ab,
            )
        });
    }
    // The f64 reference on the rounded inputs.
    let rc = Case {
        sh: c.sh,
        q: r(&q),
        k1: r(&k1),
        v1: r(&v1),
        k2: r(&k2),
        v2: r(&v2),
        dout: r(&g),
        mask1: c.mask1.clone(),
        mask2: c.mask2.clone(),
        scale: c.scale as f32 as f64,
    };
    let want = reference_all(&rc);
    let e = if bf { 2f64.powi(-7) } else { 2f64.powi(-10) };
    let got: [Vec<f64>; 10] =
        [r(&out), r(&out1), r(&out2), f64s(&lse1), f64s(&lse2), r(&dq), r(&dk1), r(&dv1), r(&dk2), r(&dv2)];
    let what = format!("{} {:?}", if bf { "bf16" } else { "f16" }, c.sh);
    for i in 0..10 {
        let t = match i {
            3 | 4 => Tolerance::F32.for_reduction(red(&c.sh)),
            0 | 5 => Tolerance::new(2.0 * e, 2.0 * e),
            _ => Tolerance::new(e, e),
        };
        assert_close(&format!("{what} {}", NAMES[i]), &got[i], &want[i], t);
    }
}

#[test]
fn half_precision_chain() {
    for bf in [true, false] {
        check16(&case(sh(2, 1, 17, 65, 9, 32, 32), 2, 1, 81), bf);
        check16(&case(sh(1, 1, 9, 20, 33, 64, 16), 0, 2, 82), bf);
    }
}
