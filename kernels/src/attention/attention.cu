// Flash attention on the GPU, f32 (SIMT): forward with online softmax, backward in the
// FlashAttention-2 scheme with a separate dQ kernel (deterministic: no atomics).
//
// Semantics are those of the CPU kernel `kernels::attention::attention_{forward,backward}` (flash.rs),
// which is the oracle of cuda_tests.rs:
//  * contiguous row-major buffers q [bh, lq, d], k [bh, lk, d], v [bh, lk, dv], out [bh, lq, dv],
//    lse [bh, lq] with bh = batch·heads (head h belongs to batch element h / heads);
//  * optional key-padding mask [batch, lk] of bytes, nonzero = the key may be attended;
//  * S = scale·(q·k), P = softmax over the unmasked keys, out = P·V, lse = ln Σ exp(S) (natural log);
//  * a query row whose keys are all masked (or lk == 0) gets out = 0, lse = -inf and zero gradients;
//  * backward: P = exp(S - lse), D_i = dout_i·out_i, dS = P∘(dP - D)·scale with dP = dout·Vᵀ,
//    dq = dS·K, dk = dSᵀ·Q, dv = Pᵀ·dout.
// Head dimensions d, dv ≤ ATTN_DMAX (128); any lq, lk (partial tiles are zero-filled and masked).
//
// Kernels (argument lists and launch shapes: attention/cuda.rs):
//  * flash_attn_fwd_f32:      block = (head, 64 query rows), 128 threads; streams 32-key tiles.
//  * flash_attn_bwd_pre_f32:  D = rowsum(dout∘out), one warp per row.
//  * flash_attn_bwd_dq_f32:   block = (head, 32 query rows), 64 threads; streams 16-key tiles.
//  * flash_attn_bwd_dkdv_f32: block = (head, 16 keys), 64 threads; streams 32-query tiles.
//  * flash_attn_bwd_{pre,dq,dkdv}_{bf16,f16}: the same backward kernels on 16-bit storage (f32 math).
//  * flash_attn_fwd_bf16, flash_attn_fwd_f16: forward with tensor cores (mma.sync m16n8k16, f32
//    accumulation and softmax statistics); q, k, v, out in the 16-bit dtype, lse in f32.
//
// Thread layout shared by the three main kernels: 8 consecutive lanes ("a row group", always inside
// one warp) own a few rows of the block's output (query rows, or keys for dK/dV) and split that
// output's columns c = lane%8 + 8·j (j < 16) among themselves; the tile of the other side (keys, or
// queries) is split the same way (index lane%8 + 8·j). Scores for (row, key) are computed by the
// thread owning both, from shared tiles, and broadcast to the row group by __shfl_sync when the
// output columns are accumulated. Shared tiles are unpadded ([rows][width]); dot products walk the
// width starting at a per-lane rotation (lane % width), so for width a multiple of 32 the 32 lanes of
// a warp read 32 distinct banks.
#include "common.cuh"
#include "mma.cuh"
#include "shared_check.cuh"
#include "attn_simt.cuh"

// ------------------------------------------------------------------------------------------------
// Forward
// ------------------------------------------------------------------------------------------------
extern "C" __global__ void __launch_bounds__(attn::FWD_THREADS, 1)
    flash_attn_fwd_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       const uint8_t* __restrict__ key_mask, float* __restrict__ out, float* __restrict__ lse,
                       AttnArgs a) {
  using namespace attn;
  constexpr int BQ = FWD_BQ, R = 4;
  __shared__ float sq[BQ * DMAX];
  __shared__ float skv[FWD_BK * DMAX];
  const int tid = threadIdx.x, tx = tid % LANES, ty = tid / LANES;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int64_t lq = a.lq, lk = a.lk;
  const int64_t nqb = (lq + BQ - 1) / BQ;
  const int64_t h = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BQ;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk = a.has_mask ? key_mask + (h / a.heads) * lk : nullptr;

  attn_load_tile(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, tid, FWD_THREADS);
  float o[R][CPT], m[R], l[R];
  attn_fwd_stream(sq, skv, k + h * lk * d, v + h * lk * dv, mk, lk, d, dv, scale, o, m, l);
  attn_fwd_finish(o, m, l, lse + h * lq, q0, lq);
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    if (row >= lq) continue;
    float* orow = out + (h * lq + row) * dv;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) {
      const int c = tx + LANES * jj;
      if (c < dv) orow[c] = o[i][jj];
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Backward
// ------------------------------------------------------------------------------------------------

// dd[r] = Σ_c dout[r][c]·out[r][c] for the bh·lq rows (one warp per row, grid-stride).
template <class S>
__device__ __forceinline__ void attn_bwd_pre(const S* __restrict__ out, const S* __restrict__ dout, float* __restrict__ dd,
                                             const AttnArgs& a) {
  const int64_t rows = a.batch * a.heads * a.lq, dv = a.dv;
  const int warps = blockDim.x / 32, lane = threadIdx.x & 31;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    float s = 0.f;
    for (int64_t c = lane; c < dv; c += 32) s = fmaf(mt_load(dout, r * dv + c), mt_load(out, r * dv + c), s);
    s = mt_warp_sum(s);
    if (lane == 0) dd[r] = s;
  }
}

