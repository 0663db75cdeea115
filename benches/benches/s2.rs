//! The S2 reference model (spec §3.7, 4 505 862 parameters) at batch 8: forward, forward+backward,
//! and a full train step (forward, ε-space MSE at both resolutions, backward, global-norm clip,
//! AdamW update). Criterion reports time per iteration; images/s = 8 / time.

use autograd::{Reduction, Var, no_grad};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mdm::{Conditioning, Mdm, Micros, ModelConfig};
use nn::Module;
use nn::optim::{AdamW, AdamWConfig, Optimizer, clip_grad_norm};
use std::hint::black_box;
use tensor::{DType, Tensor};

const B: usize = 8;
const L: usize = 8;

struct Inputs {
    z: Vec<Var>,
    t: Tensor,
    text: Var,
    mask: Tensor,
    targets: Vec<Var>,
}

fn inputs() -> Inputs {
    let r = |shape: &[usize], seed| Tensor::randn(shape, 0.0, 1.0, seed, 0, DType::F32).unwrap();
    Inputs {
        z: vec![Var::constant(r(&[B, 3, 32, 32], 1)), Var::constant(r(&[B, 3, 16, 16], 2))],
        t: Tensor::from_vec((0..B).map(|i| (i * 117 % 1000) as f32).collect::<Vec<_>>(), &[B]).unwrap(),
        text: Var::constant(r(&[B, L, 48], 3)),
        mask: Tensor::ones(&[B, L], DType::U8),
        targets: vec![Var::constant(r(&[B, 3, 32, 32], 4)), Var::constant(r(&[B, 3, 16, 16], 5))],
    }
}

fn forward(m: &Mdm, x: &Inputs) -> Vec<Var> {
    let cond = Conditioning::Text { tokens: &x.text, mask: Some(&x.mask) };
    m.forward(&x.z, &x.t, Some(cond), &Micros::new()).unwrap()
}

fn loss(m: &Mdm, x: &Inputs) -> Var {
    let preds = forward(m, x);
    let l0 = preds[0].mse_loss(&x.targets[0], Reduction::Mean).unwrap();
    let l1 = preds[1].mse_loss(&x.targets[1], Reduction::Mean).unwrap();
    l0.add(&l1).unwrap()
}

fn s2(c: &mut Criterion) {
    let cfg = ModelConfig::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/s2.toml")).unwrap();
    let mut model = Mdm::new(&cfg, 0).unwrap();
    let x = inputs();
    let mut g = c.benchmark_group("s2_batch8");
    g.sample_size(10);
    g.throughput(Throughput::Elements(B as u64));
    g.bench_function("forward_no_grad", |b| b.iter(|| black_box(no_grad(|| forward(&model, &x)))));
    g.bench_function("forward_backward", |b| {
        b.iter(|| {
            loss(&model, &x).backward().unwrap();
            model.zero_grad();
        })
    });
    let mut opt = AdamW::new(AdamWConfig { lr: 1e-4, weight_decay: 0.0, ..Default::default() }).unwrap();
    g.bench_function("train_step", |b| {
        b.iter(|| {
            loss(&model, &x).backward().unwrap();
            clip_grad_norm(&model, 2.0).unwrap();
            opt.step(&mut model).unwrap();
            model.zero_grad();
        })
    });
    g.finish();
}

criterion_group!(benches, s2);
criterion_main!(benches);
