//! The shared bodies of every allocation entry point: allocate, release (into the quarantine, and
//! from it back to glibc), reallocate, usable size.
//!
//! Default mode: a block is a glibc block laid out as `[left redzone][user bytes][right redzone]`;
//! both redzones hold canary bytes, checked ([`crate::canary`]) when the block is freed,
//! reallocated, evicted from the quarantine and at exit. New blocks are filled with the
//! malloc-fill byte and freed ones with the free-fill byte (at most [`FILL_MAX`] bytes each); the
//! free fill of a quarantined block is checked on eviction and at exit, which catches writes after
//! free. Guard mode (all blocks, or 1 in N with sampling) serves blocks from [`guard`], aligned to
//! [`guard::natural_align`] of their size (or `--guard-align`) so they end at their guard page;
//! `--guard=both` alternates the side per allocation site ([`side_for`]). Every
//! block is keyed in [`table`] by its user pointer with its size, family, allocation stack and
//! flags. Errors found here are written through [`crate::report`].
use crate::canary::{check_block, fill, paint_guarded, right_redzone, CANARY, FILL_MAX};
use crate::report::{block_error, report, unknown_pointer, warn};
use crate::table::{self, new_align_flags, BlockState, Entry, FreeLookup, FLAG_GUARDED};
use crate::unwind::capture_stack;
use crate::{guard, init, opts, quarantine, range, real, reentry, sys};
use core::cell::Cell;
use core::sync::atomic::{AtomicU8, Ordering};
use memcheck_wire::{ErrorKind, ErrorRec, Family, FoundAt, GuardMode};

/// glibc refuses any request above PTRDIFF_MAX without trying.
const MAX_REQUEST: usize = isize::MAX as usize;
/// The `align` of a plain `malloc`/`new`: malloc's own, 16 in the default mode and the size's
/// [`guard::natural_align`] (or `--guard-align`) in guard mode. Any other value is the least
/// alignment the caller asked for.
pub const DEFAULT_ALIGN: usize = 0;
/// `arg2` of an `allocation-size-too-big` whose size computation overflowed (pvalloc's page
/// rounding, reallocarray's product, an alignment added to the size): no limit was compared.
pub const SIZE_OVERFLOWS: u64 = 0;

/// Reports a request of `size` bytes above `--max-allocation-size` (a warning: glibc's answer is
/// kept); true if it was reported.
pub fn check_size(size: usize) -> bool {
    let max = opts::MAX_ALLOCATION_SIZE.load(Ordering::Relaxed);
    if size as u64 > max {
        warn(ErrorKind::AllocationSizeTooBig, size as u64, max);
        return true;
    }
    false
}

/// Reports a request whose size computation overflows (`pvalloc(SIZE_MAX)`, `reallocarray`);
/// `size` is the size asked for, saturated.
pub fn size_overflows(size: usize) {
    init::ensure();
    warn(ErrorKind::AllocationSizeTooBig, size as u64, SIZE_OVERFLOWS);
}

/// `--guard=both`: the side of the next guarded block of each allocation site (a hash of its
/// stack id), alternating overflow, underflow, overflow...
static SIDES: [AtomicU8; 4096] = [const { AtomicU8::new(0) }; 4096];

/// The guard side of the next block allocated at `stack` in `--guard=both`.
fn side_for(stack: u32) -> GuardMode {
    let h = (stack.wrapping_mul(0x9E37_79B9) >> 20) as usize;
    if SIDES[h % SIDES.len()].fetch_add(1, Ordering::Relaxed) & 1 == 0 {
        GuardMode::Overflow
    } else {
        GuardMode::Underflow
    }
}

