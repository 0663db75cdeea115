// Implicit-GEMM 2-d convolution (NCHW): forward, input gradient (dgrad) and weight gradient (wgrad).
//
// Semantics mirror the CPU `kernels::conv` entry points (conv/mod.rs): buffers are contiguous
// row-major, x/dx [n, c_in, h, w], w/dw [c_out, cpg, kh, kw], y/dy [n, c_out, oh, ow], bias/db
// [c_out]; every kernel overwrites its output. Each is one GEMM per channel group g (blockIdx.z),
// never materialising the patch matrix: the operand tiles are gathered from the NCHW tensors while
// they are loaded (out-of-range taps read as 0), so k = (channel, ki, kj) and the pixel index are
// decomposed on the fly (once per thread and k-tile; consecutive k by an incrementing cursor).
//
//   forward  C[opg × n·oh·ow]   = W_g [opg × cpg·kh·kw] · col(x)_g [cpg·kh·kw × n·oh·ow] (+ bias)
//   dgrad    C[cpg × n·h·w]     = W_gᵀ-gather [cpg × opg·kh·kw] · dycol_g [opg·kh·kw × n·h·w]
//            where dycol(co, ki, kj ; ih, iw) = dy[co, (ih + ph − ki·dh) / sh, (iw + pw − kj·dw) / sw]
//            when both divisions are exact and in range, else 0 (the zero-inserted positions of a
//            strided conv's transpose are skipped by this validity check: no flip, no scatter);
//   wgrad    C[opg × cpg·kh·kw] = dy_g [opg × n·oh·ow] · col(x)_gᵀ [n·oh·ow × cpg·kh·kw]
//            (each block owns its C tile and runs the whole reduction: deterministic, no atomics;
//            or, split-K, one k-range per block into an f32/f64 workspace that
//            conv2d_wgrad_finish sums in split order).
//
// Kernels (argument lists and launch shapes in conv/cuda.rs):
//  * conv2d_{fwd,dgrad,wgrad}_{f32,f64}: SIMT, 256 threads, block tile 64×64×8, 4×4 micro-tile per
//    thread, exact FMA accumulation in the element type.
//  * conv2d_wgrad_split_<dt> / conv2d_wgrad_finish_<dt>: the split-K weight gradient.
//  * conv2d_{fwd,dgrad,wgrad}_{bf16,f16}: tensor cores (mma.sync m16n8k16 from mma.cuh, f32
//    accumulate), 128 threads = 4 warps (2×2), block tile 64×64×32, warp tile 32×32; result (plus
//    bias) rounded once to the 16-bit dtype.
// Both double-buffer shared memory, with the next k-tile's global gathers held in registers during
// the current tile's math (one __syncthreads per k-tile). Every shared access goes through
// MT_SH_LD / MT_SH_ST so that the emulator's race check sees it.
#include "common.cuh"
#include "mma.cuh"
#include "shared_check.cuh"

#ifdef __CUDACC__
#define MT_CONV_UNROLL _Pragma("unroll")
#else
#define MT_CONV_UNROLL _Pragma("GCC unroll 16")
#endif

// Mirrors `kernels::conv::cuda::ConvArgs` (repr(C), 18 × i64); keep the two in sync.
struct ConvArgs {
  int64_t n, c_in, h, w, c_out, kh, kw, oh, ow;
  int64_t sh, sw, ph, pw, dh, dw, groups, cpg, opg;
};

// 32-bit copies of the sizes (the host checks that every GEMM extent and n·c·h·w product fits i32,
// `conv::cuda::supported`); element offsets are still formed in 64 bits.
struct MtConvDims {
  int n, c_in, h, w, c_out, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, cpg, opg, khw, ohw, hw;
};
__device__ __forceinline__ MtConvDims mt_conv_dims(const ConvArgs& a) {
  MtConvDims d;
  d.n = int(a.n), d.c_in = int(a.c_in), d.h = int(a.h), d.w = int(a.w), d.c_out = int(a.c_out);
  d.kh = int(a.kh), d.kw = int(a.kw), d.oh = int(a.oh), d.ow = int(a.ow);
  d.sh = int(a.sh), d.sw = int(a.sw), d.ph = int(a.ph), d.pw = int(a.pw), d.dh = int(a.dh), d.dw = int(a.dw);
  d.cpg = int(a.cpg), d.opg = int(a.opg);
  d.khw = d.kh * d.kw, d.ohw = d.oh * d.ow, d.hw = d.h * d.w;
  return d;
}

