//! Per-thread state: the reentrancy mark ([`Reentry`]), the warning mute and the count of shim
//! locks this thread holds. Const-initialised, no destructor, so touching it never registers a TLS
//! destructor (which would go through `calloc`).
use core::cell::Cell;

thread_local! {
    static IN_SHIM: Cell<bool> = const { Cell::new(false) };
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LOCKS_HELD: Cell<u32> = const { Cell::new(0) };
}

/// How many shim spinlocks this thread holds. Non-zero on entry to a hook means the hook runs in
/// a signal handler that interrupted the shim inside a locked section (see `reentry`).
#[inline]
pub fn locks_held() -> u32 {
    LOCKS_HELD.with(|c| c.get())
}

/// Called by every spinlock as it is taken (`+1`) and released (`-1`).
#[inline]
pub fn count_lock(delta: i32) {
    LOCKS_HELD.with(|c| c.set(c.get().wrapping_add_signed(delta)));
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
