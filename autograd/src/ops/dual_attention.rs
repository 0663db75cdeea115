//! Dual attention (the MDM block's self + cross pattern): `softmax(s·q·k1ᵀ, m1)·v1 +
//! softmax(s·q·k2ᵀ, m2)·v2` as one node, differentiated with the kernels' blocked backward from the
//! saved branch outputs and log-sum-exps (see `tensor::ops::dual_attention`).

use crate::autocast::lower;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{DualAttentionOutput, Tensor};

struct DualAttention {
    /// q, k1, v1, k2, v2.
    x: [Tensor; 5],
    mask1: Option<Tensor>,
    mask2: Option<Tensor>,
    scale: f64,
    saved: DualAttentionOutput,
}

impl BackwardOp for DualAttention {
    fn name(&self) -> &'static str {
        "dual_attention"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let [q, k1, v1, k2, v2] = &self.x;
        let r = Tensor::dual_attention_backward(
            q,
            k1,
            v1,
            self.mask1.as_ref(),
            k2,
            v2,
            self.mask2.as_ref(),
            self.scale,
            &self.saved,
            g,
        )?;
        let grads = [r.dq, r.dk1, r.dv1, r.dk2, r.dv2];
        Ok(grads.into_iter().zip(needs).map(|(t, &n)| n.then_some(t)).collect())
    }
    fn saved_bytes(&self) -> usize {
        let s = &self.saved;
        let [q, k1, v1, k2, v2] = &self.x;
        super::bytes(&[q, k1, v1, k2, v2, &s.out1, &s.out2, &s.lse1, &s.lse2])
    }
}

impl Var {
    /// `softmax(scale·q·k1ᵀ, mask1)·v1 + softmax(scale·q·k2ᵀ, mask2)·v2`: two attentions of the same
    /// queries with separate softmaxes, summed (one fused node). q [B, H, Lq, D], k1/v1
    /// [B, H, L1, D/Dv], k2/v2 [B, H, L2, D/Dv]; the masks are constant u8 [B, L1], [B, L2]
    /// (nonzero = attend). Equals `attention(q, k1, v1, mask1) + attention(q, k2, v2, mask2)`.
    /// Under [`crate::autocast`] all five inputs are cast to the half dtype (output in it), as
    /// [`Var::attention`].
    #[allow(clippy::too_many_arguments)]
    pub fn dual_attention(
        q: &Var,
        k1: &Var,
        v1: &Var,
        mask1: Option<&Tensor>,
        k2: &Var,
        v2: &Var,
        mask2: Option<&Tensor>,
        scale: f64,
    ) -> Result<Var> {
        let (q, k1, v1, k2, v2) = (&lower(q)?, &lower(k1)?, &lower(v1)?, &lower(k2)?, &lower(v2)?);
        let saved = Tensor::dual_attention(
            q.value(),
            k1.value(),
            v1.value(),
            mask1,
            k2.value(),
            v2.value(),
            mask2,
            scale,
        )?;
        let out = saved.out.clone();
        let x = [q, k1, v1, k2, v2].map(|v| v.value().clone());
        let op = DualAttention { x, mask1: mask1.cloned(), mask2: mask2.cloned(), scale, saved };
        Var::from_op(out, &[q, k1, v1, k2, v2], op)
    }
}

#[cfg(test)]
mod tests {
    use crate::{GradcheckOptions, Var, grad, gradcheck};
    use tensor::Tensor;

    fn input(shape: &[usize], seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f64> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        Tensor::from_vec(v, shape).unwrap()
    }

    /// f64 central differences against the fused backward: both branches masked differently
    /// (batch 0's cross branch fully masked), L1 ≠ L2, D ≠ Dv. Tolerance: gradcheck's default.
    #[test]
    fn gradcheck_dual_attention() {
        let m1 = Tensor::from_vec(vec![1u8, 1, 0, 1, 1, 1, 1, 0], &[2, 4]).unwrap();
        let m2 = Tensor::from_vec(vec![0u8, 0, 0, 1, 0, 1], &[2, 3]).unwrap();
        let inputs = vec![
            input(&[2, 2, 3, 4], 1),
            input(&[2, 2, 4, 4], 2),
            input(&[2, 2, 4, 5], 3),
            input(&[2, 2, 3, 4], 4),
            input(&[2, 2, 3, 5], 5),
        ];
        let f = move |v: &[Var]| {
            Var::dual_attention(&v[0], &v[1], &v[2], Some(&m1), &v[3], &v[4], Some(&m2), 0.7)
        };
        let r = gradcheck(f, &inputs, GradcheckOptions::default()).unwrap();
        assert!(r.checked > 0);
    }

    /// The fused node equals the sum of two single attentions, values and gradients.
    #[test]
    fn equals_two_attentions() {
        let m2 = Tensor::from_vec(vec![1u8, 0, 1, 1, 1, 0], &[2, 3]).unwrap();
        let x: Vec<Var> = [[2, 2, 5, 4], [2, 2, 5, 4], [2, 2, 5, 4], [2, 2, 3, 4], [2, 2, 3, 4]]
            .iter()
            .enumerate()
            .map(|(i, s)| Var::leaf(input(s, 10 + i as u64)))
            .collect();
        let fused = Var::dual_attention(&x[0], &x[1], &x[2], None, &x[3], &x[4], Some(&m2), 0.5).unwrap();
        let a = Var::attention(&x[0], &x[1], &x[2], None, 0.5).unwrap();
        let b = Var::attention(&x[0], &x[3], &x[4], Some(&m2), 0.5).unwrap();
        let comp = a.add(&b).unwrap();
        let (f, c) = (fused.value().to_vec_f64(), comp.value().to_vec_f64());
        assert!(f.iter().zip(&c).all(|(x, y)| (x - y).abs() < 1e-12));
        let refs: Vec<&Var> = x.iter().collect();
        let gf = grad(&fused.sum_all().unwrap(), None, &refs, false).unwrap();
        let gc = grad(&comp.sum_all().unwrap(), None, &refs, false).unwrap();
        for (a, b) in gf.iter().zip(&gc) {
            let (a, b) = (a.as_ref().unwrap().to_vec_f64(), b.as_ref().unwrap().to_vec_f64());
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12));
        }
    }
}
