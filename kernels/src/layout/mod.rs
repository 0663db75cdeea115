//! Layout kernels: strided copy, concat, nearest upsample, average pool, index-select, where.
//!
//! Buffers are flat slices. Where an argument has a [`crate::StridedLayout`] it is read (or, for
//! [`copy_strided`], written) through it; every other buffer is contiguous row-major with the
//! documented shape. Outputs are overwritten (never accumulated into), including the backward
//! kernels, which zero their output first. Data-movement kernels are generic over
//! `T: Copy + Send + Sync`; those that add or scale are generic over [`crate::Float`].

mod copy;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
mod index;
mod pool2d;
pub mod reference;
#[cfg(test)]
mod tests;
mod upsample;

pub use copy::{concat, copy_strided};
pub use index::{index_select, index_select_backward, where_select};
pub use pool2d::{Pool2dParams, avg_pool2d, avg_pool2d_backward};
pub use upsample::{upsample_nearest2d, upsample_nearest2d_backward};