// dq for 32 query rows of one head: streams 16-key tiles, recomputing P from lse and dS from dd.
template <class S>
__device__ __forceinline__ void attn_bwd_dq(const S* __restrict__ q, const S* __restrict__ k, const S* __restrict__ v,
                                            const uint8_t* __restrict__ key_mask, const float* __restrict__ lse,
                                            const float* __restrict__ dd, const S* __restrict__ dout,
                                            S* __restrict__ dq, const AttnArgs& a) {
  using namespace attn;
  constexpr int BQ = DQ_BQ, BK = DQ_BK, R = BQ / (DQ_THREADS / LANES), KC = BK / LANES;
  static_assert(R == 4 && KC == 2, "tile shape");
  __shared__ float sq[BQ * DMAX];
  __shared__ float sdo[BQ * DMAX];
  __shared__ float sk[BK * DMAX];
  __shared__ float sv[BK * DMAX];
  const int tid = threadIdx.x, tx = tid % LANES, ty = tid / LANES;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int64_t lq = a.lq, lk = a.lk;
  const int64_t nqb = (lq + BQ - 1) / BQ;
  const int64_t h = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BQ;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk = a.has_mask ? key_mask + (h / a.heads) * lk : nullptr;

  attn_load_tile(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, tid, DQ_THREADS);
  attn_load_tile(sdo, dout + (h * lq + q0) * dv, lq - q0, BQ, dv, tid, DQ_THREADS);
  float acc[R][CPT], lrow[R], drow[R];
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    lrow[i] = row < lq ? lse[h * lq + row] : attn_neg_inf();
    drow[i] = row < lq ? dd[h * lq + row] : 0.f;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) acc[i][jj] = 0.f;
  }
  attn_dq_stream(sq, sdo, sk, sv, k + h * lk * d, v + h * lk * dv, mk, lk, d, dv, scale, lrow, drow, acc);
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    if (row >= lq) continue;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) {
      const int c = tx + LANES * jj;
      if (c < d) mt_store(dq, (h * lq + row) * d + c, acc[i][jj]);
    }
  }
}

// dk, dv for 16 keys of one head: streams 32-query tiles; each key's gradients stay in registers.
template <class S>
__device__ __forceinline__ void attn_bwd_dkdv(const S* __restrict__ q, const S* __restrict__ k, const S* __restrict__ v,
                                              const uint8_t* __restrict__ key_mask, const float* __restrict__ lse,
                                              const float* __restrict__ dd, const S* __restrict__ dout,
                                              S* __restrict__ dk, S* __restrict__ dvo, const AttnArgs& a) {
  using namespace attn;
  constexpr int BK = KV_BK, BQ = KV_BQ, R = BK / (KV_THREADS / LANES), QC = BQ / LANES;
  static_assert(R == 2 && QC == 4, "tile shape");
  __shared__ float sk[BK * DMAX];
  __shared__ float sv[BK * DMAX];
  __shared__ float sq[BQ * DMAX];
  __shared__ float sdo[BQ * DMAX];
  const int tid = threadIdx.x, lane = tid & 31, tx = tid % LANES, ty = tid / LANES;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int64_t lq = a.lq, lk = a.lk;
  const int64_t nkb = (lk + BK - 1) / BK;
  const int64_t h = blockIdx.x / nkb, k0 = (blockIdx.x % nkb) * BK;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk = a.has_mask ? key_mask + (h / a.heads) * lk : nullptr;
  const int rot_d = d > 0 ? lane % d : 0, rot_v = dv > 0 ? lane % dv : 0;

  attn_load_tile(sk, k + (h * lk + k0) * d, lk - k0, BK, d, tid, KV_THREADS);
  attn_load_tile(sv, v + (h * lk + k0) * dv, lk - k0, BK, dv, tid, KV_THREADS);
  bool keep[R];
  float dka[R][CPT], dva[R][CPT];
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    keep[i] = attn_key_ok(mk, k0 + ty * R + i, lk);
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) dka[i][jj] = dva[i][jj] = 0.f;
  }
  for (int64_t q0 = 0; q0 < lq; q0 += BQ) {
    __syncthreads();  // the previous Q / dout tiles are consumed
    attn_load_tile(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, tid, KV_THREADS);
    attn_load_tile(sdo, dout + (h * lq + q0) * dv, lq - q0, BQ, dv, tid, KV_THREADS);
    __syncthreads();
    float p[R][QC], ds[R][QC];
    attn_dots<R, QC>(p, sk, ty * R, sq, tx, d, rot_d);    // S (unscaled), key-major
    attn_dots<R, QC>(ds, sv, ty * R, sdo, tx, dv, rot_v);  // dP
    MT_UNROLL
    for (int j = 0; j < QC; ++j) {
      const int64_t row = q0 + tx + LANES * j;
      const float lr = row < lq ? lse[h * lq + row] : attn_neg_inf();
      const float dr = row < lq ? dd[h * lq + row] : 0.f;
      MT_UNROLL
      for (int i = 0; i < R; ++i) {
        const float pv = keep[i] && lr != attn_neg_inf() ? expf(p[i][j] * scale - lr) : 0.f;
        p[i][j] = pv;
        ds[i][j] = pv * (ds[i][j] - dr) * scale;
      }
    }
    attn_accumulate<R, QC>(dva, p, sdo, dv, lane);
    attn_accumulate<R, QC>(dka, ds, sq, d, lane);
  }
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t key = k0 + ty * R + i;
    if (key >= lk) continue;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) {
      const int c = tx + LANES * jj;
      if (c < d) mt_store(dk, (h * lk + key) * d + c, dka[i][jj]);
      if (c < dv) mt_store(dvo, (h * lk + key) * dv + c, dva[i][jj]);
    }
  }
}