// Storage value zero for every storage type (the 16-bit structs' all-zero bits are +0).
template <class S> __device__ __forceinline__ S mt_conv_zero() { return S{}; }

__device__ __forceinline__ float mt_conv_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double mt_conv_fma(double a, double b, double c) { return fma(a, b, c); }

// ---- the three GEMM problems ----
// Each provides M, N, K; a per-row context for A (`Row row(m)`) and per-column context for B
// (`Col col(n)`), computed once per thread per block (a thread's A row and B column are fixed);
// cursors over k (`a_cur(row, k)`, `b_cur(col, k)`: the integer decomposition of k, done once per
// run of consecutive k) with `a_next` / `b_next` returning the storage value at the cursor and
// advancing it by one k with compares instead of divisions (only called for m < M, n < N, k < K);
// and `store(m, n, v)` writing C in the compute type (only called in range).

// (a, b, c) += 1 in the mixed radix (·, nb, nc).
__device__ __forceinline__ void mt_conv_adv3(int& a, int& b, int& c, int nb, int nc) {
  if (++c == nc) {
    c = 0;
    if (++b == nb) b = 0, ++a;
  }
}
// (a, b) += 1 in the mixed radix (·, nb).
__device__ __forceinline__ void mt_conv_adv2(int& a, int& b, int nb) {
  if (++b == nb) b = 0, ++a;
}

// Forward. A = w_g (k-contiguous rows), B = im2col(x_g), C = y_g (+ bias).
template <class S> struct ConvFwd {
  typedef typename MtCompute<S>::type C;
  const S* x;
  const S* w;
  const S* bias;
  S* y;
  MtConvDims d;
  int g;
  int M, N, K;
  int split = 0, splits = 1;  // this block's share of the k-tiles (never split)
  __device__ ConvFwd(const S* x_, const S* w_, const S* b_, S* y_, const ConvArgs& a, int g_)
      : x(x_), w(w_), bias(b_), y(y_), d(mt_conv_dims(a)), g(g_) {
    M = d.opg, N = d.n * d.ohw, K = d.cpg * d.khw;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int iy0, ix0; };
  __device__ __forceinline__ Row row(int m) const { return Row{w + int64_t(g * d.opg + m) * K}; }
  struct ACur { const S* p; };
  __device__ __forceinline__ ACur a_cur(const Row& r, int k) const { return ACur{r.p + k}; }
  __device__ __forceinline__ S a_next(const Row&, ACur& c) const { return *c.p++; }
  __device__ __forceinline__ Col col(int n) const {
    const int img = n / d.ohw, pix = n - img * d.ohw, oy = pix / d.ow, ox = pix - oy * d.ow;
    return Col{(int64_t(img) * d.c_in + int64_t(g) * d.cpg) * d.hw, oy * d.sh - d.ph, ox * d.sw - d.pw};
  }
  struct BCur { int ci, ki, kj; };
  __device__ __forceinline__ BCur b_cur(const Col&, int k) const {
    const int ci = k / d.khw, rem = k - ci * d.khw, ki = rem / d.kw;
    return BCur{ci, ki, rem - ki * d.kw};
  }
  __device__ __forceinline__ S b_next(const Col& c, BCur& u) const {
    const int ih = c.iy0 + u.ki * d.dh, iw = c.ix0 + u.kj * d.dw;
    const int64_t off = c.base + int64_t(u.ci) * d.hw + ih * d.w + iw;
    const bool in = unsigned(ih) < unsigned(d.h) && unsigned(iw) < unsigned(d.w);
    mt_conv_adv3(u.ci, u.ki, u.kj, d.kh, d.kw);
    return in ? x[off] : mt_conv_zero<S>();
  }
  __device__ __forceinline__ void store(int m, int n, C v) const {
    const int co = g * d.opg + m, img = n / d.ohw, pix = n - img * d.ohw;
    if (bias != nullptr) v += mt_load(bias, co);
    mt_store(y, (int64_t(img) * d.c_out + co) * d.ohw + pix, v);
  }
};

