// Layout kernels: strided copy (also concat), dtype casts, fill, nearest upsample and average pool
// (forward/backward), index-select (forward/backward) and where. Argument lists, launch shapes and
// the host-side contracts are documented in layout/cuda.rs; semantics match layout/*.rs and the
// tensor crate's `to_dtype`.
#include "common.cuh"

// Data-movement kernels take raw storage: 16-bit floats as uint16_t bits.
#define LAY_FOR_ALL(MACRO) \
  MACRO(f32, float) MACRO(f64, double) MACRO(f16, uint16_t) MACRO(bf16, uint16_t) MACRO(i64, int64_t) MACRO(u8, uint8_t)

// ---------------------------------------------------------------------------------------------
// Strided copy: dst (through dl) <- src (through sl), element i of both in row-major order of the
// common logical shape. Copies are dtype-agnostic, so one kernel per element size.
#define LAY_COPY(BYTES, T)                                                                          \
  extern "C" __global__ void layout_copy_b##BYTES(const T* __restrict__ src, StridedArg sl,         \
                                                  T* __restrict__ dst, StridedArg dl, int64_t n) {  \
    MT_GRID_STRIDE(i, n) { dst[mt_strided_offset(dl, i)] = src[mt_strided_offset(sl, i)]; }        \
  }
LAY_COPY(1, uint8_t)
LAY_COPY(2, uint16_t)
LAY_COPY(4, uint32_t)
LAY_COPY(8, uint64_t)

// ---------------------------------------------------------------------------------------------
// Fill a contiguous buffer with one value (16-bit floats: the value's bits).
#define LAY_FILL(SUF, T)                                                                     \
  extern "C" __global__ void fill_##SUF(T* __restrict__ dst, int64_t n, T value) {          \
    MT_GRID_STRIDE(i, n) { dst[i] = value; }                                                \
  }
LAY_FOR_ALL(LAY_FILL)

// ---------------------------------------------------------------------------------------------
// Casts, bit-for-bit as the CPU (`Tensor::to_dtype` with the `half` crate on x86-64 with F16C):
//  * f32 -> f64/f16/bf16 and f16/bf16 -> f32 convert directly (f32 -> bf16: round to nearest even
//    over all 23 mantissa bits; f32 -> f16: RNE);
//  * every other pair goes through the source value as f64 (exact for every source except i64,
//    which rounds to nearest) and then: f32 = RNE from f64; f16 = RNE(f64 -> f32) then RNE to f16
//    (half's `f16::from_f64` with F16C, two roundings); bf16 = half's `f64_to_bf16`, which rounds
//    to nearest even looking only at the upper 32 bits of the f64 (the lower 32 mantissa bits are
//    truncated first); i64/u8 = truncate toward zero, saturate, NaN -> 0 (Rust `as`).
//  * NaN payloads follow x86: widening keeps the payload and sets the quiet bit, narrowing
//    truncates the payload and sets the quiet bit.
struct LayF16 { uint16_t b; };
struct LayBF16 { uint16_t b; };

