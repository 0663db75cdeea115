//! The CUDA side of the layout family (`layout.cu`, module name `"layout"`): kernel names, argument
//! lists, launch shapes and host-side contracts, shared by the GPU runtime in `tensor` and the
//! emulator tests.
//!
//! Conventions for every kernel below: `T*` is a device pointer to the dtype's storage (`f16`/`bf16`
//! as raw `u16` bits, `i64`, `u8`); pointers are the start of the buffer (a strided argument carries
//! its own element offset, contiguous outputs start at element 0: pass a sliced `CudaView` for an
//! output at an offset); `n` and all sizes are `i64` element counts; `StridedArg` is
//! [`crate::cuda_abi::StridedArg::from_layout`] passed by value. Every kernel is a grid-stride loop,
//! so any grid works; use [`launch_dims`] (1-d, [`THREADS`] wide, at most [`MAX_BLOCKS`] blocks)
//! with the element count given per kernel. A launch with a count of 0 is valid and does nothing
//! (or, for `index_select`, only checks the indices). Dtype suffixes: `f32 f64 f16 bf16 i64 u8`.
//!
//! | kernel | arguments (in order) | launch over | CPU twin |
//! |---|---|---|---|
//! | `layout_copy_b{1,2,4,8}` | `src: *const uN, sl: StridedArg, dst: *mut uN, dl: StridedArg, n: i64` | `n` | [`super::copy_strided`] |
//! | `fill_<dt>` | `dst: *mut T, n: i64, value: T` (f16/bf16: `value` is the `u16` bits) | `n` | `vec![v; n]` |
//! | `cast_<from>_<to>` (30, all distinct pairs) | `src: *const From, sl: StridedArg, dst: *mut To, n: i64` | `n` | `Tensor::to_dtype` |
//! | `upsample_nearest_fwd_<dt>` (all 6) | `x: *const T, y: *mut T, nc, h, w, oh, ow: i64` | `nc·oh·ow` | [`super::upsample_nearest2d`] |
//! | `upsample_nearest_bwd_<fdt>` (f32 f64 f16 bf16) | `dy: *const T, dx: *mut T, nc, h, w, oh, ow: i64` | `nc·h·w` | [`super::upsample_nearest2d_backward`] |
//! | `avg_pool2d_fwd_<fdt>` | `x: *const T, y: *mut T,` then [`pool2d_args`] (`nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw: i64, count_include_pad: i32`) | `nc·oh·ow` | [`super::avg_pool2d`] |
//! | `avg_pool2d_bwd_<fdt>` | `dy: *const T, dx: *mut T,` then [`pool2d_args`] | `nc·h·w` | [`super::avg_pool2d_backward`] |
//! | `index_select_fwd_<dt>` (all 6) | `src: *const T, idx: *const i64, dst: *mut T, outer, n, inner, m: i64, err: *mut u64` | [`index_select_count`] | [`super::index_select`] |
//! | `index_select_bwd_{f32,f64}` | `dy: *const T, idx: *const i64, dsrc: *mut T, outer, n, inner, m: i64, err: *mut u64` | [`index_select_count`] | [`super::index_select_backward`] |
//! | `index_select_bwd_count` | `idx: *const i64, n: i64, m: i64, starts: *mut i32 (n + 1), err: *mut u64` | `max(n, m)` | deterministic backward, step 1 |
//! | `index_select_bwd_scan` | `starts: *mut i32 (n + 1), n: i64` | [`scan_dims`] (exactly one block) | step 2 |
//! | `index_select_bwd_fill` | `idx: *const i64, n: i64, m: i64, starts: *const i32, rows: *mut i32 (m)` | `n` | step 3 |
//! | `index_select_bwd_gather_<fdt>` (f32 f64 f16 bf16) | `dy: *const T, starts: *const i32, rows: *const i32, dsrc: *mut T, outer, n, inner, m: i64` | `outer·n·inner` | step 4, [`super::index_select_backward`] bit for bit |
//! | `where_<dt>` (all 6) | `cond: *const u8, cl: StridedArg, a: *const T, al: StridedArg, b: *const T, bl: StridedArg, dst: *mut T, n: i64` | `n` | [`super::where_select`] |
//!
//! Details and host contracts:
//! * **copy** is dtype-agnostic: pick the kernel by element size ([`copy_kernel`]); element `i` of
//!   `src` through `sl` goes to element `i` of `dst` through `dl` (row-major order of the common
//!   shape; both layouts must have the same shape before `from_layout`, which may merge them
//!   differently). `dl` must be injective (no stride 0 with size > 1): threads race otherwise (the
//!   CPU's "last source wins" rule for overlapping destinations is not reproduced).
//!   A strided → contiguous copy is `dl = StridedArg::from_layout(&StridedLayout::contiguous(shape))`.
//! * **concat** is one `layout_copy_bN` launch per input, writing through the views of
//!   [`concat_dst_layouts`] into the contiguous output (inputs empty along the axis are skipped).
//! * **casts** are bit-identical to the CPU for every value including NaN payloads (see the comment
//!   block in layout.cu): f32 → bf16 rounds to nearest even; f64/i64/u8/f16 → bf16 use the `half`
//!   crate's `f64_to_bf16` (RNE on the upper 32 bits of the f64); anything → f16 other than from
//!   f32 rounds to f32 first, as `half::f16::from_f64` does on x86-64 with F16C (the CPU result of
//!   `from_f64` differs on machines without F16C/aarch64, which round once; ties only); float →
//!   i64/u8 truncates, saturates, NaN → 0; i64 → u8 saturates (through f64, as the CPU does).
//! * **upsample backward** and **pool backward** are gathers (deterministic, no atomics) that add
//!   in the CPU's order, so f32/f64 results are bit-identical to the CPU kernels; the 16-bit
//!   variants accumulate in f32 and round once (the CPU widens to f32, runs the f32 kernel and
//!   rounds: identical as well). Outputs are overwritten; no zeroing needed.
//! * **pool** takes the output size precomputed (`Pool2dParams::out_h/out_w`); the host validates
//!   the parameters first (`Pool2dParams::validate`), the kernels assume them valid.
//! * **index_select**: `src`/`dst` contiguous `[outer, n, inner]` / `[outer, m, inner]`, `m =
//!   idx.len()`. Before the launch the host sets `*err = u64::MAX` ([`INDEX_OK`]); afterwards
//!   [`index_result`] turns it into the CPU's `Result<(), usize>` (the smallest position of an index
//!   outside `-n..n`). On error the output is unspecified (the CPU leaves it untouched): drop it.
//!   The backward accumulates with `atomicAdd`, so **the host zeroes `dsrc` first** (`fill_<dt>` with
//!   0 or a memset); f32/f64 only (the tensor layer computes 16-bit gradients in f32 like the CPU);
//!   duplicate indices are summed in an unspecified order (last-bit differences from the CPU).
//! * **deterministic index_select backward** (`index_select_bwd_count/scan/fill/gather_*`, four
//!   launches in this order on one stream): builds, in an i32 scratch of `n + 1` (`starts`) and `m`
//!   (`rows`) elements, the list of positions `j` reading each source row, in increasing `j`, then
//!   gathers: `dsrc[o, i, k] = Σ dy[o, j, k]` over that list, summed from 0 in the CPU's order in
//!   the compute type (f32 for f16/bf16) and rounded once, so the result is **bit-identical** to the
//!   CPU and reproducible, for all four float dtypes; `dsrc` is overwritten (no zeroing). Costs
//!   `O(n·m)` index compares (steps 1 and 3: fine for embeddings and class labels, where `n·m` ≲
//!   1e9) plus one read of `dy`; the atomic `index_select_bwd_{f32,f64}` is `O(m·inner·outer)` and
//!   better when `n·m` is huge. `err` (set to [`INDEX_OK`] before step 1) is read after step 1 or
//!   at the end (steps 2–4 on a bad index give garbage, not memory errors, as bad rows are never
//!   listed). Requires `m < 2³¹`.
//! * **where**: `cond`, `a`, `b` are views already broadcast to the output shape
//!   ([`crate::elementwise::broadcast_layout`]); `dst` is contiguous with `n` elements.

