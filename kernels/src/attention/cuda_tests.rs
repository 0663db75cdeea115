//! `attention.cu` through the host emulator, against the CPU flash kernel (f32) and the naive f64
//! reference (`reference.rs`, evaluated on the inputs rounded to f32). The cases come from the CPU
//! tests (`tests.rs`: q scaled by 3 so the softmax is peaked, uniform k, v, dout).
//!
//! Every test runs the whole chain the GPU runtime will run: forward (`out`, `lse`), then
//! `bwd_pre` → `dq` and `dkdv` on the kernel's own `out`/`lse`. Output buffers start as NaN, so an
//! element a kernel forgets to write fails the comparison.
//!
//! Tolerances (|got − want| ≤ abs + rel·|want|): `Tolerance::F32.for_reduction(n)` (rel 1e-4·√n,
//! abs 1e-5·√n) with n the longest reduction (`max(lq, lk, d, dv)`), the same bound the CPU flash f32
//! kernel is held to in `tests.rs`: values and gradients are O(1) for these inputs, and both
//! implementations accumulate in f32 with different orders (per-lane partial sums, rotated dot
//! products, `expf` vs the CPU polynomial exp), so neither is bit-exact to the other. `lse` for a
//! fully masked row must be exactly `-inf` and its out/gradients exactly 0.
//!
//! The 16-bit kernels (tensor-core forward, SIMT backward on 16-bit storage) are checked against the
//! f64 reference on the inputs rounded to bf16/f16, with tolerances derived beside `check_tc` and
//! `check_tc_bwd`. Tests were seen to fail on purpose-made bugs: no `exp(m_old − m_new)` rescale of
//! the forward accumulators, the key mask ignored in dK/dV, `D` dropped from dS in the dQ kernel,
//! and the tensor-core A fragment registers 1 and 2 swapped.

use super::cuda::{self, AttnArgs};
use super::tests::{Case, Grads, case, red, reference_for, run, shape};
use super::{AttentionShape, reference};
use crate::cuda_abi::LaunchDims;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{Tolerance, assert_close};

unsafe extern "C" {
    fn flash_attn_fwd_f32(
        q: *const f32,
        k: *const f32,
        v: *const f32,
        key_mask: *const u8,
        out: *mut f32,
        lse: *mut f32,
        a: AttnArgs,
    );
    fn flash_attn_bwd_pre_f32(out: *const f32, dout: *const f32, dd: *mut f32, a: AttnArgs);
    fn flash_attn_bwd_dq_f32(
        q: *const f32,
        k: *const f32,
        v: *const f32,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const f32,
        dq: *mut f32,
        a: AttnArgs,
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

/// Forward + backward of the CUDA kernels on the case's inputs rounded to f32.
fn gpu(c: &Case, checked: bool) -> Grads<f32> {
    let cv = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let (q, k, v, g) = (cv(&c.q), cv(&c.k), cv(&c.v), cv(&c.dout));
    let (lq_, lk_, lv_, lo, ll) = c.sh.lens();
    let nan = |n: usize| vec![f32::NAN; n];
    let (mut out, mut lse, mut dd) = (nan(lo), nan(ll), nan(ll));
    let (mut dq, mut dk, mut dv) = (nan(lq_), nan(lk_), nan(lv_));
    let a = AttnArgs::new(&c.sh, c.mask.is_some(), c.scale as f32 as f64);
    let mask: Vec<u8> = c.mask.clone().unwrap_or_else(|| vec![0xAB]);
    let (pq, pk, pv, pg, pm) = (CPtr::of(&q), CPtr::of(&k), CPtr::of(&v), CPtr::of(&g), CPtr::of(&mask));
    {
        let (po, pl) = (Ptr::of(&mut out), Ptr::of(&mut lse));
        // SAFETY: every buffer has the length `AttnArgs` implies (Case::sh.lens(), mask batch·lk).
        go(cuda::launch_dims_fwd(&a), checked, "fwd", || unsafe {
            flash_attn_fwd_f32(pq.get(), pk.get(), pv.get(), pm.get(), po.get(), pl.get(), a)
        });
    }
    let (po, pl) = (CPtr::of(&out), CPtr::of(&lse));
    {
        let pd = Ptr::of(&mut dd);
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_pre(&a), checked, "bwd_pre", || unsafe {
            flash_attn_bwd_pre_f32(po.get(), pg.get(), pd.get(), a)
        });
    }
    let pd = CPtr::of(&dd);
    {
        let pdq = Ptr::of(&mut dq);
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_dq(&a), checked, "bwd_dq", || unsafe {
            flash_attn_bwd_dq_f32(
                pq.get(),
                pk.get(),
                pv.get(),
                pm.get(),
                pl.get(),
                pd.get(),
                pg.get(),
                pdq.get(),
                a,
            )
        });
    }
    {
        let (pdk, pdv) = (Ptr::of(&mut dk), Ptr::of(&mut dv));
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_dkdv(&a), checked, "bwd_dkdv", || unsafe {
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
                a,
            )
        });
    }
    (out, lse, dq, dk, dv)
}

