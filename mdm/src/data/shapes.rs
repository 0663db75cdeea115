//! The procedural shapes dataset: one large coloured shape (circle, square, triangle or cross; red,
//! green, blue or yellow) at one of 9 positions on a plain light or dark grey background.
//!
//! Each example is a pure function of (seed, index) (a SplitMix64 stream), rendered directly at the
//! requested size with anti-aliasing from the signed distance d (in pixels) to the outline: pixels
//! with |d| > 0.75 are fully in or out, edge pixels average clamp(0.5 − d, 0, 1) over 4×4
//! sub-pixels. The shape spans
//! 43–66 % of the image side so that class and colour are learnable at 16² and 32² within minutes.
//! Class label = shape index × 4 + colour index (16 classes).

use tensor::Tensor;

use super::{Dataset, Sample, input_err, rgb_to_tensor};
use crate::Result;

/// Shape names, in label order.
pub const SHAPES: [&str; 4] = ["circle", "square", "triangle", "cross"];
/// Colour names and their RGB values, in label order.
pub const COLOURS: [(&str, [u8; 3]); 4] =
    [("red", [220, 40, 40]), ("green", [40, 180, 60]), ("blue", [40, 80, 220]), ("yellow", [230, 210, 40])];
/// Number of classes of the shapes dataset (shapes × colours).
pub const NUM_SHAPE_CLASSES: usize = SHAPES.len() * COLOURS.len();

const POSITIONS: [[&str; 3]; 3] = [
    ["at the top left", "at the top", "at the top right"],
    ["on the left", "in the center", "on the right"],
    ["at the bottom left", "at the bottom", "at the bottom right"],
];

/// The drawn content of one example (all coordinates as fractions of the image side).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeParams {
    /// Index into [`SHAPES`].
    pub shape: usize,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Grid row (0 top … 2 bottom) and column (0 left … 2 right) of the position.
    pub row: usize,
    pub col: usize,
    /// Centre of the shape.
    pub cx: f32,
    pub cy: f32,
    /// Half-extent of the shape (0.24–0.30).
    pub r: f32,
    /// Background grey level.
    pub background: u8,
}

impl ShapeParams {
    /// Class label: shape × 4 + colour.
    pub fn label(&self) -> i64 {
        (self.shape * COLOURS.len() + self.colour) as i64
    }

    /// Caption, e.g. "a red circle at the top left".
    pub fn caption(&self) -> String {
        format!("a {} {} {}", COLOURS[self.colour].0, SHAPES[self.shape], POSITIONS[self.row][self.col])
    }

    /// Signed distance (fraction of the side; negative inside) from point (x, y) to the outline.
    pub fn sdf(&self, x: f32, y: f32) -> f32 {
        let (px, py, r) = (x - self.cx, y - self.cy, self.r);
        match self.shape {
            0 => (px * px + py * py).sqrt() - r,
            1 => sd_box(px, py, 0.9 * r, 0.9 * r),
            2 => sd_triangle(px, py, 1.1 * r),
            _ => sd_box(px, py, 0.95 * r, 0.35 * r).min(sd_box(px, py, 0.35 * r, 0.95 * r)),
        }
    }

    /// Fraction of pixel (i, j) (column i, row j) covered by the shape at `size`×`size`.
    ///
    /// Pixels farther than 0.75 px from the outline are fully in or out; the others average the
    /// analytic coverage of 4×4 sub-pixels (exact for straight edges, close at corners).
    pub fn coverage(&self, i: usize, j: usize, size: usize) -> f32 {
        let s = size as f32;
        let d = self.sdf((i as f32 + 0.5) / s, (j as f32 + 0.5) / s) * s;
        if d.abs() > 0.75 {
            return if d < 0.0 { 1.0 } else { 0.0 };
        }
        const N: usize = 4;
        let sub = s * N as f32;
        let mut acc = 0.0;
        for dy in 0..N {
            for dx in 0..N {
                let x = (i * N + dx) as f32 + 0.5;
                let y = (j * N + dy) as f32 + 0.5;
                acc += (0.5 - self.sdf(x / sub, y / sub) * sub).clamp(0.0, 1.0);
            }
        }
        acc / (N * N) as f32
    }

