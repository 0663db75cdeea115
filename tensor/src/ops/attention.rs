//! Fused scaled-dot-product attention (blocked online softmax) forward and backward.

use super::{FloatElem, dispatch_float};
use crate::{DType, Error, Result, Tensor};
use kernels::attention::{self, AttentionShape};
use kernels::pool::PooledVec;

/// Output of [`Tensor::attention`]: the attention output and the per-row log-sum-exp saved for
/// the backward pass.
///
/// `out` has the inputs' dtype; `lse` has their **compute dtype** (f32 for f16/bf16 inputs, else the
/// input dtype) on every device, like the saved statistics of the norms: a log-sum-exp rounded to
/// 16 bits would cost the backward `exp(S − lse)` about 0.4 %·|lse| of relative accuracy, and the
/// GPU kernels produce and consume it in f32. [`Tensor::attention_backward`] accepts an `lse` of
/// any float dtype.
#[derive(Clone)]
pub struct AttentionOutput {
    /// [B, H, Lq, Dv], the inputs' dtype.
    pub out: Tensor,
    /// [B, H, Lq], the compute dtype (f32 for f16/bf16).
    pub lse: Tensor,
}

/// Gradients of attention with respect to q, k and v.
#[derive(Clone)]
pub struct AttentionGrads {
    pub dq: Tensor,
    pub dk: Tensor,
    pub dv: Tensor,
}

fn shape_of(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<AttentionShape> {
    let op = "attention";
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.rank() != 4 {
            return Err(Error::RankMismatch {
                op,
                expected: format!("4 ({name} as [B, H, L, D])"),
                shape: t.shape().to_vec(),
            });
        }
    }
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    if qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != ks[3] {
        return Err(Error::ShapeMismatch { op: "attention (q vs k)", lhs: qs.to_vec(), rhs: ks.to_vec() });
    }
    if vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2] {
        return Err(Error::ShapeMismatch { op: "attention (k vs v)", lhs: ks.to_vec(), rhs: vs.to_vec() });
    }
    if let Some(m) = mask {
        if m.dtype() != DType::U8 {
            return Err(Error::UnsupportedDType {
                op: "attention key mask",
                dtype: m.dtype(),
                expected: "u8",
            });
        }
        if m.shape() != [qs[0], ks[2]] {
            return Err(Error::ShapeMismatch {
                op: "attention key mask [B, Lk]",
                lhs: m.shape().to_vec(),
                rhs: vec![qs[0], ks[2]],
            });
        }
    }
    Ok(AttentionShape { batch: qs[0], heads: qs[1], lq: qs[2], lk: ks[2], d: qs[3], dv: vs[3] })
}

fn fwd<T: FloatElem>(
    s: &AttentionShape,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    m: Option<&Tensor>,
    scale: f64,
) -> AttentionOutput {
    let mut out = PooledVec::<T>::zeros(s.batch * s.heads * s.lq * s.dv);
    let mut lse = PooledVec::<T>::zeros(s.batch * s.heads * s.lq);
    attention::attention_forward(
        s,
        q.contiguous_data::<T>(),
        k.contiguous_data::<T>(),
        v.contiguous_data::<T>(),
        m.map(|m| m.contiguous_data::<u8>()),
        T::from_f64(scale),
        &mut out,
        &mut lse,
    );
    AttentionOutput {
        out: Tensor::from_pooled(out, &[s.batch, s.heads, s.lq, s.dv]),
        lse: Tensor::from_pooled(lse, &[s.batch, s.heads, s.lq]),
    }
}

#[allow(clippy::too_many_arguments)]
fn bwd<T: FloatElem>(
    s: &AttentionShape,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    m: Option<&Tensor>,
    scale: f64,
    o: &Tensor,
    lse: &Tensor,
    dout: &Tensor,
) -> AttentionGrads {
    let mut dq = PooledVec::<T>::zeros(q.numel());
    let mut dk = PooledVec::<T>::zeros(k.numel());
    let mut dv = PooledVec::<T>::zeros(v.numel());
    attention::attention_backward(
        s,
        q.contiguous_data::<T>(),
        k.contiguous_data::<T>(),
        v.contiguous_data::<T>(),
        m.map(|m| m.contiguous_data::<u8>()),
        T::from_f64(scale),
        o.contiguous_data::<T>(),
        lse.contiguous_data::<T>(),
        dout.contiguous_data::<T>(),
        &mut dq,
        &mut dk,
        &mut dv,
    );
    AttentionGrads {
        dq: Tensor::from_pooled(dq, q.shape()),
        dk: Tensor::from_pooled(dk, k.shape()),
        dv: Tensor::from_pooled(dv, v.shape()),
    }
}

