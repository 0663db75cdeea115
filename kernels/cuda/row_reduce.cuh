// row_reduce.cuh: "one team per row" helpers shared by the reduce, softmax and norm kernels.
//
// A row of `n` elements is handled by a team of threads: one warp when the row is short
// (n <= MT_WARP_ROW_MAX), otherwise the whole block. Reasoning (no measurement): a warp per row
// needs no shared memory and no __syncthreads, and with ≤ 1024 elements each lane does ≤ 32 loads,
// so many short rows fill the GPU with independent warps; longer rows need more than 32 lanes of
// loads in flight to approach bandwidth, so the block (256 threads) takes one row. Both the kernel
// and the Rust launch helpers use the same threshold, but the kernels stay correct for any grid and
// any block of a multiple of 32 threads (≤ 1024): rows are walked with a grid stride.
#pragma once
#include "common.cuh"
#include "shared_check.cuh"

#define MT_WARP_ROW_MAX 1024

struct MtRowTeam {
  int tid;             // index within the team
  int size;            // threads in the team (32 or blockDim.x)
  int64_t first_row;   // first row of this team
  int64_t row_step;    // rows between this team's consecutive rows
  bool block;          // the team is the whole block (needs __syncthreads)
};

__device__ __forceinline__ MtRowTeam mt_row_team(int64_t n) {
  MtRowTeam t;
  if (n <= MT_WARP_ROW_MAX) {
    const int warps = static_cast<int>(blockDim.x) / 32;
    t.tid = static_cast<int>(threadIdx.x) & 31;
    t.size = 32;
    t.first_row = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / 32;
    t.row_step = static_cast<int64_t>(gridDim.x) * warps;
    t.block = false;
  } else {
    t.tid = static_cast<int>(threadIdx.x);
    t.size = static_cast<int>(blockDim.x);
    t.first_row = blockIdx.x;
    t.row_step = gridDim.x;
    t.block = true;
  }
  return t;
}

struct MtSum {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MtMaxNan {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return mt_max_nan(a, b); }
};
struct MtMinNan {
  template <class T> __device__ __forceinline__ T operator()(T a, T b) const { return mt_min_nan(a, b); }
};

// Shared scratch of the block teams: one slot per warp (≤ 32 warps). 16-byte slots so that one
// buffer serves float, double and pairs.
struct MtTeamScratch {
  double v[32];
  double w[32];
  long long i[32];
};

// Every thread of the team gets op-combination of all the team's `v` (deterministic order: butterfly
// within each warp, then warps 0, 1, … in order). Must be called by the whole team (converged).
template <class T, class Op>
__device__ __forceinline__ T mt_team_reduce(const MtRowTeam& t, T v, Op op, MtTeamScratch& s) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (!t.block) return v;
  T* slot = reinterpret_cast<T*>(s.v);
  __syncthreads();  // earlier readers of the scratch are done
  if ((threadIdx.x & 31) == 0) MT_SH_ST(slot[threadIdx.x / 32], v);
  __syncthreads();
  v = MT_SH_LD(slot[0]);
  const int warps = t.size / 32;
  for (int w = 1; w < warps; ++w) v = op(v, MT_SH_LD(slot[w]));
  return v;
}

// Two sums at once (one round of barriers).
template <class T>
__device__ __forceinline__ void mt_team_sum2(const MtRowTeam& t, T& a, T& b, MtTeamScratch& s) {
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  if (!t.block) return;
  T* sa = reinterpret_cast<T*>(s.v);
  T* sb = reinterpret_cast<T*>(s.w);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    MT_SH_ST(sa[threadIdx.x / 32], a);
    MT_SH_ST(sb[threadIdx.x / 32], b);
  }
  __syncthreads();
  a = MT_SH_LD(sa[0]);
  b = MT_SH_LD(sb[0]);
  for (int w = 1; w < t.size / 32; ++w) {
    a += MT_SH_LD(sa[w]);
    b += MT_SH_LD(sb[w]);
  }
}
