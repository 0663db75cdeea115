//! Size-bucketed buffer pool.
//!
//! On these machines every page of a fresh large allocation faults in on first touch (measured in the
//! `pool` criterion bench: see README). Buffers of at least [`MIN_POOLED_BYTES`] are therefore rounded
//! up to a power-of-two capacity and, when dropped, parked in a per-type, per-bucket free list instead of
//! being returned to the allocator. The pool holds at most [`MAX_POOLED_BYTES`] in total; beyond that,
//! dropped buffers are freed. [`trim`] empties it.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers smaller than this are plain allocations (malloc is fast for them).
pub const MIN_POOLED_BYTES: usize = 64 * 1024;
/// Upper bound on the bytes parked in all pools together.
pub const MAX_POOLED_BYTES: usize = 2 << 30;
const BUCKETS: usize = 48;

static POOLED_BYTES: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);
static MISSES: AtomicUsize = AtomicUsize::new(0);

/// Free lists, one per power-of-two capacity bucket.
pub struct Pool<T> {
    buckets: Mutex<Vec<Vec<Vec<T>>>>,
}

impl<T> Pool<T> {
    pub const fn new() -> Self {
        Self { buckets: Mutex::new(Vec::new()) }
    }
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Element types that have a pool.
pub trait Poolable: Copy + Default + Send + 'static {
    fn pool() -> &'static Pool<Self>;
}

macro_rules! poolable {
    ($($t:ty),*) => {$(
        impl Poolable for $t {
            fn pool() -> &'static Pool<Self> {
                static P: Pool<$t> = Pool::new();
                &P
            }
        }
    )*};
}
poolable!(f32, f64, u16, u8, i64, u32);

fn bucket_of(cap: usize) -> usize {
    cap.next_power_of_two().trailing_zeros() as usize
}

fn take<T: Poolable>(len: usize) -> Vec<T> {
    let bytes = len * size_of::<T>();
    if bytes < MIN_POOLED_BYTES {
        return Vec::with_capacity(len);
    }
    let cap = len.next_power_of_two();
    let b = bucket_of(cap);
    if let Ok(mut buckets) = T::pool().buckets.lock()
        && let Some(list) = buckets.get_mut(b)
        && let Some(mut v) = list.pop()
    {
        POOLED_BYTES.fetch_sub(cap * size_of::<T>(), Ordering::Relaxed);
        HITS.fetch_add(1, Ordering::Relaxed);
        v.clear();
        return v;
    }
    MISSES.fetch_add(1, Ordering::Relaxed);
    Vec::with_capacity(cap)
}

fn give_back<T: Poolable>(v: Vec<T>) {
    let cap = v.capacity();
    let bytes = cap * size_of::<T>();
    if bytes < MIN_POOLED_BYTES || !cap.is_power_of_two() {
        return;
    }
    if POOLED_BYTES.load(Ordering::Relaxed) + bytes > MAX_POOLED_BYTES {
        return;
    }
    let b = bucket_of(cap);
    if b >= BUCKETS {
        return;
    }
    if let Ok(mut buckets) = T::pool().buckets.lock() {
        if buckets.len() < BUCKETS {
            buckets.resize_with(BUCKETS, Vec::new);
        }
        POOLED_BYTES.fetch_add(bytes, Ordering::Relaxed);
        buckets[b].push(v);
    }
}

/// A `Vec<T>` whose capacity returns to the pool on drop.
pub struct PooledVec<T: Poolable> {
    v: Vec<T>,
}

impl<T: Poolable> PooledVec<T> {
    /// `len` copies of `value` (reusing a pooled buffer when one fits).
    pub fn filled(len: usize, value: T) -> Self {
        let mut v = take::<T>(len);
        v.resize(len, value);
        Self { v }
    }

    /// `len` default values (zeros for numbers).
    pub fn zeros(len: usize) -> Self {
        Self::filled(len, T::default())
    }

    /// Copies a slice into a pooled buffer.
    pub fn from_slice(s: &[T]) -> Self {
        let mut v = take::<T>(s.len());
        v.extend_from_slice(s);
        Self { v }
    }

    /// Collects an exact-size iterator into a pooled buffer.
    pub fn from_iter_exact(len: usize, it: impl Iterator<Item = T>) -> Self {
        let mut v = take::<T>(len);
        v.extend(it.take(len));
        Self { v }
    }

    /// Wraps an existing vector (its capacity joins the pool on drop if it is a pool size).
    pub fn from_vec(v: Vec<T>) -> Self {
        Self { v }
    }

    /// Takes the vector out (it will not return to the pool).
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.v)
    }

    pub fn as_slice(&self) -> &[T] {
        &self.v
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.v
    }
}

impl<T: Poolable> Drop for PooledVec<T> {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.v));
    }
}

impl<T: Poolable> Deref for PooledVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.v
    }
}

impl<T: Poolable> DerefMut for PooledVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.v
    }
}

impl<T: Poolable> Clone for PooledVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(&self.v)
    }
}

impl<T: Poolable + std::fmt::Debug> std::fmt::Debug for PooledVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.v.fmt(f)
    }
}

/// Pool counters: (reuses, fresh allocations, bytes parked now).
pub fn stats() -> (usize, usize, usize) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed), POOLED_BYTES.load(Ordering::Relaxed))
}

/// Frees every parked buffer of type `T`.
pub fn trim<T: Poolable>() {
    if let Ok(mut buckets) = T::pool().buckets.lock() {
        for list in buckets.iter_mut() {
            for v in list.drain(..) {
                POOLED_BYTES.fetch_sub(v.capacity() * size_of::<T>(), Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_reused() {
        let n = 1 << 20; // 4 MiB of f32
        let a = PooledVec::<f32>::zeros(n);
        let ptr = a.as_ptr();
        drop(a);
        let b = PooledVec::<f32>::filled(n - 3, 1.0);
        assert_eq!(b.len(), n - 3);
        assert!(b.iter().all(|&x| x == 1.0));
        // Another test thread may have taken it first; only check the contents unconditionally.
        let _ = ptr;
        let c = PooledVec::<f32>::from_slice(&[1.0, 2.0]);
        assert_eq!(&*c, &[1.0, 2.0]);
    }
}
