//! `gradcheck`: central finite differences in f64 against the analytic gradient.
//!
//! For `y = f(x₁, …, xₙ)` a fixed random projection `r` (same shape as `y`) turns the output into the
//! scalar `L = Σ r ∘ y`. The analytic gradient is one backward pass with output gradient `r`; the
//! numeric one is `(L(x + εeⱼ) − L(x − εeⱼ)) / 2ε` for every element `j` of every input. With f64 and
//! ε = 1e-6 the truncation error is O(ε²·f''') ≈ 1e-12 and the rounding error ≈ 1e-16·|L|/ε ≈ 1e-10·|L|,
//! so the default tolerance (abs 1e-6 + rel 1e-5) has wide margin for smooth ops while any wrong rule
//! (typically O(1) relative error) fails.

use crate::context::no_grad;
use crate::{Error, Result, Var, grad};
use kernels::testing::TestRng;
use tensor::{DType, Tensor};

/// Step and tolerance of a gradient check.
#[derive(Clone, Copy, Debug)]
pub struct GradcheckOptions {
    pub eps: f64,
    pub atol: f64,
    pub rtol: f64,
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        Self { eps: 1e-6, atol: 1e-6, rtol: 1e-5, seed: 0x5EED }
    }
}

/// The worst element of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    pub input: usize,
    pub index: Vec<usize>,
    pub analytic: f64,
    pub numeric: f64,
}

/// Result of a passing check: how many elements were compared and the worst one.
#[derive(Clone, Debug)]
pub struct GradcheckReport {
    pub checked: usize,
    pub max_excess_ratio: f64,
    pub worst: Option<Worst>,
}

fn multi_index(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d].max(1);
        flat /= shape[d].max(1);
    }
    idx
}

fn dot(a: &Tensor, r: &[f64]) -> f64 {
    a.to_vec_f64().iter().zip(r).map(|(x, y)| x * y).sum()
}

/// Checks the gradient of `f` at `inputs` (all f64; views of any layout allowed).
/// Returns the report, or `Error::Gradcheck` naming the worst input element.
pub fn gradcheck(
    f: impl Fn(&[Var]) -> Result<Var>,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<GradcheckReport> {
    for (i, t) in inputs.iter().enumerate() {
        if t.dtype() != DType::F64 {
            return Err(Error::Gradcheck(format!("input {i} is {}, gradcheck needs f64", t.dtype())));
        }
    }
    let leaves: Vec<Var> = inputs.iter().map(|t| Var::leaf(t.clone())).collect();
    let out = f(&leaves)?;
    let mut rng = TestRng::new(opts.seed);
    let r = rng.vec_f64(out.value().numel());
    let rt = Tensor::from_vec(r.clone(), out.shape())?.to_dtype(out.dtype())?;
    let refs: Vec<&Var> = leaves.iter().collect();
    let analytic =
        if out.requires_grad() { grad(&out, Some(&rt), &refs, false)? } else { vec![None; inputs.len()] };

    let mut checked = 0;
    let mut worst: Option<(f64, Worst)> = None;
    for (i, x) in inputs.iter().enumerate() {
        let base = x.to_vec_f64();
        let a = analytic[i].as_ref().map(|g| g.to_vec_f64()).unwrap_or_else(|| vec![0.0; base.len()]);
        for j in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[j] += delta;
                let xs: Vec<Var> = inputs
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        if k == i {
                            Ok(Var::constant(Tensor::from_vec(v.clone(), t.shape())?))
                        } else {
                            Ok(Var::constant(t.clone()))
                        }
                    })
                    .collect::<Result<_>>()?;
                let y = no_grad(|| f(&xs))?;
                Ok(dot(y.value(), &r))
            };
            let numeric = (eval(opts.eps)? - eval(-opts.eps)?) / (2.0 * opts.eps);
            let bound = opts.atol + opts.rtol * numeric.abs();
            let ratio = (a[j] - numeric).abs() / bound;
            checked += 1;
            if worst.as_ref().is_none_or(|(w, _)| ratio > *w) || ratio.is_nan() {
                worst = Some((
                    if ratio.is_nan() { f64::INFINITY } else { ratio },
                    Worst { input: i, index: multi_index(x.shape(), j), analytic: a[j], numeric },
                ));
            }
        }
    }
    let max_ratio = worst.as_ref().map_or(0.0, |(r, _)| *r);
    if max_ratio > 1.0 {
        let w = &worst.as_ref().unwrap().1;
        return Err(Error::Gradcheck(format!(
            "input {} at index {:?}: analytic {:e} vs numeric {:e} (|diff| {:e} > atol {:e} + rtol {:e}·|numeric|); {} elements checked",
            w.input,
            w.index,
            w.analytic,
            w.numeric,
            (w.analytic - w.numeric).abs(),
            opts.atol,
            opts.rtol,
            checked
        )));
    }
    Ok(GradcheckReport { checked, max_excess_ratio: max_ratio, worst: worst.map(|(_, w)| w) })
}
