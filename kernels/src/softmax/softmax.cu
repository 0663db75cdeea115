// Softmax / log-softmax over the last logical dimension, forward (strided input, contiguous output)
// and backward (contiguous y, dy, dx). Argument lists and launch shapes: softmax/cuda.rs.
// Semantics match softmax/mod.rs (PyTorch): a row containing NaN or +inf, or made only of -inf, gives
// NaN everywhere in that row; -inf entries of an otherwise finite row give 0 (log: -inf).
//
// One team per row (row_reduce.cuh). Forward: one online pass computes the row max m and
// s = Σ exp(x − m) (each thread keeps its own (m, s), rescaled when m grows; teams merge pairs),
// then a second pass writes exp(x − m)/s or (x − m) − log s. Math in the compute type (f32 for
// f32/f16/bf16, f64 for f64): the sum is of terms in [0, 1], so f32 accumulation loses at most
// ~ (n/threads + log2 threads)·ε relative.
#include "row_reduce.cuh"

namespace {

__device__ __forceinline__ float sm_exp(float x) { return expf(x); }
__device__ __forceinline__ double sm_exp(double x) { return exp(x); }
__device__ __forceinline__ float sm_log(float x) { return logf(x); }
__device__ __forceinline__ double sm_log(double x) { return log(x); }

// Merges the online state (m, s) with (m2, s2). A state with m = -inf has s = 0.
template <class C> __device__ __forceinline__ void sm_merge(C& m, C& s, C m2, C s2) {
  const C mn = mt_max_nan(m, m2);
  if (mn == -C(INFINITY)) return;  // both empty so far (m = -inf, s = 0)
  s = s * sm_exp(m - mn) + s2 * sm_exp(m2 - mn);
  m = mn;
}

template <class T, bool LOG>
__device__ __forceinline__ void softmax_fwd(const T* __restrict__ x, StridedArg xl, T* __restrict__ y, int64_t rows,
                                            int64_t n) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(n);
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * n;
    C m = -C(INFINITY), s = C(0);
    for (int64_t i = t.tid; i < n; i += t.size) {
      const C v = mt_load(x, mt_strided_offset(xl, base + i));
      sm_merge(m, s, v, C(1));
    }
    for (int o = 16; o > 0; o >>= 1) {
      const C m2 = __shfl_xor_sync(0xffffffffu, m, o);
      const C s2 = __shfl_xor_sync(0xffffffffu, s, o);
      sm_merge(m, s, m2, s2);
    }
    if (t.block) {
      C* sm = reinterpret_cast<C*>(scratch.v);
      C* ss = reinterpret_cast<C*>(scratch.w);
      __syncthreads();
      if ((threadIdx.x & 31) == 0) {
        MT_SH_ST(sm[threadIdx.x / 32], m);
        MT_SH_ST(ss[threadIdx.x / 32], s);
      }
      __syncthreads();
      m = MT_SH_LD(sm[0]);
      s = MT_SH_LD(ss[0]);
      for (int w = 1; w < t.size / 32; ++w) sm_merge(m, s, MT_SH_LD(sm[w]), MT_SH_LD(ss[w]));
    }
    // All -inf: m = -inf, s = 0 and x − m is NaN below, as required.
    const C ls = sm_log(s), inv = C(1) / s;
    for (int64_t i = t.tid; i < n; i += t.size) {
      const C v = mt_load(x, mt_strided_offset(xl, base + i)) - m;
      mt_store(y, base + i, LOG ? v - ls : sm_exp(v) * inv);
    }
  }
}

// softmax: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy.
template <class T, bool LOG>
__device__ __forceinline__ void softmax_bwd(const T* __restrict__ y, const T* __restrict__ dy, T* __restrict__ dx,
                                            int64_t rows, int64_t n) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(n);
  for (int64_t row = t.first_row; row < rows; row += t.row_step) {
    const int64_t base = row * n;
    C acc = C(0);
    for (int64_t i = t.tid; i < n; i += t.size) {
      const C g = mt_load(dy, base + i);
      acc += LOG ? g : g * mt_load(y, base + i);
    }
    acc = mt_team_reduce(t, acc, MtSum(), scratch);
    for (int64_t i = t.tid; i < n; i += t.size) {
      const C g = mt_load(dy, base + i), yv = mt_load(y, base + i);
      mt_store(dx, base + i, LOG ? g - sm_exp(yv) * acc : yv * (g - acc));
    }
  }
}

}  // namespace

#define MT_SOFTMAX_KERNELS(sfx, T)                                                                             \
  extern "C" __global__ void softmax_fwd_##sfx(const T* x, StridedArg xl, T* y, int64_t rows, int64_t n) {     \
    softmax_fwd<T, false>(x, xl, y, rows, n);                                                                \
  }                                                                                                            \
  extern "C" __global__ void log_softmax_fwd_##sfx(const T* x, StridedArg xl, T* y, int64_t rows, int64_t n) { \
    softmax_fwd<T, true>(x, xl, y, rows, n);                                                                 \
  }                                                                                                            \
  extern "C" __global__ void softmax_bwd_##sfx(const T* y, const T* dy, T* dx, int64_t rows, int64_t n) {      \
    softmax_bwd<T, false>(y, dy, dx, rows, n);                                                               \
  }                                                                                                            \
  extern "C" __global__ void log_softmax_bwd_##sfx(const T* y, const T* dy, T* dx, int64_t rows, int64_t n) {  \
    softmax_bwd<T, true>(y, dy, dx, rows, n);                                                                \
  }

MT_FOR_FLOATS(MT_SOFTMAX_KERNELS)
