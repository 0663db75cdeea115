//! 2-D average pooling (PyTorch `avg_pool2d` semantics, floor mode) and its backward.

use crate::{Float, parallel};

/// Shape and hyper-parameters of an average pool over contiguous `[nc, h, w]` planes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Number of planes (batch × channels).
    pub nc: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Step `[sh, sw]`.
    pub stride: [usize; 2],
    /// Implicit zero padding `[ph, pw]` on both sides.
    pub padding: [usize; 2],
    /// Divide by the full window (clipped to the padded input) when true (PyTorch's default), by
    /// the number of real input pixels in the window when false.
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// `floor((h + 2·ph - kh) / sh) + 1` (0 when the padded input is smaller than the window).
    pub fn out_h(&self) -> usize {
        out_size(self.h, self.kernel[0], self.stride[0], self.padding[0])
    }
    /// `floor((w + 2·pw - kw) / sw) + 1` (0 when the padded input is smaller than the window).
    pub fn out_w(&self) -> usize {
        out_size(self.w, self.kernel[1], self.stride[1], self.padding[1])
    }
    /// Checks the parameters like PyTorch: kernel and stride non-zero, padding at most half the
    /// kernel, non-empty output. The message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        for (i, axis) in ["height", "width"].iter().enumerate() {
            if self.kernel[i] == 0 {
                return Err(format!("kernel[{i}] ({axis}) must be > 0"));
            }
            if self.stride[i] == 0 {
                return Err(format!("stride[{i}] ({axis}) must be > 0"));
            }
            if self.padding[i] > self.kernel[i] / 2 {
                return Err(format!(
                    "padding[{i}] = {} ({axis}) must be at most half of kernel[{i}] = {}",
                    self.padding[i], self.kernel[i]
                ));
            }
        }
        if self.out_h() == 0 || self.out_w() == 0 {
            return Err(format!(
                "output is empty: input {}x{} with padding {:?} is smaller than kernel {:?} (h, w)",
                self.h, self.w, self.padding, self.kernel
            ));
        }
        Ok(())
    }

    /// Window of output row `o` along axis `a`: (clipped start, clipped end, unclipped-but-padded size).
    #[inline]
    fn window(&self, a: usize, o: usize, len: usize) -> (usize, usize, usize) {
        let start = (o * self.stride[a]) as isize - self.padding[a] as isize;
        let end = (start + self.kernel[a] as isize).min((len + self.padding[a]) as isize);
        let padded = (end - start) as usize;
        (start.max(0) as usize, end.min(len as isize) as usize, padded)
    }
}

fn out_size(i: usize, k: usize, s: usize, p: usize) -> usize {
    if s == 0 || i + 2 * p < k { 0 } else { (i + 2 * p - k) / s + 1 }
}

#[track_caller]
fn check(p: &Pool2dParams, xl: usize, yl: usize, xn: &str, yn: &str) {
    if let Err(e) = p.validate() {
        panic!("avg_pool2d: invalid parameters: {e}");
    }
    assert_eq!(
        xl,
        p.nc * p.h * p.w,
        "avg_pool2d: {xn} has {xl} elements, expected nc*h*w = {}*{}*{}",
        p.nc,
        p.h,
        p.w
    );
    let (oh, ow) = (p.out_h(), p.out_w());
    assert_eq!(
        yl,
        p.nc * oh * ow,
        "avg_pool2d: {yn} has {yl} elements, expected nc*oh*ow = {}*{oh}*{ow}",
        p.nc
    );
}

/// Average pool: `x: [nc, h, w]` → `y: [nc, out_h, out_w]`, both contiguous, `y` overwritten.
/// Panics if `p.validate()` fails (the tensor layer validates first).
pub fn avg_pool2d<T: Float>(p: &Pool2dParams, x: &[T], y: &mut [T]) {
    check(p, x.len(), y.len(), "x", "y");
    let (oh, ow) = (p.out_h(), p.out_w());
    let work = y.len() * p.kernel[0] * p.kernel[1];
    parallel::par_chunks_mut(y, oh * ow, work, |c, out| {
        let plane = &x[c * p.h * p.w..][..p.h * p.w];
        for oy in 0..oh {
            let (y0, y1, ph) = p.window(0, oy, p.h);
            for ox in 0..ow {
                let (x0, x1, pw) = p.window(1, ox, p.w);
                let mut s = T::ZERO;
                for iy in y0..y1 {
                    for &v in &plane[iy * p.w + x0..iy * p.w + x1] {
                        s += v;
                    }
                }
                let div = if p.count_include_pad { ph * pw } else { (y1 - y0) * (x1 - x0) };
                out[oy * ow + ox] = s / T::from_usize(div);
            }
        }
    });
}

/// Backward of [`avg_pool2d`]: `dx[c, iy, ix] = Σ dy[c, oy, ox] / divisor(oy, ox)` over the windows
/// containing `(iy, ix)`. `dy: [nc, out_h, out_w]`, `dx: [nc, h, w]`; `dx` is overwritten.
pub fn avg_pool2d_backward<T: Float>(p: &Pool2dParams, dy: &[T], dx: &mut [T]) {
    check(p, dx.len(), dy.len(), "dx", "dy");
    let (oh, ow) = (p.out_h(), p.out_w());
    let work = dy.len() * p.kernel[0] * p.kernel[1];
    parallel::par_chunks_mut(dx, p.h * p.w, work, |c, plane| {
        plane.fill(T::ZERO);
        let g = &dy[c * oh * ow..][..oh * ow];
        for oy in 0..oh {
            let (y0, y1, ph) = p.window(0, oy, p.h);
            for ox in 0..ow {
                let (x0, x1, pw) = p.window(1, ox, p.w);
                let div = if p.count_include_pad { ph * pw } else { (y1 - y0) * (x1 - x0) };
                let v = g[oy * ow + ox] / T::from_usize(div);
                for iy in y0..y1 {
                    for d in &mut plane[iy * p.w + x0..iy * p.w + x1] {
                        *d += v;
                    }
                }
            }
        }
    });
}