__device__ __forceinline__ float lay_f16_to_f32(uint16_t h) {
  if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0)
    return mt_bits_f32((static_cast<uint32_t>(h & 0x8000u) << 16) | 0x7fc00000u | (static_cast<uint32_t>(h & 0x3ffu) << 13));
  return mt_f16_to_f32(h);
}
__device__ __forceinline__ float lay_bf16_to_f32(uint16_t b) {
  if ((b & 0x7fffu) > 0x7f80u) return mt_bits_f32(static_cast<uint32_t>(b | 0x40u) << 16);
  return mt_bits_f32(static_cast<uint32_t>(b) << 16);
}
__device__ __forceinline__ uint64_t lay_f64_bits(double d) {
  uint64_t u;
#ifdef __CUDACC__
  u = static_cast<uint64_t>(__double_as_longlong(d));
#else
  memcpy(&u, &d, 8);
#endif
  return u;
}
__device__ __forceinline__ double lay_bits_f64(uint64_t u) {
#ifdef __CUDACC__
  return __longlong_as_double(static_cast<long long>(u));
#else
  double d;
  memcpy(&d, &u, 8);
  return d;
#endif
}
__device__ __forceinline__ double lay_f32_to_f64(float f) {
  const uint32_t u = mt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return lay_bits_f64((static_cast<uint64_t>(u & 0x80000000u) << 32) | 0x7ff8000000000000ull |
                        (static_cast<uint64_t>(u & 0x7fffffu) << 29));
  return static_cast<double>(f);
}
__device__ __forceinline__ float lay_f64_to_f32(double d) {
  const uint64_t u = lay_f64_bits(d);
  if ((u & 0x7fffffffffffffffull) > 0x7ff0000000000000ull)
    return mt_bits_f32(static_cast<uint32_t>((u >> 32) & 0x80000000u) | 0x7fc00000u |
                       static_cast<uint32_t>((u >> 29) & 0x7fffffu));
  return static_cast<float>(d);
}
__device__ __forceinline__ uint16_t lay_f32_to_f16(float f) {
  const uint32_t u = mt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u | ((u >> 13) & 0x3ffu));
  return mt_f32_to_f16(f);
}
// half 2.7 `f64_to_bf16`, transcribed.
__device__ __forceinline__ uint16_t lay_f64_to_bf16(double d) {
  const uint64_t val = lay_f64_bits(d);
  const uint32_t x = static_cast<uint32_t>(val >> 32);
  const uint32_t sign = x & 0x80000000u, exp = x & 0x7ff00000u, man = x & 0x000fffffu;
  if (exp == 0x7ff00000u) {
    const uint32_t nan_bit = (man == 0 && static_cast<uint32_t>(val) == 0) ? 0u : 0x40u;
    return static_cast<uint16_t>((sign >> 16) | 0x7f80u | nan_bit | (man >> 13));
  }
  const uint32_t half_sign = sign >> 16;
  const int64_t half_exp = static_cast<int64_t>(exp >> 20) - 1023 + 127;
  if (half_exp >= 0xff) return static_cast<uint16_t>(half_sign | 0x7f80u);
  if (half_exp <= 0) {
    if (7 - half_exp > 21) return static_cast<uint16_t>(half_sign);
    const uint32_t m = man | 0x00100000u;
    uint32_t half_man = m >> (14 - half_exp);
    const uint32_t round_bit = 1u << (13 - half_exp);
    if ((m & round_bit) != 0 && (m & (3u * round_bit - 1u)) != 0) half_man += 1;
    return static_cast<uint16_t>(half_sign | half_man);
  }
  const uint32_t he = static_cast<uint32_t>(half_exp) << 7;
  const uint32_t half_man = man >> 13;
  const uint32_t round_bit = 0x00001000u;
  if ((man & round_bit) != 0 && (man & (3u * round_bit - 1u)) != 0)
    return static_cast<uint16_t>((half_sign | he | half_man) + 1u);
  return static_cast<uint16_t>(half_sign | he | half_man);
}
__device__ __forceinline__ int64_t lay_sat_i64(double d) {
  if (d != d) return 0;
  if (d >= 9223372036854775808.0) return INT64_MAX;
  if (d <= -9223372036854775808.0) return INT64_MIN;
  return static_cast<int64_t>(d);
}
__device__ __forceinline__ uint8_t lay_sat_u8(double d) {
  if (d != d || d <= 0.0) return 0;
  if (d >= 255.0) return 255;
  return static_cast<uint8_t>(static_cast<int32_t>(d));
}

__device__ __forceinline__ double lay_to_f64(float x) { return lay_f32_to_f64(x); }
__device__ __forceinline__ double lay_to_f64(double x) { return x; }
__device__ __forceinline__ double lay_to_f64(LayF16 x) { return lay_f32_to_f64(lay_f16_to_f32(x.b)); }
__device__ __forceinline__ double lay_to_f64(LayBF16 x) { return lay_f32_to_f64(lay_bf16_to_f32(x.b)); }
__device__ __forceinline__ double lay_to_f64(int64_t x) { return static_cast<double>(x); }
__device__ __forceinline__ double lay_to_f64(uint8_t x) { return static_cast<double>(x); }

