//! `conv.cu` through the host emulator, against the f64 oracle (`reference.rs`) evaluated on the
//! inputs rounded to the kernel's dtype, and (f32) against the CPU conv entry points.
//!
//! Shapes: n = 2, small odd images (5×7, 7×9), channels 3..20, so the GEMMs have partial tiles on
//! every edge (M, N not multiples of 64, K not a multiple of 8 / 32), with 3×3 pad 1, 1×1, stride 2,
//! a non-square dilated kernel with asymmetric padding, groups 2 and 3, M > 64 (two row tiles), with
//! and without bias. Every element of each output buffer is compared (the kernels overwrite their
//! output: buffers start as NaN). Each launch is at most a few blocks, so each test runs in seconds.
//!
//! Tolerances (`|got − want| ≤ abs + rel·|want|`, want = f64 reference on the same rounded inputs;
//! K is the reduction length of the pass's GEMM; inputs uniform in [-1, 1), so |out| = O(√K)):
//! * f32: `Tolerance::F32.for_reduction(K)` (f32 FMA accumulation of exact-or-rounded products);
//! * f64: `Tolerance::F64.for_reduction(K)`;
//! * bf16/f16: the f32 accumulation above, then one rounding of the output to the dtype (the
//!   reference rounds its f64 result the same way, so they may differ by one ulp where the two
//!   straddle a rounding boundary): rel 2⁻⁷ (bf16) / 2⁻¹⁰ (f16) plus the f32 tolerance. The emulated
//!   `mma.sync` rebuilds A and B from the fragments per the PTX ISA layout, so a wrong fragment
//!   index fails here.
//!
//! Mutations tried once by hand (both caught): swapping the A fragment registers `af[i][1]` and
//! `af[i][2]` in the tensor-core kernel failed every bf16/f16 test; dropping the dgrad validity
//! check `oy·sh != ty` failed the stride-2 input-gradient cases (f32, f64) and the CPU comparison.

use super::cuda::{self, ConvArgs, ConvPass};
use super::{Conv2dParams, reference};
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{StorageDtype, TestRng, Tolerance, assert_close};

unsafe extern "C" {
    fn conv2d_fwd_f32(x: *const f32, w: *const f32, b: *const f32, y: *mut f32, a: ConvArgs);
    fn conv2d_dgrad_f32(dy: *const f32, w: *const f32, dx: *mut f32, a: ConvArgs);
    fn conv2d_wgrad_f32(x: *const f32, dy: *const f32, dw: *mut f32, a: ConvArgs);
    fn conv2d_fwd_f64(x: *const f64, w: *const f64, b: *const f64, y: *mut f64, a: ConvArgs);
    fn conv2d_dgrad_f64(dy: *const f64, w: *const f64, dx: *mut f64, a: ConvArgs);
    fn conv2d_wgrad_f64(x: *const f64, dy: *const f64, dw: *mut f64, a: ConvArgs);
    fn conv2d_fwd_bf16(x: *const u16, w: *const u16, b: *const u16, y: *mut u16, a: ConvArgs);
    fn conv2d_dgrad_bf16(dy: *const u16, w: *const u16, dx: *mut u16, a: ConvArgs);
    fn conv2d_wgrad_bf16(x: *const u16, dy: *const u16, dw: *mut u16, a: ConvArgs);
    fn conv2d_fwd_f16(x: *const u16, w: *const u16, b: *const u16, y: *mut u16, a: ConvArgs);
    fn conv2d_dgrad_f16(dy: *const u16, w: *const u16, dx: *mut u16, a: ConvArgs);
    fn conv2d_wgrad_f16(x: *const u16, dy: *const u16, dw: *mut u16, a: ConvArgs);
    fn conv2d_wgrad_split_f32(x: *const f32, dy: *const f32, ws: *mut f32, a: ConvArgs, splits: i64);
    fn conv2d_wgrad_split_f64(x: *const f64, dy: *const f64, ws: *mut f64, a: ConvArgs, splits: i64);
    fn conv2d_wgrad_split_bf16(x: *const u16, dy: *const u16, ws: *mut f32, a: ConvArgs, splits: i64);
    fn conv2d_wgrad_split_f16(x: *const u16, dy: *const u16, ws: *mut f32, a: ConvArgs, splits: i64);
    fn conv2d_wgrad_finish_f32(ws: *const f32, dw: *mut f32, len: i64, splits: i64);
    fn conv2d_wgrad_finish_f64(ws: *const f64, dw: *mut f64, len: i64, splits: i64);
    fn conv2d_wgrad_finish_bf16(ws: *const f32, dw: *mut u16, len: i64, splits: i64);
    fn conv2d_wgrad_finish_f16(ws: *const f32, dw: *mut u16, len: i64, splits: i64);
}