// Input gradient. A(ci, (co, ki, kj)) = w[g·opg + co, ci, ki, kj]; B((co, ki, kj), (img, ih, iw)) =
// dy[img, g·opg + co, oy, ox] with oy·sh = ih + ph − ki·dh (likewise ox), 0 where that has no exact
// in-range solution; C = dx_g.
template <class S> struct ConvDgrad {
  typedef typename MtCompute<S>::type C;
  const S* dy;
  const S* w;
  S* dx;
  MtConvDims d;
  int g;
  int M, N, K, wrow;  // wrow = cpg·kh·kw: stride between output channels of w
  int split = 0, splits = 1;
  __device__ ConvDgrad(const S* dy_, const S* w_, S* dx_, const ConvArgs& a, int g_)
      : dy(dy_), w(w_), dx(dx_), d(mt_conv_dims(a)), g(g_) {
    M = d.cpg, N = d.n * d.hw, K = d.opg * d.khw, wrow = d.cpg * d.khw;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int ty0, tx0; };
  __device__ __forceinline__ Row row(int m) const {
    return Row{w + int64_t(g) * d.opg * wrow + int64_t(m) * d.khw};
  }
  struct ACur { int co, kk; };
  __device__ __forceinline__ ACur a_cur(const Row&, int k) const {
    const int co = k / d.khw;
    return ACur{co, k - co * d.khw};
  }
  __device__ __forceinline__ S a_next(const Row& r, ACur& u) const {
    const S v = r.p[int64_t(u.co) * wrow + u.kk];
    mt_conv_adv2(u.co, u.kk, d.khw);
    return v;
  }
  __device__ __forceinline__ Col col(int n) const {
    const int img = n / d.hw, pix = n - img * d.hw, ih = pix / d.w, iw = pix - ih * d.w;
    return Col{(int64_t(img) * d.c_out + int64_t(g) * d.opg) * d.ohw, ih + d.ph, iw + d.pw};
  }
  struct BCur { int co, ki, kj; };
  __device__ __forceinline__ BCur b_cur(const Col&, int k) const {
    const int co = k / d.khw, rem = k - co * d.khw, ki = rem / d.kw;
    return BCur{co, ki, rem - ki * d.kw};
  }
  __device__ __forceinline__ S b_next(const Col& c, BCur& u) const {
    const int ty = c.ty0 - u.ki * d.dh, tx = c.tx0 - u.kj * d.dw;
    const int co = u.co;
    mt_conv_adv3(u.co, u.ki, u.kj, d.kh, d.kw);
    if (ty < 0 || tx < 0) return mt_conv_zero<S>();
    // Stride 1 (the common case) needs no division.
    const int oy = d.sh == 1 ? ty : ty / d.sh, ox = d.sw == 1 ? tx : tx / d.sw;
    if (oy * d.sh != ty || ox * d.sw != tx || oy >= d.oh || ox >= d.ow) return mt_conv_zero<S>();
    return dy[c.base + int64_t(co) * d.ohw + oy * d.ow + ox];
  }
  __device__ __forceinline__ void store(int m, int n, C v) const {
    const int img = n / d.hw, pix = n - img * d.hw;
    mt_store(dx, (int64_t(img) * d.c_in + int64_t(g) * d.cpg + m) * d.hw + pix, v);
  }
};

