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

/// The tiny run; `{extra}` is appended to `[train]` and `{phases}` after it.
pub fn tiny_run_config(train_extra: &str, phases: &str) -> String {
    format!(
        r#"
[model]
conditioning_feature_dim = 16
num_classes = 16
[model.unet]
resolution_channels = [16, 16]
num_resnets_per_resolution = [1, 1]
num_groups_norm = 8
temporal_dim = 64
skip_normalization = true
[model.unet.inner]
resolution_channels = [16, 32]
num_resnets_per_resolution = [1, 1]
num_groups_norm = 8
temporal_dim = 64
attention_levels = [1]
num_attention_layers = [0, 1]
[diffusion]
cond_drop_prob = 0.1
[data]
kind = "shapes"
seed = 0
[train]
image_size = 16
batch_size = 4
steps = 30
lr = 2e-3
warmup_steps = 3
grad_clip = 1.0
ema_decay = 0.9
seed = 7
log_every = 5
max_nan_steps = 3
{train_extra}
{phases}
[sample]
steps = 5
guidance = 1.5
grid_size = 2
"#
    )
}
