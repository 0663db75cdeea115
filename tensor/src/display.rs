//! `Display` (values, truncated like PyTorch) and `Debug` (layout) for tensors.

use crate::Tensor;
use std::fmt;

/// Above this many elements, each dimension shows its first and last [`EDGE`] entries.
const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

fn fmt_value(v: f64, float: bool, width: usize) -> String {
    let s = if !float {
        format!("{}", v as i64)
    } else if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else if v != 0.0 && (v.abs() >= 1e8 || v.abs() < 1e-4) {
        format!("{v:.4e}")
    } else {
        format!("{v:.4}")
    };
    format!("{s:>width$}")
}

impl Tensor {
    fn write_values(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = self.shape().to_vec();
        let float = self.dtype().is_float();
        let summarize = self.numel() > THRESHOLD;
        let vals = match self.try_to_vec_f64() {
            Ok(v) => v,
            Err(e) => return write!(f, "<values unavailable: {e}>"),
        };
        let strides = kernels::strided::contiguous_strides(&shape);
        let width = vals.iter().take(10_000).map(|&v| fmt_value(v, float, 0).len()).max().unwrap_or(1);
        fn rec(
            f: &mut fmt::Formatter<'_>,
            vals: &[f64],
            shape: &[usize],
            strides: &[usize],
            d: usize,
            base: usize,
            ctx: (bool, bool, usize),
        ) -> fmt::Result {
            let (float, summarize, width) = ctx;
            if d == shape.len() {
                return f.write_str(&fmt_value(vals[base], float, width));
            }
            f.write_str("[")?;
            let n = shape[d];
            let mut first = true;
            for i in 0..n {
                if summarize && n > 2 * EDGE && i == EDGE {
                    f.write_str(if d + 1 == shape.len() { ", ..." } else { ",\n..." })?;
                    continue;
                }
                if summarize && n > 2 * EDGE && i > EDGE && i < n - EDGE {
                    continue;
                }
                if !first {
                    if d + 1 == shape.len() {
                        f.write_str(", ")?;
                    } else {
                        f.write_str(",\n")?;
                        for _ in 0..(d + 8) {
                            f.write_str(" ")?;
                        }
                    }
                }
                first = false;
                rec(f, vals, shape, strides, d + 1, base + i * strides[d], ctx)?;
            }
            f.write_str("]")
        }
        rec(f, &vals, &shape, &strides, 0, 0, (float, summarize, width))
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tensor(")?;
        self.write_values(f)?;
        write!(f, ", shape={:?}, dtype={}", self.shape(), self.dtype())?;
        if !self.device().is_cpu() {
            write!(f, ", device={}", self.device())?;
        }
        f.write_str(")")
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor {{ shape: {:?}, strides: {:?}, offset: {}, dtype: {}, device: {}, contiguous: {}, storage_len: {} }}",
            self.shape(),
            self.strides(),
            self.offset(),
            self.dtype(),
            self.device(),
            self.is_contiguous(),
            self.storage().len()
        )
    }
}
