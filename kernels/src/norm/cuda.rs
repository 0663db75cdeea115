//! The CUDA side of layer norm and group norm (`norm.cu`): kernel names, argument lists, workspace
//! and launch shapes, shared by the GPU runtime and the emulator tests.
//!
//! All buffers are contiguous (the runtime makes inputs contiguous first), in the layouts of the CPU
//! API ([`super::layer_norm_forward`], [`super::group_norm_forward`] & co.): layer norm `x`, `y`, `dy`,
//! `dx`: `[rows, cols]`, `gamma`, `beta`, `dgamma`, `dbeta`: `[cols]`, `mean`, `rstd`: `[rows]`; group
//! norm `x`…: `[n, c, spatial]`, `gamma`…: `[c]`, `mean`, `rstd`: `[n·groups]`. `gamma`/`beta` may be
//! null (= 1 / 0). `eps` is passed as f64 (the dtype's value widened). Outputs are overwritten.
//!
//! # Kernels (`<dtype>` ∈ `f32`, `f64`, `f16`, `bf16`; `T` the storage type, 16-bit = raw `u16` bits)
//! | kernel | arguments (in order) | launch |
//! |---|---|---|
//! | `layer_norm_fwd_<dtype>` | `x: *const T, gamma: *const T, beta: *const T, y: *mut T, mean: *mut T, rstd: *mut T, rows: i64, cols: i64, eps: f64` | [`rows_launch`]`(rows, cols)` |
//! | `group_norm_fwd_<dtype>` | `x, gamma, beta, y, mean, rstd` (as above), `n: i64, c: i64, spatial: i64, groups: i64, eps: f64` | [`rows_launch`]`(n·groups, c/groups·spatial)` |
//! | `layer_norm_bwd_<dtype>` | `x: *const T, gamma: *const T, mean: *const T, rstd: *const T, dy: *const T, dx: *mut T, mean_exact: *mut f64, rows: i64, cols: i64` | [`rows_launch`]`(rows, cols)` |
//! | `group_norm_bwd_<dtype>` | `x, gamma, mean, rstd, dy, dx, mean_exact` (as above), `n: i64, c: i64, spatial: i64, groups: i64` | [`rows_launch`]`(n·groups, c/groups·spatial)` |
//! | `layer_norm_bwd_params_<dtype>` | `x: *const T, mean_exact: *const f64, rstd: *const T, dy: *const T, partial: *mut f64, rows: i64, cols: i64, rows_per_part: i64, parts: i64` | [`LnParamsPlan::stage1`] |
//! | `group_norm_bwd_params_<dtype>` | `x: *const T, mean_exact: *const f64, rstd: *const T, dy: *const T, partial: *mut f64, n: i64, c: i64, spatial: i64, groups: i64` | [`rows_launch`]`(n·c, spatial)` |
//! | `norm_bwd_params_finish_<dtype>` | `partial: *const f64, parts: i64, cols: i64, dgamma: *mut T, dbeta: *mut T` | [`finish_launch`]`(cols)` |
//!
//! dgamma/dbeta are a deterministic **two-stage reduction** (no atomics): stage 1
//! (`*_bwd_params_*`) writes f64 partial sums to a workspace `partial` of `2·parts·cols` f64
//! (`[2][parts][cols]`: Σ dy·x̂ then Σ dy), stage 2 (`norm_bwd_params_finish_*`) adds the `parts` of
//! each column in order and writes `dgamma`, `dbeta` (either may be null; when both are null skip the
//! two stages). Layer norm: `cols` = cols, parts = row chunks from [`LnParamsPlan`]. Group norm:
//! `cols` = c, `parts` = n.
//!
//! `mean_exact` (`[rows]` / `[n·groups]` f64, a workspace): the dx kernels write the re-centred mean
//! (saved mean + Σ(x − saved mean)/M, see Numerics) there, and stage 1 reads it, so the order is
//! dx kernel → stage 1 → stage 2. Pass null to the dx kernel when no parameter gradient is needed.
//! When `rows`/`n·groups` is 0 launch nothing (dgamma/dbeta must still be zeroed: run stage 2 with
//! `parts = 0`).
//!
//! # Fused group norm + modulation + SiLU (`gn_silu.cu`)
//! `y = SiLU(GN(x; gamma, beta)·(1 + scale[s, ch]) + shift[s, ch])` ([`super::group_norm_silu_forward`]):
//! `x`, `y`, `dy`, `dx`: `[n, c, spatial]`; `gamma`, `beta`, `dgamma`, `dbeta`: `[c]`; `scale`,
//! `shift`, `dscale`, `dshift`: `[n·c]`; `mean`, `rstd`: `[n·groups]` (as the plain group norm). Every
//! optional input may be null (`gamma` = 1, the others 0; `scale` and `shift` both null = GN + SiLU),
//! and `dscale`, `dshift`, `partial` may be null when not wanted.
//!
//! | kernel | arguments (in order) | launch |
//! |---|---|---|
//! | `group_norm_silu_fwd_<dtype>` | `x: *const T, gamma: *const T, beta: *const T, scale: *const T, shift: *const T, y: *mut T, mean: *mut T, rstd: *mut T, n: i64, c: i64, spatial: i64, groups: i64, eps: f64` | [`gn_silu_launch`]`(n·groups, c/groups·spatial)` |
//! | `group_norm_silu_bwd_<dtype>` | `x, gamma, beta, scale, shift` (as above), `mean: *const T, rstd: *const T, dy: *const T, dx: *mut T, dscale: *mut T, dshift: *mut T, partial: *mut f64, n: i64, c: i64, spatial: i64, groups: i64` | [`gn_silu_launch`]`(n·groups, c/groups·spatial)` |
//! | `norm_bwd_params_finish_<dtype>` (norm.cu) | `partial, parts = n, cols = c, dgamma, dbeta` | [`finish_launch`]`(c)` |
//!
//! The backward kernel writes `dx`, `dscale`, `dshift` directly (each (sample, channel) is one
//! team's) and stage 1 of dgamma/dbeta into `partial` (`2·n·c` f64, [`gn_silu_workspace_len`]:
//! `[0][s][ch] = (1 + a)·Σ dz·x̂`, `[1][s][ch] = (1 + a)·Σ dz`), so the order is bwd kernel → stage 2;
//! there is no `mean_exact` workspace (the kernel re-centres the saved mean itself). `c` must be a
//! multiple of `groups` (checked by the caller, as for the CPU API). `n = 0`: launch only stage 2
//! with `parts = 0` (zeroes dgamma/dbeta). `spatial = 0` needs no special case (mean 0, rstd
//! `1/sqrt(eps)`, zero gradients).
//! The forward reads `x` once for the statistics (shifted one-pass f64 sums, see `gn_silu.cu`) and once
//! for the epilogue; the backward reads `x` three times and `dy` twice (dz is recomputed, never stored),
//! versus 4+ full passes of the composed GN → mul → add → SiLU chain in each direction.
//!
//! # Numerics
//! Mean/variance two-pass in f64 for every dtype, `rstd = 1/sqrt(var + eps)` in f64, `x̂` and `y` in
//! f64, rounded once. The backward re-centres the saved (rounded) mean from `x` (like the CPU), all
//! sums in f64; stage 1 of the parameter gradients uses the same re-centred mean (`mean_exact`), so a
//! rounded f32 mean at `|mean| ≫ std` costs no accuracy in dgamma either.
//!
//! # Launch
//! [`rows_launch`]: 256 threads per block, one warp per row for rows ≤ 1024 elements, else one block
//! per row (grid-stride over rows); any block of a multiple of 32 threads works.

