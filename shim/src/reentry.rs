//! Allocation calls that re-enter the shim from a signal handler at a point where the ordinary
//! path could wait for ever or corrupt state: the interrupted code on this thread holds one of the
//! shim's locks, or is inside glibc's allocator on the shim's behalf. These calls take a path that
//! needs no lock and no glibc:
//!
//! - a new block is its own anonymous mapping (`mmap` is async-signal-safe), noted in a
//!   lock-free set, so its later `free`/`realloc` (from anywhere) unmaps it;
//! - a `free` of an ordinary block is deferred: it waits in a per-thread list and is done by the
//!   thread's next ordinary allocation call;
//! - a `realloc` of an ordinary block copies it into a new mapping and defers the free.
//!
//! So a handler that allocates never deadlocks under memcheck, even where glibc alone could abort.
//! Blocks served here have no redzones and are not leak-checked.
use crate::{guard, tls};
use core::cell::Cell;
use core::sync::atomic::{AtomicUsize, Ordering};
use memcheck_wire::Family;

const PAGE: usize = 4096;
const SET: usize = 4096;
const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;
/// Pointers of the blocks served here, and their sizes.
static PTRS: [AtomicUsize; SET] = [const { AtomicUsize::new(EMPTY) }; SET];
static SIZES: [AtomicUsize; SET] = [const { AtomicUsize::new(0) }; SET];
/// How many blocks the set holds (a fast "none" for the ordinary path).
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// The lowest and highest address any block served here ever had: a fast "not ours" for the
/// ordinary path while a few such blocks live for ever (those of the calls before init).
static LOW: AtomicUsize = AtomicUsize::new(usize::MAX);
static HIGH: AtomicUsize = AtomicUsize::new(0);

const DEFERRED: usize = 64;
per_thread! {
    static PENDING: [Cell<(usize, u8)>; DEFERRED];
    static PENDING_LEN: Cell<usize>;
}

/// Whether this call must take the lock-free path.
#[inline]
pub fn active() -> bool {
    tls::locks_held() != 0
}

#[inline]
fn home(p: usize) -> usize {
    ((p >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) & (SET - 1)
}

fn insert(p: usize, size: usize) -> bool {
    LOW.fetch_min(p, Ordering::AcqRel);
    HIGH.fetch_max(p + 1, Ordering::AcqRel);
    let mut i = home(p);
    for _ in 0..SET {
        let cur = PTRS[i].load(Ordering::Acquire);
        if (cur == EMPTY || cur == TOMBSTONE)
            && PTRS[i]
                .compare_exchange(cur, p, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            SIZES[i].store(size, Ordering::Release);
            COUNT.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        i = (i + 1) & (SET - 1);
    }
    false
}

fn find(p: usize) -> Option<usize> {
    let mut i = home(p);
    for _ in 0..SET {
        match PTRS[i].load(Ordering::Acquire) {
            EMPTY => return None,
            cur if cur == p => return Some(i),
            _ => {}
        }
        i = (i + 1) & (SET - 1);
    }
    None
}

/// If `p` was served by this module, forgets it and returns its size.
fn take(p: usize) -> Option<usize> {
    if COUNT.load(Ordering::Acquire) == 0
        || p <= TOMBSTONE
        || p < LOW.load(Ordering::Relaxed)
        || p >= HIGH.load(Ordering::Relaxed)
    {
        return None;
    }
    let i = find(p)?;
    let size = SIZES[i].load(Ordering::Acquire);
    PTRS[i]
        .compare_exchange(p, TOMBSTONE, Ordering::AcqRel, Ordering::Acquire)
        .ok()?;
    COUNT.fetch_sub(1, Ordering::AcqRel);
    Some(size)
}

/// Bytes before the user pointer of a mapped block (keeps 16-byte alignment; up to `align`).
fn header(align: usize) -> usize {
    align.max(16)
}

/// Maps a block for a re-entered allocation call (zeroed, as every fresh mapping is).
pub fn allocate(size: usize, align: usize) -> *mut u8 {
    if align > PAGE {
        return core::ptr::null_mut();
    }
    let h = header(align);
    let len = (h + size.max(1)).next_multiple_of(PAGE);
    // SAFETY: a fresh private anonymous mapping at a kernel-chosen address.
    let base = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return core::ptr::null_mut();
    }
    let p = base as usize + h;
    if !insert(p, size) {
        // The set is full: the block could not be recognised later, so do not hand it out.
        // SAFETY: the mapping was made just above.
        unsafe { libc::munmap(base, len) };
        return core::ptr::null_mut();
    }
    // SAFETY: the header's last word lies inside the mapping, before p.
    unsafe { *((p - 8) as *mut usize) = h };
    p as *mut u8
}

/// Unmaps a block this module served, given its size.
fn unmap(p: usize, size: usize) {
    // SAFETY: the word before p holds the header length written by `allocate`.
    let h = unsafe { *((p - 8) as *const usize) };
    let len = (h + size.max(1)).next_multiple_of(PAGE);
    // SAFETY: [p - h, p - h + len) is the mapping `allocate` made for this block.
    unsafe { libc::munmap((p - h) as *mut _, len) };
}

/// Frees `p` if this module served it (on any path, re-entered or not); false otherwise.
pub fn free_if_ours(p: *mut u8) -> bool {
    match take(p as usize) {
        Some(size) => {
            unmap(p as usize, size);
            true
        }
        None => false,
    }
}

/// The size of a block this module served.
pub fn size_of(p: *mut u8) -> Option<usize> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return None;
    }
    find(p as usize).map(|i| SIZES[i].load(Ordering::Acquire))
}

