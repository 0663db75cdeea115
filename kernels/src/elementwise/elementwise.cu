// Elementwise kernels: unary forward/backward, broadcasting binary ops and comparisons over strided
// inputs, written to a contiguous output. Op codes: `UnaryOp::code` / `BinaryOp::code` /
// `CmpOp::code` in elementwise/cuda.rs. Semantics (NaN propagation, kink conventions) match math.rs.
#include "common.cuh"

__device__ __forceinline__ float mt_exp(float x) { return expf(x); }
__device__ __forceinline__ double mt_exp(double x) { return exp(x); }
__device__ __forceinline__ float mt_log(float x) { return logf(x); }
__device__ __forceinline__ double mt_log(double x) { return log(x); }
__device__ __forceinline__ float mt_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double mt_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float mt_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double mt_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float mt_erf(float x) { return erff(x); }
__device__ __forceinline__ double mt_erf(double x) { return erf(x); }
__device__ __forceinline__ float mt_sin(float x) { return sinf(x); }
__device__ __forceinline__ double mt_sin(double x) { return sin(x); }
__device__ __forceinline__ float mt_cos(float x) { return cosf(x); }
__device__ __forceinline__ double mt_cos(double x) { return cos(x); }
__device__ __forceinline__ float mt_pow(float x, float e) { return powf(x, e); }
__device__ __forceinline__ double mt_pow(double x, double e) { return pow(x, e); }
__device__ __forceinline__ float mt_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double mt_abs(double x) { return fabs(x); }

template <class C> __device__ __forceinline__ C mt_sigmoid(C x) { return C(1) / (C(1) + mt_exp(-x)); }

enum UnaryCode {
  U_NEG, U_ABS, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SQR, U_RECIP, U_TANH, U_SIGMOID, U_SILU, U_GELU,
  U_GELU_TANH, U_RELU, U_SIN, U_COS, U_ERF, U_SIGN, U_POWF, U_AFFINE, U_CLAMP
};

template <class C> __device__ __forceinline__ C unary_op(int op, C x, C p0, C p1) {
  const C k = C(0.7978845608028654), gc = C(0.044715);
  switch (op) {
    case U_NEG: return -x;
    case U_ABS: return mt_abs(x);
    case U_EXP: return mt_exp(x);
    case U_LOG: return mt_log(x);
    case U_SQRT: return mt_sqrt(x);
    case U_RSQRT: return C(1) / mt_sqrt(x);
    case U_SQR: return x * x;
    case U_RECIP: return C(1) / x;
    case U_TANH: return mt_tanh(x);
    case U_SIGMOID: return mt_sigmoid(x);
    case U_SILU: return x * mt_sigmoid(x);
    case U_GELU: return C(0.5) * x * (C(1) + mt_erf(x * C(0.70710678118654752440)));
    case U_GELU_TANH: return C(0.5) * x * (C(1) + mt_tanh(k * (x + gc * x * x * x)));
    case U_RELU: return x <= C(0) ? C(0) : x;
    case U_SIN: return mt_sin(x);
    case U_COS: return mt_cos(x);
    case U_ERF: return mt_erf(x);
    case U_SIGN: return x > C(0) ? C(1) : (x < C(0) ? C(-1) : (x == C(0) ? C(0) : x));
    case U_POWF: return mt_pow(x, p0);
    case U_AFFINE: return x * p0 + p1;
    case U_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  }
  return x;
}

