// Reductions of a strided input along its trailing logical elements: sum, mean, max, min, var,
// argmax, argmin. Argument lists and launch shapes: reduce/cuda.rs. Semantics match reduce/mod.rs:
// empty rows give sum 0, mean/max/min NaN, var NaN when count <= correction, arg -1; max/min and
// arg propagate NaN (the first NaN wins).
//
// `xl` describes the input as logical shape [outer..., inner...] (the caller permuted the reduced
// axes last); output row o reduces logical elements [o*n_red, (o+1)*n_red). One team per row
// (row_reduce.cuh: a warp for n_red <= 1024, else the block). Sums accumulate in f64 for every
// dtype (the loads, not the f64 adds, bound the speed on every current card) and are rounded once.
#include "row_reduce.cuh"

namespace {

enum { R_SUM = 0, R_MEAN = 1, R_MAX = 2, R_MIN = 3 };

template <class T, int OP>
__device__ __forceinline__ void reduce_rows(const T* __restrict__ x, StridedArg xl, T* __restrict__ y, int64_t n_out,
                                            int64_t n_red) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(n_red);
  for (int64_t row = t.first_row; row < n_out; row += t.row_step) {
    const int64_t base = row * n_red;
    if (OP == R_SUM || OP == R_MEAN) {
      double acc = 0.0;
      for (int64_t i = t.tid; i < n_red; i += t.size) acc += static_cast<double>(mt_load(x, mt_strided_offset(xl, base + i)));
      acc = mt_team_reduce(t, acc, MtSum(), scratch);
      if (t.tid == 0) {
        if (OP == R_MEAN) acc = n_red == 0 ? NAN : acc / static_cast<double>(n_red);
        mt_store(y, row, static_cast<C>(acc));
      }
    } else {
      C acc = n_red == 0 ? C(NAN) : mt_load(x, mt_strided_offset(xl, base));
      for (int64_t i = t.tid; i < n_red; i += t.size) {
        const C v = mt_load(x, mt_strided_offset(xl, base + i));
        acc = OP == R_MAX ? mt_max_nan(acc, v) : mt_min_nan(acc, v);
      }
      acc = OP == R_MAX ? mt_team_reduce(t, acc, MtMaxNan(), scratch) : mt_team_reduce(t, acc, MtMinNan(), scratch);
      if (t.tid == 0) mt_store(y, row, acc);
    }
  }
}

// Corrected two-pass variance: mean first, then Σ(x − mean)² − (Σ(x − mean))²/n (f64), divided by
// count − correction.
template <class T>
__device__ __forceinline__ void var_rows(const T* __restrict__ x, StridedArg xl, T* __restrict__ y, int64_t n_out,
                                         int64_t n_red, int64_t correction) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(n_red);
  for (int64_t row = t.first_row; row < n_out; row += t.row_step) {
    const int64_t base = row * n_red;
    double s = 0.0;
    for (int64_t i = t.tid; i < n_red; i += t.size) s += static_cast<double>(mt_load(x, mt_strided_offset(xl, base + i)));
    s = mt_team_reduce(t, s, MtSum(), scratch);
    const double mean = n_red == 0 ? 0.0 : s / static_cast<double>(n_red);
    double d1 = 0.0, m2 = 0.0;
    for (int64_t i = t.tid; i < n_red; i += t.size) {
      const double d = static_cast<double>(mt_load(x, mt_strided_offset(xl, base + i))) - mean;
      d1 += d;
      m2 += d * d;
    }
    mt_team_sum2(t, d1, m2, scratch);
    if (t.tid == 0) {
      // Corrected two-pass: subtracting (Σ(x − mean))²/n removes the error of the rounded mean.
      double ss = m2 - (n_red == 0 ? 0.0 : d1 * d1 / static_cast<double>(n_red));
      if (ss < 0.0) ss = 0.0;  // (keeps NaN)
      const double v = n_red <= correction ? NAN : ss / static_cast<double>(n_red - correction);
      mt_store(y, row, static_cast<C>(v));
    }
  }
}

