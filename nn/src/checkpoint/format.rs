//! The safetensors layout: dtype names, the JSON header (built on write, validated on read) and the
//! little-endian byte conversion of tensor data.
//!
//! A file is `[u64 LE header length N][N bytes of UTF-8 JSON][data buffer]`. The header maps tensor
//! names to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the data buffer)
//! plus an optional `"__metadata__"` object of string → string.
//!
//! Decisions of this reader (stricter than some writers, never looser than the spec):
//! - the data buffer must be covered exactly: no overlaps, no gaps, no trailing bytes (the spec says
//!   the buffer "needs to be entirely indexed, and cannot contain holes");
//! - a key appearing twice (top level, inside an entry or inside `__metadata__`) is an error;
//! - an entry with a field other than `dtype`, `shape`, `data_offsets` is an error;
//! - a shape whose product overflows `usize` is an error even when a dimension is 0;
//! - a zero-length tensor must sit at a boundary between tensors (not inside another's range);
//! - the header may be at most [`MAX_HEADER_LEN`] bytes.

use crate::checkpoint::value::{Json, JsonObject, json_type};
use kernels::StridedLayout;
use kernels::pool::PooledVec;
use std::collections::BTreeMap;
use std::io::Write;
use tensor::storage::CpuStorage;
use tensor::{DType, Tensor};

/// Largest header this reader accepts (the reference implementation's bound).
pub const MAX_HEADER_LEN: u64 = 100_000_000;
/// The reserved header key holding string metadata.
pub const METADATA_KEY: &str = "__metadata__";

/// The safetensors name of a dtype (`F32`, `BF16`, `I64`, …).
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "F32",
        DType::F64 => "F64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I64 => "I64",
        DType::U8 => "U8",
    }
}

/// Dtypes the safetensors spec defines that this engine has no tensor type for.
const SPEC_ONLY_DTYPES: [&str; 12] =
    ["BOOL", "I8", "I16", "U16", "I32", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3"];

/// Parses a safetensors dtype name (exact, upper case as the spec writes them).
pub fn parse_dtype(s: &str) -> Result<DType, String> {
    match s {
        "F32" => Ok(DType::F32),
        "F64" => Ok(DType::F64),
        "F16" => Ok(DType::F16),
        "BF16" => Ok(DType::BF16),
        "I64" => Ok(DType::I64),
        "U8" => Ok(DType::U8),
        _ if SPEC_ONLY_DTYPES.contains(&s) => {
            Err(format!("dtype `{s}` is a safetensors dtype this engine does not support"))
        }
        _ => Err(format!("unknown dtype `{s}` (expected one of F32, F64, F16, BF16, I64, U8)")),
    }
}

/// One tensor's entry in a validated header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, row-major.
    pub shape: Vec<usize>,
    /// `[begin, end)` in bytes, relative to the start of the data buffer.
    pub data_offsets: (usize, usize),
}

/// A header that passed every check: offsets lie inside the data buffer and cover it exactly.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub tensors: BTreeMap<String, TensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// Byte position of the data buffer in the file (8 + header length).
    pub data_start: usize,
}

/// Validates a whole file image and returns its header. Reads nothing outside `bytes`; the message of
/// an error names the tensor and the problem.
pub(crate) fn parse(bytes: &[u8]) -> Result<Header, String> {
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(format!("file is {} bytes, shorter than the 8-byte header length", bytes.len()));
    };
    let n = u64::from_le_bytes(*len_bytes);
    if n > MAX_HEADER_LEN {
        return Err(format!("header length {n} exceeds the limit of {MAX_HEADER_LEN} bytes"));
    }
    if n > rest.len() as u64 {
        return Err(format!(
            "header length {n} runs past the end of the file ({} bytes after the length prefix)",
            rest.len()
        ));
    }
    let n = n as usize; // ≤ rest.len(), so it fits
    let (header_bytes, data) = rest.split_at(n);
    let text = std::str::from_utf8(header_bytes).map_err(|e| format!("header is not UTF-8: {e}"))?;
    let top: JsonObject = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => o,
        Ok(other) => return Err(format!("header is JSON but not an object (found {})", other.type_name())),
        Err(e) => return Err(format!("header is not valid JSON: {e}")),
    };

    let mut tensors = BTreeMap::new();
    let mut metadata = None;
    for (name, value) in top.entries {
        if tensors.contains_key(&name) || (name == METADATA_KEY && metadata.is_some()) {
            return Err(format!("key `{name}` appears twice in the header"));
        }
        if name == METADATA_KEY {
            metadata = Some(parse_metadata(value)?);
        } else {
            let info = parse_entry(&name, value, data.len())?;
            tensors.insert(name, info);
        }
    }
    check_coverage(&tensors, data.len())?;
    Ok(Header { tensors, metadata: metadata.unwrap_or_default(), data_start: 8 + n })
}

