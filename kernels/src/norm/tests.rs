use super::reference as r;
use super::*;
use crate::testing::{AsF64s, TestRng, Tolerance, assert_close};
use proptest::prelude::*;

const EPS: f64 = 1e-5;

struct Gn<T> {
    y: Vec<T>,
    mean: Vec<T>,
    rstd: Vec<T>,
    dx: Vec<T>,
    dgamma: Vec<T>,
    dbeta: Vec<T>,
}

fn cast<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&a| T::from_f64(a)).collect()
}

/// Runs the group norm kernels forward and backward (dgamma/dbeta only when affine).
#[allow(clippy::too_many_arguments)]
fn run_gn<T: Float>(
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    dy: &[T],
) -> Gn<T> {
    let len = n * c * s;
    let mut o = Gn {
        y: vec![T::ZERO; len],
        mean: vec![T::ZERO; n * groups],
        rstd: vec![T::ZERO; n * groups],
        dx: vec![T::ZERO; len],
        dgamma: vec![T::from_f64(99.0); c], // overwritten, not accumulated
        dbeta: vec![T::from_f64(99.0); c],
    };
    group_norm_forward(n, c, s, groups, T::from_f64(EPS), x, gamma, beta, &mut o.y, &mut o.mean, &mut o.rstd);
    let (dg, db) = (&mut o.dgamma, &mut o.dbeta);
    group_norm_backward(n, c, s, groups, x, gamma, &o.mean, &o.rstd, dy, &mut o.dx, Some(dg), Some(db));
    o
}

#[allow(clippy::too_many_arguments)]
fn run_ln<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    dy: &[T],
) -> Gn<T> {
    let len = rows * cols;
    let mut o = Gn {
        y: vec![T::ZERO; len],
        mean: vec![T::ZERO; rows],
        rstd: vec![T::ZERO; rows],
        dx: vec![T::ZERO; len],
        dgamma: vec![T::from_f64(99.0); cols],
        dbeta: vec![T::from_f64(99.0); cols],
    };
    layer_norm_forward(rows, cols, T::from_f64(EPS), x, gamma, beta, &mut o.y, &mut o.mean, &mut o.rstd);
    let (dg, db) = (&mut o.dgamma, &mut o.dbeta);
    layer_norm_backward(rows, cols, x, gamma, &o.mean, &o.rstd, dy, &mut o.dx, Some(dg), Some(db));
    o
}

/// f32 tolerances vs the f64 reference. Forward: y = (x − μ)·rstd·γ + β in a handful of f32 ops whose
/// inputs (μ, rstd) are f64-accurate: a few ulps of |y| ~ O(1) → 1e-5 rel/abs. Backward: dx involves
/// group sums of length m accumulated in f32 blocks of 16 per lane (relative error ~√m·ε on the sums,
/// which enter dx with O(1) weight), dgamma/dbeta are sums over n·spatial: grow with √m.
fn tol_fwd() -> Tolerance {
    Tolerance::new(1e-5, 1e-5)
}
fn tol_bwd(m: usize) -> Tolerance {
    Tolerance::new(1e-5, 1e-5).for_reduction(m)
}
/// dx = rstd·γ·dy − (group terms): a difference of terms of size rstd·|γ·dy| (|dy| ≤ 1), which can cancel
/// to ~0 (a group of one element has dx = 0 exactly, with rstd = 1/sqrt(eps) ≈ 316), so the absolute
/// part scales with the largest rstd·|γ|.
fn tol_dx(m: usize, rstd: &[f64], gamma: Option<&[f64]>) -> Tolerance {
    let scale = rstd.iter().fold(1.0f64, |a, &b| a.max(b))
        * gamma.map_or(1.0, |g| g.iter().fold(1.0, |a, &b| a.max(b.abs())));
    let t = tol_bwd(m);
    Tolerance::new(t.rel, t.abs * scale)
}

