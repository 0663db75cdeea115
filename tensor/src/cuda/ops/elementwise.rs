//! Unary (forward/backward), broadcasting binary and comparison ops: the `unary_*`,
//! `unary_backward_*`, `binary_*` and `compare_*` kernels of `kernels/src/elementwise/elementwise.cu`.

use super::{float_suffix, same_device, storage, strided};
use crate::cuda::{CudaStorage, KArg};
use crate::{DType, Result, Tensor};
use kernels::elementwise::cuda::launch_dims;
use kernels::elementwise::{BinaryOp, CmpOp, UnaryOp};

/// `unary_<dt>(x, xl, y, n, op, p0, p1)`.
pub(crate) fn unary(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let dt = float_suffix("unary", x.dtype())?;
    let (xs, dev) = storage("unary", x)?;
    let n = x.numel();
    let y = CudaStorage::alloc(&dev, x.dtype(), n)?;
    if n > 0 {
        let (code, p0, p1) = op.cuda_code();
        dev.launch(
            &format!("unary_{dt}"),
            launch_dims(n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided("unary", x)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
                KArg::I32(code),
                KArg::F64(p0),
                KArg::F64(p1),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, x.shape()))
}

/// `unary_backward_<dt>(x, xl, dy, dx, n, op, p0, p1)`; `dy` contiguous.
pub(crate) fn unary_backward(x: &Tensor, op: UnaryOp, dy: &Tensor) -> Result<Tensor> {
    same_device("unary_backward", &[x, dy])?;
    let dt = float_suffix("unary_backward", x.dtype())?;
    let dy = dy.contiguous()?;
    let (xs, dev) = storage("unary_backward", x)?;
    let (ds, _) = storage("unary_backward", &dy)?;
    let n = x.numel();
    let dx = CudaStorage::alloc(&dev, x.dtype(), n)?;
    if n > 0 {
        let (code, p0, p1) = op.cuda_code();
        dev.launch(
            &format!("unary_backward_{dt}"),
            launch_dims(n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided("unary_backward", x)?),
                KArg::Ptr(ds.ptr_at(dy.offset())),
                KArg::Ptr(dx.ptr()),
                KArg::I64(n as i64),
                KArg::I32(code),
                KArg::F64(p0),
                KArg::F64(p1),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(dx, x.shape()))
}

/// `binary_<dt>(a, al, b, bl, y, n, op)` / `compare_<dt>(a, al, b, bl, y_u8, n, op)` on operands
/// already expanded to one shape.
fn binary_like(name: &'static str, code: i32, a: &Tensor, b: &Tensor, out: DType) -> Result<Tensor> {
    same_device(name, &[a, b])?;
    let dt = float_suffix(name, a.dtype())?;
    let (as_, dev) = storage(name, a)?;
    let (bs, _) = storage(name, b)?;
    let n = a.numel();
    let y = CudaStorage::alloc(&dev, out, n)?;
    if n > 0 {
        dev.launch(
            &format!("{name}_{dt}"),
            launch_dims(n),
            &[
                KArg::Ptr(as_.ptr()),
                KArg::Strided(strided(name, a)?),
                KArg::Ptr(bs.ptr()),
                KArg::Strided(strided(name, b)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
                KArg::I32(code),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, a.shape()))
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_like("binary", op.cuda_code(), a, b, a.dtype())
}

pub(crate) fn compare(op: CmpOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary_like("compare", op.cuda_code(), a, b, DType::U8)
}
