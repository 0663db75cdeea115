//! Flash attention on the device: the kernels of `kernels/src/attention/attention.cu` (argument
//! lists and launch shapes in `kernels/src/attention/cuda.rs`).
//!
//! Forward: `flash_attn_fwd_f32` (SIMT) or `flash_attn_fwd_{bf16,f16}` (tensor cores); `out` in the
//! input dtype, `lse` in f32 (the compute dtype of every supported input, as on the CPU).
//! Backward (deterministic, no atomics): `flash_attn_bwd_pre_<dt>` (`D = rowsum(dout∘out)` into an
//! f32 scratch), then `flash_attn_bwd_dq_<dt>` and `flash_attn_bwd_dkdv_<dt>`.
//!
//! Limits: f32, f16 and bf16 (f64 has no kernels: `NotImplementedOnDevice`), head dims `d, dv ≤ 128`
//! ([`kernels::attention::cuda::DMAX`]; larger ones: [`Error::NotImplementedOnDeviceFor`] naming the
//! shape). Never a silent CPU fallback.

use super::storage;
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::ops::attention::{AttentionGrads, AttentionOutput};
use crate::{DType, Error, Result, Tensor};
use kernels::attention::AttentionShape;
use kernels::attention::cuda::{
    AttnArgs, DMAX, launch_dims_bwd_dkdv, launch_dims_bwd_dq, launch_dims_bwd_pre, launch_dims_fwd,
    launch_dims_fwd_tc, supported,
};

