// emu.cpp: the runtime behind emu.h (see there for the execution model).
#include "emu.h"

#include <barrier>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace emu {
thread_local ThreadState cur;
Dim3 block_dim, grid_dim;

namespace {
constexpr size_t kMaxGatherBytes = 64;

struct Warp {
  std::unique_ptr<std::barrier<>> bar;
  std::atomic<unsigned> live{0};
  alignas(16) unsigned char buf[32 * kMaxGatherBytes];
};

struct Block {
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<Warp>> warps;
  std::vector<unsigned char> dyn;
};

Block* g_block = nullptr;
std::mutex g_launch;
}  // namespace

void syncthreads() { g_block->bar->arrive_and_wait(); }

void syncwarp() { g_block->warps[cur.warp]->bar->arrive_and_wait(); }

unsigned warp_live_mask() { return g_block->warps[cur.warp]->live.load(); }

unsigned warp_gather(const void* mine, size_t bytes, void* all) {
  if (bytes > kMaxGatherBytes) trap("warp_gather: more than 64 bytes per lane");
  Warp& w = *g_block->warps[cur.warp];
  std::memcpy(w.buf + cur.lane * bytes, mine, bytes);
  w.bar->arrive_and_wait();
  std::memcpy(all, w.buf, 32 * bytes);
  // Lanes that exited (or do not exist in a partial last warp) read as zero, not as the value they
  // posted in an earlier exchange. Their `live` bit was cleared before they dropped out of the
  // barrier, so it is visible here.
  const unsigned live = w.live.load();
  for (unsigned l = 0; l < 32; ++l)
    if (!((live >> l) & 1u)) std::memset(static_cast<unsigned char*>(all) + l * bytes, 0, bytes);
  w.bar->arrive_and_wait();
  return live;
}

void* dynamic_shared() { return g_block->dyn.data(); }

void trap(const char* what) {
  std::fprintf(stderr, "emulated kernel trapped: %s (block %u,%u,%u thread %u,%u,%u)\n", what, cur.bid.x,
               cur.bid.y, cur.bid.z, cur.tid.x, cur.tid.y, cur.tid.z);
  std::abort();
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((112u - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00u;  // rounds to infinity
  if (ax < 0x38800000u) {                         // subnormal or zero in f16
    if (ax < 0x33000000u) return sign;            // below half the smallest subnormal
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(ax >> 23);  // 14..24
    const uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | static_cast<uint16_t>(r + ((rem > half || (rem == half && (r & 1u))) ? 1u : 0u));
  }
  const uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;  // rebias 127 -> 15, round even
  return sign | static_cast<uint16_t>(r >> 13);
}
}  // namespace emu

// Runs a kernel over a grid. `cb(ctx)` is called once per emulated CUDA thread with threadIdx,
// blockIdx, blockDim and gridDim set; it calls the kernel function. Returns 0 on success, 1 for an
// invalid grid or block shape, 2 for too much dynamic shared memory.
extern "C" int mt_emu_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                             size_t shared_bytes, void (*cb)(void*), void* ctx) {
  const unsigned long long nthreads = 1ull * bx * by * bz;
  if (gx == 0 || gy == 0 || gz == 0 || nthreads == 0 || nthreads > 1024 || bz > 64 || gy > 65535 || gz > 65535)
    return 1;
  if (shared_bytes > 227 * 1024) return 2;
  std::lock_guard<std::mutex> lock(emu::g_launch);
  emu::block_dim = {bx, by, bz};
  emu::grid_dim = {gx, gy, gz};
  const unsigned n = static_cast<unsigned>(nthreads);
  for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
      for (unsigned x = 0; x < gx; ++x) {
        emu::Block block;
        block.bar = std::make_unique<std::barrier<>>(n);
        for (unsigned w = 0; w * 32 < n; ++w) {
          auto warp = std::make_unique<emu::Warp>();
          const unsigned lanes = std::min(32u, n - w * 32);
          warp->bar = std::make_unique<std::barrier<>>(lanes);
          warp->live = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
          block.warps.push_back(std::move(warp));
        }
        block.dyn.assign(shared_bytes, 0xff);
        emu::g_block = &block;
        std::vector<std::thread> threads;
        threads.reserve(n);
        for (unsigned t = 0; t < n; ++t) {
          threads.emplace_back([=, &block] {
            emu::cur.tid = {t % bx, (t / bx) % by, t / (bx * by)};
            emu::cur.bid = {x, y, z};
            emu::cur.lane = t % 32;
            emu::cur.warp = t / 32;
            cb(ctx);
            // An exited thread no longer takes part in barriers (as on sm_70+ hardware).
            emu::Warp& w = *block.warps[t / 32];
            w.live.fetch_and(~(1u << (t % 32)));
            w.bar->arrive_and_drop();
            block.bar->arrive_and_drop();
          });
        }
        for (auto& th : threads) th.join();
        emu::g_block = nullptr;
      }
  return 0;
}
