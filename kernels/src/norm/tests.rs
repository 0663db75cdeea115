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
type Fwd<'a> = &'a dyn Fn(&[f64], &[f64], &[f64]) -> Vec<f64>;

fn finite_diff(fwd: Fwd, x: &[f64], gamma: &[f64], beta: &[f64], w: &[f64], which: usize) -> Vec<f64> {
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

// ---- fused group norm + modulation + SiLU ----

/// Outputs of the fused kernels, forward and backward.
struct GnSilu<T> {
    y: Vec<T>,
    mean: Vec<T>,
    rstd: Vec<T>,
    dx: Vec<T>,
    dgamma: Vec<T>,
    dbeta: Vec<T>,
    dscale: Vec<T>,
    dshift: Vec<T>,
}

/// The fused op's inputs: `gamma`, `beta` `[c]`, `scale`, `shift` `[n, c]`, each optional.
#[derive(Clone, Copy)]
struct Mods<'a, T> {
    gamma: Option<&'a [T]>,
    beta: Option<&'a [T]>,
    scale: Option<&'a [T]>,
    shift: Option<&'a [T]>,
}

fn run_gn_silu<T: Float>(
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
    x: &[T],
    m: Mods<T>,
    dy: &[T],
) -> GnSilu<T> {
    let len = n * c * s;
    let nan = T::from_f64(f64::NAN); // every output must be written
    let mut o = GnSilu {
        y: vec![nan; len],
        mean: vec![nan; n * groups],
        rstd: vec![nan; n * groups],
        dx: vec![nan; len],
        dgamma: vec![nan; c],
        dbeta: vec![nan; c],
        dscale: vec![nan; n * c],
        dshift: vec![nan; n * c],
    };
    let eps = T::from_f64(EPS);
    let (y, mean, rstd) = (&mut o.y, &mut o.mean, &mut o.rstd);
    group_norm_silu_forward(n, c, s, groups, eps, x, m.gamma, m.beta, m.scale, m.shift, y, mean, rstd);
    let grads = GnSiluGrads {
        dgamma: Some(&mut o.dgamma),
        dbeta: Some(&mut o.dbeta),
        dscale: Some(&mut o.dscale),
        dshift: Some(&mut o.dshift),
    };
    let (g, b, a, sh) = (m.gamma, m.beta, m.scale, m.shift);
    group_norm_silu_backward(n, c, s, groups, x, g, b, a, sh, &o.mean, &o.rstd, dy, &mut o.dx, grads);
    o
}

/// Which optional inputs are present: gamma, beta, scale, shift.
type Present = (bool, bool, bool, bool);
const FUSED_MODES: [Present; 5] = [
    (true, true, true, true),
    (true, true, false, false), // GN + SiLU, no modulation
    (false, false, true, true),
    (false, false, false, false),
    (true, false, true, false),
];

