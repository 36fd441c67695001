//! The stack depot: each distinct call stack is stored once and named by a small id. Lookups are
//! lock-free (a fixed open-addressing table of pointers to immutable entries); inserts take a lock.
//! Id 0 means "no stack" (the depot is full or the stack could not be taken).
use crate::heap;
use crate::spin::SpinLock;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

const SLOTS: usize = 1 << 20;
const CHUNK: usize = 1 << 20;

static SLOTS_PTR: AtomicPtr<AtomicUsize> = AtomicPtr::new(core::ptr::null_mut());
/// Bump storage for entries: (next, end).
static STORE: SpinLock<(usize, usize)> = SpinLock::new((0, 0));

fn slots() -> Option<&'static [AtomicUsize]> {
    let mut p = SLOTS_PTR.load(Ordering::Acquire);
    if p.is_null() {
        let _g = STORE.lock();
        p = SLOTS_PTR.load(Ordering::Acquire);
        if p.is_null() {
            p = heap::alloc_pages(SLOTS * 8) as *mut AtomicUsize;
            if p.is_null() {
                return None;
            }
            SLOTS_PTR.store(p, Ordering::Release);
        }
    }
    // SAFETY: the slot array is committed once, zeroed, and never freed.
    Some(unsafe { core::slice::from_raw_parts(p, SLOTS) })
}

#[inline]
fn hash(frames: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ frames.len() as u64;
    for &f in frames {
        h = (h ^ f).wrapping_mul(0x0100_0000_01b3).rotate_left(23);
    }
    h | 1
}

/// An entry is `[hash, n, frames...]` of u64s.
fn entry_frames(p: usize) -> (u64, &'static [u64]) {
    // SAFETY: p points at an entry written completely before its pointer was published.
    unsafe {
        let e = p as *const u64;
        let n = *e.add(1) as usize;
        (*e, core::slice::from_raw_parts(e.add(2), n))
    }
}

fn store(h: u64, frames: &[u64]) -> usize {
    let bytes = (2 + frames.len()) * 8;
    let mut s = STORE.lock();
    if s.0 + bytes > s.1 || s.0 == 0 {
        let c = heap::alloc_pages(CHUNK) as usize;
        if c == 0 {
            return 0;
        }
        *s = (c, c + CHUNK);
    }
    let p = s.0;
    s.0 += bytes;
    // SAFETY: [p, p+bytes) was reserved from the chunk above and is written only here.
    unsafe {
        let e = p as *mut u64;
        *e = h;
        *e.add(1) = frames.len() as u64;
        core::ptr::copy_nonoverlapping(frames.as_ptr(), e.add(2), frames.len());
    }
    p
}

/// The id of `frames`, storing them on first sight.
pub fn intern(frames: &[u64]) -> u32 {
    if frames.is_empty() {
        return 0;
    }
    let Some(slots) = slots() else { return 0 };
    let h = hash(frames);
    let mut i = h as usize & (SLOTS - 1);
    for _ in 0..SLOTS {
        let p = slots[i].load(Ordering::Acquire);
        if p == 0 {
            let e = store(h, frames);
            if e == 0 {
                return 0;
            }
            match slots[i].compare_exchange(0, e, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return i as u32 + 1,
                Err(other) => {
                    // Another thread filled the slot first; the stored copy is wasted.
                    let (oh, of) = entry_frames(other);
                    if oh == h && of == frames {
                        return i as u32 + 1;
                    }
                }
            }
        } else {
            let (ph, pf) = entry_frames(p);
            if ph == h && pf == frames {
                return i as u32 + 1;
            }
        }
        i = (i + 1) & (SLOTS - 1);
    }
    0
}

/// The frames of a stack id (empty for 0 or an unknown id).
pub fn frames(id: u32) -> &'static [u64] {
    if id == 0 || id as usize > SLOTS {
        return &[];
    }
    let Some(slots) = slots() else { return &[] };
    let p = slots[id as usize - 1].load(Ordering::Acquire);
    if p == 0 {
        return &[];
    }
    entry_frames(p).1
}

/// Fork prepare/child helpers.
pub fn lock() {
    STORE.raw_lock();
}
pub fn unlock() {
    STORE.raw_unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stack_same_id() {
        let a = intern(&[1, 2, 3]);
        let b = intern(&[1, 2, 4]);
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(intern(&[1, 2, 3]), a);
        assert_eq!(frames(a), &[1, 2, 3]);
        assert_eq!(frames(0), &[] as &[u64]);
        assert_eq!(intern(&[]), 0);
    }
}
