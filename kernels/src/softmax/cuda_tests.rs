//! `softmax.cu` through the host emulator against the CPU softmax kernels (`inner = 1`): strided and
//! permuted inputs (the softmax axis moved last), row lengths 1, 33, 1000, 4097 (warp and block
//! paths), special values, backward, and the 16-bit storage types.
//!
//! Tolerances: f32 vs the CPU f32 kernel 2e-6 relative + 1e-7 absolute for softmax (the CPU uses a
//! polynomial `exp` within 2 ulp, the emulator libm `expf`, and the sums run in other orders),
//! 1e-6 absolute for log-softmax, backward 1e-5 relative + 2e-6 absolute (the row dot product of
//! up to 4097 terms in f32). f64 1e-12. f16/bf16: the CPU f32 result on the widened input, rounded
//! to the dtype, within one unit of the dtype.

use super::cuda;
use super::*;
use crate::cuda_abi::StridedArg;
use crate::elementwise::tests_support::random_view;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{TestRng, Tolerance, assert_close};
use crate::{Float, StridedLayout};
use half::{bf16, f16};

type FwdFn<S> = unsafe extern "C" fn(*const S, StridedArg, *mut S, i64, i64);
type BwdFn<S> = unsafe extern "C" fn(*const S, *const S, *mut S, i64, i64);

unsafe extern "C" {
    fn softmax_fwd_f32(x: *const f32, xl: StridedArg, y: *mut f32, rows: i64, n: i64);
    fn log_softmax_fwd_f32(x: *const f32, xl: StridedArg, y: *mut f32, rows: i64, n: i64);
    fn softmax_bwd_f32(y: *const f32, dy: *const f32, dx: *mut f32, rows: i64, n: i64);
    fn log_softmax_bwd_f32(y: *const f32, dy: *const f32, dx: *mut f32, rows: i64, n: i64);
    fn softmax_fwd_f64(x: *const f64, xl: StridedArg, y: *mut f64, rows: i64, n: i64);
    fn log_softmax_fwd_f64(x: *const f64, xl: StridedArg, y: *mut f64, rows: i64, n: i64);
    fn softmax_bwd_f64(y: *const f64, dy: *const f64, dx: *mut f64, rows: i64, n: i64);
    fn log_softmax_bwd_f64(y: *const f64, dy: *const f64, dx: *mut f64, rows: i64, n: i64);
    fn softmax_fwd_f16(x: *const u16, xl: StridedArg, y: *mut u16, rows: i64, n: i64);
    fn log_softmax_fwd_f16(x: *const u16, xl: StridedArg, y: *mut u16, rows: i64, n: i64);
    fn softmax_bwd_f16(y: *const u16, dy: *const u16, dx: *mut u16, rows: i64, n: i64);
    fn softmax_fwd_bf16(x: *const u16, xl: StridedArg, y: *mut u16, rows: i64, n: i64);
    fn log_softmax_fwd_bf16(x: *const u16, xl: StridedArg, y: *mut u16, rows: i64, n: i64);
    fn log_softmax_bwd_bf16(y: *const u16, dy: *const u16, dx: *mut u16, rows: i64, n: i64);
}

fn fwd<S: Copy + Default>(k: FwdFn<S>, x: &[S], l: &StridedLayout, rows: usize, n: usize) -> Vec<S> {
    let arg = StridedArg::from_layout(l).unwrap();
    let mut y = vec![S::default(); rows * n];
    let (xp, yp) = (CPtr::of(x), Ptr::of(&mut y));
    // SAFETY: x covers the layout; y holds rows·n elements.
    emu::launch(cuda::launch_dims(rows, n), || unsafe { k(xp.get(), arg, yp.get(), rows as i64, n as i64) })
        .unwrap();
    y
}

fn bwd<S: Copy + Default>(k: BwdFn<S>, y: &[S], dy: &[S], rows: usize, n: usize) -> Vec<S> {
    let mut dx = vec![S::default(); rows * n];
    let (yp, gp, dp) = (CPtr::of(y), CPtr::of(dy), Ptr::of(&mut dx));
    // SAFETY: y, dy, dx hold rows·n elements.
    emu::launch(cuda::launch_dims(rows, n), || unsafe {
        k(yp.get(), gp.get(), dp.get(), rows as i64, n as i64)
    })
    .unwrap();
    dx
}

/// The view's elements in row-major order (what the CPU kernels take).
fn gather<T: Copy>(src: &[T], l: &StridedLayout) -> Vec<T> {
    let mut v = Vec::with_capacity(l.numel());
    l.for_each_offset(|o| v.push(src[o]));
    v
}

fn cpu_fwd<T: Float>(log: bool, x: &[T], rows: usize, n: usize) -> Vec<T> {
    let mut y = vec![T::from_f64(0.0); rows * n];
    if log {
        log_softmax_forward(rows, n, 1, x, &mut y)
    } else {
        softmax_forward(rows, n, 1, x, &mut y)
    }
    y
}

