//! The CUDA side of the GEMM family (`gemm.cu`): the argument struct and launch shapes shared by the
//! GPU runtime and the emulator tests.
//!
//! # Kernels
//!
//! Every kernel computes, for `z in 0..batch`, `C_z = alpha · A_z·B_z + beta · C_z` where element
//! `(i, j)` of matrix `z` of operand X is `X[x_off + z·x_bs + i·x_rs + j·x_cs]` (A is m×k, B is k×n,
//! C is m×n) — the semantics of [`super::gemm_batched`] with [`super::MatRef`]/[`super::MatMut`]
//! strides: transposed operands are just swapped strides, batch stride 0 broadcasts, C is written
//! through its strides, `beta == 0` overwrites C without reading it (NaN in C ignored), `k == 0` gives
//! `C = beta·C`. All take the same four arguments, `(a, b, c, args: GemmArgs)` by value:
//!
//! | kernel | a, b | c | accumulation | launch |
//! |---|---|---|---|---|
//! | `gemm_f32` | `*const f32` | `*mut f32` | f32 FMA | [`launch_dims_f32`] |
//! | `gemm_f64` | `*const f64` | `*mut f64` | f64 FMA | [`launch_dims_f64`] |
//! | `gemm_bf16` | `*const u16` (bf16 bits) | `*mut u16` (bf16, rounded once) | f32, tensor cores | [`launch_dims_tc`] |
//! | `gemm_f16` | `*const u16` (f16 bits) | `*mut u16` (f16, rounded once) | f32, tensor cores | [`launch_dims_tc`] |
//! | `gemm_bf16_out_f32` | `*const u16` (bf16 bits) | `*mut f32` | f32, tensor cores | [`launch_dims_tc`] |
//! | `gemm_f16_out_f32` | `*const u16` (f16 bits) | `*mut f32` | f32, tensor cores | [`launch_dims_tc`] |
//!
//! For the 16-bit kernels alpha and beta are applied in f32 (`alpha·acc + beta·C`, C read as f32) and
//! the result is rounded once to the output dtype. The tensor-core kernels need sm_80 or newer
//! (`mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}`).
//!
//! # What the runtime must guarantee
//!
//! * Pointers are element pointers to the start of each buffer; `*_off` (elements) selects the first
//!   matrix. Every element the views address lies inside its buffer (the runtime checks this like the
//!   CPU `check_len`), and all offsets/strides are ≥ 0 and fit i64.
//! * C does not overlap A or B; distinct `(i, j)` of one C matrix are distinct elements (C injective:
//!   the GPU cannot serialise aliased writes the way the CPU does — fall back to the CPU or copy).
//! * The C matrices of distinct batch members are either pairwise disjoint or all the same matrix
//!   (`c_bs == 0`); in the latter case the launch dims put the whole batch in `grid.z == 1` and every
//!   block applies the members to its tile in order, exactly like the CPU.
//! * `m == 0`, `n == 0` or `batch == 0`: nothing to launch (the `launch_dims_*` return `None`).
//! * No dynamic shared memory (the tiles are static `__shared__`: 16.5 KB f32, 33 KB f64, 40 KB
//!   for the tensor-core kernels), block size is fixed by the kernel (256 threads, 1-d).
//! * Buffers should be 16-byte aligned (cudarc allocations are) so that k-contiguous 16-bit
//!   operands take the `cp.async` path; the kernels check alignment and fall back otherwise.
//!
//! # Performance design (to be measured on the GPU machine; no numbers yet)
//!
//! * `gemm_{bf16,f16}*`: block tile 128×128×32, 8 warps as 2×4, warp tile 64×32 = 4×4
//!   mma.m16n8k16 per k16 step (16 mma per 6 fragment loads per warp: A fragments reused over 4
//!   n-tiles, B over 4 m-tiles), f32 accumulators in registers (64 per thread). Each operand is
//!   staged in shared memory with its unit-stride index contiguous, so one kernel body per layout
//!   pair (picked block-uniformly at launch from the strides):
//!   - k-contiguous A (row-major) / B (column-major, e.g. `x·Wᵀ`): `As[m][k]` / `Bs[n][k]`, rows
//!     padded 32 → 40 halves, fragments by `ldmatrix.x4` (8 rows 80 bytes apart hit 32 distinct
//!     banks);
//!   - m-contiguous A (`Aᵀ` views, e.g. `dYᵀ·X`) / n-contiguous B (row-major, e.g. `dY·W`):
//!     `At[k][m]` / `Bt[k][n]`, rows padded 128 → 136 halves, fragments by `ldmatrix.x4.trans`
//!     (8 rows 272 bytes apart hit 32 distinct banks).
//!
//!   Two shared stages (40 KB static): while tile kt is multiplied, tile kt+1 is in flight — by
//!   16-byte `cp.async` (zero-filling past the edges) when the operand's rows are 16-byte aligned
//!   (offset, leading and batch strides multiples of 8 elements, base 16-byte aligned), otherwise
//!   by the strided loader: 2-byte loads, coalesced along the unit-stride index, held in registers
//!   and stored after the math. One `__syncthreads` per k-tile; per k16 step a warp issues 6
//!   `ldmatrix.x4` and 16 `mma`. Registers (ptxas, CUDA 13): 201-204 on sm_80, 196-198 on
//!   sm_90, no spills (each layout body is a separate non-inlined function: inlined together
//!   they spilled ~450 bytes); 1 block (8 warps) per SM.
//!
//!   Known gaps to cuBLAS: (1) only 2 stages (3-4 need > 48 KB of dynamic shared memory, i.e.
//!   `cuFuncSetAttribute` in the runtime), (2) the fallback for unaligned or doubly-strided
//!   operands uses 2-byte loads, (3) padding instead of a swizzle (20 % / 6 % more shared memory),
//!   (4) the epilogue stores column pairs straight from the accumulators (one 8-byte f32 or
//!   4-byte 16-bit access when unit-stride and aligned; a quad covers 8 consecutive columns: whole
//!   32-byte sectors for f32 C, half sectors for 16-bit C), (5) one tile size:
//!   small problems (m·n below ~132 tiles of 128×128) leave SMs idle — a 64×64 variant or
//!   split-k would help, (6) no `wgmma`/TMA on sm_90, which H100 peak needs.
//! * `gemm_f32`: block tile 128×128×8, 256 threads, 8×8 micro-tile per thread (16 shared loads,
//!   as four 16-byte vectors, per 64 FMA); `gemm_f64`: 64×64×16 with 4×4 (two 16-byte vectors per
//!   16 FMA). Thread (tx, ty) owns rows `4ty..4ty+3` and `64+4ty..` (f32), so a warp's shared reads
//!   are 2 broadcast A vectors and 16 consecutive B vectors (conflict-free) and its C writes cover
//!   64 consecutive columns. Tiles are double-buffered in shared memory and filled by one 4- or
//!   8-byte `cp.async` per element (any strides, zero-fill outside the matrix), so the next k-tile
//!   is in flight during the FMAs without holding registers; shared rows are padded (4 floats / 2
//!   doubles) for 16-byte alignment and conflict-free stores from k-contiguous operands. The
//!   epilogue reads and writes complete, unit-stride, 16-byte aligned runs of C as vectors.
//!   `__launch_bounds__(256, 2)`: 128 registers (ptxas, CUDA 13: no spill on sm_80, 4-8 bytes on
//!   sm_90) so that 2 blocks (16 warps) fit per SM; without the bound ptxas takes 144 (f32) / 136
//!   (f64) registers. Exact f32/f64 FMA semantics (no TF32).
//! * Grid: `x` over m-tiles (up to 2³¹−1), `y` over n-tiles (at most 65535, so n ≤ 8.3 M for the
//!   tensor-core kernels), `z` over the batch (capped at 65535, blocks loop over the rest).

