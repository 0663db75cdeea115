// common.cuh: the one header every kernel includes. It is compiled two ways:
//  * by nvcc to PTX (the GPU path, `cuda` feature), where __CUDACC__ is defined;
//  * by the host C++ compiler against emu/emu.h (the `emu` feature), which runs every CUDA thread of
//    a block as an OS thread so that kernel logic is tested on machines without a GPU.
// Kernels use only what is declared here (plus plain C++), so both compilations see the same code.
#pragma once

#ifdef __CUDACC__
#include <stdint.h>
#define MT_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) unsigned char mt_dyn_smem_[]; \
  type* name = reinterpret_cast<type*>(mt_dyn_smem_)
#else
#include "emu/emu.h"
#define MT_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(emu::dynamic_shared())
#endif

#define MT_MAX_DIMS 8

// A strided view passed by value: element (i0, …, i{n-1}) lives at offset + Σ ik·strides[k].
// `contiguous` != 0 promises strides are row-major over `shape`, so linear index == offset + i.
// Mirrors `kernels::cuda_abi::StridedArg` (repr(C)); keep the two in sync.
struct StridedArg {
  int32_t ndim;
  int32_t contiguous;
  int64_t offset;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS];
};

// Storage offset of the `linear`-th element in row-major order of `a.shape`.
__device__ __forceinline__ int64_t mt_strided_offset(const StridedArg& a, int64_t linear) {
  if (a.contiguous) return a.offset + linear;
  int64_t off = a.offset;
  for (int d = a.ndim - 1; d >= 0; --d) {
    const int64_t s = a.shape[d];
    off += (linear % s) * a.strides[d];
    linear /= s;
  }
  return off;
}

// ---- bit casts ----
__device__ __forceinline__ uint32_t mt_f32_bits(float f) {
#ifdef __CUDACC__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}
__device__ __forceinline__ float mt_bits_f32(uint32_t u) {
#ifdef __CUDACC__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

// ---- 16-bit float storage: kept as raw bits (uint16_t), computed in f32 ----
__device__ __forceinline__ float mt_bf16_to_f32(uint16_t b) { return mt_bits_f32(static_cast<uint32_t>(b) << 16); }
// Round to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ uint16_t mt_f32_to_bf16(float f) {
  uint32_t u = mt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
__device__ __forceinline__ float mt_f16_to_f32(uint16_t h) {
#ifdef __CUDACC__
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#else
  return emu::f16_to_f32(h);
#endif
}
__device__ __forceinline__ uint16_t mt_f32_to_f16(float f) {
#ifdef __CUDACC__
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else
  return emu::f32_to_f16(f);
#endif
}

// Load/store any storage type as its compute type (f32 for the 16-bit types).
struct mt_bf16 { uint16_t bits; };
struct mt_f16 { uint16_t bits; };
template <class T> struct MtCompute { typedef T type; };
template <> struct MtCompute<mt_bf16> { typedef float type; };
template <> struct MtCompute<mt_f16> { typedef float type; };

__device__ __forceinline__ float mt_load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ double mt_load(const double* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float mt_load(const mt_bf16* p, int64_t i) { return mt_bf16_to_f32(p[i].bits); }
__device__ __forceinline__ float mt_load(const mt_f16* p, int64_t i) { return mt_f16_to_f32(p[i].bits); }
__device__ __forceinline__ void mt_store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void mt_store(double* p, int64_t i, double v) { p[i] = v; }
__device__ __forceinline__ void mt_store(mt_bf16* p, int64_t i, float v) { p[i].bits = mt_f32_to_bf16(v); }
__device__ __forceinline__ void mt_store(mt_f16* p, int64_t i, float v) { p[i].bits = mt_f32_to_f16(v); }

// Grid-stride loop over [0, n).
#define MT_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// Instantiates `MACRO(suffix, storage type)` for the four float dtypes; kernel names are
// `<op>_<dtype>` with dtype f32, f64, f16, bf16 (the runtime loads them by that name).
#define MT_FOR_FLOATS(MACRO) MACRO(f32, float) MACRO(f64, double) MACRO(f16, mt_f16) MACRO(bf16, mt_bf16)

// Warp reductions (full warp, converged code only).
template <class T> __device__ __forceinline__ T mt_warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// max that propagates NaN (like torch.max)
template <class T> __device__ __forceinline__ T mt_max_nan(T a, T b) { return (a != a || a > b) ? a : b; }
template <class T> __device__ __forceinline__ T mt_min_nan(T a, T b) { return (a != a || a < b) ? a : b; }
template <class T> __device__ __forceinline__ T mt_warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = mt_max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
