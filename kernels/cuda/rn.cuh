// rn.cuh: IEEE round-to-nearest arithmetic that the compiler may not contract into FMAs.
//
// nvcc contracts `a * b + c` into one fma by default (--fmad=true), which rounds once instead of
// twice and so differs in the last bit from the CPU kernels, which never fuse. Kernels that must be
// bit-identical to a CPU formula (RNG fills, the AdamW step) spell every operation with these. On the
// host (emulator) they are plain operators: the emulator is built for baseline x86-64 / aarch64
// without -ffp-contract=fast on FMA targets, and its tests compare bits, so a contraction would show.
#pragma once
#include "common.cuh"

#ifdef __CUDACC__
__device__ __forceinline__ float mt_add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float mt_sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mt_mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float mt_div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float mt_sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double mt_add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double mt_sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double mt_mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double mt_div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double mt_sqrt_rn(double a) { return __dsqrt_rn(a); }
#else
template <class T> inline T mt_add_rn(T a, T b) { return a + b; }
template <class T> inline T mt_sub_rn(T a, T b) { return a - b; }
template <class T> inline T mt_mul_rn(T a, T b) { return a * b; }
template <class T> inline T mt_div_rn(T a, T b) { return a / b; }
inline float mt_sqrt_rn(float a) { return std::sqrt(a); }
inline double mt_sqrt_rn(double a) { return std::sqrt(a); }
#endif
