//! Canary and fill checks of default-mode blocks (and of the canaried slop around guarded ones).
//!
//! A block's redzones hold [`CANARY`] bytes; a freed block's first [`FILL_MAX`] bytes hold the
//! free-fill byte while it waits in the quarantine. [`check_block`] finds damage to either,
//! reports it once through [`crate::report`] with the whole damaged range (its first byte and
//! length) and repairs it; the allocator calls it at free, at realloc (which frees the old block)
//! and at eviction from the quarantine, and [`check_all`] at exit. Damage that runs from the end
//! of one block's right redzone on into the left redzone of the block after it in glibc's heap
//! is the first block's overflow, whichever of the two is checked first.
use crate::report::{block_error, report};
use crate::table::{self, BlockState, Entry, FLAG_GUARDED};
use crate::{bytes, guard};
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family, FoundAt};

/// The canary byte in redzones.
pub const CANARY: u8 = 0xcb;
/// At most this many bytes of a block are filled on allocation and on free.
pub const FILL_MAX: usize = 1024;

/// Bytes after the user bytes: at least one canary byte, up to the next 16-byte boundary.
#[inline]
pub fn right_redzone(size: usize) -> usize {
    16 - (size & 15)
}

/// Writes `byte` into the first [`FILL_MAX`] bytes of a block (none if `byte` is negative).
#[inline]
pub fn fill(p: *mut u8, size: usize, byte: i32) {
    if byte >= 0 {
        // SAFETY: p points at `size` writable user bytes.
        unsafe { bytes::set(p, byte as u8, size.min(FILL_MAX)) };
    }
}

/// The changed canary bytes of a block: the first and last changed byte of its left redzone, and
/// of its right one (addresses, inclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    pub left: Option<(usize, usize)>,
    pub right: Option<(usize, usize)>,
}

impl Damage {
    pub fn any(&self) -> bool {
        self.left.is_some() || self.right.is_some()
    }
}

/// The first and last byte of `b` (at address `at`) that are not the canary.
fn changed(at: usize, b: &[u8]) -> Option<(usize, usize)> {
    // The clean case (every byte the canary) is the common one: 64 bytes at a time without a
    // branch per word (a guarded block's slop is most of a page).
    if all_canary(b) {
        return None;
    }
    let first = first_not(b, CANARY)?;
    let last = b.iter().rposition(|&x| x != CANARY)?;
    Some((at + first, at + last))
}

/// Whether a default-mode block with the default 16-byte left redzone has every canary intact,
/// by four word loads: the left redzone, and the 16-byte granule its right redzone ends (the
/// user bytes at its start masked off). `None` for other layouts.
#[inline]
fn clean_fast(e: &Entry) -> Option<bool> {
    if e.flags & FLAG_GUARDED != 0 || e.base_off != 16 || e.key & 15 != 0 {
        return None;
    }
    const WORD: u128 = u128::from_ne_bytes([CANARY; 16]);
    let end = e.key + e.size;
    let granule = end & !15;
    // Little-endian: the low bytes of the granule are the user bytes (size % 16 of them).
    let user = (e.size & 15) as u32 * 8;
    let mask = u128::MAX.checked_shl(user).unwrap_or(0);
    // SAFETY: both granules lie in the block's glibc allocation (its left redzone, and the
    // last user bytes with the right redzone after them), 16-aligned.
    let (left, right) = unsafe {
        (
            core::ptr::read((e.key - 16) as *const u128),
            core::ptr::read(granule as *const u128),
        )
    };
    Some(left == WORD && (right ^ WORD) & mask == 0)
}

/// The damage to a block's redzones.
pub fn damage(e: &Entry) -> Damage {
    if clean_fast(e) == Some(true) {
        return Damage::default();
    }
    let (l, ln, r, rn) = redzones(e);
    // SAFETY: the redzones belong to this entry's live (or quarantined) block.
    unsafe {
        Damage {
            left: changed(l, core::slice::from_raw_parts(l as *const u8, ln)),
            right: changed(r, core::slice::from_raw_parts(r as *const u8, rn)),
        }
    }
}

/// Writes the canaries around a fresh guarded block: the whole unused part of its data pages.
pub fn paint_guarded(user: usize) {
    if let Some((l, ln, r, rn)) = guard::slop(user) {
        // SAFETY: the slop lies in the slot's fresh data pages, outside the user bytes.
        unsafe {
            core::ptr::write_bytes(l as *mut u8, CANARY, ln);
            core::ptr::write_bytes(r as *mut u8, CANARY, rn);
        }
    }
}

