//! # tensor
//!
//! The strided tensor of Matryoshka: shared storage (CPU, or a GPU behind the `cuda` feature) plus a
//! layout (shape, strides, offset), a dtype and a device. Views share storage; ops accept any layout
//! and return contiguous results; every fallible call returns a typed [`Error`] that names the
//! op and the offending shapes, dtypes, devices or indices.
//!
//! | file | what |
//! |---|---|
//! | `tensor.rs` | the type, constructors, element access, `contiguous`, dtype conversion |
//! | `views.rs` | reshape/view, permute, transpose, narrow, select, chunk, expand, squeeze, unsqueeze |
//! | `ops/` | dispatch of every op to the `kernels` crate (unary, binary, reduce, matmul, conv, attention, norm, softmax, layout ops, random) |
//! | `cuda/` | the CUDA runtime (feature `cuda`): per-GPU context/stream/kernel cache (`device.rs`), the caching allocator (`pool.rs`, tested without a GPU), device storage, and the GPU paths of the ops (`cuda/ops/`) |
//! | `testing.rs` | `devices()`: the devices tests loop over (CPU, plus `cuda:0` when one opens) |
//! | `display.rs` | PyTorch-like printing |
//! | `dtype.rs`, `device.rs`, `error.rs`, `storage.rs` | the vocabulary |

pub mod cuda;
mod device;
mod display;
mod dtype;
mod error;
pub mod ops;
pub mod storage;
mod tensor;
pub mod testing;
pub mod views;

pub use device::Device;
pub use dtype::{DType, WithDType};
pub use error::{Error, Result};
pub use ops::attention::{AttentionGrads, AttentionOutput};
pub use ops::conv::Conv2dOptions;
pub use ops::dual_attention::{DualAttentionGrads, DualAttentionOutput};
pub use ops::norm::{GroupNormSiluGrads, NormGrads, NormOutput};
pub use ops::optim::AdamWUpdate;
pub use tensor::{Tensor, resolve_dim};

/// Op enums from the kernels crate, re-exported for callers of `unary`, `binary`, `reduce`, `compare`.
pub use kernels::elementwise::{BinaryOp, CmpOp, UnaryOp};
pub use kernels::reduce::ReduceOp;
pub use kernels::testing::Tolerance;
