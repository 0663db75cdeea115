//! Fused attention: the kernels' blocked backward from the saved output and log-sum-exp.

use crate::autocast::lower;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{AttentionOutput, Tensor};

struct Attention {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Option<Tensor>,
    scale: f64,
    saved: AttentionOutput,
}

impl BackwardOp for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let r = Tensor::attention_backward(
            &self.q,
            &self.k,
            &self.v,
            self.mask.as_ref(),
            self.scale,
            &self.saved,
            g,
        )?;
        Ok(vec![needs[0].then_some(r.dq), needs[1].then_some(r.dk), needs[2].then_some(r.dv)])
    }
    fn saved_bytes(&self) -> usize {
        super::bytes(&[&self.q, &self.k, &self.v, &self.saved.out, &self.saved.lse])
    }
}

impl Var {
    /// `softmax(scale·q·kᵀ, key_mask)·v` for q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv];
    /// `key_mask` is a constant u8 [B, Lk] (nonzero = attend).
    /// Under [`crate::autocast`] q, k and v are cast to the half dtype (output in it; the saved
    /// log-sum-exp stays f32).
    pub fn attention(q: &Var, k: &Var, v: &Var, key_mask: Option<&Tensor>, scale: f64) -> Result<Var> {
        let (q, k, v) = (&lower(q)?, &lower(k)?, &lower(v)?);
        let saved = Tensor::attention(q.value(), k.value(), v.value(), key_mask, scale)?;
        let out = saved.out.clone();
        let op = Attention {
            q: q.value().clone(),
            k: k.value().clone(),
            v: v.value().clone(),
            mask: key_mask.cloned(),
            scale,
            saved,
        };
        Var::from_op(out, &[q, k, v], op)
    }
}
