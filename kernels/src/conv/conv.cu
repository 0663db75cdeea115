// Implicit-GEMM 2-d convolution (NCHW): forward, input gradient (dgrad) and weight gradient (wgrad).
//
// Semantics mirror the CPU `kernels::conv` entry points (conv/mod.rs): buffers are contiguous
// row-major, x/dx [n, c_in, h, w], w/dw [c_out, cpg, kh, kw], y/dy [n, c_out, oh, ow], bias/db
// [c_out]; every kernel overwrites its output. Each is one GEMM per channel group g (blockIdx.z),
// never materialising the patch matrix: the operand tiles are gathered from the NCHW tensors while
// they are loaded (out-of-range taps read as 0), so k = (channel, ki, kj) and the pixel index are
// decomposed on the fly.
//
//   forward  C[opg × n·oh·ow]   = W_g [opg × cpg·kh·kw] · col(x)_g [cpg·kh·kw × n·oh·ow] (+ bias)
//   dgrad    C[cpg × n·h·w]     = W_gᵀ-gather [cpg × opg·kh·kw] · dycol_g [opg·kh·kw × n·h·w]
//            where dycol(co, ki, kj ; ih, iw) = dy[co, (ih + ph − ki·dh) / sh, (iw + pw − kj·dw) / sw]
//            when both divisions are exact and in range, else 0 (the zero-inserted positions of a
//            strided conv's transpose are skipped by this validity check: no flip, no scatter);
//   wgrad    C[opg × cpg·kh·kw] = dy_g [opg × n·oh·ow] · col(x)_gᵀ [n·oh·ow × cpg·kh·kw]
//            (each block owns its C tile and runs the whole reduction: deterministic, no atomics).
//
// Kernels (argument lists and launch shapes in conv/cuda.rs):
//  * conv2d_{fwd,dgrad,wgrad}_{f32,f64}: SIMT, 256 threads, block tile 64×64×8, 4×4 micro-tile per
//    thread, exact FMA accumulation in the element type.
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
// `a(row, k)` / `b(col, k)` return the storage value (only called for m < M, n < N, k < K); and
// `store(m, n, v)` writes C in the compute type (only called in range).

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
  __device__ ConvFwd(const S* x_, const S* w_, const S* b_, S* y_, const ConvArgs& a, int g_)
      : x(x_), w(w_), bias(b_), y(y_), d(mt_conv_dims(a)), g(g_) {
    M = d.opg, N = d.n * d.ohw, K = d.cpg * d.khw;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int iy0, ix0; };
  __device__ __forceinline__ Row row(int m) const { return Row{w + int64_t(g * d.opg + m) * K}; }
  __device__ __forceinline__ S a(const Row& r, int k) const { return r.p[k]; }
  __device__ __forceinline__ Col col(int n) const {
    const int img = n / d.ohw, pix = n - img * d.ohw, oy = pix / d.ow, ox = pix - oy * d.ow;
    return Col{(int64_t(img) * d.c_in + int64_t(g) * d.cpg) * d.hw, oy * d.sh - d.ph, ox * d.sw - d.pw};
  }
  __device__ __forceinline__ S b(const Col& c, int k) const {
    const int ci = k / d.khw, rem = k - ci * d.khw, ki = rem / d.kw, kj = rem - ki * d.kw;
    const int ih = c.iy0 + ki * d.dh, iw = c.ix0 + kj * d.dw;
    if (unsigned(ih) >= unsigned(d.h) || unsigned(iw) >= unsigned(d.w)) return mt_conv_zero<S>();
    return x[c.base + int64_t(ci) * d.hw + ih * d.w + iw];
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
  __device__ ConvDgrad(const S* dy_, const S* w_, S* dx_, const ConvArgs& a, int g_)
      : dy(dy_), w(w_), dx(dx_), d(mt_conv_dims(a)), g(g_) {
    M = d.cpg, N = d.n * d.hw, K = d.opg * d.khw, wrow = d.cpg * d.khw;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int ty0, tx0; };
  __device__ __forceinline__ Row row(int m) const {
    return Row{w + int64_t(g) * d.opg * wrow + int64_t(m) * d.khw};
  }
  __device__ __forceinline__ S a(const Row& r, int k) const {
    const int co = k / d.khw, kk = k - co * d.khw;
    return r.p[int64_t(co) * wrow + kk];
  }
  __device__ __forceinline__ Col col(int n) const {
    const int img = n / d.hw, pix = n - img * d.hw, ih = pix / d.w, iw = pix - ih * d.w;
    return Col{(int64_t(img) * d.c_out + int64_t(g) * d.opg) * d.ohw, ih + d.ph, iw + d.pw};
  }
  __device__ __forceinline__ S b(const Col& c, int k) const {
    const int co = k / d.khw, rem = k - co * d.khw, ki = rem / d.kw, kj = rem - ki * d.kw;
    const int ty = c.ty0 - ki * d.dh, tx = c.tx0 - kj * d.dw;
    if (ty < 0 || tx < 0) return mt_conv_zero<S>();
    const int oy = ty / d.sh, ox = tx / d.sw;
    if (oy * d.sh != ty || ox * d.sw != tx || oy >= d.oh || ox >= d.ow) return mt_conv_zero<S>();
    return dy[c.base + int64_t(co) * d.ohw + oy * d.ow + ox];
  }
  __device__ __forceinline__ void store(int m, int n, C v) const {
    const int img = n / d.hw, pix = n - img * d.hw;
    mt_store(dx, (int64_t(img) * d.c_in + int64_t(g) * d.cpg + m) * d.hw + pix, v);
  }
};

