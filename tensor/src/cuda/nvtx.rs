//! NVTX named ranges, so that Nsight Systems (`nsys profile`) shows which op or benchmark case a
//! stretch of kernels belongs to.
//!
//! Through cudarc 0.19's `nvtx` module, which loads `libnvToolsExt` at run time (found as
//! `libnvToolsExt.so`, `.so.1`, …: the CUDA ≤ 11 toolkits ship it, and so does PyTorch's
//! `nvidia-nvtx` wheel; add its folder to `LD_LIBRARY_PATH`). Without the library every call here
//! is a no-op (checked once per process), so ranges cost nothing on machines without it and never
//! fail. `MATRYOSHKA_NVTX=0` turns them off even when the library is present.
//!
//! ```no_run
//! let _r = tensor::cuda::nvtx::range("attention_fwd_bwd 8x8x1024x64 bf16");
//! // … enqueue the work; the range ends when `_r` is dropped
//! ```
//! The range brackets the *host* calls that enqueue work; nsys draws the kernels they launch under
//! it (CUDA API correlation).

use std::panic::catch_unwind;
use std::sync::OnceLock;

/// Whether NVTX calls reach the library (present, loadable, not disabled by `MATRYOSHKA_NVTX=0`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        if std::env::var_os("MATRYOSHKA_NVTX").is_some_and(|v| v == "0") {
            return false;
        }
        // SAFETY: only tries to dlopen libnvToolsExt (no preconditions on our side); a panic
        // inside is caught.
        catch_unwind(|| unsafe { cudarc::nvtx::sys::is_culib_present() }).unwrap_or(false)
    })
}

/// A named range, ended when dropped (no-op without the library).
#[must_use = "the range ends when this guard is dropped"]
pub struct Range(#[allow(dead_code)] Option<cudarc::nvtx::Range>);

impl std::fmt::Debug for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nvtx::Range({})", if self.0.is_some() { "open" } else { "disabled" })
    }
}

/// Opens the process-wide range `name` (`nvtxRangeStartEx`; `nvtxRangeEnd` on drop, from any thread).
pub fn range(name: impl AsRef<str>) -> Range {
    Range(enabled().then(|| cudarc::nvtx::scoped_range(c_safe(name.as_ref()))))
}

/// cudarc panics on an interior NUL (C strings): replace them.
fn c_safe(name: &str) -> String {
    name.replace('\0', " ")
}

/// Marks an instant named `name`.
pub fn mark(name: impl AsRef<str>) {
    if enabled() {
        cudarc::nvtx::mark(c_safe(name.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    /// Ranges and marks never fail or panic, with or without the library.
    #[test]
    fn ranges_are_safe_without_the_library() {
        let on = super::enabled();
        let r = super::range("test\0range");
        super::mark("test mark");
        assert_eq!(format!("{r:?}").contains("open"), on);
        drop(r);
    }
}
