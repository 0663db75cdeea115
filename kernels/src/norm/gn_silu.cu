// Fused group norm + timestep modulation + SiLU (the ResNet block epilogue), forward and backward,
// on contiguous buffers. Argument lists, layouts and launch shapes: norm/cuda.rs. Semantics match
// norm/mod.rs `group_norm_silu_forward`/`_backward`:
//   y = SiLU(GN(x; gamma, beta)·(1 + scale[s, ch]) + shift[s, ch]),  SiLU(z) = z·σ(z),
// gamma/beta/scale/shift each may be null (1 / 0 / 0 / 0).
//
// One team per (sample, group) row of cpg·spatial contiguous elements (row_reduce.cuh), as the plain
// group norm in norm.cu.
// Forward: x is read once for the statistics — shifted one-pass sums Σd, Σd² with d = x − K,
// K = the row's first element, accumulated in f64 (var = (Σd² − (Σd)²/M)/M loses only
// log10(1 + (μ − K)²/var) of f64's 16 digits, and K is a sample of the row) — and once more for the
// epilogue z = (x − μ)·k + c0, k = rstd·γ·(1 + a), c0 = β·(1 + a) + b per (sample, channel), with
// x − μ in f64 and z, σ(z) in the compute type (f32 for 16-bit storage, f64 for f64).
// Backward (M = row length, μ re-centred from the saved mean as in norm.cu, x̂ = (x − μ)·rstd):
//   dz = dy·σ(z)·(1 + z·(1 − σ(z)))                      (recomputed from x, never stored)
//   per channel (one team reduction each): Sdz = Σ dz, Sdzx = Σ dz·(x − μ)   (f64)
//   dshift[s, ch] = Sdz, dscale[s, ch] = γ·rstd·Sdzx + β·Sdz                 (written directly)
//   dx = rstd·G·dz − rstd·A/M − (x − μ)·rstd³·B/M,  G = γ·(1 + a), A = Σ_ch G·Sdz, B = Σ_ch G·Sdzx
//   dgamma/dbeta: stage 1 fused here, partial[0][s][ch] = (1 + a)·rstd·Sdzx, partial[1][s][ch] =
//   (1 + a)·Sdz (f64), stage 2 is norm.cu's `norm_bwd_params_finish_*` with parts = n, cols = c.
// Deterministic: every sum's order depends only on the shapes and the launch.
#include "row_reduce.cuh"