fn prep(t: &Tensor) -> Result<Tensor> {
    t.require_cpu("attention")?;
    t.float_input("attention")?.contiguous()
}

impl Tensor {
    /// `softmax(scale · q·kᵀ, masked) · v` without materialising the score matrix.
    /// q [B, H, Lq, D], k [B, H, Lk, D], v [B, H, Lk, Dv], optional u8 `key_mask` [B, Lk]
    /// (nonzero = may attend). A query whose keys are all masked gets a zero output (and
    /// `lse = -inf`). On a CUDA device: f32, f16, bf16 (f16/bf16 on tensor cores) with head dims
    /// `D, Dv ≤ 128`; f64 is [`Error::NotImplementedOnDevice`], larger head dims
    /// [`Error::NotImplementedOnDeviceFor`].
    pub fn attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        key_mask: Option<&Tensor>,
        scale: f64,
    ) -> Result<AttentionOutput> {
        q.check_same("attention", k)?;
        q.check_same("attention", v)?;
        let s = shape_of(q, k, v, key_mask)?;
        #[cfg(feature = "cuda")]
        if !q.device().is_cpu() {
            return crate::cuda::ops::attention::attention(&s, q, k, v, key_mask, scale);
        }
        let (qc, kc, vc) = (prep(q)?, prep(k)?, prep(v)?);
        let m = key_mask.map(|m| m.require_cpu("attention").and_then(|_| m.contiguous())).transpose()?;
        let r = dispatch_float!(qc, fwd(&s, &qc, &kc, &vc, m.as_ref(), scale));
        // lse stays in the compute dtype (see `AttentionOutput`).
        Ok(AttentionOutput { out: r.out.cast_back(q.dtype())?, lse: r.lse })
    }

    /// Gradients of [`Tensor::attention`] given the saved output and log-sum-exp.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        key_mask: Option<&Tensor>,
        scale: f64,
        saved: &AttentionOutput,
        dout: &Tensor,
    ) -> Result<AttentionGrads> {
        q.check_same("attention_backward", dout)?;
        q.check_same("attention_backward", k)?;
        q.check_same("attention_backward", v)?;
        let s = shape_of(q, k, v, key_mask)?;
        if dout.shape() != saved.out.shape() || saved.out.shape() != [s.batch, s.heads, s.lq, s.dv] {
            return Err(Error::ShapeMismatch {
                op: "attention_backward (dout vs out)",
                lhs: dout.shape().to_vec(),
                rhs: saved.out.shape().to_vec(),
            });
        }
        if saved.lse.shape() != [s.batch, s.heads, s.lq] {
            return Err(Error::ShapeMismatch {
                op: "attention_backward (saved lse)",
                lhs: saved.lse.shape().to_vec(),
                rhs: vec![s.batch, s.heads, s.lq],
            });
        }
        #[cfg(feature = "cuda")]
        if !q.device().is_cpu() {
            return crate::cuda::ops::attention::attention_backward(
                &s, q, k, v, key_mask, scale, saved, dout,
            );
        }
        let (qc, kc, vc) = (prep(q)?, prep(k)?, prep(v)?);
        let (oc, lc, dc) = (prep(&saved.out)?, prep(&saved.lse)?.to_dtype(qc.dtype())?, prep(dout)?);
        let m = key_mask.map(|m| m.require_cpu("attention").and_then(|_| m.contiguous())).transpose()?;
        let g = dispatch_float!(qc, bwd(&s, &qc, &kc, &vc, m.as_ref(), scale, &oc, &lc, &dc));
        Ok(AttentionGrads {
            dq: g.dq.cast_back(q.dtype())?,
            dk: g.dk.cast_back(q.dtype())?,
            dv: g.dv.cast_back(q.dtype())?,
        })
    }
}