/// The first byte of a quarantined block's free fill that changed (a write after free).
pub fn check_free_fill(e: &Entry) -> Option<usize> {
    let byte = e.free_fill()?;
    // SAFETY: the quarantined block is still allocated from glibc's point of view.
    let b = unsafe { core::slice::from_raw_parts(e.key as *const u8, e.size.min(FILL_MAX)) };
    first_not(b, byte)
}

/// Whether every byte of `b` is the canary.
fn all_canary(b: &[u8]) -> bool {
    let word = u64::from_ne_bytes([CANARY; 8]);
    let mut blocks = b.chunks_exact(64);
    for c in &mut blocks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_ne_bytes(w.try_into().unwrap()) ^ word;
        }
        if acc != 0 {
            return false;
        }
    }
    blocks.remainder().iter().all(|&x| x == CANARY)
}

/// The index of the first byte of `b` that is not `byte`, comparing eight bytes at a time.
fn first_not(b: &[u8], byte: u8) -> Option<usize> {
    let word = u64::from_ne_bytes([byte; 8]);
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        if u64::from_ne_bytes(c.try_into().unwrap()) != word {
            return c.iter().position(|&x| x != byte).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x != byte)
        .map(|i| at + i)
}

/// The redzone ranges of a block: `(left start, left len, right start, right len)`. A guarded
/// block's are the unused bytes of its data pages.
fn redzones(e: &Entry) -> (usize, usize, usize, usize) {
    if e.flags & FLAG_GUARDED != 0 {
        return guard::slop(e.key).unwrap_or((e.key, 0, e.key + e.size, 0));
    }
    let left = e.base_off as usize;
    (e.key - left, left, e.key + e.size, right_redzone(e.size))
}

/// How far apart, at most, the end of one default-mode block's right redzone and the start of
/// the next block's left redzone lie in glibc's heap (the chunk's slack and the next header).
const NEIGHBOUR_GAP: usize = 64;

/// The default-mode block whose left redzone starts just after `end` (the end of a right
/// redzone) with its first byte damaged: the overflow ran on into it.
fn damaged_next(end: usize) -> Option<(Entry, Damage)> {
    let n = table::find(|x| {
        let base = x.key - x.base_off as usize;
        x.flags & FLAG_GUARDED == 0 && base >= end && base - end <= NEIGHBOUR_GAP
    })?;
    let d = damage(&n);
    let base = n.key - n.base_off as usize;
    d.left.filter(|&(lo, _)| lo == base).map(|_| (n, d))
}

/// The default-mode block whose right redzone ends just before `base` (a left redzone's start)
/// with its last byte damaged: the damage at `base` is that block's overflow.
fn damaged_prev(base: usize) -> Option<(Entry, Damage)> {
    let p = table::find(|x| {
        let end = x.key + x.size + right_redzone(x.size);
        x.flags & FLAG_GUARDED == 0 && end <= base && base - end <= NEIGHBOUR_GAP
    })?;
    let d = damage(&p);
    let end = p.key + p.size + right_redzone(p.size);
    d.right.filter(|&(_, hi)| hi == end - 1).map(|_| (p, d))
}

/// Puts the canaries of a block back.
fn repair(e: &Entry) {
    let (l, ln, r, rn) = redzones(e);
    // SAFETY: the redzones belong to this entry's block, which is still allocated.
    unsafe {
        bytes::set(l as *mut u8, CANARY, ln);
        bytes::set(r as *mut u8, CANARY, rn);
    }
}

/// Reports damage `[lo, hi]` outside block `e` as its overflow or underflow.
fn report_damage(kind: ErrorKind, e: &Entry, lo: usize, hi: usize, stack: u32, found: FoundAt) {
    report(ErrorRec {
        access: Access::Write,
        access_size: (hi - lo + 1) as u64,
        arg1: found.to_u64(),
        ..block_error(kind, e, lo, Family::Malloc, stack)
    });
}

