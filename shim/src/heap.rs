//! The shim's private memory: address-space pieces reserved PROT_NONE and committed on demand.
//! Everything the shim allocates for itself (Rust collections through the global allocator, the
//! block table, the stack depot, the guard slot log) lives here, so the leak scan can exclude the
//! shim's own memory by its ranges and the target's allocator never sees the shim. The one
//! exception is the statistics page of [`crate::stats`], a shared file mapping, which the scan skips
//! by its address.
//!
//! The reservation grows in pieces (16 MiB, doubling up to 4 GiB, smaller when the kernel refuses
//! under `RLIMIT_AS`), so a program run under `ulimit -v` keeps nearly all of its address space:
//! what is reserved and not yet used is at most about as much as is in use.
use crate::spin::SpinLock;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

const PAGE: usize = 4096;
/// Small objects are carved from runs of this size.
const RUN: usize = 64 << 10;
/// Size classes 16, 32, ..., 4096.
const CLASSES: usize = 9;
/// The first piece, the largest piece, and the most pieces kept.
const FIRST_PIECE: usize = 16 << 20;
const MAX_PIECE: usize = 4 << 30;
const MAX_PIECES: usize = 512;

/// The pieces: `[start, end)` pairs, published by raising [`PIECES`] (append-only).
static RANGES: [(AtomicUsize, AtomicUsize); MAX_PIECES] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_PIECES];
static PIECES: AtomicUsize = AtomicUsize::new(0);

/// The piece being carved: next free byte, its end, and the size of the next piece to ask for.
struct Bump {
    next: usize,
    end: usize,
    want: usize,
}
static BUMP: SpinLock<Bump> = SpinLock::new(Bump {
    next: 0,
    end: 0,
    want: FIRST_PIECE,
});

/// Free lists of small objects, one per class; the link lives in the freed object.
static FREE: SpinLock<[usize; CLASSES]> = SpinLock::new([0; CLASSES]);
/// The current run each class carves from: (next, end).
static RUNS: SpinLock<[(usize, usize); CLASSES]> = SpinLock::new([(0, 0); CLASSES]);

/// Reserves a new piece of at least `len` bytes; false if the kernel refuses every size.
fn grow(b: &mut Bump, len: usize) -> bool {
    let n = PIECES.load(Ordering::Relaxed);
    if n == MAX_PIECES {
        return false;
    }
    let mut size = b.want.max(len.next_multiple_of(1 << 20));
    loop {
        if let Some(p) = crate::sys::reserve(size) {
            // The block table and the depot are read at random: on 2 MiB pages (where the system
            // allows them: THP in `madvise` mode or `always`) a lookup's page walk is mostly gone.
            // The cost: a touched 2 MiB range is committed whole, and with THP's `defrag` set to
            // `madvise` a fault here may compact memory first.
            // SAFETY: [p, p + size) is the reservation just made; advice changes no contents.
            unsafe { libc::madvise(p as *mut _, size, libc::MADV_HUGEPAGE) };
            RANGES[n].0.store(p, Ordering::Relaxed);
            RANGES[n].1.store(p + size, Ordering::Relaxed);
            PIECES.store(n + 1, Ordering::Release);
            b.next = p;
            b.end = p + size;
            b.want = (b.want * 2).min(MAX_PIECE);
            return true;
        }
        // Refused (RLIMIT_AS, or no room): ask for less, down to what is needed.
        let need = len.next_multiple_of(PAGE);
        if size <= need {
            return false;
        }
        size = (size / 2).max(need);
        b.want = size;
    }
}

/// Calls `f` with every piece of the shim's private memory, for the leak scan to skip.
pub fn for_each_range(mut f: impl FnMut(usize, usize)) {
    let n = PIECES.load(Ordering::Acquire);
    for r in &RANGES[..n] {
        f(r.0.load(Ordering::Relaxed), r.1.load(Ordering::Relaxed));
    }
}

/// Whether `addr` lies in the shim's private memory.
#[cfg(test)]
pub fn is_private(addr: usize) -> bool {
    let mut found = false;
    for_each_range(|s, e| found |= addr >= s && addr < e);
    found
}

