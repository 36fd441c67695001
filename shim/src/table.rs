//! The block table: every block the shim handed out (but those `reentry` maps on their own) until
//! it leaves the quarantine, keyed by the user pointer. Live blocks and blocks waiting in the
//! quarantine both stay here, so a second free is told apart from a foreign pointer. Sharded by a hash of the address (64 shards, each an open-addressing
//! table behind its own spinlock) so threads rarely meet on one lock.
use crate::spin::SpinLock;
use crate::{heap, stats};
use core::sync::atomic::{fence, AtomicUsize, Ordering};
use memcheck_wire::Family;

const SHARDS: usize = 64;
const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;
const MIN_CAP: usize = 1024;

/// Whether a block is in use or waits in the quarantine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum BlockState {
    #[default]
    Live = 0,
    Freed = 1,
}

/// One block. A table's slots are fresh zeroed pages: zero is a valid value of every field
/// (`BlockState::Live`, `Family::Malloc`).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Entry {
    pub key: usize,
    pub size: usize,
    pub alloc_stack: u32,
    pub free_stack: u32,
    /// Bytes from the glibc block's start to the user pointer (the left redzone).
    pub base_off: u32,
    pub family: Family,
    pub state: BlockState,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Live blocks: the fork generation that allocated them (`opts::FORK_GEN`). Freed blocks:
    /// the free-fill byte written into them (valid with `FLAG_FILLED`). Read through
    /// [`Entry::fork_gen`] and [`Entry::free_fill`].
    pub gen_or_fill: u8,
}

impl Entry {
    /// The fork generation that allocated a live block.
    #[inline]
    pub fn fork_gen(&self) -> u8 {
        self.gen_or_fill
    }

    /// The byte a freed block was filled with, if it was filled.
    #[inline]
    pub fn free_fill(&self) -> Option<u8> {
        (self.state == BlockState::Freed && self.flags & FLAG_FILLED != 0)
            .then_some(self.gen_or_fill)
    }
}

/// The block lives in the guard pool (its own pages), not in glibc's heap.
pub const FLAG_GUARDED: u8 = 1;
/// The freed block was filled with [`Entry::free_fill`] (its first `canary::FILL_MAX` bytes).
pub const FLAG_FILLED: u8 = 2;
/// The bits above this shift hold `log2(alignment) + 1` of a block from an aligned `operator new`
/// (`align_val_t`), 0 for every other block; read through [`Entry::new_align`].
pub const NEW_ALIGN_SHIFT: u8 = 2;

impl Entry {
    /// The `align_val_t` an aligned `operator new` was given for this block; 0 for other blocks.
    #[inline]
    pub fn new_align(&self) -> usize {
        match self.flags >> NEW_ALIGN_SHIFT {
            0 => 0,
            n => 1 << (n - 1),
        }
    }
}

/// The flag bits recording an aligned `operator new`'s alignment `align` (a power of two).
#[inline]
pub fn new_align_flags(align: usize) -> u8 {
    if align == 0 {
        0
    } else {
        ((align.trailing_zeros() as u8 + 1) & 0x3f) << NEW_ALIGN_SHIFT
    }
}

struct Shard {
    slots: *mut Entry,
    cap: usize,
    used: usize,
    live: usize,
}

// SAFETY: a shard's slots are private pages only touched under the shard's lock.
unsafe impl Send for Shard {}

static TABLE: [SpinLock<Shard>; SHARDS] = [const {
    SpinLock::new(Shard {
        slots: core::ptr::null_mut(),
        cap: 0,
        used: 0,
        live: 0,
    })
}; SHARDS];

/// What a lookup without the lock ([`get`]) reads of a shard, on a line of its own: a seqlock
/// count, odd while the lock holder changes the shard's slots, and the slots' address with
/// `log2(cap)` in its low bits (the address is page-aligned), so the two are read as one.
#[repr(align(64))]
struct Published {
    seq: AtomicUsize,
    slots: AtomicUsize,
}

static PUBLISHED: [Published; SHARDS] = [const {
    Published {
        seq: AtomicUsize::new(0),
        slots: AtomicUsize::new(0),
    }
}; SHARDS];

