//! Softmax tests: kernels (f32 and f64) against the naive f64 reference in `reference.rs`.

use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Runs all four kernels in f32 and f64 on `x`, `dy` and compares with the reference.
fn check(outer: usize, n: usize, inner: usize, x: &[f64], dy: &[f64]) {
    let len = outer * n * inner;
    let what = format!("[{outer},{n},{inner}]");
    for log in [false, true] {
        let y_ref = reference::forward(outer, n, inner, x, log);
        let dx_ref = reference::backward(outer, n, inner, &y_ref, dy, log);
        // f64 kernel vs f64 reference: different summation order only; reductions of length n.
        let tol64 = Tolerance::F64.for_reduction(n);
        let mut y = vec![0.0f64; len];
        let mut dx = vec![0.0f64; len];
        if log {
            log_softmax_forward(outer, n, inner, x, &mut y);
            log_softmax_backward(outer, n, inner, &y_ref, dy, &mut dx);
        } else {
            softmax_forward(outer, n, inner, x, &mut y);
            softmax_backward(outer, n, inner, &y_ref, dy, &mut dx);
        }
        assert_close(&format!("f64 fwd log={log} {what}"), &y, &y_ref, tol64);
        assert_close(&format!("f64 bwd log={log} {what}"), &dx, &dx_ref, tol64);

        // f32 kernel (inputs rounded to f32) vs the f64 reference on the same rounded inputs. Outputs
        // are O(1) probabilities or log-probabilities; f32 rounding of the inputs themselves is
        // excluded by widening the rounded inputs. Log-softmax of a large-magnitude (1e4) row has
        // values ~1e4 whose ulp is ~1e-3, hence the relative part. Tolerance::F32 grown by √n.
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let gf: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let y_ref32 = reference::forward(outer, n, inner, &widen(&xf), log);
        let yf_in: Vec<f32> = y_ref32.iter().map(|&v| v as f32).collect();
        let dx_ref32 = reference::backward(outer, n, inner, &widen(&yf_in), &widen(&gf), log);
        let mut y32 = vec![0.0f32; len];
        let mut dx32 = vec![0.0f32; len];
        if log {
            log_softmax_forward(outer, n, inner, &xf, &mut y32);
            log_softmax_backward(outer, n, inner, &yf_in, &gf, &mut dx32);
        } else {
            softmax_forward(outer, n, inner, &xf, &mut y32);
            softmax_backward(outer, n, inner, &yf_in, &gf, &mut dx32);
        }
        let tol32 = Tolerance::F32.for_reduction(n);
        assert_close(&format!("f32 fwd log={log} {what}"), &y32, &y_ref32, tol32);
        assert_close(&format!("f32 bwd log={log} {what}"), &dx32, &dx_ref32, tol32);
    }
}

fn inputs(outer: usize, n: usize, inner: usize, mag: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut r = TestRng::new(seed);
    let len = outer * n * inner;
    let x = (0..len).map(|_| r.uniform() * mag).collect();
    let dy = r.vec_f64(len);
    (x, dy)
}

#[test]
fn awkward_sizes() {
    for &(o, n, i) in
        &[(1, 1, 1), (3, 1, 1), (2, 17, 1), (5, 63, 1), (4, 65, 1), (2, 130, 3), (3, 7, 33), (1, 1000, 1)]
    {
        let (x, dy) = inputs(o, n, i, 3.0, (o * 1000 + n * 10 + i) as u64);
        check(o, n, i, &x, &dy);
    }
}

#[test]
fn many_rows_parallel_path() {
    // Large enough to cross the parallel threshold on both paths.
    for &(o, n, i) in &[(513, 97, 1), (37, 51, 19)] {
        let (x, dy) = inputs(o, n, i, 5.0, 7);
        check(o, n, i, &x, &dy);
    }
}

#[test]
fn large_magnitude_does_not_overflow() {
    // exp(1e4) overflows both f32 and f64 without the max subtraction.
    for &(o, n, i) in &[(4, 33, 1), (2, 9, 5)] {
        let (x, dy) = inputs(o, n, i, 1e4, 3);
        check(o, n, i, &x, &dy);
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut y = vec![0.0f32; xf.len()];
        softmax_forward(o, n, i, &xf, &mut y);
        assert!(y.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn neg_inf_entries_and_all_neg_inf_rows() {
    let ninf = f32::NEG_INFINITY;
    // Row 0: one -inf entry -> probability 0 there. Row 1: all -inf -> NaN (PyTorch semantics).
    let x = [0.5f32, ninf, 1.0, ninf, ninf, ninf];
    for inner_layout in [false, true] {
        let mut y = [0.0f32; 6];
        let mut ly = [0.0f32; 6];
        if inner_layout {
            // Same data transposed to [1, 3, 2]: column 0 = row 0, column 1 = row 1.
            let xt = [x[0], x[3], x[1], x[4], x[2], x[5]];
            let mut yt = [0.0f32; 6];
            let mut lyt = [0.0f32; 6];
            softmax_forward(1, 3, 2, &xt, &mut yt);
            log_softmax_forward(1, 3, 2, &xt, &mut lyt);
            y = [yt[0], yt[2], yt[4], yt[1], yt[3], yt[5]];
            ly = [lyt[0], lyt[2], lyt[4], lyt[1], lyt[3], lyt[5]];
        } else {
            softmax_forward(2, 3, 1, &x, &mut y);
            log_softmax_forward(2, 3, 1, &x, &mut ly);
        }
        let e = (0.5f64).exp() + 1f64.exp();
        let expect = [0.5f64.exp() / e, 0.0, 1.0 / e * 1f64.exp(), f64::NAN, f64::NAN, f64::NAN];
        assert_close("softmax with -inf", &y[..], &expect[..], Tolerance::F32);
        let lexpect = [0.5 - e.ln(), f64::NEG_INFINITY, 1.0 - e.ln(), f64::NAN, f64::NAN, f64::NAN];
        assert_close("log_softmax with -inf", &ly[..], &lexpect[..], Tolerance::F32);
    }
}

#[test]
fn zero_sizes_are_noops() {
    let mut y: [f32; 0] = [];
    softmax_forward(0, 5, 1, &[], &mut y);
    softmax_forward(3, 0, 2, &[], &mut y);
    log_softmax_backward(3, 4, 0, &[], &[], &mut y);
}

#[test]
#[should_panic(expected = "buffer `y` has length")]
fn wrong_length_panics() {
    let mut y = [0.0f32; 3];
    softmax_forward(2, 2, 1, &[0.0; 4], &mut y);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn prop_shapes(outer in 1usize..5, n in 1usize..70, inner in 1usize..6, mag in prop::sample::select(vec![0.1f64, 4.0, 1e4]), seed in 0u64..1000) {
        let (x, dy) = inputs(outer, n, inner, mag, seed);
        check(outer, n, inner, &x, &dy);
    }
}