fn parse_metadata(value: Json) -> Result<BTreeMap<String, String>, String> {
    let Json::Object(obj) = value else {
        return Err(format!("`{METADATA_KEY}` must be an object, found {}", value.type_name()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in obj.entries {
        let serde_json::Value::String(s) = v.into_plain() else {
            return Err(format!("`{METADATA_KEY}` value of key `{k}` is not a string"));
        };
        if out.insert(k.clone(), s).is_some() {
            return Err(format!("`{METADATA_KEY}` key `{k}` appears twice"));
        }
    }
    Ok(out)
}

fn parse_entry(name: &str, value: Json, data_len: usize) -> Result<TensorInfo, String> {
    let Json::Object(obj) = value else {
        return Err(format!("tensor `{name}`: entry must be an object, found {}", value.type_name()));
    };
    let (mut dtype, mut shape, mut offsets) = (None, None, None);
    for (field, v) in obj.entries {
        let slot = match field.as_str() {
            "dtype" => &mut dtype,
            "shape" => &mut shape,
            "data_offsets" => &mut offsets,
            _ => {
                return Err(format!(
                    "tensor `{name}`: unknown field `{field}` (expected dtype, shape, data_offsets)"
                ));
            }
        };
        if slot.replace(v.into_plain()).is_some() {
            return Err(format!("tensor `{name}`: field `{field}` appears twice"));
        }
    }
    let missing = |f: &str| format!("tensor `{name}`: missing field `{f}`");
    let dtype = match dtype.ok_or_else(|| missing("dtype"))? {
        serde_json::Value::String(s) => parse_dtype(&s).map_err(|e| format!("tensor `{name}`: {e}"))?,
        other => {
            return Err(format!("tensor `{name}`: `dtype` must be a string, found {}", json_type(&other)));
        }
    };
    let shape = usize_array(name, "shape", shape.ok_or_else(|| missing("shape"))?)?;
    let offsets = usize_array(name, "data_offsets", offsets.ok_or_else(|| missing("data_offsets"))?)?;
    let [begin, end] = offsets[..] else {
        return Err(format!("tensor `{name}`: `data_offsets` must have 2 elements, found {}", offsets.len()));
    };
    if begin > end {
        return Err(format!("tensor `{name}`: data_offsets [{begin}, {end}] have begin > end"));
    }
    if end > data_len {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] end past the data buffer of {data_len} bytes"
        ));
    }
    // Zero dims are counted as 1 here so that no later stride or size product can overflow either.
    if shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1))).is_none() {
        return Err(format!("tensor `{name}`: shape {shape:?} has an element count that overflows"));
    }
    let numel: usize = shape.iter().product();
    let nbytes = numel.checked_mul(dtype.size_in_bytes()).ok_or_else(|| {
        format!("tensor `{name}`: shape {shape:?} of {} overflows the byte count", dtype_name(dtype))
    })?;
    if nbytes != end - begin {
        return Err(format!(
            "tensor `{name}`: shape {shape:?} of {} needs {nbytes} bytes but data_offsets [{begin}, {end}] \
             span {}",
            dtype_name(dtype),
            end - begin
        ));
    }
    Ok(TensorInfo { dtype, shape, data_offsets: (begin, end) })
}

fn usize_array(name: &str, field: &str, v: serde_json::Value) -> Result<Vec<usize>, String> {
    let bad = |what: String| {
        format!("tensor `{name}`: `{field}` must be an array of non-negative integers, {what}")
    };
    let serde_json::Value::Array(items) = v else {
        return Err(bad(format!("found {}", json_type(&v))));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let u = x.as_u64().ok_or_else(|| bad(format!("element {i} is {x}")))?;
            usize::try_from(u).map_err(|_| bad(format!("element {i} ({u}) does not fit in usize")))
        })
        .collect()
}

