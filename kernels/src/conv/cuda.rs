//! The CUDA side of the conv family (`conv.cu`): the argument struct, launch shapes and the size
//! limits, shared by the GPU runtime and the emulator tests.
//!
//! # Kernels
//!
//! Implicit GEMM, one GEMM per channel group (`grid.z`), the operand tiles gathered from the NCHW
//! tensors while loading (no im2col buffer). Semantics are those of the CPU entry points in
//! [`super`]: contiguous row-major buffers, every kernel overwrites its output, out-of-range taps
//! are zero. `dt` is `f32`, `f64`, `bf16` or `f16`; `T` the element (`u16` bits for the 16-bit
//! types); `args` is [`ConvArgs`] by value.
//!
//! | kernel | arguments | GEMM (M × N × K, per group) |
//! |---|---|---|
//! | `conv2d_fwd_<dt>` | `(x: *const T, w: *const T, bias: *const T (null = none), y: *mut T, args)` | `opg × n·oh·ow × cpg·kh·kw` |
//! | `conv2d_dgrad_<dt>` | `(dy: *const T, w: *const T, dx: *mut T, args)` | `cpg × n·h·w × opg·kh·kw` |
//! | `conv2d_wgrad_<dt>` | `(x: *const T, dy: *const T, dw: *mut T, args)` | `opg × cpg·kh·kw × n·oh·ow` |
//! | `conv2d_wgrad_split_<dt>` | `(x: *const T, dy: *const T, ws: *mut A, args, splits: i64)` | as wgrad, one k-range per `grid.z / groups` |
//! | `conv2d_wgrad_finish_<dt>` | `(ws: *const A, dw: *mut T, w_len: i64, splits: i64)` | `dw = Σ_split ws[split]`, in order |
//!
//! `A` (the split-K workspace) is f64 for f64, f32 otherwise; see [`wgrad_splits`].
//!
//! Launch: [`launch_dims`] (f32/f64: [`SIMT_TILE`], 256 threads; bf16/f16: [`TC_TILE`], 128
//! threads), grid `(⌈N / tile_n⌉, ⌈M / tile_m⌉, groups)`, no dynamic shared memory. The bias
//! gradient has no kernel of its own: the runtime sums `dy` over `(n, oh, ow)` with the reduce
//! family.
//!
//! * **dgrad** gathers `dy[co, (ih + ph − ki·dh) / sh, (iw + pw − kj·dw) / sw]` for each input pixel
//!   and tap, with a validity check (division exact, result in range) instead of flipping the
//!   weight or inserting zeros: for stride 2 three quarters of the gathered taps are skipped zeros
//!   (correctness over speed).
//! * **wgrad** is deterministic: each block owns its `dw` tile and reduces over all `n·oh·ow`, or,
//!   when the `dw` tiles are too few to fill the GPU ([`wgrad_splits`]), over one of `s` k-ranges
//!   into an f32 (f64) workspace that a second kernel sums in a fixed order (split-K, no atomics).
//! * f32/f64: SIMT, block tile 64×64×8, 4×4 micro-tile per thread, exact FMA in the element type.
//!   bf16/f16: `mma.sync` m16n8k16 (f32 accumulate), 4 warps as 2×2, warp tile 32×32, block tile
//!   64×64×32, operands staged k-contiguous (`As[m][k]`, `Bs[n][k]`, rows padded to 40 halves,
//!   fragments as 32-bit pair loads, conflict-free); bias added in f32 and the result rounded once.
//! * Both double-buffer shared memory, the next k-tile's gathers held in registers during the math,
//!   one `__syncthreads` per k-tile. Each thread gathers a run of consecutive k (2 in the SIMT
//!   kernels, 16 in the tensor-core ones) from one fixed A row and one fixed B column: the
//!   row/column index is decomposed once per block, k once per run (32-bit integer divisions,
//!   hence [`supported`]), then advanced by a mixed-radix cursor (compares, no divisions). The
//!   SIMT micro-tile reads shared memory as 16-byte vectors.
//!
//! # Resources (ptxas, CUDA 13.0, `-O3`)
//!
//! | kernel | sm_80 registers | sm_90 registers | spills | static shared |
//! |---|---|---|---|---|
//! | `conv2d_fwd_f32` / `dgrad` / `wgrad` | 64 / 62 / 63 | 64 / 64 / 64 | 4 B in `fwd` on sm_90 | 8.5 KB |
//! | `conv2d_fwd_f64` / `dgrad` / `wgrad` | 80 / 80 / 80 | 78 / 80 / 80 | 4 B (`dgrad`), 24 B (`wgrad`) on sm_90 | 17 KB |
//! | `conv2d_fwd_bf16` / `dgrad` / `wgrad` (f16 the same) | 124 / 126 / 126 | 119 / 126 / 119 | none | 20 KB |
//! | `conv2d_wgrad_split_f32` / `f64` / `bf16` | 62 / 80 / 126 | 64 / 80 / 126 | 4 B (f32) on sm_90 | as above |
//! | `conv2d_wgrad_finish_<dt>` | 26–32 | 28–32 | none | 0 |
//!
//! `__launch_bounds__(256, 4)` (f32) and `(256, 3)` (f64) hold the SIMT kernels to 4 and 3 blocks
//! per SM (unbounded, ptxas took 114-126 registers for f64); the tensor-core kernels fit 4 blocks of
//! 4 warps per SM.
//!
//! # Known gaps (speed; never run on a GPU yet)
//!
//! Element-wise gathers through registers (2-byte loads for 16-bit types, a bounds check per
//! element, no `cp.async` or vector global loads), pair loads instead of `ldmatrix`, 64×64 tiles
//! only (small grids for small fwd/dgrad layers), the split-K workspace round trip, and the
//! stride-2 dgrad multiplies the skipped taps' zeros. Expect well below cuDNN until these are
//! addressed.

