//! Image files: PNG writing of sample grids and denoising strips (ml-mdm's output mapping
//! `u8 = clamp(x·128 + 127, 0, 255)`), and PNG/JPEG reading to interleaved RGB u8.
//!
//! Deviations from ml-mdm: ml-mdm saves grids with torchvision/PIL and puts one sample per cell of
//! a square grid per resolution; here one PNG holds a row per sample and a column per resolution
//! (lower ones upscaled nearest-neighbour), separated by a 2-px mid-grey (127) gap. Alpha channels
//! of read images are dropped; 16-bit PNGs are reduced to 8 bits.

use std::io::{BufReader, Cursor, Write};
use std::path::{Path, PathBuf};

use tensor::Tensor;

use crate::Result;
use crate::data::{file_err, input_err};

/// Width of the gap between grid cells, in pixels.
pub const GAP: usize = 2;
/// Grey level of the gaps.
pub const GAP_VALUE: u8 = 127;

/// ml-mdm's output mapping of one value.
pub fn to_u8(x: f32) -> u8 {
    if x.is_nan() { 127 } else { (x * 128.0 + 127.0).round().clamp(0.0, 255.0) as u8 }
}

/// An RGB u8 canvas.
struct Canvas {
    w: usize,
    h: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas { w, h, rgb: vec![GAP_VALUE; w * h * 3] }
    }

    /// Draws `img` ([3, h, w] values, row-major) upscaled by `scale` (nearest) at (x0, y0).
    fn blit(&mut self, img: &[f32], h: usize, w: usize, scale: usize, x0: usize, y0: usize) {
        for y in 0..h * scale {
            for x in 0..w * scale {
                let o = ((y0 + y) * self.w + x0 + x) * 3;
                for c in 0..3 {
                    self.rgb[o + c] = to_u8(img[(c * h + y / scale) * w + x / scale]);
                }
            }
        }
    }
}

fn f32_data(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    let v = t.to_vec::<f32>()?;
    if v.len() != t.numel() {
        return Err(input_err(what, "unexpected element count"));
    }
    Ok(v)
}

/// Writes rows of image tensors (`[B,3,h,w]` in [-1,1], ml-mdm output mapping u8 = clamp(x·128 + 127,
/// 0, 255)) as one PNG grid: each row is one sample, each column one resolution (smaller ones
/// upscaled nearest to the largest so they line up side by side), with a 2-px gap. Atomic write
/// (temp + rename).
pub fn save_grid(path: &Path, columns: &[Tensor]) -> Result<()> {
    let first = columns.first().ok_or_else(|| input_err("save_grid columns", "no columns"))?;
    let (b, big) = match first.shape() {
        [b, 3, h, w] if h == w && *b > 0 && *h > 0 => (*b, *h),
        s => return Err(input_err("save_grid columns[0]", format!("shape {s:?}, expected [B, 3, S, S]"))),
    };
    let mut scales = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        match c.shape() {
            [cb, 3, h, w] if *cb == b && h == w && *h > 0 && big % h == 0 => scales.push(big / h),
            s => {
                return Err(input_err(
                    format!("save_grid columns[{i}]"),
                    format!("shape {s:?}, expected [{b}, 3, S, S] with S dividing {big}"),
                ));
            }
        }
    }
    let n = columns.len();
    let mut canvas = Canvas::new(n * big + (n - 1) * GAP, b * big + (b - 1) * GAP);
    for (i, (c, &scale)) in columns.iter().zip(&scales).enumerate() {
        let data = f32_data(c, "save_grid column")?;
        let s = big / scale;
        for r in 0..b {
            let img = &data[r * 3 * s * s..(r + 1) * 3 * s * s];
            canvas.blit(img, s, s, scale, i * (big + GAP), r * (big + GAP));
        }
    }
    write_png(path, canvas.w, canvas.h, &canvas.rgb)
}

/// A strip of images (denoising trajectory): `frames` each `[3,h,w]` side by side (2-px gaps).
pub fn save_strip(path: &Path, frames: &[Tensor]) -> Result<()> {
    let first = frames.first().ok_or_else(|| input_err("save_strip frames", "no frames"))?;
    let (h, w) = match first.shape() {
        [3, h, w] if *h > 0 && *w > 0 => (*h, *w),
        s => return Err(input_err("save_strip frames[0]", format!("shape {s:?}, expected [3, h, w]"))),
    };
    let n = frames.len();
    let mut canvas = Canvas::new(n * w + (n - 1) * GAP, h);
    for (i, f) in frames.iter().enumerate() {
        if f.shape() != [3, h, w] {
            return Err(input_err(
                format!("save_strip frames[{i}]"),
                format!("shape {:?}, expected [3, {h}, {w}]", f.shape()),
            ));
        }
        canvas.blit(&f32_data(f, "save_strip frame")?, h, w, 1, i * (w + GAP), 0);
    }
    write_png(path, canvas.w, canvas.h, &canvas.rgb)
}

