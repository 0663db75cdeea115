//! Views against a naive index-math reference: every view must address exactly the elements the
//! definition says, for any starting layout.

mod common;
use common::{flat, indices, seq};
use proptest::prelude::*;
use tensor::{Error, Tensor};

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn permute_matches_index_math(shape in shape_strategy(), seed in any::<u64>()) {
        let t = seq(&shape);
        let mut perm: Vec<usize> = (0..shape.len()).collect();
        // Fisher-Yates with the seed
        let mut s = seed;
        for i in (1..perm.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        let p = t.permute(&perm).unwrap();
        prop_assert!(p.same_storage(&t));
        let vals = t.to_vec_f64();
        let got = p.to_vec_f64();
        for (k, idx) in indices(p.shape()).iter().enumerate() {
            let mut src = vec![0; shape.len()];
            for (i, &pi) in perm.iter().enumerate() { src[pi] = idx[i]; }
            prop_assert_eq!(got[k], vals[flat(&shape, &src)]);
        }
        // contiguous() copies the same values, and reshape round-trips them
        let c = p.contiguous().unwrap();
        prop_assert!(c.is_contiguous());
        prop_assert_eq!(c.to_vec_f64(), got.clone());
        let n = p.numel();
        prop_assert_eq!(p.reshape(&[n]).unwrap().to_vec_f64(), got);
    }

    #[test]
    fn narrow_then_expand_matches_index_math(shape in prop::collection::vec(1usize..5, 1..4), a in 0usize..4, b in 0usize..4) {
        let t = seq(&shape);
        let d = a % shape.len();
        let start = b % shape[d];
        let len = shape[d] - start;
        let v = t.narrow(d as isize, start, len).unwrap();
        let vals = t.to_vec_f64();
        let got = v.to_vec_f64();
        for (k, idx) in indices(v.shape()).iter().enumerate() {
            let mut src = idx.clone();
            src[d] += start;
            prop_assert_eq!(got[k], vals[flat(&shape, &src)]);
        }
        // expand a size-1 slice along d back to shape[d] copies
        let one = t.narrow(d as isize, start, 1).unwrap();
        let e = one.expand(&shape).unwrap();
        if shape[d] > 1 {
            prop_assert_eq!(e.strides()[d], 0);
        }
        let eg = e.to_vec_f64();
        for (k, idx) in indices(&shape).iter().enumerate() {
            let mut src = idx.clone();
            src[d] = start;
            prop_assert_eq!(eg[k], vals[flat(&shape, &src)]);
        }
    }

    #[test]
    fn reshape_views_when_possible_and_copies_otherwise(shape in prop::collection::vec(1usize..5, 2..4)) {
        let t = seq(&shape);
        let n = t.numel();
        // a contiguous tensor always views
        let v = t.view(&[n]).unwrap();
        prop_assert!(v.same_storage(&t));
        // a transposed one (with both dims > 1) cannot be flattened without a copy
        let tt = t.transpose(0, 1).unwrap();
        let r = tt.reshape(&[n]).unwrap();
        prop_assert_eq!(r.to_vec_f64(), tt.to_vec_f64());
        if shape[0] > 1 && shape[1] > 1 {
            let is_not_viewable = matches!(tt.view(&[n]), Err(Error::NotViewable { .. }));
            prop_assert!(is_not_viewable);
            prop_assert!(!r.same_storage(&t));
        }
    }
}

#[test]
fn squeeze_unsqueeze_select_chunk() {
    let t = seq(&[2, 1, 3]);
    let s = t.squeeze(1).unwrap();
    assert_eq!(s.shape(), &[2, 3]);
    assert_eq!(s.unsqueeze(-1).unwrap().shape(), &[2, 3, 1]);
    assert_eq!(s.unsqueeze(0).unwrap().shape(), &[1, 2, 3]);
    let row = s.select(0, 1).unwrap();
    assert_eq!(row.to_vec_f64(), s.to_vec_f64()[3..].to_vec());
    let parts = seq(&[7, 2]).chunk(3, 0).unwrap();
    assert_eq!(parts.iter().map(|p| p.shape()[0]).collect::<Vec<_>>(), vec![3, 3, 1]);
    assert!(matches!(t.squeeze(0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(t.unsqueeze(5), Err(Error::DimOutOfRange { dim: 5, rank: 4, .. })));
    assert!(matches!(t.narrow(2, 2, 2), Err(Error::InvalidArgument { .. })));
    assert!(matches!(t.select(0, 2), Err(Error::IndexOutOfRange { index: 2, dim: 0, size: 2, .. })));
    assert!(matches!(t.permute(&[0, 0, 1]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(t.expand(&[2, 4, 4]), Err(Error::BroadcastIncompatible { .. })));
    assert!(matches!(t.reshape(&[5]), Err(Error::ElementCount { .. })));
    assert!(matches!(t.reshape_infer(&[-1, 4]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(t.reshape_infer(&[-1, -1]), Err(Error::InvalidArgument { .. })));
    assert_eq!(t.reshape_infer(&[3, -1]).unwrap().shape(), &[3, 2]);
    assert_eq!(t.flatten(0, -1).unwrap().shape(), &[6]);
}

#[test]
fn zero_sized_and_scalar_views() {
    let z = Tensor::zeros(&[3, 0, 2], tensor::DType::F32);
    assert_eq!(z.numel(), 0);
    assert_eq!(z.permute(&[2, 0, 1]).unwrap().shape(), &[2, 3, 0]);
    assert_eq!(z.reshape(&[0, 6]).unwrap().shape(), &[0, 6]);
    assert_eq!(z.contiguous().unwrap().to_vec_f64(), Vec::<f64>::new());
    let s = Tensor::scalar(2.5f32);
    assert_eq!(s.item().unwrap(), 2.5);
    assert_eq!(s.reshape(&[1, 1]).unwrap().item().unwrap(), 2.5);
    assert!(seq(&[2]).item().is_err());
}
