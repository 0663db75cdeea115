// Philox4x32-10 fills reproducing the CPU stream of rng/mod.rs element for element (see the module
// docs there for the normative stream; argument lists and tolerances in rng/cuda.rs).
//
// One CUDA thread per Philox block: the block index of global element g = offset + i is g / per
// (per = 4 lanes for f32, 2 elements for f64). offset < 2^64 and i < 2^63, so g < 2^65 and the
// block index fits in 64 bits: the counter is [b lo, b hi, 0, 0], with no 128-bit arithmetic.
// Thread t handles block b0 + t, b0 = offset / per, and writes the elements of that block whose
// i = g - offset (computed mod 2^64) is in [0, n).
#include "common.cuh"
#include "rn.cuh"

// nvcc unrolls these fixed-trip loops; g++ (emulator) would warn about the pragma.
#ifdef __CUDACC__
#define PHILOX_UNROLL _Pragma("unroll")
#else
#define PHILOX_UNROLL
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ void philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1) {
PHILOX_UNROLL
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    const uint32_t hi0 = __umulhi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
    const uint32_t hi1 = __umulhi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
    const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
  }
}

// The 4 lanes of block b under seed.
__device__ __forceinline__ void philox_block(uint64_t seed, uint64_t b, uint32_t x[4]) {
  x[0] = static_cast<uint32_t>(b);
  x[1] = static_cast<uint32_t>(b >> 32);
  x[2] = 0;
  x[3] = 0;
  philox4x32_10(x, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Number of Philox blocks touched by elements offset .. offset + n (n >= 0).
__device__ __forceinline__ int64_t philox_blocks(int64_t n, uint64_t offset, uint64_t per) {
  if (n <= 0) return 0;
  return static_cast<int64_t>((offset % per + static_cast<uint64_t>(n) + per - 1) / per);
}

#define PHILOX_TWO_M24 5.9604644775390625e-08                // 2^-24
#define PHILOX_TWO_M53 1.1102230246251565404236316680908203125e-16  // 2^-53
#define PHILOX_TWO_PI 6.283185307179586                     // 2π as f64 (2.0 * PI exactly)

__device__ __forceinline__ uint64_t philox_bits53(uint32_t hi, uint32_t lo) {
  return (static_cast<uint64_t>(hi) << 21) | static_cast<uint64_t>(lo >> 11);
}

// Box–Muller in f64 as the CPU: r = sqrt(-2 ln u1), θ = 2π u2, (r cos θ, r sin θ).
__device__ __forceinline__ void philox_box_muller(double u1, double u2, double& a, double& b) {
  const double r = mt_sqrt_rn(mt_mul_rn(-2.0, log(u1)));
  const double t = mt_mul_rn(PHILOX_TWO_PI, u2);
  a = mt_mul_rn(r, cos(t));
  b = mt_mul_rn(r, sin(t));
}

// Writes `v[l]` for the lanes l < per of block b that fall in out[0..n).
template <class T, int PER>
__device__ __forceinline__ void philox_store(T* out, int64_t n, uint64_t offset, uint64_t b, const T v[PER]) {
PHILOX_UNROLL
  for (int l = 0; l < PER; ++l) {
    const uint64_t i = b * PER + l - offset;  // mod 2^64
    if (i < static_cast<uint64_t>(n)) out[i] = v[l];
  }
}

extern "C" __global__ void philox_uniform_f32(float* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset,
                                              float low, float high) {
  const float span = mt_sub_rn(high, low);
  const uint64_t b0 = offset / 4;
  MT_GRID_STRIDE(t, philox_blocks(n, offset, 4)) {
    uint32_t x[4];
    philox_block(seed, b0 + static_cast<uint64_t>(t), x);
    float v[4];
PHILOX_UNROLL
    for (int l = 0; l < 4; ++l)
      v[l] = mt_add_rn(low, mt_mul_rn(span, static_cast<float>(static_cast<double>(x[l] >> 8) * PHILOX_TWO_M24)));
    philox_store<float, 4>(out, n, offset, b0 + static_cast<uint64_t>(t), v);
  }
}

extern "C" __global__ void philox_uniform_f64(double* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset,
                                              double low, double high) {
  const double span = mt_sub_rn(high, low);
  const uint64_t b0 = offset / 2;
  MT_GRID_STRIDE(t, philox_blocks(n, offset, 2)) {
    uint32_t x[4];
    philox_block(seed, b0 + static_cast<uint64_t>(t), x);
    double v[2];
    v[0] = mt_add_rn(low, mt_mul_rn(span, static_cast<double>(philox_bits53(x[0], x[1])) * PHILOX_TWO_M53));
    v[1] = mt_add_rn(low, mt_mul_rn(span, static_cast<double>(philox_bits53(x[2], x[3])) * PHILOX_TWO_M53));
    philox_store<double, 2>(out, n, offset, b0 + static_cast<uint64_t>(t), v);
  }
}

extern "C" __global__ void philox_normal_f32(float* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset,
                                             float mean, float std_dev) {
  const uint64_t b0 = offset / 4;
  MT_GRID_STRIDE(t, philox_blocks(n, offset, 4)) {
    uint32_t x[4];
    philox_block(seed, b0 + static_cast<uint64_t>(t), x);
    double z[4];
    philox_box_muller(static_cast<double>((x[0] >> 8) + 1u) * PHILOX_TWO_M24,
                      static_cast<double>(x[1] >> 8) * PHILOX_TWO_M24, z[0], z[1]);
    philox_box_muller(static_cast<double>((x[2] >> 8) + 1u) * PHILOX_TWO_M24,
                      static_cast<double>(x[3] >> 8) * PHILOX_TWO_M24, z[2], z[3]);
    float v[4];
PHILOX_UNROLL
    for (int l = 0; l < 4; ++l) v[l] = mt_add_rn(mean, mt_mul_rn(std_dev, static_cast<float>(z[l])));
    philox_store<float, 4>(out, n, offset, b0 + static_cast<uint64_t>(t), v);
  }
}

extern "C" __global__ void philox_normal_f64(double* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset,
                                             double mean, double std_dev) {
  const uint64_t b0 = offset / 2;
  MT_GRID_STRIDE(t, philox_blocks(n, offset, 2)) {
    uint32_t x[4];
    philox_block(seed, b0 + static_cast<uint64_t>(t), x);
    double z[2];
    philox_box_muller(static_cast<double>(philox_bits53(x[0], x[1]) + 1) * PHILOX_TWO_M53,
                      static_cast<double>(philox_bits53(x[2], x[3])) * PHILOX_TWO_M53, z[0], z[1]);
    double v[2];
    v[0] = mt_add_rn(mean, mt_mul_rn(std_dev, z[0]));
    v[1] = mt_add_rn(mean, mt_mul_rn(std_dev, z[1]));
    philox_store<double, 2>(out, n, offset, b0 + static_cast<uint64_t>(t), v);
  }
}

// The raw block function for known-answer tests and debugging: item j encrypts the counter
// ctr[4j..4j+4] under key[2j..2j+2] into out[4j..4j+4].
extern "C" __global__ void philox_raw_u32(const uint32_t* __restrict__ ctr, const uint32_t* __restrict__ key,
                                          uint32_t* __restrict__ out, int64_t items) {
  MT_GRID_STRIDE(j, items) {
    uint32_t c[4] = {ctr[4 * j], ctr[4 * j + 1], ctr[4 * j + 2], ctr[4 * j + 3]};
    philox4x32_10(c, key[2 * j], key[2 * j + 1]);
    for (int l = 0; l < 4; ++l) out[4 * j + l] = c[l];
  }
}