use crate::StridedLayout;
use crate::cuda_abi::LaunchDims;

/// Threads per block of every layout kernel (grid-stride loops).
pub const THREADS: u32 = 256;
/// Most blocks launched (132 SMs × 8 resident blocks of 256 threads on an H100).
pub const MAX_BLOCKS: u32 = 132 * 8;

/// The launch for a kernel looping over `n` items.
pub fn launch_dims(n: usize) -> LaunchDims {
    LaunchDims::linear(n, THREADS, MAX_BLOCKS)
}

/// The strided-copy kernel for elements of `elem_bytes` bytes (1, 2, 4 or 8).
pub fn copy_kernel(elem_bytes: usize) -> &'static str {
    match elem_bytes {
        1 => "layout_copy_b1",
        2 => "layout_copy_b2",
        4 => "layout_copy_b4",
        8 => "layout_copy_b8",
        _ => panic!("layout_copy: no kernel for {elem_bytes}-byte elements"),
    }
}

/// The dtype suffixes of the layout kernels, in the order the tensor crate lists its dtypes.
pub const DTYPES: [&str; 6] = ["f32", "f64", "f16", "bf16", "i64", "u8"];

/// The cast kernel from dtype `from` to dtype `to` (suffixes of [`DTYPES`], distinct).
pub fn cast_kernel(from: &str, to: &str) -> String {
    assert!(DTYPES.contains(&from) && DTYPES.contains(&to) && from != to, "no cast kernel {from} -> {to}");
    format!("cast_{from}_{to}")
}

