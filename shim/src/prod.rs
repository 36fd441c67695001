//! Production mode (`--leak-check=no --sample-rate=N`, see [`crate::opts::PRODUCTION`]): GWP-ASan's
//! design without a rebuild. One allocation in N (each thread's countdown, as in sampled guard
//! mode) is a guarded block, recorded and checked exactly as in guard mode; every other one is
//! glibc's block, untouched and unrecorded: no stack is captured, nothing enters the table, no
//! redzone, fill or quarantine. A release, `realloc` or `malloc_usable_size` of a pointer outside
//! the guard pool ([`guard::contains`], a range compare without a lock) goes straight to glibc, so
//! the unrecorded blocks cost what they cost natively.
//!
//! What that gives up, as GWP-ASan does: a double or invalid free of an unrecorded block, and a
//! mismatched `delete`, are glibc's business (glibc's own checks, which may abort); a pointer
//! inside the pool is checked as ever, so a double free of a sampled block is reported. The entry
//! points of [`crate::alloc`] branch here first. The flag is set when init applies the options,
//! before any block is recorded; only a thread allocating while another one runs the one-time
//! set-up (before the shim's constructor, so in practice none) could get a default-mode block,
//! which this mode would then hand to glibc's `free` as a wrong pointer.
use crate::alloc::{check_size, guarded, guarded_now, SIZE_OVERFLOWS};
use crate::report::warn;
use crate::table::new_align_flags;
use crate::unwind::capture_stack;
use crate::{opts, real, reentry, sys};
use core::sync::atomic::Ordering;
use memcheck_wire::{ErrorKind, Family};

/// glibc refuses any request above PTRDIFF_MAX without trying.
const MAX_REQUEST: usize = isize::MAX as usize;

/// Whether `size` bytes at `align` must be refused or warned about: above `--max-allocation-size`
/// or near PTRDIFF_MAX (one compare of each on the fast path).
#[inline(always)]
fn out_of_bounds(size: usize, align: usize) -> bool {
    size as u64 > opts::MAX_ALLOCATION_SIZE.load(Ordering::Relaxed)
        || size > MAX_REQUEST.saturating_sub(64 + align)
}

/// Reports a request above `--max-allocation-size`, or one no allocator can serve; true for the
/// latter (the call then fails with ENOMEM, as glibc's would).
#[cold]
#[inline(never)]
fn refused(size: usize, align: usize) -> bool {
    let too_big = size > MAX_REQUEST.saturating_sub(64 + align);
    if !check_size(size) && too_big {
        warn(ErrorKind::AllocationSizeTooBig, size as u64, SIZE_OVERFLOWS);
    }
    if too_big {
        sys::set_errno(libc::ENOMEM);
    }
    too_big
}

/// An allocation in production mode (after `init::ensure`): the sampled one a guarded block
/// (glibc's when the pool refuses it), the others glibc's, errno left as glibc leaves it. A call
/// re-entered from a signal handler takes [`reentry`]'s path, as in every mode.
#[inline]
pub fn allocate(
    size: usize,
    align: usize,
    family: Family,
    zero: bool,
    new_align: usize,
) -> *mut u8 {
    if reentry::active() {
        return reentered(size, align);
    }
    reentry::drain(crate::alloc::release);
    if out_of_bounds(size, align) && refused(size, align) {
        return core::ptr::null_mut();
    }
    if guarded_now() {
        if let Some(user) = sampled(size, align, family, zero, new_align) {
            return user;
        }
    }
    if align <= 16 {
        if zero {
            real::calloc(1, size)
        } else {
            real::malloc(size)
        }
    } else {
        // Only calloc zeroes, and its alignment is malloc's.
        real::memalign(align, size)
    }
}

/// An allocation re-entered from a signal handler: a mapping of its own ([`reentry::allocate`]).
#[cold]
#[inline(never)]
fn reentered(size: usize, align: usize) -> *mut u8 {
    let saved = sys::errno();
    let p = reentry::allocate(size, align);
    sys::set_errno(if p.is_null() { libc::ENOMEM } else { saved });
    p
}

/// The sampled allocation: a guarded block entered in the table with its stack, exactly as in
/// guard mode; None if the pool refused it (past the mapping budget).
#[cold]
#[inline(never)]
fn sampled(
    size: usize,
    align: usize,
    family: Family,
    zero: bool,
    new_align: usize,
) -> Option<*mut u8> {
    let saved = sys::errno();
    let stack = capture_stack();
    let user = guarded(size, align, family, zero, new_align_flags(new_align), stack);
    sys::set_errno(saved);
    user
}

/// `free` or `delete` in production mode of a block outside the guard pool: glibc's, or one the
/// re-entered path mapped. A re-entered call defers it, as in every mode. glibc's `free` keeps
/// errno.
pub fn release(p: *mut u8, family: Family) {
    if reentry::active() {
        if !reentry::free_if_ours(p) {
            reentry::defer_free(p, family);
        }
        return;
    }
    reentry::drain(crate::alloc::release);
    if !reentry::free_if_ours(p) {
        // SAFETY: outside the pool, a block in production mode is glibc's (an invalid pointer is
        // glibc's to judge, as without memcheck).
        unsafe { real::free(p) };
    }
}

/// `realloc` in production mode of a block outside the guard pool (not null, `size` not zero,
/// not re-entered): glibc's `realloc`, whose new block is never sampled, with the
/// `--max-allocation-size` warning kept.
pub fn reallocate(p: *mut u8, size: usize) -> *mut u8 {
    reentry::drain(crate::alloc::release);
    if out_of_bounds(size, 0) && refused(size, 0) {
        return core::ptr::null_mut();
    }
    // SAFETY: outside the pool, a block in production mode is glibc's.
    unsafe { real::realloc(p, size) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_size_is_glibcs() {
        for n in [1usize, 24, 25, 100, 4000, 200_000] {
            let p = real::malloc(n);
            // SAFETY: p is a live glibc block.
            let u = unsafe { real::usable_size(p) };
            // SAFETY: glibc's own answer for the same block.
            assert_eq!(u, unsafe { libc::malloc_usable_size(p.cast()) }, "{n}");
            assert!(u >= n);
            // SAFETY: p is a live glibc block.
            let q = unsafe { real::realloc(p, n * 2) };
            assert!(!q.is_null());
            // SAFETY: q is live and came from glibc.
            unsafe { real::free(q) };
        }
    }
}
