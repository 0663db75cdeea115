// Tiled GEMM kernels: C = alpha·op(A)·op(B) + beta·C, batched, over strided operands.
//
// Semantics mirror the CPU `kernels::gemm::gemm_batched` (gemm/mod.rs): element (i, j) of matrix `z` of
// an operand X lives at X[x_off + z·x_bs + i·x_rs + j·x_cs] (any transposition is a choice of strides;
// a batch stride of 0 broadcasts the operand). A is m×k, B is k×n, C is m×n and is written through its
// strides. beta == 0 overwrites C without reading it (NaNs in C are ignored, as in BLAS); k == 0 gives
// C = beta·C. Preconditions (checked by the host side, see gemm/cuda.rs): C does not overlap A or B,
// distinct (i, j) of one C matrix are distinct elements, and the C matrices of distinct batch members
// are either disjoint or all the same matrix (c_bs == 0, then the launch uses gridDim.z == 1 and each
// block applies the batch members to its tile one after another, in order, like the CPU).
//
// Kernels (argument lists in gemm/cuda.rs):
//  * gemm_f32, gemm_f64: SIMT, 256 threads, block tile 128×128×8 with an 8×8 micro-tile per thread
//    (f32) or 64×64×16 with 4×4 (f64), accumulation with fused multiply-add in the element type.
//  * gemm_bf16, gemm_f16 (C in the input dtype, rounded once from f32) and gemm_bf16_out_f32,
//    gemm_f16_out_f32 (C in f32): tensor cores through mma.sync.m16n8k16 (mma.cuh), block tile
//    128×128×32, 256 threads = 8 warps in a 2 (M) × 4 (N) grid, warp tile 64×32 = 4×4 mma tiles, f32
//    accumulators. alpha, beta and the epilogue are f32.
// Both families stage A and B tiles in shared memory, zero-fill every element outside m, n or k (so
// partial tiles on every edge are exact), and mask the C writes. The SIMT kernels double-buffer
// shared memory, filled by one element-sized cp.async per element (any strides). The tensor-core
// kernels double-buffer shared memory (2 stages, 40 KB, one __syncthreads per k-tile) and stage each
// operand with its unit-stride index contiguous (As[m][k] or At[k][m], Bs[n][k] or Bt[k][n]; fragments
// through ldmatrix, .trans for the transposed layouts), filled by 16-byte cp.async when the rows are
// 16-byte aligned, otherwise by the strided loader through registers (any strides, stored after the
// math). Performance notes and register counts: gemm/cuda.rs.
#include "common.cuh"
#include "cp_async.cuh"
#include "mma.cuh"

#ifdef __CUDACC__
#define MT_UNROLL _Pragma("unroll")
#else
#define MT_UNROLL _Pragma("GCC unroll 16")
#endif

// Mirrors `kernels::gemm::cuda::GemmArgs` (repr(C)); keep the two in sync.
struct GemmArgs {
  int64_t m, n, k, batch;
  int64_t a_off, a_rs, a_cs, a_bs;
  int64_t b_off, b_rs, b_cs, b_bs;
  int64_t c_off, c_rs, c_cs, c_bs;
  double alpha, beta;
};

__device__ __forceinline__ float mt_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double mt_fma(double a, double b, double c) { return fma(a, b, c); }

// Which index of a tile load varies fastest across consecutive threads: the one whose global stride is
// 1 (or the smaller one), so that a warp's loads are coalesced for both plain and transposed operands.
__device__ __forceinline__ bool mt_second_index_fast(int64_t first_stride, int64_t second_stride) {
  if (second_stride == 1) return true;
  if (first_stride == 1) return false;
  return second_stride <= first_stride;
}

// How one thread stages its share of an operand tile of ROWS (m for A, n for B) × BK (k) elements:
// element e = tid + THREADS·r (r = 0..PER-1) of the tile, with consecutive threads walking k when
// `kfast` (k-contiguous operand) and the rows otherwise. Either way one coordinate is fixed per thread
// and the other advances by a constant per r, so the global and shared offsets are affine in r and
// the loader keeps a handful of registers instead of per-element index arrays.
struct MtTileMap {
  int row, k;       // tile coordinates of element r = 0
  int drow, dk;     // their step per r (one of the two is 0)
  int64_t g, dg;    // global offset of element r = 0 in k-tile 0 (relative to the matrix) and per r
  int s, ds;        // shared-memory offset of element r = 0 and per r
};
template <int ROWS, int BK, int THREADS>
__device__ __forceinline__ MtTileMap mt_tile_map(int tid, bool kfast, int64_t row0, int64_t row_stride,
                                                 int64_t k_stride, int s_row, int s_k) {
  static_assert(THREADS % BK == 0 && THREADS % ROWS == 0, "tile shape");
  MtTileMap t;
  if (kfast) {
    t.k = tid % BK, t.row = tid / BK, t.dk = 0, t.drow = THREADS / BK;
  } else {
    t.row = tid % ROWS, t.k = tid / ROWS, t.drow = 0, t.dk = THREADS / ROWS;
  }
  t.g = (row0 + t.row) * row_stride + t.k * k_stride;
  t.dg = t.drow * row_stride + t.dk * k_stride;
  t.s = t.row * s_row + t.k * s_k;
  t.ds = t.drow * s_row + t.dk * s_k;
  return t;
}