/// Checks f32 and f64 group norm against the reference for one shape and affine combination.
fn check_gn(n: usize, c: usize, s: usize, groups: usize, affine: (bool, bool), offset: f64, seed: u64) {
    let mut rng = TestRng::new(seed);
    let len = n * c * s;
    // f32-representable inputs, so both precisions see identical values
    let x: Vec<f64> = (0..len).map(|_| (offset + rng.uniform() * 2.0) as f32 as f64).collect();
    let gamma: Vec<f64> = (0..c).map(|_| (rng.uniform() + 1.5) as f32 as f64).collect();
    let beta: Vec<f64> = (0..c).map(|_| rng.uniform() as f32 as f64).collect();
    let dy: Vec<f64> = (0..len).map(|_| rng.uniform() as f32 as f64).collect();
    let g = affine.0.then_some(&gamma[..]);
    let b = affine.1.then_some(&beta[..]);
    let (ry, rmean, rrstd) = r::group_norm_forward(n, c, s, groups, EPS, &x, g, b);
    let (rdx, rdg, rdb) = r::group_norm_backward(n, c, s, groups, EPS, &x, g, &dy);
    let m = c / groups * s;
    let what = format!("group norm n={n} c={c} s={s} groups={groups} affine={affine:?} offset={offset}");

    let (x32, g32, b32, dy32) = (cast::<f32>(&x), cast::<f32>(&gamma), cast::<f32>(&beta), cast::<f32>(&dy));
    let o = run_gn(n, c, s, groups, &x32, affine.0.then_some(&g32[..]), affine.1.then_some(&b32[..]), &dy32);
    let rel_mean = Tolerance::new(1e-6, 1e-6 * offset.abs().max(1.0));
    assert_close(&format!("{what} f32 mean"), &o.mean, &rmean, rel_mean);
    assert_close(&format!("{what} f32 rstd"), &o.rstd, &rrstd, Tolerance::new(1e-5, 0.0));
    assert_close(&format!("{what} f32 y"), &o.y, &ry, tol_fwd());
    assert_close(&format!("{what} f32 dx"), &o.dx, &rdx, tol_dx(m, &rrstd, g));
    assert_close(&format!("{what} f32 dgamma"), &o.dgamma, &rdg, tol_bwd(n * s));
    assert_close(&format!("{what} f32 dbeta"), &o.dbeta, &rdb, tol_bwd(n * s));

    let o = run_gn(n, c, s, groups, &x, affine.0.then_some(&gamma[..]), affine.1.then_some(&beta[..]), &dy);
    // f64 vs f64 reference computed in another order: F64 grown with the reduction length
    let t = Tolerance::F64.for_reduction(m.max(n * s));
    let tdx = Tolerance::new(t.rel, t.abs * rrstd.iter().fold(1.0f64, |a, &b| a.max(b)) * 3.0);
    assert_close(&format!("{what} f64 y"), &o.y, &ry, t);
    assert_close(&format!("{what} f64 dx"), &o.dx, &rdx, tdx);
    assert_close(&format!("{what} f64 dgamma"), &o.dgamma, &rdg, t);
    assert_close(&format!("{what} f64 dbeta"), &o.dbeta, &rdb, t);
}

