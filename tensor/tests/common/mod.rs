//! Helpers shared by the tensor integration tests: naive multi-index reference code.
#![allow(dead_code)]

use tensor::{DType, Tensor};

/// Every multi-index of `shape` in row-major order.
pub fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut idx = vec![0; shape.len()];
    for _ in 0..n {
        out.push(idx.clone());
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

/// Row-major flat position of a multi-index.
pub fn flat(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// A contiguous f64 tensor with distinct, deterministic values.
pub fn seq(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 100.0 - 5.0).collect();
    Tensor::from_vec(v, shape).unwrap()
}

/// Random-ish f32 tensor.
pub fn rnd(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, seed, 0, DType::F32).unwrap()
}

/// The device tests' comparison: same shape and dtype, then `got` (on any device) element-wise
/// close to `want` (the CPU result) within `t`.
pub fn device_check(what: &str, got: &Tensor, want: &Tensor, t: kernels::testing::Tolerance) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    let g = got.to_cpu().unwrap();
    assert!(g.device().is_cpu());
    kernels::testing::assert_close(what, &g.to_vec_f64(), &want.to_vec_f64(), t);
}

/// The op's result, or `None` (printing why) when the op has no kernel on this GPU build; any
/// other error fails the test.
pub fn on_device<T>(what: &str, dev: tensor::Device, r: tensor::Result<T>) -> Option<T> {
    match r {
        Ok(t) => Some(t),
        Err(tensor::Error::NotImplementedOnDevice { .. }) if !dev.is_cpu() => {
            eprintln!("skipping {what} on {dev}: no kernel for it in this build");
            None
        }
        Err(e) => panic!("{what} on {dev}: {e}"),
    }
}
