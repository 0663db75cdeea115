//! Property tests of every op family's backward over random shapes, broadcasts and non-contiguous
//! inputs: each case is a full finite-difference gradcheck (f64, default tolerance, see
//! `autograd::gradcheck`). Sizes stay tiny because gradcheck costs two forward passes per element.

mod common;
use autograd::{GradcheckOptions, Reduction, Var, gradcheck};
use common::{away, distinct, std, uni};
use proptest::prelude::*;
use tensor::{Conv2dOptions, Tensor};

fn ok(r: autograd::Result<autograd::GradcheckReport>) -> std::result::Result<(), TestCaseError> {
    r.map(|_| ()).map_err(|e| TestCaseError::fail(e.to_string()))
}

/// A tensor of `shape`, optionally built as the transpose of its reverse-shaped twin (non-contiguous).
fn maybe_t(shape: &[usize], seed: u64, transposed: bool, make: fn(&[usize], u64) -> Tensor) -> Tensor {
    if transposed && shape.len() >= 2 {
        let r = shape.len();
        let mut s = shape.to_vec();
        s.swap(0, r - 1);
        make(&s, seed).transpose(0, (r - 1) as isize).unwrap()
    } else {
        make(shape, seed)
    }
}

const UNARY: [fn(&Var) -> autograd::Result<Var>; 10] = [
    |x| x.tanh(),
    |x| x.silu(),
    |x| x.gelu(),
    |x| x.sigmoid(),
    |x| x.exp(),
    |x| x.sin(),
    |x| x.abs(),
    |x| x.relu(),
    |x| x.sqr(),
    |x| x.erf(),
];