// Weight gradient. A(co, (img, oy, ox)) = dy[img, g·opg + co, oy, ox]; B((img, oy, ox), (ci, ki, kj))
// = x[img, g·cpg + ci, oy·sh + ki·dh − ph, ox·sw + kj·dw − pw]; C = dw_g. With split-K (`splits` > 1)
// block z = split·groups + g reduces its share of the k-tiles and writes the partial `dw` (in O,
// the accumulator type) to dw + split·w_len; conv2d_wgrad_finish sums the partials in split order.
template <class S, class O = S> struct ConvWgrad {
  typedef typename MtCompute<S>::type C;
  const S* x;
  const S* dy;
  O* dw;
  MtConvDims d;
  int g;
  int M, N, K;
  int split, splits;
  int64_t out_off;
  __device__ ConvWgrad(const S* x_, const S* dy_, O* dw_, const ConvArgs& a, int z, int splits_ = 1)
      : x(x_), dy(dy_), dw(dw_), d(mt_conv_dims(a)), splits(splits_) {
    const int groups = int(a.groups);
    g = z % groups, split = z / groups;
    M = d.opg, N = d.cpg * d.khw, K = d.n * d.ohw;
    out_off = int64_t(split) * d.c_out * N;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int ky, kx; };
  __device__ __forceinline__ Row row(int m) const { return Row{dy + int64_t(g * d.opg + m) * d.ohw}; }
  struct ACur { int img, pix; };
  __device__ __forceinline__ ACur a_cur(const Row&, int k) const {
    const int img = k / d.ohw;
    return ACur{img, k - img * d.ohw};
  }
  __device__ __forceinline__ S a_next(const Row& r, ACur& u) const {
    const S v = r.p[int64_t(u.img) * d.c_out * d.ohw + u.pix];
    mt_conv_adv2(u.img, u.pix, d.ohw);
    return v;
  }
  __device__ __forceinline__ Col col(int n) const {
    const int ci = n / d.khw, rem = n - ci * d.khw, ki = rem / d.kw, kj = rem - ki * d.kw;
    return Col{(int64_t(g) * d.cpg + ci) * d.hw, ki * d.dh - d.ph, kj * d.dw - d.pw};
  }
  struct BCur { int img, oy, ox; };
  __device__ __forceinline__ BCur b_cur(const Col&, int k) const {
    const int img = k / d.ohw, pix = k - img * d.ohw, oy = pix / d.ow;
    return BCur{img, oy, pix - oy * d.ow};
  }
  __device__ __forceinline__ S b_next(const Col& c, BCur& u) const {
    const int ih = u.oy * d.sh + c.ky, iw = u.ox * d.sw + c.kx;
    const int64_t off = int64_t(u.img) * d.c_in * d.hw + c.base + ih * d.w + iw;
    const bool in = unsigned(ih) < unsigned(d.h) && unsigned(iw) < unsigned(d.w);
    mt_conv_adv3(u.img, u.oy, u.ox, d.oh, d.ow);
    return in ? x[off] : mt_conv_zero<S>();
  }
  __device__ __forceinline__ void store(int m, int n, C v) const {
    mt_store(dw, out_off + int64_t(g * d.opg + m) * N + n, v);
  }
};

// This thread's N consecutive A elements (row `r`, k0 .. k0+N−1) / B elements (column `c`), zero
// outside the matrix: one cursor decomposition per run.
template <class P, class S, int N>
__device__ __forceinline__ void mt_conv_gather_a(const P& p, const typename P::Row& r, bool ok, int k0, S (&v)[N]) {
  MT_CONV_UNROLL
  for (int e = 0; e < N; ++e) v[e] = mt_conv_zero<S>();
  if (!ok || k0 >= p.K) return;
  typename P::ACur u = p.a_cur(r, k0);
  MT_CONV_UNROLL
  for (int e = 0; e < N; ++e)
    if (k0 + e < p.K) v[e] = p.a_next(r, u);
}
template <class P, class S, int N>
__device__ __forceinline__ void mt_conv_gather_b(const P& p, const typename P::Col& c, bool ok, int k0, S (&v)[N]) {
  MT_CONV_UNROLL
  for (int e = 0; e < N; ++e) v[e] = mt_conv_zero<S>();
  if (!ok || k0 >= p.K) return;
  typename P::BCur u = p.b_cur(c, k0);
  MT_CONV_UNROLL
  for (int e = 0; e < N; ++e)
    if (k0 + e < p.K) v[e] = p.b_next(c, u);
}