namespace {

template <class T>
__device__ __forceinline__ double gs_ld(const T* p, int64_t i) {
  return static_cast<double>(mt_load(p, i));
}
__device__ __forceinline__ float gs_exp(float x) { return expf(x); }
__device__ __forceinline__ double gs_exp(double x) { return exp(x); }
template <class C>
__device__ __forceinline__ C gs_sigmoid(C z) {
  return C(1) / (C(1) + gs_exp(-z));
}

// Loads per thread issued before any is used, in every sweep over a row. A block owns a row and
// rows are few (n·groups: 256 in the 8×256×64² benchmark), so with one load in flight per thread
// the memory system idled: on an H200 (2026-11-26) the f32 forward first moved 445 GB/s, 13 % of a
// device copy. Each thread still visits its elements in the same order (tid, tid + size, …), so
// every sum, and therefore every result, is bit-for-bit what the one-load loop gave.
// The forward unrolls by 4 and is bounded to two 512-thread blocks per SM (≤ 64 registers; no
// spills except 44 B in f64), so all 256 rows of the benchmark run in one wave: with 8 loads and 94
// registers only one block fit, and ncu on the H200 showed 25 % occupancy and a second, partial
// wave. The backward, which holds x and dy, unrolls by 8.
#define GS_U 8
#define GS_U_FWD 4
// The largest block the kernels are launched with (`GN_SILU_BLOCK_THREADS` in norm/cuda.rs): it
// caps the registers at 128 per thread (the unrolled backward took 144–158 when it held x in f64;
// holding it in the compute type, it takes 100–112).
#define GS_MAX_THREADS 512

// Channel of element i of a row (i / spatial), in 32 bits when the row is short enough: a 64-bit
// division is a long software routine, and the epilogues pay it per element.
__device__ __forceinline__ int64_t gs_chan(int64_t i, int64_t spatial, bool narrow) {
  return narrow ? static_cast<int64_t>(static_cast<uint32_t>(i) / static_cast<uint32_t>(spatial)) : i / spatial;
}

// The U elements p[off + i0 + u·step] (u < U) of one strided sweep that lie below `end` (the others
// 0), all loaded before any is used, in the compute type.
template <int U, class T, class C>
__device__ __forceinline__ void gs_sweep_load(const T* p, int64_t off, int64_t i0, int step, int64_t end,
                                              C (&v)[U]) {
#pragma unroll
  for (int u = 0; u < U; ++u) {
    const int64_t i = i0 + static_cast<int64_t>(u) * step;
    v[u] = i < end ? static_cast<C>(mt_load(p, off + i)) : C(0);
  }
}

// SiLU(z) with z = (x − μ)·k + c0: x − μ in f64, the rest in the compute type.
template <class C>
__device__ __forceinline__ C gs_out(C x, double mu, C k, C c0) {
  const C z = static_cast<C>(static_cast<double>(x) - mu) * k + c0;
  return z * gs_sigmoid(z);
}

// γ, β, 1 + a, b of channel `ch` of sample `smp`.
struct GsCoef {
  double g, b, sc, sh;
};
template <class T>
__device__ __forceinline__ GsCoef gs_coef(const T* gamma, const T* beta, const T* scale, const T* shift,
                                          int64_t smp, int64_t c, int64_t ch) {
  GsCoef k;
  k.g = gamma ? gs_ld(gamma, ch) : 1.0;
  k.b = beta ? gs_ld(beta, ch) : 0.0;
  k.sc = 1.0 + (scale ? gs_ld(scale, smp * c + ch) : 0.0);
  k.sh = shift ? gs_ld(shift, smp * c + ch) : 0.0;
  return k;
}

// dz = dy·SiLU′(z) with z = xc·k + c0, in the compute type.
template <class C>
__device__ __forceinline__ C gs_dz(C xc, C k, C c0, C dy) {
  const C z = xc * k + c0;
  const C s = gs_sigmoid(z);
  return dy * s * (C(1) + z * (C(1) - s));
}

template <class T>
__device__ __forceinline__ void gn_silu_fwd_rows(const T* __restrict__ x, const T* __restrict__ gamma,
                                                 const T* __restrict__ beta, const T* __restrict__ scale,
                                                 const T* __restrict__ shift, T* __restrict__ y,
                                                 T* __restrict__ mean, T* __restrict__ rstd, int64_t n, int64_t c,
                                                 int64_t spatial, int64_t groups, double eps) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const int64_t cpg = c / groups, cols = cpg * spatial, rows = n * groups;
  const MtRowTeam t = mt_row_team(cols);
  const bool narrow = cols <= 0xffffffffLL;  // every i < cols fits 32 bits
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * cols, smp = row / groups, ch0 = (row % groups) * cpg;
    const double k0 = cols > 0 ? gs_ld(x, base) : 0.0;
    double s1 = 0.0, s2 = 0.0;
    for (int64_t i0 = t.tid; i0 < cols; i0 += GS_U_FWD * static_cast<int64_t>(t.size)) {
      C xv[GS_U_FWD];
      gs_sweep_load(x, base, i0, t.size, cols, xv);
#pragma unroll
      for (int u = 0; u < GS_U_FWD; ++u) {
        if (i0 + static_cast<int64_t>(u) * t.size >= cols) break;
        const double d = static_cast<double>(xv[u]) - k0;
        s1 += d;
        s2 += d * d;
      }
    }
    mt_team_sum2(t, s1, s2, scratch);
    const double inv_m = cols == 0 ? 0.0 : 1.0 / static_cast<double>(cols);
    const double dm = s1 * inv_m;
    double var = (s2 - s1 * dm) * inv_m;
    if (var < 0.0) var = 0.0;  // (keeps NaN)
    const double mu = k0 + dm, rs = 1.0 / sqrt(var + eps);
    if (t.tid == 0) {
      mt_store(mean, row, static_cast<C>(mu));
      mt_store(rstd, row, static_cast<C>(rs));
    }
    // Epilogue. With at least one element per thread in every channel the team walks channel by
    // channel and folds k, c0 once per channel; otherwise it walks the flat row and folds them per
    // element. Each element is computed by the same expression either way.
    if (spatial >= t.size) {
      for (int64_t ci = 0; ci < cpg; ++ci) {
        const GsCoef p = gs_coef(gamma, beta, scale, shift, smp, c, ch0 + ci);
        const C k = static_cast<C>(rs * p.g * p.sc), c0 = static_cast<C>(p.b * p.sc + p.sh);
        const int64_t cb = base + ci * spatial;
        for (int64_t j0 = t.tid; j0 < spatial; j0 += GS_U_FWD * static_cast<int64_t>(t.size)) {
          C xv[GS_U_FWD];
          gs_sweep_load(x, cb, j0, t.size, spatial, xv);
#pragma unroll
          for (int u = 0; u < GS_U_FWD; ++u) {
            const int64_t j = j0 + static_cast<int64_t>(u) * t.size;
            if (j >= spatial) break;
            mt_store(y, cb + j, gs_out(xv[u], mu, k, c0));
          }
        }
      }
    } else {
      for (int64_t i0 = t.tid; i0 < cols; i0 += GS_U_FWD * static_cast<int64_t>(t.size)) {
        C xv[GS_U_FWD];
        gs_sweep_load(x, base, i0, t.size, cols, xv);
#pragma unroll
        for (int u = 0; u < GS_U_FWD; ++u) {
          const int64_t i = i0 + static_cast<int64_t>(u) * t.size;
          if (i >= cols) break;
          const GsCoef p = gs_coef(gamma, beta, scale, shift, smp, c, ch0 + gs_chan(i, spatial, narrow));
          const C k = static_cast<C>(rs * p.g * p.sc), c0 = static_cast<C>(p.b * p.sc + p.sh);
          mt_store(y, base + i, gs_out(xv[u], mu, k, c0));
        }
      }
    }
  }
}

