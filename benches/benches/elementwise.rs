//! Elementwise, layout and RNG throughput (criterion, bytes moved per call: inputs read + output
//! written). Memory-bound ops should approach the machine's stream bandwidth.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::StridedLayout;
use kernels::elementwise::{BinaryOp, UnaryOp, binary, broadcast_layout, unary};
use kernels::layout::copy_strided;
use kernels::rng::fill_normal;
use std::hint::black_box;

const N: usize = 16 << 20;
const F32: u64 = 4;

fn filled(n: usize, seed: u64) -> Vec<f32> {
    let mut v = vec![0f32; n];
    kernels::rng::fill_uniform(seed, 0, -3.0, 3.0, &mut v);
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(3));

    let a = filled(N, 1);
    let b = filled(N, 2);
    let mut y = vec![0f32; N];
    let l = StridedLayout::contiguous(&[N]);

    g.throughput(Throughput::Bytes(3 * N as u64 * F32));
    g.bench_function("add_contiguous_16M_f32", |bch| {
        bch.iter(|| binary(BinaryOp::Add, black_box(&a), &l, &b, &l, &mut y))
    });

    let (r, cols) = (4096usize, 1024usize);
    let la = StridedLayout::contiguous(&[r, cols]);
    let lb = broadcast_layout(&StridedLayout::contiguous(&[cols]), &[r, cols]).unwrap();
    let mut y2 = vec![0f32; r * cols];
    g.throughput(Throughput::Bytes((2 * r * cols + cols) as u64 * F32));
    g.bench_function("add_broadcast_4096x1024_plus_1024_f32", |bch| {
        bch.iter(|| binary(BinaryOp::Add, black_box(&a[..r * cols]), &la, &b[..cols], &lb, &mut y2))
    });

    g.throughput(Throughput::Bytes(2 * N as u64 * F32));
    g.bench_function("silu_16M_f32", |bch| bch.iter(|| unary(UnaryOp::Silu, black_box(&a), &l, &mut y)));
    g.bench_function("gelu_erf_16M_f32", |bch| bch.iter(|| unary(UnaryOp::Gelu, black_box(&a), &l, &mut y)));

    let t = 4096usize;
    let src_t = StridedLayout::new(vec![t, t], vec![1, t], 0);
    let dst_t = StridedLayout::contiguous(&[t, t]);
    g.throughput(Throughput::Bytes(2 * (t * t) as u64 * F32));
    g.bench_function("copy_transposed_4096x4096_f32", |bch| {
        bch.iter(|| copy_strided(black_box(&a), &src_t, &mut y, &dst_t))
    });

    g.throughput(Throughput::Bytes(N as u64 * F32));
    g.bench_function("fill_normal_16M_f32", |bch| {
        bch.iter(|| fill_normal(black_box(42), 0, 0.0f32, 1.0, &mut y))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
