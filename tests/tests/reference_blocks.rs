//! Model-level references (mdm-spec §3.1) from an independent framework: the ResNet block, the
//! attention block (self + cross attention with a key padding mask, FFN), the timestep embedding,
//! and AdamW steps with weight decay. The reference (`tests/reference/blocks.py`, JAX on the CPU
//! in f32; AdamW from optax) is written from the spec with PyTorch's parameter names (§8) and
//! layouts; the committed fixtures are loaded into our modules by name. Every branch is exercised:
//! the reference weights are random, with no zero-initialised layer.
//!
//! Tolerances: the reference is f32 computed by XLA in another summation order, so the difference
//! is rounding only: `Tolerance::F32` (rel 1e-4, abs 1e-5) grown by √n for n the longest sum
//! feeding a value (see each test). AdamW is element-wise: `Tolerance::F32` unchanged.

use autograd::Var;
use kernels::testing::Tolerance;
use mdm::model::embedding::EmbeddingMlp;
use mdm::model::resnet::ResNet;
use nn::checkpoint::{SafeTensors, load_into_prefixed};
use nn::optim::{AdamW, AdamWConfig, Optimizer};
use nn::{Init, Linear, Module, SelfAttention};
use std::path::PathBuf;
use tensor::Tensor;

/// Opens a committed fixture file.
fn open(name: &str) -> SafeTensors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    SafeTensors::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// A fixture tensor (panics naming the file and tensor when it is missing).
fn get(st: &SafeTensors, name: &str) -> Tensor {
    st.get(name).unwrap_or_else(|e| panic!("{}: {name}: {e}", st.path().display()))
}

/// Compares `actual` with the fixture tensor `name`; the error names file, tensor, worst element.
fn compare(st: &SafeTensors, name: &str, actual: &Tensor, tol: Tolerance) -> Result<(), String> {
    let file = st.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let expected = get(st, name);
    if actual.shape() != expected.shape() {
        return Err(format!("{file}: {name}: shape {:?}, reference {:?}", actual.shape(), expected.shape()));
    }
    tol.check(&actual.to_vec_f64(), &expected.to_vec_f64()).map_err(|m| format!("{file}: {name}: {m}"))
}

/// All parameters of a module as (dotted name, var).
fn params(m: &dyn Module) -> Vec<(String, Var)> {
    let mut v = Vec::new();
    m.visit("", &mut |name, p| v.push((name.to_string(), p.var().clone())));
    v
}

/// Forward output, then the gradients (for the stored `io.gout`) of the named inputs and of every
/// parameter, each against the fixture; panics listing every mismatch.
fn check_block(st: &SafeTensors, y: &Var, inputs: &[(&str, &Var)], module: &dyn Module, tol: Tolerance) {
    let mut errs = Vec::new();
    errs.extend(compare(st, "io.out", y.value(), tol).err());
    let ps = params(module);
    let mut wrt: Vec<&Var> = inputs.iter().map(|(_, v)| *v).collect();
    wrt.extend(ps.iter().map(|(_, v)| v));
    let grads = autograd::grad(y, Some(&get(st, "io.gout")), &wrt, false).expect("backward");
    let names =
        inputs.iter().map(|(n, _)| format!("io.grad_{n}")).chain(ps.iter().map(|(n, _)| format!("grad.{n}")));
    for (name, g) in names.zip(&grads) {
        match g {
            Some(g) => errs.extend(compare(st, &name, g, tol).err()),
            None => errs.push(format!("{name}: no gradient")),
        }
    }
    assert!(errs.is_empty(), "{} mismatches:\n{}", errs.len(), errs.join("\n"));
}

#[test]
fn resnet_block_matches_reference() {
    let st = open("resnet.safetensors");
    let mut r = ResNet::new(&mut Init::new(1), 8, 16, 4, 16, 0.0, 0).expect("ResNet::new");
    let rep = load_into_prefixed(&mut r, &st, "param.", true).expect("load ResNet parameters");
    assert!(rep.is_clean(), "{rep:?}");
    let x = Var::leaf(get(&st, "io.x"));
    let temb = Var::leaf(get(&st, "io.temb"));
    let y = r.forward(&x, &temb).expect("ResNet forward");
    // Longest sum: conv2's 16·3·3 = 144 terms per output, its weight gradient 2·4·4 = 32.
    check_block(&st, &y, &[("x", &x), ("temb", &temb)], &r, Tolerance::F32.for_reduction(144));
}

