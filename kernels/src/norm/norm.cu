// Layer norm and group norm, forward and backward, on contiguous buffers. Argument lists, buffer
// layouts and launch shapes: norm/cuda.rs. Semantics match norm/mod.rs: biased variance, eps added
// to it, rstd = 1/sqrt(var + eps) in f64; mean and rstd saved per row / per (sample, group).
//
// Both are "normalise rows" problems: layer norm rows are the [rows, cols] rows; a group-norm row is
// one (sample, group) = cpg·spatial contiguous elements, and its affine parameter index is
// (row % groups)·cpg + i / spatial (layer norm: groups = 1, spatial = 1, so the index is i).
// One team per row (row_reduce.cuh). Statistics are corrected two-pass (mean μ0, then Σ(x − μ0) and
// Σ(x − μ0)², which also fix μ0's rounding) accumulated in f64 for every dtype, and
// x̂ = (x − μ0 − δ)·rstd is formed in f64, so |mean| ≫ std costs no accuracy.
//
// Backward dx (M = row length, g = gamma or 1): one pass accumulates (f64) Σ(x − μs) (μs the saved,
// rounded mean), Σ g·dy, Σ g·dy·(x − μs); with d = Σ(x − μs)/M the exact mean is μs + d and
// dx = rstd·(g·dy − mean(g·dy) − x̂·mean(g·dy·x̂)) in a second pass. It also writes μs + d (f64, per
// row) to `mean_exact` when that is not null; the dgamma/dbeta stage 1 reads it (so it runs after).
// dgamma/dbeta: a deterministic two-stage reduction (no atomics): stage 1 writes f64 partial sums
// [2][parts][C] (layer norm: parts = row chunks, one thread per column; group norm: parts = samples,
// one team per (sample, channel) over the spatial elements), stage 2 (`norm_bwd_params_finish_*`)
// adds the parts of each column in order and rounds once.
#include "row_reduce.cuh"

namespace {

template <class T>
__device__ __forceinline__ double ld(const T* p, int64_t i) {
  return static_cast<double>(mt_load(p, i));
}

template <class T>
__device__ __forceinline__ void norm_fwd_rows(const T* __restrict__ x, const T* __restrict__ gamma,
                                              const T* __restrict__ beta, T* __restrict__ y, T* __restrict__ mean,
                                              T* __restrict__ rstd, int64_t rows, int64_t cols, int64_t groups,
                                              int64_t cpg, int64_t spatial, double eps) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(cols);
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * cols;
    double s = 0.0;
    for (int64_t i = t.tid; i < cols; i += t.size) s += ld(x, base + i);
    s = mt_team_reduce(t, s, MtSum(), scratch);
    const double inv_m = cols == 0 ? 0.0 : 1.0 / static_cast<double>(cols);
    const double mu0 = s * inv_m;
    // Corrected two-pass: Σ(x − μ0) fixes the rounding of μ0 (matters for f64 at |mean| ≫ std).
    double d1 = 0.0, m2 = 0.0;
    for (int64_t i = t.tid; i < cols; i += t.size) {
      const double d = ld(x, base + i) - mu0;
      d1 += d;
      m2 += d * d;
    }
    mt_team_sum2(t, d1, m2, scratch);
    const double corr = d1 * inv_m;
    double var = (m2 - d1 * corr) * inv_m;
    if (var < 0.0) var = 0.0;  // (keeps NaN)
    const double rs = 1.0 / sqrt(var + eps);
    if (t.tid == 0) {
      mt_store(mean, row, static_cast<C>(mu0 + corr));
      mt_store(rstd, row, static_cast<C>(rs));
    }
    const int64_t pbase = (row % groups) * cpg;
    for (int64_t i = t.tid; i < cols; i += t.size) {
      const int64_t p = pbase + i / spatial;
      double v = ((ld(x, base + i) - mu0) - corr) * rs;
      if (gamma) v *= ld(gamma, p);
      if (beta) v += ld(beta, p);
      mt_store(y, base + i, static_cast<C>(v));
    }
  }
}