/// Writes interleaved RGB u8 `w`×`h` as an 8-bit RGB PNG, atomically (temp file + rename).
pub fn write_png(path: &Path, w: usize, h: usize, rgb: &[u8]) -> Result<()> {
    if rgb.len() != w * h * 3 || w == 0 || h == 0 {
        return Err(file_err(path, None, format!("{} bytes for a {w}×{h} RGB image", rgb.len())));
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let res = enc.write_header().and_then(|mut wr| {
            wr.write_image_data(rgb)?;
            wr.finish()
        });
        res.map_err(|e| file_err(path, None, format!("PNG encoding failed: {e}")))?;
    }
    let mut tmp = PathBuf::from(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    tmp.set_file_name(format!(".{name}.tmp{}", std::process::id()));
    let io = |e: std::io::Error| file_err(path, None, format!("cannot write: {e}"));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Reads a PNG as (width, height, interleaved RGB u8).
pub fn read_png(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = read_file(path)?;
    decode_png(path, &bytes)
}

/// Reads a PNG or JPEG (by signature) as (width, height, interleaved RGB u8).
pub fn read_image(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = read_file(path)?;
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        decode_png(path, &bytes)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        decode_jpeg(path, &bytes)
    } else {
        Err(file_err(path, None, "not a PNG or JPEG file"))
    }
}

/// (width, height) from the header of a PNG or JPEG, without decoding the pixels.
pub fn image_dims(path: &Path) -> Result<(usize, usize)> {
    let bytes = read_file(path)?;
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        let r = png::Decoder::new(Cursor::new(&bytes[..]))
            .read_info()
            .map_err(|e| file_err(path, None, format!("bad PNG: {e}")))?;
        Ok((r.info().width as usize, r.info().height as usize))
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        let mut d = jpeg_decoder::Decoder::new(BufReader::new(&bytes[..]));
        d.read_info().map_err(|e| file_err(path, None, format!("bad JPEG: {e}")))?;
        let i = d.info().ok_or_else(|| file_err(path, None, "bad JPEG: no header"))?;
        Ok((i.width as usize, i.height as usize))
    } else {
        Err(file_err(path, None, "not a PNG or JPEG file"))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| file_err(path, None, format!("cannot read: {e}")))
}

fn decode_png(path: &Path, bytes: &[u8]) -> Result<(usize, usize, Vec<u8>)> {
    let bad = |e: png::DecodingError| file_err(path, None, format!("bad PNG: {e}"));
    let mut dec = png::Decoder::new(Cursor::new(bytes));
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut r = dec.read_info().map_err(bad)?;
    let size = r.output_buffer_size().ok_or_else(|| file_err(path, None, "PNG too large"))?;
    let mut buf = vec![0u8; size];
    let info = r.next_frame(&mut buf).map_err(bad)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(file_err(path, None, "indexed PNG was not expanded"));
        }
    };
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let row = &buf[y * info.line_size..y * info.line_size + w * channels];
        for px in row.chunks_exact(channels) {
            match channels {
                1 | 2 => out.extend_from_slice(&[px[0]; 3]),
                _ => out.extend_from_slice(&px[..3]),
            }
        }
    }
    Ok((w, h, out))
}

fn decode_jpeg(path: &Path, bytes: &[u8]) -> Result<(usize, usize, Vec<u8>)> {
    let mut d = jpeg_decoder::Decoder::new(BufReader::new(bytes));
    let px = d.decode().map_err(|e| file_err(path, None, format!("bad JPEG: {e}")))?;
    let i = d.info().ok_or_else(|| file_err(path, None, "bad JPEG: no header"))?;
    let (w, h) = (i.width as usize, i.height as usize);
    let rgb = match i.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => px,
        jpeg_decoder::PixelFormat::L8 => px.iter().flat_map(|&v| [v; 3]).collect(),
        jpeg_decoder::PixelFormat::L16 => {
            // Native-endian 16-bit samples; keep the high byte.
            px.chunks_exact(2).flat_map(|v| [(u16::from_ne_bytes([v[0], v[1]]) >> 8) as u8; 3]).collect()
        }
        jpeg_decoder::PixelFormat::CMYK32 => px
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - p[3] as u32;
                [p[0], p[1], p[2]].map(|c| ((255 - c as u32) * k / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() != w * h * 3 {
        return Err(file_err(path, None, "JPEG decoded to an unexpected size"));
    }
    Ok((w, h, rgb))
}
