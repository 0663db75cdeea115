//! Training data: a [`Dataset`] yields square RGB examples in ml-mdm scaling `(u8 − 127) / 128`
//! with an optional class label and caption; [`make_batch`] stacks them into a [`Batch`].
//!
//! Sources ([`DataConfig`], opened by [`open`]):
//! - `shapes` ([`Shapes`]): procedural anti-aliased coloured shapes, infinite, deterministic from
//!   seed + index, 16 classes (4 shapes × 4 colours) with captions like
//!   "a red circle at the top left".
//! - `fashion-mnist[:DIR]` ([`FashionMnist`]): the IDX files (raw or gzip), greyscale replicated to
//!   3 channels and padded to 32² with the background.
//! - `folder:DIR` ([`Folder`]): a TSV `path<TAB>caption` of PNG/JPEG files, resized (short side,
//!   antialiased bilinear) and centre-cropped.
//!
//! Like ml-mdm's reader (spec §2.1), images are resized so the smaller side is the target size,
//! centre-cropped, not augmented, and scaled by (u8 − 127)/128. Deviations from ml-mdm: ml-mdm
//! streams TSV/tar shards (optionally from S3) decoded by PIL; here data is local, decoding is done
//! by the `png`/`jpeg-decoder` crates and resizing by our own antialiased bilinear filter (PIL's
//! weights, integer rounding may differ by one level). The shapes and Fashion-MNIST sources (with
//! class labels) are additions for a CPU-sized quick start. Errors are [`crate::Error::Input`]
//! values whose `input` names the file (and line or index).

mod fashion;
mod folder;
mod idx;
mod resize;
mod shapes;

use std::path::{Path, PathBuf};

use tensor::Tensor;

use crate::{Error, Result};

pub use fashion::{FASHION_CLASSES, FashionMnist};
pub use folder::{Folder, SkippedLine};
pub use idx::{IdxImages, read_idx_images, read_idx_labels};
pub use resize::{resize_center_crop, resize_rgb};
pub use shapes::{COLOURS, NUM_SHAPE_CLASSES, SHAPES, ShapeParams, Shapes};

/// The Fashion-MNIST folder used when `fashion-mnist` names none.
pub const DEFAULT_FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist/";

/// One example: image [3, H, W] f32 in ml-mdm scaling (u8 − 127)/128, optional class label,
/// optional caption.
#[derive(Clone, Debug)]
pub struct Sample {
    pub image: Tensor,
    pub label: Option<i64>,
    pub caption: Option<String>,
}

/// A source of training examples, rendered or loaded at any square size.
pub trait Dataset: Send + Sync {
    /// Example `index` rendered/loaded at `size`×`size` (square). Errors name the file/line/index.
    fn get(&self, index: u64, size: usize) -> Result<Sample>;
    /// Number of examples (None = infinite, e.g. the procedural shapes).
    fn len(&self) -> Option<u64>;
    fn num_classes(&self) -> Option<usize>;
    /// Human name of a class (for grid captions / the CLI's --class help).
    fn class_name(&self, k: usize) -> Option<String>;
    /// True when the dataset is finite and has no examples.
    fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// Number of entries skipped as bad when the dataset was opened (`skip_bad`).
    fn skipped(&self) -> u64 {
        0
    }
    /// One line describing the source (for logs).
    fn describe(&self) -> String {
        match self.len() {
            Some(n) => format!("dataset of {n} examples"),
            None => "infinite dataset".to_string(),
        }
    }
}

/// A stack of examples.
#[derive(Clone, Debug)]
pub struct Batch {
    /// [B, 3, S, S] f32.
    pub images: Tensor,
    /// i64 `[B]` when every example has a label.
    pub labels: Option<Tensor>,
    /// One caption per example ("" where an example has none).
    pub captions: Vec<String>,
}

