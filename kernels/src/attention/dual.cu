// Dual attention on the GPU: the MDM attention block's pattern (spec §3.1) fused,
//   out = softmax(s·Q·K1ᵀ, mask1)·V1 + softmax(s·Q·K2ᵀ, mask2)·V2
// (branch 1 = self-attention, branch 2 = cross-attention; two separate softmaxes, outputs added).
//
// Semantics are those of the CPU `kernels::attention::dual_attention_{forward,backward}` (dual.rs),
// i.e. two single attentions (attention.cu) summed: q [bh, lq, d], k_b [bh, l_b, d],
// v_b [bh, l_b, dv], optional key-padding masks mask_b [batch, l_b] (bytes, nonzero = keep); a
// branch whose keys are all masked for a row (or l_b == 0) contributes 0 and has lse_b = -inf.
//
// Kernels (argument lists and launch shapes: attention/dual_cuda.rs):
//  * dual_attn_fwd_<dt>:     block = (head, 64 query rows), 128 threads. The Q tile is read from
//    global memory ONCE into shared memory; the block streams branch 1's K1/V1 tiles through the
//    online softmax (running max/sum pair 1), normalises and writes out1, lse1; then streams
//    branch 2's K2/V2 tiles (running max/sum pair 2) and writes out2, lse2 and out = out1 + out2
//    (out1 re-read by the very thread that wrote it: no barrier needed). The two branches run one
//    after the other on ONE register accumulator: interleaving them would keep two 4×16 output
//    accumulators live (128 more registers per thread) and spill.
//  * dual_attn_bwd_pre_<dt>: dd1 = rowsum(dout∘out1), dd2 = rowsum(dout∘out2) (dout read once).
//  * dual_attn_bwd_dq_<dt>:  block = (head, 32 query rows), 64 threads; the Q and dout tiles are
//    read once, then the block streams branch 1's and branch 2's key tiles into ONE dq accumulator.
//  * dK/dV: per branch, `flash_attn_bwd_dkdv_<dt>` of attention.cu with that branch's
//    (k_b, v_b, mask_b, lse_b, dd_b): branch b's dK_b, dV_b depend only on P_b and
//    dS_b = P_b∘(dP_b − D_b), exactly the single-attention formulas with the shared dout.
// <dt> = f32, bf16, f16: 16-bit storage is read to f32, all math in f32, lse/dd in f32, outputs
// rounded once (out = round(round(out1) + out2) for 16-bit: out1 is re-read from its buffer).
#include "common.cuh"
#include "shared_check.cuh"
#include "attn_simt.cuh"

// Mirrors `kernels::attention::dual_cuda::DualAttnArgs` (repr(C)); keep the two in sync.
struct DualAttnArgs {
  int64_t batch, heads, lq, l1, l2, d, dv;
  int64_t has_mask1, has_mask2;  // 0: that mask pointer is not read (may be any pointer)
  double scale;
};

