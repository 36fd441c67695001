//! The shared bodies of every allocation entry point.
//!
//! Default mode: a block is a glibc block laid out as `[left redzone][user bytes][right redzone]`;
//! both redzones hold canary bytes, checked when the block is freed, reallocated, evicted from the
//! quarantine and at exit. New blocks are filled with the malloc-fill byte and freed ones with the
//! free-fill byte (at most [`FILL_MAX`] bytes each); the free fill of a quarantined block is checked
//! on eviction and at exit, which catches writes after free. Guard mode (all blocks, or 1 in N
//! with sampling) serves blocks from [`guard`]. Every block is keyed in [`table`] by its user
//! pointer with its size, family, allocation stack and flags.
use crate::table::{self, BlockState, Entry, FreeLookup, FLAG_GUARDED};
use crate::{depot, guard, init, opts, quarantine, real, record, reentry, sys, tls, unwind};
use core::cell::Cell;
use core::sync::atomic::Ordering;
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family, FoundAt, GuardMode, Record};

/// The canary byte in redzones.
pub const CANARY: u8 = 0xcb;
/// At most this many bytes of a block are filled on allocation and on free.
pub const FILL_MAX: usize = 1024;
/// glibc refuses any request above PTRDIFF_MAX without trying.
const MAX_REQUEST: usize = isize::MAX as usize;
/// Above this no machine can serve the request (the user address space is 128 TiB).
pub const TOO_BIG: usize = 1 << 47;

thread_local! {
    /// Allocations until this thread's next sampled (guarded) block.
    static SAMPLE_COUNTDOWN: Cell<u64> = const { Cell::new(0) };
}

/// Bytes after the user bytes: at least one canary byte, up to the next 16-byte boundary.
#[inline]
pub fn right_redzone(size: usize) -> usize {
    16 - (size & 15)
}

/// Bytes before the user bytes for an alignment.
#[inline]
fn left_redzone(align: usize) -> usize {
    let rz = opts::REDZONE.load(Ordering::Relaxed);
    if align <= 16 {
        rz
    } else {
        (rz + align - 1) & !(align - 1)
    }
}

/// Captures the calling stack into the depot; 0 when re-entered (the unwinder allocating).
#[inline]
pub fn capture_stack() -> u32 {
    let Some(_g) = tls::Reentry::acquire() else {
        return 0;
    };
    let depth = opts::DEPTH.load(Ordering::Relaxed);
    let mut buf = [0u64; memcheck_wire::MAX_FRAMES];
    let n = unwind::capture(&mut buf[..depth]);
    depot::intern(&buf[..n])
}

/// Whether the next block of this thread goes to the guard pool.
#[inline]
fn guarded_now() -> bool {
    if opts::guard_mode() == GuardMode::Off || !guard::active() {
        return false;
    }
    let rate = opts::SAMPLE_RATE.load(Ordering::Relaxed);
    if rate <= 1 {
        return true;
    }
    SAMPLE_COUNTDOWN.with(|c| {
        let n = c.get();
        if n == 0 {
            c.set(rate - 1);
            true
        } else {
            c.set(n - 1);
            false
        }
    })
}

#[inline]
fn fill(p: *mut u8, size: usize, byte: i32) {
    if byte >= 0 {
        // SAFETY: p points at `size` writable user bytes.
        unsafe { core::ptr::write_bytes(p, byte as u8, size.min(FILL_MAX)) };
    }
}

