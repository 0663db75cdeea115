// attn_simt.cuh: the SIMT building blocks of the f32/16-bit-storage attention kernels, shared by
// attention/attention.cu (single attention) and attention/dual.cu (the two-branch MDM pattern):
// the argument struct, tile constants, shared-tile loads, blocked dot products, row-group reductions
// and the shuffle-broadcast accumulation. The thread layout they assume is described at the top of
// attention.cu.
#pragma once
#include "common.cuh"
#include "shared_check.cuh"

#ifdef __CUDACC__
#define MT_UNROLL _Pragma("unroll")
#else
#define MT_UNROLL _Pragma("GCC unroll 16")
#endif

// Mirrors `kernels::attention::cuda::AttnArgs` (repr(C)); keep the two in sync.
struct AttnArgs {
  int64_t batch, heads, lq, lk, d, dv;
  int64_t has_mask;  // 0: key_mask is not read (may be any pointer)
  double scale;
};

#define ATTN_DMAX 128
namespace attn {
constexpr int DMAX = ATTN_DMAX;
constexpr int LANES = 8;             // threads of a row group
constexpr int CPT = DMAX / LANES;    // output columns per thread (16)
constexpr int FWD_BQ = 64, FWD_BK = 32, FWD_THREADS = 128;
constexpr int DQ_BQ = 32, DQ_BK = 16, DQ_THREADS = 64;
constexpr int KV_BK = 16, KV_BQ = 32, KV_THREADS = 64;
}  // namespace attn

__device__ __forceinline__ float attn_neg_inf() { return -INFINITY; }

// s[r·width + c] = r < rows_left ? g[r·width + c] : 0 for r < rows, c < width (g: the tile's first row,
// rows contiguous). Coalesced: consecutive threads take consecutive elements.
template <class S>
__device__ __forceinline__ void attn_load_tile(float* s, const S* g, int64_t rows_left, int rows, int width,
                                               int tid, int nthreads) {
  const int n = rows * width;
  const int64_t vr = rows_left < rows ? (rows_left < 0 ? 0 : rows_left) : rows;
  const int valid = static_cast<int>(vr) * width;
  for (int e = tid; e < n; e += nthreads) MT_SH_ST(s[e], e < valid ? mt_load(g, e) : 0.f);
}

