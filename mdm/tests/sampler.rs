//! Sampler tests: the timestep grid (§5.1), thresholding (§5.3), single DDPM/DDIM updates against
//! hand formulas (§5.2), and end-to-end sampling with a tiny 2-level model (determinism, shapes,
//! range, classifier-free guidance §5.4).

mod common;

use kernels::testing::TestRng;
use mdm::diffusion::{Diffusion, DiffusionConfig};
use mdm::sampler::*;
use mdm::{Error, Mdm, ModelConfig};
use tensor::{DType, Tensor};

#[test]
fn grid_matches_spec_examples() {
    let g = timestep_grid(1000, 50);
    assert_eq!(g.len(), 51);
    assert_eq!(&g[..3], &[981, 962, 942]);
    assert_eq!(&g[49..], &[20, 0]);
    assert_eq!(&timestep_grid(1000, 100)[..2], &[991, 981]);
    assert_eq!(&timestep_grid(1000, 250)[..2], &[997, 993]);
    assert_eq!(timestep_grid(1000, 1000), (0..=1000).rev().collect::<Vec<_>>());
    // r = 250.25: 2r = 500.5 rounds half to even (numpy), 3r = 750.75 → 751.
    assert_eq!(timestep_grid(1000, 3), vec![751, 500, 250, 0]);
}

#[test]
fn thresholds_against_hand_values() {
    let x = Tensor::from_vec(vec![0.5, -3.0, 2.0, 1.0, -0.2, 0.1, -0.4, 0.3, 0.9, 0.0], &[2, 5]).unwrap();
    let clip = threshold(&x, Threshold::Clip).unwrap().to_vec_f64();
    assert_eq!(clip, vec![0.5, -1.0, 1.0, 1.0, -0.2, 0.1, -0.4, 0.3, 0.9, 0.0]);
    assert_eq!(threshold(&x, Threshold::None).unwrap().to_vec_f64(), x.to_vec_f64());
    // Row 0: |x| sorted = [0.2, 0.5, 1, 2, 3]; torch.quantile (linear): q·(n−1) = 0.95·4 = 3.8 →
    // 2 + 0.8·1 = 2.8 (DYNAMIC_IF clamps it to 1.5); 0.995·4 = 3.98 → 2.98.
    // Row 1: all |x| < 1 → s = 1 (unchanged).
    let row1 = [0.1, -0.4, 0.3, 0.9, 0.0];
    for (kind, s) in [(Threshold::DynamicIf, 1.5), (Threshold::Dynamic, 2.98)] {
        let got = threshold(&x, kind).unwrap().to_vec_f64();
        let want: Vec<f64> =
            [0.5f64, -3.0, 2.0, 1.0, -0.2].iter().map(|v| v.clamp(-s, s) / s).chain(row1).collect();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-12, "{kind:?}: {got:?} vs {want:?}");
        }
    }
}

/// The expected z_s at element i.
type Formula<'a> = Box<dyn Fn(usize) -> f64 + 'a>;

/// Fixed inputs of one update: z_t, v̂, noise with values in [−1.5, 1.5).
fn step_inputs() -> (Tensor, Tensor, Tensor) {
    let mut rng = TestRng::new(21);
    let mut t = || {
        let v: Vec<f64> = rng.vec_f64(12).into_iter().map(|x| 1.5 * x).collect();
        Tensor::from_vec(v, &[2, 1, 2, 3]).unwrap()
    };
    (t(), t(), t())
}

