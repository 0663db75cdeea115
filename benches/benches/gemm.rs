//! GEMM throughput (criterion). Throughput is reported in "elements" = floating-point operations
//! (2·m·n·k), so criterion's elem/s column reads as FLOP/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::gemm::{MatMut, MatRef, gemm, gemm_batched};
use std::hint::black_box;

/// `C = A·B` (f32, row-major C and B); `ta`: A stored transposed (k×m) and read through strides.
fn bench_gemm(c: &mut Criterion, m: usize, n: usize, k: usize, ta: bool) {
    let a = benches::random_f32(m * k, 1);
    let b = benches::random_f32(k * n, 2);
    let mut out = vec![0f32; m * n];
    let (rs, cs) = if ta { (1, m) } else { (k, 1) };
    let mut g = c.benchmark_group("gemm_f32");
    g.throughput(Throughput::Elements(2 * (m * n * k) as u64));
    g.sample_size(20);
    let id = format!("{m}x{n}x{k}{}", if ta { "_At" } else { "" });
    g.bench_function(id, |bch| {
        bch.iter(|| {
            gemm(
                m,
                n,
                k,
                1.0,
                MatRef { data: black_box(&a), offset: 0, rs, cs },
                MatRef { data: &b, offset: 0, rs: n, cs: 1 },
                0.0,
                MatMut { data: &mut out, offset: 0, rs: n, cs: 1 },
            )
        })
    });
    g.finish();
}

fn gemm_benches(c: &mut Criterion) {
    eprintln!("gemm micro-kernel: {}", kernels::gemm::f32_kernel_name());
    bench_gemm(c, 1024, 1024, 1024, false);
    bench_gemm(c, 4096, 256, 256, false);
    bench_gemm(c, 1024, 1024, 1024, true);
    bench_gemm(c, 256, 256, 256, false);

    // Batched small matrices (attention-like: 64 heads of 128×128×64).
    let (batch, m, n, k) = (64, 128, 128, 64);
    let a = benches::random_f32(batch * m * k, 3);
    let b = benches::random_f32(batch * k * n, 4);
    let mut out = vec![0f32; batch * m * n];
    let mut g = c.benchmark_group("gemm_batched_f32");
    g.throughput(Throughput::Elements(2 * (batch * m * n * k) as u64));
    g.sample_size(20);
    g.bench_function(format!("{batch}x{m}x{n}x{k}"), |bch| {
        bch.iter(|| {
            gemm_batched(
                batch,
                m,
                n,
                k,
                1.0,
                MatRef { data: black_box(&a), offset: 0, rs: k, cs: 1 },
                m * k,
                MatRef { data: &b, offset: 0, rs: n, cs: 1 },
                k * n,
                0.0,
                MatMut { data: &mut out, offset: 0, rs: n, cs: 1 },
                m * n,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, gemm_benches);
criterion_main!(benches);
