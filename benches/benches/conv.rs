//! conv2d criterion benches (throughput = flops, so criterion's "elem/s" reads as FLOP/s).
//!
//! * `conv3x3_n8_c128_32x32`: 3×3, N=8, C 128→128, 32×32, pad 1, f32: forward, backward-input,
//!   backward-weight (each `2·N·Cout·OH·OW·Cin·9` flops).
//! * `conv_algo`: forward im2col+GEMM vs direct on small-channel convs (the measurement behind
//!   `Conv2dAlgo::Auto`, documented in `kernels::conv`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::conv::{
    Conv2dAlgo, Conv2dParams, conv2d_backward_input, conv2d_backward_weight, conv2d_forward,
    conv2d_forward_with,
};
use kernels::testing::TestRng;
use std::hint::black_box;
use std::time::Duration;

fn p3x3(n: usize, c_in: usize, c_out: usize, hw: usize, groups: usize) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h: hw,
        w: hw,
        c_out,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups,
    }
}

fn conv3x3(c: &mut Criterion) {
    let p = p3x3(8, 128, 128, 32, 1);
    let mut rng = TestRng::new(1);
    let x = rng.vec_f32(p.x_len());
    let w = rng.vec_f32(p.w_len());
    let b = rng.vec_f32(p.c_out);
    let dy = rng.vec_f32(p.y_len());
    let mut y = vec![0.0f32; p.y_len()];
    let mut dx = vec![0.0f32; p.x_len()];
    let mut dw = vec![0.0f32; p.w_len()];
    let mut g = c.benchmark_group("conv3x3_n8_c128_32x32");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(p.flops() as u64));
    g.bench_function("forward", |bch| bch.iter(|| conv2d_forward(&p, black_box(&x), &w, Some(&b), &mut y)));
    g.bench_function("backward_input", |bch| {
        bch.iter(|| conv2d_backward_input(&p, black_box(&w), &dy, &mut dx))
    });
    g.bench_function("backward_weight", |bch| {
        bch.iter(|| conv2d_backward_weight(&p, black_box(&x), &dy, &mut dw))
    });
    g.finish();
}

fn conv_algo(c: &mut Criterion) {
    let cases = [
        ("depthwise_c64", p3x3(8, 64, 64, 32, 64)),
        ("groups16_c64", p3x3(8, 64, 64, 32, 16)),
        ("c3_to_c32", p3x3(8, 3, 32, 32, 1)),
        ("c32_to_c32", p3x3(8, 32, 32, 32, 1)),
    ];
    let mut g = c.benchmark_group("conv_algo");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (name, p) in cases {
        let mut rng = TestRng::new(2);
        let x = rng.vec_f32(p.x_len());
        let w = rng.vec_f32(p.w_len());
        let mut y = vec![0.0f32; p.y_len()];
        g.throughput(Throughput::Elements(p.flops() as u64));
        for (an, algo) in [("im2col_gemm", Conv2dAlgo::Im2colGemm), ("direct", Conv2dAlgo::Direct)] {
            g.bench_function(format!("{name}/{an}"), |bch| {
                bch.iter(|| conv2d_forward_with(algo, &p, black_box(&x), &w, None, &mut y))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, conv3x3, conv_algo);
criterion_main!(benches);
