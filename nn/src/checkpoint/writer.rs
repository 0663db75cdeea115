//! Writing safetensors files: deterministic layout and an atomic replace of the target.

use super::format::{self, METADATA_KEY};
use crate::{Error, Result};
use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tensor::Tensor;

/// Tensors checked and placed in the data buffer: `(name, tensor, begin, end)` in buffer order.
struct Plan<'a> {
    placed: Vec<(&'a str, &'a Tensor, usize, usize)>,
    header: Vec<u8>,
}

/// Checks names and lays the data out: by element size, largest first (so every tensor starts at a
/// multiple of its element size, given the 8-aligned data buffer), then by name.
fn plan<'a, S: AsRef<str>, T: Borrow<Tensor>>(
    path: &Path,
    tensors: &'a [(S, T)],
    metadata: &BTreeMap<String, String>,
) -> Result<Plan<'a>> {
    let err = |msg: String| Error::Checkpoint { path: path.display().to_string(), msg };
    let mut seen = BTreeSet::new();
    let mut items: Vec<(&str, &Tensor)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let name = name.as_ref();
        if name == METADATA_KEY {
            return Err(err(format!("tensor name `{METADATA_KEY}` is reserved for metadata")));
        }
        if !seen.insert(name) {
            return Err(err(format!("tensor `{name}` appears twice")));
        }
        items.push((name, t.borrow()));
    }
    items.sort_by(|a, b| b.1.dtype().size_in_bytes().cmp(&a.1.dtype().size_in_bytes()).then(a.0.cmp(b.0)));
    let mut placed = Vec::with_capacity(items.len());
    let mut cursor = 0usize;
    for (name, t) in items {
        let nbytes = t.numel() * t.dtype().size_in_bytes();
        placed.push((name, t, cursor, cursor + nbytes));
        cursor += nbytes;
    }
    let entries: Vec<_> = placed.iter().map(|&(n, t, b, e)| (n, t.dtype(), t.shape(), b, e)).collect();
    let header = format::build_header(&entries, metadata);
    if header.len() as u64 > format::MAX_HEADER_LEN {
        return Err(err(format!(
            "header of {} bytes exceeds the readers' limit of {} bytes",
            header.len(),
            format::MAX_HEADER_LEN
        )));
    }
    Ok(Plan { placed, header })
}

fn write_plan(plan: &Plan<'_>, w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all(&(plan.header.len() as u64).to_le_bytes())?;
    w.write_all(&plan.header)?;
    for &(_, t, _, _) in &plan.placed {
        format::write_tensor_data(t, w)?;
    }
    Ok(())
}

/// Serialises tensors and metadata to safetensors bytes in memory (same bytes as [`save`] writes).
pub fn serialize<S: AsRef<str>, T: Borrow<Tensor>>(
    tensors: &[(S, T)],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let plan = plan(Path::new("<memory>"), tensors, metadata)?;
    let mut out = Vec::new();
    write_plan(&plan, &mut out).map_err(|source| Error::Io { path: "<memory>".into(), source })?;
    Ok(out)
}

/// Writes tensors (any layout; views are written contiguous) and string metadata to a safetensors
/// file, atomically: the bytes go to a temporary file in the same directory, which is fsynced and
/// renamed over `path`, then the directory is fsynced. On any error the previous file at `path` is
/// untouched and the temporary file is removed (an error from the final directory fsync comes after the
/// rename, when the new file is already in place). Output is deterministic (sorted keys, aligned header).
///
/// Errors: a duplicate or reserved (`__metadata__`) name → [`Error::Checkpoint`]; I/O → [`Error::Io`]
/// naming the file.
pub fn save<S: AsRef<str>, T: Borrow<Tensor>>(
    path: impl AsRef<Path>,
    tensors: &[(S, T)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let plan = plan(path, tensors, metadata)?;
    write_atomic(path, |w| write_plan(&plan, w))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes a file through a temporary sibling, fsync, rename and directory fsync.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::Io { path: p, source }
    };
    let Some(file_name) = path.file_name() else {
        return Err(Error::Checkpoint {
            path: path.display().to_string(),
            msg: "target path has no file name".into(),
        });
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io(&tmp))?;
    let result = (|| {
        let mut w = BufWriter::new(file);
        write(&mut w).map_err(io(&tmp))?;
        let file = w.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io(path))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir).map_err(io(&dir))
}

/// Makes the rename durable (a directory can be opened and fsynced on Unix; elsewhere a no-op).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if cfg!(unix) { File::open(dir)?.sync_all() } else { Ok(()) }
}