fn check_ln(rows: usize, cols: usize, affine: (bool, bool), offset: f64, seed: u64) {
    let mut rng = TestRng::new(seed);
    let len = rows * cols;
    let x: Vec<f64> = (0..len).map(|_| (offset + rng.uniform() * 2.0) as f32 as f64).collect();
    let gamma: Vec<f64> = (0..cols).map(|_| (rng.uniform() + 1.5) as f32 as f64).collect();
    let beta: Vec<f64> = (0..cols).map(|_| rng.uniform() as f32 as f64).collect();
    let dy: Vec<f64> = (0..len).map(|_| rng.uniform() as f32 as f64).collect();
    let g = affine.0.then_some(&gamma[..]);
    let b = affine.1.then_some(&beta[..]);
    let (ry, rmean, rrstd) = r::layer_norm_forward(rows, cols, EPS, &x, g, b);
    let (rdx, rdg, rdb) = r::layer_norm_backward(rows, cols, EPS, &x, g, &dy);
    let what = format!("layer norm rows={rows} cols={cols} affine={affine:?} offset={offset}");

    let (x32, g32, b32, dy32) = (cast::<f32>(&x), cast::<f32>(&gamma), cast::<f32>(&beta), cast::<f32>(&dy));
    let o = run_ln(rows, cols, &x32, affine.0.then_some(&g32[..]), affine.1.then_some(&b32[..]), &dy32);
    assert_close(
        &format!("{what} f32 mean"),
        &o.mean,
        &rmean,
        Tolerance::new(1e-6, 1e-6 * offset.abs().max(1.0)),
    );
    assert_close(&format!("{what} f32 rstd"), &o.rstd, &rrstd, Tolerance::new(1e-5, 0.0));
    assert_close(&format!("{what} f32 y"), &o.y, &ry, tol_fwd());
    assert_close(&format!("{what} f32 dx"), &o.dx, &rdx, tol_dx(cols, &rrstd, g));
    assert_close(&format!("{what} f32 dgamma"), &o.dgamma, &rdg, tol_bwd(rows));
    assert_close(&format!("{what} f32 dbeta"), &o.dbeta, &rdb, tol_bwd(rows));

    let o = run_ln(rows, cols, &x, affine.0.then_some(&gamma[..]), affine.1.then_some(&beta[..]), &dy);
    let t = Tolerance::F64.for_reduction(cols.max(rows));
    let tdx = Tolerance::new(t.rel, t.abs * rrstd.iter().fold(1.0f64, |a, &b| a.max(b)) * 3.0);
    assert_close(&format!("{what} f64 y"), &o.y, &ry, t);
    assert_close(&format!("{what} f64 dx"), &o.dx, &rdx, tdx);
    assert_close(&format!("{what} f64 dgamma"), &o.dgamma, &rdg, t);
    assert_close(&format!("{what} f64 dbeta"), &o.dbeta, &rdb, t);
}

const AFFINE: [(bool, bool); 4] = [(true, true), (false, false), (true, false), (false, true)];

#[test]
fn group_norm_awkward_shapes() {
    // (n, c, spatial, groups): spatial 1, c = groups, groups = 1, odd / prime sizes, a group longer than
    // one 256-element block, a remainder below the 16-lane width
    let shapes = [
        (1, 1, 1, 1),
        (2, 3, 1, 3),
        (3, 6, 1, 2),
        (2, 5, 7, 1),
        (1, 7, 13, 7),
        (2, 12, 9, 4),
        (1, 4, 300, 2),
        (5, 2, 17, 1),
        (2, 32, 33, 8),
        (40, 8, 5, 4),
    ];
    for (i, &(n, c, s, g)) in shapes.iter().enumerate() {
        for (k, &aff) in AFFINE.iter().enumerate() {
            check_gn(n, c, s, g, aff, 0.0, (i * 4 + k) as u64);
        }
    }
}

#[test]
fn layer_norm_awkward_shapes() {
    let shapes = [(1, 1), (3, 1), (1, 2), (7, 13), (5, 17), (2, 300), (33, 64), (70, 31)];
    for (i, &(rows, cols)) in shapes.iter().enumerate() {
        for (k, &aff) in AFFINE.iter().enumerate() {
            check_ln(rows, cols, aff, 0.0, (i * 4 + k) as u64 + 100);
        }
    }
}

#[test]
fn large_offsets_keep_the_variance() {
    // x = 1e4 + noise in [-1, 1): one-pass E[x²] − E[x]² in f32 would return garbage (1e8 ± 1e1 vs a
    // variance of 1/3); the blocked shifted moments and the hi/lo mean keep y, dx at f32 accuracy.
    for (i, &aff) in AFFINE.iter().enumerate() {
        check_gn(2, 8, 50, 4, aff, 1e4, 500 + i as u64);
        check_gn(1, 3, 700, 1, aff, -3e4, 510 + i as u64);
        check_ln(9, 400, aff, 1e4, 520 + i as u64);
    }
}

