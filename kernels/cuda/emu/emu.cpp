// emu.cpp: the runtime behind emu.h (see there for the execution model).
#include "emu.h"

#include <barrier>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
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

void syncthreads() {
  g_block->bar->arrive_and_wait();
  ++cur.bar_epoch;
}

void syncwarp() {
  g_block->warps[cur.warp]->bar->arrive_and_wait();
  ++cur.warp_epoch;
}

// ---- shared-memory race check ----
std::atomic<bool> shared_check_on{false};
namespace {
struct Access {
  unsigned thread, warp, bar_epoch, warp_epoch;
};
struct Cell {
  bool has_write = false, has_read = false, many_readers = false;
  Access write, read;  // last write; first read since it (in the read's epoch)
};
std::mutex g_check_mutex;
std::unordered_map<uintptr_t, Cell> g_cells;  // per byte address of the block's shared accesses
std::vector<std::string> g_races;
constexpr size_t kMaxRaces = 16;

Access me() { return {cur.linear, cur.warp, cur.bar_epoch, cur.warp_epoch}; }
// Two accesses are ordered when a __syncthreads separates them, or (same warp) a warp exchange does.
bool ordered(const Access& a, const Access& b) {
  if (a.bar_epoch != b.bar_epoch) return true;
  return a.warp == b.warp && a.warp_epoch != b.warp_epoch;
}
void report(const char* kind, uintptr_t addr, const Access& other) {
  if (g_races.size() >= kMaxRaces) return;
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s race on shared byte %#llx: thread %u and thread %u (block %u,%u,%u, barrier epoch %u)",
                kind, static_cast<unsigned long long>(addr), other.thread, cur.linear, cur.bid.x, cur.bid.y, cur.bid.z,
                cur.bar_epoch);
  g_races.emplace_back(buf);
}
}  // namespace

void shared_access(const void* p, size_t bytes, bool write) {
  const Access a = me();
  std::lock_guard<std::mutex> lock(g_check_mutex);
  const uintptr_t base = reinterpret_cast<uintptr_t>(p);
  for (uintptr_t addr = base; addr < base + bytes; ++addr) {
    Cell& c = g_cells[addr];
    if (c.has_write && c.write.thread != a.thread && !ordered(c.write, a)) {
      report(write ? "write-write" : "write-read", addr, c.write);
      break;
    }
    if (write && c.has_read && !ordered(c.read, a) && (c.read.thread != a.thread || c.many_readers)) {
      report("read-write", addr, c.read);
      break;
    }
    if (write) {
      c.has_write = true;
      c.write = a;
      c.has_read = c.many_readers = false;
    } else if (!c.has_read || ordered(c.read, a)) {
      c.has_read = true;
      c.read = a;
      c.many_readers = false;
    } else if (c.read.thread != a.thread) {
      c.many_readers = true;
    }
  }
}

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
  ++cur.warp_epoch;
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
static int launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, size_t shared_bytes,
                  void (*cb)(void*), void* ctx, bool check, char* races, size_t races_len, unsigned* race_count) {
  const unsigned long long nthreads = 1ull * bx * by * bz;
  if (gx == 0 || gy == 0 || gz == 0 || nthreads == 0 || nthreads > 1024 || bz > 64 || gy > 65535 || gz > 65535)
    return 1;
  if (shared_bytes > 227 * 1024) return 2;
  std::lock_guard<std::mutex> lock(emu::g_launch);
  emu::shared_check_on = check;
  emu::g_races.clear();
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
        emu::g_cells.clear();  // shared memory is per block
        std::vector<std::thread> threads;
        threads.reserve(n);
        for (unsigned t = 0; t < n; ++t) {
          threads.emplace_back([=, &block] {
            emu::cur.tid = {t % bx, (t / bx) % by, t / (bx * by)};
            emu::cur.bid = {x, y, z};
            emu::cur.lane = t % 32;
            emu::cur.warp = t / 32;
            emu::cur.linear = t;
            emu::cur.bar_epoch = emu::cur.warp_epoch = 0;
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
  if (check) {
    emu::shared_check_on = false;
    emu::g_cells.clear();
    if (race_count) *race_count = static_cast<unsigned>(emu::g_races.size());
    std::string all;
    for (auto& r : emu::g_races) all += r + "\n";
    if (races && races_len) {
      const size_t n = std::min(all.size(), races_len - 1);
      std::memcpy(races, all.data(), n);
      races[n] = 0;
    }
  }
  return 0;
}

extern "C" int mt_emu_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                             size_t shared_bytes, void (*cb)(void*), void* ctx) {
  return launch(gx, gy, gz, bx, by, bz, shared_bytes, cb, ctx, false, nullptr, 0, nullptr);
}

// As mt_emu_launch, with the shared-memory race check on (see emu.h): `race_count` receives the
// number of races found (at most 16 are recorded), `races` (`races_len` bytes) their descriptions.
extern "C" int mt_emu_launch_checked(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                                     size_t shared_bytes, void (*cb)(void*), void* ctx, char* races,
                                     size_t races_len, unsigned* race_count) {
  return launch(gx, gy, gz, bx, by, bz, shared_bytes, cb, ctx, true, races, races_len, race_count);
}