/// Makes shard `i`'s count odd before its lock holder changes its slots.
#[inline]
fn write_begin(i: usize) {
    let p = &PUBLISHED[i];
    p.seq
        .store(p.seq.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    // Orders the odd count before the slot writes that follow: a reader that sees one of them
    // (its loads, then an acquire fence) sees the count changed.
    fence(Ordering::Release);
}

/// Makes shard `i`'s count even again once its slots are consistent.
#[inline]
fn write_end(i: usize) {
    let p = &PUBLISHED[i];
    p.seq
        .store(p.seq.load(Ordering::Relaxed) + 1, Ordering::Release);
}

/// Fibonacci hashing of the pointer: the top 6 bits of the product pick the shard and the bits
/// below them the slot (the low bits of a product are poor for pointers with a power-of-two
/// stride).
#[inline]
fn hash(key: usize) -> usize {
    ((key >> 4) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize
}

/// The home slot of a key in a table of `cap` (a power of two) slots.
#[inline]
fn home(key: usize, cap: usize) -> usize {
    (hash(key) << 6) >> (usize::BITS - cap.trailing_zeros())
}

impl Shard {
    fn slots(&mut self) -> &mut [Entry] {
        if self.slots.is_null() {
            return &mut [];
        }
        // SAFETY: slots points at cap committed entries owned by this shard.
        unsafe { core::slice::from_raw_parts_mut(self.slots, self.cap) }
    }

    fn find(&mut self, key: usize) -> Option<usize> {
        if self.cap == 0 {
            return None;
        }
        let mask = self.cap - 1;
        let mut i = home(key, self.cap);
        let slots = self.slots();
        loop {
            let k = slots[i].key;
            if k == key {
                return Some(i);
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Grows shard `index` (the caller made its count odd).
    fn grow(&mut self, index: usize) -> bool {
        let new_cap = (self.live * 2 + 2).next_power_of_two().max(MIN_CAP);
        let bytes = new_cap * core::mem::size_of::<Entry>();
        let p = heap::alloc_pages(bytes) as *mut Entry;
        if p.is_null() {
            return false;
        }
        // SAFETY: fresh zeroed pages of new_cap entries (EMPTY is 0).
        let new = unsafe { core::slice::from_raw_parts_mut(p, new_cap) };
        let mask = new_cap - 1;
        for e in self.slots().iter() {
            if e.key > TOMBSTONE {
                let mut i = home(e.key, new_cap);
                while new[i].key != EMPTY {
                    i = (i + 1) & mask;
                }
                new[i] = *e;
            }
        }
        if !self.slots.is_null() {
            // Its memory goes back, but the pages stay mapped (reading zeros): a lookup without
            // the lock may still be reading them, and finds the count changed afterwards.
            // SAFETY: the old slots, replaced below; nothing but such a reader touches them.
            unsafe {
                libc::madvise(
                    self.slots.cast(),
                    (self.cap * core::mem::size_of::<Entry>()).next_multiple_of(4096),
                    libc::MADV_DONTNEED,
                )
            };
        }
        self.slots = p;
        self.cap = new_cap;
        self.used = self.live;
        PUBLISHED[index].slots.store(
            p as usize | new_cap.trailing_zeros() as usize,
            Ordering::Relaxed,
        );
        true
    }

    /// Inserts into shard `index` (the caller made its count odd).
    fn insert(&mut self, e: Entry, index: usize) -> bool {
        if (self.used + 1) * 10 > self.cap * 7 && !self.grow(index) {
            return false;
        }
        let mask = self.cap - 1;
        let mut i = home(e.key, self.cap);
        let slots = self.slots();
        let mut reuse = None;
        loop {
            let k = slots[i].key;
            if k == e.key {
                slots[i] = e;
                return true;
            }
            if k == TOMBSTONE && reuse.is_none() {
                reuse = Some(i);
            }
            if k == EMPTY {
                break;
            }
            i = (i + 1) & mask;
        }
        let at = match reuse {
            Some(r) => r,
            None => {
                self.used += 1;
                i
            }
        };
        self.slots()[at] = e;
        self.live += 1;
        true
    }
}

#[inline]
pub fn shard_index(key: usize) -> usize {
    hash(key) >> (usize::BITS as usize - 6)
}

/// Records a live block; false if the table could not grow (out of memory).
pub fn insert(e: Entry) -> bool {
    // Marked first (a lookup that finds the mark before the entry takes it for a stale one), so
    // the registers `range` used are reused by what follows (see `range::add`).
    crate::marks::add(e.key, e.size);
    let i = shard_index(e.key);
    let mut s = TABLE[i].lock();
    write_begin(i);
    let ok = s.insert(e, i);
    write_end(i);
    if ok {
        stats::on_alloc(i, e.size);
    } else {
        crate::marks::remove(e.key);
    }
    ok
}

/// Starts loading the home slot of `key` into the cache (the free path calls it before the stack
/// walk, so the slot's miss overlaps it). Touches nothing: a prefetch never faults.
#[inline]
pub fn prefetch(key: usize) {
    let published = PUBLISHED[shard_index(key)].slots.load(Ordering::Relaxed);
    if published == 0 {
        return;
    }
    let slot =
        (published & !4095) + home(key, 1 << (published & 63)) * core::mem::size_of::<Entry>();
    prefetch_line(slot);
}

/// Starts loading the line at `addr` into the cache.
#[inline(always)]
pub fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing the program sees and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
}

/// A copy of the entry for `key`: read without the lock when no change of its shard is under
/// way (twice at most), else under it.
pub fn get(key: usize) -> Option<Entry> {
    let i = shard_index(key);
    for _ in 0..2 {
        if let Some(found) = get_unlocked(key, i) {
            return found;
        }
    }
    let mut s = TABLE[i].lock();
    let i = s.find(key)?;
    Some(s.slots()[i])
}

const ENTRY_WORDS: usize = core::mem::size_of::<Entry>() / 8;
const _: () = assert!(core::mem::size_of::<Entry>() == ENTRY_WORDS * 8);

/// [`get`] without the lock (a seqlock read of shard `i`): `None` when a change of the shard
/// overlapped the read.
#[inline]
fn get_unlocked(key: usize, i: usize) -> Option<Option<Entry>> {
    let p = &PUBLISHED[i];
    let s1 = p.seq.load(Ordering::Acquire);
    if s1 & 1 != 0 {
        return None;
    }
    let published = p.slots.load(Ordering::Relaxed);
    let mut words = [0u64; ENTRY_WORDS];
    let mut found = false;
    if published != 0 {
        let cap = 1usize << (published & 63);
        let base = published & !4095;
        let mut at = home(key, cap);
        for _ in 0..cap {
            let slot = base + at * core::mem::size_of::<Entry>();
            // SAFETY: the slots of this shard at some moment of the read: mapped for ever (a
            // grown shard's old slots stay mapped), so the load cannot fault; it may race with
            // the lock holder's plain writes, and the count's check below throws away what it
            // read then. Entries are 8-aligned.
            let k = unsafe { AtomicUsize::from_ptr(slot as *mut usize) }.load(Ordering::Relaxed);
            if k == key {
                for (w, word) in words.iter_mut().enumerate() {
                    // SAFETY: as above, the entry's words.
                    *word = unsafe {
                        core::sync::atomic::AtomicU64::from_ptr((slot + w * 8) as *mut u64)
                    }
                    .load(Ordering::Relaxed);
                }
                found = true;
                break;
            }
            if k == EMPTY {
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    fence(Ordering::Acquire);
    if p.seq.load(Ordering::Relaxed) != s1 {
        return None;
    }
    if !found {
        return Some(None);
    }
    // SAFETY: the count did not change while the words were read: they are a copy of an entry
    // the lock holder wrote whole, a valid `Entry`.
    Some(Some(unsafe {
        core::mem::transmute::<[u64; ENTRY_WORDS], Entry>(words)
    }))
}

/// The outcome of [`mark_freed`].
pub enum FreeLookup {
    /// The block was live; it is now marked freed. The entry as it was.
    Live(Entry),
    /// The block was already freed (it waits in the quarantine).
    AlreadyFreed(Entry),
    /// No block starts at this pointer.
    Unknown,
}

/// Marks a live block freed by a call at `free_stack`. For blocks in glibc memory, `fill` (the
/// free-fill byte, or negative for none) is written into the first `fill_max` bytes here, under
/// the shard lock, so a `fork` (whose prepare handler takes every shard lock) never sees a block
/// marked filled whose fill is half written.
pub fn mark_freed(
    key: usize,
    free_stack: u32,
    replace_alloc: bool,
    fill: i32,
    fill_max: usize,
) -> FreeLookup {
    let shard = shard_index(key);
    let mut s = TABLE[shard].lock();
    let Some(i) = s.find(key) else {
        return FreeLookup::Unknown;
    };
    let e = &mut s.slots()[i];
    if e.state == BlockState::Freed {
        return FreeLookup::AlreadyFreed(*e);
    }
    let before = *e;
    crate::marks::changed(shard);
    stats::on_free(shard, e.size);
    let filled = fill >= 0 && e.flags & FLAG_GUARDED == 0;
    if filled {
        // SAFETY: the block was live until now: its user bytes are ours to overwrite.
        unsafe { crate::bytes::set(key as *mut u8, fill as u8, e.size.min(fill_max)) };
    }
    write_begin(shard);
    e.state = BlockState::Freed;
    e.free_stack = free_stack;
    if replace_alloc {
        e.alloc_stack = 0;
    }
    if filled {
        e.flags |= FLAG_FILLED;
        e.gen_or_fill = fill as u8;
    }
    write_end(shard);
    FreeLookup::Live(before)
}

/// Changes the family of a live block (blocks that `operator new` got from `malloc`), and adds
/// `flags` (an aligned `operator new`'s alignment, [`new_align_flags`]).
pub fn set_family(key: usize, family: Family, flags: u8) {
    let index = shard_index(key);
    let mut s = TABLE[index].lock();
    if let Some(i) = s.find(key) {
        crate::marks::changed(index);
        write_begin(index);
        s.slots()[i].family = family;
        s.slots()[i].flags |= flags;
        write_end(index);
    }
}

/// The live or quarantined block whose user bytes contain `addr` (a slow scan of every shard, for
/// diagnosing a pointer into the middle of a block).
pub fn find_containing(addr: usize) -> Option<Entry> {
    find(|e| addr >= e.key && addr < e.key + e.size.max(1))
}

/// The first live or quarantined block for which `pred` holds (a slow scan of every shard, one
/// lock at a time: for diagnoses, never on a hot path).
pub fn find(mut pred: impl FnMut(&Entry) -> bool) -> Option<Entry> {
    for sh in TABLE.iter() {
        let mut s = sh.lock();
        let found = s
            .slots()
            .iter()
            .find(|e| e.key > TOMBSTONE && pred(e))
            .copied();
        if found.is_some() {
            return found;
        }
    }
    None
}

/// The live or quarantined block nearest to `addr` within `max` bytes of its whole extent
/// `[key - base_off, key + size + right)` (`right` gives a block's bytes after its user bytes),
/// with its distance (0 inside). A slow scan, for diagnosing a crash.
pub fn nearest(addr: usize, max: usize, right: impl Fn(&Entry) -> usize) -> Option<(Entry, usize)> {
    let mut best: Option<(Entry, usize)> = None;
    for sh in TABLE.iter() {
        let mut s = sh.lock();
        for e in s.slots().iter().filter(|e| e.key > TOMBSTONE) {
            let lo = e.key - e.base_off as usize;
            let hi = e.key + e.size + right(e);
            let d = if addr < lo {
                lo - addr
            } else if addr >= hi {
                addr - hi + 1
            } else {
                0
            };
            if d <= max && best.is_none_or(|(_, bd)| d < bd) {
                best = Some((*e, d));
            }
        }
    }
    best
}

/// Forgets a block (released to glibc).
pub fn remove(key: usize) -> Option<Entry> {
    let index = shard_index(key);
    let mut s = TABLE[index].lock();
    let i = s.find(key)?;
    let e = s.slots()[i];
    write_begin(index);
    s.slots()[i].key = TOMBSTONE;
    write_end(index);
    s.live -= 1;
    crate::marks::changed(index);
    crate::marks::remove(key);
    Some(e)
}

/// Calls `f` on every entry. The caller holds every shard's lock ([`lock_all`]), so no thread can
/// allocate or free meanwhile.
pub fn for_each_held(mut f: impl FnMut(&Entry)) {
    for sh in TABLE.iter() {
        // SAFETY: lock_all holds this shard's lock until the loop ends.
        let shard = unsafe { sh.held() };
        if shard.slots.is_null() {
            continue;
        }
        // SAFETY: slots holds cap entries owned by this shard.
        let slots = unsafe { core::slice::from_raw_parts(shard.slots, shard.cap) };
        for e in slots.iter().filter(|e| e.key > TOMBSTONE) {
            f(e);
        }
    }
}

/// Takes every shard lock (fork prepare, leak scan).
pub fn lock_all() {
    for s in TABLE.iter() {
        s.raw_lock();
    }
}

/// Releases what [`lock_all`] took.
pub fn unlock_all() {
    for s in TABLE.iter() {
        s.raw_unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: usize, size: usize) -> Entry {
        Entry {
            key,
            size,
            ..Entry::default()
        }
    }

    #[test]
    fn insert_free_remove_and_grow() {
        let base = 0x7000_0000_0000usize;
        for i in 0..5000 {
            assert!(insert(entry(base + i * 32, i)));
        }
        assert_eq!(get(base + 32 * 4999).map(|e| e.size), Some(4999));
        assert!(matches!(
            mark_freed(base, 9, false, -1, 0),
            FreeLookup::Live(_)
        ));
        match mark_freed(base, 10, false, -1, 0) {
            FreeLookup::AlreadyFreed(e) => assert_eq!(e.free_stack, 9),
            _ => panic!("second free not seen"),
        }
        assert!(matches!(
            mark_freed(base + 8, 1, false, -1, 0),
            FreeLookup::Unknown
        ));
        let mut n = 0;
        lock_all();
        for_each_held(|e| {
            if e.key >= base && e.key < base + 5000 * 32 {
                n += 1
            }
        });
        unlock_all();
        assert_eq!(n, 5000);
        for i in 0..5000 {
            assert!(remove(base + i * 32).is_some());
        }
        assert!(get(base + 64).is_none());
    }
}
