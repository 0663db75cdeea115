//! `layout.cu` through the host emulator, against the CPU kernels of this family (and, for the
//! casts, against the tensor crate's `to_dtype` rules written out with the `half` crate).
//!
//! Every comparison is bit-exact except the index-select backward with duplicate indices
//! (`atomicAdd` adds in an unspecified order: 1e-6 relative for f32, 1e-14 for f64). Launches use
//! few blocks ([`few`]) so the emulator (one OS thread per CUDA thread) stays fast; the kernels are
//! grid-stride loops, so the grid size does not change the result, and the copy test also uses the
//! runtime's [`cuda::launch_dims`].

use super::*;
use crate::StridedLayout;
use crate::cuda_abi::{LaunchDims, StridedArg};
use crate::elementwise::broadcast_layout;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{TestRng, Tolerance, assert_close};
use half::{bf16, f16};
use std::ffi::c_void;

fn view(rng: &mut TestRng, shape: &[usize]) -> StridedLayout {
    crate::elementwise::tests_support::random_view(rng, shape)
}

/// At most 3 blocks of 128 threads (grid-stride loops cover the rest).
fn few(n: usize) -> LaunchDims {
    LaunchDims::linear(n, 128, 3)
}

fn arg(l: &StridedLayout) -> StridedArg {
    StridedArg::from_layout(l).unwrap()
}

type CastFn = unsafe extern "C" fn(*const c_void, StridedArg, *mut c_void, i64);

macro_rules! decl_casts {
    ($($name:ident),* $(,)?) => {
        unsafe extern "C" {
            $(fn $name(src: *const c_void, sl: StridedArg, dst: *mut c_void, n: i64);)*
        }
        /// Every cast kernel with its (from, to) names, parsed from the kernel name.
        fn cast_table() -> Vec<(&'static str, &'static str, CastFn)> {
            vec![$({
                let name = stringify!($name);
                let mut it = name.split('_').skip(1);
                let (from, to) = (it.next().unwrap(), it.next().unwrap());
                let from = cuda::DTYPES.iter().find(|d| **d == from).unwrap();
                let to = cuda::DTYPES.iter().find(|d| **d == to).unwrap();
                (*from, *to, $name as CastFn)
            }),*]
        }
    };
}
decl_casts!(
    cast_f32_f64,
    cast_f32_f16,
    cast_f32_bf16,
    cast_f32_i64,
    cast_f32_u8,
    cast_f64_f32,
    cast_f64_f16,
    cast_f64_bf16,
    cast_f64_i64,
    cast_f64_u8,
    cast_f16_f32,
    cast_f16_f64,
    cast_f16_bf16,
    cast_f16_i64,
    cast_f16_u8,
    cast_bf16_f32,
    cast_bf16_f64,
    cast_bf16_f16,
    cast_bf16_i64,
    cast_bf16_u8,
    cast_i64_f32,
    cast_i64_f64,
    cast_i64_f16,
    cast_i64_bf16,
    cast_i64_u8,
    cast_u8_f32,
    cast_u8_f64,
    cast_u8_f16,
    cast_u8_bf16,
    cast_u8_i64,
);