/// Assembles `batch` examples starting at `start` (wrapping for finite datasets; deterministic).
pub fn make_batch(ds: &dyn Dataset, start: u64, batch: usize, size: usize) -> Result<Batch> {
    if batch == 0 || size == 0 {
        return Err(input_err("batch", format!("batch {batch} and size {size} must be ≥ 1")));
    }
    let len = ds.len();
    if len == Some(0) {
        return Err(input_err("dataset", format!("{} has no examples", ds.describe())));
    }
    let mut pixels = Vec::with_capacity(batch * 3 * size * size);
    let mut labels = Vec::with_capacity(batch);
    let mut captions = Vec::with_capacity(batch);
    for i in 0..batch as u64 {
        let mut index = start.wrapping_add(i);
        if let Some(n) = len {
            index %= n;
        }
        let s = ds.get(index, size)?;
        if s.image.shape() != [3, size, size] {
            return Err(input_err(
                format!("dataset example {index}"),
                format!("image shape {:?}, expected [3, {size}, {size}]", s.image.shape()),
            ));
        }
        pixels.extend(s.image.to_vec::<f32>()?);
        labels.push(s.label);
        captions.push(s.caption.unwrap_or_default());
    }
    let images = Tensor::from_vec(pixels, &[batch, 3, size, size])?;
    let labels = if labels.iter().all(Option::is_some) {
        let l: Vec<i64> = labels.into_iter().flatten().collect();
        Some(Tensor::from_vec(l, &[batch])?)
    } else {
        None
    };
    Ok(Batch { images, labels, captions })
}

/// Data source from a config / CLI value: `shapes`, `fashion-mnist[:DIR]`
/// (default /usr/share/datasets/fashion-mnist/), `folder:DIR` (TSV DIR/captions.tsv).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataConfig {
    Shapes {
        seed: u64,
    },
    FashionMnist {
        dir: Option<PathBuf>,
        pad_to: Option<usize>,
    },
    /// `tsv` (default `captions.tsv`) is relative to `dir` unless absolute; `skip_bad` skips and
    /// counts bad lines instead of failing.
    Folder {
        dir: PathBuf,
        tsv: Option<PathBuf>,
        skip_bad: bool,
    },
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig::Shapes { seed: 0 }
    }
}

impl std::str::FromStr for DataConfig {
    type Err = Error;

    /// Parses the CLI form: `shapes`, `shapes:SEED`, `fashion-mnist`, `fashion-mnist:DIR`,
    /// `folder:DIR` (skip_bad off).
    fn from_str(s: &str) -> Result<Self> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("shapes", None) => Ok(DataConfig::Shapes { seed: 0 }),
            ("shapes", Some(a)) => a
                .parse()
                .map(|seed| DataConfig::Shapes { seed })
                .map_err(|_| input_err("data", format!("`{s}`: shapes seed `{a}` is not an integer"))),
            ("fashion-mnist", a) => Ok(DataConfig::FashionMnist {
                dir: a.filter(|a| !a.is_empty()).map(PathBuf::from),
                pad_to: None,
            }),
            ("folder", Some(a)) if !a.is_empty() => {
                Ok(DataConfig::Folder { dir: PathBuf::from(a), tsv: None, skip_bad: false })
            }
            _ => Err(input_err(
                "data",
                format!("`{s}`: expected `shapes[:SEED]`, `fashion-mnist[:DIR]` or `folder:DIR`"),
            )),
        }
    }
}

/// Opens the data source described by `cfg` (reads indexes/headers now, pixels on `get`).
pub fn open(cfg: &DataConfig) -> Result<Box<dyn Dataset>> {
    Ok(match cfg {
        DataConfig::Shapes { seed } => Box::new(Shapes::new(*seed)),
        DataConfig::FashionMnist { dir, pad_to } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FASHION_DIR));
            Box::new(FashionMnist::open(&dir, pad_to.unwrap_or(32))?)
        }
        DataConfig::Folder { dir, tsv, skip_bad } => {
            let tsv = dir.join(tsv.as_deref().unwrap_or(Path::new("captions.tsv")));
            Box::new(Folder::open(dir, &tsv, *skip_bad)?)
        }
    })
}

/// u8 pixels (RGB interleaved, `w`×`h`) to a [3, h, w] f32 tensor in ml-mdm scaling.
pub fn rgb_to_tensor(w: usize, h: usize, rgb: &[u8]) -> Result<Tensor> {
    if rgb.len() != w * h * 3 {
        return Err(input_err("rgb image", format!("{} bytes for {w}×{h}×3", rgb.len())));
    }
    let mut out = vec![0f32; 3 * w * h];
    for (p, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * w * h + p] = (px[c] as f32 - 127.0) / 128.0;
        }
    }
    Ok(Tensor::from_vec(out, &[3, h, w])?)
}

pub(crate) fn input_err(input: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::Input { input: input.into(), msg: msg.into() }
}

/// An error about a file (optionally a 1-based line of it).
pub(crate) fn file_err(path: &Path, line: Option<usize>, msg: impl Into<String>) -> Error {
    let input = match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    };
    input_err(input, msg)
}
