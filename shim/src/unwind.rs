//! Call-stack capture. [`capture`] and [`capture_libgcc`] write raw return addresses into a
//! caller's buffer and never allocate; frames inside the shim itself are dropped so a stack starts
//! at the target's call into the allocator. [`capture_stack`] (an allocation or free call) and
//! [`fault_stack`] (the guard-mode fault handler) store the stack in the [`depot`] and return its
//! id, 0 when the thread is already inside the shim.
use crate::{depot, opts, tls};
use core::ffi::{c_int, c_void};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

#[allow(non_camel_case_types)]
type _Unwind_Trace_Fn = extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int;

extern "C" {
    fn _Unwind_Backtrace(cb: _Unwind_Trace_Fn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(ctx: *mut c_void) -> usize;
}

const URC_NO_REASON: c_int = 0;
const URC_END_OF_STACK: c_int = 5;

/// The shim's own code range, set by [`set_self_range`].
static SELF_START: AtomicUsize = AtomicUsize::new(0);
static SELF_END: AtomicUsize = AtomicUsize::new(0);

pub fn set_self_range(start: usize, end: usize) {
    SELF_START.store(start, Ordering::Relaxed);
    SELF_END.store(end, Ordering::Relaxed);
}

/// Whether `ip` lies in the shim's own code.
#[inline]
pub fn in_self(ip: usize) -> bool {
    ip >= SELF_START.load(Ordering::Relaxed) && ip < SELF_END.load(Ordering::Relaxed)
}

struct State<'a> {
    out: &'a mut [MaybeUninit<u64>],
    n: usize,
    skipping: bool,
    /// Drop shim frames inside the stack too, not only the leading ones.
    drop_all: bool,
}

extern "C" fn step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: arg is the &mut State passed to _Unwind_Backtrace below, alive for the whole walk.
    let st = unsafe { &mut *(arg as *mut State) };
    // SAFETY: ctx is the unwinder's context for this frame.
    let ip = unsafe { _Unwind_GetIP(ctx) };
    if ip == 0 {
        return URC_END_OF_STACK;
    }
    if (st.skipping || st.drop_all) && in_self(ip) {
        return URC_NO_REASON;
    }
    st.skipping = false;
    st.out[st.n].write(ip as u64);
    st.n += 1;
    if st.n == st.out.len() {
        URC_END_OF_STACK
    } else {
        URC_NO_REASON
    }
}

/// Fills `out` with return addresses of the current thread, innermost first, and returns how many:
/// through the cached CFI rules where every frame has simple ones, else through libgcc.
///
/// Every frame inside the shim is dropped, not only the leading ones: a checked string function
/// (`memfn`) that calls into glibc, which allocates (`strdup`, `puts`), leaves a shim frame inside
/// the stack, and the program's stack goes without it.
#[inline(never)]
pub fn capture(out: &mut [MaybeUninit<u64>]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let shim = SELF_START.load(Ordering::Relaxed)..SELF_END.load(Ordering::Relaxed);
        if let Some(n) = crate::fastunwind::capture(out, shim) {
            return n;
        }
    }
    walk_libgcc(out, true)
}

/// The same through libgcc's `_Unwind_Backtrace` (any frame, signal frames included; slower),
/// dropping only the leading shim frames.
#[inline(never)]
pub fn capture_libgcc(out: &mut [MaybeUninit<u64>]) -> usize {
    walk_libgcc(out, false)
}

/// Frames a capture of the hot paths holds in the caller's frame; deeper `--num-callers` take
/// [`capture_deep`].
const SMALL: usize = 32;

/// A stack buffer for a capture of up to [`SMALL`] frames (which writes its first entries).
pub type Frames = [MaybeUninit<u64>; SMALL];

/// A fresh [`Frames`], zeroed: the buffer lies in a live shim frame while the allocation path
/// runs, which a live leak check (`memcheck leaks`) scans as a root when it pauses the thread
/// there; whatever the program's earlier, deeper calls left in that stack memory (pointers to
/// lost blocks) must not be read as references. Small, made in the caller's frame and never
/// moved, so zeroing it is a few stores (a kilobyte zeroed per capture cost more than the walk).
#[inline(always)]
pub fn frames() -> Frames {
    [MaybeUninit::new(0); SMALL]
}

/// A capture deeper than [`SMALL`] frames, interned at once, its kilobyte buffer zeroed (for the
/// leak scan, as [`frames`]) in a frame of its own, gone when it returns.
#[inline(never)]
fn capture_deep(depth: usize) -> u32 {
    let mut buf = [MaybeUninit::new(0u64); memcheck_wire::MAX_FRAMES];
    let n = capture(&mut buf[..depth.min(memcheck_wire::MAX_FRAMES)]);
    depot::intern(written(&buf, n))
}