/// The tensors' ranges must tile `[0, data_len)` exactly.
fn check_coverage(tensors: &BTreeMap<String, TensorInfo>, data_len: usize) -> Result<(), String> {
    let mut ranges: Vec<(usize, usize, &str)> =
        tensors.iter().map(|(n, t)| (t.data_offsets.0, t.data_offsets.1, n.as_str())).collect();
    ranges.sort_unstable();
    let mut cursor = 0usize;
    let mut prev: Option<(usize, usize, &str)> = None;
    for &(b, e, name) in &ranges {
        if b < cursor {
            let (pb, pe, pn) = prev.unwrap_or((0, 0, ""));
            return Err(format!("tensors `{pn}` [{pb}, {pe}] and `{name}` [{b}, {e}] overlap"));
        }
        if b > cursor {
            return Err(format!(
                "gap in the data buffer: bytes [{cursor}, {b}) before tensor `{name}` belong to no tensor"
            ));
        }
        cursor = e;
        prev = Some((b, e, name));
    }
    if cursor != data_len {
        return Err(format!(
            "bytes [{cursor}, {data_len}) at the end of the data buffer belong to no tensor"
        ));
    }
    Ok(())
}

/// Builds the header text for tensors already laid out (`name, dtype, shape, begin, end`), padded with
/// spaces to a multiple of 8 bytes so that the data buffer starts 8-aligned. Metadata comes first, then
/// tensors sorted by name: the same inputs always give the same bytes.
pub(crate) fn build_header(
    entries: &[(&str, DType, &[usize], usize, usize)],
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let q = |s: &str| serde_json::to_string(s).expect("serialising a str cannot fail");
    let mut parts = Vec::with_capacity(entries.len() + 1);
    if !metadata.is_empty() {
        let kv: Vec<String> = metadata.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
        parts.push(format!("{}:{{{}}}", q(METADATA_KEY), kv.join(",")));
    }
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|e| e.0);
    for (name, dtype, shape, b, e) in sorted {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        parts.push(format!(
            "{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{b},{e}]}}",
            q(name),
            dtype_name(*dtype),
            dims.join(",")
        ));
    }
    let mut h = format!("{{{}}}", parts.join(",")).into_bytes();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    h
}

/// Writes a tensor's elements row-major, little-endian (any layout; views are copied contiguous).
pub(crate) fn write_tensor_data(t: &Tensor, w: &mut dyn Write) -> std::io::Result<()> {
    // GPU tensors are copied to the host first.
    let c = t.to_cpu().and_then(|h| h.contiguous()).map_err(std::io::Error::other)?;
    let (o, n) = (c.offset(), c.numel());
    match c.storage().cpu().map_err(std::io::Error::other)? {
        CpuStorage::F32(v) => write_le(&v[o..o + n], w, f32::to_le_bytes),
        CpuStorage::F64(v) => write_le(&v[o..o + n], w, f64::to_le_bytes),
        CpuStorage::F16(v) | CpuStorage::BF16(v) => write_le(&v[o..o + n], w, u16::to_le_bytes),
        CpuStorage::I64(v) => write_le(&v[o..o + n], w, i64::to_le_bytes),
        CpuStorage::U8(v) => w.write_all(&v[o..o + n]),
    }
}

fn write_le<T: Copy, const N: usize>(
    v: &[T],
    w: &mut dyn Write,
    to_le: fn(T) -> [u8; N],
) -> std::io::Result<()> {
    const CHUNK: usize = 1 << 14;
    let mut buf = Vec::with_capacity(CHUNK * N);
    for chunk in v.chunks(CHUNK) {
        buf.clear();
        buf.extend(chunk.iter().flat_map(|&x| to_le(x)));
        w.write_all(&buf)?;
    }
    Ok(())
}

/// Builds a contiguous tensor from little-endian bytes whose length was validated against the shape.
pub(crate) fn tensor_from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor, String> {
    let n = bytes.len() / dtype.size_in_bytes();
    let storage = match dtype {
        DType::F32 => CpuStorage::F32(from_le(bytes, n, f32::from_le_bytes)),
        DType::F64 => CpuStorage::F64(from_le(bytes, n, f64::from_le_bytes)),
        DType::F16 => CpuStorage::F16(from_le(bytes, n, u16::from_le_bytes)),
        DType::BF16 => CpuStorage::BF16(from_le(bytes, n, u16::from_le_bytes)),
        DType::I64 => CpuStorage::I64(from_le(bytes, n, i64::from_le_bytes)),
        DType::U8 => CpuStorage::U8(PooledVec::from_slice(bytes)),
    };
    Tensor::from_storage(storage, StridedLayout::contiguous(shape)).map_err(|e| e.to_string())
}

fn from_le<T: kernels::pool::Poolable, const N: usize>(
    bytes: &[u8],
    n: usize,
    f: fn([u8; N]) -> T,
) -> PooledVec<T> {
    let (chunks, _) = bytes.as_chunks::<N>();
    PooledVec::from_iter_exact(n.min(chunks.len()), chunks.iter().map(|c| f(*c)))
}
