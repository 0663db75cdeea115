//! 2-D convolution, NCHW, forward and both gradients (stride, padding, dilation, groups).
//!
//! Buffers are contiguous row-major:
//!
//! | buffer | shape |
//! |---|---|
//! | `x`, `dx` | `[n, c_in, h, w]` |
//! | `w`, `dw` | `[c_out, c_in / groups, kh, kw]` |
//! | `bias`, `db` | `[c_out]` |
//! | `y`, `dy` | `[n, c_out, out_h, out_w]` |
//!
//! with `out_h = (h + 2·pad_h − dil_h·(kh − 1) − 1) / stride_h + 1` (likewise `out_w`). Every entry
//! point *overwrites* its output buffer (nothing accumulates into the caller's data).
//!
//! # Algorithms
//!
//! * **im2col + GEMM** (the default). Per image and per group, the input patch matrix
//!   `col [cpg·kh·kw, oh·ow]` is built in pooled scratch and one GEMM computes
//!   `y[n, g] (opg × oh·ow) = w_g (opg × cpg·kh·kw) · col`. The weight gradient is
//!   `dw_g += dy[n, g] · colᵀ` (GEMM over the `oh·ow` axis, accumulated over the images of a task);
//!   the input gradient is `dcol = w_gᵀ · dy[n, g]` followed by col2im (scatter-add) into `dx`.
//!   `cpg = c_in / groups`, `opg = c_out / groups`.
//! * **1×1, stride 1, no padding**: `x[n, g]` already *is* the column matrix, so no im2col/col2im;
//!   every GEMM reads and writes the caller's buffers directly.
//! * **direct** (shift-and-accumulate over whole output rows, no scratch): used when the GEMM would be
//!   degenerate, i.e. tiny channel groups such as depthwise convs (see [`Conv2dAlgo::Auto`]).
//!
//! Images are processed in parallel (`kernels::parallel`) when `n > 1`; the weight gradient gives each
//! task its own partial `dw` and sums them at the end. Every GEMM is a whole `(group, image)` product,
//! never per pixel, so the packed GEMM sees `m = opg`, `n = oh·ow`, `k = cpg·kh·kw`.
//!
//! # Choosing im2col+GEMM vs direct (measured)
//!
//! Criterion group `conv_algo` in `benches/benches/conv.rs`: f32, N=8, 32×32, 3×3, pad 1, GFLOP/s, on
//! the 2-core AVX-512 dev box shared with four other builds (load average 4–10, so ±30 %; ranges are
//! repeated runs). "placeholder" is this branch's triple-loop GEMM; "packed" is the GEMM helper's
//! packed AVX-512 GEMM (branch `wip-gemm`, commit 7c3e8c1) dropped into a scratch copy of this tree
//! for the measurement only. Forward unless noted.
//!
//! | conv | cpg·opg | placeholder: im2col / direct | packed: im2col / direct |
//! |---|---|---|---|
//! | depthwise C=64 | 1 | 1.2 / 8.7 | 2.7–5.9 / 11–17 |
//! | depthwise C=64, input grad | 1 | 1.4 / 8.1 | 7.2 / 20.6 |
//! | depthwise C=64, weight grad | 1 | 2.1 / 6.2 | 2.2 / 20.1 |
//! | groups 32, C 64→64 (cpg = opg = 2) | 4 | – | 4.8–7.0 / 9.7–15 |
//! | groups 32, C 64→128 (cpg 2, opg 4) | 8 | – | 13.7 / 10.6 |
//! | groups 16, C 64→64 (cpg = opg = 4) | 16 | 1.5 / 11.1 | 14.6–23.4 / 11.1–12.6 |
//! | C 3→32 | 96 | 3.0 / 11.7 | 78.9 / 12.7 |
//! | C 32→32 | 1024 | 2.9 / 27.7 | 49.8 / 16.4 |
//!
//! The direct kernel (row loops multiversioned for AVX-512 / AVX2) streams each output plane once per
//! `(in channel, tap)`, so it runs at L1 bandwidth (~10–20 GFLOP/s here) whatever the channel count.
//! im2col + packed GEMM wins as soon as the GEMM has some `m = opg` and `k = cpg·kh·kw` to block
//! over (crossover between cpg·opg = 4 and 8), and loses badly when it degenerates into a
//! matrix-vector product (depthwise). `Auto` therefore takes the direct path iff `cpg · opg ≤ 4`.
//! With the placeholder GEMM direct wins everywhere, an artefact of the triple loop that is
//! deliberately ignored.
//!
//! Big conv (3×3, N=8, C 128→128, 32×32, pad 1, criterion group `conv3x3_n8_c128_32x32`), GFLOP/s:
//! placeholder GEMM: forward 0.16, input grad 1.07, weight grad 1.30; packed GEMM: forward 64.5,
//! input grad 121, weight grad 83, against 72–85 for the bare GEMM of the forward's shape
//! (128×1024×1152, ×8) in the same run.