use crate::cuda_abi::LaunchDims;

/// Threads per block of every GEMM kernel (1-d blocks).
pub const THREADS: u32 = 256;
/// Block tile (m, n, k) of `gemm_f32`.
pub const F32_TILE: (usize, usize, usize) = (128, 128, 8);
/// Block tile (m, n, k) of `gemm_f64`.
pub const F64_TILE: (usize, usize, usize) = (64, 64, 16);
/// Block tile (m, n, k) of the tensor-core kernels.
pub const TC_TILE: (usize, usize, usize) = (128, 128, 32);
/// Largest `gridDim.y` / `gridDim.z`.
const MAX_GRID_YZ: usize = 65535;

/// The by-value argument of every GEMM kernel (`struct GemmArgs` in `gemm.cu`; keep in sync).
/// Offsets and strides are in elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmArgs {
    pub m: i64,
    pub n: i64,
    pub k: i64,
    pub batch: i64,
    pub a_off: i64,
    pub a_rs: i64,
    pub a_cs: i64,
    pub a_bs: i64,
    pub b_off: i64,
    pub b_rs: i64,
    pub b_cs: i64,
    pub b_bs: i64,
    pub c_off: i64,
    pub c_rs: i64,
    pub c_cs: i64,
    pub c_bs: i64,
    pub alpha: f64,
    pub beta: f64,
}

