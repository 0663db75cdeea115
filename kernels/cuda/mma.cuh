// mma.cuh: warp-level tensor-core primitives (mma.sync m16n8k16, bf16/f16 in, f32 accumulate) as small
// device functions. On the GPU each is one inline-PTX instruction; under the host emulator
// (`#ifndef __CUDACC__`) each has a host implementation that reproduces the PTX ISA's documented
// per-thread fragment layout, so that kernels which load fragments the wrong way fail their tests.
//
// Fragment layout of mma.m16n8k16 with .f16/.bf16 inputs and .f32 accumulators (PTX ISA, "Matrix
// Fragments for mma.m16n8k16 with floating point type"), with groupID g = lane >> 2 and
// threadID_in_group t = lane % 4:
//   A (16×16, row-major "row"): a0..a7 in four .b32 registers {a0,a1},{a2,a3},{a4,a5},{a6,a7}
//       (lower-numbered element in the low 16 bits);
//       row = g for a0,a1,a4,a5 and g+8 for a2,a3,a6,a7;
//       col = 2t + (i&1) for a0..a3 and 2t + (i&1) + 8 for a4..a7.
//   B (16×8, column-major "col"): b0..b3 in two .b32 registers {b0,b1},{b2,b3};
//       row (k) = 2t + (i&1) for b0,b1 and 2t + (i&1) + 8 for b2,b3; col (n) = g.
//   C, D (16×8, f32): c0..c3; row = g for c0,c1 and g+8 for c2,c3; col = 2t + (i&1).
// So lane (g, t) holds: a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..2t+1], a[2] = A[g][2t+8..2t+9],
// a[3] = A[g+8][2t+8..2t+9]; b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g];
// c/d = {D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]}.
//
// Numerics of the emulation: products of two bf16 (8-bit significands) or two f16 (11-bit) values are
// exact in f32; the host sums them into c in the order k = 0..15, rounding each f32 addition to
// nearest. The tensor cores' internal summation order and rounding are not specified by the ISA (and
// differ between architectures), so tests compare against an f64 reference with a tolerance grown
// with k, never bit-for-bit.
#pragma once
#include "common.cuh"

#ifndef __CUDACC__
namespace mt_mma_detail {
// What one lane posts for one emulated mma: its A and B fragments and its C accumulators (40 bytes,
// within emu::warp_gather's 64-byte limit).
struct Frag {
  uint32_t a[4];
  uint32_t b[2];
  float c[4];
};
inline float half_lo(uint32_t r, bool bf) {
  const uint16_t h = static_cast<uint16_t>(r & 0xffffu);
  return bf ? mt_bf16_to_f32(h) : mt_f16_to_f32(h);
}
inline float half_hi(uint32_t r, bool bf) {
  const uint16_t h = static_cast<uint16_t>(r >> 16);
  return bf ? mt_bf16_to_f32(h) : mt_f16_to_f32(h);
}
// D = A·B + C for the warp; every live lane must call it (converged code), as on the GPU.
inline void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], bool bf) {
  Frag mine;
  for (int i = 0; i < 4; ++i) mine.a[i] = a[i];
  for (int i = 0; i < 2; ++i) mine.b[i] = b[i];
  for (int i = 0; i < 4; ++i) mine.c[i] = c[i];
  // Best effort (checked before the exchange: after it, lanes that finished may already have exited).
  if (emu::warp_live_mask() != 0xffffffffu) emu::trap("mma.sync with a partial warp");
  Frag all[32];
  emu::warp_gather(&mine, sizeof(Frag), all);
  // Rebuild the full operands from the 32 lanes' fragments, following the layout above.
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, t = lane & 3;
    const Frag& f = all[lane];
    for (int i = 0; i < 8; ++i) {
      const int row = g + ((i & 2) ? 8 : 0);   // a2,a3,a6,a7: g+8
      const int col = 2 * t + (i & 1) + ((i & 4) ? 8 : 0);  // a4..a7: +8
      const uint32_t reg = f.a[i >> 1];
      A[row][col] = (i & 1) ? half_hi(reg, bf) : half_lo(reg, bf);
    }
    for (int i = 0; i < 4; ++i) {
      const int row = 2 * t + (i & 1) + ((i & 2) ? 8 : 0);  // b2,b3: +8
      const uint32_t reg = f.b[i >> 1];
      B[row][g] = (i & 1) ? half_hi(reg, bf) : half_lo(reg, bf);
    }
  }
  // This lane's four outputs.
  const int g = static_cast<int>(emu::cur.lane) >> 2, t = static_cast<int>(emu::cur.lane) & 3;
  for (int i = 0; i < 4; ++i) {
    const int row = g + ((i & 2) ? 8 : 0);
    const int col = 2 * t + (i & 1);
    float acc = mine.c[i];
    for (int k = 0; k < 16; ++k) acc += A[row][k] * B[k][col];  // exact product, f32 sum in k order
    d[i] = acc;
  }
}
}  // namespace mt_mma_detail
#endif

