// Tiny kernels that pin down the emulator's semantics (kernels/cuda/emu); driven by emu_tests/mod.rs.
// They are ordinary kernels, so they also compile to PTX; names are prefixed `emutest_`.
#include "common.cuh"
#include "shared_check.cuh"

// out[t] = in[t ^ mask] (shuffle within `width`-lane segments), for one warp-multiple block.
extern "C" __global__ void emutest_shfl_xor(const int* in, int* out, int mask, int width) {
  const int t = threadIdx.x;
  out[t] = __shfl_xor_sync(0xffffffffu, in[t], mask, width);
}

extern "C" __global__ void emutest_shfl_down(const int* in, int* out, int delta, int width) {
  const int t = threadIdx.x;
  out[t] = __shfl_down_sync(0xffffffffu, in[t], static_cast<unsigned>(delta), width);
}

extern "C" __global__ void emutest_shfl_up(const int* in, int* out, int delta, int width) {
  const int t = threadIdx.x;
  out[t] = __shfl_up_sync(0xffffffffu, in[t], static_cast<unsigned>(delta), width);
}

// out[t] = value of lane `src[t]` (taken modulo `width` within the caller's segment).
extern "C" __global__ void emutest_shfl_idx(const int* in, const int* src, int* out, int width) {
  const int t = threadIdx.x;
  out[t] = __shfl_sync(0xffffffffu, in[t], src[t], width);
}

// Double-precision shuffles move all 64 bits.
extern "C" __global__ void emutest_shfl_double(const double* in, double* out) {
  const int t = threadIdx.x;
  out[t] = __shfl_xor_sync(0xffffffffu, in[t], 1);
}

// Per thread: ballot, any, all of pred[t] over its warp.
extern "C" __global__ void emutest_votes(const int* pred, unsigned* ballot, int* any, int* all) {
  const int t = threadIdx.x;
  ballot[t] = __ballot_sync(0xffffffffu, pred[t]);
  any[t] = __any_sync(0xffffffffu, pred[t]);
  all[t] = __all_sync(0xffffffffu, pred[t]);
}

// Rounds of: write shared, barrier, read the neighbour's slot (from another warp at warp edges).
extern "C" __global__ void emutest_sync_neighbour(int* out, int rounds) {
  __shared__ int s[1024];
  const int t = threadIdx.x, n = blockDim.x;
  int v = t;
  for (int r = 0; r < rounds; ++r) {
    MT_SH_ST(s[t], v * 3 + r);
    __syncthreads();
    v = MT_SH_LD(s[(t + 1) % n]);
    __syncthreads();  // everyone has read before the next round overwrites
  }
  out[t] = v;
}

// Threads with t % 3 == 0 return at once; the rest go through two barriers and read a survivor's slot.
extern "C" __global__ void emutest_early_exit(int* out) {
  __shared__ int s[1024];
  const int t = threadIdx.x, n = blockDim.x;
  if (t % 3 == 0) return;
  MT_SH_ST(s[t], t * 7);
  __syncthreads();
  int j = (t + 1) % n;
  if (j % 3 == 0) j = (j + 1) % n;
  const int v = MT_SH_LD(s[j]);
  __syncthreads();
  out[t] = v;
}

// Every thread of the grid adds 1 (int), 0.5 (float) and 0.25 (double) to one address each.
extern "C" __global__ void emutest_atomic(int* ci, float* cf, double* cd, unsigned long long* cu) {
  atomicAdd(ci, 1);
  atomicAdd(cf, 0.5f);
  atomicAdd(cd, 0.25);
  atomicAdd(cu, 1ull);
}

// Writes the thread's coordinates at its global linear index (x fastest, then y, z; blocks likewise).
extern "C" __global__ void emutest_indices(int* out) {
  const int bx = blockDim.x, by = blockDim.y, bz = blockDim.z;
  const int threads = bx * by * bz;
  const int block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int local = threadIdx.x + bx * (threadIdx.y + by * threadIdx.z);
  int* o = out + 6 * (static_cast<int64_t>(block) * threads + local);
  o[0] = threadIdx.x;
  o[1] = threadIdx.y;
  o[2] = threadIdx.z;
  o[3] = blockIdx.x;
  o[4] = blockIdx.y;
  o[5] = blockIdx.z;
  if (block == 0 && local == 0) {
    out[-6] = gridDim.x;
    out[-5] = gridDim.y;
    out[-4] = gridDim.z;
    out[-3] = bx;
    out[-2] = by;
    out[-1] = bz;
  }
}