/// Allocates `size` user bytes aligned to `align` (a power of two) for `family`.
/// On failure returns null with errno set to ENOMEM, as glibc does.
pub fn allocate(size: usize, align: usize, family: Family, zero: bool) -> *mut u8 {
    init::ensure();
    // A successful allocation leaves errno alone, whatever the shim's own system calls did.
    let saved = sys::errno();
    if reentry::active() {
        let p = reentry::allocate(size, align);
        sys::set_errno(if p.is_null() { libc::ENOMEM } else { saved });
        return p;
    }
    reentry::drain(release);
    if size >= TOO_BIG {
        warn(ErrorKind::AllocationSizeTooBig, size as u64, align as u64);
    }
    if size > MAX_REQUEST - 64 - align {
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    let stack = capture_stack();
    if guarded_now() {
        let mode = opts::guard_mode();
        if let Some(user) = guard::allocate(size, align, family as u8, stack, mode) {
            let user = user as *mut u8;
            // SAFETY: the slot's data pages are ours: fresh zero pages, canaried around the block.
            unsafe {
                let (da, db) = (
                    (user as usize) & !(guard::PAGE - 1),
                    ((user as usize + size).div_ceil(guard::PAGE) * guard::PAGE).max(user as usize),
                );
                let left = (user as usize - da).min(16);
                core::ptr::write_bytes(user.sub(left), CANARY, left);
                let right = (db - (user as usize + size)).min(16);
                core::ptr::write_bytes(user.add(size), CANARY, right);
            }
            if !zero {
                fill(user, size, opts::MALLOC_FILL.load(Ordering::Relaxed));
            }
            let ok = table::insert(Entry {
                key: user as usize,
                size,
                alloc_stack: stack,
                free_stack: 0,
                base_off: 0,
                family,
                state: BlockState::Live,
                flags: FLAG_GUARDED,
                gen_or_fill: opts::FORK_GEN.load(Ordering::Relaxed),
            });
            if ok {
                sys::set_errno(saved);
                return user;
            }
            guard::release(user as usize, 0);
        }
    }
    let left = left_redzone(align);
    let total = left + size + right_redzone(size);
    let base = if align <= 16 {
        if zero {
            real::calloc(1, total)
        } else {
            real::malloc(total)
        }
    } else {
        let p = real::memalign(align, total);
        if zero && !p.is_null() {
            // SAFETY: p is a fresh block of `total` bytes.
            unsafe { core::ptr::write_bytes(p, 0, total) };
        }
        p
    };
    if base.is_null() {
        sys::set_errno(libc::ENOMEM);
        return base;
    }
    // SAFETY: base..base+total is the block glibc just returned; the redzones lie inside it.
    let user = unsafe {
        core::ptr::write_bytes(base, CANARY, left);
        let user = base.add(left);
        core::ptr::write_bytes(user.add(size), CANARY, total - left - size);
        user
    };
    if !zero {
        fill(user, size, opts::MALLOC_FILL.load(Ordering::Relaxed));
    }
    let ok = table::insert(Entry {
        key: user as usize,
        size,
        alloc_stack: stack,
        free_stack: 0,
        base_off: left as u32,
        family,
        state: BlockState::Live,
        flags: 0,
        gen_or_fill: opts::FORK_GEN.load(Ordering::Relaxed),
    });
    if !ok {
        // SAFETY: base came from glibc above and was never handed out.
        unsafe { real::free(base) };
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    let (chunk, mm) = chunk_of(base as usize);
    let ovh = chunk as i64 - native_chunk(size, mm) as i64;
    if mm {
        crate::stats::overhead(0, ovh, 0);
    } else {
        crate::stats::overhead(ovh, 0, 0);
    }
    sys::set_errno(saved);
    user
}

/// The size of glibc's chunk holding the block at `base`, and whether glibc mmapped it.
#[inline]
fn chunk_of(base: usize) -> (usize, bool) {
    // SAFETY: every glibc block is preceded by its chunk header; the size field is the word
    // just before the block.
    let f = unsafe { *((base - 8) as *const usize) };
    (f & !7, f & 2 != 0)
}

/// The chunk glibc would have used for `size` bytes without memcheck: what the program's block
/// costs natively, and so what mallinfo should count for it.
#[inline]
fn native_chunk(size: usize, mmapped: bool) -> usize {
    let nb = ((size + 8 + 15) & !15).max(32);
    if mmapped {
        (nb + 8 + 4095) & !4095
    } else {
        nb
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

/// An error record with no block, stacks or arguments.
pub fn error_rec(kind: ErrorKind) -> ErrorRec {
    ErrorRec {
        kind,
        access: Access::Unknown,
        tid: sys::gettid(),
        addr: 0,
        access_size: 0,
        has_block: false,
        block_addr: 0,
        block_size: 0,
        alloc_family: Family::Malloc,
        free_family: Family::Malloc,
        stack: 0,
        alloc_stack: 0,
        free_stack: 0,
        arg1: 0,
        arg2: 0,
        exact_pc: false,
    }
}

fn block_error(
    kind: ErrorKind,
    e: &Entry,
    addr: usize,
    free_family: Family,
    stack: u32,
) -> ErrorRec {
    ErrorRec {
        addr: addr as u64,
        has_block: true,
        block_addr: e.key as u64,
        block_size: e.size as u64,
        alloc_family: e.family,
        free_family,
        stack,
        alloc_stack: e.alloc_stack,
        free_stack: e.free_stack,
        ..error_rec(kind)
    }
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
fn check_block(e: &Entry, stack: u32, found: FoundAt) {
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

/// Returns a quarantined block to its allocator and forgets it (quarantine eviction), checking it
/// one last time.
pub fn release_to_glibc(key: usize) {
    if let Some(e) = table::remove(key) {
        if e.flags & FLAG_GUARDED != 0 {
            return; // its pages were dropped when it was freed
        }
        check_block(&e, 0, FoundAt::Eviction);
        let base = key - e.base_off as usize;
        let (chunk, mm) = chunk_of(base);
        if mm {
            crate::stats::overhead(0, -(chunk as i64), -1);
        } else {
            crate::stats::overhead(-(chunk as i64), 0, 0);
        }
        // SAFETY: base is the glibc block this entry was allocated as.
        unsafe { real::free(base as *mut u8) };
    }
}

/// Frees `p` through a release call of `family`. Preserves errno.
pub fn release(p: *mut u8, family: Family) {
    if p.is_null() {
        return;
    }
    init::ensure();
    let saved = sys::errno();
    if reentry::active() {
        if !reentry::free_if_ours(p) {
            reentry::defer_free(p, family);
        }
        sys::set_errno(saved);
        return;
    }
    reentry::drain(release);
    let stack = capture_stack();
    let byte = opts::FREE_FILL.load(Ordering::Relaxed);
    match table::mark_freed(p as usize, stack, byte, FILL_MAX) {
        FreeLookup::Live(e) => {
            if e.family != family {
                report(block_error(
                    ErrorKind::AllocDeallocMismatch,
                    &e,
                    p as usize,
                    family,
                    stack,
                ));
            }
            // Checked as the live block it was (redzones only).
            check_block(&e, stack, FoundAt::Free);
            if e.flags & FLAG_GUARDED != 0 {
                guard::release(e.key, stack);
                quarantine::push(e.key, e.size.max(16));
            } else {
                let (_, mm) = chunk_of(e.key - e.base_off as usize);
                let native = native_chunk(e.size, mm) as i64;
                if mm {
                    crate::stats::overhead(0, native, 1);
                } else {
                    crate::stats::overhead(native, 0, 0);
                }
                quarantine::push(e.key, e.size + e.base_off as usize + right_redzone(e.size));
            }
        }
        FreeLookup::AlreadyFreed(e) => {
            report(block_error(
                ErrorKind::DoubleFree,
                &e,
                p as usize,
                family,
                stack,
            ));
        }
        FreeLookup::Unknown if reentry::free_if_ours(p) => {}
        FreeLookup::Unknown => report(unknown_pointer(
            ErrorKind::InvalidFree,
            p as usize,
            family,
            stack,
        )),
    }
    sys::set_errno(saved);
}

/// A free or realloc of a pointer the table does not know: a block released long ago (guarded
/// blocks are remembered forever), a pointer into the middle of a block, or a foreign pointer.
fn unknown_pointer(kind: ErrorKind, p: usize, family: Family, stack: u32) -> ErrorRec {
    if let Some(s) = guard::slot_of(p) {
        let view_freed = s.state.load(Ordering::Acquire) == guard::SLOT_FREED;
        if view_freed {
            let k = if kind == ErrorKind::InvalidFree {
                ErrorKind::DoubleFree
            } else {
                kind
            };
            return ErrorRec {
                addr: p as u64,
                has_block: true,
                block_addr: s.user as u64,
                block_size: s.size as u64,
                alloc_family: Family::from_u8(s.family).unwrap_or(Family::Malloc),
                free_family: family,
                stack,
                alloc_stack: s.alloc_stack,
                free_stack: s.free_stack.load(Ordering::Acquire),
                ..error_rec(k)
            };
        }
    }
    if let Some(e) = table::find_containing(p) {
        return block_error(kind, &e, p, family, stack);
    }
    ErrorRec {
        addr: p as u64,
        alloc_family: family,
        free_family: family,
        stack,
        ..error_rec(kind)
    }
}

/// `realloc` semantics of glibc, with every successful resize moving the block so stale
/// pointers to the old one are caught.
pub fn reallocate(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return allocate(size, 16, Family::Malloc, false);
    }
    if size == 0 {
        release(p, Family::Malloc);
        return core::ptr::null_mut();
    }
    init::ensure();
    if reentry::active() {
        return reentry::reallocate(p, size);
    }
    let found = table::get(p as usize);
    if found.is_none() {
        if let Some(old) = reentry::size_of(p) {
            let new = allocate(size, 16, Family::Malloc, false);
            if !new.is_null() {
                // SAFETY: p holds `old` bytes, new `size`; distinct blocks.
                unsafe { core::ptr::copy_nonoverlapping(p, new, old.min(size)) };
                reentry::free_if_ours(p);
            }
            return new;
        }
    }
    let Some(old) = found.filter(|e| e.state == BlockState::Live) else {
        let stack = capture_stack();
        let rec = match found {
            Some(e) => block_error(
                ErrorKind::InvalidRealloc,
                &e,
                p as usize,
                Family::Malloc,
                stack,
            ),
            None => unknown_pointer(ErrorKind::InvalidRealloc, p as usize, Family::Malloc, stack),
        };
        report(rec);
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    let new = allocate(size, 16, Family::Malloc, false);
    if new.is_null() {
        return new;
    }
    // SAFETY: both blocks are live and at least min(old, new) bytes long; they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p, new, old.size.min(size)) };
    release(p, old.family);
    new
}

/// The usable size of a live block: exactly what was asked for.
pub fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    if let Some(n) = reentry::size_of(p) {
        return n;
    }
    if reentry::active() {
        // The block table cannot be consulted here; a guarded block's size is known lock-free.
        return guard::slot_of(p as usize).map_or(0, |s| s.size);
    }
    match table::get(p as usize) {
        Some(e) if e.state == BlockState::Live => e.size,
        _ => 0,
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

/// Reports a suspicious call that keeps glibc's answer.
pub fn warn(kind: ErrorKind, arg1: u64, arg2: u64) {
    if tls::quiet() {
        return;
    }
    let stack = capture_stack();
    report(ErrorRec {
        stack,
        arg1,
        arg2,
        ..error_rec(kind)
    });
}

/// Writes an error record (with the stacks and modules it needs) and announces errors on stderr.
pub fn report(rec: ErrorRec) {
    let Some(_g) = tls::Reentry::acquire() else {
        return;
    };
    if rec.kind.is_warning() {
        crate::stats::add(|p| &p.warnings, 1);
    } else {
        crate::stats::add(|p| &p.errors, 1);
    }
    record::emit_modules();
    for s in [rec.stack, rec.alloc_stack, rec.free_stack] {
        record::emit_stack(s);
    }
    record::emit(&Record::Error(rec));
    if rec.kind.is_warning() {
        return;
    }
    if opts::ACTIVE.load(Ordering::Relaxed) {
        crate::log!(
            "error: {} at {:#x} (pid {}, thread {}); details in the report at exit",
            rec.kind.name(),
            rec.addr,
            sys::getpid(),
            rec.tid
        );
    }
    if opts::ABORT_ON_ERROR.load(Ordering::Relaxed) {
        crate::log!("aborting (--on-error=abort)");
        // SAFETY: abort never returns; the record is already on disk.
        unsafe { libc::abort() };
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
