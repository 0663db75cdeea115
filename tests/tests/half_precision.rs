//! Cross-crate property: every f16/bf16 op equals the f32 op applied to the same (rounded) inputs,
//! then rounded to the half type. The CPU computes half types in f32 (tensor → kernels), so the only
//! difference allowed is the final rounding: |half − f32| ≤ 1 ulp of the half type at that magnitude
//! (rel 2⁻⁸ for bf16, 2⁻¹¹ for f16) plus a tiny absolute floor for results near 0.

use proptest::prelude::*;
use tensor::{BinaryOp, DType, Tensor, Tolerance, UnaryOp};

const UNARY: [UnaryOp; 12] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Sqr,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::Gelu,
    UnaryOp::Relu,
    UnaryOp::Sin,
    UnaryOp::Erf,
    UnaryOp::Affine { mul: 0.5, add: 0.25 },
];
const BINARY: [BinaryOp; 5] =
    [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Maximum, BinaryOp::Minimum];

fn tol(dt: DType) -> Tolerance {
    match dt {
        DType::BF16 => Tolerance::new(1.0 / 256.0, 1e-6),
        _ => Tolerance::new(1.0 / 2048.0, 1e-7),
    }
}

fn input(shape: &[usize], seed: u64, dt: DType) -> Tensor {
    // inputs are rounded to the half type first, so both paths see identical values
    Tensor::randn(shape, 0.0, 1.5, seed, 0, DType::F32).unwrap().to_dtype(dt).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn half_unary_equals_rounded_f32(shape in prop::collection::vec(1usize..6, 1..4), op in 0usize..12, bf in any::<bool>(), seed in any::<u64>()) {
        let dt = if bf { DType::BF16 } else { DType::F16 };
        let x = input(&shape, seed, dt);
        let half = x.unary(UNARY[op]).unwrap();
        prop_assert_eq!(half.dtype(), dt);
        let full = x.to_dtype(DType::F32).unwrap().unary(UNARY[op]).unwrap();
        if let Err(m) = tol(dt).check(&half.to_vec_f64(), &full.to_vec_f64()) {
            return Err(TestCaseError::fail(format!("{:?} {dt}: {m}", UNARY[op])));
        }
    }

    #[test]
    fn half_binary_and_reductions_equal_rounded_f32(shape in prop::collection::vec(1usize..6, 2..4), op in 0usize..5, bf in any::<bool>(), seed in any::<u64>()) {
        let dt = if bf { DType::BF16 } else { DType::F16 };
        let a = input(&shape, seed, dt).transpose(0, 1).unwrap(); // non-contiguous
        let b = input(&[*a.shape().last().unwrap()], seed ^ 1, dt); // broadcast over the leading dims
        let half = a.binary(BINARY[op], &b).unwrap();
        let full = a.to_dtype(DType::F32).unwrap().binary(BINARY[op], &b.to_dtype(DType::F32).unwrap()).unwrap();
        if let Err(m) = tol(dt).check(&half.to_vec_f64(), &full.to_vec_f64()) {
            return Err(TestCaseError::fail(format!("{:?} {dt}: {m}", BINARY[op])));
        }
        let hs = a.sum(&[0], false).unwrap();
        let fs = a.to_dtype(DType::F32).unwrap().sum(&[0], false).unwrap();
        prop_assert_eq!(hs.dtype(), dt);
        if let Err(m) = tol(dt).check(&hs.to_vec_f64(), &fs.to_vec_f64()) {
            return Err(TestCaseError::fail(format!("sum {dt}: {m}")));
        }
    }
}