/// The kernel-name suffix for `dtype`, or the typed refusal (f64, non-float, head dims > DMAX).
fn suffix(op: &'static str, dtype: DType, s: &AttentionShape, device: crate::Device) -> Result<&'static str> {
    let dt = match dtype {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => return Err(Error::NotImplementedOnDevice { op, device }),
        d => {
            return Err(Error::UnsupportedDType { op, dtype: d, expected: "a float dtype (f32, f16, bf16)" });
        }
    };
    if !supported(s) {
        return Err(Error::NotImplementedOnDeviceFor {
            op,
            device,
            what: format!(
                "head dims d = {}, dv = {} (q [{}, {}, {}, {}], v [.., {}]; the CUDA kernels take d, dv ≤ {DMAX})",
                s.d, s.dv, s.batch, s.heads, s.lq, s.d, s.dv
            ),
        });
    }
    Ok(dt)
}

fn need(op: &'static str, names: &[String], device: crate::Device) -> Result<()> {
    if names.iter().all(|n| has_kernel(n)) {
        Ok(())
    } else {
        Err(Error::NotImplementedOnDevice { op, device })
    }
}

/// Device address of a contiguous tensor's first element.
fn addr(op: &'static str, t: &Tensor) -> Result<u64> {
    Ok(storage(op, t)?.0.ptr_at(t.offset()))
}

/// The contiguous key mask on `q`'s device (`Some((ptr, true))`), or `q`'s address as the unread
/// placeholder the kernels accept when `has_mask == 0`.
fn mask_arg(op: &'static str, q: &Tensor, mask: Option<&Tensor>) -> Result<(Option<Tensor>, bool)> {
    match mask {
        None => Ok((None, false)),
        Some(m) => {
            q.check_device(op, m)?;
            Ok((Some(m.contiguous()?), true))
        }
    }
}

/// `flash_attn_fwd_<dt>(q, k, v, key_mask, out, lse, args)`.
pub(crate) fn attention(
    s: &AttentionShape,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    scale: f64,
) -> Result<AttentionOutput> {
    const OP: &str = "attention";
    let device = q.device();
    let dt = suffix(OP, q.dtype(), s, device)?;
    let kernel = format!("flash_attn_fwd_{dt}");
    need(OP, std::slice::from_ref(&kernel), device)?;
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let (m, has_mask) = mask_arg(OP, &q, key_mask)?;
    let (_, dev) = storage(OP, &q)?;
    let out = CudaStorage::alloc(&dev, q.dtype(), s.batch * s.heads * s.lq * s.dv)?;
    let lse = CudaStorage::alloc(&dev, DType::F32, s.batch * s.heads * s.lq)?;
    let a = AttnArgs::new(s, has_mask, scale);
    let dims = if q.dtype() == DType::F32 { launch_dims_fwd(&a) } else { launch_dims_fwd_tc(&a) };
    if let Some(dims) = dims {
        let qp = addr(OP, &q)?;
        let mp = match &m {
            Some(m) => addr(OP, m)?,
            None => qp,
        };
        dev.launch(
            &kernel,
            dims,
            &[
                KArg::Ptr(qp),
                KArg::Ptr(addr(OP, &k)?),
                KArg::Ptr(addr(OP, &v)?),
                KArg::Ptr(mp),
                KArg::Ptr(out.ptr()),
                KArg::Ptr(lse.ptr()),
                KArg::Attn(a),
            ],
        )?;
    }
    Ok(AttentionOutput {
        out: Tensor::from_cuda(out, &[s.batch, s.heads, s.lq, s.dv]),
        lse: Tensor::from_cuda(lse, &[s.batch, s.heads, s.lq]),
    })
}

/// `flash_attn_bwd_pre_<dt>(out, dout, dd, args)`, then `flash_attn_bwd_dq_<dt>(q, k, v, key_mask,
/// lse, dd, dout, dq, args)` and `flash_attn_bwd_dkdv_<dt>(q, k, v, key_mask, lse, dd, dout, dk, dv,
/// args)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_backward(
    s: &AttentionShape,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: Option<&Tensor>,
    scale: f64,
    saved: &AttentionOutput,
    dout: &Tensor,
) -> Result<AttentionGrads> {
    const OP: &str = "attention_backward";
    let device = q.device();
    let dt = suffix(OP, q.dtype(), s, device)?;
    let names = ["pre", "dq", "dkdv"].map(|p| format!("flash_attn_bwd_{p}_{dt}"));
    need(OP, &names, device)?;
    for t in [&saved.out, &saved.lse] {
        q.check_device(OP, t)?;
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let out = saved.out.to_dtype(q.dtype())?.contiguous()?;
    let lse = saved.lse.to_dtype(DType::F32)?.contiguous()?;
    if lse.shape() != [s.batch, s.heads, s.lq] {
        return Err(Error::ShapeMismatch {
            op: "attention_backward (saved lse)",
            lhs: lse.shape().to_vec(),
            rhs: vec![s.batch, s.heads, s.lq],
        });
    }
    let dout = dout.contiguous()?;
    let (m, has_mask) = mask_arg(OP, &q, key_mask)?;
    let (_, dev) = storage(OP, &q)?;
    let a = AttnArgs::new(s, has_mask, scale);
    let dd = CudaStorage::alloc(&dev, DType::F32, (s.batch * s.heads * s.lq).max(1))?;
    let dq = CudaStorage::alloc(&dev, q.dtype(), q.numel())?;
    let dk = CudaStorage::alloc(&dev, q.dtype(), k.numel())?;
    let dv = CudaStorage::alloc(&dev, q.dtype(), v.numel())?;
    let (qp, kp, vp) = (addr(OP, &q)?, addr(OP, &k)?, addr(OP, &v)?);
    let mp = match &m {
        Some(m) => addr(OP, m)?,
        None => qp,
    };
    let (op_, lp, gp) = (addr(OP, &out)?, addr(OP, &lse)?, addr(OP, &dout)?);
    let [pre, dqk, dkdv] = &names;
    if let Some(dims) = launch_dims_bwd_pre(&a) {
        dev.launch(pre, dims, &[KArg::Ptr(op_), KArg::Ptr(gp), KArg::Ptr(dd.ptr()), KArg::Attn(a)])?;
    }
    let common =
        [KArg::Ptr(qp), KArg::Ptr(kp), KArg::Ptr(vp), KArg::Ptr(mp), KArg::Ptr(lp), KArg::Ptr(dd.ptr())];
    if let Some(dims) = launch_dims_bwd_dq(&a) {
        let mut args = common.to_vec();
        args.extend([KArg::Ptr(gp), KArg::Ptr(dq.ptr()), KArg::Attn(a)]);
        dev.launch(dqk, dims, &args)?;
    }
    if let Some(dims) = launch_dims_bwd_dkdv(&a) {
        let mut args = common.to_vec();
        args.extend([KArg::Ptr(gp), KArg::Ptr(dk.ptr()), KArg::Ptr(dv.ptr()), KArg::Attn(a)]);
        dev.launch(dkdv, dims, &args)?;
    }
    Ok(AttentionGrads {
        dq: Tensor::from_cuda(dq, q.shape()),
        dk: Tensor::from_cuda(dk, k.shape()),
        dv: Tensor::from_cuda(dv, v.shape()),
    })
}