#[test]
fn attention_block_matches_reference() {
    let st = open("attention.safetensors");
    let mut a = SelfAttention::new(&mut Init::new(1), 32, 8, true).expect("SelfAttention::new");
    let rep = load_into_prefixed(&mut a, &st, "param.", true).expect("load attention parameters");
    assert!(rep.is_clean(), "{rep:?}");
    let x = Var::leaf(get(&st, "io.x"));
    let cond = Var::leaf(get(&st, "io.cond"));
    let mask = get(&st, "io.mask");
    let y = a.forward(&x, Some(&cond), Some(&mask)).expect("attention forward");
    // Longest sum: the FFN's second 1×1 conv, 4·32 = 128 terms.
    check_block(&st, &y, &[("x", &x), ("cond", &cond)], &a, Tolerance::F32.for_reduction(128));
}

#[test]
fn timestep_embedding_matches_reference() {
    let st = open("temb.safetensors");
    let mut mlp = EmbeddingMlp::new(&mut Init::new(1), 32, false);
    for (layer, prefix) in [(&mut mlp.layer1, "param.temb_layer1."), (&mut mlp.layer2, "param.temb_layer2.")]
    {
        let rep = load_into_prefixed(layer, &st, prefix, true).expect("load embedding layer");
        assert!(rep.is_clean(), "{rep:?}");
    }
    let y = mlp.forward(&get(&st, "io.t"), ["temb_layer1", "temb_layer2"]).expect("embedding forward");
    /// The two layers under their state-dict names, so `check_block` finds `grad.temb_layer{1,2}.*`.
    struct Both<'a>(&'a Linear, &'a Linear);
    impl Module for Both<'_> {
        fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &nn::Param)) {
            self.0.visit(&nn::join(prefix, "temb_layer1"), f);
            self.1.visit(&nn::join(prefix, "temb_layer2"), f);
        }
        fn visit_mut(&mut self, _: &str, _: &mut dyn FnMut(&str, &mut nn::Param)) {}
    }
    // Longest sum: layer 2, 32 terms. The features (sin/cos of t·f up to t = 999) match to f32
    // rounding because both sides round f to f32 from the exact value and multiply in f32.
    check_block(&st, &y, &[], &Both(&mlp.layer1, &mlp.layer2), Tolerance::F32.for_reduction(32));
}

#[test]
fn adamw_steps_match_reference() {
    let st = open("adamw.safetensors");
    let meta = |k: &str| -> f64 {
        st.metadata()
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("adamw.safetensors: metadata {k}"))
    };
    let cfg = AdamWConfig {
        lr: meta("lr"),
        betas: (meta("b1"), meta("b2")),
        eps: meta("eps"),
        weight_decay: meta("weight_decay"),
    };
    let mut lin = Linear::new(&mut Init::new(1), 3, 4, true);
    load_into_prefixed(&mut lin, &st, "param.", true).expect("load Linear parameters");
    let mut opt = AdamW::new(cfg).expect("AdamW::new");
    let steps = meta("steps") as usize;
    let mut errs = Vec::new();
    for s in 0..steps {
        lin.weight.var().set_grad(Some(get(&st, &format!("step{s}.grad.weight"))));
        let bias = lin.bias.as_ref().expect("Linear::new(.., true) has a bias");
        bias.var().set_grad(Some(get(&st, &format!("step{s}.grad.bias"))));
        opt.step(&mut lin).expect("AdamW step");
        let bias = lin.bias.as_ref().expect("Linear::new(.., true) has a bias");
        for (n, p) in [("weight", &lin.weight), ("bias", bias)] {
            // Element-wise update in f32 on both sides: a few ulps.
            errs.extend(compare(&st, &format!("step{s}.param.{n}"), p.value(), Tolerance::F32).err());
        }
    }
    assert!(errs.is_empty(), "{} mismatches:\n{}", errs.len(), errs.join("\n"));
}