    /// RGB u8 pixels (row-major, interleaved) at `size`×`size`.
    pub fn render(&self, size: usize) -> Vec<u8> {
        let fg = COLOURS[self.colour].1;
        let bg = self.background as f32;
        let mut out = Vec::with_capacity(size * size * 3);
        for j in 0..size {
            for i in 0..size {
                let a = self.coverage(i, j, size);
                for &c in &fg {
                    out.push((bg + (c as f32 - bg) * a).round() as u8);
                }
            }
        }
        out
    }
}

/// Exact signed distance to an axis-aligned box of half-sizes (bx, by).
fn sd_box(px: f32, py: f32, bx: f32, by: f32) -> f32 {
    let (qx, qy) = (px.abs() - bx, py.abs() - by);
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0)
}

/// Signed distance to an upward equilateral triangle of half-side `r`, bounding box centred at
/// the origin (image y grows downwards).
fn sd_triangle(px: f32, py: f32, r: f32) -> f32 {
    let k = 3f32.sqrt();
    // y up, shifted so that the bounding box (not the centroid) is centred.
    let mut x = px.abs() - r;
    let mut y = -py + r / (2.0 * k) + r / k;
    if x + k * y > 0.0 {
        (x, y) = ((x - k * y) / 2.0, (-k * x - y) / 2.0);
    }
    x -= x.clamp(-2.0 * r, 0.0);
    -(x * x + y * y).sqrt() * y.signum()
}

/// SplitMix64 stream seeded from (seed, index).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Self {
        let mut r = Rng(seed ^ 0x5EED_5EED_5EED_5EED);
        let s = r.next();
        Rng(s ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The infinite procedural shapes dataset.
#[derive(Clone, Debug)]
pub struct Shapes {
    pub seed: u64,
}

impl Shapes {
    pub fn new(seed: u64) -> Self {
        Shapes { seed }
    }

    /// What example `index` shows.
    pub fn params(&self, index: u64) -> ShapeParams {
        let mut rng = Rng::new(self.seed, index);
        let shape = rng.below(SHAPES.len());
        let colour = rng.below(COLOURS.len());
        let (row, col) = (rng.below(3), rng.below(3));
        let r = 0.24 + 0.06 * rng.unit();
        let reach = 0.5 - r - 0.03;
        let jitter = |rng: &mut Rng| 0.04 * (rng.unit() - 0.5);
        let cx = 0.5 + (col as f32 - 1.0) * reach + jitter(&mut rng);
        let cy = 0.5 + (row as f32 - 1.0) * reach + jitter(&mut rng);
        let light = rng.below(2) == 0;
        let shade = rng.below(21) as u8;
        let background = if light { 215 + shade } else { 20 + shade };
        ShapeParams { shape, colour, row, col, cx, cy, r, background }
    }
}

impl Dataset for Shapes {
    fn get(&self, index: u64, size: usize) -> Result<Sample> {
        if size == 0 {
            return Err(input_err(format!("shapes example {index}"), "size must be ≥ 1"));
        }
        let p = self.params(index);
        let image: Tensor = rgb_to_tensor(size, size, &p.render(size))?;
        Ok(Sample { image, label: Some(p.label()), caption: Some(p.caption()) })
    }

    fn len(&self) -> Option<u64> {
        None
    }

    fn num_classes(&self) -> Option<usize> {
        Some(NUM_SHAPE_CLASSES)
    }

    fn class_name(&self, k: usize) -> Option<String> {
        (k < NUM_SHAPE_CLASSES)
            .then(|| format!("{} {}", COLOURS[k % COLOURS.len()].0, SHAPES[k / COLOURS.len()]))
    }

    fn describe(&self) -> String {
        format!("shapes (seed {}, {NUM_SHAPE_CLASSES} classes, infinite)", self.seed)
    }
}