__device__ __forceinline__ uint16_t mt_raw(const mt_bf16* p) { return p->bits; }
__device__ __forceinline__ uint16_t mt_raw(const mt_f16* p) { return p->bits; }

// Stages this thread's PER elements of k-tile `kbase` straight into shared memory, one element-sized
// cp.async each (any strides; elements outside rows × K are zero-filled without a read): nothing is
// held in registers while the copies are in flight.
template <class T, int PER>
__device__ __forceinline__ void mt_tile_async_elems(T* smem, const T* base, const MtTileMap& t, int64_t row0,
                                                    int64_t rows, int64_t kbase, int64_t K, int64_t k_stride) {
  const int64_t g = t.g + kbase * k_stride;
  MT_UNROLL
  for (int r = 0; r < PER; ++r) {
    const int64_t row = row0 + t.row + r * t.drow, k = kbase + t.k + r * t.dk;
    const bool ok = row < rows && k < K;
    mt_cp_async_small<sizeof(T)>(smem + t.s + r * t.ds, ok ? base + (g + r * t.dg) : base,
                                 ok ? unsigned(sizeof(T)) : 0u);
  }
}

// Loads this thread's PER 16-bit elements of k-tile `kbase` into registers, two per 32-bit register
// (element 2q in the low half), zero outside rows × K; mt_tile_store16 writes them to the staged tile.
// The tensor-core kernels' fallback for operands that cannot use 16-byte cp.async.
template <class S, int PER>
__device__ __forceinline__ void mt_tile_load16(uint32_t (&reg)[PER / 2], const S* base, const MtTileMap& t,
                                               int64_t row0, int64_t rows, int64_t kbase, int64_t K,
                                               int64_t k_stride) {
  const int64_t g = t.g + kbase * k_stride;
  MT_UNROLL
  for (int q = 0; q < PER / 2; ++q) {
    uint32_t v = 0;
    MT_UNROLL
    for (int h = 0; h < 2; ++h) {
      const int r = 2 * q + h;
      const int64_t row = row0 + t.row + r * t.drow, k = kbase + t.k + r * t.dk;
      if (row < rows && k < K) v |= static_cast<uint32_t>(mt_raw(base + (g + r * t.dg))) << (16 * h);
    }
    reg[q] = v;
  }
}
template <int PER>
__device__ __forceinline__ void mt_tile_store16(const uint32_t (&reg)[PER / 2], uint16_t* smem, const MtTileMap& t) {
  MT_UNROLL
  for (int q = 0; q < PER / 2; ++q) {
    smem[t.s + (2 * q) * t.ds] = static_cast<uint16_t>(reg[q] & 0xffffu);
    smem[t.s + (2 * q + 1) * t.ds] = static_cast<uint16_t>(reg[q] >> 16);
  }
}

// ------------------------------------------------------------------------------------------------
// SIMT kernel (f32, f64)
// ------------------------------------------------------------------------------------------------
namespace simt {
constexpr int THREADS = 256;  // 16 × 16 threads, each a TM × TN micro-tile
// Tile configurations: f32 128×128×8 with 8×8 micro-tiles (16 shared loads per 64 FMA), f64
// 64×64×16 with 4×4 (the 8×8 f64 accumulators would not fit in registers next to the rest).
// Thread (tx, ty) owns rows ty·TM/2 + i and BM/2 + ty·TM/2 + i (i < TM/2), columns likewise with tx
// and TN: its TM/2 consecutive values of a shared row are one 16-byte vector load (float4 / double2),
// a warp reads 2 distinct A vectors (broadcast) and 16 consecutive B vectors (conflict-free), and
// its C writes cover 64 (f32) consecutive columns of a row.
// Shared rows (As[k][m], Bs[k][n]) are padded by PAD elements: 16-byte aligned rows for the vector
// loads, and with 4 floats of padding the loader's stores from a k-contiguous operand (8 lanes walk
// k, 4 walk m) hit banks 4k + m, all distinct (unpadded: 8-way conflicts).
template <class T> struct Cfg;
template <> struct Cfg<float> {
  static constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8, PAD = 4;
};
template <> struct Cfg<double> {
  static constexpr int BM = 64, BN = 64, BK = 16, TM = 4, TN = 4, PAD = 2;
};
}  // namespace simt

// N = 16 / sizeof(T) consecutive elements of shared memory (16-byte aligned) in one vector load.
__device__ __forceinline__ void mt_lds_vec(const float* p, float (&v)[4]) {
#ifdef __CUDACC__
  const float4 x = *reinterpret_cast<const float4*>(p);
  v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
#else
  for (int i = 0; i < 4; ++i) v[i] = p[i];
#endif
}
__device__ __forceinline__ void mt_lds_vec(const double* p, double (&v)[2]) {
#ifdef __CUDACC__
  const double2 x = *reinterpret_cast<const double2*>(p);
  v[0] = x.x, v[1] = x.y;
#else
  for (int i = 0; i < 2; ++i) v[i] = p[i];
#endif
}

