//! IDX files (the MNIST / Fashion-MNIST format): a big-endian header (magic 2051 = u8 images
//! `[n, rows, cols]`, magic 2049 = u8 labels `[n]`) followed by the bytes. Gzip-compressed files
//! (detected by their `1f 8b` signature) are inflated first. Errors name the file and the problem.

use std::io::Read;
use std::path::Path;

use super::file_err;
use crate::Result;

/// IDX magic number of a u8 image file (rank 3).
pub const IDX_IMAGES_MAGIC: u32 = 2051;
/// IDX magic number of a u8 label file (rank 1).
pub const IDX_LABELS_MAGIC: u32 = 2049;

/// Greyscale images of an IDX file.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count × rows × cols` bytes, image-major, row-major.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads a whole file, inflating it when it is gzip.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| file_err(path, None, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| file_err(path, None, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Checks the magic number and reads `dims` big-endian u32 dimensions.
fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>> {
    let need = 4 * (1 + dims);
    if bytes.len() < need {
        return Err(file_err(
            path,
            None,
            format!("truncated IDX header: {} bytes, need {need}", bytes.len()),
        ));
    }
    let word =
        |k: usize| u32::from_be_bytes([bytes[4 * k], bytes[4 * k + 1], bytes[4 * k + 2], bytes[4 * k + 3]]);
    let found = word(0);
    if found != magic {
        return Err(file_err(path, None, format!("wrong IDX magic number {found} (expected {magic})")));
    }
    Ok((1..=dims).map(|k| word(k) as usize).collect())
}

fn check_len(path: &Path, bytes: &[u8], header: usize, what: &str, body: usize) -> Result<()> {
    let have = bytes.len() - header;
    if have < body {
        return Err(file_err(
            path,
            None,
            format!("truncated: the header announces {what} ({body} data bytes), found {have} bytes"),
        ));
    }
    if have > body {
        return Err(file_err(path, None, format!("{} unexpected trailing bytes after {what}", have - body)));
    }
    Ok(())
}

/// Reads an IDX u8 image file (raw or gzip).
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    let bytes = read_maybe_gz(path)?;
    let d = header(path, &bytes, IDX_IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (d[0], d[1], d[2]);
    if rows == 0 || cols == 0 {
        return Err(file_err(path, None, format!("image size {rows}×{cols} is empty")));
    }
    let body = count
        .checked_mul(rows * cols)
        .ok_or_else(|| file_err(path, None, format!("header dimensions {count}×{rows}×{cols} overflow")))?;
    check_len(path, &bytes, 16, &format!("{count} images of {rows}×{cols}"), body)?;
    Ok(IdxImages { count, rows, cols, pixels: bytes[16..].to_vec() })
}

/// Reads an IDX u8 label file (raw or gzip).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gz(path)?;
    let d = header(path, &bytes, IDX_LABELS_MAGIC, 1)?;
    check_len(path, &bytes, 8, &format!("{} labels", d[0]), d[0])?;
    Ok(bytes[8..].to_vec())
}