// acc[i][j] = Σ_p A[a0 + i][p] · B[b0 + LANES·j][p] over p < width (shared tiles of row length width),
// walking p from the rotation `rot` (< width) around.
template <int R, int C>
__device__ __forceinline__ void attn_dots(float (&acc)[R][C], const float* A, int a0, const float* B, int b0, int width,
                                          int rot) {
  MT_UNROLL
  for (int i = 0; i < R; ++i)
    MT_UNROLL
    for (int j = 0; j < C; ++j) acc[i][j] = 0.f;
  int p = rot;
  for (int t = 0; t < width; ++t) {
    float a[R], b[C];
    MT_UNROLL
    for (int i = 0; i < R; ++i) a[i] = MT_SH_LD(A[(a0 + i) * width + p]);
    MT_UNROLL
    for (int j = 0; j < C; ++j) b[j] = MT_SH_LD(B[(b0 + attn::LANES * j) * width + p]);
    MT_UNROLL
    for (int i = 0; i < R; ++i)
      MT_UNROLL
      for (int j = 0; j < C; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    p = p + 1 == width ? 0 : p + 1;
  }
}

// Max / sum over the 8 lanes of a row group.
__device__ __forceinline__ float attn_group_max(float x) {
  MT_UNROLL
  for (int o = 1; o < attn::LANES; o <<= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float attn_group_sum(float x) {
  MT_UNROLL
  for (int o = 1; o < attn::LANES; o <<= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// acc[i][jj] += Σ_{t < C·LANES} w_t[i] · T[t][lane%8 + 8·jj] (columns < width), where w_t[i] is
// w[i][t / 8] of lane (lane & ~7) | (t % 8): the row group's weights broadcast by shuffles.
template <int R, int C>
__device__ __forceinline__ void attn_accumulate(float (&acc)[R][attn::CPT], const float (&w)[R][C], const float* T,
                                                int width, int lane) {
  const int tx = lane % attn::LANES, base = lane & ~(attn::LANES - 1);
  MT_UNROLL
  for (int j = 0; j < C; ++j) {
    for (int kk = 0; kk < attn::LANES; ++kk) {
      float wb[R];
      MT_UNROLL
      for (int i = 0; i < R; ++i) wb[i] = __shfl_sync(0xffffffffu, w[i][j], base | kk);
      const float* row = T + (j * attn::LANES + kk) * width;
      MT_UNROLL
      for (int jj = 0; jj < attn::CPT; ++jj) {
        const int c = tx + attn::LANES * jj;
        if (c < width) {
          const float x = MT_SH_LD(row[c]);
          MT_UNROLL
          for (int i = 0; i < R; ++i) acc[i][jj] = fmaf(wb[i], x, acc[i][jj]);
        }
      }
    }
  }
}

__device__ __forceinline__ bool attn_key_ok(const uint8_t* mk, int64_t key, int64_t lk) {
  return key < lk && (mk == nullptr || mk[key] != 0);
}

// ------------------------------------------------------------------------------------------------
// Key-streaming loops shared by the single and the dual kernels
// ------------------------------------------------------------------------------------------------

// Forward over the keys of one head (block of attn::FWD_THREADS threads, attn::FWD_BQ query rows):
// `sq` holds the Q tile (made visible by the loop's first barrier), `skv` is the K/V staging tile,
// `kh`/`vh` point at the head's first key/value row, `mk` at the head's mask row (or null).
// On return o holds the unnormalised output rows, m the running row maxima and l this lane's share
// of the row sums (sum over the row group with attn_group_sum); rows without any kept key keep
// m = -inf, l = 0, o = 0. Starts and ends with the caller free to reuse `skv` only after a barrier.
template <class S>
__device__ __forceinline__ void attn_fwd_stream(const float* sq, float* skv, const S* __restrict__ kh,
                                                const S* __restrict__ vh, const uint8_t* __restrict__ mk, int64_t lk,
                                                int d, int dv, float scale, float (&o)[4][attn::CPT], float (&m)[4],
                                                float (&l)[4]) {
  using namespace attn;
  constexpr int BK = FWD_BK, R = FWD_BQ / (FWD_THREADS / LANES), KC = BK / LANES;
  static_assert(R == 4 && KC == 4, "tile shape");
  const int tid = threadIdx.x, lane = tid & 31, tx = tid % LANES, ty = tid / LANES;
  const int rot = d > 0 ? lane % d : 0;
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    m[i] = attn_neg_inf();
    l[i] = 0.f;  // this lane's share of the row sum (its keys), summed over the group at the end
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) o[i][jj] = 0.f;
  }
  for (int64_t k0 = 0; k0 < lk; k0 += BK) {
    __syncthreads();  // the previous V tile is consumed
    attn_load_tile(skv, kh + k0 * d, lk - k0, BK, d, tid, FWD_THREADS);
    __syncthreads();  // K tile (and, first time, Q tile) visible
    float s[R][KC];
    attn_dots<R, KC>(s, sq, ty * R, skv, tx, d, rot);
    bool keep[KC];
    MT_UNROLL
    for (int j = 0; j < KC; ++j) keep[j] = attn_key_ok(mk, k0 + tx + LANES * j, lk);
    MT_UNROLL
    for (int i = 0; i < R; ++i) {
      float tmax = attn_neg_inf();
      MT_UNROLL
      for (int j = 0; j < KC; ++j) {
        s[i][j] = keep[j] ? s[i][j] * scale : attn_neg_inf();
        tmax = fmaxf(tmax, s[i][j]);
      }
      const float m_new = fmaxf(m[i], attn_group_max(tmax));
      float alpha = 1.f, sum = 0.f;
      if (m_new == attn_neg_inf()) {  // every key so far is masked: nothing to add
        MT_UNROLL
        for (int j = 0; j < KC; ++j) s[i][j] = 0.f;
      } else {
        alpha = expf(m[i] - m_new);  // 0 when m was -inf
        MT_UNROLL
        for (int j = 0; j < KC; ++j) {
          s[i][j] = expf(s[i][j] - m_new);  // masked: exp(-inf) = 0
          sum += s[i][j];
        }
      }
      l[i] = fmaf(l[i], alpha, sum);
      m[i] = m_new;
      MT_UNROLL
      for (int jj = 0; jj < CPT; ++jj) o[i][jj] *= alpha;
    }
    __syncthreads();  // everyone is done with the K tile
    attn_load_tile(skv, vh + k0 * dv, lk - k0, BK, dv, tid, FWD_THREADS);
    __syncthreads();
    attn_accumulate<R, KC>(o, s, skv, dv, lane);
  }
}

// Finishes the forward rows of attn_fwd_stream: sums l over the row group, normalises o in place
// (o = 0 for a fully masked row) and writes lse (-inf for a fully masked row; `lse_h` = the head's
// first lse entry, row q0 + 4·ty + i). Every lane of the row group must call it.
__device__ __forceinline__ void attn_fwd_finish(float (&o)[4][attn::CPT], const float (&m)[4], const float (&l)[4],
                                                float* __restrict__ lse_h, int64_t q0, int64_t lq) {
  using namespace attn;
  const int tx = threadIdx.x % LANES, ty = threadIdx.x / LANES;
  MT_UNROLL
  for (int i = 0; i < 4; ++i) {
    const float lsum = attn_group_sum(l[i]);
    const bool dead = lsum == 0.f;  // fully masked row (or lk == 0): out = 0, lse = -inf
    const float inv = dead ? 0.f : 1.f / lsum;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) o[i][jj] *= inv;
    const int64_t row = q0 + ty * 4 + i;
    if (row < lq && tx == 0) lse_h[row] = dead ? attn_neg_inf() : m[i] + logf(lsum);
  }
}

// dQ over the keys of one head (block of attn::DQ_THREADS threads, attn::DQ_BQ query rows): adds
// Σ_keys dS·K to acc, with P recomputed from lrow (the rows' lse) and dS = P∘(dP − drow)·scale.
// `sq`/`sdo` hold the Q and dout tiles (visible after the loop's first barrier), `sk`/`sv` are the
// K/V staging tiles.
template <class S>
__device__ __forceinline__ void attn_dq_stream(const float* sq, const float* sdo, float* sk, float* sv,
                                               const S* __restrict__ kh, const S* __restrict__ vh,
                                               const uint8_t* __restrict__ mk, int64_t lk, int d, int dv,
                                               float scale, const float (&lrow)[4], const float (&drow)[4],
                                               float (&acc)[4][attn::CPT]) {
  using namespace attn;
  constexpr int BK = DQ_BK, R = DQ_BQ / (DQ_THREADS / LANES), KC = BK / LANES;
  static_assert(R == 4 && KC == 2, "tile shape");
  const int tid = threadIdx.x, lane = tid & 31, tx = tid % LANES, ty = tid / LANES;
  const int rot_d = d > 0 ? lane % d : 0, rot_v = dv > 0 ? lane % dv : 0;
  for (int64_t k0 = 0; k0 < lk; k0 += BK) {
    __syncthreads();  // the previous K tile is consumed
    attn_load_tile(sk, kh + k0 * d, lk - k0, BK, d, tid, DQ_THREADS);
    attn_load_tile(sv, vh + k0 * dv, lk - k0, BK, dv, tid, DQ_THREADS);
    __syncthreads();
    float s[R][KC], dp[R][KC];
    attn_dots<R, KC>(s, sq, ty * R, sk, tx, d, rot_d);
    attn_dots<R, KC>(dp, sdo, ty * R, sv, tx, dv, rot_v);
    bool keep[KC];
    MT_UNROLL
    for (int j = 0; j < KC; ++j) keep[j] = attn_key_ok(mk, k0 + tx + LANES * j, lk);
    MT_UNROLL
    for (int i = 0; i < R; ++i)
      MT_UNROLL
      for (int j = 0; j < KC; ++j) {
        // A fully masked row (lse = -inf) has P = 0: never exp(+inf).
        const float p = keep[j] && lrow[i] != attn_neg_inf() ? expf(s[i][j] * scale - lrow[i]) : 0.f;
        s[i][j] = p * (dp[i][j] - drow[i]) * scale;  // dS (scale folded in)
      }
    attn_accumulate<R, KC>(acc, s, sk, d, lane);
  }
}
