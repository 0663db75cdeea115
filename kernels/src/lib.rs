//! # kernels
//!
//! Raw compute on buffers. Every kernel takes slices plus explicit sizes (and, where the op allows
//! any layout, a [`strided::StridedLayout`]) and knows nothing of tensors, devices or autograd.
//!
//! One folder per op family; inside it the public API with docs (`mod.rs`), the CPU kernels, the
//! naive f64 reference used as the test oracle, and the tests. CUDA sources (`*.cu`) sit beside their
//! CPU twins with a `cuda.rs` (op codes, launch shapes) and `cuda_tests.rs` (the kernels run through
//! the host emulator, feature `emu`, against the CPU kernels); `build.rs` compiles them to PTX
//! (feature `cuda`) and to host C++ (feature `emu`). Shared CUDA headers live in `cuda/`.
//!
//! | module | what |
//! |---|---|
//! | [`gemm`] | packed, cache-blocked, register-tiled f32 GEMM (AVX-512 / AVX2+FMA / portable), batched, strided |
//! | [`conv`] | conv2d NCHW forward, input- and weight-gradient (stride, padding, dilation, groups) |
//! | [`attention`] | blocked online-softmax attention forward/backward (never builds the L×L matrix) |
//! | [`norm`] | group norm and layer norm forward/backward with affine |
//! | [`softmax`] | numerically stable softmax forward/backward over any axis |
//! | [`elementwise`] | unary and broadcasting binary ops over strided inputs |
//! | [`reduce`] | sum / mean / max / var over any set of axes |
//! | [`layout`] | strided copy, concat, nearest upsample, average pool, index-select, where |
//! | [`rng`] | counter-based Philox4x32-10 uniform and normal streams |
//! | [`optim`] | the fused AdamW step (CPU reference of the CUDA kernel) |
//! | [`pool`] | size-bucketed buffer pool (fresh pages fault in slowly on these machines) |
//! | [`parallel`] | thread count and the parallel-for used by every kernel |
//! | [`testing`] | the tolerance type and the one approx-equality assert used by all tests |

pub mod attention;
pub mod conv;
pub mod cuda_abi;
pub mod elementwise;
#[cfg(feature = "emu")]
pub mod emu;
#[cfg(all(test, feature = "emu"))]
mod emu_tests;
pub mod float;
pub mod gemm;
pub mod layout;
pub mod norm;
pub mod optim;
pub mod parallel;
pub mod pool;
pub mod reduce;
pub mod rng;
pub mod softmax;
pub mod strided;
pub mod testing;

/// The PTX of every CUDA module, compiled by `build.rs` from the `.cu` files beside the CPU kernels.
#[cfg(feature = "cuda")]
pub mod ptx {
    include!(concat!(env!("OUT_DIR"), "/ptx.rs"));
}

// SAFETY: `StridedArg` is `repr(C)`, `Copy`, and holds only integers; the kernels read it by value
// with the same layout (`struct StridedArg` in common.cuh).
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for cuda_abi::StridedArg {}

pub use float::Float;
pub use strided::StridedLayout;