// The same in global memory (16-byte aligned), for the C tile of the SIMT kernels.
__device__ __forceinline__ void mt_ldg_vec(const float* p, float (&v)[4]) { mt_lds_vec(p, v); }
__device__ __forceinline__ void mt_ldg_vec(const double* p, double (&v)[2]) { mt_lds_vec(p, v); }
__device__ __forceinline__ void mt_stg_vec(float* p, const float (&v)[4]) {
#ifdef __CUDACC__
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
#else
  for (int i = 0; i < 4; ++i) p[i] = v[i];
#endif
}
__device__ __forceinline__ void mt_stg_vec(double* p, const double (&v)[2]) {
#ifdef __CUDACC__
  *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
#else
  for (int i = 0; i < 2; ++i) p[i] = v[i];
#endif
}

template <class T>
__device__ __forceinline__ void gemm_simt(const T* __restrict__ A, const T* __restrict__ B, T* C, const GemmArgs& p) {
  using Cf = simt::Cfg<T>;
  constexpr int BM = Cf::BM, BN = Cf::BN, BK = Cf::BK, TM = Cf::TM, TN = Cf::TN, PAD = Cf::PAD;
  constexpr int THREADS = simt::THREADS, HM = TM / 2, HN = TN / 2;
  constexpr int LDA = BM + PAD, LDB = BN + PAD;
  constexpr int A_PER = BM * BK / THREADS, B_PER = BK * BN / THREADS;
  static_assert((BM / TM) * (BN / TN) == THREADS, "one micro-tile per thread");
  static_assert(HM * sizeof(T) == 16 && HN * sizeof(T) == 16, "half micro-tile rows are 16-byte vectors");
  static_assert((LDA * sizeof(T)) % 16 == 0 && (LDB * sizeof(T)) % 16 == 0, "16-byte aligned shared rows");
  // Two stages of both tiles; stage s holds As at smem[s·STAGE], Bs right after it.
  constexpr int STAGE = BK * (LDA + LDB);
  __align__(16) __shared__ T smem[2 * STAGE];
  const int tid = threadIdx.x;
  const int tx = tid % (BN / TN), ty = tid / (BN / TN);
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
  const bool a_kfast = mt_second_index_fast(p.a_rs, p.a_cs);  // A(m, k): k fastest?
  const bool b_kfast = !mt_second_index_fast(p.b_rs, p.b_cs);  // B(k, n): k fastest?
  // Shared tiles are k-major: As[k][m] at k·LDA + m, Bs[k][n] at k·LDB + n.
  const MtTileMap am = mt_tile_map<BM, BK, THREADS>(tid, a_kfast, m0, p.a_rs, p.a_cs, 1, LDA);
  const MtTileMap bm = mt_tile_map<BN, BK, THREADS>(tid, b_kfast, n0, p.b_cs, p.b_rs, 1, LDB);
  const int64_t ktiles = (K + BK - 1) / BK;

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    const T* Ab = A + p.a_off + bz * p.a_bs;
    const T* Bb = B + p.b_off + bz * p.b_bs;
    T acc[TM][TN];
    MT_UNROLL
    for (int i = 0; i < TM; ++i)
      MT_UNROLL
      for (int j = 0; j < TN; ++j) acc[i][j] = T(0);
    __syncthreads();  // the previous batch member is done with both stages
    if (ktiles > 0) {  // k-tile 0 into stage 0
      mt_tile_async_elems<T, A_PER>(smem, Ab, am, m0, M, 0, K, p.a_cs);
      mt_tile_async_elems<T, B_PER>(smem + BK * LDA, Bb, bm, n0, N, 0, K, p.b_rs);
      mt_cp_async_commit();
    }
    for (int64_t kt = 0; kt < ktiles; ++kt) {
      const T* As = smem + (kt & 1) * STAGE;
      const T* Bs = As + BK * LDA;
      mt_cp_async_wait_all();  // this thread's copies of tile kt have landed ...
      __syncthreads();         // ... everyone's, and everyone is done with the other stage
      if (kt + 1 < ktiles) {   // tile kt+1 in flight during this tile's FMAs
        T* An = smem + ((kt + 1) & 1) * STAGE;
        mt_tile_async_elems<T, A_PER>(An, Ab, am, m0, M, (kt + 1) * BK, K, p.a_cs);
        mt_tile_async_elems<T, B_PER>(An + BK * LDA, Bb, bm, n0, N, (kt + 1) * BK, K, p.b_rs);
        mt_cp_async_commit();
      }
      MT_UNROLL
      for (int kk = 0; kk < BK; ++kk) {
        T a[TM], b[TN], v[HM > HN ? HM : HN];
        mt_lds_vec(&As[kk * LDA + ty * HM], v);
        MT_UNROLL
        for (int i = 0; i < HM; ++i) a[i] = v[i];
        mt_lds_vec(&As[kk * LDA + BM / 2 + ty * HM], v);
        MT_UNROLL
        for (int i = 0; i < HM; ++i) a[HM + i] = v[i];
        mt_lds_vec(&Bs[kk * LDB + tx * HN], v);
        MT_UNROLL
        for (int j = 0; j < HN; ++j) b[j] = v[j];
        mt_lds_vec(&Bs[kk * LDB + BN / 2 + tx * HN], v);
        MT_UNROLL
        for (int j = 0; j < HN; ++j) b[HN + j] = v[j];
        MT_UNROLL
        for (int i = 0; i < TM; ++i)
          MT_UNROLL
          for (int j = 0; j < TN; ++j) acc[i][j] = mt_fma(a[i], b[j], acc[i][j]);
      }
    }
    // Epilogue: each micro-tile row is two runs of HN consecutive columns; a run that is complete,
    // unit-stride and 16-byte aligned is read and written as one vector, otherwise element-wise.
    T* Cb = C + p.c_off + bz * p.c_bs;
    MT_UNROLL
    for (int i = 0; i < TM; ++i) {
      const int64_t row = m0 + (i < HM ? ty * HM + i : BM / 2 + ty * HM + (i - HM));
      if (row >= M) continue;
      T* Crow = Cb + row * p.c_rs;
      MT_UNROLL
      for (int h = 0; h < 2; ++h) {
        const int64_t col0 = n0 + h * (BN / 2) + tx * HN;
        T v[HN];
        MT_UNROLL
        for (int e = 0; e < HN; ++e) v[e] = K > 0 ? alpha * acc[i][h * HN + e] : T(0);
        T* c0 = Crow + col0 * p.c_cs;
        if (p.c_cs == 1 && col0 + HN <= N && (reinterpret_cast<uintptr_t>(c0) & 15u) == 0) {
          if (beta != T(0)) {
            T old[HN];
            mt_ldg_vec(c0, old);
            MT_UNROLL
            for (int e = 0; e < HN; ++e) v[e] += beta * old[e];
          }
          mt_stg_vec(c0, v);
        } else {
          MT_UNROLL
          for (int e = 0; e < HN; ++e) {
            if (col0 + e >= N) continue;
            T* c = c0 + e * p.c_cs;
            *c = beta != T(0) ? v[e] + beta * *c : v[e];
          }
        }
      }
    }
  }
}

