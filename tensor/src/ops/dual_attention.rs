//! Dual attention (the MDM attention block's pattern, spec §3.1): one set of queries attends to
//! two key/value sets with two separate softmaxes and the results are added,
//! `out = softmax(s·q·k1ᵀ, mask1)·v1 + softmax(s·q·k2ᵀ, mask2)·v2`.
//!
//! CPU: two flash-attention calls (`kernels::attention::dual_attention_*`). GPU: the fused kernels
//! of `kernels/src/attention/dual.cu` (one read of each query tile for both branches).

use super::{FloatElem, dispatch_float};
use crate::{DType, Error, Result, Tensor};
use kernels::attention::{self, DualAttentionShape, DualGradsMut, DualInputs, DualSaved};
use kernels::pool::PooledVec;

/// Output of [`Tensor::dual_attention`]: the summed output and what the backward needs.
///
/// The backward of branch `b` needs `D_b = rowsum(dout ∘ out_b)` with that branch's own output, so
/// both branch outputs are kept (`out = out1 + out2`). `lse1`/`lse2` are in the compute dtype (f32
/// for f16/bf16 inputs).
#[derive(Clone)]
pub struct DualAttentionOutput {
    /// [B, H, Lq, Dv]: `out1 + out2`.
    pub out: Tensor,
    /// [B, H, Lq, Dv]: branch 1 (self) output.
    pub out1: Tensor,
    /// [B, H, Lq, Dv]: branch 2 (cross) output.
    pub out2: Tensor,
    /// [B, H, Lq]: branch 1 log-sum-exp (`-inf` for a fully masked row).
    pub lse1: Tensor,
    /// [B, H, Lq]: branch 2 log-sum-exp.
    pub lse2: Tensor,
}

/// Gradients of dual attention with respect to q and both branches' k, v.
#[derive(Clone)]
pub struct DualAttentionGrads {
    pub dq: Tensor,
    pub dk1: Tensor,
    pub dv1: Tensor,
    pub dk2: Tensor,
    pub dv2: Tensor,
}

const OP: &str = "dual_attention";

/// Validates one branch against q: k [B, H, Lb, D], v [B, H, Lb, Dv], mask u8 [B, Lb]; returns Lb.
fn branch_len(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, dv: usize) -> Result<usize> {
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.rank() != 4 {
            return Err(Error::RankMismatch {
                op: OP,
                expected: format!("4 ({name} as [B, H, L, D])"),
                shape: t.shape().to_vec(),
            });
        }
    }
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    if qs[0] != ks[0] || qs[1] != ks[1] || qs[3] != ks[3] {
        return Err(Error::ShapeMismatch {
            op: "dual_attention (q vs k)",
            lhs: qs.to_vec(),
            rhs: ks.to_vec(),
        });
    }
    if vs[0] != ks[0] || vs[1] != ks[1] || vs[2] != ks[2] || vs[3] != dv {
        return Err(Error::ShapeMismatch {
            op: "dual_attention (k vs v; both v must have the same Dv)",
            lhs: ks.to_vec(),
            rhs: vs.to_vec(),
        });
    }
    if let Some(m) = mask {
        if m.dtype() != DType::U8 {
            return Err(Error::UnsupportedDType {
                op: "dual_attention key mask",
                dtype: m.dtype(),
                expected: "u8",
            });
        }
        if m.shape() != [qs[0], ks[2]] {
            return Err(Error::ShapeMismatch {
                op: "dual_attention key mask [B, Lk]",
                lhs: m.shape().to_vec(),
                rhs: vec![qs[0], ks[2]],
            });
        }
    }
    Ok(ks[2])
}

/// The shape of a call, after validating every input (dtypes and devices included).
pub(crate) fn dual_shape(
    q: &Tensor,
    [k1, v1, k2, v2]: [&Tensor; 4],
    mask1: Option<&Tensor>,
    mask2: Option<&Tensor>,
) -> Result<DualAttentionShape> {
    for t in [k1, v1, k2, v2] {
        q.check_same(OP, t)?;
    }
    for m in [mask1, mask2].into_iter().flatten() {
        if m.device() != q.device() {
            return Err(Error::DeviceMismatch { op: OP, lhs: q.device(), rhs: m.device() });
        }
    }
    let dv = v1.shape().get(3).copied().unwrap_or(0);
    let l1 = branch_len(q, k1, v1, mask1, dv)?;
    let l2 = branch_len(q, k2, v2, mask2, dv)?;
    let qs = q.shape();
    Ok(DualAttentionShape { batch: qs[0], heads: qs[1], lq: qs[2], l1, l2, d: qs[3], dv })
}