unsafe extern "C" {
    fn layout_copy_b1(src: *const u8, sl: StridedArg, dst: *mut u8, dl: StridedArg, n: i64);
    fn layout_copy_b2(src: *const u16, sl: StridedArg, dst: *mut u16, dl: StridedArg, n: i64);
    fn layout_copy_b4(src: *const u32, sl: StridedArg, dst: *mut u32, dl: StridedArg, n: i64);
    fn layout_copy_b8(src: *const u64, sl: StridedArg, dst: *mut u64, dl: StridedArg, n: i64);
    fn fill_f32(dst: *mut f32, n: i64, v: f32);
    fn fill_f64(dst: *mut f64, n: i64, v: f64);
    fn fill_f16(dst: *mut u16, n: i64, v: u16);
    fn fill_bf16(dst: *mut u16, n: i64, v: u16);
    fn fill_i64(dst: *mut i64, n: i64, v: i64);
    fn fill_u8(dst: *mut u8, n: i64, v: u8);
    fn upsample_nearest_fwd_f32(x: *const f32, y: *mut f32, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_fwd_u8(x: *const u8, y: *mut u8, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_fwd_i64(x: *const i64, y: *mut i64, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_bwd_f32(dy: *const f32, dx: *mut f32, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_bwd_f64(dy: *const f64, dx: *mut f64, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_bwd_bf16(dy: *const u16, dx: *mut u16, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn upsample_nearest_bwd_f16(dy: *const u16, dx: *mut u16, nc: i64, h: i64, w: i64, oh: i64, ow: i64);
    fn avg_pool2d_fwd_f32(
        x: *const f32,
        y: *mut f32,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn avg_pool2d_fwd_f64(
        x: *const f64,
        y: *mut f64,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn avg_pool2d_fwd_bf16(
        x: *const u16,
        y: *mut u16,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn avg_pool2d_bwd_f32(
        dy: *const f32,
        dx: *mut f32,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn avg_pool2d_bwd_f64(
        dy: *const f64,
        dx: *mut f64,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn avg_pool2d_bwd_f16(
        dy: *const u16,
        dx: *mut u16,
        a0: i64,
        a1: i64,
        a2: i64,
        a3: i64,
        a4: i64,
        a5: i64,
        a6: i64,
        a7: i64,
        a8: i64,
        a9: i64,
        a10: i64,
        cip: i32,
    );
    fn index_select_fwd_f32(
        src: *const f32,
        idx: *const i64,
        dst: *mut f32,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
        err: *mut u64,
    );
    fn index_select_fwd_i64(
        src: *const i64,
        idx: *const i64,
        dst: *mut i64,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
        err: *mut u64,
    );
    fn index_select_fwd_u8(
        src: *const u8,
        idx: *const i64,
        dst: *mut u8,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
        err: *mut u64,
    );
    fn index_select_bwd_f32(
        dy: *const f32,
        idx: *const i64,
        dsrc: *mut f32,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
        err: *mut u64,
    );
    fn index_select_bwd_f64(
        dy: *const f64,
        idx: *const i64,
        dsrc: *mut f64,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
        err: *mut u64,
    );
    fn index_select_bwd_count(idx: *const i64, n: i64, m: i64, starts: *mut i32, err: *mut u64);
    fn index_select_bwd_scan(starts: *mut i32, n: i64);
    fn index_select_bwd_fill(idx: *const i64, n: i64, m: i64, starts: *const i32, rows: *mut i32);
    fn index_select_bwd_gather_f32(
        dy: *const f32,
        starts: *const i32,
        rows: *const i32,
        dsrc: *mut f32,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
    );
    fn index_select_bwd_gather_f64(
        dy: *const f64,
        starts: *const i32,
        rows: *const i32,
        dsrc: *mut f64,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
    );
    fn index_select_bwd_gather_bf16(
        dy: *const u16,
        starts: *const i32,
        rows: *const i32,
        dsrc: *mut u16,
        outer: i64,
        n: i64,
        inner: i64,
        m: i64,
    );
    fn where_f32(
        c: *const u8,
        cl: StridedArg,
        a: *const f32,
        al: StridedArg,
        b: *const f32,
        bl: StridedArg,
        y: *mut f32,
        n: i64,
    );
    fn where_f64(
        c: *const u8,
        cl: StridedArg,
        a: *const f64,
        al: StridedArg,
        b: *const f64,
        bl: StridedArg,
        y: *mut f64,
        n: i64,
    );
    fn where_bf16(
        c: *const u8,
        cl: StridedArg,
        a: *const u16,
        al: StridedArg,
        b: *const u16,
        bl: StridedArg,
        y: *mut u16,
        n: i64,
    );
    fn where_i64(
        c: *const u8,
        cl: StridedArg,
        a: *const i64,
        al: StridedArg,
        b: *const i64,
        bl: StridedArg,
        y: *mut i64,
        n: i64,
    );
    fn where_u8(
        c: *const u8,
        cl: StridedArg,
        a: *const u8,
        al: StridedArg,
        b: *const u8,
        bl: StridedArg,
        y: *mut u8,
        n: i64,
    );
}

// ---------------------------------------------------------------------------------------------
// copy and concat

/// Runs `layout_copy_bN` for `T` of N bytes (through `bits` views of the same memory).
fn gpu_copy<T: Copy>(src: &[T], sl: &StridedLayout, dst: &mut [T], dl: &StridedLayout, dims: LaunchDims) {
    let (sa, da, n) = (arg(sl), arg(dl), sl.numel() as i64);
    let (s, d) = (CPtr::of(src), Ptr::of(dst));
    let (s, d) = (CPtr(s.get() as *const u8), Ptr(d.get() as *mut u8));
    // SAFETY: src covers sl and dst covers dl (asserted by the callers through the CPU twin, which
    // checks the same lengths); the kernel reads/writes elements of exactly size_of::<T>() bytes.
    emu::launch(dims, || unsafe {
        match std::mem::size_of::<T>() {
            1 => layout_copy_b1(s.get().cast(), sa, d.get().cast(), da, n),
            2 => layout_copy_b2(s.get().cast(), sa, d.get().cast(), da, n),
            4 => layout_copy_b4(s.get().cast(), sa, d.get().cast(), da, n),
            8 => layout_copy_b8(s.get().cast(), sa, d.get().cast(), da, n),
            _ => unreachable!(),
        }
    })
    .unwrap();
}

fn check_copy<T: Copy + Send + Sync + PartialEq + std::fmt::Debug>(
    rng: &mut TestRng,
    shape: &[usize],
    make: impl Fn(u64) -> T,
    permuted_dst: bool,
) {
    let sl = view(rng, shape);
    let src: Vec<T> = (0..sl.required_len().max(1)).map(|_| make(rng.next_u64())).collect();
    // Destination: contiguous, or a permuted (injective) view into a larger buffer.
    let dl = if permuted_dst { view(rng, shape) } else { StridedLayout::contiguous(shape) };
    let fill = make(0xDEAD_BEEF);
    let mut want = vec![fill; dl.required_len().max(1) + 3];
    copy_strided(&src, &sl, &mut want, &dl);
    for dims in [few(sl.numel()), cuda::launch_dims(sl.numel())] {
        let mut got = vec![fill; want.len()];
        gpu_copy(&src, &sl, &mut got, &dl, dims);
        assert_eq!(got, want, "layout_copy {} bytes shape {shape:?} src {sl:?} dst {dl:?}", size_of::<T>());
    }
}

#[test]
fn copy_matches_copy_strided_for_every_element_size() {
    let mut rng = TestRng::new(71);
    let shapes: [&[usize]; 7] = [&[5, 7, 9], &[3, 1, 4, 2], &[0, 3], &[1], &[], &[17], &[2, 3, 2, 3, 2]];
    for shape in shapes {
        for permuted in [false, true] {
            check_copy(&mut rng, shape, |r| r as u8, permuted);
            check_copy(&mut rng, shape, |r| r as u16, permuted);
            check_copy(&mut rng, shape, |r| r as u32, permuted);
            check_copy(&mut rng, shape, |r| (r >> 40) as f32 - 1e6, permuted);
            check_copy(&mut rng, shape, |r| r as i64, permuted);
            check_copy(&mut rng, shape, |r| r, permuted);
        }
    }
}

#[test]
fn concat_as_copies_into_output_views_matches_the_cpu() {
    let mut rng = TestRng::new(72);
    for (axis, shapes) in [
        (1usize, vec![vec![2usize, 3, 4], vec![2, 0, 4], vec![2, 5, 4], vec![2, 1, 4]]),
        (0, vec![vec![3, 4], vec![1, 4], vec![2, 4]]),
        (2, vec![vec![3, 2, 1], vec![3, 2, 6]]),
        (0, vec![vec![0, 3], vec![0, 3]]),
    ] {
        let layouts: Vec<StridedLayout> = shapes.iter().map(|s| view(&mut rng, s)).collect();
        let bufs: Vec<Vec<f32>> = layouts.iter().map(|l| rng.vec_f32(l.required_len().max(1))).collect();
        let inputs: Vec<(&[f32], &StridedLayout)> = bufs.iter().map(|b| b.as_slice()).zip(&layouts).collect();
        let total: usize = {
            let mut s = shapes[0].clone();
            s[axis] = shapes.iter().map(|s| s[axis]).sum();
            s.iter().product()
        };
        let mut want = vec![0f32; total];
        concat(&inputs, axis, &mut want);
        let mut got = vec![f32::NAN; total];
        let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
        for ((buf, sl), dl) in inputs.iter().zip(cuda::concat_dst_layouts(&shape_refs, axis)) {
            gpu_copy(buf, sl, &mut got, &dl, few(sl.numel()));
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "concat axis {axis} shapes {shapes:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// casts

fn size_of_dtype(dt: &str) -> usize {
    match dt {
        "f32" => 4,
        "f64" | "i64" => 8,
        "f16" | "bf16" => 2,
        "u8" => 1,
        _ => unreachable!(),
    }
}

/// The source value as f64, as `CpuStorage::get_f64` reads it.
fn value_f64(dt: &str, b: u64) -> f64 {
    match dt {
        "f32" => f32::from_bits(b as u32) as f64,
        "f64" => f64::from_bits(b),
        "f16" => f16::from_bits(b as u16).to_f64(),
        "bf16" => bf16::from_bits(b as u16).to_f64(),
        "i64" => b as i64 as f64,
        "u8" => b as u8 as f64,
        _ => unreachable!(),
    }
}

/// `Tensor::to_dtype` on one element, written out (the direct pairs first, then through f64).
fn cpu_cast(from: &str, to: &str, b: u64) -> u64 {
    match (from, to) {
        ("f32", "f64") => (f32::from_bits(b as u32) as f64).to_bits(),
        ("f64", "f32") => (f64::from_bits(b) as f32).to_bits() as u64,
        ("f32", "f16") => f16::from_f32(f32::from_bits(b as u32)).to_bits() as u64,
        ("f32", "bf16") => bf16::from_f32(f32::from_bits(b as u32)).to_bits() as u64,
        ("f16", "f32") => f16::from_bits(b as u16).to_f32().to_bits() as u64,
        ("bf16", "f32") => bf16::from_bits(b as u16).to_f32().to_bits() as u64,
        _ => {
            let x = value_f64(from, b);
            match to {
                "f32" => (x as f32).to_bits() as u64,
                "f64" => x.to_bits(),
                "f16" => f16::from_f64(x).to_bits() as u64,
                "bf16" => bf16::from_f64(x).to_bits() as u64,
                "i64" => x as i64 as u64,
                "u8" => x as u8 as u64,
                _ => unreachable!(),
            }
        }
    }
}

/// Bit patterns to convert: every 16-bit and 8-bit pattern; for f32/f64/i64 special values, ties
/// and random bits and values.
fn samples(dt: &str, rng: &mut TestRng) -> Vec<u64> {
    let mut v: Vec<u64> = Vec::new();
    match dt {
        "f16" | "bf16" => v.extend(0..=u16::MAX as u64),
        "u8" => v.extend(0..=255u64),
        "f32" => {
            let specials = [
                0.0f32,
                -0.0,
                1.0,
                -1.5,
                0.1,
                65504.0,
                65519.99,
                65520.0,
                1e-8,
                5.96e-8,
                2.98e-8,
                1e-45,
                f32::MIN_POSITIVE,
                f32::INFINITY,
                f32::NEG_INFINITY,
                300.7,
                -3.9,
                255.5,
                256.0,
                -0.99,
                1e19,
                -1e19,
                9.223372e18,
                -9.223372e18,
                f32::MAX,
                1.0 + 1.0 / 256.0,
                1.0 + 3.0 / 256.0,
            ];
            v.extend(specials.iter().map(|x| x.to_bits() as u64));
            // bf16 ties with sticky bits only in the lowest 3 mantissa bits (f64 route would differ).
            v.extend([0x3f80_8001u64, 0x3f80_8004, 0x3f81_8000, 0x3f80_8000]);
            v.extend([0x7fc0_0001u64, 0xffa0_0000, 0x7f80_0001, 0x7fff_ffff]); // NaN payloads
            v.extend((0..3000).map(|_| rng.next_u64() as u32 as u64));
            v.extend((0..2000).map(|_| {
                ((rng.uniform() * 70000.0) as f32 * (1 << (rng.next_u64() % 4)) as f32).to_bits() as u64
            }));
            v.extend((0..500).map(|_| ((rng.uniform() * 1e-4) as f32).to_bits() as u64));
        }
        "f64" => {
            let specials = [
                0.0f64,
                -0.0,
                1.0,
                -1.5,
                0.1,
                65504.0,
                65520.0,
                65519.999999,
                1e-8,
                5.96e-8,
                1e-320,
                f64::MIN_POSITIVE,
                f64::INFINITY,
                f64::NEG_INFINITY,
                255.999,
                256.0,
                -0.999,
                -1.0,
                9.223_372_036_854_776e18, // 2^63
                9.223_372_036_854_775e18, // just below 2^63
                9.3e18,
                -9.223_372_036_854_776e18,
                -9.3e18,
                1e300,
                f64::MAX,
                1.0 + 1.0 / 256.0,
                1.0 + 1.0 / 256.0 + 2f64.powi(-40),
                3.4028235677973366e38,
                1e-39,
            ];
            v.extend(specials.iter().map(|x| x.to_bits()));
            v.extend([0x7ff8_0000_0000_0001u64, 0xfff4_0000_0000_0000, 0x7ff0_0000_0000_0001]); // NaNs
            // Ties that tell the rounding routes apart: bf16 ties whose sticky bit lies in the f64's
            // low 32 bits (half truncates them; rounding to f32 first would keep 2^-21..2^-23), and
            // an f16 tie broken only below f32 precision (two roundings, as the CPU with F16C).
            let ties = [
                1.0 + 2f64.powi(-8) + 2f64.powi(-22),
                -(1.0 + 2f64.powi(-8) + 2f64.powi(-21)),
                3.0 * (1.0 + 2f64.powi(-8) + 2f64.powi(-23)),
                1.0 + 2f64.powi(-11) + 2f64.powi(-40),
                -(1.0 + 2f64.powi(-11) + 2f64.powi(-30)),
            ];
            v.extend(ties.iter().map(|x| x.to_bits()));
            v.extend((0..3000).map(|_| rng.next_u64()));
            v.extend(
                (0..2000)
                    .map(|_| (rng.uniform() * 70000.0 * (1u64 << (rng.next_u64() % 40)) as f64).to_bits()),
            );
            v.extend((0..1000).map(|_| (rng.uniform() * 300.0).to_bits()));
            v.extend((0..500).map(|_| (rng.uniform() * 1e-40).to_bits()));
        }
        "i64" => {
            let specials = [
                0i64,
                1,
                -1,
                255,
                256,
                -256,
                i64::MAX,
                i64::MIN,
                (1 << 53) + 1,
                (1 << 24) + 1,
                65519,
                65520,
                -65520,
                (1 << 62) + (1 << 40) + 1,
            ];
            v.extend(specials.iter().map(|&x| x as u64));
            v.extend((0..2000).map(|_| rng.next_u64()));
            v.extend((0..2000).map(|_| rng.next_u64() >> (rng.next_u64() % 64)));
            v.extend((0..500).map(|_| ((rng.uniform() * 400.0) as i64) as u64));
        }
        _ => unreachable!(),
    }
    v
}

/// Packs the low `size` bytes of each value into an 8-byte aligned buffer.
fn pack(vals: &[u64], size: usize, len: usize) -> Vec<u64> {
    let mut bytes = vec![0u8; len * size];
    for (i, v) in vals.iter().enumerate() {
        bytes[i * size..(i + 1) * size].copy_from_slice(&v.to_le_bytes()[..size]);
    }
    let mut out = vec![0u64; bytes.len().div_ceil(8).max(1)];
    for (k, c) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        out[k] = u64::from_le_bytes(w);
    }
    out
}

fn unpack(buf: &[u64], size: usize, n: usize) -> Vec<u64> {
    let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
    (0..n)
        .map(|i| {
            let mut w = [0u8; 8];
            w[..size].copy_from_slice(&bytes[i * size..(i + 1) * size]);
            u64::from_le_bytes(w)
        })
        .collect()
}

#[test]
fn casts_are_bit_identical_to_to_dtype_for_all_30_pairs() {
    let mut rng = TestRng::new(73);
    let table = cast_table();
    assert_eq!(table.len(), 30);
    for (from, to, f) in table {
        assert_eq!(cuda::cast_kernel(from, to), format!("cast_{from}_{to}"));
        let vals = samples(from, &mut rng);
        let n = vals.len();
        // Read through a strided view: element i at offset 1 + 2i.
        let mut spread = vec![0u64; 2 * n + 1];
        for (i, &v) in vals.iter().enumerate() {
            spread[1 + 2 * i] = v;
        }
        let (ss, ds) = (size_of_dtype(from), size_of_dtype(to));
        let src = pack(&spread, ss, 2 * n + 1);
        let sl = StridedLayout::new(vec![n], vec![2], 1);
        let mut dst = vec![0u64; (n * ds).div_ceil(8)];
        let (s, d, a) = (CPtr::of(&src), Ptr::of(&mut dst), arg(&sl));
        // SAFETY: src holds 2n+1 elements of `from`, dst n elements of `to`.
        emu::launch(few(n), || unsafe { f(s.get().cast(), a, d.get().cast(), n as i64) }).unwrap();
        let got = unpack(&dst, ds, n);
        for (i, (&g, &x)) in got.iter().zip(&vals).enumerate() {
            let want = cpu_cast(from, to, x);
            assert_eq!(
                g, want,
                "cast_{from}_{to} element {i}: input bits {x:#x}: got {g:#x}, want {want:#x}"
            );
        }
    }
}

#[test]
fn cast_handles_empty_and_single_element_permuted_views() {
    let mut rng = TestRng::new(74);
    for shape in [vec![0usize, 4], vec![1], vec![3, 4, 5]] {
        let sl = view(&mut rng, &shape);
        let src: Vec<f32> = (0..sl.required_len().max(1)).map(|_| rng.uniform() as f32 * 100.0).collect();
        let n = sl.numel();
        let mut got = vec![0xAAAAu16; n + 1];
        let (s, d, a) = (CPtr::of(&src), Ptr::of(&mut got), arg(&sl));
        // SAFETY: src covers sl; dst holds n (+1 sentinel) elements.
        emu::launch(few(n), || unsafe { cast_f32_bf16(s.get().cast(), a, d.get().cast(), n as i64) })
            .unwrap();
        let mut dense = vec![0f32; n];
        copy_strided(&src, &sl, &mut dense, &StridedLayout::contiguous(&shape));
        let want: Vec<u16> = dense.iter().map(|&x| bf16::from_f32(x).to_bits()).collect();
        assert_eq!(&got[..n], &want[..], "{shape:?}");
        assert_eq!(got[n], 0xAAAA, "wrote past the end");
    }
}

// ---------------------------------------------------------------------------------------------
// fill

#[test]
fn fill_sets_exactly_n_elements_of_every_dtype() {
    for n in [0usize, 1, 1000] {
        let mut a = vec![0f32; n + 1];
        let mut b = vec![0f64; n + 1];
        let mut c = vec![0u16; n + 1];
        let mut d = vec![0u16; n + 1];
        let mut e = vec![0i64; n + 1];
        let mut f = vec![0u8; n + 1];
        let (pa, pb, pc, pd, pe, pf) = (
            Ptr::of(&mut a),
            Ptr::of(&mut b),
            Ptr::of(&mut c),
            Ptr::of(&mut d),
            Ptr::of(&mut e),
            Ptr::of(&mut f),
        );
        let m = n as i64;
        // SAFETY: every buffer holds n + 1 elements; the kernels write the first n.
        unsafe {
            emu::launch(few(n), || fill_f32(pa.get(), m, -2.5)).unwrap();
            emu::launch(few(n), || fill_f64(pb.get(), m, 1e300)).unwrap();
            emu::launch(few(n), || fill_f16(pc.get(), m, f16::from_f32(0.1).to_bits())).unwrap();
            emu::launch(few(n), || fill_bf16(pd.get(), m, bf16::NEG_INFINITY.to_bits())).unwrap();
            emu::launch(few(n), || fill_i64(pe.get(), m, i64::MIN + 7)).unwrap();
            emu::launch(few(n), || fill_u8(pf.get(), m, 200)).unwrap();
        }
        assert!(a[..n].iter().all(|&x| x == -2.5) && a[n] == 0.0);
        assert!(b[..n].iter().all(|&x| x == 1e300) && b[n] == 0.0);
        assert!(c[..n].iter().all(|&x| x == f16::from_f32(0.1).to_bits()) && c[n] == 0);
        assert!(d[..n].iter().all(|&x| x == 0xff80) && d[n] == 0);
        assert!(e[..n].iter().all(|&x| x == i64::MIN + 7) && e[n] == 0);
        assert!(f[..n].iter().all(|&x| x == 200) && f[n] == 0);
    }
}

// ---------------------------------------------------------------------------------------------
// upsample

const RESIZES: [[usize; 5]; 7] = [
    [2, 3, 4, 6, 8],
    [1, 14, 5, 20, 3],
    [3, 1, 1, 4, 5],
    [1, 5, 7, 2, 3],
    [2, 4, 4, 4, 4],
    [1, 3, 2, 7, 9],
    [0, 3, 3, 6, 6],
];

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn upsample_forward_matches_the_cpu() {
    let mut rng = TestRng::new(75);
    for [nc, h, w, oh, ow] in RESIZES {
        let x = rng.vec_f32(nc * h * w);
        let mut want = vec![0f32; nc * oh * ow];
        upsample_nearest2d(nc, h, w, oh, ow, &x, &mut want);
        let mut got = vec![f32::NAN; want.len()];
        let (px, py) = (CPtr::of(&x), Ptr::of(&mut got));
        let a = [nc, h, w, oh, ow].map(|v| v as i64);
        // SAFETY: x holds nc·h·w, y nc·oh·ow elements.
        emu::launch(few(want.len()), || unsafe {
            upsample_nearest_fwd_f32(px.get(), py.get(), a[0], a[1], a[2], a[3], a[4])
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "upsample f32 {:?}", a);

        let xi: Vec<i64> = (0..x.len()).map(|_| rng.next_u64() as i64).collect();
        let mut want = vec![0i64; nc * oh * ow];
        upsample_nearest2d(nc, h, w, oh, ow, &xi, &mut want);
        let mut got = vec![0i64; want.len()];
        let (px, py) = (CPtr::of(&xi), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(want.len()), || unsafe {
            upsample_nearest_fwd_i64(px.get(), py.get(), a[0], a[1], a[2], a[3], a[4])
        })
        .unwrap();
        assert_eq!(got, want, "upsample i64 {a:?}");

        let xu: Vec<u8> = (0..x.len()).map(|_| rng.next_u64() as u8).collect();
        let mut want = vec![0u8; nc * oh * ow];
        upsample_nearest2d(nc, h, w, oh, ow, &xu, &mut want);
        let mut got = vec![0u8; want.len()];
        let (px, py) = (CPtr::of(&xu), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(want.len()), || unsafe {
            upsample_nearest_fwd_u8(px.get(), py.get(), a[0], a[1], a[2], a[3], a[4])
        })
        .unwrap();
        assert_eq!(got, want, "upsample u8 {a:?}");
    }
}

#[test]
fn upsample_backward_is_bit_identical_to_the_cpu_sum() {
    let mut rng = TestRng::new(76);
    for [nc, h, w, oh, ow] in RESIZES {
        let a = [nc, h, w, oh, ow].map(|v| v as i64);
        let dy = rng.vec_f64(nc * oh * ow);
        let mut want = vec![0f64; nc * h * w];
        upsample_nearest2d_backward(nc, h, w, oh, ow, &dy, &mut want);
        let mut got = vec![f64::NAN; want.len()];
        let (pd, px) = (CPtr::of(&dy), Ptr::of(&mut got));
        // SAFETY: dy holds nc·oh·ow, dx nc·h·w elements.
        emu::launch(few(want.len()), || unsafe {
            upsample_nearest_bwd_f64(pd.get(), px.get(), a[0], a[1], a[2], a[3], a[4])
        })
        .unwrap();
        assert_eq!(
            got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            want.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "f64 {a:?}"
        );

        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; nc * h * w];
        upsample_nearest2d_backward(nc, h, w, oh, ow, &dy32, &mut want);
        let mut got = vec![f32::NAN; want.len()];
        let (pd, px) = (CPtr::of(&dy32), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(want.len()), || unsafe {
            upsample_nearest_bwd_f32(pd.get(), px.get(), a[0], a[1], a[2], a[3], a[4])
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "f32 {a:?}");

        // 16-bit: the CPU widens to f32, runs the f32 kernel, rounds once.
        for bf in [true, false] {
            let enc = |x: f32| if bf { bf16::from_f32(x).to_bits() } else { f16::from_f32(x).to_bits() };
            let dec = |b: u16| if bf { bf16::from_bits(b).to_f32() } else { f16::from_bits(b).to_f32() };
            let dyh: Vec<u16> = dy32.iter().map(|&v| enc(v)).collect();
            let wide: Vec<f32> = dyh.iter().map(|&b| dec(b)).collect();
            let mut w32 = vec![0f32; nc * h * w];
            upsample_nearest2d_backward(nc, h, w, oh, ow, &wide, &mut w32);
            let want: Vec<u16> = w32.iter().map(|&v| enc(v)).collect();
            let mut got = vec![0u16; want.len()];
            let (pd, px) = (CPtr::of(&dyh), Ptr::of(&mut got));
            // SAFETY: as above.
            emu::launch(few(want.len()), || unsafe {
                if bf {
                    upsample_nearest_bwd_bf16(pd.get(), px.get(), a[0], a[1], a[2], a[3], a[4])
                } else {
                    upsample_nearest_bwd_f16(pd.get(), px.get(), a[0], a[1], a[2], a[3], a[4])
                }
            })
            .unwrap();
            assert_eq!(got, want, "16-bit (bf16 {bf}) {a:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// average pool

fn pool_cases() -> Vec<Pool2dParams> {
    let mut v = Vec::new();
    for (h, w, k, s, p) in [
        (7, 9, [3, 3], [2, 2], [1, 1]),
        (8, 8, [2, 2], [2, 2], [0, 0]),
        (5, 6, [3, 2], [1, 3], [1, 1]),
        (9, 7, [2, 3], [4, 3], [1, 0]),
        (4, 5, [1, 1], [1, 1], [0, 0]),
        (1, 1, [1, 1], [2, 2], [0, 0]),
        (6, 5, [5, 4], [1, 2], [2, 2]),
    ] {
        for cip in [true, false] {
            let p = Pool2dParams { nc: 3, h, w, kernel: k, stride: s, padding: p, count_include_pad: cip };
            p.validate().unwrap();
            v.push(p);
        }
    }
    v
}

#[test]
fn avg_pool_forward_and_backward_are_bit_identical_to_the_cpu() {
    let mut rng = TestRng::new(77);
    for p in pool_cases() {
        let (a, cip) = cuda::pool2d_args(&p);
        let (nx, ny) = (p.nc * p.h * p.w, p.nc * p.out_h() * p.out_w());
        // forward f64 / f32
        let x = rng.vec_f64(nx);
        let mut want = vec![0f64; ny];
        avg_pool2d(&p, &x, &mut want);
        let mut got = vec![f64::NAN; ny];
        let (px, py) = (CPtr::of(&x), Ptr::of(&mut got));
        // SAFETY: x holds nc·h·w, y nc·oh·ow elements.
        emu::launch(few(ny), || unsafe {
            avg_pool2d_fwd_f64(
                px.get(),
                py.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(got, want, "fwd f64 {p:?}");
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; ny];
        avg_pool2d(&p, &x32, &mut want);
        let mut got = vec![f32::NAN; ny];
        let (px, py) = (CPtr::of(&x32), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(ny), || unsafe {
            avg_pool2d_fwd_f32(
                px.get(),
                py.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "fwd f32 {p:?}");
        // forward bf16: widen, f32 CPU kernel, round once
        let xb: Vec<u16> = x32.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let wide: Vec<f32> = xb.iter().map(|&b| bf16::from_bits(b).to_f32()).collect();
        let mut w32 = vec![0f32; ny];
        avg_pool2d(&p, &wide, &mut w32);
        let want: Vec<u16> = w32.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let mut got = vec![0u16; ny];
        let (px, py) = (CPtr::of(&xb), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(ny), || unsafe {
            avg_pool2d_fwd_bf16(
                px.get(),
                py.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(got, want, "fwd bf16 {p:?}");

        // backward f64 / f32 / f16
        let dy = rng.vec_f64(ny);
        let mut want = vec![0f64; nx];
        avg_pool2d_backward(&p, &dy, &mut want);
        let mut got = vec![f64::NAN; nx];
        let (pd, px) = (CPtr::of(&dy), Ptr::of(&mut got));
        // SAFETY: dy holds nc·oh·ow, dx nc·h·w elements.
        emu::launch(few(nx), || unsafe {
            avg_pool2d_bwd_f64(
                pd.get(),
                px.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(got, want, "bwd f64 {p:?}");
        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; nx];
        avg_pool2d_backward(&p, &dy32, &mut want);
        let mut got = vec![f32::NAN; nx];
        let (pd, px) = (CPtr::of(&dy32), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(nx), || unsafe {
            avg_pool2d_bwd_f32(
                pd.get(),
                px.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "bwd f32 {p:?}");
        let dyh: Vec<u16> = dy32.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
        let wide: Vec<f32> = dyh.iter().map(|&b| f16::from_bits(b).to_f32()).collect();
        let mut w32 = vec![0f32; nx];
        avg_pool2d_backward(&p, &wide, &mut w32);
        let want: Vec<u16> = w32.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
        let mut got = vec![0u16; nx];
        let (pd, px) = (CPtr::of(&dyh), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(nx), || unsafe {
            avg_pool2d_bwd_f16(
                pd.get(),
                px.get(),
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                cip,
            )
        })
        .unwrap();
        assert_eq!(got, want, "bwd f16 {p:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// index_select

fn gpu_index_fwd_f32(
    outer: usize,
    n: usize,
    inner: usize,
    src: &[f32],
    idx: &[i64],
) -> (Vec<f32>, Result<(), usize>) {
    let m = idx.len();
    let mut dst = vec![0f32; outer * m * inner];
    let mut err = [cuda::INDEX_OK];
    let (ps, pi, pd, pe) = (CPtr::of(src), CPtr::of(idx), Ptr::of(&mut dst), Ptr::of(&mut err));
    let dims = few(cuda::index_select_count(outer, inner, m));
    let a = [outer, n, inner, m].map(|v| v as i64);
    // SAFETY: src holds outer·n·inner, idx m, dst outer·m·inner elements; err one word.
    emu::launch(dims, || unsafe {
        index_select_fwd_f32(ps.get(), pi.get(), pd.get(), a[0], a[1], a[2], a[3], pe.get())
    })
    .unwrap();
    (dst, cuda::index_result(err[0]))
}

fn gpu_index_bwd_f64(
    outer: usize,
    n: usize,
    inner: usize,
    dy: &[f64],
    idx: &[i64],
) -> (Vec<f64>, Result<(), usize>) {
    let m = idx.len();
    let mut dsrc = vec![0f64; outer * n * inner]; // the host zeroes dsrc first
    let mut err = [cuda::INDEX_OK];
    let (pd, pi, px, pe) = (CPtr::of(dy), CPtr::of(idx), Ptr::of(&mut dsrc), Ptr::of(&mut err));
    let dims = few(cuda::index_select_count(outer, inner, m));
    let a = [outer, n, inner, m].map(|v| v as i64);
    // SAFETY: dy holds outer·m·inner, idx m, dsrc outer·n·inner elements; err one word.
    emu::launch(dims, || unsafe {
        index_select_bwd_f64(pd.get(), pi.get(), px.get(), a[0], a[1], a[2], a[3], pe.get())
    })
    .unwrap();
    (dsrc, cuda::index_result(err[0]))
}

#[test]
fn index_select_forward_matches_the_cpu_including_negative_indices() {
    let mut rng = TestRng::new(78);
    for (outer, n, inner, idx) in [
        (2usize, 5usize, 3usize, vec![4i64, 0, -1, 2, 2, -5]),
        (1, 7, 1, vec![6, 5, 4, 3, 2, 1, 0, -7]),
        (3, 4, 5, vec![]),
        (0, 4, 2, vec![1, 3]),
        (2, 1, 4, vec![0, 0, -1]),
    ] {
        let src = rng.vec_f32(outer * n * inner);
        let mut want = vec![0f32; outer * idx.len() * inner];
        index_select(outer, n, inner, &src, &idx, &mut want).unwrap();
        let (got, res) = gpu_index_fwd_f32(outer, n, inner, &src, &idx);
        assert_eq!(res, Ok(()));
        assert_eq!(bits32(&got), bits32(&want), "f32 {outer} {n} {inner} {idx:?}");

        let srci: Vec<i64> = (0..src.len()).map(|_| rng.next_u64() as i64).collect();
        let mut want = vec![0i64; outer * idx.len() * inner];
        index_select(outer, n, inner, &srci, &idx, &mut want).unwrap();
        let mut got = vec![0i64; want.len()];
        let mut err = [cuda::INDEX_OK];
        let (ps, pi, pd, pe) = (CPtr::of(&srci), CPtr::of(&idx), Ptr::of(&mut got), Ptr::of(&mut err));
        let a = [outer, n, inner, idx.len()].map(|v| v as i64);
        // SAFETY: as in gpu_index_fwd_f32.
        emu::launch(few(cuda::index_select_count(outer, inner, idx.len())), || unsafe {
            index_select_fwd_i64(ps.get(), pi.get(), pd.get(), a[0], a[1], a[2], a[3], pe.get())
        })
        .unwrap();
        assert_eq!((got, err[0]), (want, cuda::INDEX_OK), "i64 {outer} {n} {inner} {idx:?}");

        let srcu: Vec<u8> = (0..src.len()).map(|_| rng.next_u64() as u8).collect();
        let mut want = vec![0u8; outer * idx.len() * inner];
        index_select(outer, n, inner, &srcu, &idx, &mut want).unwrap();
        let mut got = vec![0u8; want.len()];
        let mut err = [cuda::INDEX_OK];
        let (ps, pi, pd, pe) = (CPtr::of(&srcu), CPtr::of(&idx), Ptr::of(&mut got), Ptr::of(&mut err));
        // SAFETY: as in gpu_index_fwd_f32.
        emu::launch(few(cuda::index_select_count(outer, inner, idx.len())), || unsafe {
            index_select_fwd_u8(ps.get(), pi.get(), pd.get(), a[0], a[1], a[2], a[3], pe.get())
        })
        .unwrap();
        assert_eq!((got, err[0]), (want, cuda::INDEX_OK), "u8 {outer} {n} {inner} {idx:?}");
    }
}

#[test]
fn index_select_reports_the_first_out_of_range_position_like_the_cpu() {
    let mut rng = TestRng::new(79);
    // (outer, n, inner, idx): bad values n, -n-1, huge; several bad positions; empty outputs.
    for (outer, n, inner, idx) in [
        (2usize, 5usize, 3usize, vec![0i64, 1, 2, 5, 4, -6]),
        (1, 5, 2, vec![0, -6, 1, 7]),
        (1, 3, 1, vec![i64::MAX, i64::MIN, 0]),
        (0, 4, 2, vec![1, 4]), // no output elements: the index is still checked
        (2, 4, 0, vec![-5]),   // inner 0
        (1, 0, 3, vec![0]),    // empty source axis: every index is out of range
    ] {
        let m = idx.len();
        let src = rng.vec_f32(outer * n * inner);
        let mut cpu_dst = vec![0f32; outer * m * inner];
        let want = index_select(outer, n, inner, &src, &idx, &mut cpu_dst);
        assert!(want.is_err());
        let (_, got) = gpu_index_fwd_f32(outer, n, inner, &src, &idx);
        assert_eq!(got, want, "fwd {outer} {n} {inner} {idx:?}");

        let dy = rng.vec_f64(outer * m * inner);
        let mut cpu_dsrc = vec![0f64; outer * n * inner];
        let want = index_select_backward(outer, n, inner, &dy, &idx, &mut cpu_dsrc);
        let (_, got) = gpu_index_bwd_f64(outer, n, inner, &dy, &idx);
        assert_eq!(got, want, "bwd {outer} {n} {inner} {idx:?}");
    }
}

#[test]
fn index_select_backward_scatter_adds_like_the_cpu() {
    let mut rng = TestRng::new(80);
    for (outer, n, inner, idx, dups) in [
        (2usize, 6usize, 3usize, vec![5i64, 0, -2, 1], false),
        (3, 4, 5, vec![1, 1, -3, 0, 3, 1, 1, 1, 2, -1], true),
        (1, 3, 1, vec![], false),
        (2, 3, 33, vec![2, 2, 2, 2, 2, 2, 2, 2, 0], true),
    ] {
        let m = idx.len();
        let dy = rng.vec_f64(outer * m * inner);
        let mut want = vec![0f64; outer * n * inner];
        index_select_backward(outer, n, inner, &dy, &idx, &mut want).unwrap();
        let (got, res) = gpu_index_bwd_f64(outer, n, inner, &dy, &idx);
        assert_eq!(res, Ok(()));
        if dups {
            assert_close(&format!("bwd f64 {idx:?}"), &got, &want, Tolerance::new(1e-14, 1e-15));
        } else {
            assert_eq!(got, want, "bwd f64 {idx:?}");
        }

        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; outer * n * inner];
        index_select_backward(outer, n, inner, &dy32, &idx, &mut want).unwrap();
        let mut got = vec![0f32; want.len()];
        let mut err = [cuda::INDEX_OK];
        let (pd, pi, px, pe) = (CPtr::of(&dy32), CPtr::of(&idx), Ptr::of(&mut got), Ptr::of(&mut err));
        let a = [outer, n, inner, m].map(|v| v as i64);
        // SAFETY: dy holds outer·m·inner, dsrc outer·n·inner (zeroed) elements; err one word.
        emu::launch(few(cuda::index_select_count(outer, inner, m)), || unsafe {
            index_select_bwd_f32(pd.get(), pi.get(), px.get(), a[0], a[1], a[2], a[3], pe.get())
        })
        .unwrap();
        assert_eq!(err[0], cuda::INDEX_OK);
        if dups {
            assert_close(&format!("bwd f32 {idx:?}"), &got, &want, Tolerance::new(1e-6, 1e-7));
        } else {
            assert_eq!(bits32(&got), bits32(&want), "bwd f32 {idx:?}");
        }
    }
}

/// The four launches of the deterministic backward; `gather` runs step 4 for the caller's dtype.
/// Returns the CPU-style result read from the error word after step 1.
fn det_backward(
    outer: usize,
    n: usize,
    inner: usize,
    idx: &[i64],
    dims_of: fn(usize) -> LaunchDims,
    gather: impl Fn(*const i32, *const i32, [i64; 4], LaunchDims),
) -> Result<(), usize> {
    let m = idx.len();
    let mut starts = vec![-7i32; n + 1];
    let mut rows = vec![-7i32; m.max(1)];
    let mut err = [cuda::INDEX_OK];
    let (pi, ps, pr, pe) = (CPtr::of(idx), Ptr::of(&mut starts), Ptr::of(&mut rows), Ptr::of(&mut err));
    let (ni, mi) = (n as i64, m as i64);
    // SAFETY: idx holds m, starts n + 1, rows max(m, 1) elements; err one word.
    unsafe {
        emu::launch(dims_of(n.max(m)), || index_select_bwd_count(pi.get(), ni, mi, ps.get(), pe.get()))
            .unwrap();
        cuda::index_result(err[0])?;
        emu::launch(cuda::scan_dims(), || index_select_bwd_scan(ps.get(), ni)).unwrap();
        emu::launch(dims_of(n), || index_select_bwd_fill(pi.get(), ni, mi, ps.cst(), pr.get())).unwrap();
    }
    assert_eq!(starts[n] as usize, m, "every index listed once");
    gather(ps.cst(), pr.cst(), [outer, n, inner, m].map(|v| v as i64), dims_of(outer * n * inner));
    Ok(())
}

#[test]
fn deterministic_index_select_backward_is_bit_identical_to_the_cpu() {
    let mut rng = TestRng::new(82);
    for (outer, n, inner, idx) in [
        (3usize, 4usize, 5usize, vec![1i64, 1, -3, 0, 3, 1, 1, 1, 2, -1]),
        (2, 3, 33, vec![2, 2, 2, 2, 2, 2, 2, 2, 0]),
        (1, 700, 3, (0..300).map(|j| (j * 37 % 700) as i64 - 350).collect()), // more rows than the scan block
        (2, 6, 3, vec![]),
        (0, 4, 2, vec![1, 1]),
        (1, 5, 1, vec![4]),
    ] {
        let m = idx.len();
        let dy = rng.vec_f64(outer * m * inner);
        let mut want = vec![0f64; outer * n * inner];
        index_select_backward(outer, n, inner, &dy, &idx, &mut want).unwrap();
        let mut got = vec![f64::NAN; want.len()];
        let (pd, px) = (CPtr::of(&dy), Ptr::of(&mut got));
        let res = det_backward(outer, n, inner, &idx, few, |s, r, a, d| {
            let (s, r) = (CPtr(s), CPtr(r));
            // SAFETY: dy holds outer·m·inner, dsrc outer·n·inner elements; s/r the scratch above.
            emu::launch(d, || unsafe {
                index_select_bwd_gather_f64(pd.get(), s.get(), r.get(), px.get(), a[0], a[1], a[2], a[3])
            })
            .unwrap();
        });
        assert_eq!(res, Ok(()));
        assert_eq!(got, want, "f64 {outer} {n} {inner} {idx:?}");

        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut want = vec![0f32; outer * n * inner];
        index_select_backward(outer, n, inner, &dy32, &idx, &mut want).unwrap();
        let mut got = vec![f32::NAN; want.len()];
        let (pd, px) = (CPtr::of(&dy32), Ptr::of(&mut got));
        det_backward(outer, n, inner, &idx, cuda::launch_dims, |s, r, a, d| {
            let (s, r) = (CPtr(s), CPtr(r));
            // SAFETY: as above.
            emu::launch(d, || unsafe {
                index_select_bwd_gather_f32(pd.get(), s.get(), r.get(), px.get(), a[0], a[1], a[2], a[3])
            })
            .unwrap();
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "f32 {outer} {n} {inner} {idx:?}");

        // bf16: the CPU widens dy to f32, runs the f32 kernel, rounds once.
        let dyb: Vec<u16> = dy32.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let wide: Vec<f32> = dyb.iter().map(|&b| bf16::from_bits(b).to_f32()).collect();
        let mut w32 = vec![0f32; outer * n * inner];
        index_select_backward(outer, n, inner, &wide, &idx, &mut w32).unwrap();
        let want: Vec<u16> = w32.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let mut got = vec![0xFFFFu16; want.len()];
        let (pd, px) = (CPtr::of(&dyb), Ptr::of(&mut got));
        det_backward(outer, n, inner, &idx, few, |s, r, a, d| {
            let (s, r) = (CPtr(s), CPtr(r));
            // SAFETY: as above.
            emu::launch(d, || unsafe {
                index_select_bwd_gather_bf16(pd.get(), s.get(), r.get(), px.get(), a[0], a[1], a[2], a[3])
            })
            .unwrap();
        })
        .unwrap();
        assert_eq!(got, want, "bf16 {outer} {n} {inner} {idx:?}");
    }
    // A bad index is reported by step 1 with the CPU's position.
    let idx = [0i64, 3, -9, 9];
    let mut cpu = vec![0f64; 2 * 4 * 2];
    let want = index_select_backward(2, 4, 2, &[0.0; 2 * 4 * 2], &idx, &mut cpu);
    let got = det_backward(2, 4, 2, &idx, few, |_, _, _, _| unreachable!("no gather after an error"));
    assert_eq!((got, want), (Err(2), Err(2)));
}

// ---------------------------------------------------------------------------------------------
// where

#[test]
fn where_broadcasts_strided_arguments_like_the_cpu() {
    let mut rng = TestRng::new(81);
    let out = [4usize, 6, 5];
    for (sc, sa, sb) in [
        ([4usize, 1, 5], [1usize, 6, 5], [4usize, 6, 1]),
        ([4, 6, 5], [4, 6, 5], [1, 1, 1]),
        ([1, 1, 1], [4, 6, 5], [4, 1, 5]),
    ] {
        let (lc0, la0, lb0) = (view(&mut rng, &sc), view(&mut rng, &sa), view(&mut rng, &sb));
        let (lc, la, lb) = (
            broadcast_layout(&lc0, &out).unwrap(),
            broadcast_layout(&la0, &out).unwrap(),
            broadcast_layout(&lb0, &out).unwrap(),
        );
        let (ac, aa, ab) = (arg(&lc), arg(&la), arg(&lb));
        let n = lc.numel();
        let cond: Vec<u8> = (0..lc0.required_len()).map(|_| (rng.next_u64() % 3) as u8).collect();
        let a = rng.vec_f32(la0.required_len());
        let b = rng.vec_f32(lb0.required_len());
        let mut want = vec![0f32; n];
        where_select(&cond, &lc, &a, &la, &b, &lb, &mut want);
        let mut got = vec![0f32; n];
        let (pc, pa, pb, py) = (CPtr::of(&cond), CPtr::of(&a), CPtr::of(&b), Ptr::of(&mut got));
        // SAFETY: each input covers its (broadcast) layout, y holds n elements.
        emu::launch(few(n), || unsafe {
            where_f32(pc.get(), ac, pa.get(), aa, pb.get(), ab, py.get(), n as i64)
        })
        .unwrap();
        assert_eq!(bits32(&got), bits32(&want), "where f32 {sc:?} {sa:?} {sb:?}");

        let a64: Vec<f64> = a.iter().map(|&v| v as f64 * 3.0).collect();
        let b64: Vec<f64> = b.iter().map(|&v| v as f64 * 3.0).collect();
        let mut want = vec![0f64; n];
        where_select(&cond, &lc, &a64, &la, &b64, &lb, &mut want);
        let mut got = vec![0f64; n];
        let (pa, pb, py) = (CPtr::of(&a64), CPtr::of(&b64), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(n), || unsafe {
            where_f64(pc.get(), ac, pa.get(), aa, pb.get(), ab, py.get(), n as i64)
        })
        .unwrap();
        assert_eq!(got, want, "where f64");

        let ah: Vec<u16> = a.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let bh: Vec<u16> = b.iter().map(|&v| bf16::from_f32(v).to_bits()).collect();
        let mut want = vec![0u16; n];
        where_select(&cond, &lc, &ah, &la, &bh, &lb, &mut want);
        let mut got = vec![0u16; n];
        let (pa, pb, py) = (CPtr::of(&ah), CPtr::of(&bh), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(n), || unsafe {
            where_bf16(pc.get(), ac, pa.get(), aa, pb.get(), ab, py.get(), n as i64)
        })
        .unwrap();
        assert_eq!(got, want, "where bf16");

        let ai: Vec<i64> = (0..a.len()).map(|_| rng.next_u64() as i64).collect();
        let bi: Vec<i64> = (0..b.len()).map(|_| rng.next_u64() as i64).collect();
        let mut want = vec![0i64; n];
        where_select(&cond, &lc, &ai, &la, &bi, &lb, &mut want);
        let mut got = vec![0i64; n];
        let (pa, pb, py) = (CPtr::of(&ai), CPtr::of(&bi), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(n), || unsafe {
            where_i64(pc.get(), ac, pa.get(), aa, pb.get(), ab, py.get(), n as i64)
        })
        .unwrap();
        assert_eq!(got, want, "where i64");

        let au: Vec<u8> = (0..a.len()).map(|_| rng.next_u64() as u8).collect();
        let bu: Vec<u8> = (0..b.len()).map(|_| rng.next_u64() as u8).collect();
        let mut want = vec![0u8; n];
        where_select(&cond, &lc, &au, &la, &bu, &lb, &mut want);
        let mut got = vec![0u8; n];
        let (pa, pb, py) = (CPtr::of(&au), CPtr::of(&bu), Ptr::of(&mut got));
        // SAFETY: as above.
        emu::launch(few(n), || unsafe {
            where_u8(pc.get(), ac, pa.get(), aa, pb.get(), ab, py.get(), n as i64)
        })
        .unwrap();
        assert_eq!(got, want, "where u8");
    }
    // Empty output.
    let l = StridedLayout::contiguous(&[0, 3]);
    let a = arg(&l);
    let mut y: Vec<f32> = vec![];
    let py = Ptr::of(&mut y);
    let e: Vec<f32> = vec![];
    let c: Vec<u8> = vec![];
    let (pc, pe) = (CPtr::of(&c), CPtr::of(&e));
    // SAFETY: n = 0: nothing is read or written.
    emu::launch(few(0), || unsafe { where_f32(pc.get(), a, pe.get(), a, pe.get(), a, py.get(), 0) }).unwrap();
}
