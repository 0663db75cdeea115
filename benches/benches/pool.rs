//! What the buffer pool saves: allocating and first-touching a fresh 64 MiB `Vec<f32>` (every page
//! faults in) versus taking the same size from `kernels::pool` (a parked buffer, pages resident).
//! Both variants write every element once, as a kernel's output would.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kernels::pool::PooledVec;
use std::hint::black_box;

const LEN: usize = 16 << 20; // 16 Mi f32 = 64 MiB

fn pool_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_64MiB_f32");
    g.throughput(Throughput::Bytes((LEN * 4) as u64));
    g.sample_size(20);
    g.bench_function("fresh_vec_filled", |b| {
        b.iter(|| {
            let v = vec![1.0f32; LEN];
            black_box(&v);
        })
    });
    // Park one buffer so every iteration below is a pool hit.
    drop(PooledVec::<f32>::zeros(LEN));
    g.bench_function("pooled_vec_filled", |b| {
        b.iter(|| {
            let v = PooledVec::<f32>::filled(LEN, 1.0);
            black_box(&v);
        })
    });
    g.finish();
    let (hits, misses, parked) = kernels::pool::stats();
    eprintln!("pool: {hits} reuses, {misses} fresh allocations, {parked} bytes parked");
}

criterion_group!(benches, pool_benches);
criterion_main!(benches);