/// The first `n` entries of `buf`, which a capture wrote.
#[inline(always)]
fn written(buf: &[MaybeUninit<u64>], n: usize) -> &[u64] {
    debug_assert!(n <= buf.len());
    // SAFETY: a capture returning n wrote buf[..n]; MaybeUninit<u64> has u64's layout.
    unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n.min(buf.len())) }
}

fn walk_libgcc(out: &mut [MaybeUninit<u64>], drop_all: bool) -> usize {
    if out.is_empty() {
        return 0;
    }
    let mut st = State {
        out,
        n: 0,
        skipping: true,
        drop_all,
    };
    // SAFETY: step only writes inside st.out, which outlives the call.
    unsafe { _Unwind_Backtrace(step, &mut st as *mut State as *mut c_void) };
    st.n
}

/// Captures the calling stack into the depot; 0 when re-entered (the unwinder allocating).
#[inline]
pub fn capture_stack() -> u32 {
    let Some(_g) = tls::Reentry::acquire() else {
        return 0;
    };
    let depth = opts::DEPTH.load(Ordering::Relaxed);
    if depth > SMALL {
        return capture_deep(depth);
    }
    let mut buf = frames();
    let n = capture(&mut buf[..depth]);
    depot::intern(written(&buf, n))
}

/// A stack captured by [`capture_deferred`] into the caller's [`Frames`], its depot lookup
/// started. The frames stay in the caller's buffer (a capture returned by value was copied,
/// a kilobyte per allocation).
pub struct Captured {
    n: usize,
    lookup: depot::Lookup,
}

impl Captured {
    /// Its depot id (as [`capture_stack`] would have returned); `buf` is the buffer it was
    /// captured into.
    #[inline]
    pub fn intern(&self, buf: &Frames) -> u32 {
        let Some(_g) = tls::Reentry::acquire() else {
            return 0;
        };
        depot::finish(written(buf, self.n), self.lookup)
    }
}

/// The stack of an allocation: [`capture_stack`], or 0 without a walk when
/// `--keep-stacktraces` keeps no allocation stacks (`free`, `none`).
#[inline]
pub fn capture_alloc_stack() -> u32 {
    if !opts::keep_alloc_stack() {
        return 0;
    }
    capture_stack()
}

/// The allocation path's [`capture_stack`] in two halves: the frames now, with the depot's
/// lookup started (its slot loading), and the id from [`Captured::intern`] after the caller's
/// own work (the allocation path's call into glibc), which the load overlaps. No walk and id 0
/// when `--keep-stacktraces` keeps no allocation stacks (as [`capture_alloc_stack`]).
#[inline(always)]
pub fn capture_deferred(buf: &mut Frames) -> Captured {
    let mut c = Captured {
        n: 0,
        lookup: depot::Lookup::Known(0),
    };
    // `--keep-stacktraces=free` or `none`: no walk, id 0.
    if !opts::keep_alloc_stack() {
        return c;
    }
    let Some(_g) = tls::Reentry::acquire() else {
        return c;
    };
    let depth = opts::DEPTH.load(Ordering::Relaxed);
    if depth > SMALL {
        c.lookup = depot::Lookup::Known(capture_deep(depth));
        return c;
    }
    c.n = capture(&mut buf[..depth]);
    c.lookup = depot::begin(written(buf, c.n));
    c
}

/// The stack of the faulting code: the unwinder passes through the signal frame and reports the
/// faulting PC itself; what lies before it is the handler.
pub fn fault_stack(pc: usize) -> u32 {
    let Some(_g) = crate::tls::Reentry::acquire() else {
        return 0;
    };
    let depth = opts::DEPTH.load(Ordering::Relaxed);
    let mut buf = [MaybeUninit::new(0u64); memcheck_wire::MAX_FRAMES];
    let n = capture_libgcc(&mut buf[..depth.min(memcheck_wire::MAX_FRAMES - 1)]);
    let frames = written(&buf, n);
    match frames.iter().position(|&f| f as usize == pc) {
        Some(i) => crate::depot::intern(&frames[i..]),
        None => {
            let mut with_pc = [0u64; memcheck_wire::MAX_FRAMES];
            with_pc[0] = pc as u64;
            let m = n.min(memcheck_wire::MAX_FRAMES - 1);
            with_pc[1..=m].copy_from_slice(&frames[..m]);
            crate::depot::intern(&with_pc[..=m])
        }
    }
}
