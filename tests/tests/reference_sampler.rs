//! One DDPM / DDIM(η) sampler step (mdm-spec §5.2) against `tests/fixtures/sampler.safetensors`,
//! computed in float64 numpy by `tests/reference/sampler.py` straight from the spec's formulas, with
//! the CLIP threshold, at an early, a middle and a late step of the DEEPFLOYD grid.
//!
//! Tolerance: f64 on both sides, the same formulas evaluated in a different order (the Rust side
//! goes through ε̂ = √(1−γ)·z + √γ·v̂): `Tolerance::F64` grown to rel 1e-9 for the 1/(1−g) factors
//! near g → 1 (late step: 1/(1−0.97) ≈ 36, amplifying rounding by that much).

use kernels::testing::Tolerance;
use mdm::sampler::{SamplerKind, Threshold, step};
use nn::checkpoint::SafeTensors;
use std::path::PathBuf;

#[test]
fn ddpm_and_ddim_steps_match_reference() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("sampler.safetensors");
    let st = SafeTensors::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let tol = Tolerance::new(1e-9, 1e-12);
    let mut errs = vec![];
    let mut checked = 0;
    for name in ["early", "middle", "late"] {
        let get =
            |k: &str| st.get(&format!("{name}.{k}")).unwrap_or_else(|e| panic!("sampler.safetensors: {e}"));
        let (z, v, n) = (get("z_t"), get("v"), get("noise"));
        checked += 4;
        let gammas = get("gammas").to_vec_f64();
        for (kind, sk) in [
            ("ddpm", SamplerKind::Ddpm),
            ("ddim0", SamplerKind::Ddim { eta: 0.0 }),
            ("ddim05", SamplerKind::Ddim { eta: 0.5 }),
            ("ddim1", SamplerKind::Ddim { eta: 1.0 }),
        ] {
            let out = step(&z, &v, gammas[0], gammas[1], sk, Threshold::Clip, Some(&n)).unwrap();
            for (what, ours) in [("x0", &out.x0), ("z_s", &out.z)] {
                let expected = get(&format!("{kind}.{what}")).to_vec_f64();
                if let Err(m) = tol.check(&ours.to_vec_f64(), &expected) {
                    errs.push(format!("sampler.safetensors: {name}.{kind}.{what}: {m}"));
                }
                checked += 1;
            }
        }
    }
    assert!(errs.is_empty(), "{} mismatches:\n{}", errs.len(), errs.join("\n"));
    assert_eq!(checked, st.len(), "every tensor of sampler.safetensors is checked");
}
