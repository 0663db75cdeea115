//! The fused AdamW step on the GPU: `adamw_step_<f32|f64>` of `kernels/src/optim/adamw.cu`
//! (arguments in `kernels::optim::cuda`), run in place on fresh contiguous copies of the parameter
//! and moments so that the op stays functional like its CPU path.

use super::{float_suffix, same_device, storage};
use crate::cuda::KArg;
use crate::ops::optim::AdamWUpdate;
use crate::{Result, Tensor};
use kernels::optim::AdamWScalars;
use kernels::optim::cuda::{launch_dims, scalar_args};

/// `adamw_step_<dt>(param, grad, exp_avg, exp_avg_sq, n, decay, apply_decay, beta1, 1-beta1, beta2,
/// 1-beta2, 1/sqrt(1-beta2^t), eps, step_size)`.
pub(crate) fn adamw_step(
    param: &Tensor,
    grad: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    s: &AdamWScalars,
) -> Result<AdamWUpdate> {
    const OP: &str = "adamw_step";
    same_device(OP, &[param, grad, exp_avg, exp_avg_sq])?;
    let dt = float_suffix(OP, param.dtype())?;
    let (p, m, v) = (param.deep_clone()?, exp_avg.deep_clone()?, exp_avg_sq.deep_clone()?);
    let g = grad.contiguous()?;
    let n = p.numel();
    if n > 0 {
        let (ps, dev) = storage(OP, &p)?;
        let (gs, _) = storage(OP, &g)?;
        let (ms, _) = storage(OP, &m)?;
        let (vs, _) = storage(OP, &v)?;
        let (decay, apply, b1, omb1, b2, omb2, ibc2, eps, step) = scalar_args(s);
        dev.launch(
            &format!("adamw_step_{dt}"),
            launch_dims(n),
            &[
                KArg::Ptr(ps.ptr_at(p.offset())),
                KArg::Ptr(gs.ptr_at(g.offset())),
                KArg::Ptr(ms.ptr_at(m.offset())),
                KArg::Ptr(vs.ptr_at(v.offset())),
                KArg::I64(n as i64),
                KArg::F64(decay),
                KArg::I32(apply),
                KArg::F64(b1),
                KArg::F64(omb1),
                KArg::F64(b2),
                KArg::F64(omb2),
                KArg::F64(ibc2),
                KArg::F64(eps),
                KArg::F64(step),
            ],
        )?;
    }
    Ok(AdamWUpdate { param: p, exp_avg: m, exp_avg_sq: v })
}