template <class D> struct LayFromF64;
template <> struct LayFromF64<float> { __device__ static float f(double d) { return lay_f64_to_f32(d); } };
template <> struct LayFromF64<double> { __device__ static double f(double d) { return d; } };
template <> struct LayFromF64<LayF16> {
  __device__ static LayF16 f(double d) { return LayF16{lay_f32_to_f16(lay_f64_to_f32(d))}; }
};
template <> struct LayFromF64<LayBF16> { __device__ static LayBF16 f(double d) { return LayBF16{lay_f64_to_bf16(d)}; } };
template <> struct LayFromF64<int64_t> { __device__ static int64_t f(double d) { return lay_sat_i64(d); } };
template <> struct LayFromF64<uint8_t> { __device__ static uint8_t f(double d) { return lay_sat_u8(d); } };

template <class S, class D> struct LayCast {
  __device__ static D f(S x) { return LayFromF64<D>::f(lay_to_f64(x)); }
};
// The direct pairs of `to_dtype` (f32 <-> f16/bf16): only f32 -> bf16 differs from the f64 route
// (the f64 route drops the f32's 3 lowest mantissa bits from the sticky bit).
template <> struct LayCast<float, LayBF16> {
  __device__ static LayBF16 f(float x) { return LayBF16{mt_f32_to_bf16(x)}; }
};
template <> struct LayCast<float, LayF16> {
  __device__ static LayF16 f(float x) { return LayF16{lay_f32_to_f16(x)}; }
};
template <> struct LayCast<LayF16, float> {
  __device__ static float f(LayF16 x) { return lay_f16_to_f32(x.b); }
};
template <> struct LayCast<LayBF16, float> {
  __device__ static float f(LayBF16 x) { return lay_bf16_to_f32(x.b); }
};

template <class T> struct LayStore { typedef T type; };
template <> struct LayStore<LayF16> { typedef uint16_t type; };
template <> struct LayStore<LayBF16> { typedef uint16_t type; };
template <class T> __device__ __forceinline__ T lay_wrap(typename LayStore<T>::type v) { return v; }
template <> __device__ __forceinline__ LayF16 lay_wrap<LayF16>(uint16_t v) { return LayF16{v}; }
template <> __device__ __forceinline__ LayBF16 lay_wrap<LayBF16>(uint16_t v) { return LayBF16{v}; }
__device__ __forceinline__ float lay_unwrap(float v) { return v; }
__device__ __forceinline__ double lay_unwrap(double v) { return v; }
__device__ __forceinline__ int64_t lay_unwrap(int64_t v) { return v; }
__device__ __forceinline__ uint8_t lay_unwrap(uint8_t v) { return v; }
__device__ __forceinline__ uint16_t lay_unwrap(LayF16 v) { return v.b; }
__device__ __forceinline__ uint16_t lay_unwrap(LayBF16 v) { return v.b; }

#define LAY_CAST(SN, ST, DN, DT)                                                                       \
  extern "C" __global__ void cast_##SN##_##DN(const LayStore<ST>::type* __restrict__ src, StridedArg sl, \
                                              LayStore<DT>::type* __restrict__ dst, int64_t n) {      \
    MT_GRID_STRIDE(i, n) {                                                                             \
      dst[i] = lay_unwrap(LayCast<ST, DT>::f(lay_wrap<ST>(src[mt_strided_offset(sl, i)])));           \
    }                                                                                                  \
  }
