// cp_async.cuh: asynchronous global → shared copies (sm_80 `cp.async`) as small device functions.
// On the GPU each is one inline-PTX instruction. Under the host emulator the copies are queued per
// thread and performed only when `mt_cp_async_wait_all` runs, so a kernel that reads shared memory
// before waiting (or before the barrier that follows the wait) sees stale data in its tests, as it
// could on the hardware.
#pragma once
#include "common.cuh"

#ifndef __CUDACC__
#include <vector>
namespace mt_cp_async_detail {
struct Pending {
  void* dst;
  const void* src;
  unsigned size, src_bytes;
};
inline thread_local std::vector<Pending> queue;
}  // namespace mt_cp_async_detail
#endif

// Copies 16 bytes from global `src` to shared `dst`, of which only the first `src_bytes` (0..16) are
// read; the rest of the 16 destination bytes are zero-filled. Both addresses must be 16-byte aligned
// (src must be a valid address even when src_bytes == 0). Bypasses L1 (.cg).
__device__ __forceinline__ void mt_cp_async_16(void* dst, const void* src, unsigned src_bytes) {
#ifdef __CUDACC__
  const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(src), "r"(src_bytes)
               : "memory");
#else
  if ((reinterpret_cast<uintptr_t>(dst) & 15u) || (reinterpret_cast<uintptr_t>(src) & 15u))
    emu::trap("cp.async: misaligned 16-byte copy");
  if (src_bytes > 16) emu::trap("cp.async: src_bytes > 16");
  mt_cp_async_detail::queue.push_back({dst, src, 16, src_bytes});
#endif
}

// The same for one 4- or 8-byte element (N = 4 or 8; both addresses N-byte aligned), through L1 (.ca):
// src_bytes is N (copy) or 0 (zero-fill the destination without reading src).
template <int N>
__device__ __forceinline__ void mt_cp_async_small(void* dst, const void* src, unsigned src_bytes) {
  static_assert(N == 4 || N == 8, "cp.async.ca copies 4, 8 or 16 bytes");
#ifdef __CUDACC__
  const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(saddr), "l"(src), "n"(N), "r"(src_bytes)
               : "memory");
#else
  if ((reinterpret_cast<uintptr_t>(dst) % N) || (reinterpret_cast<uintptr_t>(src) % N))
    emu::trap("cp.async: misaligned copy");
  if (src_bytes > static_cast<unsigned>(N)) emu::trap("cp.async: src_bytes > size");
  mt_cp_async_detail::queue.push_back({dst, src, static_cast<unsigned>(N), src_bytes});
#endif
}

// Ends the current group of copies (a no-op for the emulator, which waits for all of them).
__device__ __forceinline__ void mt_cp_async_commit() {
#ifdef __CUDACC__
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until every copy this thread issued has landed in shared memory. Other threads' copies are
// visible only after a following __syncthreads().
__device__ __forceinline__ void mt_cp_async_wait_all() {
#ifdef __CUDACC__
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#else
  for (const auto& p : mt_cp_async_detail::queue) {
    std::memcpy(p.dst, p.src, p.src_bytes);
    std::memset(static_cast<unsigned char*>(p.dst) + p.src_bytes, 0, p.size - p.src_bytes);
  }
  mt_cp_async_detail::queue.clear();
#endif
}