/// Checks the f32 and f64 fused CPU kernels against the composed f64 reference.
///
/// Tolerances. Forward: z = (x − μ)·k + c0 with f64-accurate μ, k, c0 rounded once to T, then
/// SiLU (exp within 2 ulp): a few ulps of |z| ≲ 10 → 1e-5 rel + 1e-5 abs (as the plain GN). Backward:
/// dz is a few f32 ops on O(1) values; Σdz, Σdz·x̂ over `spatial` (dscale, dshift) and over `n·spatial`
/// (dgamma, dbeta) accumulate in f32 blocks → [`tol_bwd`] grown with √length; dx as the plain GN
/// ([`tol_dx`]) with the factor γ·(1 + a) in place of γ.
fn check_gn_silu(n: usize, c: usize, s: usize, groups: usize, pr: Present, offset: f64, seed: u64) {
    let mut rng = TestRng::new(seed);
    let len = n * c * s;
    let f = |v: f64| v as f32 as f64; // f32-representable inputs: both precisions see the same values
    let x: Vec<f64> = (0..len).map(|_| f(offset + rng.uniform() * 2.0)).collect();
    let gamma: Vec<f64> = (0..c).map(|_| f(rng.uniform() + 1.5)).collect();
    let beta: Vec<f64> = (0..c).map(|_| f(rng.uniform())).collect();
    let scale: Vec<f64> = (0..n * c).map(|_| f(rng.uniform() * 0.8)).collect();
    let shift: Vec<f64> = (0..n * c).map(|_| f(rng.uniform())).collect();
    let dy: Vec<f64> = (0..len).map(|_| f(rng.uniform())).collect();
    let m64 = Mods {
        gamma: pr.0.then_some(&gamma[..]),
        beta: pr.1.then_some(&beta[..]),
        scale: pr.2.then_some(&scale[..]),
        shift: pr.3.then_some(&shift[..]),
    };
    let (ry, rmean, rrstd) =
        r::group_norm_silu_forward(n, c, s, groups, EPS, &x, m64.gamma, m64.beta, m64.scale, m64.shift);
    let rg =
        r::group_norm_silu_backward(n, c, s, groups, EPS, &x, m64.gamma, m64.beta, m64.scale, m64.shift, &dy);
    let m = c / groups * s;
    let what = format!("gn+silu n={n} c={c} s={s} groups={groups} present={pr:?} offset={offset}");
    // largest rstd·|γ·(1 + a)|: the scale of dx's cancelling terms
    let gmax = gamma.iter().fold(1.0f64, |a, &b| a.max(b.abs()))
        * scale.iter().fold(1.0f64, |a, &b| a.max((1.0 + b).abs()));
    let tdx = {
        let t = tol_dx(m, &rrstd, None);
        Tolerance::new(t.rel, t.abs * gmax)
    };

    let (x32, g32, b32, a32, s32, dy32) = (
        cast::<f32>(&x),
        cast::<f32>(&gamma),
        cast::<f32>(&beta),
        cast::<f32>(&scale),
        cast::<f32>(&shift),
        cast::<f32>(&dy),
    );
    let m32 = Mods {
        gamma: pr.0.then_some(&g32[..]),
        beta: pr.1.then_some(&b32[..]),
        scale: pr.2.then_some(&a32[..]),
        shift: pr.3.then_some(&s32[..]),
    };
    let o = run_gn_silu(n, c, s, groups, &x32, m32, &dy32);
    assert_close(
        &format!("{what} f32 mean"),
        &o.mean,
        &rmean,
        Tolerance::new(1e-6, 1e-6 * offset.abs().max(1.0)),
    );
    assert_close(&format!("{what} f32 rstd"), &o.rstd, &rrstd, Tolerance::new(1e-5, 0.0));
    assert_close(&format!("{what} f32 y"), &o.y, &ry, tol_fwd());
    assert_close(&format!("{what} f32 dx"), &o.dx, &rg.dx, tdx);
    assert_close(&format!("{what} f32 dgamma"), &o.dgamma, &rg.dgamma, tol_bwd(n * s));
    assert_close(&format!("{what} f32 dbeta"), &o.dbeta, &rg.dbeta, tol_bwd(n * s));
    assert_close(&format!("{what} f32 dscale"), &o.dscale, &rg.dscale, tol_bwd(s));
    assert_close(&format!("{what} f32 dshift"), &o.dshift, &rg.dshift, tol_bwd(s));

    let o = run_gn_silu(n, c, s, groups, &x, m64, &dy);
    // f64 vs the f64 reference in another order: F64 grown with the reduction length
    let t = Tolerance::F64.for_reduction(m.max(n * s));
    let tdx = Tolerance::new(t.rel, t.abs * rrstd.iter().fold(1.0f64, |a, &b| a.max(b)) * gmax * 3.0);
    assert_close(&format!("{what} f64 y"), &o.y, &ry, t);
    assert_close(&format!("{what} f64 dx"), &o.dx, &rg.dx, tdx);
    assert_close(&format!("{what} f64 dgamma"), &o.dgamma, &rg.dgamma, t);
    assert_close(&format!("{what} f64 dbeta"), &o.dbeta, &rg.dbeta, t);
    assert_close(&format!("{what} f64 dscale"), &o.dscale, &rg.dscale, t);
    assert_close(&format!("{what} f64 dshift"), &o.dshift, &rg.dshift, t);
}

