//! Naive f64 softmax / log-softmax oracle (explicit loops, libm `exp`/`ln`), the test reference.
//!
//! Same `[outer, n, inner]` convention and special-value rules as the kernels (all `-inf` → NaN).

/// Softmax (or log-softmax when `log`) along the middle axis, in f64.
pub fn forward(outer: usize, n: usize, inner: usize, x: &[f64], log: bool) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            let mut m = f64::NEG_INFINITY;
            for i in 0..n {
                m = m.max(x[at(i)]);
            }
            let mut s = 0.0;
            for i in 0..n {
                s += (x[at(i)] - m).exp();
            }
            for i in 0..n {
                y[at(i)] = if log { x[at(i)] - m - s.ln() } else { (x[at(i)] - m).exp() / s };
            }
        }
    }
    y
}

/// Gradient of [`forward`] given its output `y` and the upstream gradient `dy`, in f64:
/// softmax `dx_i = y_i (dy_i - Σ_k dy_k y_k)`; log-softmax `dx_i = dy_i - e^{y_i} Σ_k dy_k`.
pub fn backward(outer: usize, n: usize, inner: usize, y: &[f64], dy: &[f64], log: bool) -> Vec<f64> {
    let mut dx = vec![0.0; y.len()];
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * n + i) * inner + j;
            let mut s = 0.0;
            for i in 0..n {
                s += if log { dy[at(i)] } else { dy[at(i)] * y[at(i)] };
            }
            for i in 0..n {
                dx[at(i)] = if log { dy[at(i)] - y[at(i)].exp() * s } else { y[at(i)] * (dy[at(i)] - s) };
            }
        }
    }
    dx
}
