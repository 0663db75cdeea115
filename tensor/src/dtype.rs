//! Element types a tensor can hold.

use half::{bf16, f16};
use kernels::pool::{Poolable, PooledVec};
use std::fmt;

/// Element type of a tensor.
///
/// f16 and bf16 are stored as such (2 bytes) and computed in f32 on the CPU: an op widens its inputs,
/// runs the f32 kernel and rounds the result back. i64 holds indices, u8 holds masks and booleans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    U8,
}

impl DType {
    pub const ALL: [DType; 6] = [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64, DType::U8];

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
        }
    }

    /// Name as in safetensors / PyTorch short names.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::U8 => "u8",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// f16 / bf16: stored in 2 bytes, computed in f32.
    pub fn is_half(self) -> bool {
        matches!(self, DType::F16 | DType::BF16)
    }

    /// The type the CPU computes this dtype in (f32 for half types, itself otherwise).
    pub fn compute_dtype(self) -> DType {
        if self.is_half() { DType::F32 } else { self }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "f32" | "float32" | "F32" => DType::F32,
            "f64" | "float64" | "F64" => DType::F64,
            "f16" | "float16" | "F16" => DType::F16,
            "bf16" | "bfloat16" | "BF16" => DType::BF16,
            "i64" | "int64" | "I64" => DType::I64,
            "u8" | "uint8" | "U8" => DType::U8,
            _ => return Err(format!("unknown dtype name `{s}`")),
        })
    }
}

/// A Rust element type that maps to a [`DType`].
pub trait WithDType: Copy + Send + Sync + PartialEq + fmt::Debug + 'static {
    const DTYPE: DType;
    fn elem_to_f64(self) -> f64;
    fn elem_from_f64(v: f64) -> Self;
    /// Wraps a vector as CPU storage.
    fn into_storage(v: Vec<Self>) -> crate::storage::CpuStorage;
    /// The storage's elements if it holds this type.
    fn slice(s: &crate::storage::CpuStorage) -> Option<&[Self]>;
}

macro_rules! with_dtype_native {
    ($t:ty, $d:ident, $to:expr, $from:expr) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$d;
            fn elem_to_f64(self) -> f64 {
                $to(self)
            }
            fn elem_from_f64(v: f64) -> Self {
                $from(v)
            }
            fn into_storage(v: Vec<Self>) -> crate::storage::CpuStorage {
                crate::storage::CpuStorage::$d(PooledVec::from_vec(v))
            }
            fn slice(s: &crate::storage::CpuStorage) -> Option<&[Self]> {
                match s {
                    crate::storage::CpuStorage::$d(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
with_dtype_native!(f32, F32, |x: f32| x as f64, |v: f64| v as f32);
with_dtype_native!(f64, F64, |x: f64| x, |v: f64| v);
with_dtype_native!(i64, I64, |x: i64| x as f64, |v: f64| v as i64);
with_dtype_native!(u8, U8, |x: u8| x as f64, |v: f64| v as u8);

macro_rules! with_dtype_half {
    ($t:ty, $d:ident) => {
        impl WithDType for $t {
            const DTYPE: DType = DType::$d;
            fn elem_to_f64(self) -> f64 {
                self.to_f64()
            }
            fn elem_from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            fn into_storage(v: Vec<Self>) -> crate::storage::CpuStorage {
                crate::storage::CpuStorage::$d(PooledVec::from_vec(
                    v.into_iter().map(|x| x.to_bits()).collect(),
                ))
            }
            fn slice(s: &crate::storage::CpuStorage) -> Option<&[Self]> {
                use half::slice::HalfBitsSliceExt;
                match s {
                    crate::storage::CpuStorage::$d(v) => Some(v.as_slice().reinterpret_cast()),
                    _ => None,
                }
            }
        }
    };
}
with_dtype_half!(f16, F16);
with_dtype_half!(bf16, BF16);

/// Compile-time check that the pool covers every storage element type.
#[allow(dead_code)]
fn _poolable<T: Poolable>() {}
#[allow(dead_code)]
fn _all_poolable() {
    _poolable::<f32>();
    _poolable::<f64>();
    _poolable::<u16>();
    _poolable::<i64>();
    _poolable::<u8>();
}