/// Commits `len` bytes (rounded up to pages) of zeroed memory, or returns null.
pub fn alloc_pages(len: usize) -> *mut u8 {
    let len = len.next_multiple_of(PAGE);
    let p = {
        let mut b = BUMP.lock();
        if b.next + len > b.end && !grow(&mut b, len) {
            return core::ptr::null_mut();
        }
        let p = b.next;
        b.next += len;
        p
    };
    // SAFETY: [p, p+len) lies inside our own reservation and belongs to no one else.
    let r = unsafe { libc::mprotect(p as *mut _, len, libc::PROT_READ | libc::PROT_WRITE) };
    if r != 0 {
        return core::ptr::null_mut();
    }
    crate::sys::name_mapping(p as *mut u8, len, memcheck_wire::MAPPING_NAME_C);
    p as *mut u8
}

/// Gives back the reserved, unused tail of the current piece (the program lowered `RLIMIT_AS`,
/// which counts reserved address space too). The next allocation reserves a piece that fits.
pub fn trim() {
    let mut b = BUMP.lock();
    if b.end > b.next {
        // SAFETY: [next, end) is reserved by us and holds nothing.
        unsafe { libc::munmap(b.next as *mut _, b.end - b.next) };
        let n = PIECES.load(Ordering::Relaxed);
        if n > 0 && RANGES[n - 1].1.load(Ordering::Relaxed) == b.end {
            RANGES[n - 1].1.store(b.next, Ordering::Relaxed);
        }
        b.end = b.next;
        b.want = FIRST_PIECE;
    }
}

/// Returns pages to the kernel; the address range stays reserved and is not reused.
pub fn free_pages(p: *mut u8, len: usize) {
    let len = (len + PAGE - 1) & !(PAGE - 1);
    // SAFETY: the range was committed by alloc_pages and its owner gives it up.
    unsafe {
        libc::madvise(p.cast(), len, libc::MADV_DONTNEED);
        libc::mprotect(p.cast(), len, libc::PROT_NONE);
    }
}

fn class_of(size: usize) -> Option<usize> {
    if size > PAGE {
        return None;
    }
    let s = size.max(16).next_power_of_two();
    Some(s.trailing_zeros() as usize - 4)
}

fn small_alloc(class: usize) -> *mut u8 {
    {
        let mut free = FREE.lock();
        let head = free[class];
        if head != 0 {
            // SAFETY: every free-list entry is a freed object of this class holding the next link.
            free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
    }
    let size = 16usize << class;
    let mut runs = RUNS.lock();
    let (next, end) = runs[class];
    if next + size <= end && next != 0 {
        runs[class].0 = next + size;
        return next as *mut u8;
    }
    let run = alloc_pages(RUN);
    if run.is_null() {
        return run;
    }
    let run = run as usize;
    runs[class] = (run + size, run + RUN);
    run as *mut u8
}

fn small_free(p: *mut u8, class: usize) {
    let mut free = FREE.lock();
    // SAFETY: p is a freed object of at least 16 bytes, now owned by the free list.
    unsafe { *(p as *mut usize) = free[class] };
    free[class] = p as usize;
}

/// Takes every lock of the private heap (fork prepare).
pub fn lock_all() {
    BUMP.raw_lock();
    FREE.raw_lock();
    RUNS.raw_lock();
}

/// Releases what [`lock_all`] took (fork parent and child).
pub fn unlock_all() {
    RUNS.raw_unlock();
    FREE.raw_unlock();
    BUMP.raw_unlock();
}

/// The `#[global_allocator]` of the shim: Rust collections inside the shim use private memory.
pub struct PrivateHeap;

// SAFETY: blocks come from private pages, sized and aligned as the layout asks (classes are
// powers of two carved from page-aligned runs, so a class of size >= align is aligned).
unsafe impl GlobalAlloc for PrivateHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > PAGE {
            return core::ptr::null_mut();
        }
        match class_of(layout.size().max(layout.align())) {
            Some(c) => small_alloc(c),
            None => alloc_pages(layout.size()),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout.size().max(layout.align())) {
            Some(c) => small_free(ptr, c),
            None => free_pages(ptr, layout.size()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(16), Some(0));
        assert_eq!(class_of(17), Some(1));
        assert_eq!(class_of(4096), Some(8));
        assert_eq!(class_of(4097), None);
    }

    #[test]
    fn private_pages_are_recognised() {
        let p = alloc_pages(100);
        assert!(!p.is_null());
        assert!(is_private(p as usize));
        assert!(!is_private(&p as *const _ as usize));
        let q = small_alloc(2);
        assert!(is_private(q as usize));
        small_free(q, 2);
        assert_eq!(small_alloc(2), q);
        free_pages(p, 100);
    }
}
