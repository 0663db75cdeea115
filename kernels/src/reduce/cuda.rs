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
//! any block of a multiple of 32 threads ≤ 1024 (no dynamic shared memory).
//!
//! # Split rows (few long rows)
//! One block per row leaves the GPU idle when there are few rows (`x.sum()` of a whole tensor is one
//! row). When [`SplitPlan::new`] returns a plan, use two stages instead (deterministic, no atomics):
//! | kernel | arguments (in order) |
//! |---|---|
//! | `reduce_split_partial_<dtype>` | `x: *const T, xl: StridedArg, n_out: i64, n_red: i64, chunk: i64, chunks: i64, op: i32, partial: *mut f64` |
//! | `reduce_split_finish_<dtype>` | `partial: *const f64, n_out: i64, chunks: i64, op: i32, correction: i64, y: *mut T, yi: *mut i64` |
//!
//! `op` is [`split_op_code`] (0 sum, 1 mean, 2 max, 3 min, 4 var, 5 argmax, 6 argmin); `partial` is a
//! workspace of [`SplitPlan::workspace_len`] f64 (3 per (row, chunk): count and two statistics;
//! var chunks are merged with Chan's formula). Stage 2 writes `y` (value ops; `yi` may be null) or
//! `yi` (arg ops; `y` may be null). `correction` is used by var only. Launch stage 1 with
//! [`SplitPlan::stage1`], stage 2 with [`SplitPlan::stage2`]. Results agree with the one-block path
//! to f64 rounding (sums in a different order), max/min/arg exactly.

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

/// The `op` code of the split kernels for a value reduction (`arg = false`) or an arg reduction
/// (`arg = true`, `op` Max or Min).
pub fn split_op_code(op: ReduceOp, arg: bool) -> i32 {
    match (op, arg) {
        (ReduceOp::Sum, false) => 0,
        (ReduceOp::Mean, false) => 1,
        (ReduceOp::Max, false) => 2,
        (ReduceOp::Min, false) => 3,
        (ReduceOp::Var { .. }, false) => 4,
        (ReduceOp::Max, true) => 5,
        (ReduceOp::Min, true) => 6,
        (_, true) => panic!("arg reduction of {op:?}"),
    }
}

/// Two-stage plan for few long rows: `chunks` blocks per row, each over `chunk` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPlan {
    pub n_out: usize,
    pub chunk: usize,
    pub chunks: usize,
}

/// Blocks the split path aims for (an H100 has 132 SMs; ~4 blocks of 256 threads each).
pub const SPLIT_TARGET_BLOCKS: usize = 132 * 4;
/// Rows shorter than this are never split.
pub const SPLIT_MIN_ROW: usize = 16 * 1024;

impl SplitPlan {
    /// `Some` when the one-block-per-row launch would use fewer than [`SPLIT_TARGET_BLOCKS`] blocks
    /// and rows are at least [`SPLIT_MIN_ROW`] long; chunks of ≥ 4096 elements.
    pub fn new(n_out: usize, n_red: usize) -> Option<Self> {
        if n_out == 0 || n_out >= SPLIT_TARGET_BLOCKS || n_red < SPLIT_MIN_ROW {
            return None;
        }
        let per_row = SPLIT_TARGET_BLOCKS.div_ceil(n_out);
        Some(Self::with_chunk(n_out, n_red, n_red.div_ceil(per_row).max(4096)))
    }
    /// A plan with a given chunk length (tests use short chunks).
    pub fn with_chunk(n_out: usize, n_red: usize, chunk: usize) -> Self {
        assert!(chunk > 0 && n_red > 0, "split reduction needs non-empty rows and chunks");
        SplitPlan { n_out, chunk, chunks: n_red.div_ceil(chunk) }
    }
    /// Workspace (`partial`) length in f64 elements.
    pub fn workspace_len(&self) -> usize {
        3 * self.n_out * self.chunks
    }
    /// Grid (chunks × rows, rows beyond 65535 by grid stride) of `reduce_split_partial_*`.
    pub fn stage1(&self) -> LaunchDims {
        let gy = self.n_out.clamp(1, 65535) as u32;
        LaunchDims { grid: (self.chunks.max(1) as u32, gy, 1), block: (THREADS, 1, 1), shared_mem_bytes: 0 }
    }
    /// Launch of `reduce_split_finish_*` (one thread per row).
    pub fn stage2(&self) -> LaunchDims {
        LaunchDims::linear(self.n_out, THREADS, MAX_BLOCKS)
    }
}