fn cpu_bwd<T: Float>(log: bool, y: &[T], dy: &[T], rows: usize, n: usize) -> Vec<T> {
    let mut dx = vec![T::from_f64(0.0); rows * n];
    if log {
        log_softmax_backward(rows, n, 1, y, dy, &mut dx)
    } else {
        softmax_backward(rows, n, 1, y, dy, &mut dx)
    }
    dx
}

/// A `[rows, n]` view: a random permuted/stepped view of `[n, rows]` transposed (so the softmax axis
/// sits at an arbitrary stride), or of `[rows, n]` directly.
fn view(rng: &mut TestRng, rows: usize, n: usize, transposed: bool) -> StridedLayout {
    if transposed {
        let l = random_view(rng, &[n, rows]);
        StridedLayout::new(vec![rows, n], vec![l.strides[1], l.strides[0]], l.offset)
    } else {
        random_view(rng, &[rows, n])
    }
}

fn inputs(rng: &mut TestRng, len: usize, scale: f64) -> Vec<f64> {
    (0..len).map(|_| rng.uniform() * scale).collect()
}

#[test]
fn forward_and_backward_match_the_cpu_on_strided_rows() {
    let mut rng = TestRng::new(401);
    for &(rows, n, tr) in &[
        (3usize, 1usize, false),
        (5, 33, true),
        (9, 32, false),
        (2, 1000, true),
        (2, 4097, false),
        (1, 1025, true),
    ] {
        let l = view(&mut rng, rows, n, tr);
        let src = inputs(&mut rng, l.required_len(), 4.0);
        let dy64 = inputs(&mut rng, rows * n, 3.0);
        for log in [false, true] {
            let (kf32, kf64): (FwdFn<f32>, FwdFn<f64>) = if log {
                (log_softmax_fwd_f32, log_softmax_fwd_f64)
            } else {
                (softmax_fwd_f32, softmax_fwd_f64)
            };
            let (kb32, kb64): (BwdFn<f32>, BwdFn<f64>) = if log {
                (log_softmax_bwd_f32, log_softmax_bwd_f64)
            } else {
                (softmax_bwd_f32, softmax_bwd_f64)
            };
            let what = format!("{} rows {rows} n {n}", if log { "log_softmax" } else { "softmax" });

            let x64 = src.clone();
            let y64 = fwd(kf64, &x64, &l, rows, n);
            let want64 = cpu_fwd(log, &gather(&x64, &l), rows, n);
            assert_close(&format!("{what} f64 fwd"), &y64, &want64, Tolerance::new(1e-12, 1e-14));
            let dx64 = bwd(kb64, &want64, &dy64, rows, n);
            assert_close(
                &format!("{what} f64 bwd"),
                &dx64,
                &cpu_bwd(log, &want64, &dy64, rows, n),
                Tolerance::new(1e-12, 1e-13),
            );

            let x32: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            let y32 = fwd(kf32, &x32, &l, rows, n);
            let want32 = cpu_fwd(log, &gather(&x32, &l), rows, n);
            let tol = if log { Tolerance::new(2e-6, 1e-6) } else { Tolerance::new(2e-6, 1e-7) };
            assert_close(&format!("{what} f32 fwd"), &y32, &want32, tol);
            let dy32: Vec<f32> = dy64.iter().map(|&v| v as f32).collect();
            let dx32 = bwd(kb32, &want32, &dy32, rows, n);
            assert_close(
                &format!("{what} f32 bwd"),
                &dx32,
                &cpu_bwd(log, &want32, &dy32, rows, n),
                Tolerance::new(1e-5, 2e-6),
            );
        }
    }
}

#[test]
fn special_values_follow_the_cpu() {
    let (rows, n) = (6usize, 40usize);
    let mut rng = TestRng::new(402);
    let mut x = inputs(&mut rng, rows * n, 1e4); // large magnitudes: needs the max subtraction
    let ninf = f64::NEG_INFINITY;
    x[..n].fill(ninf); // all -inf
    x[n + 3] = f64::NAN; // a NaN
    x[2 * n + 39] = f64::INFINITY; // +inf
    for i in (3 * n..4 * n).step_by(3) {
        x[i] = ninf; // some -inf in a finite row
    }
    x[4 * n..5 * n].fill(7.5); // constant row
    let l = StridedLayout::contiguous(&[rows, n]);
    for log in [false, true] {
        let k: FwdFn<f64> = if log { log_softmax_fwd_f64 } else { softmax_fwd_f64 };
        let got = fwd(k, &x, &l, rows, n);
        assert_close(
            &format!("special log={log}"),
            &got,
            &cpu_fwd(log, &x, rows, n),
            Tolerance::new(1e-12, 1e-14),
        );
        let k: FwdFn<f32> = if log { log_softmax_fwd_f32 } else { softmax_fwd_f32 };
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let got = fwd(k, &x32, &l, rows, n);
        assert_close(
            &format!("special f32 log={log}"),
            &got,
            &cpu_fwd(log, &x32, rows, n),
            Tolerance::new(2e-6, 1e-6),
        );
    }
    // The CPU semantics this relies on.
    let y = cpu_fwd(false, &x, rows, n);
    assert!(y[..3 * n].iter().all(|v| v.is_nan()));
    assert_eq!(y[3 * n], 0.0);
}