template <class T>
__device__ __forceinline__ void gn_silu_bwd_rows(const T* __restrict__ x, const T* __restrict__ gamma,
                                                 const T* __restrict__ beta, const T* __restrict__ scale,
                                                 const T* __restrict__ shift, const T* __restrict__ mean,
                                                 const T* __restrict__ rstd, const T* __restrict__ dy,
                                                 T* __restrict__ dx, T* __restrict__ dscale, T* __restrict__ dshift,
                                                 double* __restrict__ partial, int64_t n, int64_t c,
                                                 int64_t spatial, int64_t groups) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const int64_t cpg = c / groups, cols = cpg * spatial, rows = n * groups;
  const MtRowTeam t = mt_row_team(cols);
  const bool narrow = cols <= 0xffffffffLL;  // every i < cols fits 32 bits
  const double inv_m = cols == 0 ? 0.0 : 1.0 / static_cast<double>(cols);
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * cols, smp = row / groups, ch0 = (row % groups) * cpg;
    const double ms = gs_ld(mean, row), rs = gs_ld(rstd, row);
    // pass 0: re-centre the saved (rounded) mean
    double sd = 0.0;
    for (int64_t i0 = t.tid; i0 < cols; i0 += GS_U * static_cast<int64_t>(t.size)) {
      C xv[GS_U];
      gs_sweep_load(x, base, i0, t.size, cols, xv);
#pragma unroll
      for (int u = 0; u < GS_U; ++u) {  // past the row's end the term is 0 − 0 = 0 (skipped)
        if (i0 + static_cast<int64_t>(u) * t.size >= cols) break;
        sd += static_cast<double>(xv[u]) - ms;
      }
    }
    sd = mt_team_reduce(t, sd, MtSum(), scratch);
    const double mu = ms + sd * inv_m;
    // pass 1: per-channel sums (uniform loop: every lane of the team joins each reduction)
    double big_a = 0.0, big_b = 0.0;
    for (int64_t ci = 0; ci < cpg; ++ci) {
      const int64_t ch = ch0 + ci, cb = base + ci * spatial;
      const GsCoef p = gs_coef(gamma, beta, scale, shift, smp, c, ch);
      const C k = static_cast<C>(rs * p.g * p.sc), c0 = static_cast<C>(p.b * p.sc + p.sh);
      double a = 0.0, b = 0.0;
      for (int64_t j0 = t.tid; j0 < spatial; j0 += GS_U * static_cast<int64_t>(t.size)) {
        C xv[GS_U], dyv[GS_U];
        gs_sweep_load(x, cb, j0, t.size, spatial, xv);
        gs_sweep_load(dy, cb, j0, t.size, spatial, dyv);
#pragma unroll
        for (int u = 0; u < GS_U; ++u) {
          if (j0 + static_cast<int64_t>(u) * t.size >= spatial) break;
          const double xc = static_cast<double>(xv[u]) - mu;
          const double dz = gs_dz<C>(static_cast<C>(xc), k, c0, dyv[u]);
          a += dz;
          b += dz * xc;
        }
      }
      mt_team_sum2(t, a, b, scratch);
      big_a += p.g * p.sc * a;
      big_b += p.g * p.sc * b;
      if (t.tid == 0) {
        const int64_t o = smp * c + ch;
        if (dscale) mt_store(dscale, o, static_cast<C>(p.g * rs * b + p.b * a));
        if (dshift) mt_store(dshift, o, static_cast<C>(a));
        if (partial) {
          partial[o] = p.sc * rs * b;
          partial[n * c + o] = p.sc * a;
        }
      }
    }
    const double c2 = -big_b * rs * rs * rs * inv_m, c3 = -big_a * rs * inv_m;
    // pass 2: dx
    for (int64_t i0 = t.tid; i0 < cols; i0 += GS_U * static_cast<int64_t>(t.size)) {
      C xv[GS_U], dyv[GS_U];
      gs_sweep_load(x, base, i0, t.size, cols, xv);
      gs_sweep_load(dy, base, i0, t.size, cols, dyv);
#pragma unroll
      for (int u = 0; u < GS_U; ++u) {
        const int64_t i = i0 + static_cast<int64_t>(u) * t.size;
        if (i >= cols) break;
        const GsCoef p = gs_coef(gamma, beta, scale, shift, smp, c, ch0 + gs_chan(i, spatial, narrow));
        const double kk = rs * p.g * p.sc;
        const C k = static_cast<C>(kk), c0 = static_cast<C>(p.b * p.sc + p.sh);
        const double xc = static_cast<double>(xv[u]) - mu;
        const double dz = gs_dz<C>(static_cast<C>(xc), k, c0, dyv[u]);
        mt_store(dx, base + i, static_cast<C>(kk * dz + c2 * xc + c3));
      }
    }
  }
}

}  // namespace