// Every ordered pair of distinct dtypes (30 kernels).
LAY_CAST(f32, float, f64, double) LAY_CAST(f32, float, f16, LayF16) LAY_CAST(f32, float, bf16, LayBF16)
LAY_CAST(f32, float, i64, int64_t) LAY_CAST(f32, float, u8, uint8_t)
LAY_CAST(f64, double, f32, float) LAY_CAST(f64, double, f16, LayF16) LAY_CAST(f64, double, bf16, LayBF16)
LAY_CAST(f64, double, i64, int64_t) LAY_CAST(f64, double, u8, uint8_t)
LAY_CAST(f16, LayF16, f32, float) LAY_CAST(f16, LayF16, f64, double) LAY_CAST(f16, LayF16, bf16, LayBF16)
LAY_CAST(f16, LayF16, i64, int64_t) LAY_CAST(f16, LayF16, u8, uint8_t)
LAY_CAST(bf16, LayBF16, f32, float) LAY_CAST(bf16, LayBF16, f64, double) LAY_CAST(bf16, LayBF16, f16, LayF16)
LAY_CAST(bf16, LayBF16, i64, int64_t) LAY_CAST(bf16, LayBF16, u8, uint8_t)
LAY_CAST(i64, int64_t, f32, float) LAY_CAST(i64, int64_t, f64, double) LAY_CAST(i64, int64_t, f16, LayF16)
LAY_CAST(i64, int64_t, bf16, LayBF16) LAY_CAST(i64, int64_t, u8, uint8_t)
LAY_CAST(u8, uint8_t, f32, float) LAY_CAST(u8, uint8_t, f64, double) LAY_CAST(u8, uint8_t, f16, LayF16)
LAY_CAST(u8, uint8_t, bf16, LayBF16) LAY_CAST(u8, uint8_t, i64, int64_t)

// ---------------------------------------------------------------------------------------------
// Nearest upsample over contiguous planes: y[c, oy, ox] = x[c, oy*h/oh, ox*w/ow] (exact integers).
#define LAY_UPSAMPLE_FWD(SUF, T)                                                                      \
  extern "C" __global__ void upsample_nearest_fwd_##SUF(const T* __restrict__ x, T* __restrict__ y,   \
                                                        int64_t nc, int64_t h, int64_t w, int64_t oh, \
                                                        int64_t ow) {                                 \
    MT_GRID_STRIDE(i, nc * oh * ow) {                                                                 \
      const int64_t ox = i % ow, r = i / ow, oy = r % oh, c = r / oh;                                 \
      y[i] = x[(c * h + oy * h / oh) * w + ox * w / ow];                                              \
    }                                                                                                 \
  }
LAY_FOR_ALL(LAY_UPSAMPLE_FWD)

// Backward as a gather (no atomics, deterministic): input pixel (iy, ix) is read by the output rows
// [ceil(iy*oh/h), ceil((iy+1)*oh/h)) and columns likewise; summed in (oy, ox) order like the CPU,
// in the compute type (f32 for 16-bit storage), rounded once.
#define LAY_UPSAMPLE_BWD(SUF, T)                                                                       \
  extern "C" __global__ void upsample_nearest_bwd_##SUF(const T* __restrict__ dy, T* __restrict__ dx,  \
                                                        int64_t nc, int64_t h, int64_t w, int64_t oh,  \
                                                        int64_t ow) {                                  \
    typedef MtCompute<T>::type C;                                                                      \
    MT_GRID_STRIDE(i, nc * h * w) {                                                                    \
      const int64_t ix = i % w, r = i / w, iy = r % h, c = r / h;                                      \
      const int64_t y0 = (iy * oh + h - 1) / h, y1 = ((iy + 1) * oh + h - 1) / h;                      \
      const int64_t x0 = (ix * ow + w - 1) / w, x1 = ((ix + 1) * ow + w - 1) / w;                      \
      C s = C(0);                                                                                      \
      for (int64_t oy = y0; oy < y1; ++oy)                                                             \
        for (int64_t ox = x0; ox < x1; ++ox) s += mt_load(dy, (c * oh + oy) * ow + ox);                \
      mt_store(dx, i, s);                                                                              \
    }                                                                                                  \
  }
MT_FOR_FLOATS(LAY_UPSAMPLE_BWD)

// ---------------------------------------------------------------------------------------------
// Average pool 2d (PyTorch floor mode), `Pool2dParams` semantics. Window of output o along an axis
// of length len: start = o*s - p, end = min(start + k, len + p); the padded size is end - start;
// the clipped window is [max(start, 0), min(end, len)).
__device__ __forceinline__ void lay_window(int64_t o, int64_t s, int64_t p, int64_t k, int64_t len, int64_t& lo,
                                           int64_t& hi, int64_t& padded) {
  const int64_t start = o * s - p;
  const int64_t end = min(start + k, len + p);
  padded = end - start;
  lo = max(start, static_cast<int64_t>(0));
  hi = min(end, len);
}

