//! Allocation calls per allocation stack since the process image started (or forked): the
//! `allocs` of `memcheck stats --sites`, heaptrack's "allocations" (freed blocks included).
//!
//! Off the shared cache lines: each thread counts into a block of its own (a direct-mapped
//! array of [`WAYS`] words, each a stack id and a count packed together), written only by that
//! thread with a plain load and store. A word whose slot is wanted by another stack is evicted:
//! its count is added to the process-wide array [`COUNTS`] (an atomic add, rare: only when two
//! stacks of one thread share a slot). The blocks are kept on a list the sites request reads;
//! an eviction runs inside the block's sequence count, so a reader that saw no sequence change
//! between reading the blocks and the array counted every call once. A thread's block outlives
//! it (its counts stay on the list) and is taken over by a thread started later.
use crate::{heap, sys};
use core::cell::Cell;
use core::sync::atomic::{
    fence, AtomicPtr, AtomicU32, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use rust_alloc::vec::Vec;

/// Slots of a thread's block.
const WAYS: usize = 256;
/// A slot word: the stack id in the top [`ID_BITS`] bits, the count below.
const ID_BITS: u32 = 24;
const COUNT_BITS: u32 = 64 - ID_BITS;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
/// Ids the array and the slots hold: every depot id.
const IDS: usize = crate::depot::MAX_ID as usize + 1;

#[repr(C, align(64))]
struct Block {
    /// The thread counting here (0: free).
    owner: AtomicU32,
    /// Odd while the owner moves a count from a slot to [`COUNTS`].
    seq: AtomicU32,
    next: AtomicPtr<Block>,
    slots: [AtomicU64; WAYS],
}

/// Every block ever made, newest first (never freed).
static BLOCKS: AtomicPtr<Block> = AtomicPtr::new(core::ptr::null_mut());
/// Where the next search for a block whose owner is gone resumes.
static CURSOR: AtomicPtr<Block> = AtomicPtr::new(core::ptr::null_mut());
/// The evicted counts by stack id (`IDS` words, committed on first need).
static COUNTS: AtomicPtr<AtomicU64> = AtomicPtr::new(core::ptr::null_mut());
static COUNTS_LOCK: crate::spin::SpinLock<()> = crate::spin::SpinLock::new(());

per_thread! {
    static MINE: Cell<*mut Block>;
}

fn counts() -> Option<&'static [AtomicU64]> {
    let mut p = COUNTS.load(Acquire);
    if p.is_null() {
        let _g = COUNTS_LOCK.lock();
        p = COUNTS.load(Acquire);
        if p.is_null() {
            p = heap::alloc_pages(IDS * 8) as *mut AtomicU64;
            if p.is_null() {
                return None;
            }
            COUNTS.store(p, Release);
        }
    }
    // SAFETY: IDS zeroed words, committed once and never freed.
    Some(unsafe { core::slice::from_raw_parts(p, IDS) })
}

fn add_global(id: u32, n: u64) {
    if let Some(c) = counts() {
        if let Some(w) = c.get(id as usize) {
            w.fetch_add(n, Relaxed);
        }
    }
}

/// Counts one allocation call at stack `id` (0: none, not counted).
#[inline]
pub fn count(id: u32) {
    if id == 0 {
        return;
    }
    let mut b = MINE.with(|m| m.get());
    if b.is_null() {
        b = claim();
        if b.is_null() {
            add_global(id, 1);
            return;
        }
    }
    // SAFETY: blocks are never freed; this thread owns `b`.
    let b = unsafe { &*b };
    let s = &b.slots[id as usize & (WAYS - 1)];
    let v = s.load(Relaxed);
    if (v >> COUNT_BITS) as u32 == id && v & COUNT_MAX != COUNT_MAX {
        s.store(v + 1, Relaxed);
        return;
    }
    evict(b, s, v, id);
}

#[cold]
fn evict(b: &Block, s: &AtomicU64, v: u64, id: u32) {
    if id as u64 >= 1 << ID_BITS {
        add_global(id, 1);
        return;
    }
    let seq = b.seq.load(Relaxed);
    b.seq.store(seq.wrapping_add(1), Relaxed);
    fence(Release);
    let (old, n) = ((v >> COUNT_BITS) as u32, v & COUNT_MAX);
    if old != 0 && n != 0 {
        add_global(old, n);
    }
    s.store((id as u64) << COUNT_BITS | 1, Relaxed);
    b.seq.store(seq.wrapping_add(2), Release);
}

fn thread_gone(tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists in this process.
    unsafe {
        libc::syscall(libc::SYS_tgkill, sys::getpid(), tid, 0) != 0 && sys::errno() == libc::ESRCH
    }
}