// SAFETY: `GemmArgs` is `repr(C)`, `Copy`, and holds only i64/f64 fields (no padding, no pointers);
// the kernels read it by value with the same layout (`struct GemmArgs` in gemm.cu).
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for GemmArgs {}

/// One operand's view: (offset, row stride, column stride, batch stride), in elements.
pub type OperandView = (usize, usize, usize, usize);

impl GemmArgs {
    /// Arguments for `C (m×n) = alpha·A (m×k)·B (k×n) + beta·C` over `batch` matrices; each view is
    /// `(offset, rs, cs, batch stride)` as in [`super::MatRef`] plus [`super::gemm_batched`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        m: usize,
        n: usize,
        k: usize,
        alpha: f64,
        a: OperandView,
        b: OperandView,
        beta: f64,
        c: OperandView,
    ) -> Self {
        let i = |x: usize| i64::try_from(x).expect("gemm: size or stride exceeds i64");
        GemmArgs {
            m: i(m),
            n: i(n),
            k: i(k),
            batch: i(batch),
            a_off: i(a.0),
            a_rs: i(a.1),
            a_cs: i(a.2),
            a_bs: i(a.3),
            b_off: i(b.0),
            b_rs: i(b.1),
            b_cs: i(b.2),
            b_bs: i(b.3),
            c_off: i(c.0),
            c_rs: i(c.1),
            c_cs: i(c.2),
            c_bs: i(c.3),
            alpha,
            beta,
        }
    }
}

/// The launch of the kernel with block `tile`, or why the problem does not fit one grid.
fn checked_dims(args: &GemmArgs, tile: (usize, usize, usize)) -> Result<Option<LaunchDims>, String> {
    let (m, n, batch) = (args.m as usize, args.n as usize, args.batch as usize);
    if m == 0 || n == 0 || batch == 0 {
        return Ok(None);
    }
    let gx = m.div_ceil(tile.0);
    let gy = n.div_ceil(tile.1);
    if gx > i32::MAX as usize {
        return Err(format!("m = {m} needs more than 2^31-1 row blocks of {}", tile.0));
    }
    if gy > MAX_GRID_YZ {
        return Err(format!("n = {n} needs more than 65535 column blocks of {}", tile.1));
    }
    // A shared C (c_bs == 0) is updated by the batch members in order, inside one block.
    let gz = if args.c_bs == 0 { 1 } else { batch.min(MAX_GRID_YZ) };
    Ok(Some(LaunchDims {
        grid: (gx as u32, gy as u32, gz as u32),
        block: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }))
}

/// The launch shape of `gemm_<dtype>` (`dtype` one of `"f32"`, `"f64"`, `"bf16"`, `"f16"`; the
/// `_out_f32` variants use their input's): `Ok(None)` when there is nothing to do, `Err` (the
/// reason) when the problem exceeds the grid limits. Same shapes as the `launch_dims_*`, which
/// panic instead.
pub fn try_launch_dims(args: &GemmArgs, dtype: &str) -> Result<Option<LaunchDims>, String> {
    let tile = match dtype {
        "f32" => F32_TILE,
        "f64" => F64_TILE,
        "bf16" | "f16" => TC_TILE,
        _ => return Err(format!("no GEMM kernel for {dtype}")),
    };
    checked_dims(args, tile)
}

fn launch_dims(args: &GemmArgs, tile: (usize, usize, usize)) -> Option<LaunchDims> {
    checked_dims(args, tile).unwrap_or_else(|e| panic!("gemm: {e}"))
}

/// Launch shape of `gemm_f32` (`None`: nothing to do).
pub fn launch_dims_f32(args: &GemmArgs) -> Option<LaunchDims> {
    launch_dims(args, F32_TILE)
}

/// Launch shape of `gemm_f64` (`None`: nothing to do).
pub fn launch_dims_f64(args: &GemmArgs) -> Option<LaunchDims> {
    launch_dims(args, F64_TILE)
}

/// Launch shape of the tensor-core kernels `gemm_{bf16,f16}[_out_f32]` (`None`: nothing to do).
pub fn launch_dims_tc(args: &GemmArgs) -> Option<LaunchDims> {
    launch_dims(args, TC_TILE)
}
