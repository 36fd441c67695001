//! The stack depot: each distinct call stack is stored once and named by a small id. Lookups are
//! lock-free (a fixed open-addressing table of pointers to immutable entries); inserts take a lock.
//! Id 0 means "no stack" (the depot is full or the stack could not be taken).
use crate::heap;
use crate::spin::SpinLock;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const SLOTS: usize = 1 << 20;
/// The largest id [`intern`] gives (ids are 1..=MAX_ID).
pub const MAX_ID: u32 = SLOTS as u32;
const CHUNK: usize = 1 << 20;

/// Open-addressing table of stack hashes: slot i holds the 64-bit hash of stack id i+1 (0 =
/// free). A lookup touches only this array; distinct stacks are told apart by their 64-bit hash.
static HASHES: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());
/// Where each stack's frames are stored (`[n, frames...]`), by slot; written before the hash.
static ENTRIES: AtomicPtr<AtomicUsize> = AtomicPtr::new(core::ptr::null_mut());
/// Bump storage for frames: (next, end).
static STORE: SpinLock<(usize, usize)> = SpinLock::new((0, 0));

fn tables() -> Option<(&'static [AtomicU64], &'static [AtomicUsize])> {
    let mut h = HASHES.load(Ordering::Acquire);
    if h.is_null() {
        let _g = STORE.lock();
        h = HASHES.load(Ordering::Acquire);
        if h.is_null() {
            let e = heap::alloc_pages(SLOTS * 8) as *mut AtomicUsize;
            let hh = heap::alloc_pages(SLOTS * 8) as *mut AtomicU64;
            if e.is_null() || hh.is_null() {
                return None;
            }
            ENTRIES.store(e, Ordering::Release);
            HASHES.store(hh, Ordering::Release);
            h = hh;
        }
    }
    let e = ENTRIES.load(Ordering::Acquire);
    // SAFETY: both arrays are committed once, zeroed, never freed, and SLOTS long.
    Some(unsafe {
        (
            core::slice::from_raw_parts(h, SLOTS),
            core::slice::from_raw_parts(e, SLOTS),
        )
    })
}

#[inline]
fn hash(frames: &[u64]) -> u64 {
    // Each frame goes through a full 64-bit multiply-xorshift round, so stacks that differ only
    // in the order of a few repeated addresses (recursion) still spread over the whole table.
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    (h ^ (h >> 29)) | 1
}

fn store(frames: &[u64]) -> usize {
    let bytes = (1 + frames.len()) * 8;
    let mut s = STORE.lock();
    if s.0 + bytes > s.1 || s.0 == 0 {
        let c = heap::alloc_pages(CHUNK) as usize;
        if c == 0 {
            return 0;
        }
        *s = (c, c + CHUNK);
    }
    let p = s.0;
    s.0 += bytes;
    // SAFETY: [p, p+bytes) was reserved from the chunk above and is written only here.
    unsafe {
        let e = p as *mut u64;
        *e = frames.len() as u64;
        core::ptr::copy_nonoverlapping(frames.as_ptr(), e.add(1), frames.len());
    }
    p
}

const RECENT: usize = 1024;
per_thread! {
    /// This thread's recently seen stacks, `(hash, id)` by hash: most allocations come from a
    /// few call sites, and this keeps them off the big shared table.
    static RECENT_IDS: [core::cell::Cell<(u64, u32)>; RECENT];
}

/// The id of `frames`, storing them on first sight.
pub fn intern(frames: &[u64]) -> u32 {
    finish(frames, begin(frames))
}

/// A lookup [`begin`] started: the id if this thread's cache had it, else the stack's hash,
/// whose slot of the shared table is being loaded.
#[derive(Clone, Copy)]
pub enum Lookup {
    Known(u32),
    Shared(u64),
}