// The backward kernels per storage dtype: f32, and bf16/f16 (inputs read as f32, all arithmetic and
// the dd scratch in f32, gradients rounded once to the dtype).
#define ATTN_BWD_KERNELS(SUF, S)                                                                                  \
  extern "C" __global__ void flash_attn_bwd_pre_##SUF(const S* __restrict__ out, const S* __restrict__ dout,      \
                                                      float* __restrict__ dd, AttnArgs a) {                        \
    attn_bwd_pre<S>(out, dout, dd, a);                                                                            \
  }                                                                                                               \
  extern "C" __global__ void __launch_bounds__(attn::DQ_THREADS)                                                  \
      flash_attn_bwd_dq_##SUF(const S* __restrict__ q, const S* __restrict__ k, const S* __restrict__ v,          \
                              const uint8_t* __restrict__ key_mask, const float* __restrict__ lse,                \
                              const float* __restrict__ dd, const S* __restrict__ dout, S* __restrict__ dq,       \
                              AttnArgs a) {                                                                       \
    attn_bwd_dq<S>(q, k, v, key_mask, lse, dd, dout, dq, a);                                                      \
  }                                                                                                               \
  extern "C" __global__ void __launch_bounds__(attn::KV_THREADS)                                                  \
      flash_attn_bwd_dkdv_##SUF(const S* __restrict__ q, const S* __restrict__ k, const S* __restrict__ v,        \
                                const uint8_t* __restrict__ key_mask, const float* __restrict__ lse,              \
                                const float* __restrict__ dd, const S* __restrict__ dout, S* __restrict__ dk,     \
                                S* __restrict__ dv, AttnArgs a) {                                                 \
    attn_bwd_dkdv<S>(q, k, v, key_mask, lse, dd, dout, dk, dv, a);                                                \
  }
ATTN_BWD_KERNELS(f32, float)
ATTN_BWD_KERNELS(bf16, mt_bf16)
ATTN_BWD_KERNELS(f16, mt_f16)

// ------------------------------------------------------------------------------------------------
// Forward with tensor cores (bf16 / f16 storage, f32 accumulation and statistics)
// ------------------------------------------------------------------------------------------------
// Block = (head, 64 query rows), 128 threads = 4 warps, warp w owns query rows 16w..16w+15 (one mma
// M tile). Per 32-key tile: S (16×32 per warp) = 4 n-tiles of mma over ⌈d/16⌉ k-steps, A fragments
// from the Q tile, B fragments from the K tile (K rows are the mma's "col" B: two adjacent halves of a
// key row per register). The online softmax runs on the accumulators (lane g = lane/4, t = lane%4
// holds rows g and g+8, keys 8n + 2t, 8n + 2t + 1; row statistics reduced over the 4 t-lanes). P is
// rounded to the 16-bit dtype and reused in registers as the A fragments of O += P·V (the C layout
// of n-tiles 2c, 2c+1 is the A layout of k-chunk c); V's B fragments pair two key rows of one column.
// Shared tiles [rows][136] halves: rows 272 bytes apart, so the 8 g-rows × 4 t-words of a fragment
// load hit 32 distinct banks; columns d..⌈d/16⌉·16 are zero so the last k-step adds nothing.
namespace attn_tc {
constexpr int BQ = 64, BK = 32, THREADS = 128, LDS = ATTN_DMAX + 8;
}