/// The kernels' storage dtypes (`crate::testing::StorageDtype`).
type Kind = StorageDtype;
use StorageDtype::*;

#[allow(clippy::too_many_arguments)]
fn params(
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dParams {
    let p = Conv2dParams {
        n,
        c_in,
        h: hw[0],
        w: hw[1],
        c_out,
        kh: k[0],
        kw: k[1],
        stride,
        padding,
        dilation,
        groups,
    };
    p.validate().unwrap();
    p
}

/// The test shapes (see the module docs).
fn cases() -> Vec<(&'static str, Conv2dParams)> {
    vec![
        ("3x3 pad 1", params(2, 5, 7, [5, 7], [3, 3], [1, 1], [1, 1], [1, 1], 1)),
        ("1x1", params(2, 20, 12, [5, 7], [1, 1], [1, 1], [0, 0], [1, 1], 1)),
        ("3x3 stride 2 pad 1", params(2, 4, 6, [7, 9], [3, 3], [2, 2], [1, 1], [1, 1], 1)),
        ("3x3 pad 1 groups 2", params(2, 8, 6, [5, 7], [3, 3], [1, 1], [1, 1], [1, 1], 2)),
        (
            "3x2 dil 2 pad (2,1) stride (2,1) groups 3",
            params(2, 9, 6, [7, 6], [3, 2], [2, 1], [2, 1], [2, 2], 3),
        ),
        ("70 out channels", params(2, 3, 70, [5, 4], [3, 3], [1, 1], [1, 1], [1, 1], 1)),
    ]
}

/// Runs `pass` of kernel `kind` on `p` with random inputs rounded to the dtype; returns (got,
/// want from the f64 reference, K).
fn run(kind: Kind, pass: ConvPass, p: &Conv2dParams, bias: bool, seed: u64) -> (Vec<f64>, Vec<f64>, usize) {
    let mut rng = TestRng::new(seed);
    let mut rv = |n: usize| -> Vec<f64> { rng.vec_f64(n).into_iter().map(|x| kind.round(x)).collect() };
    let (x, w, dy, b) = (rv(p.x_len()), rv(p.w_len()), rv(p.y_len()), rv(p.c_out));
    let (inputs, out_len, want): (Vec<&[f64]>, usize, Vec<f64>) = match pass {
        ConvPass::Forward => {
            (vec![&x, &w], p.y_len(), reference::conv2d_forward(p, &x, &w, bias.then_some(&b[..])))
        }
        ConvPass::InputGrad => (vec![&dy, &w], p.x_len(), reference::conv2d_backward_input(p, &w, &dy)),
        ConvPass::WeightGrad => (vec![&x, &dy], p.w_len(), reference::conv2d_backward_weight(p, &x, &dy)),
    };
    let want: Vec<f64> = want.into_iter().map(|v| kind.round(v)).collect();
    let args = ConvArgs::new(p);
    let dims = cuda::launch_dims(pass, p, kind.name()).unwrap();
    let got = match kind {
        F32 | F64 => {
            macro_rules! simt {
                ($t:ty, $fwd:ident, $dg:ident, $wg:ident) => {{
                    let i0: Vec<$t> = inputs[0].iter().map(|&v| v as $t).collect();
                    let i1: Vec<$t> = inputs[1].iter().map(|&v| v as $t).collect();
                    let bb: Vec<$t> = b.iter().map(|&v| v as $t).collect();
                    let mut out = vec![<$t>::NAN; out_len];
                    if let Some(dims) = dims {
                        let (a0, a1, ab, o) =
                            (CPtr::of(&i0), CPtr::of(&i1), CPtr::of(&bb), Ptr::of(&mut out));
                        let bp = if bias { ab.get() } else { std::ptr::null() };
                        let bp = CPtr(bp);
                        // SAFETY: buffers have the lengths the kernel reads/writes for `args`
                        // (x_len, w_len, y_len, c_out), and live across the launch.
                        emu::launch(dims, || unsafe {
                            match pass {
                                ConvPass::Forward => $fwd(a0.get(), a1.get(), bp.get(), o.get(), args),
                                ConvPass::InputGrad => $dg(a0.get(), a1.get(), o.get(), args),
                                ConvPass::WeightGrad => $wg(a0.get(), a1.get(), o.get(), args),
                            }
                        })
                        .unwrap();
                    }
                    out.iter().map(|&v| v as f64).collect::<Vec<f64>>()
                }};
            }
            if kind == F32 {
                simt!(f32, conv2d_fwd_f32, conv2d_dgrad_f32, conv2d_wgrad_f32)
            } else {
                simt!(f64, conv2d_fwd_f64, conv2d_dgrad_f64, conv2d_wgrad_f64)
            }
        }
        Bf16 | F16 => {
            let (i0, i1, bb) =
                (kind.encode_half(inputs[0]), kind.encode_half(inputs[1]), kind.encode_half(&b));
            let mut out = vec![0x7fc0u16; out_len]; // NaN in both formats
            if let Some(dims) = dims {
                let (a0, a1, ab, o) = (CPtr::of(&i0), CPtr::of(&i1), CPtr::of(&bb), Ptr::of(&mut out));
                let bp = CPtr(if bias { ab.get() } else { std::ptr::null() });
                let bf = kind == Bf16;
                // SAFETY: as above.
                emu::launch(dims, || unsafe {
                    match (pass, bf) {
                        (ConvPass::Forward, true) => {
                            conv2d_fwd_bf16(a0.get(), a1.get(), bp.get(), o.get(), args)
                        }
                        (ConvPass::InputGrad, true) => conv2d_dgrad_bf16(a0.get(), a1.get(), o.get(), args),
                        (ConvPass::WeightGrad, true) => conv2d_wgrad_bf16(a0.get(), a1.get(), o.get(), args),
                        (ConvPass::Forward, false) => {
                            conv2d_fwd_f16(a0.get(), a1.get(), bp.get(), o.get(), args)
                        }
                        (ConvPass::InputGrad, false) => conv2d_dgrad_f16(a0.get(), a1.get(), o.get(), args),
                        (ConvPass::WeightGrad, false) => conv2d_wgrad_f16(a0.get(), a1.get(), o.get(), args),
                    }
                })
                .unwrap();
            }
            kind.decode_half(&out)
        }
    };
    (got, want, pass.gemm_dims(p).2)
}

fn check_all(kind: Kind, pass: ConvPass) {
    for (i, (what, p)) in cases().into_iter().enumerate() {
        for bias in [false, true] {
            if bias && pass != ConvPass::Forward {
                continue;
            }
            let (got, want, k) = run(kind, pass, &p, bias, 100 + i as u64);
            assert_close(
                &format!("{} {} {what} bias {bias}", pass.stem(), kind.name()),
                &got,
                &want,
                kind.reduction_tol(k),
            );
        }
    }
}

#[test]
fn f32_forward() {
    check_all(F32, ConvPass::Forward);
}
#[test]
fn f32_input_grad() {
    check_all(F32, ConvPass::InputGrad);
}
#[test]
fn f32_weight_grad() {
    check_all(F32, ConvPass::WeightGrad);
}
#[test]
fn f64_all_passes() {
    for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
        check_all(F64, pass);
    }
}
#[test]
fn bf16_forward() {
    check_all(Bf16, ConvPass::Forward);
}
#[test]
fn bf16_input_grad() {
    check_all(Bf16, ConvPass::InputGrad);
}
#[test]
fn bf16_weight_grad() {
    check_all(Bf16, ConvPass::WeightGrad);
}
#[test]
fn f16_all_passes() {
    for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
        check_all(F16, pass);
    }
}