// D = A·B + C, A 16×16 bf16, B 16×8 bf16, C/D 16×8 f32, fragments as documented above. d may alias c.
__device__ __forceinline__ void mt_mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4]) {
#ifdef __CUDACC__
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#else
  mt_mma_detail::mma_m16n8k16(d, a, b, c, true);
#endif
}

// The same with f16 inputs.
__device__ __forceinline__ void mt_mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const float c[4]) {
#ifdef __CUDACC__
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#else
  mt_mma_detail::mma_m16n8k16(d, a, b, c, false);
#endif
}

// Two adjacent 16-bit elements (p[0] in the low half, p[1] in the high half) as one .b32 fragment
// register. `p` must be 4-byte aligned (shared-memory tiles keep even element offsets).
__device__ __forceinline__ uint32_t mt_ld_pair_u16(const uint16_t* p) {
#ifdef __CUDACC__
  return *reinterpret_cast<const uint32_t*>(p);
#else
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 16);
#endif
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: loads four 8×8 matrices of 16-bit elements from
// shared memory. Lane l supplies `row`, the address of row l%8 of matrix l/8 (16 contiguous bytes,
// 16-byte aligned). Lane l (g = l>>2, t = l%4) receives in r[j], for matrix j:
//   without .trans: elements (row g, col 2t) in the low half and (g, 2t+1) in the high half;
//   with .trans:    elements (row 2t, col g) in the low half and (2t+1, g) in the high half,
// i.e. the fragment of the transposed matrix: a k-major tile At[k][m] yields the mma A fragment
// registers, a Bt[k][n] tile the B fragment registers. All 32 lanes must call it (converged code).
#ifndef __CUDACC__
namespace mt_mma_detail {
inline void ldmatrix_x4(uint32_t r[4], const uint16_t* row, bool trans) {
  if (reinterpret_cast<uintptr_t>(row) & 15u) emu::trap("ldmatrix: row address not 16-byte aligned");
  if (emu::warp_live_mask() != 0xffffffffu) emu::trap("ldmatrix with a partial warp");
  const uint16_t* rows[32];
  emu::warp_gather(&row, sizeof(row), rows);
  const int g = static_cast<int>(emu::cur.lane) >> 2, t = static_cast<int>(emu::cur.lane) & 3;
  for (int j = 0; j < 4; ++j) {
    uint16_t lo, hi;
    if (trans) {
      lo = rows[8 * j + 2 * t][g];
      hi = rows[8 * j + 2 * t + 1][g];
    } else {
      lo = rows[8 * j + g][2 * t];
      hi = rows[8 * j + g][2 * t + 1];
    }
    r[j] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
}
}  // namespace mt_mma_detail
#endif

__device__ __forceinline__ void mt_ldmatrix_x4_trans(uint32_t r[4], const uint16_t* row) {
#ifdef __CUDACC__
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  mt_mma_detail::ldmatrix_x4(r, row, true);
#endif
}

__device__ __forceinline__ void mt_ldmatrix_x4(uint32_t r[4], const uint16_t* row) {
#ifdef __CUDACC__
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  mt_mma_detail::ldmatrix_x4(r, row, false);
#endif
}