#define LAY_POOL_FWD(SUF, T)                                                                              \
  extern "C" __global__ void avg_pool2d_fwd_##SUF(const T* __restrict__ x, T* __restrict__ y, int64_t nc,  \
                                                  int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh, \
                                                  int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, \
                                                  int32_t count_include_pad) {                             \
    typedef MtCompute<T>::type C;                                                                          \
    MT_GRID_STRIDE(i, nc * oh * ow) {                                                                      \
      const int64_t ox = i % ow, r = i / ow, oy = r % oh, c = r / oh;                                      \
      int64_t y0, y1, py, x0, x1, px;                                                                      \
      lay_window(oy, sh, ph, kh, h, y0, y1, py);                                                           \
      lay_window(ox, sw, pw, kw, w, x0, x1, px);                                                           \
      C s = C(0);                                                                                          \
      for (int64_t iy = y0; iy < y1; ++iy)                                                                 \
        for (int64_t ix = x0; ix < x1; ++ix) s += mt_load(x, (c * h + iy) * w + ix);                      \
      const int64_t div = count_include_pad ? py * px : (y1 - y0) * (x1 - x0);                             \
      mt_store(y, i, s / C(div));                                                                          \
    }                                                                                                      \
  }
MT_FOR_FLOATS(LAY_POOL_FWD)

// Backward as a gather: dx[c, iy, ix] = sum over the windows (oy, ox) containing (iy, ix), in (oy, ox)
// order like the CPU, of dy[c, oy, ox] / divisor(oy, ox). Window oy contains iy iff
// oy*sh - ph <= iy < oy*sh - ph + kh (the clipping never removes a real pixel).
#define LAY_POOL_BWD(SUF, T)                                                                               \
  extern "C" __global__ void avg_pool2d_bwd_##SUF(const T* __restrict__ dy, T* __restrict__ dx, int64_t nc, \
                                                  int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh,  \
                                                  int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,  \
                                                  int32_t count_include_pad) {                              \
    typedef MtCompute<T>::type C;                                                                           \
    MT_GRID_STRIDE(i, nc * h * w) {                                                                         \
      const int64_t ix = i % w, r = i / w, iy = r % h, c = r / h;                                           \
      const int64_t ay = iy + ph - kh + 1, ax = ix + pw - kw + 1;                                           \
      const int64_t oy0 = ay <= 0 ? 0 : (ay + sh - 1) / sh, oy1 = min(oh - 1, (iy + ph) / sh);              \
      const int64_t ox0 = ax <= 0 ? 0 : (ax + sw - 1) / sw, ox1 = min(ow - 1, (ix + pw) / sw);              \
      C s = C(0);                                                                                           \
      for (int64_t oy = oy0; oy <= oy1; ++oy) {                                                             \
        int64_t y0, y1, py;                                                                                 \
        lay_window(oy, sh, ph, kh, h, y0, y1, py);                                                          \
        for (int64_t ox = ox0; ox <= ox1; ++ox) {                                                           \
          int64_t x0, x1, px;                                                                               \
          lay_window(ox, sw, pw, kw, w, x0, x1, px);                                                        \
          const int64_t div = count_include_pad ? py * px : (y1 - y0) * (x1 - x0);                          \
          s += mt_load(dy, (c * oh + oy) * ow + ox) / C(div);                                               \
        }                                                                                                   \
      }                                                                                                     \
      mt_store(dx, i, s);                                                                                   \
    }                                                                                                       \
  }
MT_FOR_FLOATS(LAY_POOL_BWD)

