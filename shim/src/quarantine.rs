//! The quarantine: freed blocks wait here (still in the block table, marked freed) before glibc
//! gets them back, so a second free or a late access is seen instead of hitting a reused block.
//! FIFO, bounded in bytes (`--quarantine-size`). It holds keys and sizes only: the blocks it
//! evicts are handed back to the caller of [`push`] (its `evict` callback, called outside the
//! lock), which checks and releases them, as Scudo's quarantine takes a callback.
use crate::opts;
use crate::spin::SpinLock;
use core::sync::atomic::Ordering;
use rust_alloc::collections::VecDeque;

struct Q {
    fifo: VecDeque<(usize, usize)>,
    bytes: u64,
}

static Q: SpinLock<Q> = SpinLock::new(Q {
    fifo: VecDeque::new(),
    bytes: 0,
});

const BATCH: usize = 32;

/// Puts a freed block (`key`, `size` bytes) in the quarantine and calls `evict` with the key of
/// each block that leaves it: the oldest blocks beyond the budget, in batches outside the lock,
/// or at once the new block itself when it alone exceeds the budget.
pub fn push(key: usize, size: usize, mut evict: impl FnMut(usize)) {
    let limit = opts::QUARANTINE.load(Ordering::Relaxed);
    if size as u64 > limit {
        evict(key);
        return;
    }
    {
        let mut q = Q.lock();
        q.fifo.push_back((key, size));
        q.bytes += size as u64;
        crate::stats::add(|p| &p.quarantine_bytes, size as i64);
        crate::stats::add(|p| &p.quarantine_blocks, 1);
        if q.bytes <= limit {
            return;
        }
    }
    // Over budget: release the oldest blocks in batches, outside the lock.
    loop {
        let mut out = [0usize; BATCH];
        let mut n = 0;
        {
            let mut q = Q.lock();
            while q.bytes > limit && n < BATCH {
                let Some((k, s)) = q.fifo.pop_front() else {
                    break;
                };
                q.bytes -= s as u64;
                crate::stats::add(|p| &p.quarantine_bytes, -(s as i64));
                crate::stats::add(|p| &p.quarantine_blocks, -1);
                out[n] = k;
                n += 1;
            }
            // The block the next push will evict: its slot and first lines start loading now, a
            // whole free earlier than its own eviction would ask for them.
            if let Some(&(k, _)) = q.fifo.front() {
                crate::table::prefetch(k);
                crate::table::prefetch_line(k.wrapping_sub(16));
            }
        }
        // The evicted blocks are cold: their slots and left redzones (the chunk header, which
        // glibc's free reads too) load together before the first is checked. The first was the
        // queue's front at the previous push, which prefetched it (below).
        for &k in out[..n].iter().skip(1) {
            crate::table::prefetch(k);
            crate::table::prefetch_line(k.wrapping_sub(16));
        }
        for &k in &out[..n] {
            evict(k);
        }
        if n < BATCH {
            return;
        }
    }
}

/// Fork handlers.
pub fn lock() {
    Q.raw_lock();
}
pub fn unlock() {
    Q.raw_unlock();
}
