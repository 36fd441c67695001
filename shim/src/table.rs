//! The block table: every block the shim handed out (but those `reentry` maps on their own) until
//! it leaves the quarantine, keyed by the user pointer. Live blocks and blocks waiting in the
//! quarantine both stay here, so a second free is told apart from a foreign pointer. Sharded by a hash of the address (64 shards, each an open-addressing
//! table behind its own spinlock) so threads rarely meet on one lock.
use crate::spin::SpinLock;
use crate::{heap, stats};
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

    fn grow(&mut self) -> bool {
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
            heap::free_pages(self.slots.cast(), self.cap * core::mem::size_of::<Entry>());
        }
        self.slots = p;
        self.cap = new_cap;
        self.used = self.live;
        true
    }

    fn insert(&mut self, e: Entry) -> bool {
        if (self.used + 1) * 10 > self.cap * 7 && !self.grow() {
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
fn shard_index(key: usize) -> usize {
    hash(key) >> (usize::BITS as usize - 6)
}

fn shard(key: usize) -> &'static SpinLock<Shard> {
    &TABLE[shard_index(key)]
}

/// Records a live block; false if the table could not grow (out of memory).
pub fn insert(e: Entry) -> bool {
    let i = shard_index(e.key);
    let mut s = TABLE[i].lock();
    let ok = s.insert(e);
    if ok {
        stats::on_alloc(i, e.size);
    }
    ok
}

/// A copy of the entry for `key`.
pub fn get(key: usize) -> Option<Entry> {
    let mut s = shard(key).lock();
    let i = s.find(key)?;
    Some(s.slots()[i])
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
pub fn mark_freed(key: usize, free_stack: u32, fill: i32, fill_max: usize) -> FreeLookup {
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
    stats::on_free(shard, e.size);
    e.state = BlockState::Freed;
    e.free_stack = free_stack;
    if fill >= 0 && e.flags & FLAG_GUARDED == 0 {
        // SAFETY: the block was live until now: its user bytes are ours to overwrite.
        unsafe { core::ptr::write_bytes(key as *mut u8, fill as u8, e.size.min(fill_max)) };
        e.flags |= FLAG_FILLED;
        e.gen_or_fill = fill as u8;
    }
    FreeLookup::Live(before)
}

/// Changes the family of a live block (blocks that `operator new` got from `malloc`), and adds
/// `flags` (an aligned `operator new`'s alignment, [`new_align_flags`]).
pub fn set_family(key: usize, family: Family, flags: u8) {
    let mut s = shard(key).lock();
    if let Some(i) = s.find(key) {
        s.slots()[i].family = family;
        s.slots()[i].flags |= flags;
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
    let mut s = shard(key).lock();
    let i = s.find(key)?;
    let e = s.slots()[i];
    s.slots()[i].key = TOMBSTONE;
    s.live -= 1;
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
        assert!(matches!(mark_freed(base, 9, -1, 0), FreeLookup::Live(_)));
        match mark_freed(base, 10, -1, 0) {
            FreeLookup::AlreadyFreed(e) => assert_eq!(e.free_stack, 9),
            _ => panic!("second free not seen"),
        }
        assert!(matches!(
            mark_freed(base + 8, 1, -1, 0),
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