template <bool BF>
__device__ __forceinline__ void mt_mma_16816_attn(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if (BF)
    mt_mma_m16n8k16_bf16(d, a, b, d);
  else
    mt_mma_m16n8k16_f16(d, a, b, d);
}

template <class S>
__device__ __forceinline__ void attn_load_tile16(uint16_t* s, const S* g, int64_t rows_left, int rows, int width,
                                                 int width_pad, int tid) {
  const int n = rows * width_pad;
  for (int e = tid; e < n; e += attn_tc::THREADS) {
    const int r = e / width_pad, c = e % width_pad;
    MT_SH_ST(s[r * attn_tc::LDS + c], r < rows_left && c < width ? g[static_cast<int64_t>(r) * width + c].bits
                                                                 : static_cast<uint16_t>(0));
  }
}

__device__ __forceinline__ uint32_t attn_pack(float lo, float hi, bool bf) {
  const uint16_t a = bf ? mt_f32_to_bf16(lo) : mt_f32_to_f16(lo);
  const uint16_t b = bf ? mt_f32_to_bf16(hi) : mt_f32_to_f16(hi);
  return static_cast<uint32_t>(a) | (static_cast<uint32_t>(b) << 16);
}

template <class S, bool BF>
__device__ __forceinline__ void attn_fwd_tc(const S* __restrict__ q, const S* __restrict__ k, const S* __restrict__ v,
                                            const uint8_t* __restrict__ key_mask, S* __restrict__ out,
                                            float* __restrict__ lse, const AttnArgs& a) {
  using namespace attn_tc;
  constexpr int NT = BK / 8;               // S n-tiles per key tile
  constexpr int NV = ATTN_DMAX / 8;        // O n-tiles (≤ 16)
  __align__(16) __shared__ uint16_t sq[BQ * LDS];
  __align__(16) __shared__ uint16_t sk[BK * LDS];
  __align__(16) __shared__ uint16_t sv[BK * LDS];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid / 32, g = lane >> 2, t = lane & 3;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int dp = (d + 15) / 16 * 16, dvp = (dv + 15) / 16 * 16;
  const int64_t lq = a.lq, lk = a.lk;
  const int64_t nqb = (lq + BQ - 1) / BQ;
  const int64_t h = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BQ;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk = a.has_mask ? key_mask + (h / a.heads) * lk : nullptr;

  attn_load_tile16(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, dp, tid);
  float o[NV][4], m[2], l[2];
  MT_UNROLL
  for (int n = 0; n < NV; ++n)
    MT_UNROLL
    for (int e = 0; e < 4; ++e) o[n][e] = 0.f;
  m[0] = m[1] = attn_neg_inf();
  l[0] = l[1] = 0.f;
  const uint16_t* qa = sq + (16 * warp + g) * LDS + 2 * t;  // A rows g (and g + 8 at + 8·LDS)
  for (int64_t k0 = 0; k0 < lk; k0 += BK) {
    __syncthreads();  // the previous K, V tiles are consumed
    attn_load_tile16(sk, k + (h * lk + k0) * d, lk - k0, BK, d, dp, tid);
    attn_load_tile16(sv, v + (h * lk + k0) * dv, lk - k0, BK, dv, dvp, tid);
    __syncthreads();
    float s[NT][4];
    MT_UNROLL
    for (int n = 0; n < NT; ++n)
      MT_UNROLL
      for (int e = 0; e < 4; ++e) s[n][e] = 0.f;
    for (int kc = 0; kc < dp; kc += 16) {
      uint32_t af[4];
      af[0] = mt_ld_pair_u16(qa + kc);
      af[1] = mt_ld_pair_u16(qa + 8 * LDS + kc);
      af[2] = mt_ld_pair_u16(qa + kc + 8);
      af[3] = mt_ld_pair_u16(qa + 8 * LDS + kc + 8);
      MT_UNROLL
      for (int n = 0; n < NT; ++n) {
        const uint16_t* kb = sk + (8 * n + g) * LDS + kc + 2 * t;
        const uint32_t bf[2] = {mt_ld_pair_u16(kb), mt_ld_pair_u16(kb + 8)};
        mt_mma_16816_attn<BF>(s[n], af, bf);
      }
    }
    // Online softmax on rows g (e = 0, 1) and g + 8 (e = 2, 3).
    MT_UNROLL
    for (int r = 0; r < 2; ++r) {
      float tmax = attn_neg_inf();
      MT_UNROLL
      for (int n = 0; n < NT; ++n)
        MT_UNROLL
        for (int e = 0; e < 2; ++e) {
          const bool keep = attn_key_ok(mk, k0 + 8 * n + 2 * t + e, lk);
          float& x = s[n][2 * r + e];
          x = keep ? x * scale : attn_neg_inf();
          tmax = fmaxf(tmax, x);
        }
      tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
      tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
      const float m_new = fmaxf(m[r], tmax);
      float alpha = 1.f, sum = 0.f;
      MT_UNROLL
      for (int n = 0; n < NT; ++n)
        MT_UNROLL
        for (int e = 0; e < 2; ++e) {
          float& x = s[n][2 * r + e];
          x = m_new == attn_neg_inf() ? 0.f : expf(x - m_new);
          sum += x;
        }
      if (m_new != attn_neg_inf()) alpha = expf(m[r] - m_new);
      l[r] = fmaf(l[r], alpha, sum);
      m[r] = m_new;
      MT_UNROLL
      for (int n = 0; n < NV; ++n) o[n][2 * r] *= alpha, o[n][2 * r + 1] *= alpha;
    }
    // O += P·V: k-chunk c of P (keys 16c..16c+15) is n-tiles 2c, 2c+1 of S.
    MT_UNROLL
    for (int c = 0; c < BK / 16; ++c) {
      const uint32_t pf[4] = {attn_pack(s[2 * c][0], s[2 * c][1], BF), attn_pack(s[2 * c][2], s[2 * c][3], BF),
                              attn_pack(s[2 * c + 1][0], s[2 * c + 1][1], BF),
                              attn_pack(s[2 * c + 1][2], s[2 * c + 1][3], BF)};
      const uint16_t* vb = sv + (16 * c + 2 * t) * LDS + g;
      MT_UNROLL
      for (int n = 0; n < NV; ++n) {
        if (8 * n >= dvp) break;  // warp-uniform
        const uint16_t* p = vb + 8 * n;
        const uint32_t bf[2] = {
            static_cast<uint32_t>(MT_SH_LD(p[0])) | (static_cast<uint32_t>(MT_SH_LD(p[LDS])) << 16),
            static_cast<uint32_t>(MT_SH_LD(p[8 * LDS])) | (static_cast<uint32_t>(MT_SH_LD(p[9 * LDS])) << 16)};
        mt_mma_16816_attn<BF>(o[n], pf, bf);
      }
    }
  }
  MT_UNROLL
  for (int r = 0; r < 2; ++r) {
    float lsum = l[r];
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
    const int64_t row = q0 + 16 * warp + g + 8 * r;
    if (row >= lq) continue;
    const bool dead = lsum == 0.f;  // fully masked row (or lk == 0): out = 0, lse = -inf
    const float inv = dead ? 0.f : 1.f / lsum;
    S* orow = out + (h * lq + row) * dv;
    MT_UNROLL
    for (int n = 0; n < NV; ++n)
      MT_UNROLL
      for (int e = 0; e < 2; ++e) {
        const int c = 8 * n + 2 * t + e;
        if (c < dv) mt_store(orow, c, o[n][2 * r + e] * inv);
      }
    if (t == 0) lse[h * lq + row] = dead ? attn_neg_inf() : m[r] + logf(lsum);
  }
}

extern "C" __global__ void __launch_bounds__(attn_tc::THREADS, 1)
    flash_attn_fwd_bf16(const mt_bf16* __restrict__ q, const mt_bf16* __restrict__ k, const mt_bf16* __restrict__ v,
                        const uint8_t* __restrict__ key_mask, mt_bf16* __restrict__ out, float* __restrict__ lse,
                        AttnArgs a) {
  attn_fwd_tc<mt_bf16, true>(q, k, v, key_mask, out, lse, a);
}
extern "C" __global__ void __launch_bounds__(attn_tc::THREADS, 1)
    flash_attn_fwd_f16(const mt_f16* __restrict__ q, const mt_f16* __restrict__ k, const mt_f16* __restrict__ v,
                       const uint8_t* __restrict__ key_mask, mt_f16* __restrict__ out, float* __restrict__ lse,
                       AttnArgs a) {
  attn_fwd_tc<mt_f16, false>(q, k, v, key_mask, out, lse, a);
}