/// This thread's block: a free one, one whose thread is gone, or a new one.
#[cold]
fn claim() -> *mut Block {
    let me = sys::gettid();
    // A block left with this tid was a dead thread's (tids are unique among live threads).
    let mut p = BLOCKS.load(Acquire);
    while !p.is_null() {
        // SAFETY: blocks are never freed.
        let b = unsafe { &*p };
        let o = b.owner.load(Relaxed);
        if (o == 0 || o == me) && b.owner.compare_exchange(o, me, AcqRel, Relaxed).is_ok() {
            MINE.with(|m| m.set(p));
            return p;
        }
        p = b.next.load(Acquire);
    }
    // A few blocks whose owner is gone, from where the last search stopped.
    let mut p = CURSOR.load(Acquire);
    for _ in 0..32 {
        if p.is_null() {
            p = BLOCKS.load(Acquire);
            if p.is_null() {
                break;
            }
        }
        // SAFETY: as above.
        let b = unsafe { &*p };
        let o = b.owner.load(Relaxed);
        let next = b.next.load(Acquire);
        if o != me && thread_gone(o) && b.owner.compare_exchange(o, me, AcqRel, Relaxed).is_ok() {
            CURSOR.store(next, Release);
            MINE.with(|m| m.set(p));
            return p;
        }
        p = next;
    }
    CURSOR.store(p, Release);
    let p = heap::alloc_pages(core::mem::size_of::<Block>()) as *mut Block;
    if p.is_null() {
        return p;
    }
    // SAFETY: fresh zeroed pages of our own; a zeroed Block is a valid empty one.
    let b = unsafe { &*p };
    b.owner.store(me, Relaxed);
    let mut head = BLOCKS.load(Acquire);
    loop {
        b.next.store(head, Relaxed);
        match BLOCKS.compare_exchange(head, p, AcqRel, Acquire) {
            Ok(_) => break,
            Err(h) => head = h,
        }
    }
    MINE.with(|m| m.set(p));
    p
}

/// The allocation calls counted so far, `(stack id, calls)` sorted by id, into `out`.
pub fn snapshot(out: &mut Vec<(u32, u64)>) {
    let mut seqs: Vec<(*const Block, u32)> = Vec::new();
    for _attempt in 0..8 {
        out.clear();
        seqs.clear();
        let mut p = BLOCKS.load(Acquire) as *const Block;
        while !p.is_null() {
            // SAFETY: blocks are never freed.
            let b = unsafe { &*p };
            let mut s = b.seq.load(Acquire);
            let mut spins = 0;
            while s & 1 == 1 && spins < 100_000 {
                core::hint::spin_loop();
                s = b.seq.load(Acquire);
                spins += 1;
            }
            seqs.push((p, s));
            for w in &b.slots {
                let v = w.load(Relaxed);
                if v & COUNT_MAX != 0 {
                    out.push(((v >> COUNT_BITS) as u32, v & COUNT_MAX));
                }
            }
            p = b.next.load(Acquire);
        }
        fence(Acquire);
        if !COUNTS.load(Acquire).is_null() {
            if let Some(c) = counts() {
                for (id, w) in c.iter().enumerate() {
                    let n = w.load(Relaxed);
                    if n != 0 {
                        out.push((id as u32, n));
                    }
                }
            }
        }
        fence(Acquire);
        let unchanged = seqs.iter().all(|&(p, s)| {
            // SAFETY: blocks are never freed.
            let b = unsafe { &*p };
            b.seq.load(Relaxed) == s
        });
        if unchanged {
            break;
        }
    }
    out.sort_unstable_by_key(|e| e.0);
    let mut merged = 0;
    for i in 0..out.len() {
        if merged > 0 && out[merged - 1].0 == out[i].0 {
            out[merged - 1].1 += out[i].1;
        } else {
            out[merged] = out[i];
            merged += 1;
        }
    }
    out.truncate(merged);
}

/// In a fork child: the counts start again (the child's own calls), every block is free but
/// this thread's.
pub fn after_fork_child() {
    let mine = MINE.with(|m| m.get());
    let mut p = BLOCKS.load(Acquire);
    while !p.is_null() {
        // SAFETY: blocks are never freed; the child has one thread, this one.
        let b = unsafe { &*p };
        for w in &b.slots {
            w.store(0, Relaxed);
        }
        b.seq.store(0, Relaxed);
        b.owner
            .store(if p == mine { sys::gettid() } else { 0 }, Relaxed);
        p = b.next.load(Acquire);
    }
    let c = COUNTS.load(Acquire);
    if !c.is_null() {
        // SAFETY: the array is private anonymous memory of ours: MADV_DONTNEED gives back zeroed
        // pages.
        unsafe {
            libc::madvise(
                c.cast(),
                (IDS * 8).next_multiple_of(4096),
                libc::MADV_DONTNEED,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(id: u32) -> u64 {
        let mut v = Vec::new();
        snapshot(&mut v);
        v.iter().find(|e| e.0 == id).map_or(0, |e| e.1)
    }

    #[test]
    fn every_call_is_counted_once_through_evictions_and_ended_threads() {
        // Two ids of one slot: each call of the other evicts (the count moves to the array).
        let (a, b) = (1_000_001, 1_000_001 + WAYS as u32);
        for _ in 0..3 {
            count(a);
        }
        for _ in 0..2 {
            count(b);
            count(a);
        }
        assert_eq!((calls(a), calls(b)), (5, 2));
        // Another thread's calls, read while it runs and after it ended.
        let c = 1_000_003;
        let t = std::thread::spawn(move || {
            for _ in 0..1000 {
                count(c);
            }
        });
        t.join().unwrap();
        assert_eq!(calls(c), 1000);
        std::thread::spawn(move || count(c)).join().unwrap();
        assert_eq!(calls(c), 1001);
        count(0);
    }
}