#[test]
fn empty_sizes_are_handled() {
    // n = 0 and spatial = 0: nothing to normalise; mean 0, rstd 1/sqrt(eps); dgamma/dbeta zero.
    check_gn(0, 4, 5, 2, (true, true), 0.0, 1);
    let o = run_gn::<f32>(2, 4, 0, 2, &[], Some(&[1.0; 4]), Some(&[0.0; 4]), &[]);
    assert_eq!(o.mean, vec![0.0; 4]);
    assert!(o.rstd.iter().all(|&v| (v as f64 - 1.0 / EPS.sqrt()).abs() < 1e-2));
    assert_eq!((o.dgamma, o.dbeta), (vec![0.0; 4], vec![0.0; 4]));
    let o = run_ln::<f32>(0, 5, &[], None, None, &[]);
    assert_eq!((o.dgamma, o.dbeta), (vec![0.0; 5], vec![0.0; 5]));
}

#[test]
fn group_norm_is_layer_norm_over_groups_then_per_channel_affine() {
    // Composition check between the two kernels: reshape [n, c, s] → [n·groups, c/groups·s], layer norm
    // without affine, then apply gamma/beta per channel; backward: dx_gn(dy) = dx_ln(dy·gamma[ch]) and
    // dgamma[ch] = Σ dy·x̂.
    let (n, c, s, groups) = (3, 12, 11, 4);
    let (rows, cols) = (n * groups, c / groups * s);
    let mut rng = TestRng::new(77);
    let x = rng.vec_f64(n * c * s);
    let dy = rng.vec_f64(n * c * s);
    let gamma: Vec<f64> = rng.vec_f64(c).iter().map(|v| v + 1.5).collect();
    let beta = rng.vec_f64(c);
    let gn = run_gn(n, c, s, groups, &x, Some(&gamma), Some(&beta), &dy);
    let ch = |i: usize| (i / s) % c;
    let dy_scaled: Vec<f64> = (0..x.len()).map(|i| dy[i] * gamma[ch(i)]).collect();
    let ln = run_ln(rows, cols, &x, None, None, &dy_scaled);
    let y: Vec<f64> = (0..x.len()).map(|i| ln.y[i] * gamma[ch(i)] + beta[ch(i)]).collect();
    let mut dgamma = vec![0.0; c];
    let mut dbeta = vec![0.0; c];
    for i in 0..x.len() {
        dgamma[ch(i)] += dy[i] * ln.y[i];
        dbeta[ch(i)] += dy[i];
    }
    // both f64, different summation orders: F64 grown with the group length
    let t = Tolerance::F64.for_reduction(cols);
    assert_close("composed y", &gn.y, &y, t);
    assert_close("composed mean", &gn.mean, &ln.mean, t);
    assert_close("composed rstd", &gn.rstd, &ln.rstd, t);
    assert_close("composed dx", &gn.dx, &ln.dx, t);
    assert_close("composed dgamma", &gn.dgamma, &dgamma, t);
    assert_close("composed dbeta", &gn.dbeta, &dbeta, t);
}

/// Central differences of `loss(p) = Σ w·y(p)` with step 1e-6 over every element of the parameter
/// `which` (0 = x, 1 = gamma, 2 = beta).
fn finite_diff(
    fwd: &dyn Fn(&[f64], &[f64], &[f64]) -> Vec<f64>,
    x: &[f64],
    gamma: &[f64],
    beta: &[f64],
    w: &[f64],
    which: usize,
) -> Vec<f64> {
    let h = 1e-6;
    let base = [x.to_vec(), gamma.to_vec(), beta.to_vec()];
    let loss = |p: &[Vec<f64>; 3]| fwd(&p[0], &p[1], &p[2]).iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
    (0..base[which].len())
        .map(|i| {
            let mut p = base.clone();
            p[which][i] += h;
            let up = loss(&p);
            p[which][i] -= 2.0 * h;
            (up - loss(&p)) / (2.0 * h)
        })
        .collect()
}

/// Tolerance of the finite differences: truncation O(h²·f''') ≈ 1e-12 and cancellation ≈
/// ε·|loss|/h ≈ 1e-16·10/1e-6 = 1e-9 absolute on gradients of size O(1): 1e-6 relative + 1e-7 abs.
const FD_TOL: Tolerance = Tolerance::new(1e-6, 1e-7);

