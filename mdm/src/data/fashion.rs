//! Fashion-MNIST from its IDX files (`train-images-idx3-ubyte[.gz]`,
//! `train-labels-idx1-ubyte[.gz]`): 28×28 greyscale replicated to RGB and padded with the
//! background (0, i.e. −127/128) to `pad_to`² (32² by default), then resized when another size is
//! asked for. Captions are the class names.

use std::path::{Path, PathBuf};

use super::{Dataset, IdxImages, Sample, file_err, input_err, read_idx_images, read_idx_labels};
use super::{resize_rgb, rgb_to_tensor};
use crate::Result;

/// The 10 Fashion-MNIST class names, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// The Fashion-MNIST training split, held in memory.
#[derive(Clone, Debug)]
pub struct FashionMnist {
    pub dir: PathBuf,
    pub pad_to: usize,
    images: IdxImages,
    labels: Vec<u8>,
}

/// `dir/name` or `dir/name.gz`, whichever exists (raw first).
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if raw.is_file() {
        Ok(raw)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(file_err(
            dir,
            None,
            format!(
                "Fashion-MNIST file {name}[.gz] not found; install with \
                 `apt-get install dataset-fashion-mnist`"
            ),
        ))
    }
}

impl FashionMnist {
    /// Loads the training split from `dir`, padding images to `pad_to` (≥ the image size).
    pub fn open(dir: &Path, pad_to: usize) -> Result<Self> {
        let img_path = find(dir, "train-images-idx3-ubyte")?;
        let lab_path = find(dir, "train-labels-idx1-ubyte")?;
        let images = read_idx_images(&img_path)?;
        let labels = read_idx_labels(&lab_path)?;
        if labels.len() != images.count {
            return Err(file_err(
                &lab_path,
                None,
                format!("{} labels but {} has {} images", labels.len(), img_path.display(), images.count),
            ));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= FASHION_CLASSES.len()) {
            return Err(file_err(
                &lab_path,
                None,
                format!("label {} of image {i} is not in 0..10", labels[i]),
            ));
        }
        if pad_to < images.rows.max(images.cols) {
            return Err(input_err(
                "fashion-mnist pad_to",
                format!("{pad_to} is smaller than the {}×{} images", images.rows, images.cols),
            ));
        }
        Ok(FashionMnist { dir: dir.to_path_buf(), pad_to, images, labels })
    }

    /// Image `i` padded to `pad_to`², as interleaved RGB.
    fn padded_rgb(&self, i: usize) -> Vec<u8> {
        let (p, rows, cols) = (self.pad_to, self.images.rows, self.images.cols);
        let (oy, ox) = ((p - rows) / 2, (p - cols) / 2);
        let mut out = vec![0u8; p * p * 3];
        let img = self.images.image(i);
        for y in 0..rows {
            for x in 0..cols {
                let v = img[y * cols + x];
                let o = ((y + oy) * p + x + ox) * 3;
                out[o..o + 3].copy_from_slice(&[v, v, v]);
            }
        }
        out
    }
}

impl Dataset for FashionMnist {
    fn get(&self, index: u64, size: usize) -> Result<Sample> {
        let n = self.images.count as u64;
        if index >= n || size == 0 {
            return Err(input_err(
                format!("fashion-mnist example {index}"),
                format!("index must be < {n} and size ≥ 1 (size {size})"),
            ));
        }
        let i = index as usize;
        let mut rgb = self.padded_rgb(i);
        if size != self.pad_to {
            rgb = resize_rgb(&rgb, self.pad_to, self.pad_to, size, size);
        }
        let label = self.labels[i] as usize;
        Ok(Sample {
            image: rgb_to_tensor(size, size, &rgb)?,
            label: Some(label as i64),
            caption: Some(FASHION_CLASSES[label].to_string()),
        })
    }

    fn len(&self) -> Option<u64> {
        Some(self.images.count as u64)
    }

    fn num_classes(&self) -> Option<usize> {
        Some(FASHION_CLASSES.len())
    }

    fn class_name(&self, k: usize) -> Option<String> {
        FASHION_CLASSES.get(k).map(|s| s.to_string())
    }

    fn describe(&self) -> String {
        format!(
            "fashion-mnist {} ({} images, padded to {}²)",
            self.dir.display(),
            self.images.count,
            self.pad_to
        )
    }
}
