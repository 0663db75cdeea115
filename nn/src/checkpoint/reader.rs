//! Reading safetensors files: a memory map, validated in full before any tensor is handed out.

use super::StateDict;
use super::format::{self, Header, TensorInfo};
use crate::{Error, Result};
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use tensor::Tensor;

enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A validated safetensors file. The header is checked completely on open (see
/// [`format`](mod@super::format) for the rules); tensor data stays in the mapped file until
/// [`SafeTensors::get`] copies one tensor out.
pub struct SafeTensors {
    path: PathBuf,
    bytes: Bytes,
    header: Header,
}

impl std::fmt::Debug for SafeTensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeTensors")
            .field("path", &self.path)
            .field("tensors", &self.header.tensors)
            .field("metadata", &self.header.metadata)
            .finish()
    }
}

impl SafeTensors {
    /// Maps and validates a file. Every malformation is an [`Error::Checkpoint`] naming the file, the
    /// tensor and the problem; a missing or unreadable file is [`Error::Io`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io { path: path.display().to_string(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 8 {
            return Err(Error::Checkpoint {
                path: path.display().to_string(),
                msg: format!("file is {len} bytes, shorter than the 8-byte header length"),
            });
        }
        // SAFETY: the map is read-only and never outlives `self`. Mapped files must not be truncated or
        // rewritten in place while mapped; this crate's writer never does that (it renames a new file
        // over the old one, which leaves the mapped inode intact).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::validate(path.to_path_buf(), Bytes::Mapped(map))
    }

    /// Validates an in-memory file image; `label` stands for the path in error messages.
    pub fn from_bytes(bytes: Vec<u8>, label: &str) -> Result<Self> {
        Self::validate(PathBuf::from(label), Bytes::Owned(bytes))
    }

    fn validate(path: PathBuf, bytes: Bytes) -> Result<Self> {
        match format::parse(bytes.as_slice()) {
            Ok(header) => Ok(Self { path, bytes, header }),
            Err(msg) => Err(Error::Checkpoint { path: path.display().to_string(), msg }),
        }
    }

    /// The file this was read from (or the label given to [`SafeTensors::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.header.tensors.keys().map(String::as_str).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.header.tensors.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.header.tensors.is_empty()
    }

    /// The `__metadata__` strings (empty when the file has none).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.header.metadata
    }

    /// Dtype, shape and offsets of a tensor, if present.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensors.get(name)
    }

    /// A tensor's raw little-endian bytes, borrowed from the map (no copy).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8]> {
        let info = self.info(name).ok_or_else(|| self.err(format!("no tensor named `{name}`")))?;
        let (b, e) = info.data_offsets;
        let start = self.header.data_start;
        // In range: `parse` checked `e ≤` the data buffer's length and `b ≤ e`.
        self.bytes
            .as_slice()
            .get(start + b..start + e)
            .ok_or_else(|| self.err(format!("tensor `{name}`: data_offsets [{b}, {e}] outside the file")))
    }

    /// Copies one tensor out of the file (contiguous, its stored dtype and shape).
    pub fn get(&self, name: &str) -> Result<Tensor> {
        let bytes = self.tensor_bytes(name)?;
        let info = &self.header.tensors[name];
        format::tensor_from_bytes(info.dtype, &info.shape, bytes)
            .map_err(|e| self.err(format!("tensor `{name}`: {e}")))
    }

    /// Every tensor, sorted by name.
    pub fn tensors(&self) -> Result<StateDict> {
        self.header.tensors.keys().map(|n| Ok((n.clone(), self.get(n)?))).collect()
    }

    fn err(&self, msg: String) -> Error {
        Error::Checkpoint { path: self.path.display().to_string(), msg }
    }
}

/// Opens `path` and returns all its tensors (sorted by name) and its metadata.
pub fn load(path: impl AsRef<Path>) -> Result<(StateDict, BTreeMap<String, String>)> {
    let st = SafeTensors::open(path)?;
    Ok((st.tensors()?, st.metadata().clone()))
}