use super::Conv2dParams;
use crate::cuda_abi::LaunchDims;

/// Block tile (m, n, k) of the f32/f64 SIMT kernels.
pub const SIMT_TILE: (usize, usize, usize) = (64, 64, 8);
/// Threads per block of the SIMT kernels.
pub const SIMT_THREADS: u32 = 256;
/// Block tile (m, n, k) of the bf16/f16 tensor-core kernels.
pub const TC_TILE: (usize, usize, usize) = (64, 64, 32);
/// Threads per block of the tensor-core kernels.
pub const TC_THREADS: u32 = 128;
/// Largest `gridDim.y` / `gridDim.z`.
const MAX_GRID_YZ: usize = 65535;

/// Which of the three convolution GEMMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvPass {
    /// `y = conv(x, w) (+ bias)`.
    Forward,
    /// `dx` from `w` and `dy`.
    InputGrad,
    /// `dw` from `x` and `dy`.
    WeightGrad,
}

impl ConvPass {
    /// Kernel name stem (`conv2d_fwd`, `conv2d_dgrad`, `conv2d_wgrad`).
    pub fn stem(self) -> &'static str {
        match self {
            ConvPass::Forward => "conv2d_fwd",
            ConvPass::InputGrad => "conv2d_dgrad",
            ConvPass::WeightGrad => "conv2d_wgrad",
        }
    }

    /// `(M, N, K)` of this pass's per-group GEMM.
    pub fn gemm_dims(self, p: &Conv2dParams) -> (usize, usize, usize) {
        let (cpg, opg, khw) = (p.c_in / p.groups, p.c_out / p.groups, p.kh * p.kw);
        let (opix, ipix) = (p.n * p.out_h() * p.out_w(), p.n * p.h * p.w);
        match self {
            ConvPass::Forward => (opg, opix, cpg * khw),
            ConvPass::InputGrad => (cpg, ipix, opg * khw),
            ConvPass::WeightGrad => (opg, cpg * khw, opix),
        }
    }
}

/// The by-value argument of every conv kernel (`struct ConvArgs` in `conv.cu`; keep in sync).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvArgs {
    pub n: i64,
    pub c_in: i64,
    pub h: i64,
    pub w: i64,
    pub c_out: i64,
    pub kh: i64,
    pub kw: i64,
    pub oh: i64,
    pub ow: i64,
    pub sh: i64,
    pub sw: i64,
    pub ph: i64,
    pub pw: i64,
    pub dh: i64,
    pub dw: i64,
    pub groups: i64,
    pub cpg: i64,
    pub opg: i64,
}