// C[0..2) = v + beta·C[0..2) (beta == 0: C is not read) as one aligned 2-element access.
__device__ __forceinline__ void mt_store_pair(float* c, const float (&v)[2], float beta) {
  float x0 = v[0], x1 = v[1];
#ifdef __CUDACC__
  if (beta != 0.f) {
    const float2 o = *reinterpret_cast<const float2*>(c);
    x0 += beta * o.x, x1 += beta * o.y;
  }
  *reinterpret_cast<float2*>(c) = make_float2(x0, x1);
#else
  if (beta != 0.f) x0 += beta * c[0], x1 += beta * c[1];
  c[0] = x0, c[1] = x1;
#endif
}
template <class S16>
__device__ __forceinline__ void mt_store_pair(S16* c, const float (&v)[2], float beta) {
  float x0 = v[0], x1 = v[1];
  if (beta != 0.f) x0 += beta * mt_load(c, 0), x1 += beta * mt_load(c, 1);
  S16 h[2];
  mt_store(h, 0, x0);
  mt_store(h, 1, x1);
#ifdef __CUDACC__
  *reinterpret_cast<uint32_t*>(c) = static_cast<uint32_t>(h[0].bits) | (static_cast<uint32_t>(h[1].bits) << 16);
#else
  c[0] = h[0], c[1] = h[1];
#endif
}

// ------------------------------------------------------------------------------------------------
// Tensor-core kernel (bf16, f16 inputs; f32 accumulation)
// ------------------------------------------------------------------------------------------------
namespace tc {
constexpr int BM = 128, BN = 128, BK = 32, THREADS = 256;
constexpr int WARPS_M = 2, WARPS_N = 4, WM = BM / WARPS_M, WN = BN / WARPS_N;  // warp tile 64×32
constexpr int MI = WM / 16, NI = WN / 8;                                        // 4×4 mma tiles
// Shared tiles keep the operand's contiguous index contiguous, so that 16-byte copies can fill them,
// and every fragment comes from one ldmatrix.x4 (four 8×8 matrices, each phase reading 8 rows of 16
// bytes):
//  * k-major "MK" (A row-major / B column-major, the mma's native "row"/"col" order): As[m][k],
//    Bs[n][k], rows padded from 32 to 40 halves (80 bytes = 20 banks); plain ldmatrix. 8 rows 20 words
//    apart start at banks 0, 20, 8, 28, 16, 4, 24, 12 and cover all 32 banks: conflict-free
//    (unpadded 64-byte rows: 4-way conflicts).
//  * "KM" (A m-contiguous, i.e. a transposed view; B n-contiguous, i.e. row-major): At[k][m],
//    Bt[k][n], rows padded from 128 to 136 halves (68 words); ldmatrix.trans. 8 rows 68 words apart
//    start at banks 4i: conflict-free (unpadded 256-byte rows: 8-way).
// Row starts stay 16-byte aligned (80 = 5·16, 272 = 17·16) for cp.async and ldmatrix.
constexpr int LD = BK + 8;    // MK row length
constexpr int LDT = BM + 8;   // KM row length (BM == BN)
static_assert(BM == BN, "KM row length shared by A and B");
constexpr int A_PER = BM * BK / THREADS;  // 16 halves of A per thread per k-tile (strided loader)
constexpr int B_PER = BK * BN / THREADS;  // 16 of B
constexpr int REGION = BM * LD > BK * LDT ? BM * LD : BK * LDT;  // one operand tile, either layout
constexpr int STAGE = 2 * REGION;  // A then B (20 KB); two stages = 40 KB of static shared memory
}  // namespace tc

