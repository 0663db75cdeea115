//! Naive f64 oracle: the definition, element by element, accumulated in f64.

/// `C = alpha*A·B + beta*C` on f64 copies, with the same strided addressing as `gemm`
/// (`beta == 0` ignores C, NaN included).
#[allow(clippy::too_many_arguments)]
pub fn gemm_ref(
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    a: &[f64],
    (ao, ars, acs): (usize, usize, usize),
    b: &[f64],
    (bo, brs, bcs): (usize, usize, usize),
    beta: f64,
    c: &mut [f64],
    (co, crs, ccs): (usize, usize, usize),
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc += a[ao + i * ars + p * acs] * b[bo + p * brs + j * bcs];
            }
            let ci = co + i * crs + j * ccs;
            c[ci] = if beta == 0.0 { alpha * acc } else { alpha * acc + beta * c[ci] };
        }
    }
}
