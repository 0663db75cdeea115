//! Autograd costs: tape overhead per op on tiny tensors (ns/op, forward recording vs the bare tensor
//! op), and backward/forward time ratios for a small MLP and a conv block.

use autograd::{Reduction, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tensor::{Conv2dOptions, DType, Tensor};

fn tape_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape_overhead");
    let x = Tensor::randn(&[4], 0.0, 1.0, 1, 0, DType::F32).unwrap();
    // 16 chained tiny ops, with and without recording
    g.bench_function("tensor_16_ops", |b| {
        b.iter(|| {
            let mut t = x.clone();
            for _ in 0..16 {
                t = t.mul_scalar(1.0001).unwrap();
            }
            black_box(t)
        })
    });
    g.bench_function("var_16_ops_recorded", |b| {
        let v = Var::leaf(x.clone());
        b.iter(|| {
            let mut t = v.clone();
            for _ in 0..16 {
                t = t.mul_scalar(1.0001).unwrap();
            }
            black_box(t)
        })
    });
    g.bench_function("var_16_ops_recorded_plus_backward", |b| {
        let v = Var::leaf(x.clone());
        b.iter(|| {
            let mut t = v.clone();
            for _ in 0..16 {
                t = t.mul_scalar(1.0001).unwrap();
            }
            t.sum_all().unwrap().backward().unwrap();
            v.zero_grad();
        })
    });
    g.finish();
}

fn mlp(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_64x256x256x10");
    let x = Var::constant(Tensor::randn(&[64, 256], 0.0, 1.0, 2, 0, DType::F32).unwrap());
    let w1 = Var::leaf(Tensor::randn(&[256, 256], 0.0, 0.06, 3, 0, DType::F32).unwrap());
    let w2 = Var::leaf(Tensor::randn(&[256, 10], 0.0, 0.06, 4, 0, DType::F32).unwrap());
    let t = Var::constant(Tensor::zeros(&[64, 10], DType::F32));
    let fwd =
        || x.matmul(&w1).unwrap().gelu().unwrap().matmul(&w2).unwrap().mse_loss(&t, Reduction::Mean).unwrap();
    g.bench_function("forward", |b| b.iter(|| black_box(fwd())));
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            fwd().backward().unwrap();
            w1.zero_grad();
            w2.zero_grad();
        })
    });
    g.finish();
}

fn conv_block(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_block_n4_c64_16x16");
    g.sample_size(20);
    let x = Var::constant(Tensor::randn(&[4, 64, 16, 16], 0.0, 1.0, 5, 0, DType::F32).unwrap());
    let w = Var::leaf(Tensor::randn(&[64, 64, 3, 3], 0.0, 0.05, 6, 0, DType::F32).unwrap());
    let gamma = Var::leaf(Tensor::ones(&[64], DType::F32));
    let beta = Var::leaf(Tensor::zeros(&[64], DType::F32));
    let o = Conv2dOptions { padding: [1, 1], ..Default::default() };
    let fwd = || {
        let h = x.group_norm(32, Some(&gamma), Some(&beta), 1e-5).unwrap().silu().unwrap();
        h.conv2d(&w, None, &o).unwrap().add(&x).unwrap().mean_all().unwrap()
    };
    g.bench_function("forward", |b| b.iter(|| black_box(fwd())));
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            fwd().backward().unwrap();
            w.zero_grad();
            gamma.zero_grad();
            beta.zero_grad();
        })
    });
    g.finish();
}

criterion_group!(benches, tape_overhead, mlp, conv_block);
criterion_main!(benches);
