//! Sinusoidal time features and the two-layer embedding MLPs (time and micro-conditioning).

use crate::Result;
use autograd::{Var, scope};
use nn::{Init, Linear, Module, Param, join};
use tensor::{DType, Tensor};

/// `[sin(v·f), cos(v·f)]` with `f_i = exp(−ln(10⁴)·i/half)`, `half = d_t/8`: [B] → [B, d_t/4]
/// (sin block first, ml-mdm's `create_temporal_embedding`).
pub fn sinusoidal_features(values: &Tensor, d_t: usize, dtype: DType) -> Result<Var> {
    let half = d_t / 8;
    let b = values.numel();
    let k = (10000f64).ln() / half as f64;
    let freqs: Vec<f64> = (0..half).map(|i| (-(i as f64) * k).exp()).collect();
    // The table is built on the host and moved to the timesteps' device.
    let freqs = Tensor::from_vec(freqs, &[1, half])?.to_dtype(dtype)?.to_device(values.device())?;
    let arg = values.to_dtype(dtype)?.reshape(&[b, 1])?.mul(&freqs)?;
    let feats = Tensor::cat(&[&arg.sin()?, &arg.cos()?], 1)?;
    Ok(Var::constant(feats))
}

/// `Linear₂(SiLU(Linear₁(features)))`: d_t/4 → d_t → d_t. Listed as `0`, `1` when used as a
/// micro-conditioning MLP.
#[derive(Clone, Debug)]
pub struct EmbeddingMlp {
    pub layer1: Linear,
    pub layer2: Linear,
}

impl EmbeddingMlp {
    /// `zero_last` zero-initialises the second Linear (micro-conditioning).
    pub fn new(init: &mut Init, d_t: usize, zero_last: bool) -> Self {
        let layer1 = Linear::new(init, d_t / 4, d_t, true);
        let layer2 =
            if zero_last { Linear::zeros(init, d_t, d_t, true) } else { Linear::new(init, d_t, d_t, true) };
        Self { layer1, layer2 }
    }

    /// Embeds `values` [B]; `names` are the scope labels of the two layers.
    pub fn forward(&self, values: &Tensor, names: [&str; 2]) -> Result<Var> {
        let d_t = self.layer2.out_features();
        let feats = sinusoidal_features(values, d_t, self.layer1.weight.value().dtype())?;
        let h = {
            let _s = scope(names[0]);
            self.layer1.forward(&feats)?
        };
        let _s = scope(names[1]);
        Ok(self.layer2.forward(&h.silu()?)?)
    }
}

/// One micro-conditioning input: key, default value and its MLP (`cond_layers.<key>.{0,1}`).
#[derive(Clone, Debug)]
pub struct MicroCondLayer {
    pub key: String,
    pub default: f64,
    pub mlp: EmbeddingMlp,
}

impl MicroCondLayer {
    /// The embedding of `value` [B] (or of the default when `None`): "scale" is mapped to
    /// `min(v/d, 1)·d`, any other key to `1000·v`.
    pub fn forward(&self, value: Option<&Tensor>, batch: usize) -> Result<Var> {
        let w = self.mlp.layer1.weight.value();
        let (dtype, dev) = (w.dtype(), w.device());
        let v = match value {
            Some(v) => v.to_dtype(dtype)?,
            None => Tensor::full_on(&[batch], self.default, dtype, dev)?,
        };
        let v = if self.key == "scale" {
            v.mul_scalar(1.0 / self.default)?.clamp(f64::NEG_INFINITY, 1.0)?.mul_scalar(self.default)?
        } else {
            v.mul_scalar(1000.0)?
        };
        let _s = scope(format!("cond_layers.{}", self.key));
        self.mlp.forward(&v, ["0", "1"])
    }
}

impl Module for MicroCondLayer {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.mlp.layer1.visit(&join(prefix, "0"), f);
        self.mlp.layer2.visit(&join(prefix, "1"), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.mlp.layer1.visit_mut(&join(prefix, "0"), f);
        self.mlp.layer2.visit_mut(&join(prefix, "1"), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "scale" is clamped at its default (`min(v/d, 1)·d`): larger values embed like the default,
    /// smaller ones do not. The zero-initialised second layer would hide everything, so the test
    /// reads the first layer's output through a non-zero second layer.
    #[test]
    fn scale_micro_conditioning_is_clamped_at_its_default() {
        let mut init = Init::new(3);
        let layer = MicroCondLayer {
            key: "scale".into(),
            default: 32.0,
            mlp: EmbeddingMlp::new(&mut init, 32, false),
        };
        let emb = |v: Option<f64>| {
            let t = v.map(|v| Tensor::from_vec(vec![v as f32], &[1]).unwrap());
            layer.forward(t.as_ref(), 1).unwrap().value().to_vec_f64()
        };
        let default = emb(None);
        assert_eq!(emb(Some(32.0)), default);
        assert_eq!(emb(Some(64.0)), default, "above the default is clamped");
        assert_ne!(emb(Some(16.0)), default, "below the default is not");
    }
}