// Weight gradient. A(co, (img, oy, ox)) = dy[img, g·opg + co, oy, ox]; B((img, oy, ox), (ci, ki, kj))
// = x[img, g·cpg + ci, oy·sh + ki·dh − ph, ox·sw + kj·dw − pw]; C = dw_g.
template <class S> struct ConvWgrad {
  typedef typename MtCompute<S>::type C;
  const S* x;
  const S* dy;
  S* dw;
  MtConvDims d;
  int g;
  int M, N, K;
  __device__ ConvWgrad(const S* x_, const S* dy_, S* dw_, const ConvArgs& a, int g_)
      : x(x_), dy(dy_), dw(dw_), d(mt_conv_dims(a)), g(g_) {
    M = d.opg, N = d.cpg * d.khw, K = d.n * d.ohw;
  }
  struct Row { const S* p; };
  struct Col { int64_t base; int ky, kx; };
  __device__ __forceinline__ Row row(int m) const { return Row{dy + int64_t(g * d.opg + m) * d.ohw}; }
  __device__ __forceinline__ S a(const Row& r, int k) const {
    const int img = k / d.ohw, pix = k - img * d.ohw;
    return r.p[int64_t(img) * d.c_out * d.ohw + pix];
  }
  __device__ __forceinline__ Col col(int n) const {
    const int ci = n / d.khw, rem = n - ci * d.khw, ki = rem / d.kw, kj = rem - ki * d.kw;
    return Col{(int64_t(g) * d.cpg + ci) * d.hw, ki * d.dh - d.ph, kj * d.dw - d.pw};
  }
  __device__ __forceinline__ S b(const Col& c, int k) const {
    const int img = k / d.ohw, pix = k - img * d.ohw, oy = pix / d.ow, ox = pix - oy * d.ow;
    const int ih = oy * d.sh + c.ky, iw = ox * d.sw + c.kx;
    if (unsigned(ih) >= unsigned(d.h) || unsigned(iw) >= unsigned(d.w)) return mt_conv_zero<S>();
    return x[int64_t(img) * d.c_in * d.hw + c.base + ih * d.w + iw];
  }
  __device__ __forceinline__ void store(int m, int n, C v) const {
    mt_store(dw, int64_t(g * d.opg + m) * N + n, v);
  }
};

// ------------------------------------------------------------------------------------------------
// SIMT implicit GEMM (f32, f64)
// ------------------------------------------------------------------------------------------------
namespace conv_simt {
constexpr int THREADS = 256, BM = 64, BN = 64, BK = 8, TM = 4, TN = 4, PAD = 4;
constexpr int LDA = BM + PAD, LDB = BN + PAD;
}  // namespace conv_simt

