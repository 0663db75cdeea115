//! Reductions and softmax on the device: `reduce_{sum,mean,max,min,var,argmax,argmin}_<dt>` of
//! `kernels/src/reduce/reduce.cu` and `{log_,}softmax_{fwd,bwd}_<dt>` of
//! `kernels/src/softmax/softmax.cu` (argument lists in the families' `cuda.rs`). The reduced axes
//! (softmax: the softmax axis) are permuted last as a view; the kernels read it strided.

use super::{float_suffix, storage, strided};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Error, Result, Tensor};
use kernels::cuda_abi::LaunchDims;
use kernels::reduce::ReduceOp;

/// Rows up to this length are reduced by one warp, 8 rows per 256-thread block; longer rows get a
/// block each (reduce/cuda.rs `launch_dims`; the kernels are correct for any grid).
const WARP_ROW_MAX: usize = 1024;
const THREADS: u32 = 256;
const MAX_BLOCKS: usize = 65535;

/// The launch for `rows` rows of `len` elements (reduce, softmax and the norm row kernels).
pub(crate) fn rows_dims(rows: usize, len: usize) -> LaunchDims {
    let per_block = if len <= WARP_ROW_MAX { (THREADS / 32) as usize } else { 1 };
    let blocks = rows.div_ceil(per_block).clamp(1, MAX_BLOCKS) as u32;
    LaunchDims { grid: (blocks, 1, 1), block: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

fn missing(op: &'static str, name: &str, x: &Tensor) -> Result<()> {
    if has_kernel(name) { Ok(()) } else { Err(Error::NotImplementedOnDevice { op, device: x.device() }) }
}

/// `x` with `axes` (sorted, unique) moved last, and (n_out, n_red).
fn permuted(x: &Tensor, axes: &[usize]) -> Result<(Tensor, usize, usize)> {
    let kept: Vec<usize> = (0..x.rank()).filter(|d| !axes.contains(d)).collect();
    let order: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let n_out = kept.iter().map(|&d| x.shape()[d]).product();
    let n_red = axes.iter().map(|&d| x.shape()[d]).product();
    Ok((x.permute(&order)?, n_out, n_red))
}

/// `reduce_<op>_<dt>(x, xl, y, n_out, n_red[, correction])` (value) or
/// `reduce_arg<op>_<dt>(x, xl, y_i64, n_out, n_red)` (`arg`).
pub(crate) fn reduce(
    x: &Tensor,
    op: ReduceOp,
    axes: &[usize],
    arg: bool,
    out_shape: &[usize],
) -> Result<Tensor> {
    let name_op = if arg { "argmax/argmin" } else { "reduce" };
    let dt = float_suffix(name_op, x.dtype())?;
    let base = match (op, arg) {
        (ReduceOp::Max, true) => "argmax",
        (ReduceOp::Min, true) => "argmin",
        (_, true) => return Err(Error::invalid(name_op, format!("arg reduction of {op:?}"))),
        (ReduceOp::Sum, false) => "sum",
        (ReduceOp::Mean, false) => "mean",
        (ReduceOp::Max, false) => "max",
        (ReduceOp::Min, false) => "min",
        (ReduceOp::Var { .. }, false) => "var",
    };
    let name = format!("reduce_{base}_{dt}");
    missing(name_op, &name, x)?;
    let (p, n_out, n_red) = permuted(x, axes)?;
    let (xs, dev) = storage(name_op, x)?;
    let out_dtype = if arg { DType::I64 } else { x.dtype() };
    let y = CudaStorage::alloc(&dev, out_dtype, n_out)?;
    if n_out > 0 {
        let mut args = vec![
            KArg::Ptr(xs.ptr()),
            KArg::Strided(strided(name_op, &p)?),
            KArg::Ptr(y.ptr()),
            KArg::I64(n_out as i64),
            KArg::I64(n_red as i64),
        ];
        if let (ReduceOp::Var { correction }, false) = (op, arg) {
            args.push(KArg::I64(correction as i64));
        }
        dev.launch(&name, rows_dims(n_out, n_red), &args)?;
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
    let name = format!("{}softmax_fwd_{dt}", if log { "log_" } else { "" });
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
            rows_dims(rows, n),
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
    let name = format!("{}softmax_bwd_{dt}", if log { "log_" } else { "" });
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
            rows_dims(rows, n),
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
    fn row_launches_follow_the_reduce_family_rule() {
        let d = super::rows_dims(100, 64);
        assert_eq!((d.grid.0, d.block.0), (13, 256));
        assert_eq!(super::rows_dims(100, 5000).grid.0, 100);
        assert_eq!(super::rows_dims(0, 5).grid.0, 1);
        assert_eq!(super::rows_dims(10_000_000, 5000).grid.0, 65535);
        assert_eq!(super::last(4, 1), (vec![0, 2, 3, 1], vec![0, 3, 1, 2]));
    }
}