/// The f32 kernels agree with the CPU conv entry points (im2col + packed GEMM / direct).
#[test]
fn f32_matches_the_cpu_conv() {
    let p = params(2, 6, 8, [6, 5], [3, 3], [2, 1], [1, 1], [1, 1], 2);
    let mut rng = TestRng::new(7);
    let (x, w, b, dy) =
        (rng.vec_f32(p.x_len()), rng.vec_f32(p.w_len()), rng.vec_f32(p.c_out), rng.vec_f32(p.y_len()));
    let mut cy = vec![0f32; p.y_len()];
    let mut cdx = vec![0f32; p.x_len()];
    let mut cdw = vec![0f32; p.w_len()];
    super::conv2d_forward(&p, &x, &w, Some(&b), &mut cy);
    super::conv2d_backward_input(&p, &w, &dy, &mut cdx);
    super::conv2d_backward_weight(&p, &x, &dy, &mut cdw);
    let args = ConvArgs::new(&p);
    let (mut y, mut dx, mut dw) =
        (vec![f32::NAN; p.y_len()], vec![f32::NAN; p.x_len()], vec![f32::NAN; p.w_len()]);
    let (xp, wp, bp, dyp) = (CPtr::of(&x), CPtr::of(&w), CPtr::of(&b), CPtr::of(&dy));
    let (yp, dxp, dwp) = (Ptr::of(&mut y), Ptr::of(&mut dx), Ptr::of(&mut dw));
    for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
        let dims = cuda::launch_dims(pass, &p, "f32").unwrap().unwrap();
        // SAFETY: buffers sized for `p`, alive across the launch.
        emu::launch(dims, || unsafe {
            match pass {
                ConvPass::Forward => conv2d_fwd_f32(xp.get(), wp.get(), bp.get(), yp.get(), args),
                ConvPass::InputGrad => conv2d_dgrad_f32(dyp.get(), wp.get(), dxp.get(), args),
                ConvPass::WeightGrad => conv2d_wgrad_f32(xp.get(), dyp.get(), dwp.get(), args),
            }
        })
        .unwrap();
    }
    let t = Tolerance::F32.for_reduction(54);
    assert_close("fwd vs cpu", &y, &cy, t);
    assert_close("dgrad vs cpu", &dx, &cdx, t);
    assert_close("wgrad vs cpu", &dw, &cdw, t);
}