const BINARY: [fn(&Var, &Var) -> autograd::Result<Var>; 4] =
    [|a, b| a.add(b), |a, b| a.sub(b), |a, b| a.mul(b), |a, b| a.div(b)];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn unary_on_any_layout(shape in prop::collection::vec(1usize..4, 1..4), op in 0usize..10, t in any::<bool>(), seed in 0u64..1000) {
        let x = maybe_t(&shape, seed, t, away);
        let f = UNARY[op];
        ok(gradcheck(move |v| f(&v[0]), &[x], GradcheckOptions::default()))?;
    }

    #[test]
    fn binary_with_broadcast(shape in prop::collection::vec(1usize..4, 1..4), ones in 0u8..8, drop in 0usize..2, op in 0usize..4, t in any::<bool>(), seed in 0u64..1000) {
        // b's shape: a suffix of a's shape with some dims set to 1
        let bs: Vec<usize> = shape[drop.min(shape.len() - 1)..].iter().enumerate().map(|(i, &d)| if ones >> i & 1 == 1 { 1 } else { d }).collect();
        let a = maybe_t(&shape, seed, t, distinct);
        let b = uni(&bs, seed + 1, 0.5, 1.5);
        let f = BINARY[op];
        ok(gradcheck(move |v| f(&v[0], &v[1]), &[a.clone(), b.clone()], GradcheckOptions::default()))?;
        // and with the operands swapped (broadcast on the left); the divisor now needs to stay away from 0
        let a_pos = maybe_t(&shape, seed + 2, t, |s, k| uni(s, k, 0.5, 1.5));
        ok(gradcheck(move |v| f(&v[1], &v[0]), &[a_pos, b], GradcheckOptions::default()))?;
    }

    #[test]
    fn reductions_over_axis_subsets(shape in prop::collection::vec(1usize..4, 1..4), mask in 1u8..8, keep in any::<bool>(), op in 0usize..5, t in any::<bool>(), seed in 0u64..1000) {
        let x = maybe_t(&shape, seed, t, distinct);
        let axes: Vec<isize> = (0..shape.len()).filter(|d| mask >> d & 1 == 1).map(|d| d as isize).collect();
        let axes = if axes.is_empty() { vec![0] } else { axes };
        let f = move |v: &[Var]| match op {
            0 => v[0].sum(&axes, keep),
            1 => v[0].mean(&axes, keep),
            2 => v[0].max(&axes, keep),
            3 => v[0].min(&axes, keep),
            _ => v[0].var(&axes, 0, keep),
        };
        ok(gradcheck(f, &[x], GradcheckOptions::default()))?;
    }

    #[test]
    fn matmul_batched_broadcast_transposed(b in 1usize..3, m in 1usize..4, k in 1usize..4, n in 1usize..4, ta in any::<bool>(), tb in any::<bool>(), seed in 0u64..1000) {
        let a = if ta { std(&[b, k, m], seed).transpose(1, 2).unwrap() } else { std(&[b, m, k], seed) };
        let w = if tb { std(&[n, k], seed + 1).t().unwrap() } else { std(&[k, n], seed + 1) };
        ok(gradcheck(|v| v[0].matmul(&v[1]), &[a, w], GradcheckOptions::default()))?;
    }

    #[test]
    fn views_and_movement(shape in prop::collection::vec(1usize..4, 2..4), a in 0usize..8, seed in 0u64..1000) {
        let x = std(&shape, seed);
        let r = shape.len();
        let d = a % r;
        let s2 = shape.clone();
        ok(gradcheck(move |v| {
            let p: Vec<usize> = (0..r).map(|i| (i + d) % r).collect();
            let y = v[0].permute(&p)?; // non-contiguous
            let y = y.narrow(0, 0, y.shape()[0].div_ceil(2))?;
            let c = Var::cat(&[&y, &y.mul_scalar(2.0)?], (d % r) as isize)?;
            c.reshape(&[c.value().numel()])?.unsqueeze(0)?.expand(&[2, c.value().numel()])
        }, &[x], GradcheckOptions::default()))?;
        let idx = Tensor::from_vec(vec![(a % s2[0]) as i64, 0, -1], &[3]).unwrap();
        ok(gradcheck(move |v| v[0].index_select(0, &idx), &[std(&s2, seed + 1)], GradcheckOptions::default()))?;
    }

    #[test]
    fn softmax_any_dim(shape in prop::collection::vec(1usize..4, 1..4), d in 0usize..3, log in any::<bool>(), t in any::<bool>(), seed in 0u64..1000) {
        let x = maybe_t(&shape, seed, t, std);
        let dim = (d % shape.len()) as isize;
        ok(gradcheck(move |v| if log { v[0].log_softmax(dim) } else { v[0].softmax(dim) }, &[x], GradcheckOptions::default()))?;
    }

    #[test]
    fn norms(n in 1usize..3, cg in 1usize..3, groups in 1usize..3, sp in 1usize..4, rows in 1usize..4, cols in 1usize..5, seed in 0u64..1000) {
        let c = cg * groups;
        ok(gradcheck(move |v| v[0].group_norm(groups, Some(&v[1]), Some(&v[2]), 1e-5),
            &[std(&[n, c, sp], seed), std(&[c], seed + 1), std(&[c], seed + 2)], GradcheckOptions::default()))?;
        // layer norm of a transposed (non-contiguous) input
        ok(gradcheck(|v| v[0].layer_norm(Some(&v[1]), None, 1e-5),
            &[std(&[cols, rows], seed + 3).t().unwrap(), std(&[cols], seed + 4)], GradcheckOptions::default()))?;
    }

    #[test]
    fn conv2d_params(n in 1usize..3, cin_g in 1usize..3, cout_g in 1usize..3, groups in 1usize..3, h in 3usize..6, w in 3usize..6,
                     k in 1usize..4, stride in 1usize..3, pad in 0usize..2, dil in 1usize..3, seed in 0u64..1000) {
        prop_assume!((k - 1) * dil < h + 2 * pad && (k - 1) * dil < w + 2 * pad);
        let o = Conv2dOptions { stride: [stride, 1], padding: [pad, pad], dilation: [dil, 1], groups };
        let (cin, cout) = (cin_g * groups, cout_g * groups);
        ok(gradcheck(move |v| v[0].conv2d(&v[1], Some(&v[2]), &o),
            &[std(&[n, cin, h, w], seed), std(&[cout, cin_g, k, k], seed + 1), std(&[cout], seed + 2)], GradcheckOptions::default()))?;
    }

    #[test]
    fn attention_shapes_and_masks(b in 1usize..3, h in 1usize..3, lq in 1usize..5, lk in 1usize..6, d in 1usize..5, dv in 1usize..4, mbits in any::<u32>(), seed in 0u64..1000) {
        let mask = Tensor::from_vec((0..b * lk).map(|i| u8::from(i % lk == 0 || mbits >> (i % 32) & 1 == 1)).collect::<Vec<u8>>(), &[b, lk]).unwrap();
        ok(gradcheck(move |v| Var::attention(&v[0], &v[1], &v[2], Some(&mask), 0.5),
            &[std(&[b, h, lq, d], seed), std(&[b, h, lk, d], seed + 1), std(&[b, h, lk, dv], seed + 2)], GradcheckOptions::default()))?;
    }

    #[test]
    fn spatial_and_selection(c in 1usize..3, h in 2usize..5, w in 2usize..5, oh in 1usize..7, ow in 1usize..7, k in 1usize..3, seed in 0u64..1000) {
        ok(gradcheck(move |v| v[0].upsample_nearest2d(oh, ow), &[std(&[1, c, h, w], seed)], GradcheckOptions::default()))?;
        ok(gradcheck(move |v| v[0].avg_pool2d([k, k], [k, 1], [k / 2, 0], k % 2 == 0), &[std(&[2, c, h, w], seed + 1)], GradcheckOptions::default()))?;
        let cond = Tensor::from_vec((0..w).map(|i| u8::from(i % 2 == 0)).collect::<Vec<u8>>(), &[w]).unwrap();
        let c2 = cond.clone();
        ok(gradcheck(move |v| Var::where_cond(&cond, &v[0], &v[1]), &[std(&[h, w], seed + 2), std(&[1, w], seed + 3)], GradcheckOptions::default()))?;
        ok(gradcheck(move |v| v[0].masked_fill(&c2, -3.0)?.mse_loss(&v[1], Reduction::Sum), &[std(&[h, w], seed + 4), std(&[h, w], seed + 5)], GradcheckOptions::default()))?;
    }
}
