//! GEMM: `C = alpha * A·B + beta * C` over strided matrices.
//!
//! (Placeholder: a correct triple loop with the final signature; the packed, register-tiled kernels
//! replace it.)

use crate::Float;

/// Read-only strided matrix view: element (i, j) is `data[offset + i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Mutable strided matrix view: element (i, j) is `data[offset + i*rs + j*cs]`.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// `C (m×n) = alpha * A (m×k) · B (k×n) + beta * C`. With `beta == 0`, C is overwritten (NaNs in C
/// are ignored), as in BLAS.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: MatMut<T>,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            for p in 0..k {
                acc += a.data[a.offset + i * a.rs + p * a.cs] * b.data[b.offset + p * b.rs + j * b.cs];
            }
            let ci = c.offset + i * c.rs + j * c.cs;
            c.data[ci] = if beta == T::ZERO { alpha * acc } else { alpha * acc + beta * c.data[ci] };
        }
    }
}

/// Batched GEMM: matrix `b_i` of A starts at `a.offset + i * a_bs` (likewise B, C). A batch stride
/// of 0 broadcasts that operand over the batch.
#[allow(clippy::too_many_arguments)]
pub fn gemm_batched<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    a_bs: usize,
    b: MatRef<T>,
    b_bs: usize,
    beta: T,
    c: MatMut<T>,
    c_bs: usize,
) {
    for i in 0..batch {
        gemm(
            m,
            n,
            k,
            alpha,
            MatRef { offset: a.offset + i * a_bs, ..a },
            MatRef { offset: b.offset + i * b_bs, ..b },
            beta,
            MatMut { data: &mut *c.data, offset: c.offset + i * c_bs, rs: c.rs, cs: c.cs },
        );
    }
}