/// No shared-memory races (every shared access is recorded) in the SIMT and tensor-core kernels.
#[test]
fn race_check_simt_and_tensor_core() {
    let p = params(1, 6, 5, [4, 5], [3, 3], [1, 1], [1, 1], [1, 1], 1);
    let args = ConvArgs::new(&p);
    let mut rng = TestRng::new(3);
    let x = rng.vec_f32(p.x_len());
    let w = rng.vec_f32(p.w_len());
    let mut y = vec![0f32; p.y_len()];
    let (xp, wp, yp) = (CPtr::of(&x), CPtr::of(&w), Ptr::of(&mut y));
    let dims = cuda::launch_dims(ConvPass::Forward, &p, "f32").unwrap().unwrap();
    // SAFETY: buffers sized for `p`; null bias is allowed.
    let races = emu::launch_checked(dims, || unsafe {
        conv2d_fwd_f32(xp.get(), wp.get(), std::ptr::null(), yp.get(), args)
    })
    .unwrap();
    assert!(races.is_empty(), "{races:?}");
    let xb = Bf16.encode_half(&x.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let dy = Bf16.encode_half(&rng.vec_f64(p.y_len()));
    let mut dw = vec![0u16; p.w_len()];
    let (xbp, dyp, dwp) = (CPtr::of(&xb), CPtr::of(&dy), Ptr::of(&mut dw));
    let dims = cuda::launch_dims(ConvPass::WeightGrad, &p, "bf16").unwrap().unwrap();
    // SAFETY: as above.
    let races =
        emu::launch_checked(dims, || unsafe { conv2d_wgrad_bf16(xbp.get(), dyp.get(), dwp.get(), args) })
            .unwrap();
    assert!(races.is_empty(), "{races:?}");
}

#[test]
fn launch_dims_and_limits() {
    let p = params(2, 8, 130, [5, 7], [3, 3], [1, 1], [1, 1], [1, 1], 2);
    let d = cuda::launch_dims(ConvPass::Forward, &p, "f32").unwrap().unwrap();
    assert_eq!(d.grid, (2, 2, 2)); // N = 70 → 2 tiles of 64, M = opg = 65 → 2, 2 groups
    assert_eq!(d.block, (256, 1, 1));
    let d = cuda::launch_dims(ConvPass::WeightGrad, &p, "bf16").unwrap().unwrap();
    assert_eq!(d.grid, (1, 2, 2)); // N = 4·9 = 36, M = 65
    assert_eq!(d.block, (128, 1, 1));
    let empty = Conv2dParams { n: 0, ..p };
    assert_eq!(cuda::launch_dims(ConvPass::Forward, &empty, "f32").unwrap(), None);
    assert!(cuda::launch_dims(ConvPass::Forward, &p, "i32").is_err());
    let huge = Conv2dParams { n: 1 << 20, h: 1 << 10, w: 1 << 10, ..p };
    assert!(cuda::supported(&huge).is_err());
    assert_eq!(cuda::kernel_name(ConvPass::InputGrad, "bf16"), "conv2d_dgrad_bf16");
}

/// An empty batch gives a zero weight gradient (the reduction over n·oh·ow is empty).
#[test]
fn empty_batch_weight_grad_is_zero() {
    let p = params(0, 4, 6, [5, 5], [3, 3], [1, 1], [1, 1], [1, 1], 1);
    for kind in [F32, Bf16] {
        let (got, want, _) = run(kind, ConvPass::WeightGrad, &p, false, 1);
        assert_eq!(got, want);
        assert!(got.iter().all(|&v| v == 0.0));
    }
}

/// The split-K weight gradient (partials into a workspace, then the ordered finishing sum) for
/// `splits` k-ranges; returns (got, want) as [`run`].
fn run_split(kind: Kind, p: &Conv2dParams, splits: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = TestRng::new(seed);
    let mut rv = |n: usize| -> Vec<f64> { rng.vec_f64(n).into_iter().map(|x| kind.round(x)).collect() };
    let (x, dy) = (rv(p.x_len()), rv(p.y_len()));
    let want: Vec<f64> =
        reference::conv2d_backward_weight(p, &x, &dy).into_iter().map(|v| kind.round(v)).collect();
    let args = ConvArgs::new(p);
    let dims = cuda::wgrad_split_launch_dims(p, kind.name(), splits).unwrap().unwrap();
    let fin = cuda::wgrad_finish_launch_dims(p);
    let (len, s) = (p.w_len() as i64, splits as i64);
    let got = match kind {
        F32 | F64 => {
            macro_rules! simt {
                ($t:ty, $split:ident, $finish:ident) => {{
                    let (xv, dyv): (Vec<$t>, Vec<$t>) =
                        (x.iter().map(|&v| v as $t).collect(), dy.iter().map(|&v| v as $t).collect());
                    let mut ws = vec![<$t>::NAN; splits * p.w_len()];
                    let mut dw = vec![<$t>::NAN; p.w_len()];
                    let (xp, dyp, wsp, dwp) =
                        (CPtr::of(&xv), CPtr::of(&dyv), Ptr::of(&mut ws), Ptr::of(&mut dw));
                    // SAFETY: x, dy sized for `p`; ws holds splits·w_len, dw w_len elements.
                    emu::launch(dims, || unsafe { $split(xp.get(), dyp.get(), wsp.get(), args, s) }).unwrap();
                    // SAFETY: as above.
                    emu::launch(fin, || unsafe { $finish(wsp.cst(), dwp.get(), len, s) }).unwrap();
                    dw.iter().map(|&v| v as f64).collect::<Vec<f64>>()
                }};
            }
            if kind == F32 {
                simt!(f32, conv2d_wgrad_split_f32, conv2d_wgrad_finish_f32)
            } else {
                simt!(f64, conv2d_wgrad_split_f64, conv2d_wgrad_finish_f64)
            }
        }
        Bf16 | F16 => {
            let (xv, dyv) = (kind.encode_half(&x), kind.encode_half(&dy));
            let mut ws = vec![f32::NAN; splits * p.w_len()];
            let mut dw = vec![0x7fc0u16; p.w_len()];
            let (xp, dyp, wsp, dwp) = (CPtr::of(&xv), CPtr::of(&dyv), Ptr::of(&mut ws), Ptr::of(&mut dw));
            let bf = kind == Bf16;
            // SAFETY: as above.
            emu::launch(dims, || unsafe {
                if bf {
                    conv2d_wgrad_split_bf16(xp.get(), dyp.get(), wsp.get(), args, s)
                } else {
                    conv2d_wgrad_split_f16(xp.get(), dyp.get(), wsp.get(), args, s)
                }
            })
            .unwrap();
            // SAFETY: as above.
            emu::launch(fin, || unsafe {
                if bf {
                    conv2d_wgrad_finish_bf16(wsp.cst(), dwp.get(), len, s)
                } else {
                    conv2d_wgrad_finish_f16(wsp.cst(), dwp.get(), len, s)
                }
            })
            .unwrap();
            kind.decode_half(&dw)
        }
    };
    (got, want)
}

/// Split-K weight gradient: 2 splits, an uneven split count, and more splits than k-tiles (the
/// surplus splits write zero partials), on every dtype.
#[test]
fn split_k_weight_grad() {
    let cases = cases();
    for kind in [F32, F64, Bf16, F16] {
        for (i, (what, p)) in [&cases[0], &cases[2], &cases[4]].into_iter().enumerate() {
            let k = ConvPass::WeightGrad.gemm_dims(p).2;
            let bk = if matches!(kind, Bf16 | F16) { cuda::TC_TILE.2 } else { cuda::SIMT_TILE.2 };
            for splits in [2, 3, k.div_ceil(bk) + 2] {
                let (got, want) = run_split(kind, p, splits, 200 + i as u64);
                assert_close(
                    &format!("wgrad split {splits} {} {what}", kind.name()),
                    &got,
                    &want,
                    kind.reduction_tol(k),
                );
            }
        }
    }
}

#[test]
fn split_k_plan() {
    // The benchmark layer: 144 dw tiles, n·oh·ow = 32768 → 4 splits; a big dw needs none.
    let big = params(8, 256, 256, [64, 64], [3, 3], [1, 1], [1, 1], [1, 1], 1);
    assert_eq!(cuda::wgrad_splits(&big, "f32"), 4);
    assert_eq!(cuda::wgrad_splits(&big, "bf16"), 4);
    let small_k = params(1, 4, 4, [8, 8], [3, 3], [1, 1], [1, 1], [1, 1], 1);
    assert_eq!(cuda::wgrad_splits(&small_k, "f32"), 1);
    let d = cuda::wgrad_split_launch_dims(&big, "f32", 4).unwrap().unwrap();
    assert_eq!(d.grid, (36, 4, 4));
    assert_eq!(cuda::wgrad_workspace_dtype("bf16"), "f32");
}
