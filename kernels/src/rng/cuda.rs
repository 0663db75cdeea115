//! The CUDA side of the RNG family (`philox.cu`, module name `"philox"`): kernel names, argument
//! lists, launch shapes and the precision contract, shared by the GPU runtime and the emulator tests.
//!
//! | kernel | arguments (in order) | launch over |
//! |---|---|---|
//! | `philox_uniform_f32` | `out: *mut f32, n: i64, seed: u64, offset: u64, low: f32, high: f32` | [`blocks`]`(n, offset, 4)` |
//! | `philox_uniform_f64` | `out: *mut f64, n: i64, seed: u64, offset: u64, low: f64, high: f64` | [`blocks`]`(n, offset, 2)` |
//! | `philox_normal_f32` | `out: *mut f32, n: i64, seed: u64, offset: u64, mean: f32, std: f32` | [`blocks`]`(n, offset, 4)` |
//! | `philox_normal_f64` | `out: *mut f64, n: i64, seed: u64, offset: u64, mean: f64, std: f64` | [`blocks`]`(n, offset, 2)` |
//! | `philox_raw_u32` | `ctr: *const u32 (4 per item), key: *const u32 (2 per item), out: *mut u32 (4 per item), items: i64` | `items` |
//!
//! `out[i]` (contiguous, overwritten, `i < n`) is stream element `offset + i` of `seed`, exactly the
//! CPU's [`super::fill_uniform`] / [`super::fill_normal`] (`T`-typed `low/high/mean/std`, as the CPU
//! functions take them). Launch with [`launch_dims`] (grid-stride over Philox blocks, any grid
//! works); `n = 0` is a valid no-op.
//!
//! Precision against the CPU:
//! * **uniform f32 / f64: bit-identical** (integer Philox, exact scaling, then `low + span·u` with
//!   uncontracted IEEE ops, `rn.cuh`).
//! * **normal**: Box–Muller in f64 with the same formulas and operation order; `sqrt`, products and
//!   the final `mean + std·z` are IEEE and uncontracted, but `log`, `sin`, `cos` are the CUDA libdevice
//!   versions (max error 1 ulp for `log`, 2 ulp for `sin`/`cos`) where the CPU uses the platform libm
//!   (glibc: < 1 ulp). Hence **f64 normals agree to a few ulp (relative error ≤ 1e-15, tested bound
//!   4·2⁻⁵² relative + 1e-300 absolute)**, and **f32 normals, rounded from the f64 value, are
//!   bit-identical except when the f64 value lies within a few f64 ulps of an f32 rounding boundary
//!   (probability ~1e-8 per element), where they differ by 1 f32 ulp**. In the emulator the host libm
//!   is the CPU's, so the emulator tests check all four fills bit for bit.

use crate::cuda_abi::LaunchDims;

/// Threads per block (grid-stride loops over Philox blocks).
pub const THREADS: u32 = 256;
/// Most blocks launched (132 SMs × 8 resident blocks of 256 threads on an H100).
pub const MAX_BLOCKS: u32 = 132 * 8;

/// The number of Philox blocks (one thread each) a fill of `n` elements at `offset` touches, with
/// `per` = 4 for f32 and 2 for f64 (the same count the kernels compute).
pub fn blocks(n: usize, offset: u64, per: u64) -> usize {
    if n == 0 { 0 } else { (offset % per + n as u64).div_ceil(per) as usize }
}

/// The launch of a fill of `n` elements of `elem_bytes` (4 or 8) bytes at `offset`.
pub fn launch_dims(n: usize, offset: u64, elem_bytes: usize) -> LaunchDims {
    let per = if elem_bytes == 8 { 2 } else { 4 };
    LaunchDims::linear(blocks(n, offset, per), THREADS, MAX_BLOCKS)
}