// SAFETY: `ConvArgs` is `repr(C)`, `Copy`, and holds only i64 fields (no padding, no pointers); the
// kernels read it by value with the same layout (`struct ConvArgs` in conv.cu).
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for ConvArgs {}

impl ConvArgs {
    /// The arguments of `p` (which must be valid: see [`supported`]).
    pub fn new(p: &Conv2dParams) -> Self {
        let i = |x: usize| x as i64;
        ConvArgs {
            n: i(p.n),
            c_in: i(p.c_in),
            h: i(p.h),
            w: i(p.w),
            c_out: i(p.c_out),
            kh: i(p.kh),
            kw: i(p.kw),
            oh: i(p.out_h()),
            ow: i(p.out_w()),
            sh: i(p.stride[0]),
            sw: i(p.stride[1]),
            ph: i(p.padding[0]),
            pw: i(p.padding[1]),
            dh: i(p.dilation[0]),
            dw: i(p.dilation[1]),
            groups: i(p.groups),
            cpg: i(p.c_in / p.groups),
            opg: i(p.c_out / p.groups),
        }
    }
}

/// `Ok(())` when the kernels can run `p`: valid parameters, every tensor length and GEMM extent
/// (and the padded input extent) below 2³¹ (the kernels index in 32 bits within a tensor plane and
/// decompose GEMM indices in 32 bits), `groups` ≤ 65535 and at most 65535 row tiles. `Err` says
/// which limit is exceeded.
pub fn supported(p: &Conv2dParams) -> Result<(), String> {
    p.validate()?;
    let lim = i32::MAX as usize;
    let checks = [
        (
            "n·c_in·h·w",
            p.n.checked_mul(p.c_in).and_then(|v| v.checked_mul(p.h)).and_then(|v| v.checked_mul(p.w)),
        ),
        ("n·c_out·oh·ow", p.n.checked_mul(p.c_out).and_then(|v| v.checked_mul(p.out_h() * p.out_w()))),
        ("c_out·cpg·kh·kw", Some(p.w_len())),
        ("h + 2·pad_h + dil_h·kh", Some(p.h + 2 * p.padding[0] + p.dilation[0] * p.kh)),
        ("w + 2·pad_w + dil_w·kw", Some(p.w + 2 * p.padding[1] + p.dilation[1] * p.kw)),
    ];
    for (what, v) in checks {
        match v {
            Some(v) if v <= lim => {}
            _ => return Err(format!("conv2d on CUDA: {what} exceeds 2^31 - 1 for {p:?}")),
        }
    }
    if p.groups > MAX_GRID_YZ {
        return Err(format!("conv2d on CUDA: groups = {} exceeds 65535", p.groups));
    }
    for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
        let (m, n, k) = pass.gemm_dims(p);
        if m.max(n).max(k) > lim {
            return Err(format!("conv2d on CUDA: {} GEMM {m}×{n}×{k} exceeds 2^31 - 1", pass.stem()));
        }
        if m.div_ceil(SIMT_TILE.0) > MAX_GRID_YZ {
            return Err(format!("conv2d on CUDA: {} needs more than 65535 row tiles", pass.stem()));
        }
    }
    Ok(())
}

/// Whether `dtype` (`"f32"`, `"f64"`, `"bf16"`, `"f16"`) runs on the tensor-core kernels.
fn tensor_cores(dtype: &str) -> Result<bool, String> {
    match dtype {
        "f32" | "f64" => Ok(false),
        "bf16" | "f16" => Ok(true),
        _ => Err(format!("no conv2d kernel for {dtype}")),
    }
}

/// The launch shape of `conv2d_<pass>_<dtype>` for `p` (`Ok(None)`: empty output, nothing to
/// launch; `Err`: unsupported dtype or sizes, see [`supported`]).
pub fn launch_dims(pass: ConvPass, p: &Conv2dParams, dtype: &str) -> Result<Option<LaunchDims>, String> {
    let tc = tensor_cores(dtype)?;
    supported(p)?;
    let (m, n, _) = pass.gemm_dims(p);
    if m == 0 || n == 0 || p.groups == 0 {
        return Ok(None);
    }
    let (tile, threads) = if tc { (TC_TILE, TC_THREADS) } else { (SIMT_TILE, SIMT_THREADS) };
    Ok(Some(LaunchDims {
        grid: (n.div_ceil(tile.1) as u32, m.div_ceil(tile.0) as u32, p.groups as u32),
        block: (threads, 1, 1),
        shared_mem_bytes: 0,
    }))
}

