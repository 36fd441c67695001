//! Error records: building them (with or without the block they concern) and writing them.
//! [`report`] writes a record with the stacks and modules it names, counts it on the statistics
//! page, announces an error (not a warning) on stderr and aborts under `--on-error=abort`;
//! [`warn`] reports a suspicious call at the caller's stack.
use crate::table::{self, Entry};
use crate::unwind::capture_stack;
use crate::{guard, opts, record, sys, tls};
use core::sync::atomic::Ordering;
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family, Record};

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
        func: 0,
    }
}

/// An error record about the block `e` (its range, families and stacks): `addr` is where the
/// problem lies, `free_family` the family of the release call, `stack` where it was found.
pub fn block_error(
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

/// A free or realloc of a pointer the table does not know: a block released long ago (a guarded
/// block's slot remembers its current and previous tenants), a pointer into the middle of a
/// block, or a foreign pointer.
pub fn unknown_pointer(kind: ErrorKind, p: usize, family: Family, stack: u32) -> ErrorRec {
    if let Some(s) = guard::freed_tenant(p) {
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
            free_stack: s.free_stack,
            ..error_rec(k)
        };
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
    // A crash is already on its way to its default action.
    if opts::ABORT_ON_ERROR.load(Ordering::Relaxed) && rec.kind != ErrorKind::Crash {
        crate::log!("aborting (--on-error=abort)");
        // SAFETY: abort never returns; the record is already on disk.
        unsafe { libc::abort() };
    }
}
