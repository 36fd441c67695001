//! The shared bodies of every allocation entry point. A block is a glibc block laid out as
//! `[left redzone][user bytes][right redzone]`; both redzones hold canary bytes that are checked when
//! the block is freed or reallocated. The user pointer is keyed in [`table`] with its size, family
//! and allocation stack.
use crate::table::{self, Entry, FreeLookup};
use crate::{depot, init, opts, quarantine, real, record, sys, tls, unwind};
use core::ffi::c_void;
use core::sync::atomic::Ordering;
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family, Record};

/// The canary byte in redzones.
pub const CANARY: u8 = 0xcb;
/// glibc refuses any request above PTRDIFF_MAX without trying.
const MAX_REQUEST: usize = isize::MAX as usize;
/// Above this no machine can serve the request (the user address space is 128 TiB).
pub const TOO_BIG: usize = 1 << 47;

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
    let Some(_g) = tls::Guard::acquire() else {
        return 0;
    };
    let depth = opts::DEPTH.load(Ordering::Relaxed);
    let mut buf = [0u64; memcheck_wire::MAX_FRAMES];
    let n = unwind::capture(&mut buf[..depth]);
    depot::intern(&buf[..n])
}

/// Allocates `size` user bytes aligned to `align` (a power of two) for `family`.
/// On failure returns null with errno set to ENOMEM, as glibc does.
pub fn allocate(size: usize, align: usize, family: Family, zero: bool) -> *mut u8 {
    init::ensure();
    if size > MAX_REQUEST - 64 - align {
        if size >= TOO_BIG {
            warn(ErrorKind::AllocationSizeTooBig, size as u64, align as u64);
        }
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    if size >= TOO_BIG {
        warn(ErrorKind::AllocationSizeTooBig, size as u64, align as u64);
    }
    let left = left_redzone(align);
    let total = left + size + right_redzone(size);
    // SAFETY: plain calls into glibc's allocator with a valid size and power-of-two alignment.
    let base = unsafe {
        if align <= 16 {
            if zero {
                real::__libc_calloc(1, total)
            } else {
                real::__libc_malloc(total)
            }
        } else {
            let p = real::__libc_memalign(align, total);
            if zero && !p.is_null() {
                core::ptr::write_bytes(p as *mut u8, 0, total);
            }
            p
        }
    } as *mut u8;
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
    let stack = capture_stack();
    let ok = table::insert(Entry {
        key: user as usize,
        size,
        alloc_stack: stack,
        free_stack: 0,
        base_off: left as u32,
        family: family as u8,
        state: table::LIVE,
    });
    if !ok {
        // SAFETY: base came from glibc above and was never handed out.
        unsafe { real::__libc_free(base as *mut c_void) };
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    user
}

/// The first canary byte that changed: `(offset from the user pointer, is it after the block)`.
pub fn check_canaries(e: &Entry) -> Option<(isize, bool)> {
    let user = e.key as *const u8;
    let left = e.base_off as usize;
    // SAFETY: the redzones belong to the live glibc block of this entry.
    unsafe {
        let l = core::slice::from_raw_parts(user.sub(left), left);
        if let Some(i) = l.iter().rposition(|&b| b != CANARY) {
            return Some((i as isize - left as isize, false));
        }
        let r = core::slice::from_raw_parts(user.add(e.size), right_redzone(e.size));
        if let Some(i) = r.iter().position(|&b| b != CANARY) {
            return Some(((e.size + i) as isize, true));
        }
    }
    None
}

/// Returns a block to glibc and forgets it (quarantine eviction).
pub fn release_to_glibc(key: usize) {
    if let Some(e) = table::remove(key) {
        // SAFETY: key - base_off is the glibc block this entry was allocated as.
        unsafe { real::__libc_free((key - e.base_off as usize) as *mut c_void) };
    }
}

fn block_error(kind: ErrorKind, e: &Entry, addr: usize, free_family: Family, stack: u32) {
    report(ErrorRec {
        kind,
        access: Access::Unknown,
        tid: sys::gettid(),
        addr: addr as u64,
        access_size: 0,
        has_block: true,
        block_addr: e.key as u64,
        block_size: e.size as u64,
        alloc_family: Family::from_u8(e.family).unwrap_or(Family::Malloc),
        free_family,
        stack,
        alloc_stack: e.alloc_stack,
        free_stack: e.free_stack,
        arg1: 0,
        arg2: 0,
    });
}

/// Frees `p` through a release call of `family`. Preserves errno.
pub fn release(p: *mut u8, family: Family) {
    if p.is_null() {
        return;
    }
    init::ensure();
    let saved = sys::errno();
    let stack = capture_stack();
    match table::mark_freed(p as usize, stack) {
        FreeLookup::Live(e) => {
            if e.family != family as u8 {
                block_error(ErrorKind::AllocDeallocMismatch, &e, p as usize, family, stack);
            }
            check_block(&e, stack);
            quarantine::push(e.key, e.size + e.base_off as usize + right_redzone(e.size));
        }
        FreeLookup::AlreadyFreed(e) => {
            block_error(ErrorKind::DoubleFree, &e, p as usize, family, stack);
        }
        FreeLookup::Unknown => {
            report(ErrorRec {
                kind: ErrorKind::InvalidFree,
                access: Access::Unknown,
                tid: sys::gettid(),
                addr: p as u64,
                access_size: 0,
                has_block: false,
                block_addr: 0,
                block_size: 0,
                alloc_family: family,
                free_family: family,
                stack,
                alloc_stack: 0,
                free_stack: 0,
                arg1: 0,
                arg2: 0,
            });
        }
    }
    sys::set_errno(saved);
}

/// Reports a damaged redzone of a block being freed or reallocated.
fn check_block(e: &Entry, stack: u32) {
    if let Some((off, after)) = check_canaries(e) {
        let kind = if after {
            ErrorKind::HeapBufferOverflow
        } else {
            ErrorKind::HeapBufferUnderflow
        };
        let mut rec = ErrorRec {
            kind,
            access: Access::Write,
            tid: sys::gettid(),
            addr: (e.key as isize + off) as u64,
            access_size: 0,
            has_block: true,
            block_addr: e.key as u64,
            block_size: e.size as u64,
            alloc_family: Family::from_u8(e.family).unwrap_or(Family::Malloc),
            free_family: Family::Malloc,
            stack,
            alloc_stack: e.alloc_stack,
            free_stack: 0,
            arg1: 0,
            arg2: 0,
        };
        // The damage is found at free time: the stack is the free call's, not the bad write's.
        rec.free_stack = stack;
        report(rec);
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
    let Some(old) = table::get(p as usize).filter(|e| e.state == table::LIVE) else {
        let stack = capture_stack();
        let known = table::get(p as usize);
        match known {
            Some(e) => block_error(ErrorKind::InvalidRealloc, &e, p as usize, Family::Malloc, stack),
            None => report(ErrorRec {
                kind: ErrorKind::InvalidRealloc,
                access: Access::Unknown,
                tid: sys::gettid(),
                addr: p as u64,
                access_size: 0,
                has_block: false,
                block_addr: 0,
                block_size: 0,
                alloc_family: Family::Malloc,
                free_family: Family::Malloc,
                stack,
                alloc_stack: 0,
                free_stack: 0,
                arg1: 0,
                arg2: 0,
            }),
        }
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    };
    let new = allocate(size, 16, Family::Malloc, false);
    if new.is_null() {
        return new;
    }
    // SAFETY: both blocks are live and at least min(old, new) bytes long; they do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(p, new, old.size.min(size)) };
    release(p, Family::from_u8(old.family).unwrap_or(Family::Malloc));
    new
}

/// The usable size of a live block: exactly what was asked for.
pub fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    match table::get(p as usize) {
        Some(e) if e.state == table::LIVE => e.size,
        _ => 0,
    }
}

/// Reports a suspicious call that keeps glibc's answer.
pub fn warn(kind: ErrorKind, arg1: u64, arg2: u64) {
    let stack = capture_stack();
    report(ErrorRec {
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
        stack,
        alloc_stack: 0,
        free_stack: 0,
        arg1,
        arg2,
    });
}

/// Writes an error record (with the stacks and modules it needs) and announces it on stderr.
pub fn report(rec: ErrorRec) {
    let Some(_g) = tls::Guard::acquire() else {
        return;
    };
    if !rec.kind.is_warning() {
        opts::ERRORS.fetch_add(1, Ordering::Relaxed);
    }
    record::emit_modules();
    for s in [rec.stack, rec.alloc_stack, rec.free_stack] {
        record::emit_stack(s);
    }
    record::emit(&Record::Error(rec));
    if opts::ACTIVE.load(Ordering::Relaxed) {
        crate::log!(
            "{} {} at {:#x} (pid {}, thread {}); details in the report at exit",
            if rec.kind.is_warning() { "warning:" } else { "error:" },
            rec.kind.name(),
            rec.addr,
            sys::getpid(),
            rec.tid
        );
    }
    if !rec.kind.is_warning() && opts::ABORT_ON_ERROR.load(Ordering::Relaxed) {
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
        assert_eq!(check_canaries(&e), Some((13, true)));
        mem[16 + 13] = CANARY;
        mem[15] = 1;
        assert_eq!(check_canaries(&e), Some((-1, false)));
    }
}