// (value, index) candidate order for arg reductions: NaN beats everything, then larger (max) or
// smaller (min) values, then the smaller index. idx < 0 marks "no candidate".
template <class C, bool MAX> __device__ __forceinline__ bool arg_better(C v, long long iv, C b, long long ib) {
  if (iv < 0) return false;
  if (ib < 0) return true;
  const bool vn = v != v, bn = b != b;
  if (vn || bn) return vn && (!bn || iv < ib);
  if (v == b) return iv < ib;
  return MAX ? v > b : v < b;
}

// The team's best (value, index) candidate, in every thread.
template <class C, bool MAX>
__device__ __forceinline__ void arg_team_reduce(const MtRowTeam& t, C& best, long long& bi, MtTeamScratch& scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    const C v = __shfl_xor_sync(0xffffffffu, best, o);
    const long long iv = __shfl_xor_sync(0xffffffffu, bi, o);
    if (arg_better<C, MAX>(v, iv, best, bi)) {
      best = v;
      bi = iv;
    }
  }
  if (!t.block) return;
  C* sv = reinterpret_cast<C*>(scratch.v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    MT_SH_ST(sv[threadIdx.x / 32], best);
    MT_SH_ST(scratch.i[threadIdx.x / 32], bi);
  }
  __syncthreads();
  best = MT_SH_LD(sv[0]);
  bi = MT_SH_LD(scratch.i[0]);
  for (int w = 1; w < t.size / 32; ++w) {
    const C v = MT_SH_LD(sv[w]);
    const long long iv = MT_SH_LD(scratch.i[w]);
    if (arg_better<C, MAX>(v, iv, best, bi)) {
      best = v;
      bi = iv;
    }
  }
}

template <class T, bool MAX>
__device__ __forceinline__ void arg_rows(const T* __restrict__ x, StridedArg xl, int64_t* __restrict__ y, int64_t n_out,
                                         int64_t n_red) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  const MtRowTeam t = mt_row_team(n_red);
  for (int64_t row = t.first_row; row < n_out; row += t.row_step) {
    const int64_t base = row * n_red;
    C best = C(0);
    long long bi = -1;
    for (int64_t i = t.tid; i < n_red; i += t.size) {
      const C v = mt_load(x, mt_strided_offset(xl, base + i));
      if (arg_better<C, MAX>(v, i, best, bi)) {
        best = v;
        bi = i;
      }
    }
    arg_team_reduce<C, MAX>(t, best, bi, scratch);
    if (t.tid == 0) y[row] = bi;
  }
}

// ---- split rows: few long rows reduced by several blocks each (two stages) ----
// Stage 1: block (c, o) reduces elements [c·chunk, min(n_red, (c+1)·chunk)) of row o into the f64
// record partial[(o·chunks + c)·3 + {0, 1, 2}]:
//   sum/mean: (count, Σx, 0); max/min: (count, extreme, 0); var: (count, chunk mean, chunk M2);
//   argmax/argmin: (count, best value, its index in the row).
enum { S_SUM = 0, S_MEAN = 1, S_MAX = 2, S_MIN = 3, S_VAR = 4, S_ARGMAX = 5, S_ARGMIN = 6 };