// Stages an OUTER × INNER tile of an operand whose INNER index is contiguous (element (o, i) at
// base[o·o_stride + i], every row 16-byte aligned) with 16-byte cp.async copies of 8 halves into
// sm[r·LDS + c]: INNER/8 chunks per row, 2 per thread, consecutive threads along a row. Chunks past
// i_lim are partially or fully zero-filled by the copy's src-size operand, rows past o_lim fully.
template <class S, int OUTER, int INNER, int LDS>
__device__ __forceinline__ void mt_tile_async(uint16_t* sm, const S* base, int tid, int64_t o0, int64_t o_lim,
                                              int64_t o_stride, int64_t i0, int64_t i_lim) {
  using tc::THREADS;
  constexpr int CPR = INNER / 8;
  constexpr int CH = OUTER * CPR / THREADS;
  static_assert(OUTER * CPR % THREADS == 0, "tile shape");
  MT_UNROLL
  for (int c = 0; c < CH; ++c) {
    const int e = tid + THREADS * c;
    const int r = e / CPR, ic = (e % CPR) * 8;
    const int64_t o = o0 + r, i = i0 + ic;
    int64_t n = o < o_lim ? i_lim - i : 0;
    n = n < 0 ? 0 : (n > 8 ? 8 : n);
    const S* src = n > 0 ? base + (o * o_stride + i) : base;  // a valid, aligned address when nothing is read
    mt_cp_async_16(sm + r * LDS + ic, src, static_cast<unsigned>(n * 2));
  }
}

// True when an operand's tiles can be staged with cp.async: its contiguous index has stride 1, and
// every row (of every batch member) starts on a 16-byte boundary.
template <class S>
__device__ __forceinline__ bool mt_async_ok(const S* base, int64_t off, int64_t unit_stride, int64_t row_stride,
                                            int64_t batch_stride) {
  return unit_stride == 1 && row_stride % 8 == 0 && batch_stride % 8 == 0 && off % 8 == 0 &&
         (reinterpret_cast<uintptr_t>(base) & 15u) == 0;
}

template <bool BF>
__device__ __forceinline__ void mt_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  if (BF)
    mt_mma_m16n8k16_bf16(d, a, b, c);
  else
    mt_mma_m16n8k16_f16(d, a, b, c);
}

// One operand's staging: layout (KM or MK), loader (cp.async or strided), and the strided map.
struct MtOperand {
  bool async;
  MtTileMap map;
};

// Issues the loads of k-tile `kb` of A into `sm` (A region of a stage): cp.async now, or strided loads
// into `reg` (stored by mt_stage_store after the math).
template <class S, bool KM>
__device__ __forceinline__ void mt_stage_a(uint16_t* sm, uint32_t (&reg)[tc::A_PER / 2], const S* Ab,
                                           const MtOperand& op, const GemmArgs& p, int tid, int64_t m0,
                                           int64_t kb) {
  using namespace tc;
  if (op.async) {
    if (KM)
      mt_tile_async<S, BK, BM, LDT>(sm, Ab, tid, kb, p.k, p.a_cs, m0, p.m);
    else
      mt_tile_async<S, BM, BK, LD>(sm, Ab, tid, m0, p.m, p.a_rs, kb, p.k);
  } else {
    mt_tile_load16<S, A_PER>(reg, Ab, op.map, m0, p.m, kb, p.k, p.a_cs);
  }
}
template <class S, bool KN>
__device__ __forceinline__ void mt_stage_b(uint16_t* sm, uint32_t (&reg)[tc::B_PER / 2], const S* Bb,
                                           const MtOperand& op, const GemmArgs& p, int tid, int64_t n0,
                                           int64_t kb) {
  using namespace tc;
  if (op.async) {
    if (KN)
      mt_tile_async<S, BK, BN, LDT>(sm, Bb, tid, kb, p.k, p.b_rs, n0, p.n);
    else
      mt_tile_async<S, BN, BK, LD>(sm, Bb, tid, n0, p.n, p.b_cs, kb, p.k);
  } else {
    mt_tile_load16<S, B_PER>(reg, Bb, op.map, n0, p.n, kb, p.k, p.b_rs);
  }
}