/// The CPU computation on contiguous compute-dtype tensors `[q, k1, v1, k2, v2]`.
fn fwd<T: FloatElem>(
    s: &DualAttentionShape,
    t: &[Tensor; 5],
    m1: Option<&Tensor>,
    m2: Option<&Tensor>,
    scale: f64,
) -> DualAttentionOutput {
    let (lo, ll) = s.out_lens();
    let (mut out, mut out1, mut out2) =
        (PooledVec::<T>::zeros(lo), PooledVec::<T>::zeros(lo), PooledVec::<T>::zeros(lo));
    let (mut lse1, mut lse2) = (PooledVec::<T>::zeros(ll), PooledVec::<T>::zeros(ll));
    let x = DualInputs {
        q: t[0].contiguous_data::<T>(),
        k1: t[1].contiguous_data::<T>(),
        v1: t[2].contiguous_data::<T>(),
        mask1: m1.map(|m| m.contiguous_data::<u8>()),
        k2: t[3].contiguous_data::<T>(),
        v2: t[4].contiguous_data::<T>(),
        mask2: m2.map(|m| m.contiguous_data::<u8>()),
    };
    attention::dual_attention_forward(
        s,
        &x,
        T::from_f64(scale),
        &mut out,
        &mut out1,
        &mut out2,
        &mut lse1,
        &mut lse2,
    );
    let os = [s.batch, s.heads, s.lq, s.dv];
    let ls = [s.batch, s.heads, s.lq];
    DualAttentionOutput {
        out: Tensor::from_pooled(out, &os),
        out1: Tensor::from_pooled(out1, &os),
        out2: Tensor::from_pooled(out2, &os),
        lse1: Tensor::from_pooled(lse1, &ls),
        lse2: Tensor::from_pooled(lse2, &ls),
    }
}

/// The CPU backward; `sv = [out1, out2, lse1, lse2, dout]` contiguous in the compute dtype.
fn bwd<T: FloatElem>(
    s: &DualAttentionShape,
    t: &[Tensor; 5],
    m1: Option<&Tensor>,
    m2: Option<&Tensor>,
    scale: f64,
    sv: &[Tensor; 5],
) -> DualAttentionGrads {
    let z = |t: &Tensor| PooledVec::<T>::zeros(t.numel());
    let (mut dq, mut dk1, mut dv1, mut dk2, mut dv2) = (z(&t[0]), z(&t[1]), z(&t[2]), z(&t[3]), z(&t[4]));
    let x = DualInputs {
        q: t[0].contiguous_data::<T>(),
        k1: t[1].contiguous_data::<T>(),
        v1: t[2].contiguous_data::<T>(),
        mask1: m1.map(|m| m.contiguous_data::<u8>()),
        k2: t[3].contiguous_data::<T>(),
        v2: t[4].contiguous_data::<T>(),
        mask2: m2.map(|m| m.contiguous_data::<u8>()),
    };
    let saved = DualSaved {
        out1: sv[0].contiguous_data::<T>(),
        out2: sv[1].contiguous_data::<T>(),
        lse1: sv[2].contiguous_data::<T>(),
        lse2: sv[3].contiguous_data::<T>(),
    };
    let g = DualGradsMut { dq: &mut dq, dk1: &mut dk1, dv1: &mut dv1, dk2: &mut dk2, dv2: &mut dv2 };
    attention::dual_attention_backward(s, &x, T::from_f64(scale), &saved, sv[4].contiguous_data::<T>(), g);
    DualAttentionGrads {
        dq: Tensor::from_pooled(dq, t[0].shape()),
        dk1: Tensor::from_pooled(dk1, t[1].shape()),
        dv1: Tensor::from_pooled(dv1, t[2].shape()),
        dk2: Tensor::from_pooled(dk2, t[3].shape()),
        dv2: Tensor::from_pooled(dv2, t[4].shape()),
    }
}

fn prep(t: &Tensor) -> Result<Tensor> {
    t.require_cpu(OP)?;
    t.float_input(OP)?.contiguous()
}

fn prep_mask(m: Option<&Tensor>) -> Result<Option<Tensor>> {
    m.map(|m| m.require_cpu(OP).and_then(|_| m.contiguous())).transpose()
}