/// Checks a block's redzones (and, if freed, its fill), reports damage, and repairs it so the
/// same damage is reported once. `stack` is where the check happens (the free call, or none);
/// `found` says when (`arg1` of the record).
pub fn check_block(e: &Entry, stack: u32, found: FoundAt) {
    let d = damage(e);
    // Under --keep-stacktraces=alloc or none the free call's stack was not walked: the error
    // still gets it, walked now.
    let stack = if stack == 0 && found == FoundAt::Free && d.any() {
        crate::unwind::capture_stack()
    } else {
        stack
    };
    let guarded = e.flags & FLAG_GUARDED != 0;
    if let Some((lo, mut hi)) = d.right {
        let end = e.key + e.size + right_redzone(e.size);
        if !guarded && hi == end - 1 {
            if let Some((n, nd)) = damaged_next(end) {
                // The overflow ran on into the next block's left redzone: one range, this
                // block's.
                hi = nd.left.map_or(hi, |(_, h)| h);
                repair(&n);
            }
        }
        report_damage(ErrorKind::HeapBufferOverflow, e, lo, hi, stack, found);
    }
    if let Some((lo, hi)) = d.left {
        let base = e.key - e.base_off as usize;
        let prev = (!guarded && lo == base)
            .then(|| damaged_prev(base))
            .flatten();
        match prev {
            Some((p, pd)) => {
                // The previous block's overflow reached this block's left redzone.
                let plo = pd.right.map_or(lo, |(l, _)| l);
                report_damage(ErrorKind::HeapBufferOverflow, &p, plo, hi, stack, found);
                repair(&p);
            }
            None => report_damage(ErrorKind::HeapBufferUnderflow, e, lo, hi, stack, found),
        }
    }
    if d.any() {
        repair(e);
    }
    if e.state == BlockState::Freed {
        if let Some(off) = check_free_fill(e) {
            report(ErrorRec {
                access: Access::Write,
                arg1: found.to_u64(),
                ..block_error(ErrorKind::UseAfterFree, e, e.key + off, Family::Malloc, 0)
            });
            let byte = e.free_fill().map_or(-1, i32::from);
            fill(e.key as *mut u8, e.size, byte);
        }
    }
}

/// At exit: every live block's redzones and every quarantined block's fill are checked once more.
pub fn check_all() {
    let mut damaged = rust_alloc::vec::Vec::new();
    table::lock_all();
    table::for_each_held(|e| {
        if e.flags & FLAG_GUARDED != 0 && e.state == BlockState::Freed {
            return; // its pages are gone
        }
        if damage(e).any() || (e.state == BlockState::Freed && check_free_fill(e).is_some()) {
            damaged.push(*e);
        }
    });
    table::unlock_all();
    for e in &damaged {
        check_block(e, 0, FoundAt::Exit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_redzone_pads_to_16_with_at_least_one_byte() {
        assert_eq!(right_redzone(0), 16);
        assert_eq!(right_redzone(1), 15);
        assert_eq!(right_redzone(15), 1);
        assert_eq!(right_redzone(16), 16);
        for s in 0..100 {
            assert_eq!((s + right_redzone(s)) % 16, 0);
        }
    }

    #[test]
    fn canary_damage_is_located() {
        let mut mem = [CANARY; 64];
        let e = Entry {
            key: mem.as_ptr() as usize + 16,
            size: 13,
            base_off: 16,
            ..Entry::default()
        };
        let base = mem.as_ptr() as usize;
        let at = |i: usize| base + i;
        assert!(!damage(&e).any());
        mem[16 + 13] = 0;
        mem[16 + 15] = 0;
        std::hint::black_box(&mut mem);
        assert_eq!(damage(&e).right, Some((at(29), at(31))), "the whole range");
        mem[16 + 13] = CANARY;
        mem[16 + 15] = CANARY;
        mem[15] = 1;
        mem[3] = 1;
        std::hint::black_box(&mut mem);
        assert_eq!(
            damage(&e),
            Damage {
                left: Some((at(3), at(15))),
                right: None
            }
        );
    }

    #[test]
    fn first_not_finds_the_first_different_byte() {
        let mut v = [7u8; 200];
        assert_eq!(first_not(&v, 7), None);
        v[199] = 1;
        assert_eq!(first_not(&v, 7), Some(199));
        v[70] = 1;
        assert_eq!(first_not(&v, 7), Some(70));
        v[9] = 0;
        assert_eq!(first_not(&v, 7), Some(9));
    }

    #[test]
    fn a_write_after_free_shows_in_the_fill() {
        let mut mem = [0xfdu8; 32];
        let e = Entry {
            key: mem.as_ptr() as usize,
            size: 32,
            state: BlockState::Freed,
            flags: table::FLAG_FILLED,
            gen_or_fill: 0xfd,
            ..Entry::default()
        };
        assert_eq!(check_free_fill(&e), None);
        mem[20] = 7;
        std::hint::black_box(&mut mem);
        assert_eq!(check_free_fill(&e), Some(20));
        let unfilled = Entry { flags: 0, ..e };
        assert_eq!(check_free_fill(&unfilled), None);
    }
}