// Four consecutive shared elements (16-byte aligned on the GPU: one or two vector loads).
__device__ __forceinline__ void mt_conv_lds4(const float* p, float (&v)[4]) {
#ifdef __CUDACC__
  const float4 x = *reinterpret_cast<const float4*>(p);
  v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
#else
  for (int i = 0; i < 4; ++i) v[i] = MT_SH_LD(p[i]);
#endif
}
__device__ __forceinline__ void mt_conv_lds4(const double* p, double (&v)[4]) {
#ifdef __CUDACC__
  const double2 x = reinterpret_cast<const double2*>(p)[0], y = reinterpret_cast<const double2*>(p)[1];
  v[0] = x.x, v[1] = x.y, v[2] = y.x, v[3] = y.y;
#else
  for (int i = 0; i < 4; ++i) v[i] = MT_SH_LD(p[i]);
#endif
}

// ------------------------------------------------------------------------------------------------
// SIMT implicit GEMM (f32, f64)
// ------------------------------------------------------------------------------------------------
namespace conv_simt {
constexpr int THREADS = 256, BM = 64, BN = 64, BK = 8, TM = 4, TN = 4, PAD = 4;
constexpr int LDA = BM + PAD, LDB = BN + PAD;
}  // namespace conv_simt

// Thread t gathers A row t/4, k = 2·(t%4) + 0..1, and B column t%64, k = 2·(t/64) + 0..1, of each
// k-tile: with 4 elements of padding the A stores (4 lanes along k, 8 along m) hit distinct banks
// 4k + m; the B stores and gathers are coalesced along the pixel index n. The micro-tile reads are
// 16-byte vectors (A: broadcast within a half-warp; B: 16 consecutive vectors).
template <class T, class P>
__device__ __forceinline__ void conv_simt_kernel(const P& p) {
  using namespace conv_simt;
  static_assert((BM / TM) * (BN / TN) == THREADS, "one micro-tile per thread");
  static_assert(BM * BK == 2 * THREADS && BN * BK == 2 * THREADS, "two A and two B elements per thread");
  __align__(16) __shared__ T As[2][BK * LDA];
  __align__(16) __shared__ T Bs[2][BK * LDB];
  const int tid = threadIdx.x, tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int m0 = int(blockIdx.y) * BM, n0 = int(blockIdx.x) * BN;
  const int am = tid / 4, ak = 2 * (tid % 4);
  const int bn = tid % BN, bk = 2 * (tid / BN);
  const typename P::Row ra = p.row(m0 + am);
  const typename P::Col cb = p.col(n0 + bn);
  const bool ok_r = m0 + am < p.M, ok_c = n0 + bn < p.N;
  // This block's k-tiles [kt0, kt1): all of them unless split-K.
  const int ktiles_all = (p.K + BK - 1) / BK, per = (ktiles_all + p.splits - 1) / p.splits;
  const int kt0 = p.split * per, kt1 = kt0 + per < ktiles_all ? kt0 + per : ktiles_all;
  T va[2], vb[2];
  auto gather = [&](int kt) {
    mt_conv_gather_a(p, ra, ok_r, kt * BK + ak, va);
    mt_conv_gather_b(p, cb, ok_c, kt * BK + bk, vb);
  };
  T acc[TM][TN];
  MT_CONV_UNROLL
  for (int i = 0; i < TM; ++i)
    MT_CONV_UNROLL
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
  if (kt0 < kt1) gather(kt0);
  for (int kt = kt0; kt < kt1; ++kt) {
    T* as = As[kt & 1];
    T* bs = Bs[kt & 1];
    // This buffer was last read in iteration kt − 2; the barrier of iteration kt − 1 separates them.
    MT_SH_ST(as[ak * LDA + am], va[0]);
    MT_SH_ST(as[(ak + 1) * LDA + am], va[1]);
    MT_SH_ST(bs[bk * LDB + bn], vb[0]);
    MT_SH_ST(bs[(bk + 1) * LDB + bn], vb[1]);
    __syncthreads();
    if (kt + 1 < kt1) gather(kt + 1);  // next tile's loads in flight during the FMAs
    MT_CONV_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      static_assert(TM == 4 && TN == 4, "one vector per operand row");
      T a[TM], b[TN];
      mt_conv_lds4(&as[kk * LDA + ty * TM], a);
      mt_conv_lds4(&bs[kk * LDB + tx * TN], b);
      MT_CONV_UNROLL
      for (int i = 0; i < TM; ++i)
        MT_CONV_UNROLL
        for (int j = 0; j < TN; ++j) acc[i][j] = mt_conv_fma(a[i], b[j], acc[i][j]);
    }
  }
  MT_CONV_UNROLL
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + ty * TM + i;
    if (m >= p.M) continue;
    MT_CONV_UNROLL
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tx * TN + j;
      if (n < p.N) p.store(m, n, acc[i][j]);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Tensor-core implicit GEMM (bf16, f16)
