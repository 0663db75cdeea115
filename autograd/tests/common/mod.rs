//! Input makers for the autograd tests.
#![allow(dead_code)]

use kernels::testing::TestRng;
use tensor::Tensor;

/// f64 values uniform in [lo, hi).
pub fn uni(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let mut r = TestRng::new(seed);
    let n: usize = shape.iter().product();
    let v = (0..n).map(|_| lo + (hi - lo) * (r.uniform() * 0.5 + 0.5)).collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// f64 values in ±[0.2, 1.2): away from the kinks of abs/relu/sign at 0.
pub fn away(shape: &[usize], seed: u64) -> Tensor {
    let mut r = TestRng::new(seed);
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|_| {
            let u = r.uniform();
            u.signum() * (0.2 + u.abs())
        })
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// Standard-ish values in [-1, 1).
pub fn std(shape: &[usize], seed: u64) -> Tensor {
    uni(shape, seed, -1.0, 1.0)
}

/// Distinct, well-separated values in a random order (for max/min without ties).
pub fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut idx: Vec<usize> = (0..n).collect();
    let mut r = TestRng::new(seed);
    for i in (1..n).rev() {
        idx.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
    }
    Tensor::from_vec(idx.iter().map(|&i| i as f64 * 0.1 - 1.0).collect::<Vec<f64>>(), shape).unwrap()
}