// ---------------------------------------------------------------------------------------------
// index_select along the middle axis of contiguous [outer, n, inner]. Indices are i64 in -n..n
// (negative = from the end). A bad index is reported through `err` (one u64, set to u64::MAX by
// the host before the launch): the kernel lowers it to the smallest bad position in idx
// (atomicMin), the CPU's `Err(position)`. Rows with a bad index are not read or written.
__device__ __forceinline__ void lay_atomic_min_u64(unsigned long long* p, unsigned long long v) {
#ifdef __CUDACC__
  atomicMin(p, v);
#else
  std::atomic_ref<unsigned long long> a(*p);
  unsigned long long old = a.load();
  while (old > v && !a.compare_exchange_weak(old, v)) {
  }
#endif
}
// The row index of idx[j] in 0..n, or -1 when out of range.
__device__ __forceinline__ int64_t lay_resolve(int64_t i, int64_t n) {
  const int64_t r = i < 0 ? i + n : i;
  return (r >= 0 && r < n) ? r : -1;
}

#define LAY_INDEX_FWD(SUF, T)                                                                              \
  extern "C" __global__ void index_select_fwd_##SUF(const T* __restrict__ src, const int64_t* __restrict__ idx, \
                                                    T* __restrict__ dst, int64_t outer, int64_t n,           \
                                                    int64_t inner, int64_t m, unsigned long long* err) {     \
    MT_GRID_STRIDE(j, m) {                                                                                   \
      if (lay_resolve(idx[j], n) < 0) lay_atomic_min_u64(err, static_cast<unsigned long long>(j));          \
    }                                                                                                        \
    MT_GRID_STRIDE(i, outer * m * inner) {                                                                   \
      const int64_t k = i % inner, r = i / inner, j = r % m, o = r / m;                                      \
      const int64_t row = lay_resolve(idx[j], n);                                                            \
      if (row >= 0) dst[i] = src[(o * n + row) * inner + k];                                                 \
    }                                                                                                        \
  }
LAY_FOR_ALL(LAY_INDEX_FWD)

// Backward: scatter-add with atomics into dsrc, which the host zeroes first. f32/f64 only (16-bit
// types are computed in f32 by the tensor layer, as on the CPU). Duplicated indices add up in an
// unspecified order (the CPU adds in increasing j), so sums of duplicates may differ in the last bits.
#define LAY_INDEX_BWD(SUF, T)                                                                              \
  extern "C" __global__ void index_select_bwd_##SUF(const T* __restrict__ dy, const int64_t* __restrict__ idx, \
                                                    T* __restrict__ dsrc, int64_t outer, int64_t n,          \
                                                    int64_t inner, int64_t m, unsigned long long* err) {     \
    MT_GRID_STRIDE(j, m) {                                                                                   \
      if (lay_resolve(idx[j], n) < 0) lay_atomic_min_u64(err, static_cast<unsigned long long>(j));          \
    }                                                                                                        \
    MT_GRID_STRIDE(i, outer * m * inner) {                                                                   \
      const int64_t k = i % inner, r = i / inner, j = r % m, o = r / m;                                      \
      const int64_t row = lay_resolve(idx[j], n);                                                            \
      if (row >= 0) atomicAdd(&dsrc[(o * n + row) * inner + k], dy[i]);                                      \
    }                                                                                                        \
  }
LAY_INDEX_BWD(f32, float)
LAY_INDEX_BWD(f64, double)

// Deterministic backward, bit-identical to the CPU (no atomics on values, any float dtype), in four
// launches over an int32 scratch `starts` (n + 1) and `rows` (m):
//  1. index_select_bwd_count: starts[i] = #{j : idx[j] resolves to row i} for i < n (thread per
//     row, scanning idx in order: O(n·m) compares), and the error word as in the forward;
//  2. index_select_bwd_scan: in place exclusive prefix sum of starts[0..n], starts[n] = total
//     (one block: launch exactly 1 block of LAYOUT_SCAN_THREADS threads);
//  3. index_select_bwd_fill: rows[starts[i] ..] = the j with row i, in increasing j (thread per row);
//  4. index_select_bwd_gather_<fdt>: dsrc[o, i, k] = Σ_{p in starts[i]..starts[i+1]} dy[o, rows[p], k],
//     summed from 0 in increasing j like the CPU, in the compute type, rounded once (thread per
//     dsrc element; dsrc is overwritten, no zeroing).
// Steps 2-4 assume step 1 reported no error (the host checks `err` first or drops the result).
extern "C" __global__ void index_select_bwd_count(const int64_t* __restrict__ idx, int64_t n, int64_t m,
                                                  int32_t* __restrict__ starts, unsigned long long* err) {
  MT_GRID_STRIDE(j, m) {
    if (lay_resolve(idx[j], n) < 0) lay_atomic_min_u64(err, static_cast<unsigned long long>(j));
  }
  MT_GRID_STRIDE(i, n) {
    int32_t c = 0;
    for (int64_t j = 0; j < m; ++j) c += lay_resolve(idx[j], n) == i;
    starts[i] = c;
  }
}