// The tensor-core GEMM for one staging layout of each operand: A_KM (At[k][m]) or As[m][k], B_KN
// (Bt[k][n]) or Bs[n][k]. `smem` holds two stages of STAGE halves. Not inlined, with the arguments by
// value: inlining all four layouts into one kernel made ptxas spill ~450 bytes at 255 registers;
// as four calls it allocates each separately (≈ 200 registers, no spills, no stack frame).
template <class S, class O, bool BF, bool A_KM, bool B_KN>
__device__ __noinline__ void gemm_tc_body(const S* __restrict__ A, const S* __restrict__ B, O* C,
                                          const GemmArgs p, uint16_t* smem) {
  using namespace tc;
  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int wm = warp / WARPS_N, wn = warp % WARPS_N;
  const int g = lane >> 2, t = lane & 3;  // mma groupID, threadID_in_group
  const int64_t M = p.m, N = p.n, K = p.k;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM, n0 = static_cast<int64_t>(blockIdx.y) * BN;
  const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
  // Per operand, block-uniform: cp.async straight into shared memory (unit stride along the staged
  // layout's contiguous index, aligned rows), or the strided loader through registers (any strides;
  // its thread→element map walks the unit-stride index, so global loads are coalesced).
  MtOperand oa, ob;
  oa.async = A_KM ? mt_async_ok(A, p.a_off, p.a_rs, p.a_cs, p.a_bs) : mt_async_ok(A, p.a_off, p.a_cs, p.a_rs, p.a_bs);
  ob.async = B_KN ? mt_async_ok(B, p.b_off, p.b_cs, p.b_rs, p.b_bs) : mt_async_ok(B, p.b_off, p.b_rs, p.b_cs, p.b_bs);
  oa.map = mt_tile_map<BM, BK, THREADS>(tid, !A_KM, m0, p.a_rs, p.a_cs, A_KM ? 1 : LD, A_KM ? LDT : 1);
  ob.map = mt_tile_map<BN, BK, THREADS>(tid, !B_KN, n0, p.b_cs, p.b_rs, B_KN ? 1 : LD, B_KN ? LDT : 1);
  const int64_t ktiles = (K + BK - 1) / BK;
  // Warp-uniform: which of this warp's 16-row / 8-column mma tiles intersect the matrix at all.
  const int64_t wrow0 = m0 + wm * WM, wcol0 = n0 + wn * WN;

  for (int64_t bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    const S* Ab = A + p.a_off + bz * p.a_bs;
    const S* Bb = B + p.b_off + bz * p.b_bs;
    float acc[MI][NI][4];
    MT_UNROLL
    for (int i = 0; i < MI; ++i)
      MT_UNROLL
      for (int j = 0; j < NI; ++j)
        MT_UNROLL
        for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.f;
    uint32_t ra[A_PER / 2], rb[B_PER / 2];
    __syncthreads();  // the previous batch member is done with both stages
    if (ktiles > 0) {  // prologue: k-tile 0 into stage 0
      mt_stage_a<S, A_KM>(smem, ra, Ab, oa, p, tid, m0, 0);
      mt_stage_b<S, B_KN>(smem + REGION, rb, Bb, ob, p, tid, n0, 0);
      mt_cp_async_commit();
      if (!oa.async) mt_tile_store16<A_PER>(ra, smem, oa.map);
      if (!ob.async) mt_tile_store16<B_PER>(rb, smem + REGION, ob.map);
    }
    for (int64_t kt = 0; kt < ktiles; ++kt) {
      const uint16_t* As = smem + (kt & 1) * STAGE;
      const uint16_t* Bs = As + REGION;
      uint16_t* An = smem + ((kt + 1) & 1) * STAGE;  // the other stage, for k-tile kt+1
      uint16_t* Bn = An + REGION;
      mt_cp_async_wait_all();  // this thread's copies of tile kt have landed ...
      __syncthreads();         // ... everyone's, and everyone is done computing on the other stage
      const bool more = kt + 1 < ktiles;
      if (more) {  // tile kt+1: async copies in flight during the math; strided loads held in registers
        mt_stage_a<S, A_KM>(An, ra, Ab, oa, p, tid, m0, (kt + 1) * BK);
        mt_stage_b<S, B_KN>(Bn, rb, Bb, ob, p, tid, n0, (kt + 1) * BK);
        mt_cp_async_commit();
      }
      MT_UNROLL
      for (int ks = 0; ks < BK; ks += 16) {
        if (kt * BK + ks >= K) break;  // block-uniform: the rest of this tile is zero padding
        uint32_t af[MI][4], bfr[NI][2];
        MT_UNROLL
        for (int i = 0; i < MI; ++i) {
          const int mb = wm * WM + i * 16;  // first tile row of this m16 tile
          const int mat = lane >> 3;        // lane l addresses row l % 8 of matrix l / 8
          if (A_KM) {
            // At[k][m] through ldmatrix.trans: matrix j covers k rows ks + 0..7 (+8 for j = 2, 3) and m
            // columns mb + 0..7 (+8 for j = 1, 3), giving {a0,a1}, {a2,a3}, {a4,a5}, {a6,a7}.
            const uint16_t* row = As + (ks + (lane & 7) + ((mat & 2) ? 8 : 0)) * LDT + mb + ((mat & 1) ? 8 : 0);
            mt_ldmatrix_x4_trans(af[i], row);
          } else {
            // As[m][k] through ldmatrix: matrix j covers m rows mb + 0..7 (+8 for j = 1, 3) and k
            // columns ks + 0..7 (+8 for j = 2, 3), giving {a0,a1}, {a2,a3}, {a4,a5}, {a6,a7}.
            const uint16_t* row = As + (mb + (lane & 7) + ((mat & 1) ? 8 : 0)) * LD + ks + ((mat & 2) ? 8 : 0);
            mt_ldmatrix_x4(af[i], row);
          }
        }
        if (B_KN) {
          // Bt[k][n] through ldmatrix.trans, two n8 tiles per call: matrix j covers k rows ks + 0..7
          // (+8 for j = 1, 3) and n columns of tile j (j = 0, 1) or j + 1 (j = 2, 3).
          MT_UNROLL
          for (int j = 0; j < NI; j += 2) {
            const int mat = lane >> 3;
            const uint16_t* row = Bs + (ks + (lane & 7) + ((mat & 1) ? 8 : 0)) * LDT + wn * WN + j * 8 + ((mat & 2) ? 8 : 0);
            uint32_t r4[4];
            mt_ldmatrix_x4_trans(r4, row);
            bfr[j][0] = r4[0], bfr[j][1] = r4[1], bfr[j + 1][0] = r4[2], bfr[j + 1][1] = r4[3];
          }
        } else {
          // Bs[n][k] through ldmatrix, two n8 tiles per call: matrix j covers n rows of tile j (j = 0,
          // 1) or j + 1 (j = 2, 3) and k columns ks + 0..7 (+8 for j = 1, 3).
          MT_UNROLL
          for (int j = 0; j < NI; j += 2) {
            const int mat = lane >> 3;
            const uint16_t* row = Bs + (wn * WN + j * 8 + (lane & 7) + ((mat & 2) ? 8 : 0)) * LD + ks + ((mat & 1) ? 8 : 0);
            uint32_t r4[4];
            mt_ldmatrix_x4(r4, row);
            bfr[j][0] = r4[0], bfr[j][1] = r4[1], bfr[j + 1][0] = r4[2], bfr[j + 1][1] = r4[3];
          }
        }
        MT_UNROLL
        for (int i = 0; i < MI; ++i) {
          if (wrow0 + i * 16 >= M) continue;  // warp-uniform: tile entirely below the matrix
          MT_UNROLL
          for (int j = 0; j < NI; ++j) {
            if (wcol0 + j * 8 >= N) continue;  // warp-uniform: entirely right of the matrix
            mt_mma_16816<BF>(acc[i][j], af[i], bfr[j], acc[i][j]);
          }
        }
      }
      if (more) {
        if (!oa.async) mt_tile_store16<A_PER>(ra, An, oa.map);
        if (!ob.async) mt_tile_store16<B_PER>(rb, Bn, ob.map);
      }
    }
    // Epilogue: lane (g, t) holds D rows g and g+8, columns 2t and 2t+1 of each mma tile. Row
    // offsets are formed once per row, to keep 64-bit address math (and register pressure) low; a
    // column pair that is complete, unit-stride and aligned is read/written as one access; beta == 0
    // never reads C.
    O* Cb = C + p.c_off + bz * p.c_bs;
    const int64_t colbase = wcol0 + 2 * t;
    MT_UNROLL
    for (int i = 0; i < MI; ++i)
      MT_UNROLL
      for (int h = 0; h < 2; ++h) {
        const int64_t row = wrow0 + i * 16 + g + 8 * h;
        if (row >= M) continue;
        O* Crow = Cb + row * p.c_rs;
        MT_UNROLL
        for (int j = 0; j < NI; ++j) {
          const int64_t col = colbase + j * 8;
          float v[2];
          MT_UNROLL
          for (int e = 0; e < 2; ++e) v[e] = K > 0 ? alpha * acc[i][j][2 * h + e] : 0.f;
          O* c0 = Crow + col * p.c_cs;
          if (p.c_cs == 1 && col + 1 < N && (reinterpret_cast<uintptr_t>(c0) % (2 * sizeof(O))) == 0) {
            mt_store_pair(c0, v, beta);  // both columns in one 8-byte (f32) or 4-byte (16-bit) access
          } else {
            MT_UNROLL
            for (int e = 0; e < 2; ++e) {
              if (col + e >= N) continue;
              const int64_t idx = e * p.c_cs;
              float x = v[e];
              if (beta != 0.f) x += beta * mt_load(c0, idx);
              mt_store(c0, idx, x);
            }
          }
        }
      }
  }
}