template <class T>
__device__ __forceinline__ void split_partial(const T* __restrict__ x, StridedArg xl, int64_t n_out, int64_t n_red,
                                              int64_t chunk, int64_t chunks, int op, double* __restrict__ partial) {
  typedef typename MtCompute<T>::type C;
  __shared__ MtTeamScratch scratch;
  MtRowTeam t;
  t.tid = threadIdx.x;
  t.size = blockDim.x;
  t.block = true;
  const int64_t c = blockIdx.x;
  if (c >= chunks) return;  // uniform per block
  for (int64_t row = blockIdx.y; row < n_out; row += gridDim.y) {
    const int64_t lo = c * chunk, hi = lo + chunk < n_red ? lo + chunk : n_red;
    const int64_t base = row * n_red, cnt = hi > lo ? hi - lo : 0;
    double r1 = 0.0, r2 = 0.0;
    if (op == S_SUM || op == S_MEAN || op == S_VAR) {
      double s = 0.0;
      for (int64_t i = lo + t.tid; i < hi; i += t.size) s += static_cast<double>(mt_load(x, mt_strided_offset(xl, base + i)));
      s = mt_team_reduce(t, s, MtSum(), scratch);
      r1 = s;
      if (op == S_VAR) {
        const double m0 = cnt ? s / static_cast<double>(cnt) : 0.0;
        double d1 = 0.0, m2 = 0.0;
        for (int64_t i = lo + t.tid; i < hi; i += t.size) {
          const double d = static_cast<double>(mt_load(x, mt_strided_offset(xl, base + i))) - m0;
          d1 += d;
          m2 += d * d;
        }
        mt_team_sum2(t, d1, m2, scratch);
        r1 = cnt ? m0 + d1 / static_cast<double>(cnt) : 0.0;
        r2 = cnt ? m2 - d1 * d1 / static_cast<double>(cnt) : 0.0;
        if (r2 < 0.0) r2 = 0.0;
      }
    } else if (op == S_MAX || op == S_MIN) {
      C acc = cnt ? mt_load(x, mt_strided_offset(xl, base + lo)) : C(NAN);
      for (int64_t i = lo + t.tid; i < hi; i += t.size) {
        const C v = mt_load(x, mt_strided_offset(xl, base + i));
        acc = op == S_MAX ? mt_max_nan(acc, v) : mt_min_nan(acc, v);
      }
      acc = op == S_MAX ? mt_team_reduce(t, acc, MtMaxNan(), scratch) : mt_team_reduce(t, acc, MtMinNan(), scratch);
      r1 = static_cast<double>(acc);
    } else {
      C best = C(0);
      long long bi = -1;
      for (int64_t i = lo + t.tid; i < hi; i += t.size) {
        const C v = mt_load(x, mt_strided_offset(xl, base + i));
        const bool better = op == S_ARGMAX ? arg_better<C, true>(v, i, best, bi) : arg_better<C, false>(v, i, best, bi);
        if (better) {
          best = v;
          bi = i;
        }
      }
      if (op == S_ARGMAX)
        arg_team_reduce<C, true>(t, best, bi, scratch);
      else
        arg_team_reduce<C, false>(t, best, bi, scratch);
      r1 = static_cast<double>(best);
      r2 = static_cast<double>(bi);
    }
    if (t.tid == 0) {
      double* rec = partial + (row * chunks + c) * 3;
      rec[0] = static_cast<double>(cnt);
      rec[1] = r1;
      rec[2] = r2;
    }
  }
}

// Stage 2: one thread per row merges its `chunks` records in order (Chan's formula for var) and
// writes y[row] (value ops) or yi[row] (arg ops).
template <class T>
__device__ __forceinline__ void split_finish(const double* __restrict__ partial, int64_t n_out, int64_t chunks, int op,
                                             int64_t correction, T* __restrict__ y, int64_t* __restrict__ yi) {
  typedef typename MtCompute<T>::type C;
  MT_GRID_STRIDE(row, n_out) {
    const double* rec = partial + row * chunks * 3;
    double n = rec[0], a = rec[1], b = rec[2];
    for (int64_t c = 1; c < chunks; ++c) {
      const double* r = rec + c * 3;
      if (op == S_SUM || op == S_MEAN) {
        a += r[1];
      } else if (op == S_MAX) {
        a = mt_max_nan(a, r[1]);
      } else if (op == S_MIN) {
        a = mt_min_nan(a, r[1]);
      } else if (op == S_VAR) {
        const double nb = r[0], nn = n + nb;
        if (nb > 0.0) {
          const double delta = r[1] - a;
          a += delta * nb / nn;
          b += r[2] + delta * delta * n * nb / nn;
        }
      } else {
        const long long ib = static_cast<long long>(r[2]), ia = static_cast<long long>(b);
        const bool better = op == S_ARGMAX ? arg_better<double, true>(r[1], ib, a, ia)
                                           : arg_better<double, false>(r[1], ib, a, ia);
        if (better) {
          a = r[1];
          b = r[2];
        }
      }
      n += r[0];
    }
    if (op == S_ARGMAX || op == S_ARGMIN) {
      yi[row] = static_cast<int64_t>(b);
    } else {
      double v = a;
      if (op == S_MEAN) v = n > 0.0 ? a / n : NAN;
      if (op == S_VAR) v = n > static_cast<double>(correction) ? b / (n - static_cast<double>(correction)) : NAN;
      mt_store(y, row, static_cast<C>(v));
    }
  }
}

}  // namespace