/// The first half of [`intern`]: this thread's cache, else a prefetch of the shared table's slot
/// (a stack new to the thread is usually a miss there), so the caller can do other work while
/// it loads and then call [`finish`].
#[inline]
pub fn begin(frames: &[u64]) -> Lookup {
    if frames.is_empty() {
        return Lookup::Known(0);
    }
    let h = hash(frames);
    let slot = (h >> 1) as usize & (RECENT - 1);
    let cached = RECENT_IDS.with(|r| r[slot].get());
    if cached.0 == h {
        return Lookup::Known(cached.1);
    }
    let table = HASHES.load(Ordering::Acquire);
    if !table.is_null() {
        let at = table as usize + ((h >> 40) as usize & (SLOTS - 1)) * 8;
        crate::table::prefetch_line(at);
    }
    Lookup::Shared(h)
}

/// The second half of [`intern`]: the id of `frames` (the stack `begin` was given).
pub fn finish(frames: &[u64], lookup: Lookup) -> u32 {
    let h = match lookup {
        Lookup::Known(id) => return id,
        Lookup::Shared(h) => h,
    };
    let id = intern_shared(frames, h);
    if id != 0 {
        let slot = (h >> 1) as usize & (RECENT - 1);
        RECENT_IDS.with(|r| r[slot].set((h, id)));
    }
    id
}

fn intern_shared(frames: &[u64], h: u64) -> u32 {
    let Some((hashes, entries)) = tables() else {
        return 0;
    };
    let mut i = (h >> 40) as usize & (SLOTS - 1);
    for _ in 0..SLOTS {
        let cur = hashes[i].load(Ordering::Acquire);
        if cur == h {
            return i as u32 + 1;
        }
        if cur == 0 {
            // Claim the slot with a reserved marker, store the frames, then publish the hash.
            if hashes[i]
                .compare_exchange(0, u64::MAX - 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let e = store(frames);
                entries[i].store(e, Ordering::Release);
                hashes[i].store(h, Ordering::Release);
                return if e == 0 { 0 } else { i as u32 + 1 };
            }
            // Lost the race: look at what the winner published.
            let mut spins = 0;
            while hashes[i].load(Ordering::Acquire) == u64::MAX - 1 && spins < 1_000_000 {
                core::hint::spin_loop();
                spins += 1;
            }
            if hashes[i].load(Ordering::Acquire) == h {
                return i as u32 + 1;
            }
        }
        i = (i + 1) & (SLOTS - 1);
    }
    0
}

/// The frames of a stack id (empty for 0 or an unknown id).
pub fn frames(id: u32) -> &'static [u64] {
    if id == 0 || id as usize > SLOTS {
        return &[];
    }
    let Some((_, entries)) = tables() else {
        return &[];
    };
    let p = entries[id as usize - 1].load(Ordering::Acquire);
    if p == 0 {
        return &[];
    }
    // SAFETY: p points at an entry written completely before its hash was published.
    unsafe {
        let e = p as *const u64;
        core::slice::from_raw_parts(e.add(1), *e as usize)
    }
}

/// Calls `f` with every stored stack's id and frames (for the stacks of an object being unloaded).
pub fn for_each(mut f: impl FnMut(u32, &[u64])) {
    if HASHES.load(Ordering::Acquire).is_null() {
        return;
    }
    let Some((hashes, _)) = tables() else {
        return;
    };
    for (i, h) in hashes.iter().enumerate() {
        let h = h.load(Ordering::Acquire);
        if h != 0 && h != u64::MAX - 1 {
            f(i as u32 + 1, frames(i as u32 + 1));
        }
    }
}

/// Fork prepare/child helpers.
pub fn lock() {
    STORE.raw_lock();
}
pub fn unlock() {
    STORE.raw_unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stack_same_id() {
        let a = intern(&[1, 2, 3]);
        let b = intern(&[1, 2, 4]);
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(intern(&[1, 2, 3]), a);
        assert_eq!(frames(a), &[1, 2, 3]);
        assert_eq!(frames(0), &[] as &[u64]);
        assert_eq!(intern(&[]), 0);
    }
}
