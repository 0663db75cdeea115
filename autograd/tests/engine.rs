//! The graph walk: accumulation, gradients of intermediate nodes, detach, no_grad, freeing,
//! hooks, anomaly mode, labels, graph export, attribution, pruning and memory.

mod common;
use autograd::audit::{attribution::attribute, graph};
use autograd::{Error, Phase, Var, detect_anomaly, grad, no_grad, scope};
use common::std;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tensor::{DType, Tensor};

fn scalar(v: &Var) -> f64 {
    v.value().item().unwrap()
}

#[test]
fn backward_accumulates_and_reused_nodes_sum() {
    // y = x*x + x  (x reused) → dy/dx = 2x + 1
    let x = Var::leaf(Tensor::from_vec(vec![1.5f64, -2.0], &[2]).unwrap());
    let y = x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec_f64(), vec![4.0, -3.0]);
    // a second graph accumulates into the same .grad
    let y2 = x.sum_all().unwrap();
    y2.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec_f64(), vec![5.0, -2.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn gradients_of_intermediate_nodes() {
    let x = Var::leaf(std(&[3], 1));
    let h = x.exp().unwrap();
    let y = h.sqr().unwrap().sum_all().unwrap();
    let g = grad(&y, None, &[&h, &x], true).unwrap();
    let hv = h.value().to_vec_f64();
    let gh = g[0].as_ref().unwrap().to_vec_f64();
    let gx = g[1].as_ref().unwrap().to_vec_f64();
    for i in 0..3 {
        assert!((gh[i] - 2.0 * hv[i]).abs() < 1e-12);
        assert!((gx[i] - 2.0 * hv[i] * hv[i]).abs() < 1e-12);
    }
    // grad() does not accumulate into .grad
    assert!(x.grad().is_none());
    // retain_grad keeps an intermediate gradient during backward
    h.retain_grad();
    y.backward().unwrap();
    assert_eq!(h.grad().unwrap().to_vec_f64(), gh);
}

#[test]
fn detach_no_grad_and_constants() {
    let x = Var::leaf(std(&[2], 2));
    let d = x.detach();
    assert!(!d.requires_grad());
    let y = no_grad(|| x.exp().unwrap());
    assert!(!y.requires_grad() && y.is_leaf());
    let c = Var::constant(std(&[2], 3));
    let z = c.exp().unwrap();
    assert!(!z.requires_grad());
    assert!(matches!(z.sum_all().unwrap().backward(), Err(Error::NoGradPath)));
    assert!(matches!(x.exp().unwrap().backward(), Err(Error::NotScalar { .. })));
}

#[test]
fn saved_tensors_are_freed_unless_retained() {
    let x = Var::leaf(std(&[4], 4));
    let y = x.tanh().unwrap().sum_all().unwrap();
    y.backward_with(&y.value().ones_like(), true).unwrap();
    y.backward().unwrap(); // graph was retained: a second pass works
    let err = y.backward().unwrap_err();
    assert!(
        matches!(err, Error::GraphFreed { .. } | Error::NoGradPath) || err.to_string().contains("freed"),
        "{err}"
    );
}

#[test]
fn second_backward_after_free_names_the_op() {
    let x = Var::leaf(std(&[4], 5));
    let h = x.tanh().unwrap();
    let y = h.sum_all().unwrap();
    let y2 = h.mul(&h).unwrap().sum_all().unwrap();
    y.backward().unwrap(); // frees tanh's saved input
    let e = y2.backward().unwrap_err();
    assert!(matches!(&e, Error::GraphFreed { op, .. } if op == "tanh"), "{e}");
}

#[test]
fn hooks_observe_and_replace() {
    let x = Var::leaf(std(&[3], 6));
    let h = x.mul_scalar(2.0).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s2 = seen.clone();
    h.register_hook(move |g| {
        s2.fetch_add(g.numel(), Ordering::SeqCst);
        None
    });
    // replace the gradient reaching h by zeros → x's gradient is zero
    h.register_hook(|g| Some(g.zeros_like()));
    h.sum_all().unwrap().backward().unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert_eq!(x.grad().unwrap().to_vec_f64(), vec![0.0; 3]);
}

#[test]
fn anomaly_mode_names_op_label_and_index() {
    let x = Var::leaf(Tensor::from_vec(vec![1.0f64, -1.0, 4.0], &[3]).unwrap());
    let e = detect_anomaly(|| {
        let _s = scope("encoder");
        let _t = scope("block0");
        x.log()
    })
    .unwrap_err();
    match &e {
        Error::Anomaly { op, label, phase, index, .. } => {
            assert_eq!(op, "log");
            assert_eq!(label.as_deref(), Some("encoder.block0"));
            assert_eq!(*phase, Phase::Forward);
            assert_eq!(*index, 1);
        }
        other => panic!("expected an anomaly, got {other}"),
    }
    // backward anomaly: sqrt at 0 has an infinite derivative
    let z = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2]).unwrap());
    let e = detect_anomaly(|| z.sqrt().unwrap().sum_all().unwrap().backward()).unwrap_err();
    assert!(matches!(&e, Error::Anomaly { op, phase: Phase::Backward, index: 0, .. } if op == "sqrt"), "{e}");
    // off: no error
    assert!(x.log().is_ok());
}