#define MT_REDUCE_SPLIT_KERNELS(sfx, T)                                                                      \
  extern "C" __global__ void reduce_split_partial_##sfx(const T* x, StridedArg xl, int64_t n_out, int64_t n_red, \
                                                        int64_t chunk, int64_t chunks, int op, double* partial) { \
    split_partial<T>(x, xl, n_out, n_red, chunk, chunks, op, partial);                                        \
  }                                                                                                           \
  extern "C" __global__ void reduce_split_finish_##sfx(const double* partial, int64_t n_out, int64_t chunks,     \
                                                       int op, int64_t correction, T* y, int64_t* yi) {        \
    split_finish<T>(partial, n_out, chunks, op, correction, y, yi);                                           \
  }

MT_FOR_FLOATS(MT_REDUCE_SPLIT_KERNELS)

#define MT_REDUCE_KERNELS(sfx, T)                                                                               \
  extern "C" __global__ void reduce_sum_##sfx(const T* x, StridedArg xl, T* y, int64_t n_out, int64_t n_red) {   \
    reduce_rows<T, R_SUM>(x, xl, y, n_out, n_red);                                                            \
  }                                                                                                             \
  extern "C" __global__ void reduce_mean_##sfx(const T* x, StridedArg xl, T* y, int64_t n_out, int64_t n_red) {  \
    reduce_rows<T, R_MEAN>(x, xl, y, n_out, n_red);                                                           \
  }                                                                                                             \
  extern "C" __global__ void reduce_max_##sfx(const T* x, StridedArg xl, T* y, int64_t n_out, int64_t n_red) {   \
    reduce_rows<T, R_MAX>(x, xl, y, n_out, n_red);                                                            \
  }                                                                                                             \
  extern "C" __global__ void reduce_min_##sfx(const T* x, StridedArg xl, T* y, int64_t n_out, int64_t n_red) {   \
    reduce_rows<T, R_MIN>(x, xl, y, n_out, n_red);                                                            \
  }                                                                                                             \
  extern "C" __global__ void reduce_var_##sfx(const T* x, StridedArg xl, T* y, int64_t n_out, int64_t n_red,     \
                                              int64_t correction) {                                             \
    var_rows<T>(x, xl, y, n_out, n_red, correction);                                                          \
  }                                                                                                             \
  extern "C" __global__ void reduce_argmax_##sfx(const T* x, StridedArg xl, int64_t* y, int64_t n_out,           \
                                                 int64_t n_red) {                                               \
    arg_rows<T, true>(x, xl, y, n_out, n_red);                                                                \
  }                                                                                                             \
  extern "C" __global__ void reduce_argmin_##sfx(const T* x, StridedArg xl, int64_t* y, int64_t n_out,           \
                                                 int64_t n_red) {                                               \
    arg_rows<T, false>(x, xl, y, n_out, n_red);                                                               \
  }

MT_FOR_FLOATS(MT_REDUCE_KERNELS)
