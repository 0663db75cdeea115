//! The CUDA side of the reductions (`reduce.cu`): kernel names, argument lists and launch shapes,
//! shared by the GPU runtime and the emulator tests.
//!
//! # Calling convention
//! The runtime permutes the reduced axes of the input to the end (a view, no copy), so the kernel
//! sees a strided input of logical shape `[kept..., reduced...]`, given as a [`StridedArg`] (build it
//! with `StridedArg::from_layout` of the permuted layout). Output row `o` (`0 ≤ o < n_out`, `n_out` =
//! product of the kept dims, row-major like the CPU `reduce` output) reduces the logical elements
//! `[o·n_red, (o+1)·n_red)`, `n_red` = product of the reduced dims. The output is contiguous.
//!
//! # Kernels (`<dtype>` ∈ `f32`, `f64`, `f16`, `bf16`; `T` the storage type, 16-bit = raw `u16` bits)
//! | kernel | arguments (in order) |
//! |---|---|
//! | `reduce_sum_<dtype>` | `x: *const T, xl: StridedArg, y: *mut T, n_out: i64, n_red: i64` |
//! | `reduce_mean_<dtype>` | same as sum |
//! | `reduce_max_<dtype>` | same as sum |
//! | `reduce_min_<dtype>` | same as sum |
//! | `reduce_var_<dtype>` | `x: *const T, xl: StridedArg, y: *mut T, n_out: i64, n_red: i64, correction: i64` |
//! | `reduce_argmax_<dtype>` | `x: *const T, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64` |
//! | `reduce_argmin_<dtype>` | same as argmax |
//!
//! `y` holds `n_out` elements and is overwritten. For argmax/argmin the result is the index within
//! the row (`0 ≤ idx < n_red`; with one reduced axis that is the index along the axis, like
//! [`super::arg_reduce`]); the first extreme wins on ties and the first NaN counts as the extreme.
//! Empty rows (`n_red == 0`): sum 0, mean/max/min NaN, var NaN, arg −1 — as the CPU kernels.
//! `n_out == 0`: launch nothing.
//!
//! # Numerics
//! Sum, mean and var accumulate in f64 for every dtype (each thread a strided slice of the row, then
//! a butterfly over the warp and the warps in order) and round once to the dtype (16-bit: f64 → f32
//! → 16-bit). Var is corrected two-pass (mean, then Σ(x − mean)² − (Σ(x − mean))²/n). So f32 results are within
//! about one f32 rounding of the exact value, tighter than the CPU's f32-lane blocks; the f64 adds
//! cost nothing visible because loads bound the speed (even 1/64-rate FP64 consumer cards do
//! > 1e12 f64 adds/s vs ≤ 2.5e11 f32 loads/s). Max/min compare in the compute type (exact).
//!
//! # Launch
//! [`launch_dims`]: `THREADS` (256) threads per block; for `n_red ≤ WARP_ROW_MAX` (1024) one warp
//! per row (8 rows per block), otherwise one block per row; the grid is capped at `MAX_BLOCKS` and
//! the kernels walk the remaining rows with a grid stride. The kernels are correct for any grid and
//! any block of a multiple of 32 threads ≤ 1024 (no dynamic shared memory). Missing: a split of very
//! long rows over several blocks (n_out = 1, n_red = 1e8 runs on one block).

use super::ReduceOp;
use crate::cuda_abi::{LaunchDims, StridedArg};

/// Threads per block.
pub const THREADS: u32 = 256;
/// Rows up to this length are reduced by one warp (`MT_WARP_ROW_MAX` in row_reduce.cuh).
pub const WARP_ROW_MAX: usize = 1024;
/// Most blocks launched (rows beyond are walked with a grid stride).
pub const MAX_BLOCKS: u32 = 65535;

/// The launch for `n_out` rows of `n_red` elements.
pub fn launch_dims(n_out: usize, n_red: usize) -> LaunchDims {
    let rows_per_block = if n_red <= WARP_ROW_MAX { (THREADS / 32) as usize } else { 1 };
    let blocks = n_out.div_ceil(rows_per_block).clamp(1, MAX_BLOCKS as usize) as u32;
    LaunchDims { grid: (blocks, 1, 1), block: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The kernel name for `op` and `dtype` (`"f32"`, `"f64"`, `"f16"`, `"bf16"`); `arg` selects
/// argmax/argmin (`op` must then be `Max` or `Min`).
pub fn kernel_name(op: ReduceOp, arg: bool, dtype: &str) -> String {
    let base = match (op, arg) {
        (ReduceOp::Max, true) => "argmax",
        (ReduceOp::Min, true) => "argmin",
        (_, true) => panic!("arg reduction of {op:?}"),
        (ReduceOp::Sum, false) => "sum",
        (ReduceOp::Mean, false) => "mean",
        (ReduceOp::Max, false) => "max",
        (ReduceOp::Min, false) => "min",
        (ReduceOp::Var { .. }, false) => "var",
    };
    format!("reduce_{base}_{dtype}")
}

/// The layout the kernels expect: `layout` with the `axes` (sorted, unique) moved last, plus
/// `(n_out, n_red)`.
pub fn permuted_arg(
    layout: &crate::StridedLayout,
    axes: &[usize],
) -> Result<(StridedArg, usize, usize), crate::cuda_abi::TooManyDims> {
    let kept: Vec<usize> = (0..layout.rank()).filter(|d| !axes.contains(d)).collect();
    let order: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let p = crate::StridedLayout::new(
        order.iter().map(|&d| layout.shape[d]).collect(),
        order.iter().map(|&d| layout.strides[d]).collect(),
        layout.offset,
    );
    let n_out = kept.iter().map(|&d| layout.shape[d]).product();
    let n_red = axes.iter().map(|&d| layout.shape[d]).product();
    Ok((StridedArg::from_layout(&p)?, n_out, n_red))
}