#define LAYOUT_SCAN_THREADS 256
extern "C" __global__ void index_select_bwd_scan(int32_t* __restrict__ starts, int64_t n) {
  __shared__ int32_t part[LAYOUT_SCAN_THREADS];
  const int64_t t = threadIdx.x, chunk = (n + LAYOUT_SCAN_THREADS - 1) / LAYOUT_SCAN_THREADS;
  const int64_t lo = min(n, t * chunk), hi = min(n, lo + chunk);
  int32_t s = 0;
  for (int64_t i = lo; i < hi; ++i) s += starts[i];
  part[t] = s;
  __syncthreads();
  if (t == 0) {
    int32_t acc = 0;
    for (int k = 0; k < LAYOUT_SCAN_THREADS; ++k) {
      const int32_t v = part[k];
      part[k] = acc;
      acc += v;
    }
    starts[n] = acc;
  }
  __syncthreads();
  int32_t acc = part[t];
  for (int64_t i = lo; i < hi; ++i) {
    const int32_t v = starts[i];
    starts[i] = acc;
    acc += v;
  }
}

extern "C" __global__ void index_select_bwd_fill(const int64_t* __restrict__ idx, int64_t n, int64_t m,
                                                 const int32_t* __restrict__ starts, int32_t* __restrict__ rows) {
  MT_GRID_STRIDE(i, n) {
    int32_t p = starts[i];
    for (int64_t j = 0; j < m; ++j)
      if (lay_resolve(idx[j], n) == i) rows[p++] = static_cast<int32_t>(j);
  }
}

#define LAY_INDEX_GATHER(SUF, T)                                                                           \
  extern "C" __global__ void index_select_bwd_gather_##SUF(const T* __restrict__ dy,                        \
                                                           const int32_t* __restrict__ starts,              \
                                                           const int32_t* __restrict__ rows, T* __restrict__ dsrc, \
                                                           int64_t outer, int64_t n, int64_t inner, int64_t m) { \
    typedef MtCompute<T>::type C;                                                                            \
    MT_GRID_STRIDE(x, outer * n * inner) {                                                                   \
      const int64_t k = x % inner, r = x / inner, i = r % n, o = r / n;                                      \
      C s = C(0);                                                                                            \
      for (int32_t p = starts[i]; p < starts[i + 1]; ++p) s += mt_load(dy, (o * m + rows[p]) * inner + k);   \
      mt_store(dsrc, x, s);                                                                                  \
    }                                                                                                        \
  }
MT_FOR_FLOATS(LAY_INDEX_GATHER)

// ---------------------------------------------------------------------------------------------
// where: dst[i] = cond[i] != 0 ? a[i] : b[i], all three read through broadcast strided views.
#define LAY_WHERE(SUF, T)                                                                                  \
  extern "C" __global__ void where_##SUF(const uint8_t* __restrict__ cond, StridedArg cl,                    \
                                         const T* __restrict__ a, StridedArg al, const T* __restrict__ b,    \
                                         StridedArg bl, T* __restrict__ dst, int64_t n) {                    \
    MT_GRID_STRIDE(i, n) {                                                                                   \
      dst[i] = cond[mt_strided_offset(cl, i)] ? a[mt_strided_offset(al, i)] : b[mt_strided_offset(bl, i)];  \
    }                                                                                                        \
  }
LAY_FOR_ALL(LAY_WHERE)