template <class T>
__device__ __forceinline__ void norm_bwd_rows(const T* __restrict__ x, const T* __restrict__ gamma,
                                              const T* __restrict__ mean, const T* __restrict__ rstd,
                                              const T* __restrict__ dy, T* __restrict__ dx,
                                              double* __restrict__ mean_exact, int64_t rows, int64_t cols,
                                              int64_t groups, int64_t cpg, int64_t spatial) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(cols);
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * cols, pbase = (row % groups) * cpg;
    const double ms = ld(mean, row), rs = ld(rstd, row);
    double sd = 0.0, sg = 0.0, sgx = 0.0;
    for (int64_t i = t.tid; i < cols; i += t.size) {
      const double xc = ld(x, base + i) - ms;
      const double g = (gamma ? ld(gamma, pbase + i / spatial) : 1.0) * ld(dy, base + i);
      sd += xc;
      sg += g;
      sgx += g * xc;
    }
    sd = mt_team_reduce(t, sd, MtSum(), scratch);
    mt_team_sum2(t, sg, sgx, scratch);
    const double inv_m = cols == 0 ? 0.0 : 1.0 / static_cast<double>(cols);
    const double d = sd * inv_m;            // exact mean − saved mean
    const double mean_g = sg * inv_m;       // mean(g·dy)
    const double mean_gx = (sgx - d * sg) * rs * inv_m;  // mean(g·dy·x̂)
    if (mean_exact && t.tid == 0) mean_exact[row] = ms + d;
    for (int64_t i = t.tid; i < cols; i += t.size) {
      const double xh = (ld(x, base + i) - ms - d) * rs;
      const double g = (gamma ? ld(gamma, pbase + i / spatial) : 1.0) * ld(dy, base + i);
      mt_store(dx, base + i, static_cast<C>(rs * (g - mean_g - xh * mean_gx)));
    }
  }
}

// Stage 1 of layer-norm dgamma/dbeta: partial[0][part][j] = Σ dy·x̂, partial[1][part][j] = Σ dy over
// rows [part·rpp, min(rows, (part+1)·rpp)). `mean` is the re-centred f64 mean the dx kernel wrote.
template <class T>
__device__ __forceinline__ void ln_params_partial(const T* __restrict__ x, const double* __restrict__ mean,
                                                  const T* __restrict__ rstd, const T* __restrict__ dy,
                                                  double* __restrict__ partial, int64_t rows, int64_t cols,
                                                  int64_t rpp, int64_t parts) {
  for (int64_t part = blockIdx.y; part < parts; part += gridDim.y) {
    const int64_t r0 = part * rpp, r1 = r0 + rpp < rows ? r0 + rpp : rows;
    for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < cols;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      double sg = 0.0, sb = 0.0;
      for (int64_t r = r0; r < r1; ++r) {
        const double g = ld(dy, r * cols + j);
        sg += g * (ld(x, r * cols + j) - mean[r]) * ld(rstd, r);
        sb += g;
      }
      partial[part * cols + j] = sg;
      partial[(parts + part) * cols + j] = sb;
    }
  }
}

// Stage 1 of group-norm dgamma/dbeta: one team per (sample, channel) row of `spatial` elements;
// partial[0][s][ch] = Σ dy·x̂, partial[1][s][ch] = Σ dy. `mean`: the dx kernel's re-centred f64 mean.
template <class T>
__device__ __forceinline__ void gn_params_partial(const T* __restrict__ x, const double* __restrict__ mean,
                                                  const T* __restrict__ rstd, const T* __restrict__ dy,
                                                  double* __restrict__ partial, int64_t n, int64_t c,
                                                  int64_t spatial, int64_t groups) {
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(spatial);
  const int64_t cpg = c / groups;
  for (int64_t row = t.first_row; row < n * c; row += t.row_step) {
    const int64_t stat = (row / c) * groups + (row % c) / cpg, base = row * spatial;
    const double ms = mean[stat], rs = ld(rstd, stat);
    double sg = 0.0, sb = 0.0;
    for (int64_t i = t.tid; i < spatial; i += t.size) {
      const double g = ld(dy, base + i);
      sg += g * (ld(x, base + i) - ms) * rs;
      sb += g;
    }
    mt_team_sum2(t, sg, sb, scratch);
    if (t.tid == 0) {
      partial[row] = sg;
      partial[n * c + row] = sb;
    }
  }
}