const NAMES: [&str; 5] = ["out", "lse", "dq", "dk", "dv"];

fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

fn compare(what: &str, got: &Grads<f32>, want: &[Vec<f64>; 5], tol: Tolerance) {
    let g = [&got.0, &got.1, &got.2, &got.3, &got.4];
    for i in 0..5 {
        assert_close(&format!("{what} {}", NAMES[i]), &to64(g[i]), &want[i], tol);
    }
}

/// The CUDA kernels vs the f64 reference and vs the CPU flash f32 kernel.
fn check(c: &Case, checked: bool) -> Grads<f32> {
    let what = format!("{:?} mask={}", c.sh, c.mask.is_some());
    let got = gpu(c, checked);
    let tol = Tolerance::F32.for_reduction(red(&c.sh));
    let r = reference_for::<f32>(c);
    compare(&format!("cuda vs f64 reference {what}"), &got, &[r.0, r.1, r.2, r.3, r.4], tol);
    let cpu = run::<f32>(c, false);
    let cpu = [to64(&cpu.0), to64(&cpu.1), to64(&cpu.2), to64(&cpu.3), to64(&cpu.4)];
    compare(&format!("cuda vs cpu flash {what}"), &got, &cpu, tol);
    got
}

#[test]
fn awkward_lengths_self_and_cross() {
    // lq, lk not multiples of any tile (64/32 forward, 32/16 backward), including 1; lq != lk.
    let lens = [1usize, 17, 63, 65, 130];
    for (i, &lq) in lens.iter().enumerate() {
        let lk = lens[(i + 2) % lens.len()];
        check(&case(shape(2, 1, lq, lk, 32, 32), (i % 2) as u8 * 3, 200 + i as u64), false);
    }
    check(&case(shape(1, 1, 65, 65, 32, 32), 0, 7), false);
}

#[test]
fn head_dims_32_64_128_and_dv_ne_d() {
    check(&case(shape(1, 2, 17, 40, 64, 64), 3, 11), false);
    check(&case(shape(1, 1, 9, 33, 128, 128), 1, 12), false);
    check(&case(shape(1, 1, 20, 18, 64, 32), 0, 13), false);
    check(&case(shape(1, 1, 20, 18, 7, 128), 3, 14), false);
    check(&case(shape(2, 1, 5, 70, 33, 12), 2, 15), false); // a whole masked 64-key tile
}

#[test]
fn key_mask_batches_and_heads() {
    // batch 3 × heads 2: the mask row is per batch element, shared by its heads; batch 0 fully masked.
    let c = case(shape(3, 2, 9, 37, 16, 16), 1, 21);
    let (out, lse, dq, dk, dv) = check(&c, false);
    let n = 2 * 9;
    assert!(lse[..n].iter().all(|&x| x == f32::NEG_INFINITY));
    assert!(lse[n..].iter().all(|x| x.is_finite()));
    assert!(out[..n * 16].iter().all(|&x| x == 0.0));
    assert!(dq[..n * 16].iter().all(|&x| x == 0.0));
    assert!(dk[..2 * 37 * 16].iter().all(|&x| x == 0.0));
    assert!(dv[..2 * 37 * 16].iter().all(|&x| x == 0.0));
    assert!(out.iter().chain(&dq).chain(&dk).chain(&dv).all(|x| x.is_finite()));
}