// ------------------------------------------------------------------------------------------------
namespace conv_tc {
constexpr int THREADS = 128, BM = 64, BN = 64, BK = 32, LDS = BK + 8;  // rows of 80 bytes
constexpr int WM = 32, WN = 32, MI = WM / 16, NI = WN / 8;
constexpr int PER = 16;  // A and B elements per thread per k-tile
}  // namespace conv_tc

__device__ __forceinline__ uint16_t mt_conv_bits(mt_bf16 v) { return v.bits; }
__device__ __forceinline__ uint16_t mt_conv_bits(mt_f16 v) { return v.bits; }

// Two adjacent halves of a staged tile as one fragment register (low half = p[0]); p is 4-byte
// aligned (even offsets in rows of 40 halves).
__device__ __forceinline__ uint32_t mt_conv_pair(const uint16_t* p) {
#ifdef __CUDACC__
  return mt_ld_pair_u16(p);
#else
  return static_cast<uint32_t>(MT_SH_LD(p[0])) | (static_cast<uint32_t>(MT_SH_LD(p[1])) << 16);
#endif
}

// Both operands are staged k-contiguous (As[m][k], Bs[n][k], rows of 40 halves): a fragment register
// is then two adjacent halves, and lanes (g, t) read words 20g + t (+ const), 32 distinct banks.
// Thread t gathers A row t/2, k = 16·(t%2) + 0..15, and B column t%64, k = 16·(t/64) + 0..15.
template <class S, bool BF, class P>
__device__ __forceinline__ void conv_tc_kernel(const P& p) {
  using namespace conv_tc;
  __align__(16) __shared__ uint16_t As[2][BM * LDS];
  __align__(16) __shared__ uint16_t Bs[2][BN * LDS];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / 2, wn = warp % 2, g = lane >> 2, t = lane & 3;
  const int m0 = int(blockIdx.y) * BM, n0 = int(blockIdx.x) * BN;
  const int am = tid / 2, ak = (tid % 2) * PER;
  const int bn = tid % BN, bk = (tid / BN) * PER;
  const typename P::Row ra = p.row(m0 + am);
  const typename P::Col cb = p.col(n0 + bn);
  const bool ok_r = m0 + am < p.M, ok_c = n0 + bn < p.N;
  // This block's k-tiles [kt0, kt1): all of them unless split-K.
  const int ktiles_all = (p.K + BK - 1) / BK, per = (ktiles_all + p.splits - 1) / p.splits;
  const int kt0 = p.split * per, kt1 = kt0 + per < ktiles_all ? kt0 + per : ktiles_all;
  S va[PER], vb[PER];
  auto gather = [&](int kt) {
    mt_conv_gather_a(p, ra, ok_r, kt * BK + ak, va);
    mt_conv_gather_b(p, cb, ok_c, kt * BK + bk, vb);
  };
  float acc[MI][NI][4];
  MT_CONV_UNROLL
  for (int i = 0; i < MI; ++i)
    MT_CONV_UNROLL
    for (int j = 0; j < NI; ++j)
      MT_CONV_UNROLL
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
  if (kt0 < kt1) gather(kt0);
  for (int kt = kt0; kt < kt1; ++kt) {
    uint16_t* as = As[kt & 1];
    uint16_t* bs = Bs[kt & 1];
    MT_CONV_UNROLL
    for (int e = 0; e < PER; ++e) {
      MT_SH_ST(as[am * LDS + ak + e], mt_conv_bits(va[e]));
      MT_SH_ST(bs[bn * LDS + bk + e], mt_conv_bits(vb[e]));
    }
    __syncthreads();
    if (kt + 1 < kt1) gather(kt + 1);
    MT_CONV_UNROLL
    for (int ks = 0; ks < BK; ks += 16) {
      uint32_t af[MI][4], bfr[NI][2];
      MT_CONV_UNROLL
      for (int i = 0; i < MI; ++i) {
        const uint16_t* r = as + (wm * WM + i * 16 + g) * LDS + ks + 2 * t;
        af[i][0] = mt_conv_pair(r);                // A[g][2t..]
        af[i][1] = mt_conv_pair(r + 8 * LDS);      // A[g+8][2t..]
        af[i][2] = mt_conv_pair(r + 8);            // A[g][2t+8..]
        af[i][3] = mt_conv_pair(r + 8 * LDS + 8);  // A[g+8][2t+8..]
      }
      MT_CONV_UNROLL
      for (int j = 0; j < NI; ++j) {
        const uint16_t* r = bs + (wn * WN + j * 8 + g) * LDS + ks + 2 * t;
        bfr[j][0] = mt_conv_pair(r);      // B[2t..][g]
        bfr[j][1] = mt_conv_pair(r + 8);  // B[2t+8..][g]
      }
      MT_CONV_UNROLL
      for (int i = 0; i < MI; ++i)
        MT_CONV_UNROLL
        for (int j = 0; j < NI; ++j) {
          if (BF)
            mt_mma_m16n8k16_bf16(acc[i][j], af[i], bfr[j], acc[i][j]);
          else
            mt_mma_m16n8k16_f16(acc[i][j], af[i], bfr[j], acc[i][j]);
        }
    }
  }
  // Lane (g, t) holds rows g, g + 8 and columns 2t, 2t + 1 of each 16×8 tile.
  MT_CONV_UNROLL
  for (int i = 0; i < MI; ++i)
    MT_CONV_UNROLL
    for (int q = 0; q < 4; ++q) {
      const int m = m0 + wm * WM + i * 16 + g + 8 * (q >> 1);
      if (m >= p.M) continue;
      MT_CONV_UNROLL
      for (int j = 0; j < NI; ++j) {
        const int n = n0 + wn * WN + j * 8 + 2 * t + (q & 1);
        if (n < p.N) p.store(m, n, acc[i][j][q]);
      }
    }
}