// Stage 2: dgamma[j] = Σ_p partial[0][p][j], dbeta[j] = Σ_p partial[1][p][j] (either may be null).
template <class T>
__device__ __forceinline__ void params_finish(const double* __restrict__ partial, int64_t parts, int64_t cols,
                                              T* __restrict__ dgamma, T* __restrict__ dbeta) {
  typedef typename MtCompute<T>::type C;
  MT_GRID_STRIDE(j, cols) {
    double sg = 0.0, sb = 0.0;
    for (int64_t p = 0; p < parts; ++p) {
      sg += partial[p * cols + j];
      sb += partial[(parts + p) * cols + j];
    }
    if (dgamma) mt_store(dgamma, j, static_cast<C>(sg));
    if (dbeta) mt_store(dbeta, j, static_cast<C>(sb));
  }
}

}  // namespace

#define MT_NORM_KERNELS(sfx, T)                                                                                \
  extern "C" __global__ void layer_norm_fwd_##sfx(const T* x, const T* gamma, const T* beta, T* y, T* mean,    \
                                                  T* rstd, int64_t rows, int64_t cols, double eps) {           \
    norm_fwd_rows<T>(x, gamma, beta, y, mean, rstd, rows, cols, 1, cols, 1, eps);                            \
  }                                                                                                            \
  extern "C" __global__ void group_norm_fwd_##sfx(const T* x, const T* gamma, const T* beta, T* y, T* mean,    \
                                                  T* rstd, int64_t n, int64_t c, int64_t spatial,              \
                                                  int64_t groups, double eps) {                                \
    norm_fwd_rows<T>(x, gamma, beta, y, mean, rstd, n * groups, (c / groups) * spatial, groups, c / groups,  \
                     spatial, eps);                                                                            \
  }                                                                                                            \
  extern "C" __global__ void layer_norm_bwd_##sfx(const T* x, const T* gamma, const T* mean, const T* rstd,    \
                                                  const T* dy, T* dx, double* mean_exact, int64_t rows,        \
                                                  int64_t cols) {                                              \
    norm_bwd_rows<T>(x, gamma, mean, rstd, dy, dx, mean_exact, rows, cols, 1, cols, 1);                      \
  }                                                                                                            \
  extern "C" __global__ void group_norm_bwd_##sfx(const T* x, const T* gamma, const T* mean, const T* rstd,    \
                                                  const T* dy, T* dx, double* mean_exact, int64_t n, int64_t c, \
                                                  int64_t spatial, int64_t groups) {                           \
    norm_bwd_rows<T>(x, gamma, mean, rstd, dy, dx, mean_exact, n * groups, (c / groups) * spatial, groups, c / groups,   \
                     spatial);                                                                                 \
  }                                                                                                            \
  extern "C" __global__ void layer_norm_bwd_params_##sfx(const T* x, const double* mean, const T* rstd, const T* dy, \
                                                         double* partial, int64_t rows, int64_t cols,          \
                                                         int64_t rows_per_part, int64_t parts) {               \
    ln_params_partial<T>(x, mean, rstd, dy, partial, rows, cols, rows_per_part, parts);                      \
  }                                                                                                            \
  extern "C" __global__ void group_norm_bwd_params_##sfx(const T* x, const double* mean, const T* rstd, const T* dy, \
                                                         double* partial, int64_t n, int64_t c,                \
                                                         int64_t spatial, int64_t groups) {                    \
    gn_params_partial<T>(x, mean, rstd, dy, partial, n, c, spatial, groups);                                 \
  }                                                                                                            \
  extern "C" __global__ void norm_bwd_params_finish_##sfx(const double* partial, int64_t parts, int64_t cols,   \
                                                          T* dgamma, T* dbeta) {                               \
    params_finish<T>(partial, parts, cols, dgamma, dbeta);                                                   \
  }

MT_FOR_FLOATS(MT_NORM_KERNELS)