#[test]
fn labels_and_graph_export() {
    let x = Var::leaf(std(&[2, 3], 7)).with_label("input");
    let w = Var::leaf(std(&[3, 4], 8)).with_label("w");
    let y = {
        let _s = scope("inner_unet");
        let _t = scope("down_blocks.1.attn.0.qkv");
        x.matmul(&w).unwrap()
    };
    let loss = y.silu().unwrap().mean_all().unwrap();
    assert_eq!(y.label().as_deref(), Some("inner_unet.down_blocks.1.attn.0.qkv"));
    let text = graph::to_text(&loss);
    assert!(text.contains("matmul [inner_unet.down_blocks.1.attn.0.qkv] [2, 4] f64 saved=144B"), "{text}");
    assert!(text.contains("silu") && text.contains("leaf [w]") && text.contains("5 nodes"), "{text}");
    let dot = graph::to_dot(&loss);
    assert!(dot.starts_with("digraph") && dot.contains("->") && dot.contains("matmul"), "{dot}");
    let ns = graph::nodes(&loss);
    assert_eq!(ns.iter().find(|n| n.op == "matmul").unwrap().family, "matmul");
}

#[test]
fn per_term_attribution_sums_to_full_gradient() {
    let w = Var::leaf(std(&[3], 9));
    let b = Var::leaf(std(&[3], 10));
    let t1 = w.sqr().unwrap().sum_all().unwrap(); // depends on w only
    let t2 = w.mul(&b).unwrap().sum_all().unwrap(); // both
    let a = attribute(&[&t1, &t2], &[&w, &b]).unwrap();
    assert!(a.per_term[0][1].is_none(), "term 1 does not reach b");
    let total = t1.add(&t2).unwrap();
    total.backward().unwrap();
    for (p, v) in [(0, &w), (1, &b)] {
        let sum = a.total(p).unwrap().unwrap().to_vec_f64();
        let full = v.grad().unwrap().to_vec_f64();
        for (s, f) in sum.iter().zip(&full) {
            assert!((s - f).abs() < 1e-12);
        }
    }
    assert_eq!(a.norms(1)[0], 0.0);
}

#[test]
fn branches_without_grad_are_pruned() {
    // constants: the op is not even recorded
    let c = Var::constant(std(&[3], 12));
    let cc = c.exp().unwrap();
    assert!(cc.is_leaf() && !cc.requires_grad());
    // a branch to a leaf that grad() was not asked about never runs its backward rule
    struct Counting(Arc<AtomicUsize>);
    impl autograd::BackwardOp for Counting {
        fn name(&self) -> &'static str {
            "neg"
        }
        fn backward(&self, g: &Tensor, _n: &[bool]) -> autograd::Result<Vec<Option<Tensor>>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(vec![Some(g.neg()?)])
        }
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let x = Var::leaf(std(&[3], 11));
    let frozen = Var::leaf(std(&[3], 13));
    let f = Var::from_op(frozen.value().neg().unwrap(), &[&frozen], Counting(calls.clone())).unwrap();
    let loss = x.mul(&cc).unwrap().add(&f).unwrap().sum_all().unwrap();
    let g = grad(&loss, None, &[&x], true).unwrap();
    assert!(g[0].is_some());
    assert_eq!(calls.load(Ordering::SeqCst), 0, "pruned branch ran its backward");
    loss.backward().unwrap(); // accumulating into every leaf needs the branch
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(frozen.grad().unwrap().to_vec_f64(), vec![-1.0; 3]);
}

#[test]
fn a_thousand_training_steps_do_not_grow_live_storage() {
    let mut w = Var::leaf(std(&[8, 8], 14));
    let x = Tensor::randn(&[16, 8], 0.0, 1.0, 1, 0, DType::F64).unwrap();
    let target = Tensor::randn(&[16, 8], 0.0, 1.0, 2, 0, DType::F64).unwrap();
    let step = |w: &mut Var| {
        let xv = Var::constant(x.clone());
        let y = xv.matmul(w).unwrap().tanh().unwrap();
        let loss = y.mse_loss(&Var::constant(target.clone()), autograd::Reduction::Mean).unwrap();
        loss.backward().unwrap();
        let g = w.grad().unwrap();
        let nw = w.value().sub(&g.mul_scalar(0.1).unwrap()).unwrap();
        w.zero_grad();
        w.set_value(nw).unwrap();
        scalar(&loss)
    };
    let first = step(&mut w);
    for _ in 0..10 {
        step(&mut w);
    }
    let (count0, bytes0) = tensor::storage::live_storage();
    let mut last = first;
    for _ in 0..1000 {
        last = step(&mut w);
    }
    let (count1, bytes1) = tensor::storage::live_storage();
    assert!(last < first, "training lowered the loss: {first} -> {last}");
    // other tests run in parallel threads and allocate too: allow their noise, not a per-step leak
    assert!(
        count1 <= count0 + 64 && bytes1 <= bytes0 + (1 << 20),
        "live storage grew: {count0} -> {count1} storages, {bytes0} -> {bytes1} bytes"
    );
}