/// A re-entered `free` of an ordinary block: done later by this thread. False if the list is
/// full (the block then stays allocated).
pub fn defer_free(p: *mut u8, family: Family) -> bool {
    let n = PENDING_LEN.with(|l| l.get());
    if n == DEFERRED {
        return false;
    }
    PENDING.with(|v| v[n].set((p as usize, family as u8)));
    PENDING_LEN.with(|l| l.set(n + 1));
    true
}

/// Whether this thread has frees waiting for [`drain`] (production mode's fast path then takes
/// the full one).
#[inline(always)]
pub fn pending() -> bool {
    PENDING_LEN.get() != 0
}

/// Frees what re-entered calls deferred on this thread; `release` is the ordinary free.
#[inline]
pub fn drain(release: impl Fn(*mut u8, Family)) {
    if PENDING_LEN.with(|l| l.get()) == 0 {
        return;
    }
    drain_slow(release);
}

#[cold]
fn drain_slow(release: impl Fn(*mut u8, Family)) {
    loop {
        let n = PENDING_LEN.with(|l| l.get());
        if n == 0 {
            return;
        }
        let (p, fam) = PENDING.with(|v| v[n - 1].get());
        PENDING_LEN.with(|l| l.set(n - 1));
        release(p as *mut u8, Family::from_u8(fam).unwrap_or(Family::Malloc));
    }
}

/// A re-entered `realloc` of `p` (not null, `size` not zero).
pub fn reallocate(p: *mut u8, size: usize) -> *mut u8 {
    let (old, ours) = match size_of(p) {
        Some(n) => (n, true),
        None => (old_size_bound(p), false),
    };
    let new = allocate(size, 16);
    if new.is_null() {
        return new;
    }
    // SAFETY: `old` bytes from p lie inside p's allocation (see old_size_bound); new has `size`.
    unsafe { core::ptr::copy_nonoverlapping(p, new, old.min(size)) };
    if ours {
        free_if_ours(p);
    } else {
        // If the list is full the old block stays allocated: better a leak than a lock wait.
        defer_free(p, Family::Malloc);
    }
    new
}

/// An upper bound of the bytes readable from `p` inside its block, without the block table: a
/// guarded block's size from the lock-free slot log, else glibc's chunk size minus the left
/// redzone (production mode: glibc's usable size, its blocks having none).
fn old_size_bound(p: *mut u8) -> usize {
    if let Some(s) = guard::tenant(p as usize) {
        return s.size;
    }
    if crate::opts::production() {
        if guard::contains(p as usize) {
            return 0; // not a block's start
        }
        // SAFETY: outside the pool, production mode's blocks are glibc's own, unpadded.
        return unsafe { crate::real::usable_size(p) };
    }
    let rz = crate::opts::REDZONE.load(Ordering::Relaxed);
    // SAFETY: an ordinary block is `rz` bytes into a glibc chunk whose size word precedes it.
    let word = unsafe { *((p as usize - rz - 8) as *const usize) };
    let chunk = word & !7;
    if !(32..=(1 << 40)).contains(&chunk) {
        return 0;
    }
    chunk.saturating_sub(rz + 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_again_and_forgotten() {
        let p = allocate(40, 16);
        assert!(!p.is_null());
        assert_eq!(size_of(p), Some(40));
        assert!(free_if_ours(p));
        assert_eq!(size_of(p), None);
        assert!(!free_if_ours(p));
    }

    #[test]
    fn deferred_frees_are_drained_in_order() {
        let seen = std::cell::RefCell::new(Vec::new());
        assert!(defer_free(0x1000 as *mut u8, Family::New));
        assert!(defer_free(0x2000 as *mut u8, Family::Malloc));
        drain(|p, f| seen.borrow_mut().push((p as usize, f)));
        assert_eq!(
            *seen.borrow(),
            [(0x2000, Family::Malloc), (0x1000, Family::New)]
        );
        drain(|_, _| panic!("nothing left"));
    }
}
