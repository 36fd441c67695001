//! Which tracked block holds an address, for the checked memory and string functions of
//! [`crate::memfn`]: the nearest marked block start below or above the address
//! ([`crate::marks`], lock-free), then its entry from [`crate::table`] (its shard's lock only),
//! which gives the size and state: the answer is always checked against the table, so a stale
//! mark can cost time but never a wrong verdict. A per-thread cache of live blocks, valid while
//! their shard's generation is unchanged, skips the search and the lock.
use crate::marks::{self, GEN, GRANULE_SHIFT, RETRIES};
use crate::table::{self, Entry};
use core::cell::Cell;
use core::sync::atomic::Ordering;

pub use crate::marks::maybe_tracked;

/// Where an address lies relative to the tracked blocks.
#[derive(Clone, Copy)]
pub enum Place {
    /// In the user bytes of this block (live or quarantined).
    Inside(Entry),
    /// Not in any block's user bytes but in the memory around one: past the end of this block
    /// (its right redzone, the rest of its glibc chunk or guard page)...
    After(Entry),
    /// ... or before the start of this one (its chunk header and left redzone, or the guard page
    /// before it); the nearer block when both.
    Before(Entry),
    /// Nowhere near a tracked block; the next block's user pointer lies at or after the address
    /// given (`usize::MAX`: none in this region).
    Outside(usize),
}

/// The end of the memory that belongs to block `e` past its user bytes: for a block in glibc's
/// heap its right redzone and the rest of its glibc chunk (read from the chunk's size word), for
/// a guarded block the rest of its last page and the guard page. An address past it is another
/// object's (a mapping next to a large block, the program's own arena): not this block's
/// overflow.
fn after_limit(e: &Entry) -> usize {
    let end = e.key + e.size;
    if e.flags & table::FLAG_GUARDED != 0 {
        return end.next_multiple_of(PAGE) + PAGE;
    }
    let base = e.key - e.base_off as usize;
    // SAFETY: a block in the table is still glibc's allocation: its chunk header precedes it.
    let word = unsafe { *((base - 8) as *const usize) };
    let chunk = word & !7;
    if !(32..(1 << 47)).contains(&chunk) {
        return end + 16 - (e.size & 15); // the right redzone
    }
    // An in-use chunk's usable bytes run into the next chunk's first word; an mmapped chunk
    // ends where its mapping ends.
    if word & 2 != 0 {
        base - 16 + chunk
    } else {
        base - 8 + chunk
    }
    .max(end)
}

/// The start of the memory that belongs to block `e` before its user bytes: its glibc chunk's
/// header and left redzone, or for a guarded block its first page and the page before it.
fn before_limit(e: &Entry) -> usize {
    if e.flags & table::FLAG_GUARDED != 0 {
        return (e.key & !(PAGE - 1)).saturating_sub(PAGE);
    }
    (e.key - e.base_off as usize).saturating_sub(16)
}

const PAGE: usize = 4096;

const CACHED: usize = 4;

/// The live blocks this thread's last lookups found (user bytes `[key, end)`), with their shard
/// and its generation then (`shard << 32 | gen`): a string loop over a few blocks skips the
/// search and the table's lock. Both addresses are kept complemented: the leak scan reads this
/// thread's TLS as a root, and a plain copy of a pointer here would keep a lost block reachable.
struct Cache {
    keys: [Cell<usize>; CACHED],
    ends: [Cell<usize>; CACHED],
    tags: [Cell<usize>; CACHED],
    next: Cell<usize>,
}

// SAFETY: every field is a Cell of an integer; all-zero is the empty cache (a complemented key
// of 0 matches no block).
unsafe impl crate::fasttls::Zeroed for Cache {}
// SAFETY: made of Cells, so not Sync.
unsafe impl crate::fasttls::PerThread for Cache {}

per_thread! {
    static CACHE: Cache;
}

/// The end of the live block holding `addr`, if this thread found it lately and its shard has
/// not changed since: the lock-free fast path of the checks.
#[inline]
pub fn live_end(addr: usize) -> Option<usize> {
    CACHE.with(|c| {
        for i in 0..CACHED {
            let end = !c.ends[i].get();
            if addr < end && addr >= !c.keys[i].get() {
                let tag = c.tags[i].get();
                let shard = tag >> 32;
                if GEN[shard & 63].load(Ordering::Acquire) as usize == tag & 0xffff_ffff {
                    return Some(end);
                }
            }
        }
        None
    })
}