mod cpu;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
mod direct;
mod im2col;
pub mod reference;
mod scratch;
#[cfg(test)]
mod tests;

use crate::Float;

/// Sizes and hyper-parameters of one 2-D convolution (NCHW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// `[stride_h, stride_w]`, each ≥ 1.
    pub stride: [usize; 2],
    /// `[pad_h, pad_w]`: implicit zeros added on both sides.
    pub padding: [usize; 2],
    /// `[dil_h, dil_w]`, each ≥ 1 (1 = dense kernel).
    pub dilation: [usize; 2],
    /// Channel groups; must divide `c_in` and `c_out` (`groups == c_in == c_out` is depthwise).
    pub groups: usize,
}

fn out_len(input: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
    if k == 0 || s == 0 || d == 0 {
        return 0;
    }
    let eff = d * (k - 1) + 1;
    let padded = input + 2 * p;
    if padded < eff { 0 } else { (padded - eff) / s + 1 }
}

impl Conv2dParams {
    /// Output height (0 if the parameters are invalid).
    pub fn out_h(&self) -> usize {
        out_len(self.h, self.kh, self.stride[0], self.padding[0], self.dilation[0])
    }

    /// Output width (0 if the parameters are invalid).
    pub fn out_w(&self) -> usize {
        out_len(self.w, self.kw, self.stride[1], self.padding[1], self.dilation[1])
    }

    /// `Err(message naming the field and values)` if a stride, dilation, kernel size or `groups` is 0,
    /// `groups` does not divide `c_in` and `c_out`, or the dilated kernel does not fit in the padded
    /// input.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("stride[0]", self.stride[0]),
            ("stride[1]", self.stride[1]),
            ("dilation[0]", self.dilation[0]),
            ("dilation[1]", self.dilation[1]),
            ("kh", self.kh),
            ("kw", self.kw),
            ("groups", self.groups),
        ] {
            if v == 0 {
                return Err(format!("conv2d: {name} must be at least 1, got 0"));
            }
        }
        if !self.c_in.is_multiple_of(self.groups) {
            return Err(format!("conv2d: groups = {} does not divide c_in = {}", self.groups, self.c_in));
        }
        if !self.c_out.is_multiple_of(self.groups) {
            return Err(format!("conv2d: groups = {} does not divide c_out = {}", self.groups, self.c_out));
        }
        for (axis, size, k, p, d) in [
            ("h", self.h, self.kh, self.padding[0], self.dilation[0]),
            ("w", self.w, self.kw, self.padding[1], self.dilation[1]),
        ] {
            let eff = d * (k - 1) + 1;
            if eff > size + 2 * p {
                let (kn, pi) = if axis == "h" { ("kh", 0) } else { ("kw", 1) };
                return Err(format!(
                    "conv2d: dilated kernel {kn} = {k} (dilation[{pi}] = {d}, extent {eff}) does not fit in padded input \
                     {axis} = {size} + 2 * padding[{pi}] = {}",
                    size + 2 * p
                ));
            }
        }
        Ok(())
    }

    /// Multiply-adds × 2 of the forward pass: `2 · n · c_out · oh · ow · (c_in / groups) · kh · kw`
    /// (each gradient costs the same).
    pub fn flops(&self) -> usize {
        let cpg = self.c_in.checked_div(self.groups).unwrap_or(0);
        2 * self.n * self.c_out * self.out_h() * self.out_w() * cpg * self.kh * self.kw
    }

    /// Length of `x` / `dx`: `n · c_in · h · w`.
    pub fn x_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }

    /// Length of `w` / `dw`: `c_out · (c_in / groups) · kh · kw`.
    pub fn w_len(&self) -> usize {
        self.c_out * self.c_in.checked_div(self.groups).unwrap_or(0) * self.kh * self.kw
    }

    /// Length of `y` / `dy`: `n · c_out · out_h · out_w`.
    pub fn y_len(&self) -> usize {
        self.n * self.c_out * self.out_h() * self.out_w()
    }

    /// Input channels per group.
    pub(crate) fn cpg(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub(crate) fn opg(&self) -> usize {
        self.c_out / self.groups
    }

    /// 1×1 kernel, stride 1, no padding: `x` is already the column matrix.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }
}

/// Which algorithm a convolution uses (the plain entry points use [`Conv2dAlgo::Auto`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Conv2dAlgo {
    /// Direct when `cpg · opg ≤ 4` (depthwise and tiny groups), else im2col + GEMM (with the no-copy
    /// path for 1×1 stride-1 unpadded convs). See the measurements in the module docs.
    Auto,
    /// im2col + GEMM (1×1 stride-1 unpadded convs skip the im2col).
    Im2colGemm,
    /// Direct shift-and-accumulate loops, no scratch.
    Direct,
}