/// The kernel name of `pass` for `dtype`, e.g. `conv2d_dgrad_bf16`.
pub fn kernel_name(pass: ConvPass, dtype: &str) -> String {
    format!("{}_{dtype}", pass.stem())
}

/// Blocks the split-K weight gradient aims for: 4 resident blocks on each of an H100's 132 SMs.
const WGRAD_TARGET_BLOCKS: usize = 4 * 132;
/// Least reduction length per split (k-tiles of 256 elements): below that the partial sums and the
/// finishing pass cost more than the parallelism gains.
const WGRAD_MIN_K_PER_SPLIT: usize = 256;
/// Most splits.
const WGRAD_MAX_SPLITS: usize = 64;

/// How many k-ranges the weight gradient of `p` is split into (1: the plain `conv2d_wgrad_<dt>`).
///
/// With `s > 1` the runtime launches `conv2d_wgrad_split_<dt>(x, dy, ws, args, s: i64)` with
/// [`wgrad_split_launch_dims`] (grid.z = `s · groups`; block z reduces k-tiles
/// `[split·per, (split+1)·per)`, `per = ⌈k-tiles / s⌉`, of group `z % groups`, `split = z / groups`,
/// writing its partial `dw` to `ws + split · w_len`; a split past the end writes zeros), into a
/// workspace of `s · w_len` accumulator elements ([`wgrad_workspace_dtype`]), then
/// `conv2d_wgrad_finish_<dt>(ws, dw, w_len: i64, s: i64)` with [`wgrad_finish_launch_dims`], which
/// sums the partials of each element in split order (deterministic: no atomics) and rounds once.
/// Chosen when the output tiles alone give fewer than 528 blocks and the reduction is long
/// (`n·oh·ow ≥ 512`): e.g. 3×3, C 256→256, N 8, 64² has 144 tiles and `n·oh·ow = 32768` → 4 splits.
pub fn wgrad_splits(p: &Conv2dParams, dtype: &str) -> usize {
    let Ok(tc) = tensor_cores(dtype) else { return 1 };
    let tile = if tc { TC_TILE } else { SIMT_TILE };
    let (m, n, k) = ConvPass::WeightGrad.gemm_dims(p);
    let blocks = m.div_ceil(tile.0) * n.div_ceil(tile.1) * p.groups;
    if blocks == 0 || blocks >= WGRAD_TARGET_BLOCKS {
        return 1;
    }
    let by_k = k / WGRAD_MIN_K_PER_SPLIT;
    let by_grid = MAX_GRID_YZ / p.groups.max(1);
    WGRAD_TARGET_BLOCKS.div_ceil(blocks).min(by_k).min(WGRAD_MAX_SPLITS).min(by_grid).max(1)
}

/// The workspace element type of the split-K weight gradient: `"f64"` for f64, else `"f32"`.
pub fn wgrad_workspace_dtype(dtype: &str) -> &'static str {
    if dtype == "f64" { "f64" } else { "f32" }
}

/// Launch shape of `conv2d_wgrad_split_<dtype>` with `splits` k-ranges (`Ok(None)`: nothing to do).
pub fn wgrad_split_launch_dims(
    p: &Conv2dParams,
    dtype: &str,
    splits: usize,
) -> Result<Option<LaunchDims>, String> {
    let dims = launch_dims(ConvPass::WeightGrad, p, dtype)?;
    if splits == 0 || splits * p.groups > MAX_GRID_YZ {
        return Err(format!("conv2d_wgrad_split: {splits} splits × {} groups exceed the grid", p.groups));
    }
    Ok(dims.map(|d| LaunchDims { grid: (d.grid.0, d.grid.1, (splits * p.groups) as u32), ..d }))
}

/// Launch shape of `conv2d_wgrad_finish_<dtype>` over the `w_len` weight-gradient elements.
pub fn wgrad_finish_launch_dims(p: &Conv2dParams) -> LaunchDims {
    LaunchDims::linear(p.w_len(), 256, 132 * 8)
}
