//! The fused AdamW update (`kernels::optim`): one pass over parameter, gradient and both moments,
//! bit-identical to the op sequence of `nn::optim::AdamW` on every device (f32 and f64; see
//! [`kernels::optim::adamw_step`] for the exact roundings).

use super::{FloatElem, dispatch_float};
use crate::{DType, Error, Result, Tensor};
use kernels::optim::{AdamWScalars, adamw_step};
use kernels::pool::PooledVec;

/// The result of [`Tensor::adamw_step`]: the updated parameter and moments (new tensors).
#[derive(Clone, Debug)]
pub struct AdamWUpdate {
    pub param: Tensor,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
}

fn cpu_step<T: FloatElem>(
    s: &AdamWScalars,
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
) -> Result<AdamWUpdate> {
    let copy = |t: &Tensor| -> Result<PooledVec<T>> {
        let c = t.contiguous()?;
        let mut out = PooledVec::<T>::zeros(c.numel());
        out.copy_from_slice(c.contiguous_data::<T>());
        Ok(out)
    };
    let (mut pv, mut mv, mut vv) = (copy(p)?, copy(m)?, copy(v)?);
    let g = g.contiguous()?;
    adamw_step(s, &mut pv, g.contiguous_data::<T>(), &mut mv, &mut vv);
    let shape = p.shape();
    Ok(AdamWUpdate {
        param: Tensor::from_pooled(pv, shape),
        exp_avg: Tensor::from_pooled(mv, shape),
        exp_avg_sq: Tensor::from_pooled(vv, shape),
    })
}

impl Tensor {
    /// One fused AdamW step of `param` from `grad` with moments `exp_avg`/`exp_avg_sq` and the
    /// per-step scalars `s` ([`AdamWScalars::new`]). All four tensors must have the same shape,
    /// dtype (f32 or f64: keep f32 master weights for half-precision models) and device; any
    /// layout. Returns new tensors; the inputs are not modified.
    pub fn adamw_step(
        param: &Tensor,
        grad: &Tensor,
        exp_avg: &Tensor,
        exp_avg_sq: &Tensor,
        s: &AdamWScalars,
    ) -> Result<AdamWUpdate> {
        const OP: &str = "adamw_step";
        for t in [grad, exp_avg, exp_avg_sq] {
            if t.shape() != param.shape() {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: param.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
            if t.dtype() != param.dtype() {
                return Err(Error::DTypeMismatch { op: OP, lhs: param.dtype(), rhs: t.dtype() });
            }
            if t.device() != param.device() {
                return Err(Error::DeviceMismatch { op: OP, lhs: param.device(), rhs: t.device() });
            }
        }
        if !matches!(param.dtype(), DType::F32 | DType::F64) {
            return Err(Error::UnsupportedDType {
                op: OP,
                dtype: param.dtype(),
                expected: "f32 or f64 (keep f32 master weights for f16/bf16 models)",
            });
        }
        #[cfg(feature = "cuda")]
        if !param.device().is_cpu() {
            return crate::cuda::ops::optim::adamw_step(param, grad, exp_avg, exp_avg_sq, s);
        }
        param.require_cpu(OP)?;
        dispatch_float!(param, cpu_step(s, param, grad, exp_avg, exp_avg_sq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::optim::AdamWHyper;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape).unwrap()
    }

    #[test]
    fn matches_the_kernel_on_strided_views_and_leaves_inputs_alone() {
        let h = AdamWHyper { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1 };
        let s = AdamWScalars::new(&h, 3);
        let p: Vec<f32> = (0..6).map(|i| i as f32 * 0.3 - 1.0).collect();
        let g: Vec<f32> = (0..6).map(|i| (i as f32 * 0.7).sin()).collect();
        let m: Vec<f32> = (0..6).map(|i| i as f32 * 0.01).collect();
        let v: Vec<f32> = (0..6).map(|i| i as f32 * 0.02 + 0.001).collect();
        // Transposed views: the op must read through the layout.
        let view = |x: &[f32]| t(x, &[3, 2]).transpose(0, 1).unwrap();
        let u = Tensor::adamw_step(&view(&p), &view(&g), &view(&m), &view(&v), &s).unwrap();
        let (mut pe, mut me, mut ve) = (p.clone(), m.clone(), v.clone());
        adamw_step(&s, &mut pe, &g, &mut me, &mut ve);
        let back = |x: &Tensor| x.transpose(0, 1).unwrap().contiguous().unwrap().to_vec::<f32>().unwrap();
        assert_eq!(back(&u.param), pe);
        assert_eq!(back(&u.exp_avg), me);
        assert_eq!(back(&u.exp_avg_sq), ve);
        assert_ne!(pe, p, "the step must move the parameter");
        assert_eq!(view(&p).transpose(0, 1).unwrap().contiguous().unwrap().to_vec::<f32>().unwrap(), p);
    }

    #[test]
    fn mismatches_are_typed_errors() {
        let s = AdamWScalars::new(
            &AdamWHyper { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
            1,
        );
        let a = t(&[1.0, 2.0], &[2]);
        let b = t(&[1.0, 2.0, 3.0], &[3]);
        assert!(matches!(Tensor::adamw_step(&a, &b, &a, &a, &s), Err(Error::ShapeMismatch { .. })));
        let h = a.to_dtype(DType::BF16).unwrap();
        assert!(matches!(Tensor::adamw_step(&h, &h, &h, &h, &s), Err(Error::UnsupportedDType { .. })));
        let d = a.to_dtype(DType::F64).unwrap();
        assert!(matches!(Tensor::adamw_step(&a, &d, &a, &a, &s), Err(Error::DTypeMismatch { .. })));
    }
}