#[test]
fn sixteen_bit_softmax_computes_in_f32_and_rounds_once() {
    let mut rng = TestRng::new(403);
    for &(rows, n) in &[(4usize, 33usize), (2, 1500)] {
        let l = view(&mut rng, rows, n, true);
        let src = inputs(&mut rng, l.required_len(), 4.0);
        let dy = inputs(&mut rng, rows * n, 2.0);
        type Conv = (fn(f64) -> u16, fn(u16) -> f32);
        let f16c: Conv = (|v| f16::from_f64(v).to_bits(), |b| f16::from_bits(b).to_f32());
        let bf16c: Conv = (|v| bf16::from_f64(v).to_bits(), |b| bf16::from_bits(b).to_f32());
        let cases: [(&str, Conv, FwdFn<u16>, bool, Tolerance); 4] = [
            ("softmax f16", f16c, softmax_fwd_f16, false, Tolerance::new(1e-3, 1e-7)),
            ("log_softmax f16", f16c, log_softmax_fwd_f16, true, Tolerance::new(1e-3, 1e-5)),
            ("softmax bf16", bf16c, softmax_fwd_bf16, false, Tolerance::new(8e-3, 1e-7)),
            ("log_softmax bf16", bf16c, log_softmax_fwd_bf16, true, Tolerance::new(8e-3, 1e-5)),
        ];
        for (what, (enc, dec), k, log, tol) in cases {
            let x: Vec<u16> = src.iter().map(|&v| enc(v)).collect();
            let got: Vec<f32> = fwd(k, &x, &l, rows, n).iter().map(|&b| dec(b)).collect();
            let wide: Vec<f32> = gather(&x, &l).iter().map(|&b| dec(b)).collect();
            let want: Vec<f32> = cpu_fwd(log, &wide, rows, n).iter().map(|&v| dec(enc(v as f64))).collect();
            assert_close(&format!("{what} rows {rows} n {n}"), &got, &want, tol);
            // Backward from the stored 16-bit y.
            let yb: Vec<u16> = want.iter().map(|&v| enc(v as f64)).collect();
            let gb: Vec<u16> = dy.iter().map(|&v| enc(v)).collect();
            let kb: Option<BwdFn<u16>> = match what {
                "softmax f16" => Some(softmax_bwd_f16),
                "log_softmax bf16" => Some(log_softmax_bwd_bf16),
                _ => None,
            };
            if let Some(kb) = kb {
                let got: Vec<f32> = bwd(kb, &yb, &gb, rows, n).iter().map(|&b| dec(b)).collect();
                let yw: Vec<f32> = yb.iter().map(|&b| dec(b)).collect();
                let gw: Vec<f32> = gb.iter().map(|&b| dec(b)).collect();
                let want: Vec<f32> =
                    cpu_bwd(log, &yw, &gw, rows, n).iter().map(|&v| dec(enc(v as f64))).collect();
                // One unit of the dtype plus the f32 dot product's error relative to |dy| ~ 2.
                assert_close(&format!("{what} bwd"), &got, &want, Tolerance::new(tol.rel, 1e-5));
            }
        }
    }
}

#[test]
fn block_path_passes_the_shared_memory_race_check() {
    let mut rng = TestRng::new(404);
    let (rows, n) = (2usize, 1300usize);
    let x: Vec<f32> = inputs(&mut rng, rows * n, 3.0).iter().map(|&v| v as f32).collect();
    let l = StridedLayout::contiguous(&[rows, n]);
    let arg = StridedArg::from_layout(&l).unwrap();
    let mut y = vec![0f32; rows * n];
    let mut dx = vec![0f32; rows * n];
    let (xp, yp) = (CPtr::of(&x), Ptr::of(&mut y));
    let dims = cuda::launch_dims(rows, n);
    // SAFETY: x, y hold rows·n elements.
    let races = emu::launch_checked(dims, || unsafe {
        softmax_fwd_f32(xp.get(), arg, yp.get(), rows as i64, n as i64)
    })
    .unwrap();
    assert!(races.is_empty(), "{races:?}");
    let (yp, dp) = (CPtr::of(&y), Ptr::of(&mut dx));
    // SAFETY: y, dy (= x), dx hold rows·n elements.
    let races = emu::launch_checked(dims, || unsafe {
        softmax_bwd_f32(yp.get(), xp.get(), dp.get(), rows as i64, n as i64)
    })
    .unwrap();
    assert!(races.is_empty(), "{races:?}");
}

#[test]
fn kernel_names_follow_the_convention() {
    assert_eq!(cuda::kernel_name(false, false, "f32"), "softmax_fwd_f32");
    assert_eq!(cuda::kernel_name(true, true, "bf16"), "log_softmax_bwd_bf16");
    assert_eq!(
        crate::reduce::cuda::kernel_name(crate::reduce::ReduceOp::Max, true, "f16"),
        "reduce_argmax_f16"
    );
    let var = crate::reduce::ReduceOp::Var { correction: 1 };
    assert_eq!(crate::reduce::cuda::kernel_name(var, false, "f64"), "reduce_var_f64");
}