#[test]
fn masked_keys_have_no_effect() {
    // Replacing the masked keys' k and v with huge values changes nothing in out, lse, dq, and those
    // keys get exactly zero dk, dv (a kernel that ignored the mask would be far off).
    let sh = shape(2, 1, 19, 45, 16, 8);
    let c = case(sh, 3, 31);
    let base = gpu(&c, false);
    let mask = c.mask.clone().unwrap();
    let mut c2 = case(sh, 3, 31);
    for h in 0..2 {
        for j in 0..sh.lk {
            if mask[h * sh.lk + j] == 0 {
                c2.k[(h * sh.lk + j) * sh.d..(h * sh.lk + j + 1) * sh.d].iter_mut().for_each(|x| *x = 1e3);
                c2.v[(h * sh.lk + j) * sh.dv..(h * sh.lk + j + 1) * sh.dv].iter_mut().for_each(|x| *x = -1e3);
            }
        }
    }
    let pert = gpu(&c2, false);
    assert_eq!(base.0, pert.0, "out");
    assert_eq!(base.1, pert.1, "lse");
    assert_eq!(base.2, pert.2, "dq");
    for h in 0..2 {
        for j in 0..sh.lk {
            let (dk, dv) =
                (&pert.3[(h * sh.lk + j) * sh.d..][..sh.d], &pert.4[(h * sh.lk + j) * sh.dv..][..sh.dv]);
            if mask[h * sh.lk + j] == 0 {
                assert!(dk.iter().chain(dv).all(|&x| x == 0.0), "masked key {h},{j} has a gradient");
            } else {
                assert!(dv.iter().any(|&x| x != 0.0), "kept key {h},{j} has no gradient");
            }
        }
    }
    // And without the mask the same perturbation does change the output (the test can fail).
    let mut c3 = case(sh, 0, 31);
    c3.k = c2.k.clone();
    c3.v = c2.v.clone();
    assert_ne!(gpu(&c3, false).0, base.0);
}

#[test]
fn empty_and_degenerate_sizes() {
    // lk == 0: every row fully masked (out 0, lse -inf, dq 0); lq == 0: dk = dv = 0; bh == 0.
    check(&case(shape(2, 1, 5, 0, 8, 4), 0, 1), false);
    check(&case(shape(1, 2, 0, 9, 8, 4), 0, 2), false);
    check(&case(shape(0, 2, 3, 3, 8, 8), 0, 3), false);
    check(&case(shape(1, 1, 1, 1, 1, 1), 0, 4), false);
}

#[test]
fn no_shared_memory_races() {
    // Every kernel under the race checker (small: the checker takes a global lock per access).
    check(&case(shape(1, 1, 33, 20, 8, 8), 3, 41), true);
}

#[test]
fn reference_agrees_with_itself_on_a_known_value() {
    // Sanity of the oracle path used above: one query, two keys, d = 1.
    let sh = AttentionShape { batch: 1, heads: 1, lq: 1, lk: 2, d: 1, dv: 1 };
    let (out, lse) = reference::forward(&sh, &[1.0], &[0.0, 1.0], &[2.0, 4.0], None, 1.0);
    let e = std::f64::consts::E;
    assert!((out[0] - (2.0 + 4.0 * e) / (1.0 + e)).abs() < 1e-12);
    assert!((lse[0] - (1.0 + e).ln()).abs() < 1e-12);
}

// ---- tensor-core forward (bf16 / f16) ----

unsafe extern "C" {
    fn flash_attn_fwd_bf16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        out: *mut u16,
        lse: *mut f32,
        a: AttnArgs,
    );
    fn flash_attn_bwd_pre_bf16(out: *const u16, dout: *const u16, dd: *mut f32, a: AttnArgs);
    fn flash_attn_bwd_pre_f16(out: *const u16, dout: *const u16, dd: *mut f32, a: AttnArgs);
    fn flash_attn_bwd_dq_bf16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const u16,
        dq: *mut u16,
        a: AttnArgs,
    );
    fn flash_attn_bwd_dq_f16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        lse: *const f32,
        dd: *const f32,
        dout: *const u16,
        dq: *mut u16,
        a: AttnArgs,
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
    fn flash_attn_fwd_f16(
        q: *const u16,
        k: *const u16,
        v: *const u16,
        key_mask: *const u8,
        out: *mut u16,
        lse: *mut f32,
        a: AttnArgs,
    );
}

