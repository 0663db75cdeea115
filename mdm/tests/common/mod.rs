//! Shared helpers of the mdm integration tests.
#![allow(dead_code)]

use kernels::testing::TestRng;
use mdm::ModelConfig;
use nn::Module;
use tensor::Tensor;

/// Loads `configs/<name>` of the workspace.
pub fn config(name: &str) -> ModelConfig {
    let p = format!("{}/../configs/{name}", env!("CARGO_MANIFEST_DIR"));
    ModelConfig::from_file(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// Uniform [-1, 1) tensor of `shape` in the given dtype.
pub fn rand(rng: &mut TestRng, shape: &[usize], dtype: tensor::DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rng.vec_f64(n), shape).unwrap().to_dtype(dtype).unwrap()
}

/// Replaces every parameter by `value + scale·U(-1, 1)` (zero-init layers become non-zero, so
/// every path carries signal and gradient).
pub fn perturb<M: Module>(m: &mut M, rng: &mut TestRng, scale: f64) {
    m.visit_mut("", &mut |_, p| {
        let v = p.value().clone();
        let noise = rand(rng, v.shape(), v.dtype()).mul_scalar(scale).unwrap();
        p.set_value(v.add(&noise).unwrap()).unwrap();
    });
}
