//! Per-thread state: the reentrancy mark ([`Reentry`]), the warning mute and the count of shim
//! locks this thread holds. All-zero at thread start, no destructor, so touching it never registers a
//! TLS destructor (which would go through `calloc`); initial-exec ([`crate::fasttls`]).
use core::cell::Cell;

per_thread! {
    static IN_SHIM: Cell<bool>;
    static QUIET: Cell<bool>;
    static LOCKS_HELD: Cell<u32>;
    static DEFERRED_SIGNAL: Cell<i32>;
    /// `memcheck leaks`' signal deferred (`live.rs`), kept apart so it never hides an ending.
    static DEFERRED_LIVE: Cell<bool>;
}

/// How many shim spinlocks this thread holds, counting a glibc allocator call the shim made
/// (`real.rs`) as one. Non-zero on entry to a hook means the hook runs in
/// a signal handler that interrupted the shim inside a locked section (see `reentry`).
#[inline]
pub fn locks_held() -> u32 {
    LOCKS_HELD.with(|c| c.get())
}

/// Called by every spinlock as it is taken (`+1`) and released (`-1`). Releasing the last one
/// sends a signal deferred while it was held ([`defer_signal`]).
#[inline]
pub fn count_lock(delta: i32) {
    let n = LOCKS_HELD.with(|c| {
        let n = c.get().wrapping_add_signed(delta);
        c.set(n);
        n
    });
    if n == 0 && delta < 0 && (DEFERRED_SIGNAL.with(|d| d.get()) != 0 || DEFERRED_LIVE.get()) {
        raise_deferred();
    }
}

/// A terminating signal arrived while this thread held a shim lock or was inside glibc's
/// allocator, where the exit checks cannot run: it is sent again to this thread when the thread
/// leaves that code (the last lock, or glibc's call, released).
pub fn defer_signal(sig: i32) {
    DEFERRED_SIGNAL.with(|d| {
        if d.get() == 0 {
            d.set(sig)
        }
    });
}

/// `memcheck leaks`' request or pause signal arrived while this thread held a shim lock: it is
/// sent again to this thread when the thread leaves that code.
pub fn defer_live() {
    DEFERRED_LIVE.set(true);
}

/// In a fork child: a signal deferred in the parent is the parent's, not the child's.
pub fn clear_deferred() {
    DEFERRED_SIGNAL.with(|d| d.set(0));
    DEFERRED_LIVE.set(false);
}

#[cold]
fn raise_deferred() {
    if DEFERRED_LIVE.replace(false) {
        // SAFETY: raise sends the signal to this thread; live.rs's handler knows it by its code.
        unsafe { libc::raise(memcheck_wire::live::SIGNAL) };
    }
    let sig = DEFERRED_SIGNAL.with(|d| d.replace(0));
    if sig != 0 {
        // SAFETY: raise sends the signal to this thread; the shim's handler then runs the checks.
        unsafe { libc::raise(sig) };
    }
}

/// Whether this thread is inside the shim (holds [`Reentry`]).
#[inline]
pub fn in_shim() -> bool {
    IN_SHIM.with(|c| c.get())
}

/// Whether warnings are muted on this thread (a retry inside libstdc++ after a failed `new`, which
/// would otherwise report the same request again).
pub fn quiet() -> bool {
    QUIET.with(|c| c.get())
}

/// Runs `f` with warnings muted on this thread.
pub fn with_quiet<T>(f: impl FnOnce() -> T) -> T {
    let was = QUIET.with(|c| c.replace(true));
    let r = f();
    QUIET.with(|c| c.set(was));
    r
}

/// Held while the shim does work that might call back into the allocator (unwinding, reporting):
/// this thread has entered the shim. Nested hook calls find it held and skip that work; dropping
/// it leaves the shim.
pub struct Reentry(());

impl Reentry {
    /// `None` if this thread is already inside the shim.
    pub fn acquire() -> Option<Reentry> {
        IN_SHIM.with(|c| {
            if c.get() {
                None
            } else {
                c.set(true);
                Some(Reentry(()))
            }
        })
    }
}

impl Drop for Reentry {
    fn drop(&mut self) {
        IN_SHIM.with(|c| c.set(false));
    }
}
