//! Guard mode: blocks on pages of their own inside one large reservation. Each slot is
//! `[head guard page][data pages][tail guard page]`: the block ends exactly at the tail guard page
//! (overflow side) or starts exactly after the head one (underflow side), so a bad access on that
//! side faults at the instruction, even of one byte: the block's alignment is the largest power
//! of two dividing its size, at most 16 ([`natural_align`]; `--guard-align` fixes it instead).
//! The unused part of the first (overflow side) or last (underflow side) data page is canaried
//! whole, and the guard pages belong to their slot, so a far underflow or overflow faults and is
//! diagnosed against its own block. Freed blocks' pages are dropped and made PROT_NONE at once;
//! the address range is never reused, so a late access to a freed block always faults. Under a
//! finite `RLIMIT_AS` the pool is reserved in 64 MiB pieces and a freed block's range is
//! unmapped (given back, as glibc would): a late access is then caught only while the range stays
//! unmapped.
//!
//! Every guarded allocation appends a slot to an append-only log ordered by address; the fault
//! handler reads it without locks. Live guarded blocks cost two mappings each (the guard pages of
//! neighbouring slots merge with the reservation), so they are budgeted against
//! `vm.max_map_count`; past the budget blocks fall back to the default mode with one warning.
use crate::spin::SpinLock;
use crate::{heap, sys};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering};
use memcheck_wire::GuardMode;

pub const PAGE: usize = 4096;
const RESERVE: usize = 1 << 40;
const CHUNK: usize = 1 << 16;
const CHUNKS: usize = 4096;

pub const SLOT_LIVE: u8 = 0;
pub const SLOT_FREED: u8 = 1;

/// One guarded block: `[start, end)` is its whole range including both guard pages.
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
    /// The side flush with a guard page: overflow or underflow (never `Off` or `Both`).
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

static DIR: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; CHUNKS];
/// Number of published slots.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// The pool is reserved in pieces: one piece of [`RESERVE`] when `RLIMIT_AS` is unlimited, pieces
/// of [`LIMITED_PIECE`] under a limit (which counts reserved address space). Piece `k` holds the
/// slots from `first` up to the next piece's `first` (or [`COUNT`]), in address order.
struct Piece {
    start: AtomicUsize,
    end: AtomicUsize,
    first: AtomicUsize,
}
const MAX_PIECES: usize = 4096;
const LIMITED_PIECE: usize = 64 << 20;
static PIECES: [Piece; MAX_PIECES] = [const {
    Piece {
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        first: AtomicUsize::new(0),
    }
}; MAX_PIECES];
static NPIECES: AtomicUsize = AtomicUsize::new(0);
/// `RLIMIT_AS` is finite: pieces are small and freed blocks give their address space back.
static LIMITED: AtomicBool = AtomicBool::new(false);

/// The piece being carved: the next free byte and its end; taken to allocate a slot.
struct Bump {
    next: usize,
    end: usize,
}
static LOCK: SpinLock<Bump> = SpinLock::new(Bump { next: 0, end: 0 });
/// Live guarded blocks, and how many the mapping budget allows.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static WARNED: AtomicU8 = AtomicU8::new(0);

fn as_limited() -> bool {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid out-pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0;
    ok && r.rlim_cur != libc::RLIM_INFINITY
}

/// Reserves a new piece of at least `len` bytes and makes it current (LOCK held).
fn grow(b: &mut Bump, len: usize) -> bool {
    let n = NPIECES.load(Ordering::Relaxed);
    if n == MAX_PIECES {
        return false;
    }
    let size = if LIMITED.load(Ordering::Relaxed) {
        LIMITED_PIECE.max(len)
    } else {
        RESERVE.max(len)
    };
    let Some(p) = sys::reserve(size) else {
        return false;
    };
    PIECES[n].start.store(p, Ordering::Relaxed);
    PIECES[n].end.store(p + size, Ordering::Relaxed);
    PIECES[n]
        .first
        .store(COUNT.load(Ordering::Relaxed), Ordering::Relaxed);
    NPIECES.store(n + 1, Ordering::Release);
    b.next = p;
    b.end = p + size;
    true
}

/// Reserves the pool and sets the mapping budget. Called once at init in guard mode.
pub fn init() {
    LIMITED.store(as_limited(), Ordering::Relaxed);
    if !grow(&mut LOCK.lock(), 0) {
        crate::log!(
            "cannot reserve address space for guard pages; guard mode is off, blocks get canaries"
        );
        return;
    }
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
    NPIECES.load(Ordering::Relaxed) != 0
}

