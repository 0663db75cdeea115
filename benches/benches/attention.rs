//! Attention benches: flash vs composed (GEMM + softmax), forward and forward+backward.
//!
//! Shape: batch 8, 4 heads, lq = lk = 256, d = dv = 64, f32, scale 1/√d, no mask.
//! Throughput is reported as "elements" = floating-point operations:
//! * forward: `4·B·H·Lq·Lk·d` (2 for Q·Kᵀ, 2 for P·V with dv = d; softmax not counted),
//! * forward+backward: `3.5 × forward` (backward counted as `2.5 × forward`: the five tile products
//!   S, dP, dV, dQ, dK of 2·B·H·Lq·Lk·d each).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::attention::{
    AttentionShape, attention_backward, attention_composed_backward, attention_composed_forward,
    attention_forward,
};
use kernels::testing::TestRng;
use std::hint::black_box;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let sh = AttentionShape { batch: 8, heads: 4, lq: 256, lk: 256, d: 64, dv: 64 };
    let (lq_, lk_, lv_, lo, ll) = sh.lens();
    let mut r = TestRng::new(1);
    let (q, k, v, g) = (r.vec_f32(lq_), r.vec_f32(lk_), r.vec_f32(lv_), r.vec_f32(lo));
    let scale = 1.0 / (sh.d as f32).sqrt();
    let fwd_flops = 4 * sh.batch * sh.heads * sh.lq * sh.lk * sh.d;
    let fb_flops = fwd_flops * 7 / 2;

    let mut grp = c.benchmark_group("attention_b8_h4_l256_d64_f32");
    grp.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    type Fwd = fn(&AttentionShape, &[f32], &[f32], &[f32], Option<&[u8]>, f32, &mut [f32], &mut [f32]);
    type Bwd = fn(
        &AttentionShape,
        &[f32],
        &[f32],
        &[f32],
        Option<&[u8]>,
        f32,
        &[f32],
        &[f32],
        &[f32],
        &mut [f32],
        &mut [f32],
        &mut [f32],
    );
    let impls: [(&str, Fwd, Bwd); 2] = [
        ("flash", attention_forward::<f32>, attention_backward::<f32>),
        ("composed", attention_composed_forward::<f32>, attention_composed_backward::<f32>),
    ];
    for (name, fwd, bwd) in impls {
        let (mut out, mut lse) = (vec![0.0f32; lo], vec![0.0f32; ll]);
        grp.throughput(Throughput::Elements(fwd_flops as u64));
        grp.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| fwd(&sh, black_box(&q), &k, &v, None, scale, &mut out, &mut lse))
        });
        let (mut dq, mut dk, mut dv) = (vec![0.0f32; lq_], vec![0.0f32; lk_], vec![0.0f32; lv_]);
        grp.throughput(Throughput::Elements(fb_flops as u64));
        grp.bench_function(format!("{name}/forward+backward"), |b| {
            b.iter(|| {
                fwd(&sh, black_box(&q), &k, &v, None, scale, &mut out, &mut lse);
                bwd(&sh, &q, &k, &v, None, scale, &out, &lse, &g, &mut dq, &mut dk, &mut dv);
            })
        });
    }
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
