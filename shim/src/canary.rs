//! Canary and fill checks of default-mode blocks (and of the canaried slop around guarded ones).
//!
//! A block's redzones hold [`CANARY`] bytes; a freed block's first [`FILL_MAX`] bytes hold the
//! free-fill byte while it waits in the quarantine. [`check_block`] finds damage to either,
//! reports it once through [`crate::report`] and repairs it; the allocator calls it at free, at
//! realloc (which frees the old block) and at eviction from the quarantine, and [`check_all`] at
//! exit.
use crate::guard;
use crate::report::{block_error, report};
use crate::table::{self, BlockState, Entry, FLAG_GUARDED};
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
        unsafe { core::ptr::write_bytes(p, byte as u8, size.min(FILL_MAX)) };
    }
}

/// The first canary byte that changed: `(offset from the user pointer, is it after the block)`.
pub fn check_canaries(e: &Entry) -> Option<(isize, bool)> {
    let user = e.key as *const u8;
    let (_, left, _, right) = redzones(e);
    // SAFETY: the redzones belong to this entry's live (or quarantined) block.
    unsafe {
        let l = core::slice::from_raw_parts(user.sub(left), left);
        if let Some(i) = l.iter().rposition(|&b| b != CANARY) {
            return Some((i as isize - left as isize, false));
        }
        let r = core::slice::from_raw_parts(user.add(e.size), right);
        if let Some(i) = r.iter().position(|&b| b != CANARY) {
            return Some(((e.size + i) as isize, true));
        }
    }
    None
}

/// The first byte of a quarantined block's free fill that changed (a write after free).
pub fn check_free_fill(e: &Entry) -> Option<usize> {
    let byte = e.free_fill()?;
    // SAFETY: the quarantined block is still allocated from glibc's point of view.
    let b = unsafe { core::slice::from_raw_parts(e.key as *const u8, e.size.min(FILL_MAX)) };
    first_not(b, byte)
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

/// The redzone ranges of a block: `(left start, left len, right start, right len)`.
fn redzones(e: &Entry) -> (usize, usize, usize, usize) {
    let (left, right) = if e.flags & FLAG_GUARDED != 0 {
        let page = e.key & !(guard::PAGE - 1);
        let end = (e.key + e.size).div_ceil(guard::PAGE) * guard::PAGE;
        (
            (e.key - page).min(16),
            (end.max(e.key) - (e.key + e.size)).min(16),
        )
    } else {
        (e.base_off as usize, right_redzone(e.size))
    };
    (e.key - left, left, e.key + e.size, right)
}

/// Checks a block's redzones (and, if freed, its fill), reports damage, and repairs it so the
/// same damage is reported once. `stack` is where the check happens (the free call, or none);
/// `found` says when (`arg1` of the record).
pub fn check_block(e: &Entry, stack: u32, found: FoundAt) {
    if let Some((off, after)) = check_canaries(e) {
        let kind = if after {
            ErrorKind::HeapBufferOverflow
        } else {
            ErrorKind::HeapBufferUnderflow
        };
        let addr = (e.key as isize + off) as usize;
        report(ErrorRec {
            access: Access::Write,
            arg1: found.to_u64(),
            ..block_error(kind, e, addr, Family::Malloc, stack)
        });
        let (l, ln, r, rn) = redzones(e);
        // SAFETY: the redzones belong to this entry's block, which is still allocated.
        unsafe {
            core::ptr::write_bytes(l as *mut u8, CANARY, ln);
            core::ptr::write_bytes(r as *mut u8, CANARY, rn);
        }
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
        if check_canaries(e).is_some()
            || (e.state == BlockState::Freed && check_free_fill(e).is_some())
        {
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
        assert_eq!(check_canaries(&e), None);
        mem[16 + 13] = 0;
        std::hint::black_box(&mut mem);
        assert_eq!(check_canaries(&e), Some((13, true)));
        mem[16 + 13] = CANARY;
        mem[15] = 1;
        std::hint::black_box(&mut mem);
        assert_eq!(check_canaries(&e), Some((-1, false)));
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
