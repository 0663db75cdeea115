// shared_check.cuh: shared-memory accessors that the emulator can race-check.
//
// MT_SH_LD(lvalue) reads and MT_SH_ST(lvalue, value) writes a shared-memory element. On the GPU they
// are the plain access. Under the emulator they also record the access when the launch was made with
// the race check (`kernels::emu::launch_checked`), which reports two threads touching the same byte,
// at least one writing, with no __syncthreads between them (for lanes of one warp: nor a warp-wide
// exchange). Kernels opt in by using these for every shared access.
#pragma once
#include "common.cuh"

#ifdef __CUDACC__
#define MT_SH_LD(lv) (lv)
#define MT_SH_ST(lv, v) ((lv) = (v))
#else
#define MT_SH_LD(lv) (*emu::sh_read(&(lv)))
#define MT_SH_ST(lv, v) (*emu::sh_write(&(lv)) = (v))
#endif
