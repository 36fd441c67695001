//! The SIGSEGV/SIGBUS handler of guard mode. It decides whether a fault is ours (an address in the
//! guard pool) with [`guard::diagnose`], reports it with the exact faulting instruction, then
//! aborts or makes the page accessible and continues, as `--on-error` says. Faults that are not
//! ours go to the handler the program installed: the shim keeps its own handler in the kernel and
//! records the program's `sigaction`/`signal` calls for these two signals instead (the JVM and V8
//! depend on their SIGSEGV handlers).
use crate::unwind::fault_stack;
use crate::{guard, report, sys};
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, Ordering};
use memcheck_wire::{Access, ErrorRec, Family};

extern "C" {
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
}

struct Prev(UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: written by the program's (rare) sigaction calls and read by the handler; a torn read
// of a handler being replaced at that very moment is the same race the kernel would have.
unsafe impl Sync for Prev {}

// SAFETY: an all-zero sigaction is SIG_DFL with no flags.
static PREV: Prev = Prev(UnsafeCell::new(unsafe { core::mem::zeroed() }));
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn slot_index(sig: c_int) -> Option<usize> {
    match sig {
        libc::SIGSEGV => Some(0),
        libc::SIGBUS => Some(1),
        _ => None,
    }
}

/// The shim's own disposition for a signal whose program disposition is `prog`. `SA_NODEFER` and
/// an empty mask leave the signal mask as the fault found it, so [`chain`] can give the program's
/// handler exactly the mask the kernel would have; `SA_ONSTACK` follows the program's handler (the
/// alternate stack, where one is set up, when it has none).
fn our_action(prog: &libc::sigaction) -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; we fill the handler and flags.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler as *const () as usize;
    let program_handles = prog.sa_sigaction != libc::SIG_DFL && prog.sa_sigaction != libc::SIG_IGN;
    let onstack = if program_handles {
        prog.sa_flags & libc::SA_ONSTACK
    } else {
        libc::SA_ONSTACK
    };
    act.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESTART | onstack;
    // SAFETY: sa_mask is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    act
}

/// Installs the handler for SIGSEGV and SIGBUS, remembering what was there.
pub fn install() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        let i = slot_index(sig).unwrap();
        // SAFETY: reading the current disposition into our table, then installing ours.
        unsafe {
            __sigaction(sig, core::ptr::null(), &mut (*PREV.0.get())[i]);
            let act = our_action(&(*PREV.0.get())[i]);
            __sigaction(sig, &act, core::ptr::null_mut());
        }
    }
    INSTALLED.store(true, Ordering::Release);
}

/// The interposed `sigaction`: for SIGSEGV/SIGBUS while the handler is installed, the program's
/// disposition is recorded (and reported back) instead of replacing ours.
///
/// # Safety
/// As `sigaction(2)`: `act` and `old` are null or valid.
pub unsafe fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    match slot_index(sig) {
        Some(i) if INSTALLED.load(Ordering::Acquire) => {
            // SAFETY: per the caller, the pointers are null or valid; PREV is ours.
            unsafe {
                let prev = &mut (*PREV.0.get())[i];
                if !old.is_null() {
                    *old = *prev;
                }
                if !act.is_null() {
                    *prev = *act;
                    // Keep ours installed, with the alternate-stack choice of the new handler.
                    let ours = our_action(prev);
                    __sigaction(sig, &ours, core::ptr::null_mut());
                }
            }
            0
        }
        // SAFETY: forwarded unchanged.
        _ => unsafe { __sigaction(sig, act, old) },
    }
}

/// The interposed `signal` (BSD semantics, as glibc's).
pub fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: a zeroed sigaction is valid.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART;
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: both pointers are valid locals.
    let r = unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaddset(&mut act.sa_mask, sig);
        sigaction(sig, &act, &mut old)
    };
    if r != 0 {
        libc::SIG_ERR
    } else {
        old.sa_sigaction
    }
}

/// Reads whether the fault was a write, and the faulting PC, from the signal context.
fn access_and_pc(ctx: *mut libc::c_void) -> (Access, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: for SA_SIGINFO handlers the third argument is the ucontext_t.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize];
        let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        (
            if err & 2 != 0 {
                Access::Write
            } else {
                Access::Read
            },
            pc,
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: as above.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        (Access::Unknown, uc.uc_mcontext.pc as usize)
    }
}

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let saved = sys::errno();
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if sig == libc::SIGSEGV && guard::contains(addr) {
        let (prev, next) = guard::neighbours(addr);
        if let Some((kind, slot)) = guard::diagnose(addr, prev, next) {
            let (access, pc) = access_and_pc(ctx);
            let stack = fault_stack(pc);
            report::report(ErrorRec {
                access,
                addr: addr as u64,
                has_block: true,
                block_addr: slot.user as u64,
                block_size: slot.size as u64,
                alloc_family: Family::from_u8(slot.family).unwrap_or(Family::Malloc),
                stack,
                alloc_stack: slot.alloc_stack,
                free_stack: slot.free_stack,
                exact_pc: true,
                ..report::error_rec(kind)
            });
            // --on-error=abort has aborted inside report; continuing means letting the access
            // complete.
            guard::unprotect(addr);
            sys::set_errno(saved);
            return;
        }
    }
    sys::set_errno(saved);
    chain(sig, info, ctx);
}

/// Passes a fault that is not ours to the program's handler, or to the default action.
fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(i) = slot_index(sig) else { return };
    // SAFETY: reading the recorded disposition (see Prev).
    let prev = unsafe { (*PREV.0.get())[i] };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // SAFETY: a zeroed sigaction is SIG_DFL.
        let dfl: libc::sigaction = unsafe { core::mem::zeroed() };
        // SAFETY: resetting our own handler, then re-sending the signal: it stays pending until
        // this handler returns and then takes its default action (a signal sent with kill would
        // not come back by itself, a fault would).
        unsafe {
            __sigaction(sig, &dfl, core::ptr::null_mut());
            libc::raise(sig);
        }
        INSTALLED.store(false, Ordering::Release);
        return;
    }
    if prev.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: PREV is ours; the program asked for a one-shot handler.
        unsafe { (*PREV.0.get())[i].sa_sigaction = libc::SIG_DFL };
    }
    // The mask the kernel would have set for the program's handler: the interrupted code's mask,
    // plus the handler's sa_mask, plus the signal itself unless SA_NODEFER. The kernel restores
    // the interrupted mask (from the context, which the handler may change) when we return.
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: for SA_SIGINFO handlers the third argument is the ucontext_t; the sets are valid.
    unsafe {
        let uc = &*(ctx as *const libc::ucontext_t);
        let mut mask = uc.uc_sigmask;
        for s in 1..=64 {
            if libc::sigismember(&prev.sa_mask, s) == 1 {
                libc::sigaddset(&mut mask, s);
            }
        }
        if prev.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, &mut old);
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this three-argument handler for this signal.
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed this one-argument handler.
        let f: extern "C" fn(c_int) = unsafe { core::mem::transmute(h) };
        f(sig);
    }
    // SAFETY: restoring the mask saved above (the handler returned normally).
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
}
