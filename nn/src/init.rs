//! Parameter initialisers with PyTorch's defaults, drawn from the seeded Philox stream so that a
//! model built twice with one seed is bit-identical.

use tensor::{DType, Tensor};

/// A seeded source of initial values; each draw takes a fresh, disjoint range of the stream.
#[derive(Clone, Debug)]
pub struct Init {
    pub seed: u64,
    offset: u64,
    pub dtype: DType,
}

impl Init {
    pub fn new(seed: u64) -> Self {
        Self { seed, offset: 0, dtype: DType::F32 }
    }
    pub fn with_dtype(seed: u64, dtype: DType) -> Self {
        Self { seed, offset: 0, dtype }
    }

    /// Uniform in `[-bound, bound)`.
    pub fn uniform(&mut self, shape: &[usize], bound: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let t = if bound > 0.0 {
            Tensor::rand_uniform(shape, -bound, bound, self.seed, self.offset, self.dtype)
                .expect("valid bounds")
        } else {
            Tensor::zeros(shape, self.dtype)
        };
        // keep ranges 4-aligned so each draw starts on a fresh Philox block
        self.offset += (n as u64).div_ceil(4) * 4;
        t
    }

    /// PyTorch's default weight init for Linear/Conv: Kaiming-uniform with a = √5, i.e.
    /// U(±1/√fan_in) (gain √(2/(1+a²)) = √(1/3), bound = gain·√(3/fan_in)).
    pub fn kaiming_uniform(&mut self, shape: &[usize], fan_in: usize) -> Tensor {
        self.uniform(shape, 1.0 / (fan_in.max(1) as f64).sqrt())
    }

    /// PyTorch's default bias init: U(±1/√fan_in).
    pub fn bias(&mut self, len: usize, fan_in: usize) -> Tensor {
        self.uniform(&[len], 1.0 / (fan_in.max(1) as f64).sqrt())
    }

    pub fn zeros(&self, shape: &[usize]) -> Tensor {
        Tensor::zeros(shape, self.dtype)
    }

    pub fn ones(&self, shape: &[usize]) -> Tensor {
        Tensor::ones(shape, self.dtype)
    }
}
