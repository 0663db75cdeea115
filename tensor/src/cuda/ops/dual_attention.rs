//! Dual attention on the device (the MDM block's self + cross pattern): the fused kernels of
//! `kernels/src/attention/dual.cu` plus the single-attention dK/dV kernel once per branch (argument
//! lists and launch shapes in `kernels/src/attention/dual_cuda.rs`). f32, bf16 and f16 (16-bit
//! storage, f32 math); `lse1`/`lse2` are f32 for every dtype; head dims ≤ 128.

use super::storage;
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::ops::dual_attention::{DualAttentionGrads, DualAttentionOutput};
use crate::{DType, Error, Result, Tensor};
use kernels::attention::DualAttentionShape;
use kernels::attention::dual_cuda::{self, DualAttnArgs};

fn suffix(op: &'static str, s: &DualAttentionShape, q: &Tensor) -> Result<&'static str> {
    let dt = match q.dtype() {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => return Err(Error::NotImplementedOnDevice { op, device: q.device() }),
        d => {
            return Err(Error::UnsupportedDType { op, dtype: d, expected: "a float dtype (f32, f16, bf16)" });
        }
    };
    if !dual_cuda::supported(s) {
        return Err(Error::NotImplementedOnDeviceFor {
            op,
            device: q.device(),
            what: format!("head dims d = {}, dv = {} (the CUDA kernels take d, dv ≤ 128)", s.d, s.dv),
        });
    }
    Ok(dt)
}

fn need(op: &'static str, names: &[String], q: &Tensor) -> Result<()> {
    if names.iter().all(|n| has_kernel(n)) {
        Ok(())
    } else {
        Err(Error::NotImplementedOnDevice { op, device: q.device() })
    }
}

/// Device address of a contiguous tensor's first element.
fn addr(op: &'static str, t: &Tensor) -> Result<u64> {
    Ok(storage(op, t)?.0.ptr_at(t.offset()))
}

/// Contiguous masks (u8, validated by the op) and their addresses; `fallback` stands in for an
/// absent mask (never read: `has_mask_b = 0`).
fn masks(
    op: &'static str,
    m: [Option<&Tensor>; 2],
    fallback: u64,
) -> Result<([Option<Tensor>; 2], [u64; 2])> {
    let c = [m[0].map(|m| m.contiguous()).transpose()?, m[1].map(|m| m.contiguous()).transpose()?];
    let mut p = [fallback; 2];
    for (i, t) in c.iter().enumerate() {
        if let Some(t) = t {
            p[i] = addr(op, t)?;
        }
    }
    Ok((c, p))
}

/// `dual_attn_fwd_<dt>(q, k1, v1, mask1, k2, v2, mask2, out, out1, out2, lse1, lse2, args)`.
pub(crate) fn forward(
    s: &DualAttentionShape,
    x: [&Tensor; 5],
    mask1: Option<&Tensor>,
    mask2: Option<&Tensor>,
    scale: f64,
) -> Result<DualAttentionOutput> {
    let op = "dual_attention";
    let dt = suffix(op, s, x[0])?;
    let kernel = format!("dual_attn_fwd_{dt}");
    need(op, std::slice::from_ref(&kernel), x[0])?;
    let c = x.map(|t| t.contiguous()).into_iter().collect::<Result<Vec<Tensor>>>()?;
    let (_, dev) = storage(op, &c[0])?;
    let p = c.iter().map(|t| addr(op, t)).collect::<Result<Vec<u64>>>()?;
    let (_keep, mp) = masks(op, [mask1, mask2], p[0])?;
    let (lo, ll) = s.out_lens();
    let dtype = x[0].dtype();
    let (out, out1, out2) = (
        CudaStorage::alloc(&dev, dtype, lo)?,
        CudaStorage::alloc(&dev, dtype, lo)?,
        CudaStorage::alloc(&dev, dtype, lo)?,
    );
    let (lse1, lse2) = (CudaStorage::alloc(&dev, DType::F32, ll)?, CudaStorage::alloc(&dev, DType::F32, ll)?);
    let a = DualAttnArgs::new(s, mask1.is_some(), mask2.is_some(), scale);
    if let Some(dims) = dual_cuda::launch_dims_fwd(&a) {
        let ptrs = [
            p[0],
            p[1],
            p[2],
            mp[0],
            p[3],
            p[4],
            mp[1],
            out.ptr(),
            out1.ptr(),
            out2.ptr(),
            lse1.ptr(),
            lse2.ptr(),
        ];
        let mut args: Vec<KArg> = ptrs.iter().map(|&v| KArg::Ptr(v)).collect();
        args.push(KArg::DualAttn(a));
        dev.launch(&kernel, dims, &args)?;
    }
    let os = [s.batch, s.heads, s.lq, s.dv];
    let ls = [s.batch, s.heads, s.lq];
    Ok(DualAttentionOutput {
        out: Tensor::from_cuda(out, &os),
        out1: Tensor::from_cuda(out1, &os),
        out2: Tensor::from_cuda(out2, &os),
        lse1: Tensor::from_cuda(lse1, &ls),
        lse2: Tensor::from_cuda(lse2, &ls),
    })
}

/// `dual_attn_bwd_pre_<dt>`, then `dual_attn_bwd_dq_<dt>` and `flash_attn_bwd_dkdv_<dt>` per branch.
pub(crate) fn backward(
    s: &DualAttentionShape,
    x: [&Tensor; 5],
    mask1: Option<&Tensor>,
    mask2: Option<&Tensor>,
    scale: f64,
    saved: &DualAttentionOutput,
    dout: &Tensor,
) -> Result<DualAttentionGrads> {
    let op = "dual_attention_backward";
    let dt = suffix(op, s, x[0])?;
    let k = [
        format!("dual_attn_bwd_pre_{dt}"),
        format!("dual_attn_bwd_dq_{dt}"),
        format!("flash_attn_bwd_dkdv_{dt}"),
    ];
    need(op, &k, x[0])?;
    let dtype = x[0].dtype();
    let c = x.map(|t| t.contiguous()).into_iter().collect::<Result<Vec<Tensor>>>()?;
    let (_, dev) = storage(op, &c[0])?;
    let p = c.iter().map(|t| addr(op, t)).collect::<Result<Vec<u64>>>()?;
    let (_keep, mp) = masks(op, [mask1, mask2], p[0])?;
    // Saved state in the layouts the kernels read: out_b and dout in the input dtype, lse_b in f32.
    let sv = [
        saved.out1.to_dtype(dtype)?.contiguous()?,
        saved.out2.to_dtype(dtype)?.contiguous()?,
        saved.lse1.to_dtype(DType::F32)?.contiguous()?,
        saved.lse2.to_dtype(DType::F32)?.contiguous()?,
        dout.to_dtype(dtype)?.contiguous()?,
    ];
    let sp = sv.iter().map(|t| addr(op, t)).collect::<Result<Vec<u64>>>()?;
    let (_, ll) = s.out_lens();
    let (dd1, dd2) = (CudaStorage::alloc(&dev, DType::F32, ll)?, CudaStorage::alloc(&dev, DType::F32, ll)?);
    let g: Vec<CudaStorage> =
        c.iter().map(|t| CudaStorage::alloc(&dev, dtype, t.numel())).collect::<Result<_>>()?;
    let a = DualAttnArgs::new(s, mask1.is_some(), mask2.is_some(), scale);
    let ptrs = |v: &[u64]| v.iter().map(|&p| KArg::Ptr(p)).collect::<Vec<KArg>>();
    if let Some(dims) = dual_cuda::launch_dims_bwd_pre(&a) {
        let mut args = ptrs(&[sp[0], sp[1], sp[4], dd1.ptr(), dd2.ptr()]);
        args.push(KArg::DualAttn(a));
        dev.launch(&k[0], dims, &args)?;
    }
    if let Some(dims) = dual_cuda::launch_dims_bwd_dq(&a) {
        let mut args = ptrs(&[
            p[0],
            p[1],
            p[2],
            mp[0],
            p[3],
            p[4],
            mp[1],
            sp[2],
            sp[3],
            dd1.ptr(),
            dd2.ptr(),
            sp[4],
            g[0].ptr(),
        ]);
        args.push(KArg::DualAttn(a));
        dev.launch(&k[1], dims, &args)?;
    }
    // Branch b: k_b = c[2b - 1], v_b = c[2b], lse_b = sv[b + 1], dd_b.
    for (b, dd) in [(1usize, &dd1), (2, &dd2)] {
        if let Some(dims) = dual_cuda::launch_dims_bwd_dkdv(&a, b) {
            let (kb, vb) = (2 * b - 1, 2 * b);
            let mut args =
                ptrs(&[p[0], p[kb], p[vb], mp[b - 1], sp[b + 1], dd.ptr(), sp[4], g[kb].ptr(), g[vb].ptr()]);
            args.push(KArg::Attn(a.branch(b)));
            dev.launch(&k[2], dims, &args)?;
        }
    }
    let mut g = g.into_iter();
    let mut next = |t: &Tensor| Tensor::from_cuda(g.next().expect("five gradients"), t.shape());
    Ok(DualAttentionGrads {
        dq: next(&c[0]),
        dk1: next(&c[1]),
        dv1: next(&c[2]),
        dk2: next(&c[3]),
        dv2: next(&c[4]),
    })
}