impl Tensor {
    /// `softmax(scale·q·k1ᵀ, mask1)·v1 + softmax(scale·q·k2ᵀ, mask2)·v2` (two separate softmaxes,
    /// outputs added) without materialising either score matrix. q [B, H, Lq, D], k1 [B, H, L1, D],
    /// v1 [B, H, L1, Dv], k2 [B, H, L2, D], v2 [B, H, L2, Dv]; optional u8 key masks [B, L1], [B, L2]
    /// (nonzero = may attend). A branch whose keys are all masked for a query contributes 0.
    #[allow(clippy::too_many_arguments)]
    pub fn dual_attention(
        q: &Tensor,
        k1: &Tensor,
        v1: &Tensor,
        mask1: Option<&Tensor>,
        k2: &Tensor,
        v2: &Tensor,
        mask2: Option<&Tensor>,
        scale: f64,
    ) -> Result<DualAttentionOutput> {
        let s = dual_shape(q, [k1, v1, k2, v2], mask1, mask2)?;
        #[cfg(feature = "cuda")]
        if !q.device().is_cpu() {
            return crate::cuda::ops::dual_attention::forward(&s, [q, k1, v1, k2, v2], mask1, mask2, scale);
        }
        let t = [prep(q)?, prep(k1)?, prep(v1)?, prep(k2)?, prep(v2)?];
        let (m1, m2) = (prep_mask(mask1)?, prep_mask(mask2)?);
        let r = dispatch_float!(t[0], fwd(&s, &t, m1.as_ref(), m2.as_ref(), scale));
        let dt = q.dtype();
        Ok(DualAttentionOutput {
            out: r.out.cast_back(dt)?,
            out1: r.out1.cast_back(dt)?,
            out2: r.out2.cast_back(dt)?,
            lse1: r.lse1,
            lse2: r.lse2,
        })
    }

    /// Gradients of [`Tensor::dual_attention`] given its saved output and `dout` [B, H, Lq, Dv].
    #[allow(clippy::too_many_arguments)]
    pub fn dual_attention_backward(
        q: &Tensor,
        k1: &Tensor,
        v1: &Tensor,
        mask1: Option<&Tensor>,
        k2: &Tensor,
        v2: &Tensor,
        mask2: Option<&Tensor>,
        scale: f64,
        saved: &DualAttentionOutput,
        dout: &Tensor,
    ) -> Result<DualAttentionGrads> {
        let s = dual_shape(q, [k1, v1, k2, v2], mask1, mask2)?;
        q.check_same("dual_attention_backward", dout)?;
        let os = [s.batch, s.heads, s.lq, s.dv];
        let ls = [s.batch, s.heads, s.lq];
        for (name, t, want) in [
            ("dout", dout, &os[..]),
            ("out1", &saved.out1, &os[..]),
            ("out2", &saved.out2, &os[..]),
            ("lse1", &saved.lse1, &ls[..]),
            ("lse2", &saved.lse2, &ls[..]),
        ] {
            if t.shape() != want {
                return Err(Error::invalid(
                    "dual_attention_backward",
                    format!("`{name}` has shape {:?}, expected {want:?}", t.shape()),
                ));
            }
            if t.device() != q.device() {
                return Err(Error::DeviceMismatch {
                    op: "dual_attention_backward",
                    lhs: q.device(),
                    rhs: t.device(),
                });
            }
        }
        #[cfg(feature = "cuda")]
        if !q.device().is_cpu() {
            return crate::cuda::ops::dual_attention::backward(
                &s,
                [q, k1, v1, k2, v2],
                mask1,
                mask2,
                scale,
                saved,
                dout,
            );
        }
        let t = [prep(q)?, prep(k1)?, prep(v1)?, prep(k2)?, prep(v2)?];
        let (m1, m2) = (prep_mask(mask1)?, prep_mask(mask2)?);
        let cd = t[0].dtype();
        let c = |x: &Tensor| -> Result<Tensor> { prep(x)?.to_dtype(cd)?.contiguous() };
        let sv = [c(&saved.out1)?, c(&saved.out2)?, c(&saved.lse1)?, c(&saved.lse2)?, c(dout)?];
        let g = dispatch_float!(t[0], bwd(&s, &t, m1.as_ref(), m2.as_ref(), scale, &sv));
        let dt = q.dtype();
        Ok(DualAttentionGrads {
            dq: g.dq.cast_back(dt)?,
            dk1: g.dk1.cast_back(dt)?,
            dv1: g.dv1.cast_back(dt)?,
            dk2: g.dk2.cast_back(dt)?,
            dv2: g.dv2.cast_back(dt)?,
        })
    }
}
