//! Guard mode: blocks on pages of their own inside one large reservation. Each slot is
//! `[head guard page][data pages][tail guard page]`: the block ends exactly at the tail guard page
//! (overflow side) or starts exactly after the head one (underflow side), so a bad access on that
//! side faults at the instruction, even of one byte: the block's alignment is the largest power
//! of two dividing its size, at most 16 ([`natural_align`]; `--guard-align` fixes it instead).
//! The unused part of the first (overflow side) or last (underflow side) data page is canaried
//! whole, and the guard pages belong to their slot, so a far underflow or overflow faults and is
//! diagnosed against its own block.
//!
//! The pool recycles (GWP-ASan's scheme): a freed block's data pages are made PROT_NONE with one
//! `mprotect` (their memory kept), the block waits in the quarantine (counted by its pages), and
//! when the quarantine evicts it ([`recycle`]) its slot joins the free list of its size class
//! (the number of data pages, up to [`MAX_CLASS`]); the next block of that class takes the
//! oldest free slot and makes it accessible with one `mprotect`. A slot's data pages are a
//! mapping of their own (mapped without `MAP_NORESERVE`, unlike the reservation, so the kernel
//! never merges them with the guard pages): changing their protection never splits or merges a
//! mapping. Free slots beyond [`FREE_RESIDENT_MAX`] bytes have their pages dropped. Larger blocks
//! are not recycled: their pages are dropped at free and the range never reused. Under a finite
//! `RLIMIT_AS` the pool is reserved in 64 MiB pieces and a large freed block's range is unmapped
//! (given back, as glibc would): a late access is then caught only while the range stays
//! unmapped.
//!
//! A use after free is caught at the instruction while the block is quarantined or its slot
//! waits for reuse; once the slot holds a new block, a stale pointer into it reaches that live
//! block, which is not detected (GWP-ASan has the same limit). Each slot remembers its previous
//! tenant too, so a stale pointer to it that faults on a freed slot is that block's use after
//! free, not the slot's current tenant's.
//!
//! Every fresh slot is appended to an append-only log ordered by address; the fault handler
//! reads it without locks, each slot's tenant under a sequence counter (a seqlock: written under
//! [`LOCK`] when a slot is reused, read consistently by any thread). Each slot costs two mappings
//! (its data pages, and the guard pages between it and the next slot), live or not, so slots are
//! budgeted against `vm.max_map_count`; past the budget a free slot of another class is given
//! back, else blocks fall back to the default mode with one warning.
use crate::spin::SpinLock;
use crate::{heap, sys};
use core::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering,
};
use memcheck_wire::GuardMode;

pub const PAGE: usize = 4096;
const RESERVE: usize = 1 << 40;
const CHUNK: usize = 1 << 16;
const CHUNKS: usize = 4096;
/// Blocks of up to this many data pages (256 KiB) are recycled, one free list per page count.
pub const MAX_CLASS: usize = 64;
/// Free slots keep their pages (so reuse costs no page fault) up to this many bytes in all.
pub const FREE_RESIDENT_MAX: usize = 16 << 20;

pub const SLOT_LIVE: u8 = 0;
pub const SLOT_FREED: u8 = 1;

/// Slot flags: its data pages are a mapping of their own and it is recycled; a page of it was
/// made accessible after a reported fault (never recycled again); it waits in a free list with
/// its pages resident; its data pages were given back (past the mapping budget).
const RECYCLABLE: u8 = 1;
const TAINTED: u8 = 2;
const RESIDENT: u8 = 4;
const RETIRED: u8 = 8;

/// One block that lives or lived in a slot.
struct Tenant {
    user: AtomicUsize,
    size: AtomicUsize,
    alloc_stack: AtomicU32,
    free_stack: AtomicU32,
    family: AtomicU8,
    state: AtomicU8,
    mode: AtomicU8,
}