#define MT_CONV_SIMT(dt, T, MINB)                                                                          \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS, MINB)                                  \
      conv2d_fwd_##dt(const T* x, const T* w, const T* bias, T* y, ConvArgs a) {                           \
    conv_simt_kernel<T>(ConvFwd<T>(x, w, bias, y, a, int(blockIdx.z)));                                    \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS, MINB)                                  \
      conv2d_dgrad_##dt(const T* dy, const T* w, T* dx, ConvArgs a) {                                      \
    conv_simt_kernel<T>(ConvDgrad<T>(dy, w, dx, a, int(blockIdx.z)));                                      \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS, MINB)                                  \
      conv2d_wgrad_##dt(const T* x, const T* dy, T* dw, ConvArgs a) {                                      \
    conv_simt_kernel<T>(ConvWgrad<T>(x, dy, dw, a, int(blockIdx.z)));                                      \
  }
// Split-K weight gradient: partial sums (in O = f32, or f64) of `splits` k-ranges into
// ws[splits][w_len]; grid.z = splits·groups.
#define MT_CONV_WGRAD_SPLIT_SIMT(dt, T, MINB)                                                              \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS, MINB)                                  \
      conv2d_wgrad_split_##dt(const T* x, const T* dy, T* ws, ConvArgs a, int64_t splits) {                \
    conv_simt_kernel<T>(ConvWgrad<T, T>(x, dy, ws, a, int(blockIdx.z), int(splits)));                      \
  }
