// Fused AdamW step: one pass over param, grad, exp_avg, exp_avg_sq, bit-identical to the CPU
// reference `optim::adamw_step` (the op sequence of nn's AdamW). The per-step scalars come from the
// host in f64 (`AdamWScalars`) and are rounded to T here, like the CPU's `T::from_f64`; every
// operation is an uncontracted IEEE op (rn.cuh). Arguments: optim/cuda.rs.
#include "common.cuh"
#include "rn.cuh"

#define ADAMW_STEP(SUF, T)                                                                                   \
  extern "C" __global__ void adamw_step_##SUF(T* __restrict__ param, const T* __restrict__ grad,           \
                                              T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, int64_t n, \
                                              double decay, int32_t apply_decay, double beta1,               \
                                              double one_minus_beta1, double beta2, double one_minus_beta2,  \
                                              double inv_bias_correction2_sqrt, double eps, double step_size) { \
    const T zero = T(0), dec = T(decay), b1 = T(beta1), omb1 = T(one_minus_beta1), b2 = T(beta2);            \
    const T omb2 = T(one_minus_beta2), ibc2 = T(inv_bias_correction2_sqrt), e = T(eps), step = T(step_size); \
    MT_GRID_STRIDE(i, n) {                                                                                   \
      const T g = grad[i];                                                                                   \
      const T p = apply_decay ? mt_add_rn(mt_mul_rn(param[i], dec), zero) : param[i];                        \
      const T m = mt_add_rn(mt_add_rn(mt_mul_rn(exp_avg[i], b1), zero), mt_add_rn(mt_mul_rn(g, omb1), zero)); \
      const T v = mt_add_rn(mt_add_rn(mt_mul_rn(exp_avg_sq[i], b2), zero),                                   \
                            mt_add_rn(mt_mul_rn(mt_mul_rn(g, g), omb2), zero));                              \
      const T denom = mt_add_rn(mt_mul_rn(mt_sqrt_rn(v), ibc2), e);                                          \
      const T update = mt_add_rn(mt_mul_rn(mt_div_rn(m, denom), step), zero);                                \
      param[i] = mt_sub_rn(p, update);                                                                       \
      exp_avg[i] = m;                                                                                        \
      exp_avg_sq[i] = v;                                                                                     \
    }                                                                                                        \
  }
ADAMW_STEP(f32, float)
ADAMW_STEP(f64, double)
