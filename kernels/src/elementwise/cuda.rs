//! The CUDA side of the elementwise family (`elementwise.cu`): op codes and launch shapes shared by
//! the GPU runtime and the emulator tests.

use super::{BinaryOp, CmpOp, UnaryOp};
use crate::cuda_abi::LaunchDims;

/// Threads per block of the elementwise kernels (grid-stride loops).
pub const THREADS: u32 = 256;
/// Most blocks launched; enough to fill an H100 (132 SMs × 8 resident blocks of 256 threads).
pub const MAX_BLOCKS: u32 = 132 * 8;

/// The launch for `n` elements.
pub fn launch_dims(n: usize) -> LaunchDims {
    LaunchDims::linear(n, THREADS, MAX_BLOCKS)
}

impl UnaryOp {
    /// `(op code, p0, p1)` as the `unary_*` kernels take them (`enum UnaryCode` in the .cu).
    pub fn cuda_code(self) -> (i32, f64, f64) {
        match self {
            UnaryOp::Neg => (0, 0.0, 0.0),
            UnaryOp::Abs => (1, 0.0, 0.0),
            UnaryOp::Exp => (2, 0.0, 0.0),
            UnaryOp::Log => (3, 0.0, 0.0),
            UnaryOp::Sqrt => (4, 0.0, 0.0),
            UnaryOp::Rsqrt => (5, 0.0, 0.0),
            UnaryOp::Sqr => (6, 0.0, 0.0),
            UnaryOp::Recip => (7, 0.0, 0.0),
            UnaryOp::Tanh => (8, 0.0, 0.0),
            UnaryOp::Sigmoid => (9, 0.0, 0.0),
            UnaryOp::Silu => (10, 0.0, 0.0),
            UnaryOp::Gelu => (11, 0.0, 0.0),
            UnaryOp::GeluTanh => (12, 0.0, 0.0),
            UnaryOp::Relu => (13, 0.0, 0.0),
            UnaryOp::Sin => (14, 0.0, 0.0),
            UnaryOp::Cos => (15, 0.0, 0.0),
            UnaryOp::Erf => (16, 0.0, 0.0),
            UnaryOp::Sign => (17, 0.0, 0.0),
            UnaryOp::Powf(e) => (18, e, 0.0),
            UnaryOp::Affine { mul, add } => (19, mul, add),
            UnaryOp::Clamp { min, max } => (20, min, max),
        }
    }
}

impl BinaryOp {
    /// The op code of the `binary_*` kernels (`enum BinaryCode`).
    pub fn cuda_code(self) -> i32 {
        match self {
            BinaryOp::Add => 0,
            BinaryOp::Sub => 1,
            BinaryOp::Mul => 2,
            BinaryOp::Div => 3,
            BinaryOp::Pow => 4,
            BinaryOp::Maximum => 5,
            BinaryOp::Minimum => 6,
        }
    }
}

impl CmpOp {
    /// The op code of the `compare_*` kernels (`enum CmpCode`).
    pub fn cuda_code(self) -> i32 {
        match self {
            CmpOp::Eq => 0,
            CmpOp::Ne => 1,
            CmpOp::Lt => 2,
            CmpOp::Le => 3,
            CmpOp::Gt => 4,
            CmpOp::Ge => 5,
        }
    }
}
