//! S2 checkpoint round trip: save a (perturbed) model as safetensors, load it by name into a model
//! built from another seed, and get bit-identical parameters and outputs (tolerance 0: same weights,
//! same inputs, same kernels).

mod common;

use autograd::{Var, no_grad};
use kernels::testing::TestRng;
use mdm::{Conditioning, Mdm, Micros};
use nn::Module;
use nn::checkpoint::{SafeTensors, load_into, save_module};
use std::collections::BTreeMap;
use tensor::{DType, Tensor};

#[test]
fn s2_checkpoint_round_trip_gives_identical_outputs() {
    let cfg = common::config("s2.toml");
    let mut rng = TestRng::new(7);
    let mut a = Mdm::new(&cfg, 1).unwrap();
    common::perturb(&mut a, &mut rng, 0.05); // zero-init layers become non-zero
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s2.safetensors");
    save_module(&path, &a, &BTreeMap::new()).unwrap();

    let mut b = Mdm::new(&cfg, 2).unwrap();
    let st = SafeTensors::open(&path).unwrap();
    let report = load_into(&mut b, &st, true).unwrap();
    assert!(report.is_clean());
    for ((na, pa), (nb, pb)) in a.named_params().iter().zip(b.named_params().iter()) {
        assert_eq!(na, nb);
        assert_eq!(pa.value().to_vec_f64(), pb.value().to_vec_f64(), "{na}");
    }

    let z = vec![
        Var::constant(common::rand(&mut rng, &[1, 3, 32, 32], DType::F32)),
        Var::constant(common::rand(&mut rng, &[1, 3, 16, 16], DType::F32)),
    ];
    let t = Tensor::from_vec(vec![250.0f32], &[1]).unwrap();
    let text = Var::constant(common::rand(&mut rng, &[1, 3, 48], DType::F32));
    let run = |m: &Mdm| {
        no_grad(|| m.forward(&z, &t, Some(Conditioning::Text { tokens: &text, mask: None }), &Micros::new()))
            .unwrap()
            .iter()
            .map(|p| p.value().to_vec_f64())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(&a), run(&b));
}
