//! Dropout and Embedding.

use crate::{Init, Param, Result};
use autograd::Var;
use std::sync::atomic::{AtomicU64, Ordering};
use tensor::{DType, Tensor};

/// Inverted dropout: in training mode zeroes each element with probability `p` and scales the rest
/// by 1/(1-p); identity in eval mode. Draws from the Philox stream at (`seed`, running offset).
#[derive(Debug)]
pub struct Dropout {
    pub p: f64,
    pub training: bool,
    seed: u64,
    offset: AtomicU64,
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        Self {
            p: self.p,
            training: self.training,
            seed: self.seed,
            offset: AtomicU64::new(self.offset.load(Ordering::Relaxed)),
        }
    }
}

impl Dropout {
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(crate::Error::Config(format!("Dropout: p = {p} must be in [0, 1)")));
        }
        Ok(Self { p, training: true, seed, offset: AtomicU64::new(0) })
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let n = x.value().numel() as u64;
        let off = self.offset.fetch_add(n.div_ceil(4) * 4, Ordering::Relaxed);
        let device = x.value().device();
        let u = Tensor::rand_uniform_on(x.shape(), 0.0, 1.0, self.seed, off, DType::F32, device)?;
        let drop = u.lt(&Tensor::full_on(&[], self.p, DType::F32, device)?)?;
        Ok(x.masked_fill(&drop, 0.0)?.mul_scalar(1.0 / (1.0 - self.p))?)
    }
}

impl crate::Module for Dropout {
    fn visit(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Param)) {}
    fn visit_mut(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// Lookup table [num, dim] (PyTorch init N(0, 1) approximated by the Philox normal stream).
#[derive(Clone, Debug)]
pub struct Embedding {
    pub weight: Param,
}

impl Embedding {
    pub fn new(init: &mut Init, num: usize, dim: usize) -> Result<Self> {
        let off = init.seed.wrapping_mul(0x9E37_79B9).wrapping_add((num * dim) as u64);
        Ok(Self { weight: Param::new(Tensor::randn(&[num, dim], 0.0, 1.0, init.seed, off, init.dtype)?) })
    }
    /// indices: i64 of any shape → [..., dim].
    pub fn forward(&self, indices: &Tensor) -> Result<Var> {
        let flat = indices.reshape(&[indices.numel()])?;
        let rows = self.weight.var().index_select(0, &flat)?;
        let mut shape = indices.shape().to_vec();
        shape.push(self.weight.value().shape()[1]);
        Ok(rows.reshape(&shape)?)
    }
}

crate::impl_module!(Embedding { params: [weight], children: [] });