impl Tenant {
    const fn new(user: usize, size: usize, stack: u32, family: u8, mode: GuardMode) -> Tenant {
        Tenant {
            user: AtomicUsize::new(user),
            size: AtomicUsize::new(size),
            alloc_stack: AtomicU32::new(stack),
            free_stack: AtomicU32::new(0),
            family: AtomicU8::new(family),
            state: AtomicU8::new(SLOT_LIVE),
            mode: AtomicU8::new(mode as u8),
        }
    }
}

/// One slot of the pool: `[start, end)` is its whole range including both guard pages.
#[repr(C)]
pub struct Slot {
    pub start: usize,
    pub end: usize,
    /// Odd while the tenants are rewritten (reuse, under [`LOCK`]).
    seq: AtomicU32,
    flags: AtomicU8,
    cur: Tenant,
    /// The block before the current one (`user` 0: none); always freed.
    prev: Tenant,
    /// The next slot of its class's free list (index + 1; 0: none), under [`LOCK`].
    next_free: AtomicUsize,
}

/// A freed block that lived in a slot before its current tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prev {
    pub user: usize,
    pub size: usize,
    pub alloc_stack: u32,
    pub free_stack: u32,
    pub family: u8,
}

/// A copy of a slot and its tenant, for the pure diagnosis.
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
    pub prev: Option<Prev>,
}

impl SlotView {
    /// The slot as its previous tenant saw it (freed), if it had one.
    pub fn previous(&self) -> Option<SlotView> {
        let p = self.prev?;
        Some(SlotView {
            user: p.user,
            size: p.size,
            alloc_stack: p.alloc_stack,
            free_stack: p.free_stack,
            family: p.family,
            freed: true,
            prev: None,
            ..*self
        })
    }
}

impl Slot {
    fn raw_view(&self) -> SlotView {
        let c = &self.cur;
        let p = &self.prev;
        let prev_user = p.user.load(Ordering::Relaxed);
        SlotView {
            start: self.start,
            end: self.end,
            user: c.user.load(Ordering::Relaxed),
            size: c.size.load(Ordering::Relaxed),
            alloc_stack: c.alloc_stack.load(Ordering::Relaxed),
            free_stack: c.free_stack.load(Ordering::Acquire),
            family: c.family.load(Ordering::Relaxed),
            freed: c.state.load(Ordering::Acquire) == SLOT_FREED,
            mode: GuardMode::from_u8(c.mode.load(Ordering::Relaxed)).unwrap_or(GuardMode::Overflow),
            prev: (prev_user != 0).then(|| Prev {
                user: prev_user,
                size: p.size.load(Ordering::Relaxed),
                alloc_stack: p.alloc_stack.load(Ordering::Relaxed),
                free_stack: p.free_stack.load(Ordering::Relaxed),
                family: p.family.load(Ordering::Relaxed),
            }),
        }
    }

