//! Per-term gradient attribution: for a loss made of several terms (e.g. one per resolution), the
//! gradient each term alone contributes to each parameter. By linearity the contributions sum to
//! the gradient of the summed loss; [`Attribution::total`] returns that sum.

use crate::{Result, Var, grad};
use tensor::Tensor;

/// `per_term[t][p]`: gradient of term `t` with respect to parameter `p` (`None` when the term does
/// not depend on the parameter).
#[derive(Clone)]
pub struct Attribution {
    pub per_term: Vec<Vec<Option<Tensor>>>,
}

impl Attribution {
    /// Sum over terms for parameter `p` (`None` if no term reaches it).
    pub fn total(&self, p: usize) -> Result<Option<Tensor>> {
        let mut acc: Option<Tensor> = None;
        for t in &self.per_term {
            if let Some(g) = &t[p] {
                acc = Some(match acc {
                    Some(a) => a.add(g)?,
                    None => g.clone(),
                });
            }
        }
        Ok(acc)
    }

    /// L2 norm of each term's gradient for parameter `p` (0 where it does not reach `p`).
    pub fn norms(&self, p: usize) -> Vec<f64> {
        self.per_term
            .iter()
            .map(|t| t[p].as_ref().map_or(0.0, |g| g.to_vec_f64().iter().map(|x| x * x).sum::<f64>().sqrt()))
            .collect()
    }
}

/// Gradient of each one-element `term` with respect to each of `params`, separately. The graph is
/// retained, so the caller can still run `backward` on the summed loss afterwards.
pub fn attribute(terms: &[&Var], params: &[&Var]) -> Result<Attribution> {
    let mut per_term = Vec::with_capacity(terms.len());
    for t in terms {
        per_term.push(grad(t, None, params, true)?);
    }
    Ok(Attribution { per_term })
}
