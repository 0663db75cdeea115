// emu.h: host emulation of the slice of CUDA our kernels use, so every .cu file also compiles as
// host C++ (g++ -std=c++20) and runs on machines without a GPU.
//
// Execution model (emu.cpp): the blocks of a launch run one after another; inside a block every
// CUDA thread is one OS thread. __syncthreads is a barrier over the block's live threads, warp
// collectives (shuffles, votes, __syncwarp, the mma wrappers) are exchanges over the 32 threads of a
// warp. Static __shared__ arrays become function statics (launches are serialised, and blocks run one
// at a time, so each block sees them alone); dynamic shared memory is a per-block buffer filled with
// 0xFF bytes (NaN for floats) so that reading it before writing shows up in results.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace emu {
struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};
struct ThreadState {
  Dim3 tid, bid;
  unsigned lane = 0, warp = 0;
  unsigned linear = 0;      // thread index within the block
  unsigned bar_epoch = 0;   // __syncthreads passed (shared-memory race check)
  unsigned warp_epoch = 0;  // warp-wide exchanges / __syncwarp passed
};
extern thread_local ThreadState cur;
extern Dim3 block_dim, grid_dim;

void syncthreads();
void syncwarp();
// Every live lane of the calling warp posts `bytes` bytes; afterwards `all` holds lane l's bytes at
// offset l*bytes (lanes that exited are zero). Must be called by all live lanes (converged code).
// Returns the warp's live-lane mask as of this exchange (the same for every participant; reading
// `warp_live_mask()` afterwards is racy, since a lane that finished the exchange may exit meanwhile).
unsigned warp_gather(const void* mine, size_t bytes, void* all);
// The live lanes right now (changes when lanes exit; use warp_gather's result for collectives).
unsigned warp_live_mask();
void* dynamic_shared();
[[noreturn]] void trap(const char* what);

// Shared-memory race check (launches made with `mt_emu_launch_checked`): kernels that access shared
// memory through MT_SH_LD / MT_SH_ST (shared_check.cuh) report every address that two threads
// touch, at least one of them writing, with no __syncthreads between (same barrier epoch) — or, for
// two lanes of one warp, also no warp-wide exchange (__syncwarp, shuffle, vote) between.
extern std::atomic<bool> shared_check_on;
void shared_access(const void* p, size_t bytes, bool write);
template <class T> inline T* sh_read(T* p) {
  if (shared_check_on.load(std::memory_order_relaxed)) shared_access(p, sizeof(T), false);
  return p;
}
template <class T> inline T* sh_write(T* p) {
  if (shared_check_on.load(std::memory_order_relaxed)) shared_access(p, sizeof(T), true);
  return p;
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

template <class T> T shfl_from(T v, int src) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16, "shuffle of a small value");
  T all[32];
  warp_gather(&v, sizeof(T), all);
  return all[src & 31];
}
}  // namespace emu

#define threadIdx (emu::cur.tid)
#define blockIdx (emu::cur.bid)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)
#define warpSize 32
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __shared__ static
#define __align__(n) alignas(n)
#define __launch_bounds__(...)
#define __syncthreads() emu::syncthreads()
#define __syncwarp(...) emu::syncwarp()
#define __trap() emu::trap("__trap()")

template <class T> inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  const int lane = static_cast<int>(emu::cur.lane);
  return emu::shfl_from(v, (lane & ~(width - 1)) + (src & (width - 1)));
}
template <class T> inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  const int lane = static_cast<int>(emu::cur.lane);
  // PTX shfl.bfly: a source past the end of the caller's segment gives the caller's own value, but
  // a source in an *earlier* segment is read (CUDA guide: "able to access elements from earlier
  // groups of threads").
  int src = lane ^ (mask & 31);
  if (src > (lane | (width - 1))) src = lane;
  return emu::shfl_from(v, src);
}
template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(emu::cur.lane);
  int src = lane + static_cast<int>(delta);
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return emu::shfl_from(v, src);
}
template <class T> inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  const int lane = static_cast<int>(emu::cur.lane);
  int src = lane - static_cast<int>(delta);
  if (src < (lane & ~(width - 1))) src = lane;
  return emu::shfl_from(v, src);
}
namespace emu {
// Ballot of `pred` over the live lanes; `live` receives the live mask of the same exchange.
inline unsigned ballot(int pred, unsigned* live) {
  int all[32];
  int mine = pred != 0;
  *live = warp_gather(&mine, sizeof(int), all);
  unsigned m = 0;
  for (int l = 0; l < 32; ++l)
    if (((*live >> l) & 1u) && all[l]) m |= 1u << l;
  return m;
}
}  // namespace emu
inline unsigned __ballot_sync(unsigned, int pred) {
  unsigned live;
  return emu::ballot(pred, &live);
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned, int pred) {
  unsigned live;
  const unsigned m = emu::ballot(pred, &live);
  return m == live;
}

// Atomics (on host memory shared by all emulated threads).
template <class T> inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
inline int atomicCAS(int* p, int expected, int desired) {
  std::atomic_ref<int>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
inline unsigned atomicCAS(unsigned* p, unsigned expected, unsigned desired) {
  std::atomic_ref<unsigned>(*p).compare_exchange_strong(expected, desired);
  return expected;
}
inline int atomicMax(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// Math intrinsics the CUDA headers provide and the C library does not.
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __umulhi(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}
using std::max;
using std::min;