/// Calls `f` with each piece of the pool (for the leak scan, which traces blocks, not the pool).
pub fn for_each_range(mut f: impl FnMut(usize, usize)) {
    let n = NPIECES.load(Ordering::Acquire);
    for p in &PIECES[..n] {
        f(
            p.start.load(Ordering::Relaxed),
            p.end.load(Ordering::Relaxed),
        );
    }
}

/// The piece holding `addr` and its slot index range `[first, last)`.
fn piece_of(addr: usize) -> Option<(usize, usize)> {
    // COUNT first: a slot counted in it belongs to a piece already published.
    let count = COUNT.load(Ordering::Acquire);
    let n = NPIECES.load(Ordering::Acquire);
    let k = PIECES[..n].iter().position(|p| {
        addr >= p.start.load(Ordering::Relaxed) && addr < p.end.load(Ordering::Relaxed)
    })?;
    let first = PIECES[k].first.load(Ordering::Relaxed);
    let last = if k + 1 < n {
        PIECES[k + 1].first.load(Ordering::Relaxed)
    } else {
        count
    };
    Some((first, last.min(count)))
}

/// Whether `addr` lies in the guard pool.
pub fn contains(addr: usize) -> bool {
    piece_of(addr).is_some()
}

fn slot(i: usize) -> &'static Slot {
    let chunk = DIR[i / CHUNK].load(Ordering::Acquire);
    // SAFETY: slot i < COUNT was written before COUNT was raised past it; chunks are never freed.
    unsafe { &*chunk.add(i % CHUNK) }
}

/// Index of the last slot of `addr`'s piece starting at or below `addr`, and the piece's end
/// index.
fn index_at(addr: usize) -> Option<(Option<usize>, usize)> {
    let (first, last) = piece_of(addr)?;
    let (mut lo, mut hi) = (first, last);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if slot(mid).start <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Some(((lo > first).then(|| lo - 1), last))
}

/// The slot whose user pointer is exactly `user`.
pub fn slot_of(user: usize) -> Option<&'static Slot> {
    let s = slot(index_at(user)?.0?);
    (s.user == user).then_some(s)
}