/// Runs the bf16 (`bf`) or f16 forward; returns (out as f64, lse) and checks them against the f64
/// reference on the inputs rounded to the dtype.
///
/// Tolerances: scores are exact products summed in f32 (lse: `Tolerance::F32.for_reduction`, as for
/// the f32 kernel); `out` additionally sees P rounded to the 16-bit dtype before `P·V` (relative
/// 2⁻⁹ bf16 / 2⁻¹² f16 per weight; with |v| ≤ 1 and Σ P = 1 at most that absolute) and the final
/// rounding of `out` (half an ulp, relative): abs = rel = 2⁻⁷ (bf16) / 2⁻¹⁰ (f16), two ulps.
fn check_tc(c: &Case, bf: bool, checked: bool) -> (Vec<f64>, Vec<f32>) {
    use half::{bf16, f16};
    let to_bits = |x: &[f64]| -> Vec<u16> {
        x.iter().map(|&v| if bf { bf16::from_f64(v).to_bits() } else { f16::from_f64(v).to_bits() }).collect()
    };
    let from_bits = |b: u16| if bf { bf16::from_bits(b).to_f64() } else { f16::from_bits(b).to_f64() };
    let (q, k, v) = (to_bits(&c.q), to_bits(&c.k), to_bits(&c.v));
    let (_, _, _, lo, ll) = c.sh.lens();
    let (mut out, mut lse) = (vec![0x7fc0u16; lo], vec![f32::NAN; ll]);
    let a = AttnArgs::new(&c.sh, c.mask.is_some(), c.scale as f32 as f64);
    let mask: Vec<u8> = c.mask.clone().unwrap_or_else(|| vec![0xAB]);
    let (pq, pk, pv, pm) = (CPtr::of(&q), CPtr::of(&k), CPtr::of(&v), CPtr::of(&mask));
    {
        let (po, pl) = (Ptr::of(&mut out), Ptr::of(&mut lse));
        let f = if bf { flash_attn_fwd_bf16 } else { flash_attn_fwd_f16 };
        // SAFETY: every buffer has the length `AttnArgs` implies (Case::sh.lens(), mask batch·lk).
        go(cuda::launch_dims_fwd_tc(&a), checked, "fwd_tc", || unsafe {
            f(pq.get(), pk.get(), pv.get(), pm.get(), po.get(), pl.get(), a)
        });
    }
    let r = |x: &[u16]| x.iter().map(|&b| from_bits(b)).collect::<Vec<f64>>();
    let (qr, kr, vr) = (r(&q), r(&k), r(&v));
    let (want_o, want_l) = reference::forward(&c.sh, &qr, &kr, &vr, c.mask.as_deref(), c.scale as f32 as f64);
    let got_o = r(&out);
    let what = format!("{} {:?} mask={}", if bf { "bf16" } else { "f16" }, c.sh, c.mask.is_some());
    let e = if bf { 2f64.powi(-7) } else { 2f64.powi(-10) };
    assert_close(&format!("{what} out"), &got_o, &want_o, Tolerance::new(e, e));
    assert_close(&format!("{what} lse"), &to64(&lse), &want_l, Tolerance::F32.for_reduction(red(&c.sh)));
    (got_o, lse)
}

#[test]
fn tensor_core_forward_awkward_shapes() {
    for bf in [true, false] {
        check_tc(&case(shape(2, 1, 17, 65, 32, 32), 3, 51), bf, false);
        check_tc(&case(shape(1, 1, 130, 63, 64, 64), 0, 52), bf, false);
        check_tc(&case(shape(1, 1, 9, 33, 128, 128), 1, 53), bf, false);
        check_tc(&case(shape(1, 2, 20, 18, 7, 12), 3, 54), bf, false); // d, dv not multiples of 16
    }
}

#[test]
fn tensor_core_forward_masked_rows_and_empty() {
    let (out, lse) = check_tc(&case(shape(3, 2, 9, 37, 16, 16), 1, 61), true, false);
    assert!(lse[..18].iter().all(|&x| x == f32::NEG_INFINITY));
    assert!(out[..18 * 16].iter().all(|&x| x == 0.0));
    check_tc(&case(shape(2, 1, 5, 0, 16, 8), 0, 62), false, false);
    check_tc(&case(shape(1, 1, 1, 1, 1, 1), 0, 63), true, false);
}

#[test]
fn tensor_core_forward_no_shared_memory_races() {
    check_tc(&case(shape(1, 1, 20, 40, 16, 16), 3, 71), true, true);
}

