//! Reductions and softmax on the device: `reduce_{sum,mean,max,min,var,argmax,argmin}_<dt>` of
//! `kernels/src/reduce/reduce.cu` and `{log_,}softmax_{fwd,bwd}_<dt>` of
//! `kernels/src/softmax/softmax.cu` (argument lists in the families' `cuda.rs`). The reduced axes
//! (softmax: the softmax axis) are permuted last as a view; the kernels read it strided.

use super::{float_suffix, storage, strided, too_many_dims};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Error, Result, Tensor};
use kernels::reduce::ReduceOp;
use kernels::reduce::cuda::{SplitPlan, kernel_name, launch_dims, permuted_arg, split_op_code};
use kernels::softmax::cuda as softmax_cuda;

fn missing(op: &'static str, name: &str, x: &Tensor) -> Result<()> {
    if has_kernel(name) { Ok(()) } else { Err(Error::NotImplementedOnDevice { op, device: x.device() }) }
}

/// `reduce_<op>_<dt>(x, xl, y, n_out, n_red[, correction])` (value) or
/// `reduce_arg<op>_<dt>(x, xl, y_i64, n_out, n_red)` (`arg`); for few long rows (when
/// [`SplitPlan::new`] says so and the build has them) the two split stages instead.
pub(crate) fn reduce(
    x: &Tensor,
    op: ReduceOp,
    axes: &[usize],
    arg: bool,
    out_shape: &[usize],
) -> Result<Tensor> {
    let name_op = if arg { "argmax/argmin" } else { "reduce" };
    let dt = float_suffix(name_op, x.dtype())?;
    if arg && !matches!(op, ReduceOp::Max | ReduceOp::Min) {
        return Err(Error::invalid(name_op, format!("arg reduction of {op:?}")));
    }
    let name = kernel_name(op, arg, dt);
    missing(name_op, &name, x)?;
    let (xl, n_out, n_red) = permuted_arg(x.layout(), axes).map_err(|e| too_many_dims(name_op, e))?;
    let (xs, dev) = storage(name_op, x)?;
    let out_dtype = if arg { DType::I64 } else { x.dtype() };
    let y = CudaStorage::alloc(&dev, out_dtype, n_out)?;
    let correction = match (op, arg) {
        (ReduceOp::Var { correction }, false) => Some(correction as i64),
        _ => None,
    };
    let split = [format!("reduce_split_partial_{dt}"), format!("reduce_split_finish_{dt}")];
    if let Some(plan) = SplitPlan::new(n_out, n_red).filter(|_| split.iter().all(|k| has_kernel(k))) {
        // Stage 1: f64 records (count and two statistics) per (row, chunk) into the workspace;
        // stage 2: one thread per row merges them in order and writes y (values) or yi (indices).
        let code = split_op_code(op, arg);
        let partial = dev.alloc(plan.workspace_len() * std::mem::size_of::<f64>())?;
        dev.launch(
            &split[0],
            plan.stage1(),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(xl),
                KArg::I64(n_out as i64),
                KArg::I64(n_red as i64),
                KArg::I64(plan.chunk as i64),
                KArg::I64(plan.chunks as i64),
                KArg::I32(code),
                KArg::Ptr(partial.ptr()),
            ],
        )?;
        let (yv, yi) = if arg { (0, y.ptr()) } else { (y.ptr(), 0) };
        dev.launch(
            &split[1],
            plan.stage2(),
            &[
                KArg::Ptr(partial.ptr()),
                KArg::I64(n_out as i64),
                KArg::I64(plan.chunks as i64),
                KArg::I32(code),
                KArg::I64(correction.unwrap_or(0)),
                KArg::Ptr(yv),
                KArg::Ptr(yi),
            ],
        )?;
        return Ok(Tensor::from_cuda(y, out_shape));
    }
    if n_out > 0 {
        let mut args = vec![
            KArg::Ptr(xs.ptr()),
            KArg::Strided(xl),
            KArg::Ptr(y.ptr()),
            KArg::I64(n_out as i64),
            KArg::I64(n_red as i64),
        ];
        args.extend(correction.map(KArg::I64));
        dev.launch(&name, launch_dims(n_out, n_red), &args)?;
    }
    Ok(Tensor::from_cuda(y, out_shape))
}

/// The permutation moving `d` last, and its inverse.
fn last(rank: usize, d: usize) -> (Vec<usize>, Vec<usize>) {
    let perm: Vec<usize> = (0..rank).filter(|&k| k != d).chain([d]).collect();
    let mut inv = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    (perm, inv)
}

/// `{log_,}softmax_fwd_<dt>(x, xl, y, rows, n)` along `d`.
pub(crate) fn softmax(x: &Tensor, d: usize, log: bool) -> Result<Tensor> {
    let op = "softmax";
    let dt = float_suffix(op, x.dtype())?;
    let name = softmax_cuda::kernel_name(log, false, dt);
    missing(op, &name, x)?;
    let (perm, inv) = last(x.rank(), d);
    let p = x.permute(&perm)?;
    let n = x.shape()[d];
    let rows = x.numel().checked_div(n).unwrap_or(0);
    let (xs, dev) = storage(op, x)?;
    let y = CudaStorage::alloc(&dev, x.dtype(), x.numel())?;
    if rows > 0 {
        dev.launch(
            &name,
            softmax_cuda::launch_dims(rows, n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided(op, &p)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(rows as i64),
                KArg::I64(n as i64),
            ],
        )?;
    }
    Tensor::from_cuda(y, p.shape()).permute(&inv)?.contiguous()
}

/// `{log_,}softmax_bwd_<dt>(y, dy, dx, rows, n)` along `d` (y, dy permuted last and contiguous).
pub(crate) fn softmax_backward(y: &Tensor, dy: &Tensor, d: usize, log: bool) -> Result<Tensor> {
    let op = "softmax_backward";
    let dt = float_suffix(op, y.dtype())?;
    let name = softmax_cuda::kernel_name(log, true, dt);
    missing(op, &name, y)?;
    let (perm, inv) = last(y.rank(), d);
    let yp = y.permute(&perm)?.contiguous()?;
    let gp = dy.permute(&perm)?.contiguous()?;
    let n = y.shape()[d];
    let rows = y.numel().checked_div(n).unwrap_or(0);
    let (ys, dev) = storage(op, &yp)?;
    let (gs, _) = storage(op, &gp)?;
    let dx = CudaStorage::alloc(&dev, y.dtype(), y.numel())?;
    if rows > 0 {
        dev.launch(
            &name,
            softmax_cuda::launch_dims(rows, n),
            &[
                KArg::Ptr(ys.ptr_at(yp.offset())),
                KArg::Ptr(gs.ptr_at(gp.offset())),
                KArg::Ptr(dx.ptr()),
                KArg::I64(rows as i64),
                KArg::I64(n as i64),
            ],
        )?;
    }
    Tensor::from_cuda(dx, yp.shape()).permute(&inv)?.contiguous()
}

#[cfg(test)]
mod tests {
    #[test]
    fn softmax_axis_moves_last_and_back() {
        assert_eq!(super::last(4, 1), (vec![0, 2, 3, 1], vec![0, 3, 1, 2]));
    }
}
