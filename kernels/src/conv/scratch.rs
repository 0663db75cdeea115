//! Pooled scratch for a generic `T: Float`.
//!
//! `kernels::pool::PooledVec` needs `T: Poolable`, which `Float` does not imply (and `float.rs` is
//! shared), so this wrapper picks the `f32` / `f64` pool by `TypeId` and falls back to a plain `Vec`
//! for any other `Float` type. (If `Float` ever gains `Poolable` as a supertrait, this file can go.)

use crate::Float;
use crate::pool::PooledVec;
use std::any::TypeId;

enum Inner<T> {
    F32(PooledVec<f32>),
    F64(PooledVec<f64>),
    Plain(Vec<T>),
}

/// A zero-filled scratch buffer of `T`, returned to the pool on drop.
pub(crate) struct Scratch<T: Float> {
    inner: Inner<T>,
}

impl<T: Float> Scratch<T> {
    /// `len` zeros.
    pub(crate) fn zeros(len: usize) -> Self {
        let t = TypeId::of::<T>();
        let inner = if t == TypeId::of::<f32>() {
            Inner::F32(PooledVec::zeros(len))
        } else if t == TypeId::of::<f64>() {
            Inner::F64(PooledVec::zeros(len))
        } else {
            Inner::Plain(vec![T::ZERO; len])
        };
        Self { inner }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.inner {
            Inner::F32(v) => {
                let s: &mut [f32] = v.as_mut_slice();
                // SAFETY: the F32 variant is only built when `TypeId::of::<T>() == TypeId::of::<f32>()`,
                // so `T` is `f32`: same size, alignment and validity; the slice keeps the borrow of `self`.
                unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<T>(), s.len()) }
            }
            Inner::F64(v) => {
                let s: &mut [f64] = v.as_mut_slice();
                // SAFETY: as above, the F64 variant implies `T` is `f64`.
                unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<T>(), s.len()) }
            }
            Inner::Plain(v) => v.as_mut_slice(),
        }
    }
}
