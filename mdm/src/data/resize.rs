//! Antialiased bilinear resampling of RGB u8 images (a triangle filter widened by the downscale
//! ratio, like PIL's `Image.resize(BILINEAR)`), and the short-side resize + centre crop used by
//! the image folder.

/// Weights of one output sample: (first source index, normalised weights).
fn taps(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f32 / dst as f32;
    let fs = ratio.max(1.0);
    (0..dst)
        .map(|o| {
            let center = (o as f32 + 0.5) * ratio;
            let lo = ((center - fs).floor().max(0.0)) as usize;
            let hi = ((center + fs).ceil() as usize).min(src);
            let mut w: Vec<f32> =
                (lo..hi).map(|x| (1.0 - ((x as f32 + 0.5 - center) / fs).abs()).max(0.0)).collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                // Cannot happen for src ≥ 1, but keep a defined result: nearest source pixel.
                w = vec![0.0; hi - lo];
                w[(center as usize).clamp(lo, hi - 1) - lo] = 1.0;
            }
            (lo, w)
        })
        .collect()
}

/// Resizes interleaved RGB `sw`×`sh` to `dw`×`dh` (all ≥ 1).
pub fn resize_rgb(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let tx = taps(sw, dw);
    let ty = taps(sh, dh);
    // Horizontal pass: sh rows × dw columns.
    let mut mid = vec![0f32; sh * dw * 3];
    for y in 0..sh {
        for (x, (lo, w)) in tx.iter().enumerate() {
            for c in 0..3 {
                let mut acc = 0.0;
                for (k, wk) in w.iter().enumerate() {
                    acc += wk * src[(y * sw + lo + k) * 3 + c] as f32;
                }
                mid[(y * dw + x) * 3 + c] = acc;
            }
        }
    }
    let mut out = vec![0u8; dh * dw * 3];
    for (y, (lo, w)) in ty.iter().enumerate() {
        for x in 0..dw {
            for c in 0..3 {
                let mut acc = 0.0;
                for (k, wk) in w.iter().enumerate() {
                    acc += wk * mid[((lo + k) * dw + x) * 3 + c];
                }
                out[(y * dw + x) * 3 + c] = acc.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Resizes so that the short side is `size`, then crops the centre `size`×`size`.
pub fn resize_center_crop(src: &[u8], w: usize, h: usize, size: usize) -> Vec<u8> {
    let short = w.min(h) as f64;
    let nw = ((w as f64 * size as f64 / short).round() as usize).max(size);
    let nh = ((h as f64 * size as f64 / short).round() as usize).max(size);
    let resized = resize_rgb(src, w, h, nw, nh);
    let (ox, oy) = ((nw - size) / 2, (nh - size) / 2);
    let mut out = Vec::with_capacity(size * size * 3);
    for y in 0..size {
        let row = ((y + oy) * nw + ox) * 3;
        out.extend_from_slice(&resized[row..row + size * 3]);
    }
    out
}
