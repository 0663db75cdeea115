//! A folder of captioned images: a TSV file whose lines are `path<TAB>caption` (paths relative to
//! the folder; PNG or JPEG). Blank lines and lines starting with `#` are ignored, and so is a first
//! line `path<TAB>caption` / `filename<TAB>caption` (a header). Every line is checked when the
//! folder is opened (caption column present and non-empty, image header readable): a bad line is
//! an error naming the TSV file and line, or, with `skip_bad`, is skipped and counted.
//! Images are resized (antialiased bilinear) so the short side is the requested size, then
//! centre-cropped.

use std::path::{Path, PathBuf};

use super::{Dataset, Sample, file_err, input_err, resize_center_crop, rgb_to_tensor};
use crate::Result;
use crate::image_io::{image_dims, read_image};

/// A TSV line left out because it was bad.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedLine {
    /// 1-based line number in the TSV file.
    pub line: usize,
    pub reason: String,
}

#[derive(Clone, Debug)]
struct Entry {
    line: usize,
    path: PathBuf,
    caption: String,
}

/// Captioned images listed by a TSV file.
#[derive(Clone, Debug)]
pub struct Folder {
    pub dir: PathBuf,
    pub tsv: PathBuf,
    entries: Vec<Entry>,
    skipped: Vec<SkippedLine>,
}

impl Folder {
    /// Reads and checks the TSV `tsv` (image paths relative to `dir`).
    pub fn open(dir: &Path, tsv: &Path, skip_bad: bool) -> Result<Self> {
        let text = std::fs::read_to_string(tsv)
            .map_err(|e| file_err(tsv, None, format!("cannot read the caption TSV: {e}")))?;
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r');
            if l.trim().is_empty() || l.starts_with('#') {
                continue;
            }
            if line == 1 && matches!(l.split_once('\t'), Some(("path" | "filename", "caption"))) {
                continue;
            }
            match check_line(dir, l) {
                Ok((path, caption)) => entries.push(Entry { line, path, caption }),
                Err(reason) if skip_bad => skipped.push(SkippedLine { line, reason }),
                Err(reason) => return Err(file_err(tsv, Some(line), reason)),
            }
        }
        Ok(Folder { dir: dir.to_path_buf(), tsv: tsv.to_path_buf(), entries, skipped })
    }

    /// Lines skipped as bad (only with `skip_bad`).
    pub fn skipped_lines(&self) -> &[SkippedLine] {
        &self.skipped
    }
}

/// Splits and checks one TSV line; the error is the reason.
fn check_line(dir: &Path, l: &str) -> std::result::Result<(PathBuf, String), String> {
    let (p, caption) = l.split_once('\t').ok_or("missing caption column (expected `path<TAB>caption`)")?;
    let caption = caption.trim();
    if p.trim().is_empty() {
        return Err("empty image path".into());
    }
    if caption.is_empty() {
        return Err("empty caption".into());
    }
    let path = dir.join(p.trim());
    match image_dims(&path) {
        Ok((w, h)) if w > 0 && h > 0 => Ok((path, caption.to_string())),
        Ok((w, h)) => Err(format!("image {} is {w}×{h}", path.display())),
        Err(e) => Err(format!("unreadable image: {e}")),
    }
}

impl Dataset for Folder {
    fn get(&self, index: u64, size: usize) -> Result<Sample> {
        let e = usize::try_from(index).ok().and_then(|i| self.entries.get(i)).ok_or_else(|| {
            input_err(
                format!("folder example {index}"),
                format!("index out of range ({} images in {})", self.entries.len(), self.tsv.display()),
            )
        })?;
        if size == 0 {
            return Err(input_err(format!("folder example {index}"), "size must be ≥ 1"));
        }
        let (w, h, rgb) =
            read_image(&e.path).map_err(|err| file_err(&self.tsv, Some(e.line), err.to_string()))?;
        let img = resize_center_crop(&rgb, w, h, size);
        Ok(Sample { image: rgb_to_tensor(size, size, &img)?, label: None, caption: Some(e.caption.clone()) })
    }

    fn len(&self) -> Option<u64> {
        Some(self.entries.len() as u64)
    }

    fn num_classes(&self) -> Option<usize> {
        None
    }

    fn class_name(&self, _k: usize) -> Option<String> {
        None
    }

    fn skipped(&self) -> u64 {
        self.skipped.len() as u64
    }

    fn describe(&self) -> String {
        format!(
            "folder {} ({} images, {} bad lines skipped)",
            self.tsv.display(),
            self.entries.len(),
            self.skipped.len()
        )
    }
}