#define MT_GN_SILU_KERNELS(sfx, T)                                                                            \
  extern "C" __global__ void __launch_bounds__(GS_MAX_THREADS, 2) group_norm_silu_fwd_##sfx(const T* x, const T* gamma, const T* beta,             \
                                                       const T* scale, const T* shift, T* y, T* mean, T* rstd, \
                                                       int64_t n, int64_t c, int64_t spatial, int64_t groups, \
                                                       double eps) {                                          \
    gn_silu_fwd_rows<T>(x, gamma, beta, scale, shift, y, mean, rstd, n, c, spatial, groups, eps);            \
  }                                                                                                           \
  extern "C" __global__ void __launch_bounds__(GS_MAX_THREADS) group_norm_silu_bwd_##sfx(                                                       \
      const T* x, const T* gamma, const T* beta, const T* scale, const T* shift, const T* mean, const T* rstd, \
      const T* dy, T* dx, T* dscale, T* dshift, double* partial, int64_t n, int64_t c, int64_t spatial,       \
      int64_t groups) {                                                                                       \
    gn_silu_bwd_rows<T>(x, gamma, beta, scale, shift, mean, rstd, dy, dx, dscale, dshift, partial, n, c,     \
                        spatial, groups);                                                                     \
  }

MT_FOR_FLOATS(MT_GN_SILU_KERNELS)