#define MT_CONV_WGRAD_SPLIT_TC(dt, S, BF)                                                                  \
  extern "C" __global__ void __launch_bounds__(conv_tc::THREADS)                                          \
      conv2d_wgrad_split_##dt(const S* x, const S* dy, float* ws, ConvArgs a, int64_t splits) {            \
    conv_tc_kernel<S, BF>(ConvWgrad<S, float>(x, dy, ws, a, int(blockIdx.z), int(splits)));                \
  }
// dw[i] = Σ_{s < splits} ws[s·len + i], summed in split order (deterministic), rounded once.
#define MT_CONV_WGRAD_FINISH(dt, T, O)                                                                     \
  extern "C" __global__ void conv2d_wgrad_finish_##dt(const O* ws, T* dw, int64_t len, int64_t splits) {   \
    MT_GRID_STRIDE(i, len) {                                                                               \
      O acc = ws[i];                                                                                       \
      for (int64_t s = 1; s < splits; ++s) acc += ws[s * len + i];                                         \
      mt_store(dw, i, acc);                                                                                \
    }                                                                                                      \
  }
MT_CONV_WGRAD_SPLIT_SIMT(f32, float, 4)
MT_CONV_WGRAD_SPLIT_SIMT(f64, double, 3)
MT_CONV_WGRAD_SPLIT_TC(bf16, mt_bf16, true)
MT_CONV_WGRAD_SPLIT_TC(f16, mt_f16, false)
MT_CONV_WGRAD_FINISH(f32, float, float)
MT_CONV_WGRAD_FINISH(f64, double, double)
MT_CONV_WGRAD_FINISH(bf16, mt_bf16, float)
MT_CONV_WGRAD_FINISH(f16, mt_f16, float)

// Minimum blocks per SM: 4 for f32 (≤ 64 registers, 32 warps per SM; ptxas spills 4 bytes in
// conv2d_fwd_f32 on sm_90); 3 for f64 (≤ 80; 4 bytes spilled by dgrad/wgrad on sm_90; unbounded
// ptxas takes 114-126 registers, i.e. 2 blocks per SM).
MT_CONV_SIMT(f32, float, 4)
MT_CONV_SIMT(f64, double, 3)

#define MT_CONV_TC(dt, S, BF)                                                                              \
  extern "C" __global__ void __launch_bounds__(conv_tc::THREADS)                                          \
      conv2d_fwd_##dt(const S* x, const S* w, const S* bias, S* y, ConvArgs a) {                           \
    conv_tc_kernel<S, BF>(ConvFwd<S>(x, w, bias, y, a, int(blockIdx.z)));                                  \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_tc::THREADS)                                          \
      conv2d_dgrad_##dt(const S* dy, const S* w, S* dx, ConvArgs a) {                                      \
    conv_tc_kernel<S, BF>(ConvDgrad<S>(dy, w, dx, a, int(blockIdx.z)));                                    \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_tc::THREADS)                                          \
      conv2d_wgrad_##dt(const S* x, const S* dy, S* dw, ConvArgs a) {                                      \
    conv_tc_kernel<S, BF>(ConvWgrad<S>(x, dy, dw, a, int(blockIdx.z)));                                    \
  }
MT_CONV_TC(bf16, mt_bf16, true)
MT_CONV_TC(f16, mt_f16, false)
