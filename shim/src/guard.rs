//! Guard mode: blocks on pages of their own inside one large reservation, with a PROT_NONE page
//! right after the block's end (overflow mode) or right before its start (underflow mode), so a
//! bad access faults at the instruction. Freed blocks' pages are dropped and made PROT_NONE at
//! once; the address range is never reused, so a late access to a freed block always faults.
//!
//! Every guarded allocation appends a slot to an append-only log ordered by address; the fault
//! handler reads it without locks. Live guarded blocks cost two mappings each, so they are
//! budgeted against `vm.max_map_count`; past the budget blocks fall back to the default mode
//! with one warning.
use crate::spin::SpinLock;
use crate::{heap, sys};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use memcheck_wire::GuardMode;

pub const PAGE: usize = 4096;
const RESERVE: usize = 1 << 40;
const CHUNK: usize = 1 << 16;
const CHUNKS: usize = 4096;

pub const SLOT_LIVE: u8 = 0;
pub const SLOT_FREED: u8 = 1;

/// One guarded block: `[start, end)` is its whole range including the guard page.
#[repr(C)]
pub struct Slot {
    pub start: usize,
    pub end: usize,
    pub user: usize,
    pub size: usize,
    pub alloc_stack: u32,
    pub free_stack: AtomicU32,
    pub family: u8,
    pub state: AtomicU8,
    /// Overflow or underflow (never `Off`).
    pub mode: GuardMode,
}

/// A copy of a slot's fields, for the pure diagnosis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    pub start: usize,
    pub end: usize,
    pub user: usize,
    pub size: usize,
    pub alloc_stack: u32,
    pub free_stack: u32,
    pub family: u8,
    pub freed: bool,
    pub mode: GuardMode,
}

impl Slot {
    fn view(&self) -> SlotView {
        SlotView {
            start: self.start,
            end: self.end,
            user: self.user,
            size: self.size,
            alloc_stack: self.alloc_stack,
            free_stack: self.free_stack.load(Ordering::Acquire),
            family: self.family,
            freed: self.state.load(Ordering::Acquire) == SLOT_FREED,
            mode: self.mode,
        }
    }
}

static BASE: AtomicUsize = AtomicUsize::new(0);
static DIR: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS];
/// Number of published slots.
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Bump pointer inside the reservation; taken with LOCK.
static LOCK: SpinLock<usize> = SpinLock::new(0);
/// Live guarded blocks, and how many the mapping budget allows.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static WARNED: AtomicU8 = AtomicU8::new(0);

/// Reserves the pool and sets the mapping budget. Called once at init in guard mode.
pub fn init() {
    let Some(p) = sys::reserve(RESERVE) else {
        crate::log!(
            "cannot reserve address space for guard pages; guard mode is off, blocks get canaries"
        );
        return;
    };
    *LOCK.lock() = p;
    BASE.store(p, Ordering::Release);
    let mut buf = [0u8; 32];
    let n = sys::read_file(c"/proc/sys/vm/max_map_count", &mut buf);
    let max = buf[..n]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0usize, |a, &c| a * 10 + (c - b'0') as usize);
    let mut maps = rust_alloc::vec![0u8; 1 << 20];
    let used = sys::read_file(c"/proc/self/maps", &mut maps);
    let current = maps[..used].iter().filter(|&&c| c == b'\n').count();
    // Two mappings per live block, with headroom for the program's own mappings.
    let budget = max.saturating_sub(current + 2048) / 2;
    BUDGET.store(if max == 0 { 30000 } else { budget }, Ordering::Relaxed);
}

pub fn active() -> bool {
    BASE.load(Ordering::Relaxed) != 0
}

/// The pool's address range, if guard mode is on.
pub fn range() -> Option<(usize, usize)> {
    let b = BASE.load(Ordering::Relaxed);
    (b != 0).then_some((b, b + RESERVE))
}

/// Whether `addr` lies in the guard pool.
pub fn contains(addr: usize) -> bool {
    let b = BASE.load(Ordering::Relaxed);
    b != 0 && addr >= b && addr < b + RESERVE
}

fn slot(i: usize) -> &'static Slot {
    let chunk = DIR[i / CHUNK].load(Ordering::Acquire);
    // SAFETY: slot i < COUNT was written before COUNT was raised past it; chunks are never freed.
    unsafe { &*chunk.add(i % CHUNK) }
}

/// Index of the last slot starting at or below `addr`.
fn index_at(addr: usize) -> Option<usize> {
    let n = COUNT.load(Ordering::Acquire);
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if slot(mid).start <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo.checked_sub(1)
}