#[test]
fn gn_silu_awkward_shapes() {
    // groups = 1, groups = C, HW = 1, odd / prime HW, a group longer than one 256-element block
    let shapes = [
        (1, 1, 1, 1),
        (2, 3, 1, 3),
        (3, 6, 1, 2),
        (2, 5, 7, 1),
        (1, 7, 13, 7),
        (2, 12, 9, 4),
        (1, 4, 300, 2),
        (2, 32, 33, 8),
    ];
    for (i, &(n, c, s, g)) in shapes.iter().enumerate() {
        for (k, &pr) in FUSED_MODES.iter().enumerate() {
            check_gn_silu(n, c, s, g, pr, 0.0, (i * 8 + k) as u64 + 900);
        }
    }
}

#[test]
fn gn_silu_large_offsets_keep_accuracy() {
    // x = 1e4 + noise: the f32 saved mean is rounded; the forward's hi/lo mean and the backward's
    // re-centring keep z (and so SiLU′(z)) at f32 accuracy.
    check_gn_silu(2, 8, 50, 4, FUSED_MODES[0], 1e4, 950);
    check_gn_silu(1, 3, 700, 1, FUSED_MODES[1], -3e4, 951);
}

#[test]
fn gn_silu_empty_sizes() {
    check_gn_silu(0, 4, 5, 2, FUSED_MODES[0], 0.0, 960);
    let ones = [1.0f32; 4];
    let m = Mods { gamma: Some(&ones[..]), beta: None, scale: Some(&ones[..]), shift: None };
    let o = run_gn_silu::<f32>(1, 4, 0, 2, &[], m, &[]);
    assert_eq!(o.mean, vec![0.0; 2]);
    assert_eq!((o.dgamma, o.dbeta), (vec![0.0; 4], vec![0.0; 4]));
    assert_eq!((o.dscale, o.dshift), (vec![0.0; 4], vec![0.0; 4]));
}

#[test]
#[should_panic(expected = "groups 3 must divide c 4")]
fn gn_silu_rejects_groups_not_dividing_c() {
    let (mut y, mut m, mut r) = (vec![0.0f32; 8], vec![0.0f32; 3], vec![0.0f32; 3]);
    group_norm_silu_forward(1, 4, 2, 3, 1e-5, &[0.0f32; 8], None, None, None, None, &mut y, &mut m, &mut r);
}

#[test]
#[should_panic(expected = "scale has 3 elements, expected 4")]
fn gn_silu_checks_the_modulation_shape() {
    // scale is per (sample, channel): [n, c] = 2·2, not [c]
    let (mut y, mut m, mut r) = (vec![0.0f32; 8], vec![0.0f32; 2], vec![0.0f32; 2]);
    let a = [0.0f32; 3];
    group_norm_silu_forward(
        2,
        2,
        2,
        1,
        1e-5,
        &[0.0f32; 8],
        None,
        None,
        Some(&a[..]),
        None,
        &mut y,
        &mut m,
        &mut r,
    );
}

#[test]
fn gn_silu_without_modulation_is_group_norm_then_silu() {
    // Composition with the plain kernels: no scale/shift = GN, then SiLU; zero scale/shift = none.
    let (n, c, s, groups) = (2, 6, 7, 3);
    let mut rng = TestRng::new(970);
    let x = rng.vec_f64(n * c * s);
    let dy = rng.vec_f64(n * c * s);
    let gamma: Vec<f64> = rng.vec_f64(c).iter().map(|v| v + 1.5).collect();
    let beta = rng.vec_f64(c);
    let m = Mods { gamma: Some(&gamma[..]), beta: Some(&beta[..]), scale: None, shift: None };
    let fused = run_gn_silu(n, c, s, groups, &x, m, &dy);
    let zeros = vec![0.0; n * c];
    let mz = Mods { scale: Some(&zeros[..]), shift: Some(&zeros[..]), ..m };
    let fused0 = run_gn_silu(n, c, s, groups, &x, mz, &dy);
    assert_eq!(fused.y, fused0.y);
    assert_eq!(fused.dx, fused0.dx);
    // plain GN, SiLU, SiLU′·dy, plain GN backward
    let z = vec![0.0; n * c * s];
    let gn = run_gn(n, c, s, groups, &x, Some(&gamma), Some(&beta), &z);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let y: Vec<f64> = gn.y.iter().map(|&h| h * sig(h)).collect();
    let dh: Vec<f64> = gn.y.iter().zip(&dy).map(|(&h, &d)| d * sig(h) * (1.0 + h * (1.0 - sig(h)))).collect();
    let gnb = run_gn(n, c, s, groups, &x, Some(&gamma), Some(&beta), &dh);
    let t = Tolerance::F64.for_reduction(c / groups * s);
    assert_close("gn+silu y", &fused.y, &y, t);
    assert_close("gn+silu dx", &fused.dx, &gnb.dx, t);
    assert_close("gn+silu dgamma", &fused.dgamma, &gnb.dgamma, t);
    assert_close("gn+silu dbeta", &fused.dbeta, &gnb.dbeta, t);
}

