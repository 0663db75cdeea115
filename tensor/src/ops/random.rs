//! Seeded random tensors from the counter-based Philox4x32-10 stream (`kernels::rng`).
//!
//! The same (seed, offset) gives the same values on every run and thread count; element `i` of a
//! tensor drawn at `offset` is element `offset + i` of the stream, so a generator can hand out
//! disjoint ranges.

use super::{FloatElem, dispatch_float};
use crate::{DType, Device, Error, Result, Tensor};
use kernels::pool::PooledVec;
use kernels::rng;

fn uniform<T: FloatElem>(shape: &[usize], seed: u64, offset: u64, lo: f64, hi: f64) -> Tensor {
    let mut v = PooledVec::<T>::zeros(kernels::strided::numel(shape));
    rng::fill_uniform(seed, offset, T::from_f64(lo), T::from_f64(hi), &mut v);
    Tensor::from_pooled(v, shape)
}

fn normal<T: FloatElem>(shape: &[usize], seed: u64, offset: u64, mean: f64, std: f64) -> Tensor {
    let mut v = PooledVec::<T>::zeros(kernels::strided::numel(shape));
    rng::fill_normal(seed, offset, T::from_f64(mean), T::from_f64(std), &mut v);
    Tensor::from_pooled(v, shape)
}

fn compute_dtype(op: &'static str, dtype: DType) -> Result<DType> {
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype, expected: "a float dtype" });
    }
    Ok(dtype.compute_dtype())
}

impl Tensor {
    /// Uniform values in `[lo, hi)` from the Philox stream at (`seed`, `offset`).
    pub fn rand_uniform(
        shape: &[usize],
        lo: f64,
        hi: f64,
        seed: u64,
        offset: u64,
        dtype: DType,
    ) -> Result<Tensor> {
        Self::rand_uniform_on(shape, lo, hi, seed, offset, dtype, Device::Cpu)
    }

    /// [`Tensor::rand_uniform`] drawn directly on `device` (the same values on every device: the GPU
    /// kernel reproduces the CPU stream bit for bit).
    pub fn rand_uniform_on(
        shape: &[usize],
        lo: f64,
        hi: f64,
        seed: u64,
        offset: u64,
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !lo.is_finite() || !hi.is_finite() {
            return Err(Error::invalid("rand_uniform", format!("need finite lo < hi, got [{lo}, {hi})")));
        }
        let cd = compute_dtype("rand_uniform", dtype)?;
        if !device.is_cpu() {
            device.ensure_available()?;
            #[cfg(feature = "cuda")]
            return crate::cuda::ops::random::fill(false, shape, lo, hi, seed, offset, dtype, device);
        }
        let probe = Tensor::zeros(&[], cd);
        dispatch_float!(probe, uniform(shape, seed, offset, lo, hi)).cast_back(dtype)
    }

    /// Normal values with `mean` and `std` from the Philox stream at (`seed`, `offset`).
    pub fn randn(
        shape: &[usize],
        mean: f64,
        std: f64,
        seed: u64,
        offset: u64,
        dtype: DType,
    ) -> Result<Tensor> {
        Self::randn_on(shape, mean, std, seed, offset, dtype, Device::Cpu)
    }

    /// [`Tensor::randn`] drawn directly on `device` (GPU normals agree with the CPU's to a few ulp:
    /// CUDA's log/sin/cos differ from the host libm in the last bits).
    pub fn randn_on(
        shape: &[usize],
        mean: f64,
        std: f64,
        seed: u64,
        offset: u64,
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        if std.is_nan() || std < 0.0 || !mean.is_finite() || !std.is_finite() {
            return Err(Error::invalid(
                "randn",
                format!("need finite mean and std >= 0, got mean {mean}, std {std}"),
            ));
        }
        let cd = compute_dtype("randn", dtype)?;
        if !device.is_cpu() {
            device.ensure_available()?;
            #[cfg(feature = "cuda")]
            return crate::cuda::ops::random::fill(true, shape, mean, std, seed, offset, dtype, device);
        }
        let probe = Tensor::zeros(&[], cd);
        dispatch_float!(probe, normal(shape, seed, offset, mean, std)).cast_back(dtype)
    }
}
