//! v ↔ ε ↔ x̂₀ conversions of the v-parameterisation (spec §2.6), with one γ per sample.
//!
//! v = √γ·ε − √(1−γ)·x₀, z = √γ·x₀ + √(1−γ)·ε, x̂₀ = √γ·z − √(1−γ)·v̂, ε̂ = √(1−γ)·z + √γ·v̂
//! (the last is (z − √γ·x̂₀)/√(1−γ) simplified; ml-mdm computes it through x̂₀ and a division by
//! √(1−γ), which is the same value up to rounding and better conditioned here).
//! Tensors are [B, ...]; `gamma` has B entries; coefficients take the tensor's dtype.

use crate::Result;
use crate::error::input_err;
use autograd::Var;
use tensor::Tensor;

/// Per-sample coefficients f(γ_b) as a [B, 1, …, 1] tensor matching `like` (rank and dtype).
pub fn per_sample(gamma: &[f64], like: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor> {
    let shape = like.shape();
    if shape.is_empty() || shape[0] != gamma.len() {
        return Err(input_err(
            "gamma",
            format!("{} values for a tensor of shape {shape:?} (need one per sample)", gamma.len()),
        ));
    }
    let mut s = vec![1usize; shape.len()];
    s[0] = gamma.len();
    let v: Vec<f64> = gamma.iter().map(|&g| f(g)).collect();
    Ok(Tensor::from_vec(v, &s)?.to_dtype(like.dtype())?)
}

fn lin(a: &Tensor, ca: &Tensor, b: &Tensor, cb: &Tensor) -> Result<Tensor> {
    Ok(a.mul(ca)?.add(&b.mul(cb)?)?)
}

fn sq(g: f64) -> f64 {
    g.sqrt()
}
fn sq1(g: f64) -> f64 {
    (1.0 - g).sqrt()
}

/// z = √γ·x₀ + √(1−γ)·ε (forward process).
pub fn z_from_x0_eps(x0: &Tensor, eps: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    lin(x0, &per_sample(gamma, x0, sq)?, eps, &per_sample(gamma, x0, sq1)?)
}

/// v = √γ·ε − √(1−γ)·x₀.
pub fn v_from_eps_x0(eps: &Tensor, x0: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    lin(eps, &per_sample(gamma, eps, sq)?, x0, &per_sample(gamma, eps, |g| -sq1(g))?)
}

/// x̂₀ = √γ·z − √(1−γ)·v̂.
pub fn x0_from_v(z: &Tensor, v: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    lin(z, &per_sample(gamma, z, sq)?, v, &per_sample(gamma, z, |g| -sq1(g))?)
}

/// ε̂ = √(1−γ)·z + √γ·v̂.
pub fn eps_from_v(z: &Tensor, v: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    lin(z, &per_sample(gamma, z, sq1)?, v, &per_sample(gamma, z, sq)?)
}

/// ε̂ = (z − √γ·x̂₀)/√(1−γ) (γ < 1).
pub fn eps_from_x0(z: &Tensor, x0: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    let d = z.sub(&x0.mul(&per_sample(gamma, z, sq)?)?)?;
    Ok(d.mul(&per_sample(gamma, z, |g| 1.0 / sq1(g))?)?)
}

/// x̂₀ = (z − √(1−γ)·ε̂)/√γ (γ > 0).
pub fn x0_from_eps(z: &Tensor, eps: &Tensor, gamma: &[f64]) -> Result<Tensor> {
    let d = z.sub(&eps.mul(&per_sample(gamma, z, sq1)?)?)?;
    Ok(d.mul(&per_sample(gamma, z, |g| 1.0 / sq(g))?)?)
}

/// Differentiable ε̂ = √(1−γ)·z + √γ·v̂ (gradient flows to `v`).
pub fn eps_from_v_var(z: &Tensor, v: &Var, gamma: &[f64]) -> Result<Var> {
    let zc = Var::constant(z.mul(&per_sample(gamma, z, sq1)?)?.to_dtype(v.dtype())?);
    let c = Var::constant(per_sample(gamma, v.value(), sq)?);
    Ok(zc.add(&v.mul(&c)?)?)
}