/// The whole 16-bit chain: tensor-core forward, then the 16-bit backward kernels on its `out` (16-bit)
/// and `lse` (f32), against the f64 reference backward on the inputs rounded to the dtype.
///
/// Tolerance of the gradients: abs = rel = 2⁻⁷ (bf16) / 2⁻¹⁰ (f16), two ulps of an O(1) value. The
/// error sources beyond f32 rounding: `out` rounded to the dtype enters `D = dout·out` (relative
/// 2⁻⁹ / 2⁻¹² per element), so `dP − D` carries an absolute error of about an ulp, which dq and dk
/// average with the weights P (Σ P = 1 per query) times |k|, |q| ≤ 3 and dv sums with P; then each
/// gradient is rounded once (half an ulp). Observed maxima (printed with `--nocapture`): 2.4e-3 bf16,
/// 2.9e-4 f16, i.e. 3–4× inside the bound.
fn check_tc_bwd(c: &Case, bf: bool, checked: bool) {
    use half::{bf16, f16};
    let to_bits = |x: &[f64]| -> Vec<u16> {
        x.iter().map(|&v| if bf { bf16::from_f64(v).to_bits() } else { f16::from_f64(v).to_bits() }).collect()
    };
    let from_bits = |b: u16| if bf { bf16::from_bits(b).to_f64() } else { f16::from_bits(b).to_f64() };
    let r = |x: &[u16]| x.iter().map(|&b| from_bits(b)).collect::<Vec<f64>>();
    let (q, k, v, g) = (to_bits(&c.q), to_bits(&c.k), to_bits(&c.v), to_bits(&c.dout));
    let (lq_, lk_, lv_, lo, ll) = c.sh.lens();
    let nan16 = |n: usize| vec![0x7fc0u16; n];
    let (mut out, mut lse, mut dd) = (nan16(lo), vec![f32::NAN; ll], vec![f32::NAN; ll]);
    let (mut dq, mut dk, mut dv) = (nan16(lq_), nan16(lk_), nan16(lv_));
    let a = AttnArgs::new(&c.sh, c.mask.is_some(), c.scale as f32 as f64);
    let mask: Vec<u8> = c.mask.clone().unwrap_or_else(|| vec![0xAB]);
    let (pq, pk, pv, pg, pm) = (CPtr::of(&q), CPtr::of(&k), CPtr::of(&v), CPtr::of(&g), CPtr::of(&mask));
    {
        let (po, pl) = (Ptr::of(&mut out), Ptr::of(&mut lse));
        let f = if bf { flash_attn_fwd_bf16 } else { flash_attn_fwd_f16 };
        // SAFETY: every buffer has the length `AttnArgs` implies (Case::sh.lens(), mask batch·lk).
        go(cuda::launch_dims_fwd_tc(&a), checked, "fwd_tc", || unsafe {
            f(pq.get(), pk.get(), pv.get(), pm.get(), po.get(), pl.get(), a)
        });
    }
    let (po, pl) = (CPtr::of(&out), CPtr::of(&lse));
    {
        let pd = Ptr::of(&mut dd);
        let f = if bf { flash_attn_bwd_pre_bf16 } else { flash_attn_bwd_pre_f16 };
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_pre(&a), checked, "bwd_pre16", || unsafe {
            f(po.get(), pg.get(), pd.get(), a)
        });
    }
    let pd = CPtr::of(&dd);
    {
        let pdq = Ptr::of(&mut dq);
        let f = if bf { flash_attn_bwd_dq_bf16 } else { flash_attn_bwd_dq_f16 };
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_dq(&a), checked, "bwd_dq16", || unsafe {
            f(pq.get(), pk.get(), pv.get(), pm.get(), pl.get(), pd.get(), pg.get(), pdq.get(), a)
        });
    }
    {
        let (pdk, pdv) = (Ptr::of(&mut dk), Ptr::of(&mut dv));
        let f = if bf { flash_attn_bwd_dkdv_bf16 } else { flash_attn_bwd_dkdv_f16 };
        // SAFETY: as above.
        go(cuda::launch_dims_bwd_dkdv(&a), checked, "bwd_dkdv16", || unsafe {
            f(pq.get(), pk.get(), pv.get(), pm.get(), pl.get(), pd.get(), pg.get(), pdk.get(), pdv.get(), a)
        });
    }
    let (qr, kr, vr, gr) = (r(&q), r(&k), r(&v), r(&g));
    let s = c.scale as f32 as f64;
    let (wq, wk, wv) = reference::backward(&c.sh, &qr, &kr, &vr, c.mask.as_deref(), s, &gr);
    let what = format!("{} {:?} mask={}", if bf { "bf16" } else { "f16" }, c.sh, c.mask.is_some());
    let e = if bf { 2f64.powi(-7) } else { 2f64.powi(-10) };
    for (name, got, want) in [("dq", &dq, &wq), ("dk", &dk, &wk), ("dv", &dv, &wv)] {
        let got = r(got);
        let err = got.iter().zip(want.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        println!("{what} {name}: max abs error {err:e}");
        assert_close(&format!("{what} {name}"), &got, want, Tolerance::new(e, e));
    }
}

#[test]
fn half_precision_backward_chain() {
    for bf in [true, false] {
        check_tc_bwd(&case(shape(2, 1, 17, 65, 32, 32), 3, 81), bf, false);
        check_tc_bwd(&case(shape(1, 1, 9, 33, 128, 128), 1, 82), bf, false);
        check_tc_bwd(&case(shape(3, 1, 20, 18, 7, 12), 1, 83), bf, false); // batch 0 fully masked
    }
    check_tc_bwd(&case(shape(1, 1, 10, 12, 8, 8), 3, 84), true, true);
}