/// The program lowered `RLIMIT_AS`, which counts reserved address space: give back the unused
/// tail of the current piece and use small pieces from now on.
pub fn trim() {
    if !active() {
        return;
    }
    LIMITED.store(true, Ordering::Relaxed);
    let mut b = LOCK.lock();
    if b.end > b.next {
        // SAFETY: [next, end) is reserved by us and holds no slot.
        unsafe { libc::munmap(b.next as *mut _, b.end - b.next) };
        let n = NPIECES.load(Ordering::Relaxed);
        if n > 0 && PIECES[n - 1].end.load(Ordering::Relaxed) == b.end {
            PIECES[n - 1].end.store(b.next, Ordering::Relaxed);
        }
        b.end = b.next;
    }
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
    if !active() || size > (1 << 36) || align > PAGE {
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
    let align = align.max(1);
    let data_pages = if mode == GuardMode::Underflow {
        size.div_ceil(PAGE).max(1)
    } else {
        // The block's end sits on the tail guard page; its start is aligned down.
        size.next_multiple_of(align).div_ceil(PAGE).max(1)
    };
    let total = (data_pages + 2) * PAGE;
    let mut bump = LOCK.lock();
    if bump.next + total > bump.end && !grow(&mut bump, total) {
        // No address space (RLIMIT_AS): the block is served in the default mode, where glibc
        // meets the limit as it would without memcheck.
        return None;
    }
    let start = bump.next;
    let data = start + PAGE;
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
    bump.next = start + total;
    drop(bump);
    LIVE.fetch_add(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, 1);
    crate::stats::add(|p| &p.guard_bytes, (data_pages * PAGE) as i64);
    Some(user)
}

/// The range of a guarded block's data pages (between its two guard pages).
pub fn data_range(s: &SlotView) -> (usize, usize) {
    (s.start + PAGE, s.end - PAGE)
}

/// The alignment a guarded block of `size` bytes gets by default: the largest power of two that
/// divides the size, at most 16 and at least 2. No C object of that size can need more (an
/// object's size is a multiple of its alignment, and `max_align_t` is 16), so the block ends
/// flush with its guard page. At least 2 because programs tag the low bit of heap pointers
/// (CPython 3.11 fails to start when a block of odd size sits at an odd address): a block of odd
/// size keeps one byte of canaried slop, where an overflow is found at free, not at the
/// instruction (`--guard-align=1` makes every block exact). Size 0 gets 16.
pub fn natural_align(size: usize) -> usize {
    if size == 0 {
        16
    } else {
        (1usize << size.trailing_zeros()).clamp(2, 16)
    }
}

/// The accessible bytes of a guarded block's data pages around it, which hold canaries:
/// `(before start, before len, after start, after len)`.
pub fn slop(user: usize) -> Option<(usize, usize, usize, usize)> {
    let s = slot_of(user)?.view();
    let (da, db) = data_range(&s);
    let end = s.user + s.size;
    Some((da, s.user - da, end, db - end))
}

/// Frees a guarded block: its pages are dropped and made inaccessible at once.
pub fn release(user: usize, free_stack: u32) {
    let Some(s) = slot_of(user) else { return };
    s.free_stack.store(free_stack, Ordering::Release);
    s.state.store(SLOT_FREED, Ordering::Release);
    let (a, b) = data_range(&s.view());
    if LIMITED.load(Ordering::Relaxed) {
        // Under RLIMIT_AS the freed block's address space is given back, as glibc would, so a
        // program that frees what it allocates never runs out of it. The range may be reused by
        // a later mapping, so a late access is caught only while it stays unmapped.
        // SAFETY: the pages belong to this freed block and nobody else.
        unsafe { libc::munmap(a as *mut _, b - a) };
    } else {
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
    }
    LIVE.fetch_sub(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, -1);
    crate::stats::add(|p| &p.guard_bytes, -((b - a) as i64));
}

/// Makes the page holding `addr` accessible again (continuing after a reported fault).
pub fn unprotect(addr: usize) {
    let page = addr & !(PAGE - 1);
    // SAFETY: the page lies in our pool; making it readable and writable lets the faulting
    // instruction complete, which is what continuing after a report means.
    let r = unsafe { libc::mprotect(page as *mut _, PAGE, libc::PROT_READ | libc::PROT_WRITE) };
    if r != 0 {
        // A freed block's pages given back under RLIMIT_AS: map a fresh page where nothing is.
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping.
        unsafe {
            libc::mmap(
                page as *mut _,
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
    }
}

/// Fork handlers.
pub fn lock() {
    LOCK.raw_lock();
}
pub fn unlock() {
    LOCK.raw_unlock();
}

/// The slots around `addr` in its piece: the one before the last starting at or below it, that
/// one, and the next.
pub fn around(addr: usize) -> [Option<SlotView>; 3] {
    let Some((i, last)) = index_at(addr) else {
        return [None; 3];
    };
    let first = piece_of(addr).map_or(last, |(first, _)| first);
    let next = i.map_or(first, |i| i + 1);
    [
        i.filter(|&i| i > first).map(|i| slot(i - 1).view()),
        i.map(|i| slot(i).view()),
        (next < last).then(|| slot(next).view()),
    ]
}

/// How far `addr` lies from a block's bytes (0 inside).
fn distance(addr: usize, s: &SlotView) -> usize {
    if addr < s.user {
        s.user - addr
    } else {
        addr.saturating_sub((s.user + s.size).saturating_sub(1))
    }
}

/// What a fault at `addr` in the pool means, given the slots around it ([`around`]): the nearest
/// block's overflow, underflow or use after free. Every slot owns its head and tail guard pages,
/// so the slot holding the address is chosen unless another block is strictly nearer. `None`: a
/// live block's own bytes (not a guard fault). Pure: tested without signals.
pub fn diagnose(
    addr: usize,
    slots: [Option<SlotView>; 3],
) -> Option<(memcheck_wire::ErrorKind, SlotView)> {
    use memcheck_wire::ErrorKind::*;
    let holder = slots[1].filter(|s| addr >= s.start && addr < s.end);
    let mut best: Option<SlotView> = holder;
    for s in slots.iter().flatten() {
        if best.is_none_or(|b| distance(addr, s) < distance(addr, &b)) {
            best = Some(*s);
        }
    }
    let b = best?;
    let inside_slot = addr >= b.start && addr < b.end;
    if b.freed && inside_slot {
        return Some((UseAfterFree, b));
    }
    if addr >= b.user && addr < b.user + b.size {
        // A live block's bytes are accessible: not ours to diagnose.
        return b.freed.then_some((UseAfterFree, b));
    }
    if addr < b.user {
        Some((HeapBufferUnderflow, b))
    } else {
        Some((HeapBufferOverflow, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memcheck_wire::ErrorKind::*;

    /// A slot at `start` with `pages` data pages, laid out as `allocate` does.
    fn slot(start: usize, pages: usize, size: usize, freed: bool, mode: GuardMode) -> SlotView {
        let end = start + (pages + 2) * PAGE;
        let user = if mode == GuardMode::Underflow {
            start + PAGE
        } else {
            (end - PAGE - size) & !(natural_align(size) - 1)
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
    fn natural_alignment_is_the_largest_power_of_two_dividing_the_size_up_to_16() {
        assert_eq!(natural_align(10), 2);
        assert_eq!(natural_align(13), 2);
        assert_eq!(natural_align(1), 2);
        assert_eq!(natural_align(42), 2);
        assert_eq!(natural_align(24), 8);
        assert_eq!(natural_align(48), 16);
        assert_eq!(natural_align(1 << 20), 16);
        assert_eq!(natural_align(0), 16);
    }

    #[test]
    fn a_byte_exact_block_ends_at_its_guard_page() {
        for size in [2usize, 10, 42, 4094, 4096, 5000] {
            let s = slot(
                0x10000,
                size.div_ceil(PAGE),
                size,
                false,
                GuardMode::Overflow,
            );
            assert_eq!(s.user + size, s.end - PAGE, "{size}");
            assert_eq!(
                diagnose(s.user + size, [None, Some(s), None]),
                Some((HeapBufferOverflow, s))
            );
        }
    }

    #[test]
    fn a_touch_of_a_freed_block_is_use_after_free() {
        let s = slot(0x10000, 2, 5000, true, GuardMode::Overflow);
        assert_eq!(
            diagnose(s.user + 10, [None, Some(s), None]),
            Some((UseAfterFree, s))
        );
    }

    #[test]
    fn live_data_pages_are_not_ours_to_diagnose() {
        let s = slot(0x10000, 1, 100, false, GuardMode::Overflow);
        assert_eq!(diagnose(s.user + 10, [None, Some(s), None]), None);
    }

    #[test]
    fn underflow_side_guard_is_before_the_block() {
        let s = slot(0x10000, 1, 100, false, GuardMode::Underflow);
        assert_eq!(
            diagnose(s.user - 1, [None, Some(s), None]),
            Some((HeapBufferUnderflow, s))
        );
    }

    #[test]
    fn a_far_underflow_is_the_block_it_precedes_not_the_previous_one() {
        // A small block, then a 1 MiB block: 4,000 bytes before the big one is in its head page.
        let a = slot(0x10000, 1, 16, false, GuardMode::Overflow);
        let b = slot(a.end, 256, 1 << 20, false, GuardMode::Overflow);
        assert_eq!(b.user, b.start + PAGE);
        let addr = b.user - 4000;
        assert_eq!(
            diagnose(addr, [Some(a), Some(b), None]),
            Some((HeapBufferUnderflow, b))
        );
        // Just past a's end is a's overflow, even seen from b's side of the pool.
        assert_eq!(
            diagnose(a.user + 16 + 8, [None, Some(a), Some(b)]),
            Some((HeapBufferOverflow, a))
        );
    }

    #[test]
    fn a_far_overflow_into_the_next_head_page_stays_with_the_nearer_block() {
        let a = slot(0x10000, 1, 16, false, GuardMode::Overflow);
        let b = slot(a.end, 1, 1, false, GuardMode::Overflow);
        let addr = a.user + 16 + 5000; // in b's head page, far from b's byte
        assert!(addr >= b.start && addr < b.start + PAGE);
        assert_eq!(
            diagnose(addr, [Some(a), Some(b), None]),
            Some((HeapBufferOverflow, a))
        );
    }

    #[test]
    fn gaps_go_to_the_nearest_block() {
        let a = slot(0x10000, 1, 4096, false, GuardMode::Overflow);
        let b = slot(0x40000, 1, 16, false, GuardMode::Overflow);
        assert_eq!(
            diagnose(a.end + 0x100, [None, Some(a), Some(b)]),
            Some((HeapBufferOverflow, a))
        );
        assert_eq!(
            diagnose(b.user - 8, [Some(a), Some(b), None]).unwrap().0,
            HeapBufferUnderflow
        );
    }
}
