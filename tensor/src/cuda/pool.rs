//! The caching device allocator: freed buffers go back to size-bucketed free lists and are handed out
//! again, so that ops do not call `cuMemAlloc`/`cuMemFree` per op.
//!
//! The pool is generic over a [`RawAllocator`] so that the bucketing and reuse logic is tested without
//! a GPU (a fake allocator in the tests below); the CUDA runtime plugs in an allocator that calls the
//! driver. Sizes are rounded up to a bucket ([`bucket_size`]): 512-byte granules up to 1 MiB, powers
//! of two above. A request is served from the free list of exactly its bucket; on an allocation
//! failure the pool frees every cached block and tries once more.
//!
//! Buffers are only ever used on the one stream of their device, so a block released after the last
//! op that reads it was *enqueued* can be handed to the next op: the stream orders them.

use std::collections::HashMap;

/// Granule of small buckets, in bytes.
pub const SMALL_GRANULE: usize = 512;
/// Buckets up to this size are multiples of [`SMALL_GRANULE`]; above, powers of two.
pub const SMALL_LIMIT: usize = 1 << 20;

/// The bucket a request of `bytes` is served from (at least one granule, so that zero-length
/// tensors still get a distinct, valid device pointer).
pub fn bucket_size(bytes: usize) -> usize {
    if bytes <= SMALL_LIMIT {
        bytes.max(1).div_ceil(SMALL_GRANULE) * SMALL_GRANULE
    } else {
        bytes.checked_next_power_of_two().unwrap_or(bytes)
    }
}

/// Where the pool gets fresh memory from.
pub trait RawAllocator {
    /// An owned block of device memory; dropping it (or [`RawAllocator::free`]) returns it to the
    /// system.
    type Block;
    type Error;
    fn alloc(&mut self, bytes: usize) -> Result<Self::Block, Self::Error>;
    fn free(&mut self, block: Self::Block);
}

/// Counters of a pool (bytes are bucket sizes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes currently handed out to live buffers.
    pub allocated_bytes: usize,
    /// Bytes held in the free lists, ready for reuse.
    pub cached_bytes: usize,
    /// Blocks held in the free lists.
    pub cached_blocks: usize,
    /// Requests served from a free list.
    pub hits: u64,
    /// Requests that had to call the raw allocator.
    pub misses: u64,
    /// Raw allocator failures that were retried after emptying the cache.
    pub retries_after_empty: u64,
    /// Highest `allocated_bytes` seen.
    pub peak_allocated_bytes: usize,
}

/// A size-bucketed caching pool over a [`RawAllocator`].
pub struct CachingPool<A: RawAllocator> {
    raw: A,
    free: HashMap<usize, Vec<A::Block>>,
    stats: PoolStats,
}

impl<A: RawAllocator> CachingPool<A> {
    pub fn new(raw: A) -> Self {
        Self { raw, free: HashMap::new(), stats: PoolStats::default() }
    }

    /// A block of at least `bytes` bytes and the bucket size it belongs to (pass both back to
    /// [`CachingPool::release`]).
    pub fn acquire(&mut self, bytes: usize) -> Result<(A::Block, usize), A::Error> {
        let bucket = bucket_size(bytes);
        let block = if let Some(b) = self.free.get_mut(&bucket).and_then(Vec::pop) {
            self.stats.hits += 1;
            self.stats.cached_bytes -= bucket;
            self.stats.cached_blocks -= 1;
            b
        } else {
            self.stats.misses += 1;
            match self.raw.alloc(bucket) {
                Ok(b) => b,
                Err(e) => {
                    if self.stats.cached_blocks == 0 {
                        return Err(e);
                    }
                    self.stats.retries_after_empty += 1;
                    self.empty_cache();
                    self.raw.alloc(bucket)?
                }
            }
        };
        self.stats.allocated_bytes += bucket;
        self.stats.peak_allocated_bytes = self.stats.peak_allocated_bytes.max(self.stats.allocated_bytes);
        Ok((block, bucket))
    }

    /// Returns a block obtained from [`CachingPool::acquire`] to its free list.
    pub fn release(&mut self, block: A::Block, bucket: usize) {
        self.stats.allocated_bytes = self.stats.allocated_bytes.saturating_sub(bucket);
        self.stats.cached_bytes += bucket;
        self.stats.cached_blocks += 1;
        self.free.entry(bucket).or_default().push(block);
    }