// Reads dynamic shared memory before writing it (the emulator fills it with 0xFF), then checks that
// it is private per block: thread 0 writes the block id and the block reads it back.
extern "C" __global__ void emutest_dyn_shared(unsigned* before, unsigned* after, int words) {
  MT_DYNAMIC_SHARED(unsigned, s);
  const int t = threadIdx.x;
  for (int i = t; i < words; i += blockDim.x) before[blockIdx.x * words + i] = s[i];
  __syncthreads();
  for (int i = t; i < words; i += blockDim.x) s[i] = blockIdx.x * 1000u + i;
  __syncthreads();
  for (int i = t; i < words; i += blockDim.x) after[blockIdx.x * words + i] = s[(i + 1) % words];
}

// A block-wide sum where the last warp is partial: warp butterflies over the live lanes (lanes past
// the end of the block read as 0 in the emulator's gather; on a GPU the kernel would mask them), then
// one slot per warp in shared memory. Also records each warp's ballot of "true" (its live mask).
extern "C" __global__ void emutest_partial_warp(const int* in, int* sum, unsigned* live) {
  __shared__ int warp_sums[32];
  const int t = threadIdx.x;
  const unsigned mask = __ballot_sync(0xffffffffu, 1);
  int v = in[t];
  for (int o = 16; o > 0; o >>= 1) {
    const int src = (t & 31) ^ o;
    const int other = __shfl_xor_sync(mask, v, o);
    if ((mask >> src) & 1u) v += other;
  }
  if ((t & 31) == 0) {
    MT_SH_ST(warp_sums[t / 32], v);
    live[t / 32] = mask;
  }
  __syncthreads();
  if (t == 0) {
    int s = 0;
    for (int w = 0; w < static_cast<int>((blockDim.x + 31) / 32); ++w) s += MT_SH_LD(warp_sums[w]);
    *sum = s;
  }
}

// A warp where half the lanes exit after one shuffle; the survivors shuffle again and must see the
// exited lanes as 0 (emulator contract), not their stale values.
extern "C" __global__ void emutest_exited_lanes(int* out) {
  const int t = threadIdx.x;
  const int first = __shfl_xor_sync(0xffffffffu, t + 100, 1);
  if (t & 1) return;
  const int second = __shfl_xor_sync(0x55555555u, t + 200, 1);  // reads an exited odd lane
  out[t] = first * 1000 + second;
}

// Does nothing (for the launch-validation tests).
extern "C" __global__ void emutest_nop(int* out) {
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0 && blockIdx.x == 0 && out) out[0] += 1;
}

// Deliberately racy (mode 0: read a neighbour's slot with no barrier; mode 1: every thread writes
// slot 0; mode 2: lanes of one warp exchange through shared memory with no __syncwarp) and their
// fixed versions (mode 3: barrier; mode 4: __syncwarp between the write and the read), for the
// shared-memory race check. out[t] receives what thread t read.
extern "C" __global__ void emutest_racy(int* out, int mode) {
  __shared__ int s[1024];
  const int t = threadIdx.x, n = blockDim.x;
  int v = -1;
  switch (mode) {
    case 0:
      MT_SH_ST(s[t], t);
      v = MT_SH_LD(s[(t + 1) % n]);
      break;
    case 1:
      MT_SH_ST(s[0], t);
      break;
    case 2:
      MT_SH_ST(s[t], t);
      v = MT_SH_LD(s[t ^ 1]);
      break;
    case 3:
      MT_SH_ST(s[t], t);
      __syncthreads();
      v = MT_SH_LD(s[(t + 1) % n]);
      break;
    case 4:
      MT_SH_ST(s[t], t);
      __syncwarp();
      v = MT_SH_LD(s[t ^ 1]);
      break;
  }
  out[t] = v;
}
