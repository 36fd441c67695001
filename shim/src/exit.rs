//! The exit hook: the exit record, the last check of every block's canaries and fill
//! ([`canary::check_all`]) and the leak check ([`scan::leak_check`]), once per process image.
//! [`crate::init`]'s constructor registers it with `on_exit` before `__libc_start_main` registers
//! `_dl_fini`, so it runs last: after the program's exit handlers and every library's
//! destructors, while all objects are still mapped.
use crate::{canary, opts, record, scan};
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, Ordering};
use memcheck_wire::{Exit, Record};

/// Whether this process image has run the hook (a second `exit`, from a handler, does nothing).
static EXITED: AtomicBool = AtomicBool::new(false);

/// Registered first, so it runs last: after the program's exit handlers and every library's
/// destructors, while all objects are still mapped.
pub extern "C" fn exit_hook(code: c_int, _arg: *mut c_void) {
    if EXITED.swap(true, Ordering::AcqRel) {
        return;
    }
    record::emit(&Record::Exit(Exit { code }));
    if opts::ACTIVE.load(Ordering::Relaxed) {
        canary::check_all();
    }
    if opts::leak_check() != memcheck_wire::LeakCheck::No && opts::ACTIVE.load(Ordering::Relaxed) {
        record::batch(scan::leak_check);
    }
}

/// In a forked child: the child runs the hook at its own exit.
pub fn after_fork_child() {
    EXITED.store(false, Ordering::Release);
}