template <class S>
__device__ __forceinline__ void dual_fwd(const S* __restrict__ q, const S* __restrict__ k1, const S* __restrict__ v1,
                                         const uint8_t* __restrict__ mask1, const S* __restrict__ k2,
                                         const S* __restrict__ v2, const uint8_t* __restrict__ mask2,
                                         S* __restrict__ out, S* __restrict__ out1, S* __restrict__ out2,
                                         float* __restrict__ lse1, float* __restrict__ lse2, const DualAttnArgs& a) {
  using namespace attn;
  constexpr int BQ = FWD_BQ, R = 4;
  __shared__ float sq[BQ * DMAX];
  __shared__ float skv[FWD_BK * DMAX];
  const int tid = threadIdx.x, tx = tid % LANES, ty = tid / LANES;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int64_t lq = a.lq, l1 = a.l1, l2 = a.l2;
  const int64_t nqb = (lq + BQ - 1) / BQ;
  const int64_t h = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BQ, b = h / a.heads;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk1 = a.has_mask1 ? mask1 + b * l1 : nullptr;
  const uint8_t* mk2 = a.has_mask2 ? mask2 + b * l2 : nullptr;

  attn_load_tile(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, tid, FWD_THREADS);
  float o[R][CPT], m[R], l[R];
  // Branch 1 (running max/sum pair 1).
  attn_fwd_stream(sq, skv, k1 + h * l1 * d, v1 + h * l1 * dv, mk1, l1, d, dv, scale, o, m, l);
  attn_fwd_finish(o, m, l, lse1 + h * lq, q0, lq);
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    if (row >= lq) continue;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) {
      const int c = tx + LANES * jj;
      if (c < dv) mt_store(out1, (h * lq + row) * dv + c, o[i][jj]);
    }
  }
  // Branch 2 (pair 2) on the same Q tile; its first barrier also orders the reuse of skv.
  attn_fwd_stream(sq, skv, k2 + h * l2 * d, v2 + h * l2 * dv, mk2, l2, d, dv, scale, o, m, l);
  attn_fwd_finish(o, m, l, lse2 + h * lq, q0, lq);
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    if (row >= lq) continue;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) {
      const int c = tx + LANES * jj;
      if (c < dv) {
        const int64_t e = (h * lq + row) * dv + c;
        mt_store(out2, e, o[i][jj]);
        mt_store(out, e, mt_load(out1, e) + o[i][jj]);  // out1[e] was written by this thread
      }
    }
  }
}

// dd1[r] = Σ_c dout[r][c]·out1[r][c], dd2[r] = Σ_c dout[r][c]·out2[r][c] (one warp per row).
template <class S>
__device__ __forceinline__ void dual_bwd_pre(const S* __restrict__ out1, const S* __restrict__ out2,
                                             const S* __restrict__ dout, float* __restrict__ dd1,
                                             float* __restrict__ dd2, const DualAttnArgs& a) {
  const int64_t rows = a.batch * a.heads * a.lq, dv = a.dv;
  const int warps = blockDim.x / 32, lane = threadIdx.x & 31;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    float s1 = 0.f, s2 = 0.f;
    for (int64_t c = lane; c < dv; c += 32) {
      const float g = mt_load(dout, r * dv + c);
      s1 = fmaf(g, mt_load(out1, r * dv + c), s1);
      s2 = fmaf(g, mt_load(out2, r * dv + c), s2);
    }
    s1 = mt_warp_sum(s1);
    s2 = mt_warp_sum(s2);
    if (lane == 0) dd1[r] = s1, dd2[r] = s2;
  }
}