template <class S, class O, bool BF>
__device__ __forceinline__ void gemm_tc(const S* A, const S* B, O* C, const GemmArgs& p) {
  __align__(16) __shared__ uint16_t smem[2 * tc::STAGE];
  // Stage each operand with its unit-stride (or smaller-stride) index contiguous in shared memory.
  const bool a_km = !mt_second_index_fast(p.a_rs, p.a_cs);  // A's m index is the contiguous one
  const bool b_kn = mt_second_index_fast(p.b_rs, p.b_cs);   // B's n index is the contiguous one
  if (a_km) {
    if (b_kn)
      gemm_tc_body<S, O, BF, true, true>(A, B, C, p, smem);
    else
      gemm_tc_body<S, O, BF, true, false>(A, B, C, p, smem);
  } else {
    if (b_kn)
      gemm_tc_body<S, O, BF, false, true>(A, B, C, p, smem);
    else
      gemm_tc_body<S, O, BF, false, false>(A, B, C, p, smem);
  }
}


#define MT_GEMM_SIMT(name, T)                                                                         \
  extern "C" __global__ void __launch_bounds__(simt::THREADS, 2) name(const T* a, const T* b, T* c, GemmArgs p) { \
    gemm_simt<T>(a, b, c, p);                                                                         \
  }