fn cache_put(e: &Entry, shard: usize, gen: u32) {
    put(e.key, e.key + e.size, shard, gen);
}

#[inline]
fn put(key: usize, end: usize, shard: usize, gen: u32) {
    CACHE.with(|c| {
        let i = c.next.get();
        c.next.set((i + 1) % CACHED);
        c.keys[i].set(!key);
        c.ends[i].set(!end);
        c.tags[i].set(shard << 32 | gen as usize);
    });
}

/// A block this thread is allocating (before the table records it): the checks of the calls
/// that fill it right after (a `memcpy` into a fresh string) find it here without a lookup. Its
/// shard's generation is read now: a later free of any block of the shard, this one included,
/// drops the verdict. Nothing is cached with `--check-mem-functions=no`.
#[inline]
pub fn note_new(key: usize, size: usize) {
    if size == 0 || !crate::opts::CHECK_MEM_FNS.load(Ordering::Relaxed) {
        return;
    }
    let shard = table::shard_index(key);
    put(key, key + size, shard, GEN[shard].load(Ordering::Acquire));
}

/// Drops what [`note_new`] cached of a block the table could not record.
pub fn forget(key: usize) {
    CACHE.with(|c| {
        for i in 0..CACHED {
            if !c.keys[i].get() == key {
                c.ends[i].set(!0);
                c.keys[i].set(!0);
            }
        }
    });
}

/// The block whose user pointer lies in the granule starting at `g`, if the table still holds
/// it. Blocks in glibc's heap start on a granule; a guarded block may start anywhere in one (its
/// end flush with its guard page), and guarded blocks are pages apart, so one granule holds at
/// most one of them.
#[inline]
fn entry_at(g: usize) -> Option<Entry> {
    let shard = table::shard_index(g);
    // Read before the entry: a change after it shows as a new generation.
    let gen = GEN[shard].load(Ordering::Acquire);
    if let Some(e) = table::get(g) {
        if e.state == table::BlockState::Live && e.size > 0 {
            cache_put(&e, shard, gen);
        }
        return Some(e);
    }
    if crate::opts::guard_mode() == memcheck_wire::GuardMode::Off {
        return None;
    }
    (1..1 << GRANULE_SHIFT).find_map(|i| table::get(g + i))
}

/// Where `addr` lies. Only for an address [`maybe_tracked`] said yes to.
pub fn place(addr: usize) -> Place {
    let mut below = None;
    let mut above = None;
    let mut from = addr;
    for _ in 0..RETRIES {
        let Some(g) = marks::prev_key(from) else {
            break;
        };
        match entry_at(g) {
            Some(e) if e.key <= addr => {
                if addr < e.key + e.size {
                    return Place::Inside(e);
                }
                below = Some(e);
                break;
            }
            // A block starting in addr's own granule, after it.
            Some(e) => above = Some(e),
            // A stale mark (the block is leaving the table): look further down.
            None => {}
        }
        if g == 0 {
            break;
        }
        from = g - 1;
    }
    // The nearest block above: its start is at most a left redzone, a chunk header and a
    // guard page away when addr belongs to it.
    let reach = crate::opts::REDZONE.load(Ordering::Relaxed) + 4 * PAGE;
    let mut next_mark = usize::MAX;
    if above.is_none() {
        let next = (addr | ((1 << GRANULE_SHIFT) - 1)) + 1;
        let g = marks::next_key(next);
        next_mark = g.unwrap_or(usize::MAX);
        above = g.filter(|&g| g - addr <= reach).and_then(entry_at);
    }
    let above = above.filter(|e| addr >= before_limit(e));
    let below = below.filter(|e| addr < after_limit(e));
    match (below, above) {
        (Some(b), Some(a)) if addr - (b.key + b.size) < a.key - addr => Place::After(b),
        (_, Some(a)) => Place::Before(a),
        (Some(b), None) => Place::After(b),
        (None, None) => Place::Outside(next_mark.saturating_sub(reach)),
    }
}