    /// A consistent copy of the slot's tenants (retried while a reuse rewrites them; a writer
    /// that never finishes, e.g. preempted for good, yields the last copy read).
    fn view(&self) -> SlotView {
        for _ in 0..10_000 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let v = self.raw_view();
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return v;
                }
            }
            core::hint::spin_loop();
        }
        self.raw_view()
    }

    /// A new tenant moves in (LOCK held): the current one becomes the previous one.
    fn retenant(&self, user: usize, size: usize, stack: u32, family: u8, mode: GuardMode) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        let (c, p) = (&self.cur, &self.prev);
        let r = Ordering::Relaxed;
        p.user.store(c.user.load(r), r);
        p.size.store(c.size.load(r), r);
        p.alloc_stack.store(c.alloc_stack.load(r), r);
        p.free_stack.store(c.free_stack.load(r), r);
        p.family.store(c.family.load(r), r);
        p.state.store(SLOT_FREED, r);
        c.user.store(user, r);
        c.size.store(size, r);
        c.alloc_stack.store(stack, r);
        c.free_stack.store(0, r);
        c.family.store(family, r);
        c.mode.store(mode as u8, r);
        c.state.store(SLOT_LIVE, r);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn data_pages(&self) -> usize {
        (self.end - self.start) / PAGE - 2
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
/// The lowest start and highest end of any piece ever reserved: [`contains`]'s one-compare
/// answer for the addresses far from the pool (production mode's every `free`).
static LOW: AtomicUsize = AtomicUsize::new(usize::MAX);
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// `RLIMIT_AS` is finite: pieces are small and freed blocks give their address space back.
static LIMITED: AtomicBool = AtomicBool::new(false);

/// The piece being carved (the next free byte and its end) and the free lists of recycled
/// slots, oldest first (slot index + 1; 0: empty), by data page count; taken to allocate a slot.
struct Pool {
    next: usize,
    end: usize,
    head: [usize; MAX_CLASS + 1],
    tail: [usize; MAX_CLASS + 1],
}
static LOCK: SpinLock<Pool> = SpinLock::new(Pool {
    next: 0,
    end: 0,
    head: [0; MAX_CLASS + 1],
    tail: [0; MAX_CLASS + 1],
});
/// Live guarded blocks.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Slots that cost two mappings: every recyclable slot, and the live unrecycled ones.
static MAPPED: AtomicUsize = AtomicUsize::new(0);
/// How many such slots the mapping budget allows.
static BUDGET: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Slots in the free lists.
static FREE_SLOTS: AtomicUsize = AtomicUsize::new(0);
/// Bytes of free slots whose pages are kept.
static FREE_RESIDENT: AtomicUsize = AtomicUsize::new(0);
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
fn grow(b: &mut Pool, len: usize) -> bool {
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
    LOW.fetch_min(p, Ordering::Relaxed);
    HIGH.fetch_max(p + size, Ordering::Relaxed);
    PIECES[n]
        .first
        .store(COUNT.load(Ordering::Relaxed), Ordering::Relaxed);
    NPIECES.store(n + 1, Ordering::Release);
    b.next = p;
    b.end = p + size;
    true
}

/// The pool could not be reserved at init: guard mode is off for good.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Whether [`init`] found no address space for the pool (not merely: init has not run yet).
pub fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

/// Reserves the pool and sets the mapping budget. Called once at init in guard mode.
pub fn init() {
    LIMITED.store(as_limited(), Ordering::Relaxed);
    if !grow(&mut LOCK.lock(), 0) {
        FAILED.store(true, Ordering::Relaxed);
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
    // Two mappings per slot, with headroom for the program's own mappings.
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
#[inline]
pub fn contains(addr: usize) -> bool {
    // A block of the pool was handed out after its piece's bounds were stored, so a caller
    // holding one sees them.
    if addr < LOW.load(Ordering::Relaxed) || addr >= HIGH.load(Ordering::Relaxed) {
        return false;
    }
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

per_thread! {
    /// The slot this thread looked up last (index + 1): a block's free looks its slot up
    /// several times.
    static LAST: core::cell::Cell<usize>;
}

/// The slot whose range holds `addr`, and its index.
fn holder(addr: usize) -> Option<(usize, &'static Slot)> {
    let last = LAST.with(|c| c.get());
    if let Some(i) = last.checked_sub(1) {
        // Slots are never moved or removed, so a slot that holds `addr` still does.
        let s = slot(i);
        if addr >= s.start && addr < s.end {
            return Some((i, s));
        }
    }
    let i = index_at(addr)?.0?;
    let s = slot(i);
    if addr < s.end {
        LAST.with(|c| c.set(i + 1));
        Some((i, s))
    } else {
        None
    }
}

/// The slot whose current tenant's user pointer is exactly `user`, and that tenant.
fn current(user: usize) -> Option<(&'static Slot, SlotView)> {
    let (_, s) = holder(user)?;
    let v = s.view();
    (v.user == user).then_some((s, v))
}

/// The current tenant of a slot whose user pointer is exactly `user` (live or freed).
pub fn tenant(user: usize) -> Option<SlotView> {
    current(user).map(|(_, v)| v)
}

/// The freed block whose user pointer is exactly `user`: its slot's current tenant if freed,
/// or the tenant before it (a block freed long ago whose slot was reused).
pub fn freed_tenant(user: usize) -> Option<SlotView> {
    let v = holder(user)?.1.view();
    if v.user == user {
        return v.freed.then_some(v);
    }
    v.previous().filter(|p| p.user == user)
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

/// Takes the oldest free slot of `class` (LOCK held), and whether its pages were kept.
fn pop(pool: &mut Pool, class: usize) -> Option<(usize, bool)> {
    let i = pool.head[class].checked_sub(1)?;
    let s = slot(i);
    pool.head[class] = s.next_free.swap(0, Ordering::Relaxed);
    if pool.head[class] == 0 {
        pool.tail[class] = 0;
    }
    FREE_SLOTS.fetch_sub(1, Ordering::Relaxed);
    let kept = s.flags.fetch_and(!RESIDENT, Ordering::Relaxed) & RESIDENT != 0;
    if kept {
        FREE_RESIDENT.fetch_sub(s.data_pages() * PAGE, Ordering::Relaxed);
    }
    Some((i, kept))
}

/// Gives back the data pages of a free slot of any class, so a slot of another class fits in
/// the mapping budget (LOCK held); false if no class has one.
fn retire_one(pool: &mut Pool) -> bool {
    for class in 1..=MAX_CLASS {
        if let Some((i, _)) = pop(pool, class) {
            let s = slot(i);
            s.flags.fetch_or(RETIRED, Ordering::Relaxed);
            // SAFETY: the free slot's data pages are ours; a PROT_NONE reservation mapping over
            // them returns their memory and merges with the guard pages around them.
            unsafe { remap_none(s.start + PAGE, s.data_pages() * PAGE) };
            MAPPED.fetch_sub(1, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Replaces `[a, a + len)` with a fresh PROT_NONE reservation mapping.
///
/// # Safety
/// The range must be guard-pool memory that no live block uses.
unsafe fn remap_none(a: usize, len: usize) {
    // SAFETY: per the caller.
    unsafe {
        libc::mmap(
            a as *mut _,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
}

/// Where a block's user bytes start in a slot whose data pages start at `data`.
fn place(data: usize, data_pages: usize, size: usize, align: usize, mode: GuardMode) -> usize {
    if mode == GuardMode::Underflow {
        data
    } else {
        (data + data_pages * PAGE - size) & !(align - 1)
    }
}

fn over_budget_warning() {
    if WARNED.swap(1, Ordering::Relaxed) == 0 {
        crate::log!(
            "warning: live guarded blocks reach the budget of vm.max_map_count ({} slots, counting freed ones awaiting reuse); further blocks get canaries instead of guard pages (raise vm.max_map_count or use --sample-rate)",
            MAPPED.load(Ordering::Relaxed)
        );
        crate::record::emit(&memcheck_wire::Record::Note(memcheck_wire::Note {
            text: b"guard pages exhausted vm.max_map_count's budget; later blocks were served with canaries",
        }));
    }
}

/// Where a guarded block's pages came from, which says what must be written into them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pages {
    /// Zero pages (a fresh slot, or a free slot whose pages were dropped): the slop needs its
    /// canaries, the block needs no zeroing.
    Zero,
    /// A recycled slot's kept pages: the slop holds the canaries the previous tenant's free
    /// checked (and repaired) except where that block's bytes were ([`stale_slop`]); the
    /// block's bytes hold old data.
    Kept,
}

/// Allocates a guarded block: its user pointer, and what its pages hold. `None` when the pool
/// or the mapping budget is exhausted (the caller then serves the block in the default mode).
pub fn allocate(
    size: usize,
    align: usize,
    family: u8,
    stack: u32,
    mode: GuardMode,
) -> Option<(usize, Pages)> {
    if !active() || size > (1 << 36) || align > PAGE {
        return None;
    }
    let align = align.max(1);
    let data_pages = if mode == GuardMode::Underflow {
        size.div_ceil(PAGE).max(1)
    } else {
        // The block's end sits on the tail guard page; its start is aligned down.
        size.next_multiple_of(align).div_ceil(PAGE).max(1)
    };
    let recyclable = data_pages <= MAX_CLASS;
    if MAPPED.load(Ordering::Relaxed) >= BUDGET.load(Ordering::Relaxed)
        && FREE_SLOTS.load(Ordering::Relaxed) == 0
    {
        // No slot to reuse or give back: not worth the lock.
        over_budget_warning();
        return None;
    }
    let mut pool = LOCK.lock();
    if recyclable {
        if let Some((i, kept)) = pop(&mut pool, data_pages) {
            let s = slot(i);
            let data = s.start + PAGE;
            // SAFETY: the free slot's data pages are ours and nobody uses them.
            let r = unsafe {
                libc::mprotect(
                    data as *mut _,
                    data_pages * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if r != 0 {
                // Left out of the free lists: it stays PROT_NONE and is never reused.
                return None;
            }
            let user = place(data, data_pages, size, align, mode);
            s.retenant(user, size, stack, family, mode);
            drop(pool);
            LIVE.fetch_add(1, Ordering::Relaxed);
            crate::stats::add(|p| &p.guard_blocks, 1);
            crate::stats::add(|p| &p.guard_bytes, (data_pages * PAGE) as i64);
            return Some((user, if kept { Pages::Kept } else { Pages::Zero }));
        }
    }
    if MAPPED.load(Ordering::Relaxed) >= BUDGET.load(Ordering::Relaxed) && !retire_one(&mut pool) {
        drop(pool);
        over_budget_warning();
        return None;
    }
    let total = (data_pages + 2) * PAGE;
    if pool.next + total > pool.end && !grow(&mut pool, total) {
        // No address space (RLIMIT_AS): the block is served in the default mode, where glibc
        // meets the limit as it would without memcheck.
        return None;
    }
    let start = pool.next;
    let data = start + PAGE;
    let ok = if recyclable {
        // A mapping of its own: without MAP_NORESERVE its flags differ from the reservation's,
        // so the kernel never merges it with the guard pages and later protection changes
        // neither split nor merge mappings.
        // SAFETY: [data, data + data_pages pages) is inside our reservation and unused.
        let p = unsafe {
            libc::mmap(
                data as *mut _,
                data_pages * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        p as usize == data
    } else {
        // SAFETY: as above.
        unsafe {
            libc::mprotect(
                data as *mut _,
                data_pages * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
            ) == 0
        }
    };
    if !ok {
        return None;
    }
    let user = place(data, data_pages, size, align, mode);
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
            seq: AtomicU32::new(0),
            flags: AtomicU8::new(if recyclable { RECYCLABLE } else { 0 }),
            cur: Tenant::new(user, size, stack, family, mode),
            prev: Tenant::new(0, 0, 0, 0, mode),
            next_free: AtomicUsize::new(0),
        })
    };
    COUNT.store(i + 1, Ordering::Release);
    pool.next = start + total;
    drop(pool);
    MAPPED.fetch_add(1, Ordering::Relaxed);
    LIVE.fetch_add(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, 1);
    crate::stats::add(|p| &p.guard_bytes, (data_pages * PAGE) as i64);
    Some((user, Pages::Zero))
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
    let s = tenant(user)?;
    let (da, db) = data_range(&s);
    let end = s.user + s.size;
    Some((da, s.user - da, end, db - end))
}

/// The parts of a block's slop that its slot's previous tenant's bytes covered (up to two
/// ranges, `(start, len)`, empty as `(0, 0)`): after a [`Pages::Kept`] reuse, the only slop bytes
/// that do not hold canaries.
pub fn stale_slop(user: usize) -> [(usize, usize); 2] {
    let Some(v) = tenant(user) else {
        return [(0, 0); 2];
    };
    let Some(p) = v.prev else {
        return [(0, 0); 2];
    };
    let (da, db) = data_range(&v);
    let (pa, pb) = (p.user.max(da), (p.user + p.size).min(db));
    let (ua, ub) = (v.user, v.user + v.size);
    let part = |a: usize, b: usize| if a < b { (a, b - a) } else { (0, 0) };
    [part(pa, pb.min(ua)), part(pa.max(ub), pb)]
}

/// What a freed guarded block weighs in the quarantine: the pages it keeps when its slot is
/// recycled, else its size (its pages were dropped at free).
pub fn footprint(user: usize) -> usize {
    match current(user) {
        Some((s, v)) if s.flags.load(Ordering::Relaxed) & RECYCLABLE != 0 => {
            v.end - v.start - 2 * PAGE
        }
        Some((_, v)) => v.size.max(16),
        None => 16,
    }
}

/// Frees a guarded block: its pages are made inaccessible at once (and dropped unless its slot
/// is recycled).
pub fn release(user: usize, free_stack: u32) {
    release_as(user, free_stack, false)
}

/// [`release`]; with `replace_alloc` (`--keep-stacktraces=alloc-then-free`) the free stack takes
/// the allocation stack's place in the slot's tenant.
pub fn release_as(user: usize, free_stack: u32, replace_alloc: bool) {
    let Some((s, v)) = current(user) else { return };
    if replace_alloc {
        s.cur.alloc_stack.store(0, Ordering::Relaxed);
    }
    s.cur.free_stack.store(free_stack, Ordering::Release);
    s.cur.state.store(SLOT_FREED, Ordering::Release);
    let (a, b) = data_range(&v);
    if s.flags.load(Ordering::Relaxed) & RECYCLABLE != 0 {
        // One protection change of the slot's own mapping; its memory stays for the next tenant.
        // SAFETY: the pages belong to this freed block and nobody else.
        unsafe { libc::mprotect(a as *mut _, b - a, libc::PROT_NONE) };
    } else {
        if LIMITED.load(Ordering::Relaxed) {
            // Under RLIMIT_AS the freed block's address space is given back, as glibc would, so
            // a program that frees what it allocates never runs out of it. The range may be
            // reused by a later mapping, so a late access is caught only while it stays
            // unmapped.
            // SAFETY: the pages belong to this freed block and nobody else.
            unsafe { libc::munmap(a as *mut _, b - a) };
        } else {
            // SAFETY: the pages belong to this freed block; replacing them with a fresh
            // PROT_NONE mapping returns their memory and makes every later access fault.
            unsafe { remap_none(a, b - a) };
        }
        MAPPED.fetch_sub(1, Ordering::Relaxed);
    }
    LIVE.fetch_sub(1, Ordering::Relaxed);
    crate::stats::add(|p| &p.guard_blocks, -1);
    crate::stats::add(|p| &p.guard_bytes, -((b - a) as i64));
}

/// The freed block at `user` left the quarantine: its slot joins the free list of its class
/// (oldest first), its pages kept while the free slots' pages stay under
/// [`FREE_RESIDENT_MAX`], else dropped. A slot that is not recycled, or was unprotected after a
/// reported fault, stays as it is.
pub fn recycle(user: usize) {
    let Some((i, s)) = holder(user) else { return };
    let v = s.view();
    if v.user != user {
        return;
    }
    let flags = s.flags.load(Ordering::Relaxed);
    if !v.freed || flags & RECYCLABLE == 0 || flags & (TAINTED | RETIRED) != 0 {
        return;
    }
    let class = s.data_pages();
    let bytes = class * PAGE;
    let resident = FREE_RESIDENT.load(Ordering::Relaxed) + bytes <= FREE_RESIDENT_MAX;
    if resident {
        FREE_RESIDENT.fetch_add(bytes, Ordering::Relaxed);
        s.flags.fetch_or(RESIDENT, Ordering::Relaxed);
    } else {
        // Before it is listed: once listed another thread may take it.
        // SAFETY: the freed slot's pages are ours and PROT_NONE; dropping them loses nothing.
        unsafe { libc::madvise((s.start + PAGE) as *mut _, bytes, libc::MADV_DONTNEED) };
    }
    let mut pool = LOCK.lock();
    s.next_free.store(0, Ordering::Relaxed);
    match pool.tail[class].checked_sub(1) {
        Some(t) => slot(t).next_free.store(i + 1, Ordering::Relaxed),
        None => pool.head[class] = i + 1,
    }
    pool.tail[class] = i + 1;
    FREE_SLOTS.fetch_add(1, Ordering::Relaxed);
}

/// Makes the page holding `addr` accessible again (continuing after a reported fault). Its slot
/// is never recycled after that: its guard or freed pages are no longer PROT_NONE.
pub fn unprotect(addr: usize) {
    let page = addr & !(PAGE - 1);
    if let Some((_, s)) = holder(addr) {
        s.flags.fetch_or(TAINTED, Ordering::Relaxed);
    }
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

fn in_bytes(addr: usize, s: &SlotView) -> bool {
    addr >= s.user && addr < s.user + s.size
}

/// What a fault at `addr` in the pool means, given the slots around it ([`around`]): the nearest
/// block's overflow, underflow or use after free. Every slot owns its head and tail guard pages,
/// so the slot holding the address is chosen unless another block is strictly nearer. A fault
/// inside a freed slot is a use after free: of the previous tenant when the address is among its
/// bytes and not the current one's (a stale pointer to a block freed before the slot was
/// reused), else of the current tenant. `None`: a live block's own bytes (not a guard fault).
/// Pure: tested without signals.
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
        if !in_bytes(addr, &b) {
            if let Some(p) = b.previous().filter(|p| in_bytes(addr, p)) {
                return Some((UseAfterFree, p));
            }
        }
        return Some((UseAfterFree, b));
    }
    if in_bytes(addr, &b) {
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
            prev: None,
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

    #[test]
    fn a_stale_pointer_to_the_previous_tenant_of_a_freed_slot_is_that_blocks_use_after_free() {
        // The slot held a 4,000-byte block (freed), then a 16-byte one, freed too.
        let mut s = slot(0x10000, 1, 16, true, GuardMode::Overflow);
        let old = Prev {
            user: s.end - PAGE - 4000,
            size: 4000,
            alloc_stack: 7,
            free_stack: 8,
            family: 1,
        };
        s.prev = Some(old);
        s.free_stack = 9;
        let (kind, v) = diagnose(old.user + 10, [None, Some(s), None]).unwrap();
        assert_eq!(kind, UseAfterFree);
        assert_eq!(
            (v.user, v.size, v.alloc_stack, v.free_stack),
            (old.user, 4000, 7, 8)
        );
        // Inside the current tenant's bytes: the current (freed) block, not the old one.
        let (kind, v) = diagnose(s.user + 1, [None, Some(s), None]).unwrap();
        assert_eq!(kind, UseAfterFree);
        assert_eq!((v.user, v.size, v.free_stack), (s.user, 16, 9));
        // Outside both: the current tenant's use after free, as before.
        let (_, v) = diagnose(s.start + PAGE, [None, Some(s), None]).unwrap();
        assert_eq!(v.user, s.user);
    }

    #[test]
    fn a_reused_slot_is_diagnosed_as_its_live_tenant() {
        // The previous tenant is ignored while the slot is live: its guard pages are the new
        // block's, and its data pages are accessible (a stale pointer there is not detected).
        let mut s = slot(0x10000, 1, 100, false, GuardMode::Overflow);
        s.prev = Some(Prev {
            user: s.end - PAGE - 200,
            size: 200,
            alloc_stack: 7,
            free_stack: 8,
            family: 0,
        });
        assert_eq!(
            diagnose(s.end - PAGE, [None, Some(s), None]),
            Some((HeapBufferOverflow, s))
        );
    }
}
