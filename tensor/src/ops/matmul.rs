//! Matrix multiplication with batch broadcasting (`torch.matmul` semantics).
//!
//! Transposed or otherwise strided operands are passed to the GEMM with their strides (no copy);
//! batch dimensions are copied only when they cannot be addressed with one batch stride.

use super::FloatElem;
use crate::views::{broadcast_layout, broadcast_shape, view_strides};
use crate::{Error, Result, Tensor};
use kernels::gemm::{MatMut, MatRef, gemm_batched};
use kernels::pool::PooledVec;

/// One operand as (tensor, batch stride) with all batch dims folded into a single stride.
fn fold_batch(t: Tensor, batch: &[usize]) -> Result<(Tensor, usize)> {
    let r = t.rank();
    let nb: usize = batch.iter().product();
    if let Some(s) = view_strides(batch, &t.strides()[..r - 2], &[nb]) {
        return Ok((t, s[0]));
    }
    let c = t.contiguous()?;
    let s = c.shape()[r - 2] * c.shape()[r - 1];
    Ok((c, s))
}

#[allow(clippy::too_many_arguments)]
fn matmul_impl<T: FloatElem>(
    a: &Tensor,
    a_bs: usize,
    b: &Tensor,
    b_bs: usize,
    nb: usize,
    m: usize,
    k: usize,
    n: usize,
) -> PooledVec<T> {
    let mut out = PooledVec::<T>::zeros(nb * m * n);
    let (ra, rb) = (a.rank(), b.rank());
    gemm_batched(
        nb,
        m,
        n,
        k,
        T::ONE,
        MatRef { data: a.data::<T>(), offset: a.offset(), rs: a.strides()[ra - 2], cs: a.strides()[ra - 1] },
        a_bs,
        MatRef { data: b.data::<T>(), offset: b.offset(), rs: b.strides()[rb - 2], cs: b.strides()[rb - 1] },
        b_bs,
        T::ZERO,
        MatMut { data: &mut out, offset: 0, rs: n, cs: 1 },
        m * n,
    );
    out
}

impl Tensor {
    /// `self @ other`. Rank-1 operands are treated as a row (left) or column (right) vector and that
    /// dimension is removed from the result; leading batch dims broadcast.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.check_same("matmul", other)?;
        if self.rank() == 0 || other.rank() == 0 {
            return Err(Error::RankMismatch {
                op: "matmul",
                expected: ">= 1".into(),
                shape: if self.rank() == 0 { self.shape().to_vec() } else { other.shape().to_vec() },
            });
        }
        let a = if self.rank() == 1 { self.unsqueeze(0)? } else { self.clone() };
        let b = if other.rank() == 1 { other.unsqueeze(-1)? } else { other.clone() };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
            });
        }
        let batch = broadcast_shape(&a.shape()[..ra - 2], &b.shape()[..rb - 2]).ok_or_else(|| {
            Error::BroadcastIncompatible {
                op: "matmul",
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
            }
        })?;
        let nb: usize = batch.iter().product();
        let full = |t: &Tensor, r: usize, x: usize, y: usize| -> Tensor {
            let mut s = batch.clone();
            s.extend([x, y]);
            let l = broadcast_layout(t.layout(), &s).expect("batch dims broadcast");
            debug_assert_eq!(l.rank(), r.max(s.len()));
            t.with_layout(l)
        };
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        // The GPU GEMMs take every float dtype natively (f16/bf16 on tensor cores, f32 accumulation).
        let on_cpu = self.device().is_cpu();
        let widen = |t: &Tensor| if on_cpu { t.float_input("matmul") } else { Ok(t.clone()) };
        let a = full(&widen(&a)?, ra, m, k);
        let b = full(&widen(&b)?, rb, k, n);
        let (a, a_bs) = fold_batch(a, &batch)?;
        let (b, b_bs) = fold_batch(b, &batch)?;
        let out = match a.dtype() {
            #[cfg(feature = "cuda")]
            _ if !on_cpu => crate::cuda::ops::matmul::gemm(&a, a_bs, &b, b_bs, [nb, m, k, n], &out_shape)?,
            crate::DType::F32 => {
                Tensor::from_pooled(matmul_impl::<f32>(&a, a_bs, &b, b_bs, nb, m, k, n), &out_shape)
            }
            crate::DType::F64 => {
                Tensor::from_pooled(matmul_impl::<f64>(&a, a_bs, &b, b_bs, nb, m, k, n), &out_shape)
            }
            d => unreachable!("matmul inputs are widened to f32/f64, got {d}"),
        };
        let mut out = out;
        if self.rank() == 1 {
            out = out.squeeze(-2)?;
        }
        if other.rank() == 1 {
            out = out.squeeze(-1)?;
        }
        out.cast_back(self.dtype())
    }
}