    /// Frees every cached block back to the raw allocator.
    pub fn empty_cache(&mut self) {
        for (_, blocks) in self.free.drain() {
            for b in blocks {
                self.raw.free(b);
            }
        }
        self.stats.cached_bytes = 0;
        self.stats.cached_blocks = 0;
    }

    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    pub fn raw(&self) -> &A {
        &self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out numbered blocks and remembers every call; fails allocations past `limit` bytes live.
    #[derive(Default)]
    struct Fake {
        next: usize,
        live_bytes: usize,
        limit: Option<usize>,
        allocs: Vec<usize>,
        frees: Vec<usize>,
    }

    impl RawAllocator for Fake {
        type Block = (usize, usize);
        type Error = String;
        fn alloc(&mut self, bytes: usize) -> Result<(usize, usize), String> {
            if self.limit.is_some_and(|l| self.live_bytes + bytes > l) {
                return Err(format!("out of memory allocating {bytes}"));
            }
            self.next += 1;
            self.live_bytes += bytes;
            self.allocs.push(bytes);
            Ok((self.next, bytes))
        }
        fn free(&mut self, (id, bytes): (usize, usize)) {
            self.live_bytes -= bytes;
            self.frees.push(id);
        }
    }

    #[test]
    fn buckets_round_up_to_granules_then_powers_of_two() {
        assert_eq!(bucket_size(0), 512);
        assert_eq!(bucket_size(1), 512);
        assert_eq!(bucket_size(512), 512);
        assert_eq!(bucket_size(513), 1024);
        assert_eq!(bucket_size(1000 * 4), 4096);
        assert_eq!(bucket_size(SMALL_LIMIT), SMALL_LIMIT);
        assert_eq!(bucket_size(SMALL_LIMIT + 1), 2 * SMALL_LIMIT);
        assert_eq!(bucket_size(3 << 20), 4 << 20);
        assert_eq!(bucket_size(64 << 20), 64 << 20);
        // Monotone and never smaller than the request.
        let mut prev = 0;
        for b in (0..(5 << 20)).step_by(4099) {
            let s = bucket_size(b);
            assert!(s >= b && s >= prev, "{b} -> {s}");
            prev = s;
        }
    }

    #[test]
    fn released_blocks_are_reused_for_the_same_bucket_only() {
        let mut p = CachingPool::new(Fake::default());
        let (a, ba) = p.acquire(1000).unwrap();
        assert_eq!(ba, 1024);
        let (b, bb) = p.acquire(3 << 20).unwrap();
        assert_eq!(bb, 4 << 20);
        assert_eq!(p.stats().misses, 2);
        assert_eq!(p.stats().allocated_bytes, 1024 + (4 << 20));
        p.release(a, ba);
        p.release(b, bb);
        assert_eq!(p.stats().allocated_bytes, 0);
        assert_eq!(p.stats().cached_bytes, 1024 + (4 << 20));
        // Same bucket (1000 and 1020 bytes both round to 1024): the cached block comes back.
        let (c, bc) = p.acquire(1020).unwrap();
        assert_eq!((c, bc), ((1, 1024), 1024));
        // Another bucket (2000 -> 2048) is a miss even though 1024 and 4 MiB are cached.
        let (d, bd) = p.acquire(2000).unwrap();
        assert_eq!(d.0, 3);
        // 3.5 MiB rounds to the cached 4 MiB block.
        let (e, be) = p.acquire(3_500_000).unwrap();
        assert_eq!((e.0, be), (2, 4 << 20));
        let s = p.stats();
        assert_eq!((s.hits, s.misses), (2, 3));
        assert_eq!(p.raw().allocs, vec![1024, 4 << 20, 2048]);
        assert!(p.raw().frees.is_empty());
        assert_eq!(s.cached_bytes, 0);
        assert_eq!(s.peak_allocated_bytes, 1024 + 2048 + (4 << 20));
        p.release(c, bc);
        p.release(d, bd);
        p.release(e, be);
    }

    #[test]
    fn a_steady_loop_allocates_only_in_its_first_iteration() {
        let mut p = CachingPool::new(Fake::default());
        let sizes = [4 * 1000, 4 * 1000, 8 * 777, 4 << 20, 17];
        for _step in 0..10 {
            let blocks: Vec<_> = sizes.iter().map(|&s| p.acquire(s).unwrap()).collect();
            for (b, k) in blocks {
                p.release(b, k);
            }
        }
        assert_eq!(p.stats().misses as usize, sizes.len());
        assert_eq!(p.stats().hits as usize, 9 * sizes.len());
        assert_eq!(p.raw().allocs.len(), sizes.len());
    }

    #[test]
    fn empty_cache_frees_everything_cached_and_nothing_live() {
        let mut p = CachingPool::new(Fake::default());
        let (a, ba) = p.acquire(100).unwrap();
        let (b, bb) = p.acquire(5000).unwrap();
        p.release(a, ba);
        p.empty_cache();
        assert_eq!(p.raw().frees, vec![1]);
        assert_eq!(p.stats().cached_bytes, 0);
        assert_eq!(p.stats().cached_blocks, 0);
        assert_eq!(p.stats().allocated_bytes, 5120);
        // The next request of that bucket is a miss again.
        let (c, _) = p.acquire(100).unwrap();
        assert_eq!(c.0, 3);
        p.release(b, bb);
    }

    #[test]
    fn an_allocation_failure_empties_the_cache_and_retries_once() {
        let mut p = CachingPool::new(Fake { limit: Some(8192), ..Fake::default() });
        let (a, ba) = p.acquire(4096).unwrap();
        let (b, bb) = p.acquire(2048).unwrap();
        p.release(a, ba);
        // 4096 cached + 2048 live; a 4608-byte bucket would exceed the 8192 limit: the cache is
        // emptied and the request succeeds.
        let (c, bc) = p.acquire(4600).unwrap();
        assert_eq!(bc, 4608);
        assert_eq!(p.stats().retries_after_empty, 1);
        assert_eq!(p.raw().frees, vec![1]);
        // With nothing cached a failure is reported as is.
        let err = p.acquire(4096).unwrap_err();
        assert!(err.contains("out of memory"), "{err}");
        p.release(b, bb);
        p.release(c, bc);
    }
}
