//! `cargo run --release -p benches --bin roofline [--json]`
//!
//! Measures this machine's limits (FMA peak, copy bandwidth; see `benches::machine`), then times
//! each kernel case and prints op, shape, time, GFLOP/s, GB/s and % of the roofline limit.
//! To add rows, push more `Case`s in `cases()`.

use benches::machine;
use benches::random_f32;
use benches::roofline::{Case, print_table, time_case, to_json};
use kernels::gemm::{MatMut, MatRef, gemm};

/// `C (m×n) = A·B`, f32; `ta`: A given transposed (stored k×m, read through strides).
fn gemm_case(m: usize, n: usize, k: usize, ta: bool) -> Case {
    let a = random_f32(m * k, 1);
    let b = random_f32(k * n, 2);
    let mut c = vec![0f32; m * n];
    let (rs, cs) = if ta { (1, m) } else { (k, 1) };
    let name = if ta { "gemm f32 (A^T)" } else { "gemm f32" };
    let flops = 2.0 * (m * n * k) as f64;
    let bytes = 4.0 * (m * k + k * n + m * n) as f64;
    Case::new(name, &format!("{m}x{n}x{k}"), flops, bytes, move || {
        gemm(
            m,
            n,
            k,
            1.0,
            MatRef { data: &a, offset: 0, rs, cs },
            MatRef { data: &b, offset: 0, rs: n, cs: 1 },
            0.0,
            MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
        );
    })
}

fn cases() -> Vec<Case> {
    vec![
        gemm_case(1024, 1024, 1024, false),
        gemm_case(4096, 256, 256, false),
        gemm_case(1024, 1024, 1024, true),
        gemm_case(256, 256, 256, false),
    ]
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let lim = machine::measure();
    if !json {
        eprintln!("gemm micro-kernel: {}", kernels::gemm::f32_kernel_name());
    }
    let rows: Vec<_> = cases().iter_mut().map(|c| time_case(c, &lim, 1.0)).collect();
    if json {
        println!("{}", to_json(&lim, &rows));
    } else {
        print_table(&lim, &rows);
    }
}
