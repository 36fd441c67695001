//! The shim's private memory: one large PROT_NONE reservation from which pages are committed on
//! demand. Everything the shim allocates for itself (Rust collections through the global
//! allocator, the block table, the stack depot) lives here, so the leak scan can exclude the shim's
//! own memory with one range check and the target's allocator never sees the shim.
use crate::spin::SpinLock;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

const RESERVE: usize = 64 << 30;
const PAGE: usize = 4096;
/// Small objects are carved from runs of this size.
const RUN: usize = 64 << 10;
/// Size classes 16, 32, ..., 4096.
const CLASSES: usize = 9;

static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);
static RESERVE_LOCK: SpinLock<()> = SpinLock::new(());

/// Free lists of small objects, one per class; the link lives in the freed object.
static FREE: SpinLock<[usize; CLASSES]> = SpinLock::new([0; CLASSES]);
/// The current run each class carves from: (next, end).
static RUNS: SpinLock<[(usize, usize); CLASSES]> = SpinLock::new([(0, 0); CLASSES]);

fn reserve() -> usize {
    let b = BASE.load(Ordering::Acquire);
    if b != 0 {
        return b;
    }
    let _g = RESERVE_LOCK.lock();
    let b = BASE.load(Ordering::Acquire);
    if b != 0 {
        return b;
    }
    let Some(p) = crate::sys::reserve(RESERVE) else {
        return 0;
    };
    NEXT.store(p, Ordering::Relaxed);
    BASE.store(p, Ordering::Release);
    p
}

/// Whether `addr` lies in the shim's private memory.
#[cfg(test)]
pub fn is_private(addr: usize) -> bool {
    let b = BASE.load(Ordering::Relaxed);
    b != 0 && addr >= b && addr < b + RESERVE
}

/// The private reservation's range, for the leak scan to skip.
pub fn private_range() -> (usize, usize) {
    let b = BASE.load(Ordering::Relaxed);
    (b, b + if b == 0 { 0 } else { RESERVE })
}

/// Commits `len` bytes (rounded up to pages) of zeroed memory, or returns null.
pub fn alloc_pages(len: usize) -> *mut u8 {
    let base = reserve();
    if base == 0 {
        return core::ptr::null_mut();
    }
    let len = (len + PAGE - 1) & !(PAGE - 1);
    let p = NEXT.fetch_add(len, Ordering::Relaxed);
    if p + len > base + RESERVE {
        return core::ptr::null_mut();
    }
    // SAFETY: [p, p+len) lies inside our own reservation and belongs to no one else.
    let r = unsafe { libc::mprotect(p as *mut _, len, libc::PROT_READ | libc::PROT_WRITE) };
    if r != 0 {
        return core::ptr::null_mut();
    }
    crate::sys::name_mapping(p as *mut u8, len, memcheck_wire::MAPPING_NAME_C);
    p as *mut u8
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
    RESERVE_LOCK.raw_lock();
    FREE.raw_lock();
    RUNS.raw_lock();
}

/// Releases what [`lock_all`] took (fork parent and child).
pub fn unlock_all() {
    RUNS.raw_unlock();
    FREE.raw_unlock();
    RESERVE_LOCK.raw_unlock();
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
