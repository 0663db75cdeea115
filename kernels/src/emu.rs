//! The host emulator for the CUDA kernels (feature `emu`): every `.cu` file is also compiled as host
//! C++ against `cuda/emu/emu.h` (by `build.rs`), its `extern "C"` kernels become host functions, and
//! [`launch`] runs one over a grid with one OS thread per CUDA thread of a block (`__syncthreads` a
//! barrier, warp shuffles and the mma wrappers warp-wide exchanges). The per-family `cuda_tests.rs`
//! run the same kernels as the GPU at small sizes against the CPU reference on every CI run.

use crate::cuda_abi::LaunchDims;
use std::ffi::c_void;

unsafe extern "C" {
    fn mt_emu_launch(
        gx: u32,
        gy: u32,
        gz: u32,
        bx: u32,
        by: u32,
        bz: u32,
        shared_bytes: usize,
        cb: extern "C" fn(*mut c_void),
        ctx: *mut c_void,
    ) -> i32;
    fn mt_emu_launch_checked(
        gx: u32,
        gy: u32,
        gz: u32,
        bx: u32,
        by: u32,
        bz: u32,
        shared_bytes: usize,
        cb: extern "C" fn(*mut c_void),
        ctx: *mut c_void,
        races: *mut u8,
        races_len: usize,
        race_count: *mut u32,
    ) -> i32;
}

/// A launch the emulator refused (the same shapes a GPU would refuse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmuError {
    InvalidShape(LaunchDims),
    TooMuchSharedMemory(LaunchDims),
}

extern "C" fn trampoline<F: Fn() + Sync>(ctx: *mut c_void) {
    // SAFETY: `ctx` is the `&F` passed by `launch`, alive until `mt_emu_launch` returns (it joins
    // every thread before returning); `F: Sync` makes sharing it between the threads sound.
    let f = unsafe { &*(ctx as *const F) };
    f();
}

/// Runs `kernel` once per emulated CUDA thread of the grid `dims`; `kernel` calls the `extern "C"`
/// kernel function with its arguments. Launches are serialised process-wide.
pub fn launch<F: Fn() + Sync>(dims: LaunchDims, kernel: F) -> Result<(), EmuError> {
    let (g, b) = (dims.grid, dims.block);
    // SAFETY: the callback and context follow the contract above; the emulator only reads `dims`.
    let rc = unsafe {
        mt_emu_launch(
            g.0,
            g.1,
            g.2,
            b.0,
            b.1,
            b.2,
            dims.shared_mem_bytes as usize,
            trampoline::<F>,
            &kernel as *const F as *mut c_void,
        )
    };
    match rc {
        0 => Ok(()),
        2 => Err(EmuError::TooMuchSharedMemory(dims)),
        _ => Err(EmuError::InvalidShape(dims)),
    }
}

/// As [`launch`], with the shared-memory race check on: kernels that access shared memory through
/// `MT_SH_LD` / `MT_SH_ST` (`cuda/shared_check.cuh`) have every access recorded with the thread's
/// barrier epoch, and two threads touching one byte (at least one writing) with no `__syncthreads`
/// between them — for two lanes of one warp, also no warp exchange (`__syncwarp`, shuffle, vote) —
/// are reported. Returns the reports (at most 16; empty = no race seen). Much slower than `launch`
/// (a global lock per shared access): for tests at small sizes.
pub fn launch_checked<F: Fn() + Sync>(dims: LaunchDims, kernel: F) -> Result<Vec<String>, EmuError> {
    let (g, b) = (dims.grid, dims.block);
    let mut buf = vec![0u8; 4096];
    let mut count = 0u32;
    // SAFETY: as in `launch`; `buf` has `buf.len()` writable bytes and `count` is a valid u32, both
    // written before the call returns.
    let rc = unsafe {
        mt_emu_launch_checked(
            g.0,
            g.1,
            g.2,
            b.0,
            b.1,
            b.2,
            dims.shared_mem_bytes as usize,
            trampoline::<F>,
            &kernel as *const F as *mut c_void,
            buf.as_mut_ptr(),
            buf.len(),
            &mut count,
        )
    };
    match rc {
        0 => {
            let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
            let text = String::from_utf8_lossy(&buf[..end]);
            let races: Vec<String> = text.lines().map(str::to_string).collect();
            debug_assert_eq!(races.len(), count as usize);
            Ok(races)
        }
        2 => Err(EmuError::TooMuchSharedMemory(dims)),
        _ => Err(EmuError::InvalidShape(dims)),
    }
}

/// A raw pointer that may be captured by the launch closure (which runs on many threads). The
/// kernels, like on a GPU, are responsible for not racing on the memory behind it.
#[derive(Clone, Copy, Debug)]
pub struct Ptr<T>(pub *mut T);
// SAFETY: only handed to emulated kernels, which synchronise their own accesses like GPU kernels.
unsafe impl<T> Sync for Ptr<T> {}
// SAFETY: as above.
unsafe impl<T> Send for Ptr<T> {}

impl<T> Ptr<T> {
    pub fn of(v: &mut [T]) -> Self {
        Ptr(v.as_mut_ptr())
    }
    pub fn get(self) -> *mut T {
        self.0
    }
    pub fn cst(self) -> *const T {
        self.0
    }
}

/// A read-only buffer pointer for a launch closure.
#[derive(Clone, Copy, Debug)]
pub struct CPtr<T>(pub *const T);
// SAFETY: read-only access from many threads.
unsafe impl<T> Sync for CPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Send for CPtr<T> {}

impl<T> CPtr<T> {
    pub fn of(v: &[T]) -> Self {
        CPtr(v.as_ptr())
    }
    pub fn get(self) -> *const T {
        self.0
    }
}
