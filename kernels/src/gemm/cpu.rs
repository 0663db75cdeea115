//! The blocked GEMM driver: packing of A and B and the loops around the micro-kernel.
//!
//! Loop order (all sizes from the [`Kernel`]): `jc` over column blocks of `nc` → `pc` over depth
//! blocks of `kc` → pack the `kc×nc` block of B once (shared by all tasks, in L2) → tasks over row
//! strips of `mr` (and column panels of `nr` when there are few strips) → pack one `mr×kc` strip of
//! A (in L1) → sweep it across the panels of B with the micro-kernel.
//!
//! Packed layouts: a B panel is `kc` rows of `nr` contiguous values (`dst[p*nr + j]`), an A strip is
//! `kc` columns of `mr` contiguous values (`dst[p*mr + i]`); both zero-padded past the edge.

use crate::Float;
use crate::parallel;
use crate::pool::{Poolable, PooledVec};

/// Element types with a blocked driver.
pub(crate) trait Scalar: Float + Poolable {
    /// Runs `f` on this thread's A-packing scratch of at least `len` elements (reused between
    /// calls: a fresh ~170 KiB buffer per task would be an mmap with page faults every time).
    fn with_apack<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! scalar {
    ($t:ty) => {
        impl Scalar for $t {
            fn with_apack<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local! {
                    static BUF: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
                }
                BUF.with(|b| match b.try_borrow_mut() {
                    Ok(mut v) => {
                        if v.len() < len {
                            v.resize(len, 0.0);
                        }
                        f(&mut v[..len])
                    }
                    // Re-entered on this thread (not expected): use a private buffer.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }
        }
    };
}
scalar!(f32);
scalar!(f64);

/// Read-only strided operand: element (i, j) at `ptr + i*rs + j*cs`.
#[derive(Clone, Copy)]
pub(crate) struct Raw<T> {
    pub ptr: *const T,
    pub rs: usize,
    pub cs: usize,
}

/// Writable strided operand: element (i, j) at `ptr + i*rs + j*cs`.
#[derive(Clone, Copy)]
pub(crate) struct RawMut<T> {
    pub ptr: *mut T,
    pub rs: usize,
    pub cs: usize,
}

// SAFETY: these are plain addresses handed to worker tasks; the driver guarantees that concurrent
// tasks only read A/B and write disjoint elements of C.
unsafe impl<T: Send> Send for Raw<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Raw<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for RawMut<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for RawMut<T> {}

impl<T> Raw<T> {
    /// The same strides, starting `off` elements further.
    ///
    /// # Safety
    /// `ptr + off` must stay inside the allocation.
    pub unsafe fn at(self, off: usize) -> Self {
        // SAFETY: forwarded to the caller.
        Self { ptr: unsafe { self.ptr.add(off) }, ..self }
    }
}

impl<T> RawMut<T> {
    /// The pointer (a method, so closures capture the whole `Sync` wrapper, not the raw field).
    pub fn get(self) -> *mut T {
        self.ptr
    }

    /// The same strides, starting `off` elements further.
    ///
    /// # Safety
    /// `ptr + off` must stay inside the allocation.
    pub unsafe fn at(self, off: usize) -> Self {
        // SAFETY: forwarded to the caller.
        Self { ptr: unsafe { self.ptr.add(off) }, ..self }
    }
}

/// Micro-kernel: `C[0..m_eff, 0..n_eff] = alpha * Apack·Bpack + beta * C` (beta == 0: overwrite).
///
/// `a` is a packed `mr×kc` strip, `b` a packed `kc×nr` panel (64-byte aligned), `c` the tile's
/// top-left element with strides `rs`, `cs`; only the `m_eff×n_eff` corner is touched.
pub(crate) type MicroKernel<T> = unsafe fn(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    rs: usize,
    cs: usize,
    m_eff: usize,
    n_eff: usize,
    alpha: T,
    beta: T,
);

/// A micro-kernel with its register tile (`mr×nr`) and cache blocking (`kc`, `nc`).
#[derive(Clone, Copy)]
pub(crate) struct Kernel<T> {
    pub name: &'static str,
    pub mr: usize,
    pub nr: usize,
    pub kc: usize,
    pub nc: usize,
    pub ukr: MicroKernel<T>,
}

/// Packs columns `0..n_eff` of a `kc×n_eff` block of B into one `kc×nr` panel (zero-padded).
///
/// # Safety
/// All `kc×n_eff` elements of `b` must be readable; `dst` must hold `kc*nr` elements.
unsafe fn pack_b<T: Float>(kc: usize, nr: usize, n_eff: usize, b: Raw<T>, dst: *mut T) {
    // SAFETY: reads stay inside the caller-guaranteed kc×n_eff view, writes inside kc*nr.
    unsafe {
        if b.cs == 1 {
            for p in 0..kc {
                let src = b.ptr.add(p * b.rs);
                let d = dst.add(p * nr);
                std::ptr::copy_nonoverlapping(src, d, n_eff);
                for j in n_eff..nr {
                    *d.add(j) = T::ZERO;
                }
            }
        } else {
            for p in 0..kc {
                let src = b.ptr.add(p * b.rs);
                let d = dst.add(p * nr);
                for j in 0..n_eff {
                    *d.add(j) = *src.add(j * b.cs);
                }
                for j in n_eff..nr {
                    *d.add(j) = T::ZERO;
                }
            }
        }
    }
}

/// Packs `rows` rows of an `rows×kc` block of A as consecutive strips of `mr` rows, each stored as
/// `kc` columns of `mr` values (`dst[strip*mr*kc + p*mr + i]`), the last strip zero-padded.
///
/// # Safety
/// All `rows×kc` elements of `a` must be readable; `dst` must hold `rows.div_ceil(mr)*mr*kc`.
unsafe fn pack_a<T: Float>(kc: usize, mr: usize, rows: usize, a: Raw<T>, dst: *mut T) {
    let strips = rows.div_ceil(mr);
    // SAFETY: reads stay inside the caller-guaranteed rows×kc view, writes inside
    // strips*mr*kc elements of dst.
    unsafe {
        let tail = rows - (strips - 1) * mr;
        if tail < mr {
            let d = dst.add((strips - 1) * mr * kc);
            for p in 0..kc {
                for i in tail..mr {
                    *d.add(p * mr + i) = T::ZERO;
                }
            }
        }
        if a.rs == 1 {
            // Column-major (e.g. transposed) A: read each column contiguously across all strips.
            for p in 0..kc {
                let src = a.ptr.add(p * a.cs);
                for s in 0..strips {
                    let m_eff = mr.min(rows - s * mr);
                    std::ptr::copy_nonoverlapping(src.add(s * mr), dst.add(s * mr * kc + p * mr), m_eff);
                }
            }
        } else {
            // Row by row: each source row is read sequentially.
            for i in 0..rows {
                let src = a.ptr.add(i * a.rs);
                let d = dst.add((i / mr) * mr * kc + i % mr);
                for p in 0..kc {
                    *d.add(p * mr) = *src.add(p * a.cs);
                }
            }
        }
    }
}

/// `[part*total/parts, (part+1)*total/parts)`.
fn split(total: usize, parts: usize, part: usize) -> std::ops::Range<usize> {
    (part * total / parts)..((part + 1) * total / parts)
}

/// Extra elements allocated so the packed B block can start on a 64-byte boundary.
const ALIGN_PAD: usize = 64;

/// Row strips of A packed together (a block of `MC_STRIPS*mr` rows × `kc`, kept in L2).
const MC_STRIPS: usize = 12;

/// Blocked `C = alpha*A·B + beta*C` for `m, n, k >= 1`.
///
/// # Safety
/// Every element of A (m×k), B (k×n) and C (m×n) addressed through the views must be inside its
/// allocation; C must not overlap A or B; if `parallel`, distinct (i, j) must address distinct
/// elements of C.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_blocked<T: Scalar>(
    kern: &Kernel<T>,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: Raw<T>,
    b: Raw<T>,
    beta: T,
    c: RawMut<T>,
    parallel: bool,
) {
    let Kernel { mr, nr, ukr, .. } = *kern;
    let threads = if parallel { parallel::num_threads() } else { 1 };
    let nc_max = kern.nc.min(n.div_ceil(nr) * nr);
    let kc_max = kern.kc.min(k);
    let mut bbuf = PooledVec::<T>::zeros(kc_max * nc_max + ALIGN_PAD);
    let base = bbuf.as_mut_ptr();
    let align = base.align_offset(64);
    let bpack = RawMut { ptr: if align < ALIGN_PAD { base.wrapping_add(align) } else { base }, rs: 0, cs: 0 };
    let m_strips = m.div_ceil(mr);
    let target_tasks = if threads > 1 { 4 * threads } else { 1 };

    for jc in (0..n).step_by(nc_max) {
        let nc = nc_max.min(n - jc);
        let n_panels = nc.div_ceil(nr);
        let tasks_m = m_strips.min(target_tasks);
        let tasks_n = if tasks_m >= target_tasks { 1 } else { n_panels.min(target_tasks.div_ceil(tasks_m)) };
        let ntasks = tasks_m * tasks_n;
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let beta_eff = if pc == 0 { beta } else { T::ONE };
            // SAFETY: (pc, jc) is inside B (pc < k, jc < n).
            let bblk = unsafe { b.at(pc * b.rs + jc * b.cs) };
            let work = if threads > 1 { usize::MAX } else { 0 };
            parallel::par_for(n_panels, if n_panels >= 4 { work } else { 0 }, |jp| {
                let j0 = jp * nr;
                // SAFETY: panel jp reads B rows pc..pc+kc, columns jc+j0..jc+j0+n_eff (inside B) and
                // writes its own kc*nr slot of the packed buffer (size kc_max*nc_max >= n_panels*kc*nr);
                // panels write disjoint slots.
                unsafe { pack_b(kc, nr, nr.min(nc - j0), bblk.at(j0 * b.cs), bpack.get().add(jp * nr * kc)) };
            });
            parallel::par_for(ntasks, if ntasks > 1 { work } else { 0 }, |t| {
                let strips = split(m_strips, tasks_m, t / tasks_n);
                let panels = split(n_panels, tasks_n, t % tasks_n);
                if strips.is_empty() || panels.is_empty() {
                    return;
                }
                // A is packed a block of up to MC_STRIPS strips at a time (reading column-major
                // A column by column, row-major A row by row), then each strip is swept across the
                // task's panels of B.
                T::with_apack(mr * kc * MC_STRIPS.min(strips.len()), |apack| {
                    let mut s0 = strips.start;
                    while s0 < strips.end {
                        let s1 = (s0 + MC_STRIPS).min(strips.end);
                        let i0 = s0 * mr;
                        let rows = (s1 * mr).min(m) - i0;
                        // SAFETY: rows i0..i0+rows, columns pc..pc+kc are inside A; apack holds
                        // (s1-s0)*mr*kc elements.
                        unsafe { pack_a(kc, mr, rows, a.at(i0 * a.rs + pc * a.cs), apack.as_mut_ptr()) };
                        for s in s0..s1 {
                            let i0 = s * mr;
                            let m_eff = mr.min(m - i0);
                            let ap = apack[(s - s0) * mr * kc..].as_ptr();
                            for jp in panels.clone() {
                                let j0 = jp * nr;
                                // SAFETY: the packed strip and panel hold kc*mr and kc*nr elements; the
                                // tile's m_eff×n_eff corner of C, at (i0, jc+j0), is inside C, and no
                                // other task writes it (tasks own disjoint strip×panel rectangles, and
                                // C is injective when parallel).
                                unsafe {
                                    ukr(
                                        kc,
                                        ap,
                                        bpack.get().add(jp * nr * kc),
                                        c.get().add(i0 * c.rs + (jc + j0) * c.cs),
                                        c.rs,
                                        c.cs,
                                        m_eff,
                                        nr.min(nc - j0),
                                        alpha,
                                        beta_eff,
                                    )
                                };
                            }
                        }
                        s0 = s1;
                    }
                });
            });
        }
    }
}