per_thread! {
    /// Allocations until this thread's next sampled (guarded) block.
    static SAMPLE_COUNTDOWN: Cell<u64>;
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

/// Whether the next block of this thread goes to the guard pool.
#[inline]
pub(crate) fn guarded_now() -> bool {
    if opts::guard_mode() == GuardMode::Off {
        return false;
    }
    if !guard::active() {
        if guard::failed() {
            // No pool (its reservation failed at init): no turn of this thread ever comes.
            SAMPLE_COUNTDOWN.set(u64::MAX);
        }
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

/// Allocates `size` user bytes aligned to `align` (a power of two, or [`DEFAULT_ALIGN`]) for
/// `family`. On failure returns null with errno set to ENOMEM, as glibc does.
#[inline]
pub fn allocate(size: usize, align: usize, family: Family, zero: bool) -> *mut u8 {
    // Production mode, tested before the call (the flag is set only once init has loaded it).
    if opts::production() {
        return prod::allocate(size, align, family, zero, 0);
    }
    allocate_new(size, align, family, zero, 0)
}

/// [`allocate`] for an aligned `operator new` given `new_align` (0: any other call), which the
/// block records so its `delete` can be checked.
pub fn allocate_new(
    size: usize,
    align: usize,
    family: Family,
    zero: bool,
    new_align: usize,
) -> *mut u8 {
    init::ensure();
    if opts::production() {
        return prod::allocate(size, align, family, zero, new_align);
    }
    // A successful allocation leaves errno alone, whatever the shim's own system calls did.
    let saved = sys::errno();
    if reentry::active() {
        let p = reentry::allocate(size, align);
        sys::set_errno(if p.is_null() { libc::ENOMEM } else { saved });
        return p;
    }
    reentry::drain(release);
    let too_big = size > MAX_REQUEST.saturating_sub(64 + align);
    if !check_size(size) && too_big {
        warn(ErrorKind::AllocationSizeTooBig, size as u64, SIZE_OVERFLOWS);
    }
    if too_big {
        sys::set_errno(libc::ENOMEM);
        return core::ptr::null_mut();
    }
    let flags = new_align_flags(new_align);
    // The depot's id comes after glibc's call, which its lookup's load overlaps.
    let mut frames = crate::unwind::frames();
    let captured = crate::unwind::capture_deferred(&mut frames);
    if guarded_now() {
        let stack = captured.intern(&frames);
        crate::allocs::count(stack);
        if let Some(user) = guarded(size, align, family, zero, flags, stack) {
            sys::set_errno(saved);
            return user;
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
    // The new block's table slot is likely cold: its load overlaps the redzones, fills and the
    // depot's lookup.
    table::prefetch(base as usize + left);
    // SAFETY: base..base+total is the block glibc just returned; the redzones lie inside it.
    let user = unsafe {
        crate::bytes::set(base, CANARY, left);
        let user = base.add(left);
        crate::bytes::set(user.add(size), CANARY, total - left - size);
        user
    };
    if !zero {
        fill(user, size, opts::MALLOC_FILL.load(Ordering::Relaxed));
    }
    let stack = captured.intern(&frames);
    crate::allocs::count(stack);
    // Before the insert, whose own work (the marks' register scrub) follows it.
    range::note_new(user as usize, size);
    let ok = table::insert(Entry {
        key: user as usize,
        size,
        alloc_stack: stack,
        free_stack: 0,
        base_off: left as u32,
        family,
        state: BlockState::Live,
        flags,
        gen_or_fill: opts::FORK_GEN.load(Ordering::Relaxed),
    });
    if !ok {
        range::forget(user as usize);
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

/// A guarded block of `size` bytes for a block of `family` allocated at `stack` (`flags`: its
/// `new`'s alignment), entered in the table; None if the pool or the table refused it. Inlined,
/// so the caller's frame is laid out as with the body in place (a copy of the pointer left in a
/// deeper dead frame could be read as a root by a leak scan from a signal handler).
#[inline(always)]
pub(crate) fn guarded(
    size: usize,
    align: usize,
    family: Family,
    zero: bool,
    flags: u8,
    stack: u32,
) -> Option<*mut u8> {
    let mode = match opts::guard_mode() {
        GuardMode::Both => side_for(stack),
        m => m,
    };
    let fixed = opts::GUARD_ALIGN.load(Ordering::Relaxed);
    let galign = if fixed != 0 {
        fixed
    } else {
        guard::natural_align(size)
    }
    .max(align);
    let (user, pages) = guard::allocate(size, galign, family as u8, stack, mode)?;
    if pages == guard::Pages::Kept {
        for (a, n) in guard::stale_slop(user) {
            // SAFETY: the stale slop lies in the block's data pages, outside its bytes.
            unsafe { core::ptr::write_bytes(a as *mut u8, CANARY, n) };
        }
    } else {
        paint_guarded(user);
    }
    let user = user as *mut u8;
    if !zero {
        fill(user, size, opts::MALLOC_FILL.load(Ordering::Relaxed));
    } else if pages == guard::Pages::Kept {
        // SAFETY: the recycled slot's user bytes are this new block's.
        unsafe { core::ptr::write_bytes(user, 0, size) };
    }
    let ok = table::insert(Entry {
        key: user as usize,
        size,
        alloc_stack: stack,
        free_stack: 0,
        base_off: 0,
        family,
        state: BlockState::Live,
        flags: FLAG_GUARDED | flags,
        gen_or_fill: opts::FORK_GEN.load(Ordering::Relaxed),
    });
    if ok {
        return Some(user);
    }
    guard::release(user as usize, 0);
    guard::recycle(user as usize);
    None
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

/// Returns a quarantined block to its allocator and forgets it (quarantine eviction), checking it
/// one last time.
pub fn release_to_glibc(key: usize) {
    if let Some(e) = table::remove(key) {
        if e.flags & FLAG_GUARDED != 0 {
            // Its pages were made inaccessible when it was freed; its slot may now be reused.
            guard::recycle(key);
            return;
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

/// What a sized or aligned `operator delete` says of the block it releases.
#[derive(Clone, Copy)]
pub struct DeleteForm {
    /// The size a sized `delete` passed.
    pub size: Option<usize>,
    /// The `align_val_t` an aligned `delete` passed; 0 for an unaligned `delete`.
    pub align: usize,
}

/// `arg1` of an `alloc-dealloc-mismatch` between families (`arg2` unused).
pub const MISMATCH_FAMILY: u64 = 0;
/// `arg1` of an `alloc-dealloc-mismatch` of a sized `delete`: `arg2` is the size it passed.
pub const MISMATCH_SIZE: u64 = 1;
/// `arg1` of an `alloc-dealloc-mismatch` of alignments: `arg2` is the `new`'s alignment in its
/// high 32 bits and the `delete`'s in its low ones (0: an unaligned call).
pub const MISMATCH_ALIGN: u64 = 2;

/// The mismatch between a block and the `delete` form releasing it, as `(arg1, arg2)`.
fn delete_mismatch(e: &Entry, form: DeleteForm) -> Option<(u64, u64)> {
    if let Some(n) = form.size {
        if n != e.size {
            return Some((MISMATCH_SIZE, n as u64));
        }
    }
    let had = e.new_align();
    (had != form.align).then_some((
        MISMATCH_ALIGN,
        ((had as u64) << 32) | (form.align as u64 & 0xffff_ffff),
    ))
}

/// Frees `p` through a release call of `family`. Preserves errno.
#[inline]
pub fn release(p: *mut u8, family: Family) {
    if opts::production() && !guard::contains(p as usize) {
        if !p.is_null() {
            prod::release(p, family);
        }
        return;
    }
    release_form(p, family, None)
}

/// [`release`] by an `operator delete` of the given form, checked against the block's size and
/// its `new`'s alignment.
pub fn release_form(p: *mut u8, family: Family, form: Option<DeleteForm>) {
    if p.is_null() {
        return;
    }
    init::ensure();
    if opts::production() && !guard::contains(p as usize) {
        return prod::release(p, family);
    }
    let saved = sys::errno();
    if reentry::active() {
        if !reentry::free_if_ours(p) {
            reentry::defer_free(p, family);
        }
        sys::set_errno(saved);
        return;
    }
    reentry::drain(release);
    // The block's slot is likely cold: its load overlaps the stack walk.
    table::prefetch(p as usize);
    // --keep-stacktraces=alloc or none: no walk; an error found here walks the stack then.
    let stack = if opts::keep_free_stack() {
        capture_stack()
    } else {
        0
    };
    let here = || if stack != 0 { stack } else { capture_stack() };
    let byte = opts::FREE_FILL.load(Ordering::Relaxed);
    let replace = opts::free_replaces_alloc();
    match table::mark_freed(p as usize, stack, replace, byte, FILL_MAX) {
        FreeLookup::Live(e) => {
            if e.family != family {
                report(ErrorRec {
                    arg1: MISMATCH_FAMILY,
                    ..block_error(
                        ErrorKind::AllocDeallocMismatch,
                        &e,
                        p as usize,
                        family,
                        here(),
                    )
                });
            } else if let Some((arg1, arg2)) = form.and_then(|f| delete_mismatch(&e, f)) {
                report(ErrorRec {
                    arg1,
                    arg2,
                    ..block_error(
                        ErrorKind::AllocDeallocMismatch,
                        &e,
                        p as usize,
                        family,
                        here(),
                    )
                });
            }
            // Checked as the live block it was (redzones only).
            check_block(&e, stack, FoundAt::Free);
            if e.flags & FLAG_GUARDED != 0 {
                guard::release_as(e.key, stack, replace);
                quarantine::push(e.key, guard::footprint(e.key), release_to_glibc);
            } else {
                let (_, mm) = chunk_of(e.key - e.base_off as usize);
                let native = native_chunk(e.size, mm) as i64;
                if mm {
                    crate::stats::overhead(0, native, 1);
                } else {
                    crate::stats::overhead(native, 0, 0);
                }
                quarantine::push(
                    e.key,
                    e.size + e.base_off as usize + right_redzone(e.size),
                    release_to_glibc,
                );
            }
        }
        FreeLookup::AlreadyFreed(e) => {
            report(block_error(
                ErrorKind::DoubleFree,
                &e,
                p as usize,
                family,
                here(),
            ));
        }
        FreeLookup::Unknown if reentry::free_if_ours(p) => {}
        FreeLookup::Unknown => report(unknown_pointer(
            ErrorKind::InvalidFree,
            p as usize,
            family,
            here(),
        )),
    }
    sys::set_errno(saved);
}

/// `realloc` semantics of glibc, with every successful resize moving the block so stale
/// pointers to the old one are caught.
pub fn reallocate(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return allocate(size, DEFAULT_ALIGN, Family::Malloc, false);
    }
    if size == 0 {
        release(p, Family::Malloc);
        return core::ptr::null_mut();
    }
    init::ensure();
    if reentry::active() {
        return reentry::reallocate(p, size);
    }
    if opts::production() && !guard::contains(p as usize) && reentry::size_of(p).is_none() {
        return prod::reallocate(p, size);
    }
    let found = table::get(p as usize);
    if found.is_none() {
        if let Some(old) = reentry::size_of(p) {
            let new = allocate(size, DEFAULT_ALIGN, Family::Malloc, false);
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
    let new = allocate(size, DEFAULT_ALIGN, Family::Malloc, false);
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
    if opts::production() && !guard::contains(p as usize) {
        // SAFETY: outside the guard pool, production mode's blocks are glibc's own.
        return unsafe { real::usable_size(p) };
    }
    if reentry::active() {
        // The block table cannot be consulted here; a guarded block's size is known lock-free.
        return guard::tenant(p as usize).map_or(0, |s| s.size);
    }
    match table::get(p as usize) {
        Some(e) if e.state == BlockState::Live => e.size,
        _ => 0,
    }
}

pub(crate) mod prod {
    //! Production mode (`--leak-check=no --sample-rate=N`, see [`crate::opts::PRODUCTION`]): GWP-ASan's
    //! design without a rebuild. One allocation in N (each thread's countdown, as in sampled guard
    //! mode) is a guarded block, recorded and checked exactly as in guard mode; every other one is
    //! glibc's block, untouched and unrecorded: no stack is captured, nothing enters the table, no
    //! redzone, fill or quarantine. A release, `realloc` or `malloc_usable_size` of a pointer outside
    //! the guard pool ([`crate::guard::contains`], a range compare without a lock) goes straight to glibc, so
    //! the unrecorded blocks cost what they cost natively.
    //!
    //! What that gives up, as GWP-ASan does: a double or invalid free of an unrecorded block, and a
    //! mismatched `delete`, are glibc's business (glibc's own checks, which may abort); a pointer
    //! inside the pool is checked as ever, so a double free of a sampled block is reported. The entry
    //! points of [`crate::alloc`] branch here first. The flag is set when init applies the options,
    //! before any block is recorded; only a thread allocating while another one runs the one-time
    //! set-up (before the shim's constructor, so in practice none) could get a default-mode block,
    //! which this mode would then hand to glibc's `free` as a wrong pointer.
    use super::{check_size, guarded, guarded_now, SIZE_OVERFLOWS};
    use crate::report::warn;
    use crate::table::new_align_flags;
    use crate::unwind::capture_alloc_stack;
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
    ///
    /// The common case (malloc's alignment, a size no check can refuse, not this thread's sampled
    /// turn, nothing re-entered or deferred) is a few loads and compares before glibc's call.
    #[inline(always)]
    pub fn allocate(
        size: usize,
        align: usize,
        family: Family,
        zero: bool,
        new_align: usize,
    ) -> *mut u8 {
        let countdown = super::SAMPLE_COUNTDOWN.get();
        if align <= 16
            && countdown != 0
            && !out_of_bounds(size, 16)
            && !reentry::active()
            && !reentry::pending()
        {
            super::SAMPLE_COUNTDOWN.set(countdown - 1);
            return if zero {
                real::calloc(1, size)
            } else {
                real::malloc(size)
            };
        }
        allocate_slow(size, align, family, zero, new_align)
    }

    /// [`allocate`]'s every other case.
    #[inline(never)]
    fn allocate_slow(
        size: usize,
        align: usize,
        family: Family,
        zero: bool,
        new_align: usize,
    ) -> *mut u8 {
        if reentry::active() {
            return reentered(size, align);
        }
        reentry::drain(super::release);
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
        let stack = capture_alloc_stack();
        let user = guarded(size, align, family, zero, new_align_flags(new_align), stack);
        sys::set_errno(saved);
        user
    }

    /// `free` or `delete` in production mode of a block outside the guard pool: glibc's, or one the
    /// re-entered path mapped. A re-entered call defers it, as in every mode. glibc's `free` keeps
    /// errno.
    #[inline(always)]
    pub fn release(p: *mut u8, family: Family) {
        if !reentry::active() && !reentry::pending() {
            if !reentry::free_if_ours(p) {
                // SAFETY: outside the pool and the re-entered path's set, a block in production
                // mode is glibc's (an invalid pointer is glibc's to judge, as without memcheck).
                unsafe { real::free(p) };
            }
            return;
        }
        release_slow(p, family)
    }

    /// [`release`] when re-entered or with deferred frees or re-entered blocks about.
    #[inline(never)]
    fn release_slow(p: *mut u8, family: Family) {
        if reentry::active() {
            if !reentry::free_if_ours(p) {
                reentry::defer_free(p, family);
            }
            return;
        }
        reentry::drain(super::release);
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
        reentry::drain(super::release);
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
}