use crate::cuda_abi::LaunchDims;

/// Threads per block of every norm kernel.
pub const THREADS: u32 = 256;

/// The launch of the row kernels (`*_fwd_*`, `*_bwd_*`, `group_norm_bwd_params_*`).
pub fn rows_launch(rows: usize, row_len: usize) -> LaunchDims {
    crate::reduce::cuda::launch_dims(rows, row_len)
}

/// Threads per block of the fused GN+SiLU kernels when a block owns a row (rows > 1024 elements).
pub const GN_SILU_BLOCK_THREADS: u32 = 512;

/// The launch of `group_norm_silu_{fwd,bwd}_*`: [`rows_launch`], except that a row past 1024
/// elements gets a block of [`GN_SILU_BLOCK_THREADS`]. Rows are few in the ResNet blocks
/// (n·groups), so with 256 threads per row the H200 ran a quarter full (2026-11-26: 8×256×64²,
/// 32 groups, is 256 rows); 512 threads double the loads in flight. The kernels'
/// `__launch_bounds__(512)` keeps their registers within what a 512-thread block may use (a test
/// checks that the two stay in step).
pub fn gn_silu_launch(rows: usize, row_len: usize) -> LaunchDims {
    let mut d = rows_launch(rows, row_len);
    if row_len > crate::reduce::cuda::WARP_ROW_MAX {
        d.block = (GN_SILU_BLOCK_THREADS, 1, 1);
    }
    d
}

/// The launch of `norm_bwd_params_finish_*` over `cols` columns.
pub fn finish_launch(cols: usize) -> LaunchDims {
    LaunchDims::linear(cols, THREADS, 65535)
}

/// Stage 1 of the layer-norm parameter gradients: `parts` chunks of `rows_per_part` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LnParamsPlan {
    pub rows_per_part: usize,
    pub parts: usize,
}

impl LnParamsPlan {
    /// Chunks of at least 32 rows, at most 256 chunks (so the workspace is ≤ 2·256·cols f64 and
    /// stage 2 adds ≤ 256 terms per column).
    pub fn new(rows: usize) -> Self {
        let rows_per_part = rows.div_ceil(256).max(32);
        LnParamsPlan { rows_per_part, parts: rows.div_ceil(rows_per_part) }
    }
    /// Workspace length in f64 elements (`partial`).
    pub fn workspace_len(&self, cols: usize) -> usize {
        2 * self.parts * cols
    }
    /// Grid (column blocks × parts) of `layer_norm_bwd_params_*`.
    pub fn stage1(&self, cols: usize) -> LaunchDims {
        let bx = cols.div_ceil(THREADS as usize).clamp(1, 65535) as u32;
        let by = self.parts.clamp(1, 65535) as u32;
        LaunchDims { grid: (bx, by, 1), block: (THREADS, 1, 1), shared_mem_bytes: 0 }
    }
}

/// Workspace (`partial`, f64 elements) of `group_norm_silu_bwd_*`: `2·n·c`.
pub fn gn_silu_workspace_len(n: usize, c: usize) -> usize {
    2 * n * c
}