// dq for 32 query rows of one head: both branches' key tiles into one accumulator.
template <class S>
__device__ __forceinline__ void dual_bwd_dq(const S* __restrict__ q, const S* __restrict__ k1,
                                            const S* __restrict__ v1, const uint8_t* __restrict__ mask1,
                                            const S* __restrict__ k2, const S* __restrict__ v2,
                                            const uint8_t* __restrict__ mask2, const float* __restrict__ lse1,
                                            const float* __restrict__ lse2, const float* __restrict__ dd1,
                                            const float* __restrict__ dd2, const S* __restrict__ dout,
                                            S* __restrict__ dq, const DualAttnArgs& a) {
  using namespace attn;
  constexpr int BQ = DQ_BQ, BK = DQ_BK, R = 4;
  __shared__ float sq[BQ * DMAX];
  __shared__ float sdo[BQ * DMAX];
  __shared__ float sk[BK * DMAX];
  __shared__ float sv[BK * DMAX];
  const int tid = threadIdx.x, tx = tid % LANES, ty = tid / LANES;
  const int d = static_cast<int>(a.d), dv = static_cast<int>(a.dv);
  const int64_t lq = a.lq, l1 = a.l1, l2 = a.l2;
  const int64_t nqb = (lq + BQ - 1) / BQ;
  const int64_t h = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BQ, b = h / a.heads;
  const float scale = static_cast<float>(a.scale);
  const uint8_t* mk1 = a.has_mask1 ? mask1 + b * l1 : nullptr;
  const uint8_t* mk2 = a.has_mask2 ? mask2 + b * l2 : nullptr;

  attn_load_tile(sq, q + (h * lq + q0) * d, lq - q0, BQ, d, tid, DQ_THREADS);
  attn_load_tile(sdo, dout + (h * lq + q0) * dv, lq - q0, BQ, dv, tid, DQ_THREADS);
  float acc[R][CPT], lrow[R], drow[R];
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    lrow[i] = row < lq ? lse1[h * lq + row] : attn_neg_inf();
    drow[i] = row < lq ? dd1[h * lq + row] : 0.f;
    MT_UNROLL
    for (int jj = 0; jj < CPT; ++jj) acc[i][jj] = 0.f;
  }
  attn_dq_stream(sq, sdo, sk, sv, k1 + h * l1 * d, v1 + h * l1 * dv, mk1, l1, d, dv, scale, lrow, drow, acc);
  MT_UNROLL
  for (int i = 0; i < R; ++i) {
    const int64_t row = q0 + ty * R + i;
    lrow[i] = row < lq ? lse2[h * lq + row] : attn_neg_inf();
    drow[i] = row < lq ? dd2[h * lq + row] : 0.f;
  }
  // The first barrier of this stream orders the reuse of sk/sv after branch 1's last tile.
  attn_dq_stream(sq, sdo, sk, sv, k2 + h * l2 * d, v2 + h * l2 * dv, mk2, l2, d, dv, scale, lrow, drow, acc);
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

#define DUAL_ATTN_KERNELS(SUF, S)                                                                                \
  extern "C" __global__ void __launch_bounds__(attn::FWD_THREADS, 1) dual_attn_fwd_##SUF(                        \
      const S* __restrict__ q, const S* __restrict__ k1, const S* __restrict__ v1,                               \
      const uint8_t* __restrict__ mask1, const S* __restrict__ k2, const S* __restrict__ v2,                     \
      const uint8_t* __restrict__ mask2, S* __restrict__ out, S* __restrict__ out1, S* __restrict__ out2,        \
      float* __restrict__ lse1, float* __restrict__ lse2, DualAttnArgs a) {                                      \
    dual_fwd<S>(q, k1, v1, mask1, k2, v2, mask2, out, out1, out2, lse1, lse2, a);                                \
  }                                                                                                              \
  extern "C" __global__ void dual_attn_bwd_pre_##SUF(const S* __restrict__ out1, const S* __restrict__ out2,     \
                                                     const S* __restrict__ dout, float* __restrict__ dd1,        \
                                                     float* __restrict__ dd2, DualAttnArgs a) {                  \
    dual_bwd_pre<S>(out1, out2, dout, dd1, dd2, a);                                                              \
  }                                                                                                              \
  extern "C" __global__ void __launch_bounds__(attn::DQ_THREADS) dual_attn_bwd_dq_##SUF(                         \
      const S* __restrict__ q, const S* __restrict__ k1, const S* __restrict__ v1,                               \
      const uint8_t* __restrict__ mask1, const S* __restrict__ k2, const S* __restrict__ v2,                     \
      const uint8_t* __restrict__ mask2, const float* __restrict__ lse1, const float* __restrict__ lse2,         \
      const float* __restrict__ dd1, const float* __restrict__ dd2, const S* __restrict__ dout,                  \
      S* __restrict__ dq, DualAttnArgs a) {                                                                      \
    dual_bwd_dq<S>(q, k1, v1, mask1, k2, v2, mask2, lse1, lse2, dd1, dd2, dout, dq, a);                          \
  }
DUAL_ATTN_KERNELS(f32, float)
DUAL_ATTN_KERNELS(bf16, mt_bf16)
DUAL_ATTN_KERNELS(f16, mt_f16)