impl Conv2dAlgo {
    fn resolve(self, p: &Conv2dParams) -> Conv2dAlgo {
        match self {
            Conv2dAlgo::Auto => {
                if p.opg() * p.cpg() <= 4 {
                    Conv2dAlgo::Direct
                } else {
                    Conv2dAlgo::Im2colGemm
                }
            }
            a => a,
        }
    }
}

fn check_params(p: &Conv2dParams) {
    if let Err(e) = p.validate() {
        panic!("{e}");
    }
}

fn check_len(name: &str, got: usize, want: usize, p: &Conv2dParams) {
    assert!(got == want, "conv2d: buffer {name} has length {got}, expected {want} for {p:?}");
}

/// Forward convolution: `y[n, co, oh, ow] = bias[co] + Σ_{ci in group, ki, kj}
/// w[co, ci, ki, kj] · x[n, g·cpg + ci, oh·sh + ki·dh − ph, ow·sw + kj·dw − pw]` (out-of-range input
/// reads are 0).
///
/// `x: [n, c_in, h, w]`, `w: [c_out, c_in/groups, kh, kw]`, `bias: [c_out]` (optional),
/// `y: [n, c_out, oh, ow]` (overwritten). All contiguous. Panics if `p` is invalid or a length differs.
pub fn conv2d_forward<T: Float>(p: &Conv2dParams, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    conv2d_forward_with(Conv2dAlgo::Auto, p, x, w, bias, y);
}

/// [`conv2d_forward`] with an explicit algorithm (for benchmarks and cross-checks).
pub fn conv2d_forward_with<T: Float>(
    algo: Conv2dAlgo,
    p: &Conv2dParams,
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) {
    check_params(p);
    check_len("x", x.len(), p.x_len(), p);
    check_len("w", w.len(), p.w_len(), p);
    if let Some(b) = bias {
        check_len("bias", b.len(), p.c_out, p);
    }
    check_len("y", y.len(), p.y_len(), p);
    match algo.resolve(p) {
        Conv2dAlgo::Direct => direct::forward(p, x, w, bias, y),
        _ => cpu::forward(p, x, w, bias, y),
    }
}

/// Input gradient: `dx = ∂⟨y, dy⟩/∂x` of the bias-free forward, i.e. the adjoint of the conv.
///
/// `w: [c_out, c_in/groups, kh, kw]`, `dy: [n, c_out, oh, ow]`, `dx: [n, c_in, h, w]` (overwritten).
pub fn conv2d_backward_input<T: Float>(p: &Conv2dParams, w: &[T], dy: &[T], dx: &mut [T]) {
    conv2d_backward_input_with(Conv2dAlgo::Auto, p, w, dy, dx);
}

/// [`conv2d_backward_input`] with an explicit algorithm.
pub fn conv2d_backward_input_with<T: Float>(
    algo: Conv2dAlgo,
    p: &Conv2dParams,
    w: &[T],
    dy: &[T],
    dx: &mut [T],
) {
    check_params(p);
    check_len("w", w.len(), p.w_len(), p);
    check_len("dy", dy.len(), p.y_len(), p);
    check_len("dx", dx.len(), p.x_len(), p);
    match algo.resolve(p) {
        Conv2dAlgo::Direct => direct::backward_input(p, w, dy, dx),
        _ => cpu::backward_input(p, w, dy, dx),
    }
}

/// Weight gradient: `dw[co, ci, ki, kj] = Σ_{n, oh, ow} dy[n, co, oh, ow] · x[n, g·cpg + ci, ih, iw]`.
///
/// `x: [n, c_in, h, w]`, `dy: [n, c_out, oh, ow]`, `dw: [c_out, c_in/groups, kh, kw]` (overwritten).
pub fn conv2d_backward_weight<T: Float>(p: &Conv2dParams, x: &[T], dy: &[T], dw: &mut [T]) {
    conv2d_backward_weight_with(Conv2dAlgo::Auto, p, x, dy, dw);
}

/// [`conv2d_backward_weight`] with an explicit algorithm.
pub fn conv2d_backward_weight_with<T: Float>(
    algo: Conv2dAlgo,
    p: &Conv2dParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
) {
    check_params(p);
    check_len("x", x.len(), p.x_len(), p);
    check_len("dy", dy.len(), p.y_len(), p);
    check_len("dw", dw.len(), p.w_len(), p);
    match algo.resolve(p) {
        Conv2dAlgo::Direct => direct::backward_weight(p, x, dy, dw),
        _ => cpu::backward_weight(p, x, dy, dw),
    }
}

/// Bias gradient: `db[c] = Σ_{n, oh, ow} dy[n, c, oh, ow]`.
///
/// `dy: [n, c_out, oh, ow]`, `db: [c_out]` (overwritten).
pub fn conv2d_backward_bias<T: Float>(p: &Conv2dParams, dy: &[T], db: &mut [T]) {
    check_params(p);
    check_len("dy", dy.len(), p.y_len(), p);
    check_len("db", db.len(), p.c_out, p);
    cpu::backward_bias(p, dy, db);
}
