"""DDPM and DDIM single-step references (mdm-spec §5.2, ml-mdm `get_prediction_xt_last`), float64 numpy.

Given z_t, a v-prediction v, g = γ_t, g' = γ_s (s < t) and fixed noise n:
  x̂₀ = √g·z_t − √(1−g)·v, then clipped to [−1, 1] (the CLIP threshold);
  α = g/g', β = 1 − α, β̃ = β(1−g')/(1−g);
  DDPM:      z_s = x̂₀·β·√g'/(1−g) + z_t·√α·(1−g')/(1−g) + √β̃·n
  DDIM(η):   ε̂ = (z_t − √g·x̂₀)/√(1−g);  z_s = √g'·x̂₀ + √(1−g'−η²β̃)·ε̂ + η·√β̃·n
Written from the spec's formulas independently of the Rust code.
"""

import numpy as np

# (name, g, g') pairs: an early, a middle and a late step of the DEEPFLOYD grid
STEPS = [("early", 0.0241, 0.0513), ("middle", 0.4938, 0.5312), ("late", 0.9721, 0.99937)]
KINDS = [("ddpm", None), ("ddim0", 0.0), ("ddim05", 0.5), ("ddim1", 1.0)]


def step(z, v, g, gp, eta, n):
    x0 = np.clip(np.sqrt(g) * z - np.sqrt(1 - g) * v, -1.0, 1.0)
    alpha = g / gp
    beta = 1 - alpha
    beta_t = beta * (1 - gp) / (1 - g)
    if eta is None:
        mu = x0 * beta * np.sqrt(gp) / (1 - g) + z * np.sqrt(alpha) * (1 - gp) / (1 - g)
        return x0, mu + np.sqrt(beta_t) * n
    eps = (z - np.sqrt(g) * x0) / np.sqrt(1 - g)
    return x0, np.sqrt(gp) * x0 + np.sqrt(1 - gp - eta**2 * beta_t) * eps + eta * np.sqrt(beta_t) * n


def sampler_fixture(rng):
    t = {}
    shape = (2, 3, 4, 4)
    for name, g, gp in STEPS:
        z = rng.standard_normal(shape)
        v = rng.standard_normal(shape)
        n = rng.standard_normal(shape)
        t[f"{name}.z_t"], t[f"{name}.v"], t[f"{name}.noise"] = z, v, n
        t[f"{name}.gammas"] = np.array([g, gp])
        for kind, eta in KINDS:
            x0, zs = step(z, v, g, gp, eta, n)
            t[f"{name}.{kind}.x0"], t[f"{name}.{kind}.z_s"] = x0, zs
    return t
