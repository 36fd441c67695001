//! One-time set-up (a state machine safe to enter from the first `malloc`, which may come from the
//! dynamic loader before libc is initialised), the constructor (which registers the exit hook of
//! [`crate::exit`] and the fork handlers, installs the signal handler of [`crate::fault`] (endings, guard-mode faults) and hides the shim
//! from exec'd children), and the fork handlers that keep every shim lock consistent across
//! `fork`. The allocation entry points call [`ensure`]; nothing this module calls calls back
//! into it.
use crate::{
    depot, exec, exit, fault, guard, heap, modules, opts, quarantine, record, table, unwind,
};
use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicU8, Ordering};

const UNINIT: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNINIT);

extern "C" {
    fn on_exit(f: extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
    static mut environ: *mut *mut libc::c_char;
}

/// Makes sure the settings are loaded. Cheap after the first call.
#[inline]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != READY {
        slow_init();
    }
}

#[cold]
fn slow_init() {
    if STATE
        .compare_exchange(UNINIT, RUNNING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Set-up is under way (on this thread, re-entered, or on another): carry on without it.
        return;
    }
    opts::load();
    if let Some((s, e)) = modules::range_containing(slow_init as *const () as usize) {
        unwind::set_self_range(s, e);
    }
    if opts::guard_mode() != memcheck_wire::GuardMode::Off {
        guard::init();
    }
    STATE.store(READY, Ordering::Release);
}

/// Runs from `.init_array` when the loader initialises the shim, before the program's own
/// constructors and before `main`.
extern "C" fn constructor() {
    ensure();
    exit::set_pid();
    exec::init();
    record::open();
    // SAFETY: registering handlers with libc; the functions live as long as the process.
    unsafe {
        on_exit(exit::exit_hook, core::ptr::null_mut());
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
    }
    fault::install();
    crate::live::install();
    if !opts::TRACE_CHILDREN.load(Ordering::Relaxed) {
        hide_from_children();
    }
    crate::memfn::init();
}

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn fork_prepare() {
    #[cfg(target_arch = "x86_64")]
    crate::fastunwind::lock();
    record::lock();
    quarantine::lock();
    guard::lock();
    depot::lock();
    table::lock_all();
    heap::lock_all();
}

extern "C" fn fork_parent() {
    #[cfg(target_arch = "x86_64")]
    crate::fastunwind::unlock();
    heap::unlock_all();
    table::unlock_all();
    depot::unlock();
    guard::unlock();
    quarantine::unlock();
    record::unlock();
}

extern "C" fn fork_child() {
    crate::tls::clear_deferred();
    crate::live::after_fork_child();
    #[cfg(target_arch = "x86_64")]
    crate::fastunwind::unlock();
    heap::unlock_all();
    table::unlock_all();
    depot::unlock();
    guard::unlock();
    quarantine::unlock();
    record::after_fork_child();
    record::unlock();
    exit::after_fork_child();
    opts::FORK_GEN.fetch_add(1, Ordering::Relaxed);
    if opts::CHILD_SILENT.load(Ordering::Relaxed) {
        // --child-silent-after-fork: no report from this child until it execs (the new image
        // reads its settings again).
        opts::ACTIVE.store(false, Ordering::Relaxed);
    }
    record::open();
}

/// Without `--trace-children`, removes the shim from the environment so programs this one execs
/// run natively: our path leaves `LD_PRELOAD` and the `MEMCHECK_*` variables go.
fn hide_from_children() {
    let ours = exec::own_path();
    // SAFETY: at constructor time no other thread exists; environ is libc's NULL-terminated array.
    unsafe {
        let env = *core::ptr::addr_of!(environ);
        if env.is_null() {
            return;
        }
        let mut read = 0;
        let mut write = 0;
        loop {
            let e = *env.add(read);
            if e.is_null() {
                break;
            }
            read += 1;
            let s = CStr::from_ptr(e).to_bytes();
            if memcheck_wire::ENV_ALL
                .iter()
                .any(|v| memcheck_wire::env_value(s, v).is_some())
            {
                continue;
            }
            if let Some(v) = s.strip_prefix(b"LD_PRELOAD=") {
                let kept = exec::strip_preload(v, ours);
                if kept.is_empty() {
                    continue;
                }
                if kept.len() != v.len() {
                    // A private copy that lives for the rest of the process.
                    let mut buf = rust_alloc::vec::Vec::with_capacity(kept.len() + 12);
                    buf.extend_from_slice(b"LD_PRELOAD=");
                    buf.extend_from_slice(&kept);
                    buf.push(0);
                    let leaked = buf.leak();
                    *env.add(write) = leaked.as_mut_ptr().cast();
                    write += 1;
                    continue;
                }
            }
            *env.add(write) = e;
            write += 1;
        }
        *env.add(write) = core::ptr::null_mut();
    }
}