#[test]
fn group_norm_backward_matches_finite_differences() {
    let (n, c, s, groups) = (2, 6, 5, 3);
    let mut rng = TestRng::new(21);
    let x = rng.vec_f64(n * c * s);
    let gamma: Vec<f64> = rng.vec_f64(c).iter().map(|v| v + 1.5).collect();
    let beta = rng.vec_f64(c);
    let w = rng.vec_f64(n * c * s);
    let fwd = |x: &[f64], g: &[f64], b: &[f64]| {
        let (mut y, mut m, mut rs) = (vec![0.0; x.len()], vec![0.0; n * groups], vec![0.0; n * groups]);
        group_norm_forward(n, c, s, groups, EPS, x, Some(g), Some(b), &mut y, &mut m, &mut rs);
        y
    };
    let o = run_gn(n, c, s, groups, &x, Some(&gamma), Some(&beta), &w);
    assert_close("gn fd dx", &o.dx, &finite_diff(&fwd, &x, &gamma, &beta, &w, 0), FD_TOL);
    assert_close("gn fd dgamma", &o.dgamma, &finite_diff(&fwd, &x, &gamma, &beta, &w, 1), FD_TOL);
    assert_close("gn fd dbeta", &o.dbeta, &finite_diff(&fwd, &x, &gamma, &beta, &w, 2), FD_TOL);
}

#[test]
fn layer_norm_backward_matches_finite_differences() {
    let (rows, cols) = (4, 9);
    let mut rng = TestRng::new(22);
    let x = rng.vec_f64(rows * cols);
    let gamma: Vec<f64> = rng.vec_f64(cols).iter().map(|v| v + 1.5).collect();
    let beta = rng.vec_f64(cols);
    let w = rng.vec_f64(rows * cols);
    let fwd = |x: &[f64], g: &[f64], b: &[f64]| {
        let (mut y, mut m, mut rs) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
        layer_norm_forward(rows, cols, EPS, x, Some(g), Some(b), &mut y, &mut m, &mut rs);
        y
    };
    let o = run_ln(rows, cols, &x, Some(&gamma), Some(&beta), &w);
    assert_close("ln fd dx", &o.dx, &finite_diff(&fwd, &x, &gamma, &beta, &w, 0), FD_TOL);
    assert_close("ln fd dgamma", &o.dgamma, &finite_diff(&fwd, &x, &gamma, &beta, &w, 1), FD_TOL);
    assert_close("ln fd dbeta", &o.dbeta, &finite_diff(&fwd, &x, &gamma, &beta, &w, 2), FD_TOL);
}

#[test]
fn bench_sized_group_norm_matches_reference() {
    // the parallel path at the benchmark's group size (4 channels × 1024), fewer samples
    check_gn(2, 128, 1024, 32, (true, true), 0.5, 4242);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn prop_group_norm(n in 0usize..=3, groups in 1usize..=4, cpg in 1usize..=4, s in prop_oneof![0usize..=5, 15usize..=40],
                       aff in 0usize..4, seed in any::<u64>()) {
        check_gn(n, groups * cpg, s, groups, AFFINE[aff], 0.0, seed);
    }

    #[test]
    fn prop_layer_norm(rows in 0usize..=6, cols in prop_oneof![1usize..=20, 250usize..=270], aff in 0usize..4,
                       seed in any::<u64>()) {
        check_ln(rows, cols, AFFINE[aff], 0.0, seed);
    }
}

#[test]
fn saved_stats_have_the_documented_meaning() {
    // mean is the group mean and rstd = 1/sqrt(biased var + eps), checked by hand on a tiny group
    let x = [1.0f64, 2.0, 3.0, 4.0];
    let (mut y, mut m, mut rs) = ([0.0; 4], [0.0; 1], [0.0; 1]);
    group_norm_forward(1, 2, 2, 1, 0.25, &x, None, None, &mut y, &mut m, &mut rs);
    assert_eq!(m[0], 2.5);
    assert!((rs[0] - 1.0 / (1.25f64 + 0.25).sqrt()).abs() < 1e-15);
    let _ = y.as_f64s();
}
