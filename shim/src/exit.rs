//! The exit checks: the exit record (or, for a death by signal, a note naming the signal), the
//! last check of every block's canaries and fill ([`canary::check_all`]) and the leak check
//! ([`scan::leak_check`]), once per process image, whichever ending comes first:
//!
//! - `exit`: [`exit_hook`], which [`crate::init`]'s constructor registers with `on_exit` before
//!   `__libc_start_main` registers `_dl_fini`, so it runs last: after the program's exit handlers
//!   and every library's destructors, while all objects are still mapped;
//! - `_exit`/`_Exit`: the interposed functions of [`crate::exports`] call [`finish`] and then the
//!   `exit_group` system call themselves;
//! - a signal whose default action terminates: [`crate::fault`]'s handler calls [`finish`], then
//!   lets the default action happen.
//!
//! A `vfork` child shares its parent's memory (the flag below included) and must not run the
//! checks: it is recognised by its pid, which differs from the one this image recorded at start-up
//! or in the fork child handler (`vfork` runs no fork handlers).
use crate::{canary, opts, record, scan, sys};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU32, Ordering};
use memcheck_wire::{Exit, Record};

/// 0: the checks have not started in this image; `DONE`: they are over; else the thread id of the
/// thread running them.
static STATE: AtomicU32 = AtomicU32::new(0);
const DONE: u32 = u32::MAX;
/// The pid of this process image (set at start-up and in a fork child).
static PID: AtomicU32 = AtomicU32::new(0);

/// How the process ends.
#[derive(Clone, Copy)]
pub enum Ending {
    /// `exit`, `_exit` or `_Exit` with this status.
    Exit(c_int),
    /// The default action of this signal.
    Signal(c_int),
}

/// Records this process image's pid (constructor, fork child handler).
pub fn set_pid() {
    PID.store(sys::getpid(), Ordering::Relaxed);
}

/// Whether this is a `vfork` child (or a `clone` sharing the parent's memory): it must leave the
/// parent's state alone.
pub fn shared_with_parent() -> bool {
    let pid = PID.load(Ordering::Relaxed);
    pid != 0 && pid != sys::getpid()
}

/// Registered first, so it runs last: after the program's exit handlers and every library's
/// destructors, while all objects are still mapped.
pub extern "C" fn exit_hook(code: c_int, _arg: *mut c_void) {
    if shared_with_parent() {
        return;
    }
    finish(
        Ending::Exit(code),
        scan::Roots::CallTo(libc::exit as *const () as usize),
        true,
    );
}

/// Whether another thread is running the checks right now.
pub fn running_elsewhere() -> bool {
    let s = STATE.load(Ordering::Acquire);
    s != 0 && s != DONE && s != sys::gettid()
}

/// Waits until the checks another thread runs are over (a signal handler that must not kill the
/// process in the middle of them).
pub fn wait_for_others() {
    while running_elsewhere() {
        sys::yield_now();
    }
}

/// Runs the exit checks unless this image already ran (or is running) them. `roots` says which
/// frames of this thread are live ([`scan::Roots`]). `freeres` says whether glibc's one-time
/// buffers may be freed first (only in `exit`: `__libc_freeres` also flushes stdio, which `_exit`
/// and a signal death must not do).
pub fn finish(end: Ending, roots: scan::Roots, freeres: bool) {
    if STATE
        .compare_exchange(0, sys::gettid(), Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    match end {
        Ending::Exit(code) => record::emit(&Record::Exit(Exit { code })),
        Ending::Signal(sig) => {
            let mut text = sys::FixedBuf::<64>::new();
            let _ = core::fmt::Write::write_fmt(
                &mut text,
                format_args!("{}{sig}", memcheck_wire::NOTE_SIGNAL),
            );
            record::emit(&Record::Note(memcheck_wire::Note {
                text: text.as_bytes(),
            }));
        }
    }
    if opts::ACTIVE.load(Ordering::Relaxed) {
        canary::check_all();
    }
    if opts::leak_check() != memcheck_wire::LeakCheck::No && opts::ACTIVE.load(Ordering::Relaxed) {
        record::batch(|| scan::leak_check(roots, freeres));
    }
    STATE.store(DONE, Ordering::Release);
}

/// In a forked child: the child runs the checks at its own end.
pub fn after_fork_child() {
    STATE.store(0, Ordering::Release);
    set_pid();
}