// Thread t loads A elements (row t/8 and t/8 + 32, k = t%8) and B elements (column t%64, k = t/64
// and t/64 + 4) of each k-tile: with 4 elements of padding, the A stores (8 lanes along k, 4 along
// m) hit distinct banks 4k + m; the B stores and gathers are coalesced along the pixel index n.
template <class T, class P>
__device__ __forceinline__ void conv_simt_kernel(const P& p) {
  using namespace conv_simt;
  static_assert((BM / TM) * (BN / TN) == THREADS, "one micro-tile per thread");
  __shared__ T As[2][BK * LDA];
  __shared__ T Bs[2][BK * LDB];
  const int tid = threadIdx.x, tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int m0 = int(blockIdx.y) * BM, n0 = int(blockIdx.x) * BN;
  const int ak = tid % BK, am = tid / BK;  // rows am, am + 32
  const int bn = tid % BN, bk = tid / BN;  // ks bk, bk + 4
  const typename P::Row r0 = p.row(m0 + am), r1 = p.row(m0 + am + 32);
  const typename P::Col c0 = p.col(n0 + bn);
  const bool ok_r0 = m0 + am < p.M, ok_r1 = m0 + am + 32 < p.M, ok_c = n0 + bn < p.N;
  const int ktiles = (p.K + BK - 1) / BK;
  T va0, va1, vb0, vb1;
  auto gather = [&](int kt) {
    const int ka = kt * BK + ak, kb0 = kt * BK + bk, kb1 = kb0 + 4;
    va0 = ok_r0 && ka < p.K ? p.a(r0, ka) : T(0);
    va1 = ok_r1 && ka < p.K ? p.a(r1, ka) : T(0);
    vb0 = ok_c && kb0 < p.K ? p.b(c0, kb0) : T(0);
    vb1 = ok_c && kb1 < p.K ? p.b(c0, kb1) : T(0);
  };
  T acc[TM][TN];
  MT_CONV_UNROLL
  for (int i = 0; i < TM; ++i)
    MT_CONV_UNROLL
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
  if (ktiles > 0) gather(0);
  for (int kt = 0; kt < ktiles; ++kt) {
    T* as = As[kt & 1];
    T* bs = Bs[kt & 1];
    // This buffer was last read in iteration kt − 2; the barrier of iteration kt − 1 separates them.
    MT_SH_ST(as[ak * LDA + am], va0);
    MT_SH_ST(as[ak * LDA + am + 32], va1);
    MT_SH_ST(bs[bk * LDB + bn], vb0);
    MT_SH_ST(bs[(bk + 4) * LDB + bn], vb1);
    __syncthreads();
    if (kt + 1 < ktiles) gather(kt + 1);  // next tile's loads in flight during the FMAs
    MT_CONV_UNROLL
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
      MT_CONV_UNROLL
      for (int i = 0; i < TM; ++i) a[i] = MT_SH_LD(as[kk * LDA + ty * TM + i]);
      MT_CONV_UNROLL
      for (int j = 0; j < TN; ++j) b[j] = MT_SH_LD(bs[kk * LDB + tx * TN + j]);
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
  const int ktiles = (p.K + BK - 1) / BK;
  uint16_t va[PER], vb[PER];
  auto gather = [&](int kt) {
    const int ka = kt * BK + ak, kb = kt * BK + bk;
    MT_CONV_UNROLL
    for (int e = 0; e < PER; ++e) {
      va[e] = ok_r && ka + e < p.K ? mt_conv_bits(p.a(ra, ka + e)) : uint16_t(0);
      vb[e] = ok_c && kb + e < p.K ? mt_conv_bits(p.b(cb, kb + e)) : uint16_t(0);
    }
  };
  float acc[MI][NI][4];
  MT_CONV_UNROLL
  for (int i = 0; i < MI; ++i)
    MT_CONV_UNROLL
    for (int j = 0; j < NI; ++j)
      MT_CONV_UNROLL
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
  if (ktiles > 0) gather(0);
  for (int kt = 0; kt < ktiles; ++kt) {
    uint16_t* as = As[kt & 1];
    uint16_t* bs = Bs[kt & 1];
    MT_CONV_UNROLL
    for (int e = 0; e < PER; ++e) {
      MT_SH_ST(as[am * LDS + ak + e], va[e]);
      MT_SH_ST(bs[bn * LDS + bk + e], vb[e]);
    }
    __syncthreads();
    if (kt + 1 < ktiles) gather(kt + 1);
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

#define MT_CONV_SIMT(dt, T)                                                                                \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS)                                        \
      conv2d_fwd_##dt(const T* x, const T* w, const T* bias, T* y, ConvArgs a) {                           \
    conv_simt_kernel<T>(ConvFwd<T>(x, w, bias, y, a, int(blockIdx.z)));                                    \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS)                                        \
      conv2d_dgrad_##dt(const T* dy, const T* w, T* dx, ConvArgs a) {                                      \
    conv_simt_kernel<T>(ConvDgrad<T>(dy, w, dx, a, int(blockIdx.z)));                                      \
  }                                                                                                        \
  extern "C" __global__ void __launch_bounds__(conv_simt::THREADS)                                        \
      conv2d_wgrad_##dt(const T* x, const T* dy, T* dw, ConvArgs a) {                                      \
    conv_simt_kernel<T>(ConvWgrad<T>(x, dy, dw, a, int(blockIdx.z)));                                      \
  }
MT_CONV_SIMT(f32, float)
MT_CONV_SIMT(f64, double)

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