/// Central differences (step 1e-6) of `Σ w·y` for the fused op, over every element of input `which`
/// (0 x, 1 gamma, 2 beta, 3 scale, 4 shift); `fwd` maps the five inputs to y.
type Fwd5<'a> = &'a dyn Fn(&[Vec<f64>; 5]) -> Vec<f64>;
fn finite_diff5(fwd: Fwd5, base: &[Vec<f64>; 5], w: &[f64], which: usize) -> Vec<f64> {
    let h = 1e-6;
    let loss = |p: &[Vec<f64>; 5]| fwd(p).iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
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

#[test]
fn gn_silu_backward_matches_finite_differences() {
    // The f64 reference backward (composed chain) and the fused f64 CPU backward against central
    // differences of the reference forward; FD_TOL as for the plain norms.
    let (n, c, s, groups) = (2, 6, 5, 3);
    let mut rng = TestRng::new(980);
    let base = [
        rng.vec_f64(n * c * s),
        rng.vec_f64(c).iter().map(|v| v + 1.5).collect(),
        rng.vec_f64(c),
        rng.vec_f64(n * c).iter().map(|v| v * 0.5).collect(),
        rng.vec_f64(n * c),
    ];
    let w = rng.vec_f64(n * c * s);
    let fwd = |p: &[Vec<f64>; 5]| {
        r::group_norm_silu_forward(
            n,
            c,
            s,
            groups,
            EPS,
            &p[0],
            Some(&p[1]),
            Some(&p[2]),
            Some(&p[3]),
            Some(&p[4]),
        )
        .0
    };
    let rg = r::group_norm_silu_backward(
        n,
        c,
        s,
        groups,
        EPS,
        &base[0],
        Some(&base[1]),
        Some(&base[2]),
        Some(&base[3]),
        Some(&base[4]),
        &w,
    );
    let m = Mods {
        gamma: Some(&base[1][..]),
        beta: Some(&base[2][..]),
        scale: Some(&base[3][..]),
        shift: Some(&base[4][..]),
    };
    let o = run_gn_silu(n, c, s, groups, &base[0], m, &w);
    let names = ["dx", "dgamma", "dbeta", "dscale", "dshift"];
    let refs = [&rg.dx, &rg.dgamma, &rg.dbeta, &rg.dscale, &rg.dshift];
    let fused = [&o.dx, &o.dgamma, &o.dbeta, &o.dscale, &o.dshift];
    for k in 0..5 {
        let fd = finite_diff5(&fwd, &base, &w, k);
        assert_close(&format!("gn+silu fd reference {}", names[k]), refs[k], &fd, FD_TOL);
        assert_close(&format!("gn+silu fd fused {}", names[k]), fused[k], &fd, FD_TOL);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn prop_gn_silu(n in 0usize..=3, groups in 1usize..=4, cpg in 1usize..=4, s in prop_oneof![0usize..=5, 15usize..=40],
                    mode in 0usize..FUSED_MODES.len(), seed in any::<u64>()) {
        check_gn_silu(n, groups * cpg, s, groups, FUSED_MODES[mode], 0.0, seed);
    }
}
