//! Norm and reduction benches (criterion, Throughput::Bytes = bytes the kernel must move at minimum:
//! every input read once, every output written once).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::StridedLayout;
use kernels::elementwise::{BinaryOp, UnaryOp, binary, unary};
use kernels::norm::{
    GnSiluGrads, group_norm_backward, group_norm_forward, group_norm_silu_backward, group_norm_silu_forward,
    layer_norm_forward,
};
use kernels::reduce::{ReduceOp, reduce};
use kernels::testing::TestRng;
use std::hint::black_box;

const F: u64 = 4; // bytes per f32

fn norms(c: &mut Criterion) {
    let (n, ch, s, groups) = (8, 128, 32 * 32, 32);
    let len = n * ch * s;
    let mut rng = TestRng::new(1);
    let x = rng.vec_f32(len);
    let dy = rng.vec_f32(len);
    let gamma = vec![1.1f32; ch];
    let beta = vec![0.1f32; ch];
    let (mut y, mut dx) = (vec![0.0f32; len], vec![0.0f32; len]);
    let (mut mean, mut rstd) = (vec![0.0f32; n * groups], vec![0.0f32; n * groups]);
    let (mut dg, mut db) = (vec![0.0f32; ch], vec![0.0f32; ch]);

    let mut g = c.benchmark_group("norm");
    g.throughput(Throughput::Bytes(2 * len as u64 * F)); // read x, write y
    g.bench_function("group_norm_fwd_8x128x32x32_g32", |b| {
        b.iter(|| {
            group_norm_forward(
                n,
                ch,
                s,
                groups,
                1e-5,
                &x,
                Some(&gamma),
                Some(&beta),
                &mut y,
                &mut mean,
                &mut rstd,
            )
        })
    });
    // forward (read x, write y) + backward (read x, dy; write dx)
    g.throughput(Throughput::Bytes(5 * len as u64 * F));
    g.bench_function("group_norm_fwd_bwd_8x128x32x32_g32", |b| {
        b.iter(|| {
            group_norm_forward(
                n,
                ch,
                s,
                groups,
                1e-5,
                &x,
                Some(&gamma),
                Some(&beta),
                &mut y,
                &mut mean,
                &mut rstd,
            );
            group_norm_backward(
                n,
                ch,
                s,
                groups,
                &x,
                Some(&gamma),
                &mean,
                &rstd,
                &dy,
                &mut dx,
                Some(&mut dg),
                Some(&mut db),
            );
        })
    });

    // ResNet epilogue SiLU(GN(x)·(1 + a) + b), a/b per (sample, channel): fused vs composed
    // (GN, then broadcast mul, add, SiLU: four passes over the activation).
    let scale: Vec<f32> = rng.vec_f32(n * ch).iter().map(|v| v * 0.5).collect();
    let shift = rng.vec_f32(n * ch);
    let one_plus: Vec<f32> = scale.iter().map(|v| 1.0 + v).collect();
    let full = StridedLayout::contiguous(&[n, ch, s]);
    let per_nc = StridedLayout::new(vec![n, ch, s], vec![ch, 1, 0], 0);
    let (mut t1, mut t2) = (vec![0.0f32; len], vec![0.0f32; len]);
    g.throughput(Throughput::Bytes(2 * len as u64 * F)); // read x, write y
    g.bench_function("gn_silu_mod_fused_fwd_8x128x32x32_g32", |b| {
        b.iter(|| {
            group_norm_silu_forward(
                n,
                ch,
                s,
                groups,
                1e-5,
                &x,
                Some(&gamma),
                Some(&beta),
                Some(&scale),
                Some(&shift),
                &mut y,
                &mut mean,
                &mut rstd,
            )
        })
    });
    g.bench_function("gn_silu_mod_composed_fwd_8x128x32x32_g32", |b| {
        b.iter(|| {
            group_norm_forward(
                n,
                ch,
                s,
                groups,
                1e-5,
                &x,
                Some(&gamma),
                Some(&beta),
                &mut t1,
                &mut mean,
                &mut rstd,
            );
            binary(BinaryOp::Mul, &t1, &full, &one_plus, &per_nc, &mut t2);
            binary(BinaryOp::Add, &t2, &full, &shift, &per_nc, &mut t1);
            unary(UnaryOp::Silu, &t1, &full, &mut y);
        })
    });
    // fused forward + backward (dx, dgamma, dbeta, dscale, dshift); compare group_norm_fwd_bwd
    let (mut da, mut dsh) = (vec![0.0f32; n * ch], vec![0.0f32; n * ch]);
    g.throughput(Throughput::Bytes(5 * len as u64 * F));
    g.bench_function("gn_silu_mod_fused_fwd_bwd_8x128x32x32_g32", |b| {
        b.iter(|| {
            let (gm, bt, sc, sh) = (Some(&gamma[..]), Some(&beta[..]), Some(&scale[..]), Some(&shift[..]));
            group_norm_silu_forward(n, ch, s, groups, 1e-5, &x, gm, bt, sc, sh, &mut y, &mut mean, &mut rstd);
            let grads = GnSiluGrads {
                dgamma: Some(&mut dg),
                dbeta: Some(&mut db),
                dscale: Some(&mut da),
                dshift: Some(&mut dsh),
            };
            group_norm_silu_backward(n, ch, s, groups, &x, gm, bt, sc, sh, &mean, &rstd, &dy, &mut dx, grads);
        })
    });

    let (rows, cols) = (4096, 512);
    let x = rng.vec_f32(rows * cols);
    let gamma = vec![1.1f32; cols];
    let beta = vec![0.1f32; cols];
    let mut y = vec![0.0f32; rows * cols];
    let (mut mean, mut rstd) = (vec![0.0f32; rows], vec![0.0f32; rows]);
    g.throughput(Throughput::Bytes(2 * (rows * cols) as u64 * F));
    g.bench_function("layer_norm_fwd_4096x512", |b| {
        b.iter(|| {
            layer_norm_forward(rows, cols, 1e-5, &x, Some(&gamma), Some(&beta), &mut y, &mut mean, &mut rstd)
        })
    });

    let (rows, cols) = (4096, 1024);
    let x = rng.vec_f32(rows * cols);
    let l = StridedLayout::contiguous(&[rows, cols]);
    let mut out_r = vec![0.0f32; rows];
    let mut out_c = vec![0.0f32; cols];
    g.throughput(Throughput::Bytes((rows * cols) as u64 * F));
    g.bench_function("sum_last_axis_4096x1024", |b| {
        b.iter(|| reduce(ReduceOp::Sum, black_box(&x), &l, &[1], &mut out_r))
    });
    g.bench_function("sum_axis0_4096x1024", |b| {
        b.iter(|| reduce(ReduceOp::Sum, black_box(&x), &l, &[0], &mut out_c))
    });
    // reference point: a plain copy of the same bytes (read + write counted)
    let mut dst = vec![0.0f32; rows * cols];
    g.throughput(Throughput::Bytes(2 * (rows * cols) as u64 * F));
    g.bench_function("copy_4096x1024", |b| b.iter(|| dst.copy_from_slice(black_box(&x))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = norms
}
criterion_main!(benches);