/// The slots around `addr`: the last starting at or below it, and the next one.
pub fn neighbours(addr: usize) -> (Option<SlotView>, Option<SlotView>) {
    let n = COUNT.load(Ordering::Acquire);
    let i = index_at(addr);
    let next = i.map_or(0, |i| i + 1);
    (
        i.map(|i| slot(i).view()),
        (next < n).then(|| slot(next).view()),
    )
}

/// The slot whose user pointer is exactly `user`.
pub fn slot_of(user: usize) -> Option<&'static Slot> {
    if !contains(user) {
        return None;
    }
    let s = slot(index_at(user)?);
    (s.user == user).then_some(s)
}

/// Allocates a guarded block; `None` when the pool or the mapping budget is exhausted (the caller
/// then serves the block in the default mode).
pub fn allocate(
    size: usize,
    align: usize,
    family: u8,
    stack: u32,
    mode: GuardMode,
) -> Option<usize> {
    if !active() || size > (1 << 36) {
        return None;
    }
    if LIVE.load(Ordering::Relaxed) >= BUDGET.load(Ordering::Relaxed) {
        if WARNED.swap(1, Ordering::Relaxed) == 0 {
            crate::log!(
                "warning: {} live guarded blocks reach the budget of vm.max_map_count; further blocks get canaries instead of guard pages (raise vm.max_map_count or use --sample-rate)",
                LIVE.load(Ordering::Relaxed)
            );
            crate::record::emit(&memcheck_wire::Record::Note(memcheck_wire::Note {
                text: b"guard pages exhausted vm.max_map_count's budget; later blocks were served with canaries",
            }));
        }
        return None;
    }
    let align = align.max(16);
    let data_pages = if mode == GuardMode::Underflow {
        size.div_ceil(PAGE).max(1)
    } else {
        // The block's end sits on the guard page; its start is aligned down, possibly a page more.
        (size + align - 1).div_ceil(PAGE).max(1)
    };
    let total = (data_pages + 1) * PAGE;
    let mut next = LOCK.lock();
    let start = *next;
    let base = BASE.load(Ordering::Relaxed);
    if start + total > base + RESERVE {
        return None;
    }
    let data = if mode == GuardMode::Underflow {
        start + PAGE
    } else {
        start
    };
    // SAFETY: [data, data + data_pages pages) is inside our reservation and unused.
    let r = unsafe {
        libc::mprotect(
            data as *mut _,
            data_pages * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    if r != 0 {
        return None;
    }
    let user = if mode == GuardMode::Underflow {
        data
    } else {
        (data + data_pages * PAGE - size) & !(align - 1)
    };
    let i = COUNT.load(Ordering::Relaxed);
    if i / CHUNK >= CHUNKS {
        return None;
    }
    let mut chunk = DIR[i / CHUNK].load(Ordering::Acquire);
    if chunk.is_null() {
        chunk = heap::alloc_pages(CHUNK * core::mem::size_of::<Slot>()) as *mut Slot;
        if chunk.is_null() {
            return None;
        }
        DIR[i / CHUNK].store(chunk, Ordering::Release);
    }
    // SAFETY: slot i is unpublished (i == COUNT) and only this thread, holding LOCK, writes it.
    unsafe {
        chunk.add(i % CHUNK).write(Slot {
            start,
            end: start + total,
            user,
            size,
            alloc_stack: stack,
            free_stack: AtomicU32::new(0),
            family,
            state: AtomicU8::new(SLOT_LIVE),
            mode,
        })
    };
    COUNT.store(i + 1, Ordering::Release);
    *next = start + total;
    drop(next);
    LIVE.fetch_add(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, 1);
    crate::stats::add(|p| &p.guard_bytes, (data_pages * PAGE) as i64);
    Some(user)
}

/// The range of a guarded block's data pages.
pub fn data_range(s: &SlotView) -> (usize, usize) {
    if s.mode == GuardMode::Underflow {
        (s.start + PAGE, s.end)
    } else {
        (s.start, s.end - PAGE)
    }
}

/// Frees a guarded block: its pages are dropped and made inaccessible at once.
pub fn release(user: usize, free_stack: u32) {
    let Some(s) = slot_of(user) else { return };
    s.free_stack.store(free_stack, Ordering::Release);
    s.state.store(SLOT_FREED, Ordering::Release);
    let (a, b) = data_range(&s.view());
    // SAFETY: the pages belong to this freed block; replacing them with a fresh PROT_NONE
    // mapping returns their memory and makes every later access fault.
    unsafe {
        libc::mmap(
            a as *mut _,
            b - a,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    LIVE.fetch_sub(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, -1);
    crate::stats::add(|p| &p.guard_bytes, -((b - a) as i64));
}

/// Makes the page holding `addr` accessible again (continuing after a reported fault).
pub fn unprotect(addr: usize) {
    let page = addr & !(PAGE - 1);
    // SAFETY: the page lies in our pool; making it readable and writable lets the faulting
    // instruction complete, which is what continuing after a report means.
    unsafe { libc::mprotect(page as *mut _, PAGE, libc::PROT_READ | libc::PROT_WRITE) };
}

/// Fork handlers.
pub fn lock() {
    LOCK.raw_lock();
}
pub fn unlock() {
    LOCK.raw_unlock();
}

/// What a fault at `addr` in the pool means, given the slots around it. Pure: tested without
/// signals.
pub fn diagnose(
    addr: usize,
    prev: Option<SlotView>,
    next: Option<SlotView>,
) -> Option<(memcheck_wire::ErrorKind, SlotView)> {
    use memcheck_wire::ErrorKind::*;
    let p = prev.filter(|p| addr >= p.start && addr < p.end);
    if let Some(p) = p {
        let (da, db) = data_range(&p);
        if addr >= da && addr < db {
            // Inside the data pages: only freed blocks are inaccessible there.
            return p.freed.then_some((UseAfterFree, p));
        }
        if p.freed {
            return Some((UseAfterFree, p));
        }
        if p.mode == GuardMode::Underflow {
            // The guard page before this block; unless the previous block's end is nearer
            // (an overflow of the block below cannot be: its end is page-aligned data), an
            // underflow of this block.
            return Some((HeapBufferUnderflow, p));
        }
        // The guard page after this block, unless the next block (underflow mode) starts right
        // after and is nearer.
        let over = addr - (p.user + p.size);
        if let Some(n) = next {
            if n.user > addr && n.user - addr < over {
                return Some((
                    if n.freed {
                        UseAfterFree
                    } else {
                        HeapBufferUnderflow
                    },
                    n,
                ));
            }
        }
        return Some((HeapBufferOverflow, p));
    }
    // Past every slot, or in a gap: the nearest block's overflow or underflow.
    match (prev, next) {
        (Some(p), Some(n)) => {
            if addr - (p.user + p.size) <= n.user - addr {
                Some((HeapBufferOverflow, p))
            } else {
                Some((HeapBufferUnderflow, n))
            }
        }
        (Some(p), None) => Some((HeapBufferOverflow, p)),
        (None, Some(n)) => Some((HeapBufferUnderflow, n)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memcheck_wire::ErrorKind::*;

    fn slot(start: usize, pages: usize, size: usize, freed: bool, mode: GuardMode) -> SlotView {
        let end = start + (pages + 1) * PAGE;
        let user = if mode == GuardMode::Underflow {
            start + PAGE
        } else {
            (end - PAGE - size) & !15
        };
        SlotView {
            start,
            end,
            user,
            size,
            alloc_stack: 1,
            free_stack: 0,
            family: 0,
            freed,
            mode,
        }
    }

    #[test]
    fn a_touch_of_the_guard_page_after_a_block_is_an_overflow() {
        let s = slot(0x10000, 1, 13, false, GuardMode::Overflow);
        let end = s.user + 13;
        assert_eq!(
            diagnose(0x11000, Some(s), None),
            Some((HeapBufferOverflow, s))
        );
        assert_eq!(0x11000 - end, 3);
    }

    #[test]
    fn a_touch_of_a_freed_block_is_use_after_free() {
        let s = slot(0x10000, 2, 5000, true, GuardMode::Overflow);
        assert_eq!(
            diagnose(s.user + 10, Some(s), None),
            Some((UseAfterFree, s))
        );
    }

    #[test]
    fn live_data_pages_are_not_ours_to_diagnose() {
        let s = slot(0x10000, 1, 100, false, GuardMode::Overflow);
        assert_eq!(diagnose(s.user + 10, Some(s), None), None);
    }

    #[test]
    fn underflow_mode_guard_is_before_the_block() {
        let s = slot(0x10000, 1, 100, false, GuardMode::Underflow);
        assert_eq!(
            diagnose(0x10ff0, Some(s), None),
            Some((HeapBufferUnderflow, s))
        );
    }

    #[test]
    fn gaps_go_to_the_nearest_block() {
        let a = slot(0x10000, 1, 4096, false, GuardMode::Overflow);
        let b = slot(0x40000, 1, 16, false, GuardMode::Overflow);
        assert_eq!(
            diagnose(0x12000, Some(a), Some(b)),
            Some((HeapBufferOverflow, a))
        );
        assert_eq!(
            diagnose(b.user - 8, Some(a), Some(b)).unwrap().0,
            HeapBufferUnderflow
        );
    }
}