#[test]
fn ddpm_and_ddim_updates_match_formulas() {
    let (z, v, n) = step_inputs();
    let (g, gp) = (0.3f64, 0.6f64);
    let (alpha, beta) = (g / gp, 1.0 - g / gp);
    let bt = beta * (1.0 - gp) / (1.0 - g);
    let (zv, vv, nv) = (z.to_vec_f64(), v.to_vec_f64(), n.to_vec_f64());
    for thr in [Threshold::None, Threshold::Clip] {
        let x0: Vec<f64> = zv
            .iter()
            .zip(&vv)
            .map(|(z, v)| {
                let x = g.sqrt() * z - (1.0 - g).sqrt() * v;
                if thr == Threshold::Clip { x.clamp(-1.0, 1.0) } else { x }
            })
            .collect();
        let eps: Vec<f64> = zv.iter().zip(&x0).map(|(z, x)| (z - g.sqrt() * x) / (1.0 - g).sqrt()).collect();
        let cases: Vec<(SamplerKind, Formula)> = vec![
            (
                SamplerKind::Ddpm,
                Box::new(|i| {
                    x0[i] * beta * gp.sqrt() / (1.0 - g)
                        + zv[i] * alpha.sqrt() * (1.0 - gp) / (1.0 - g)
                        + bt.sqrt() * nv[i]
                }),
            ),
            (
                SamplerKind::Ddim { eta: 0.5 },
                Box::new(|i| {
                    gp.sqrt() * x0[i] + (1.0 - gp - 0.25 * bt).sqrt() * eps[i] + 0.5 * bt.sqrt() * nv[i]
                }),
            ),
            (SamplerKind::Ddim { eta: 0.0 }, Box::new(|i| gp.sqrt() * x0[i] + (1.0 - gp).sqrt() * eps[i])),
        ];
        for (kind, want) in &cases {
            let out = step(&z, &v, g, gp, *kind, thr, Some(&n)).unwrap();
            let got = out.z.to_vec_f64();
            for (i, gi) in got.iter().enumerate() {
                assert!((gi - want(i)).abs() < 1e-12, "{kind:?} {thr:?} i {i}: {gi} vs {}", want(i));
            }
            for (a, b) in out.x0.to_vec_f64().iter().zip(&x0) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }
    // DDPM without noise returns the mean μ; with noise it adds exactly √β̃·n.
    let a = step(&z, &v, g, gp, SamplerKind::Ddpm, Threshold::None, None).unwrap().z.to_vec_f64();
    let b = step(&z, &v, g, gp, SamplerKind::Ddpm, Threshold::None, Some(&n)).unwrap().z.to_vec_f64();
    for i in 0..12 {
        assert!((b[i] - a[i] - bt.sqrt() * nv[i]).abs() < 1e-12);
    }
    // Last step (g' = 1): z_0 = x̂₀ for both samplers.
    for kind in [SamplerKind::Ddpm, SamplerKind::Ddim { eta: 1.0 }] {
        let out = step(&z, &v, g, 1.0, kind, Threshold::Clip, None).unwrap();
        for (a, b) in out.z.to_vec_f64().iter().zip(out.x0.to_vec_f64()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
    assert!(matches!(
        step(&z, &v, 0.6, 0.3, SamplerKind::Ddpm, Threshold::None, None),
        Err(Error::Input { .. })
    ));
}

const TINY: &str = r#"
num_classes = 4
conditioning_feature_dim = 32
[unet]
resolution_channels = [32, 32]
num_resnets_per_resolution = [1, 1]
[unet.inner]
resolution_channels = [32, 32]
num_resnets_per_resolution = [1, 1]
"#;

fn tiny() -> (Mdm, Diffusion) {
    let cfg = ModelConfig::from_toml_str(TINY, "tiny").unwrap();
    let mut m = Mdm::new(&cfg, 1).unwrap();
    // Zero-initialised output layers would make every prediction 0; perturb so the network (and
    // its conditioning) matters.
    common::perturb(&mut m, &mut TestRng::new(2), 0.05);
    let d = Diffusion::new(DiffusionConfig { num_steps: 100, ..Default::default() }, &[1, 2]).unwrap();
    (m, d)
}

fn scfg(seed: u64, guidance: f64) -> SamplerConfig {
    SamplerConfig {
        steps: 4,
        kind: SamplerKind::Ddpm,
        threshold: Threshold::Clip,
        guidance,
        seed,
        keep_trajectory: false,
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.to_vec_f64().iter().zip(b.to_vec_f64()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn tiny_model_sampling_is_deterministic_and_shaped() {
    let (m, d) = tiny();
    let cond = SampleCondition::Class(vec![0, 3]);
    let a = sample(&m, &d, &cond, 2, 8, &scfg(5, 1.0)).unwrap();
    assert_eq!(a.images.len(), 2);
    assert_eq!(a.images[0].shape(), &[2, 3, 8, 8]);
    assert_eq!(a.images[1].shape(), &[2, 3, 4, 4]);
    for im in &a.images {
        assert!(im.to_vec_f64().iter().all(|x| (-1.0..=1.0).contains(x)));
    }
    assert!(a.trajectory.is_empty());
    let b = sample(&m, &d, &cond, 2, 8, &scfg(5, 1.0)).unwrap();
    for r in 0..2 {
        assert_eq!(a.images[r].to_vec_f64(), b.images[r].to_vec_f64());
    }
    let c = sample(&m, &d, &cond, 2, 8, &scfg(6, 1.0)).unwrap();
    assert!(max_diff(&a.images[0], &c.images[0]) > 1e-3);
    assert!(max_diff(&a.images[1], &c.images[1]) > 1e-3);
    // DDIM(0) with a trajectory: one entry per step, every resolution.
    let cfg = SamplerConfig { kind: SamplerKind::Ddim { eta: 0.0 }, keep_trajectory: true, ..scfg(5, 1.0) };
    let t = sample(&m, &d, &cond, 2, 8, &cfg).unwrap();
    assert_eq!(t.trajectory.len(), 4);
    assert_eq!(t.trajectory[3][1].shape(), &[2, 3, 4, 4]);
    // The last step's x̂₀ is the returned image (z_0 = x̂₀, already clipped).
    assert!(max_diff(&t.trajectory[3][0], &t.images[0]) < 1e-6);
}

#[test]
fn classifier_free_guidance_mixes_branches() {
    let (m, d) = tiny();
    let cond = SampleCondition::Class(vec![0, 3]);
    let null = SampleCondition::Class(vec![m.null_class(); 2]);
    // Guidance 0 keeps only the unconditional branch (null class) of the doubled batch call.
    let g0 = sample(&m, &d, &cond, 2, 8, &scfg(5, 0.0)).unwrap();
    let un = sample(&m, &d, &null, 2, 8, &scfg(5, 1.0)).unwrap();
    for r in 0..2 {
        // f32 network; the doubled batch may round differently: 1e-4.
        assert!(max_diff(&g0.images[r], &un.images[r]) < 1e-4, "r {r}");
    }
    let plain = sample(&m, &d, &cond, 2, 8, &scfg(5, 1.0)).unwrap();
    let g3 = sample(&m, &d, &cond, 2, 8, &scfg(5, 3.0)).unwrap();
    assert!(max_diff(&plain.images[0], &g3.images[0]) > 1e-3);
    assert!(max_diff(&plain.images[0], &un.images[0]) > 1e-3, "the class matters");

    // Text: guidance 0 = the negative prompt alone; a 1-row negative prompt is broadcast.
    let mut rng = TestRng::new(8);
    let tokens = common::rand(&mut rng, &[2, 3, 32], DType::F32);
    let neg = common::rand(&mut rng, &[1, 3, 32], DType::F32);
    let text = SampleCondition::Text {
        tokens: tokens.clone(),
        mask: None,
        negative_tokens: neg.clone(),
        negative_mask: None,
    };
    let t0 = sample(&m, &d, &text, 2, 8, &scfg(5, 0.0)).unwrap();
    let neg2 = Tensor::cat(&[&neg, &neg], 0).unwrap();
    let only_neg =
        SampleCondition::Text { tokens: neg2, mask: None, negative_tokens: neg, negative_mask: None };
    let n1 = sample(&m, &d, &only_neg, 2, 8, &scfg(5, 1.0)).unwrap();
    assert!(max_diff(&t0.images[0], &n1.images[0]) < 1e-4);
    // A shorter negative prompt is zero-padded with mask 0.
    let short = SampleCondition::Text {
        tokens,
        mask: None,
        negative_tokens: common::rand(&mut rng, &[2, 1, 32], DType::F32),
        negative_mask: None,
    };
    let s = sample(&m, &d, &short, 2, 8, &scfg(5, 2.0)).unwrap();
    assert_eq!(s.images[0].shape(), &[2, 3, 8, 8]);
}

#[test]
fn sampling_input_errors_name_the_input() {
    let (m, d) = tiny();
    let cond = SampleCondition::Class(vec![0, 1]);
    let input = |r: mdm::Result<SampleOutput>| match r {
        Err(Error::Input { input, .. }) => input,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted bad input"),
    };
    assert_eq!(input(sample(&m, &d, &cond, 2, 8, &SamplerConfig { steps: 0, ..scfg(1, 1.0) })), "steps");
    assert_eq!(input(sample(&m, &d, &cond, 2, 8, &SamplerConfig { steps: 101, ..scfg(1, 1.0) })), "steps");
    let eta = SamplerConfig { kind: SamplerKind::Ddim { eta: 1.5 }, ..scfg(1, 1.0) };
    assert_eq!(input(sample(&m, &d, &cond, 2, 8, &eta)), "eta");
    assert_eq!(input(sample(&m, &d, &SampleCondition::Class(vec![0]), 2, 8, &scfg(1, 1.0))), "labels");
    assert_eq!(input(sample(&m, &d, &cond, 2, 6, &scfg(1, 1.0))), "image_size");
    let d4 = Diffusion::new(DiffusionConfig { num_steps: 100, ..Default::default() }, &[1, 4]).unwrap();
    assert_eq!(input(sample(&m, &d4, &cond, 2, 8, &scfg(1, 1.0))), "diffusion.scales");
}