template <class C> __device__ __forceinline__ C unary_grad(int op, C x, C dy, C p0, C p1) {
  const C k = C(0.7978845608028654), gc = C(0.044715);
  switch (op) {
    case U_NEG: return -dy;
    case U_ABS: return x > C(0) ? dy : (x < C(0) ? -dy : (x == C(0) ? C(0) : x));
    case U_EXP: return dy * mt_exp(x);
    case U_LOG: return dy / x;
    case U_SQRT: return dy * C(0.5) / mt_sqrt(x);
    case U_RSQRT: return dy * C(-0.5) / (x * mt_sqrt(x));
    case U_SQR: return dy * C(2) * x;
    case U_RECIP: return -dy / (x * x);
    case U_TANH: { C t = mt_tanh(x); return dy * (C(1) - t * t); }
    case U_SIGMOID: { C s = mt_sigmoid(x); return dy * s * (C(1) - s); }
    case U_SILU: { C s = mt_sigmoid(x); return dy * s * (C(1) + x * (C(1) - s)); }
    case U_GELU: {
      C cdf = C(0.5) * (C(1) + mt_erf(x * C(0.70710678118654752440)));
      C pdf = mt_exp(C(-0.5) * x * x) * C(0.39894228040143267794);
      return dy * (cdf + x * pdf);
    }
    case U_GELU_TANH: {
      C t = mt_tanh(k * (x + gc * x * x * x));
      return dy * (C(0.5) * (C(1) + t) + C(0.5) * x * (C(1) - t * t) * k * (C(1) + C(3) * gc * x * x));
    }
    case U_RELU: return x > C(0) ? dy : (x != x ? x : C(0));
    case U_SIN: return dy * mt_cos(x);
    case U_COS: return -dy * mt_sin(x);
    case U_ERF: return dy * C(1.12837916709551257390) * mt_exp(-x * x);
    case U_SIGN: return C(0);
    case U_POWF: return p0 == C(0) ? C(0) : dy * p0 * mt_pow(x, p0 - C(1));
    case U_AFFINE: return dy * p0;
    case U_CLAMP: return (x >= p0 && x <= p1) ? dy : (x != x ? x : C(0));
  }
  return dy;
}

enum BinaryCode { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM };

template <class C> __device__ __forceinline__ C binary_op(int op, C a, C b) {
  switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return mt_pow(a, b);
    case B_MAXIMUM: return mt_max_nan(a, b);
    case B_MINIMUM: return mt_min_nan(a, b);
  }
  return a;
}

enum CmpCode { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

template <class C> __device__ __forceinline__ bool cmp_op(int op, C a, C b) {
  switch (op) {
    case C_EQ: return a == b;
    case C_NE: return a != b;
    case C_LT: return a < b;
    case C_LE: return a <= b;
    case C_GT: return a > b;
    case C_GE: return a >= b;
  }
  return false;
}

#define MT_ELEMENTWISE(SUF, T)                                                                           \
  extern "C" __global__ void unary_##SUF(const T* __restrict__ x, StridedArg xl, T* __restrict__ y,      \
                                         int64_t n, int32_t op, double p0, double p1) {                 \
    typedef MtCompute<T>::type C;                                                                        \
    MT_GRID_STRIDE(i, n) { mt_store(y, i, unary_op<C>(op, mt_load(x, mt_strided_offset(xl, i)), C(p0), C(p1))); } \
  }                                                                                                      \
  extern "C" __global__ void unary_backward_##SUF(const T* __restrict__ x, StridedArg xl,                \
                                                  const T* __restrict__ dy, T* __restrict__ dx,          \
                                                  int64_t n, int32_t op, double p0, double p1) {        \
    typedef MtCompute<T>::type C;                                                                        \
    MT_GRID_STRIDE(i, n) {                                                                               \
      mt_store(dx, i, unary_grad<C>(op, mt_load(x, mt_strided_offset(xl, i)), mt_load(dy, i), C(p0), C(p1))); \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void binary_##SUF(const T* __restrict__ a, StridedArg al, const T* __restrict__ b, \
                                          StridedArg bl, T* __restrict__ y, int64_t n, int32_t op) {     \
    typedef MtCompute<T>::type C;                                                                        \
    MT_GRID_STRIDE(i, n) {                                                                               \
      mt_store(y, i, binary_op<C>(op, mt_load(a, mt_strided_offset(al, i)), mt_load(b, mt_strided_offset(bl, i)))); \
    }                                                                                                    \
  }                                                                                                      \
  extern "C" __global__ void compare_##SUF(const T* __restrict__ a, StridedArg al, const T* __restrict__ b, \
                                           StridedArg bl, uint8_t* __restrict__ y, int64_t n, int32_t op) { \
    typedef MtCompute<T>::type C;                                                                        \
    MT_GRID_STRIDE(i, n) {                                                                               \
      y[i] = cmp_op<C>(op, mt_load(a, mt_strided_offset(al, i)), mt_load(b, mt_strided_offset(bl, i))) ? 1 : 0; \
    }                                                                                                    \
  }

MT_FOR_FLOATS(MT_ELEMENTWISE)