/// The destination views of a concat of inputs with `shapes` along `axis` into one contiguous
/// output: input `k` is written through `dst_layouts[k]` (same shape as input `k`, the output's
/// row-major strides, offset at the input's start along `axis`).
pub fn concat_dst_layouts(shapes: &[&[usize]], axis: usize) -> Vec<StridedLayout> {
    let mut out_shape = shapes[0].to_vec();
    out_shape[axis] = shapes.iter().map(|s| s[axis]).sum();
    let strides = crate::strided::contiguous_strides(&out_shape);
    let mut pos = 0;
    shapes
        .iter()
        .map(|s| {
            let l = StridedLayout::new(s.to_vec(), strides.clone(), pos * strides[axis]);
            pos += s[axis];
            l
        })
        .collect()
}

/// The trailing scalar arguments of `avg_pool2d_fwd_*` / `avg_pool2d_bwd_*`, in order:
/// `(nc, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw)` as i64 and `count_include_pad` as i32.
pub fn pool2d_args(p: &super::Pool2dParams) -> ([i64; 11], i32) {
    let v = [
        p.nc,
        p.h,
        p.w,
        p.out_h(),
        p.out_w(),
        p.kernel[0],
        p.kernel[1],
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[1],
    ];
    (v.map(|x| x as i64), i32::from(p.count_include_pad))
}

/// The value the host stores in `err` before an `index_select_*` launch (no error).
pub const INDEX_OK: u64 = u64::MAX;

/// The items an `index_select_*` launch loops over: every output element and every index.
pub fn index_select_count(outer: usize, inner: usize, m: usize) -> usize {
    (outer * m * inner).max(m)
}

/// Threads of the single block of `index_select_bwd_scan` (`LAYOUT_SCAN_THREADS` in layout.cu).
pub const SCAN_THREADS: u32 = 256;

/// The launch of `index_select_bwd_scan`: exactly one block of [`SCAN_THREADS`] threads.
pub fn scan_dims() -> LaunchDims {
    LaunchDims { grid: (1, 1, 1), block: (SCAN_THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The CPU's result from the `err` word read back after an `index_select_*` launch.
pub fn index_result(err: u64) -> Result<(), usize> {
    if err == INDEX_OK { Ok(()) } else { Err(err as usize) }
}