MT_GEMM_SIMT(gemm_f32, float)
MT_GEMM_SIMT(gemm_f64, double)

#define MT_GEMM_TC(name, S, O, BF)                                                                    \
  extern "C" __global__ void __launch_bounds__(tc::THREADS) name(const S* a, const S* b, O* c, GemmArgs p) { \
    gemm_tc<S, O, BF>(a, b, c, p);                                                                    \
  }
MT_GEMM_TC(gemm_bf16, mt_bf16, mt_bf16, true)
MT_GEMM_TC(gemm_bf16_out_f32, mt_bf16, float, true)
MT_GEMM_TC(gemm_f16, mt_f16, mt_f16, false)
MT_GEMM_TC(gemm_f16_out_f32, mt_f16, float, false)

#ifndef __CUDACC__
// Emulator-only probe (compiled for the host tests, absent from the PTX): one warp stages a 16×16 A
// (row-major, bf16 bits) and a 16×8 B (given as Bᵀ, 8×16 row-major) in shared memory in both layouts
// the tensor-core kernels use (As[m][k] / Bs[n][k] through ldmatrix.x4, At[k][m] / Bt[k][n] through
// ldmatrix.x4.trans, addressed exactly as in gemm_tc_body), and writes each lane's registers
// (k-major a[0..4], b[0..2], then the transposed layouts' a[0..4], b[0..2]) to `regs` (12 per lane)
// and D = A·B from the first set to `d` (4 per lane), so the tests can check them against the PTX
// ISA fragment formulas written out independently in Rust.
extern "C" void gemm_emu_probe_fragments(const uint16_t* a, const uint16_t* bt, uint32_t* regs, float* d) {
  __shared__ uint16_t As[16 * 16], At[16 * 16];
  __shared__ uint16_t Bs[16 * 16];  // Bs[n][k]; rows 8..15 repeat rows 0..7 (x4 wants 4 matrices)
  __shared__ uint16_t Bt[16 * 16];  // Bt[k][n]; columns 8..15 repeat columns 0..7
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) {
    const int r = i / 16, c = i % 16;
    As[i] = a[i], At[c * 16 + r] = a[i];
    Bs[i] = bt[i % 128];
    Bt[i] = bt[(c % 8) * 16 + r];  // Bt[k = r][n = c] = B(r, c % 8) = bt[(c % 8)·16 + r]
  }
  __syncthreads();
  const int mat = lane >> 3;
  uint32_t a1[4], b1[4], a2[4], b2[4];
  mt_ldmatrix_x4(a1, As + ((lane & 7) + ((mat & 1) ? 8 : 0)) * 16 + ((mat & 2) ? 8 : 0));
  mt_ldmatrix_x4(b1, Bs + ((lane & 7) + ((mat & 2) ? 8 : 0)) * 16 + ((mat & 1) ? 8 : 0));
  mt_ldmatrix_x4_trans(a2, At + ((lane & 7) + ((mat & 2) ? 8 : 0)) * 16 + ((mat & 1) ? 8 : 0));
  mt_ldmatrix_x4_trans(b2, Bt + ((lane & 7) + ((mat & 1) ? 8 : 0)) * 16 + ((mat & 2) ? 8 : 0));
  const uint32_t bfr[2] = {b1[0], b1[1]};
  const float c[4] = {0.f, 0.f, 0.f, 0.f};
  float out[4];
  mt_mma_m16n8k16_bf16(out, a1, bfr, c);
  for (int i = 0; i < 4; ++i) regs[lane * 12 + i] = a1[i], regs[lane * 12 + 6 + i] = a2[i], d[lane * 4 + i] = out[i];
  for (int i = 0; i < 2; ++i) regs[lane * 12 + 4 + i] = b1[i], regs[lane * 12 + 10 + i] = b2[i];
}
#endif
