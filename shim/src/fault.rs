//! The shim's signal handler, and the program's dispositions of the signals it takes over.
//!
//! **Endings.** For each signal whose default action terminates the process ([`ENDINGS`]) and
//! that the program leaves at `SIG_DFL`, the kernel holds the shim's handler instead. When such
//! a signal arrives, the handler reports a crash (a fault: SIGSEGV, SIGBUS, SIGFPE, SIGILL sent
//! by the kernel) with its address and the faulting thread's stack, runs the exit checks once
//! ([`exit::finish`]), restores `SIG_DFL` and lets the default action happen: a fault returns
//! and faults again, a sent signal is raised again. The process dies by the same signal, so the
//! status its parent sees is unchanged. A signal inherited as `SIG_IGN` is left alone; a
//! program's own handler or `SIG_IGN` is installed in the kernel as it asked (native behaviour,
//! and a `SIG_IGN` survives exec); only its `SIG_DFL` puts the shim's handler back. The interposed
//! `sigaction` reports what the program set, never the shim's handler.
//!
//! **Guard mode.** SIGSEGV and SIGBUS keep the shim's handler whatever the program sets (the
//! JVM and V8 depend on their SIGSEGV handlers): a fault in the guard pool is diagnosed with
//! [`guard::diagnose`] and reported with the exact faulting instruction, then the program aborts
//! or the page is made accessible, as `--on-error` says. Other faults go to the handler the
//! program installed (recorded here) with the mask the kernel would have given it, or to the
//! ending above.
//!
//! A sent signal that interrupts this thread while it holds a shim lock or is inside glibc's
//! allocator (where the checks would wait for ever) is deferred: [`tls::defer_signal`] sends it
//! again when the thread leaves that code. A fault there, or any ending of a `vfork` child, skips
//! the checks and takes the default action at once.
use crate::unwind::fault_stack;
use crate::{exit, guard, opts, report, sigctx, sys, tls};
use core::cell::UnsafeCell;
use core::ffi::c_int;
use core::sync::atomic::{AtomicU64, Ordering};
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family};

extern "C" {
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
}

/// The signals whose default action ends the process (terminate or core dump) and that the shim
/// takes over while their disposition is `SIG_DFL`. Not SIGKILL and SIGSTOP (they cannot be
/// caught), nor SIGTRAP (a debugger's) or the real-time signals.
pub const ENDINGS: [c_int; 18] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGSYS,
];

const NSIG: usize = 65;

struct Prog(UnsafeCell<[libc::sigaction; NSIG]>);
// SAFETY: written by the program's (rare) sigaction calls and read by the handler; a torn read
// of a handler being replaced at that very moment is the same race the kernel would have.
unsafe impl Sync for Prog {}

/// The program's disposition of each taken signal, as it set it (or inherited it). Meaningful
/// while the kernel holds the shim's handler for that signal.
// SAFETY: an all-zero sigaction is SIG_DFL with no flags.
static PROG: Prog = Prog(UnsafeCell::new(unsafe { core::mem::zeroed() }));
/// Bit `sig` set: the shim manages this signal's disposition.
static TAKEN: AtomicU64 = AtomicU64::new(0);
/// Bit `sig` set: the shim's handler stays in the kernel whatever the program sets (guard mode's
/// SIGSEGV and SIGBUS), and chains to the program's handler.
static CHAINED: AtomicU64 = AtomicU64::new(0);

fn bit(sig: c_int) -> u64 {
    if (1..NSIG as c_int).contains(&sig) {
        1 << sig
    } else {
        0
    }
}

fn taken(sig: c_int) -> bool {
    TAKEN.load(Ordering::Acquire) & bit(sig) != 0
}

fn chained(sig: c_int) -> bool {
    CHAINED.load(Ordering::Acquire) & bit(sig) != 0
}

fn is_handler(h: libc::sighandler_t) -> bool {
    h != libc::SIG_DFL && h != libc::SIG_IGN
}

/// The program's recorded disposition of `sig` (taken signals only).
fn prog(sig: c_int) -> libc::sigaction {
    // SAFETY: sig < NSIG for taken signals; see Prog.
    unsafe { (*PROG.0.get())[sig as usize] }
}

fn set_prog(sig: c_int, act: libc::sigaction) {
    // SAFETY: as above.
    unsafe { (*PROG.0.get())[sig as usize] = act };
}

/// The shim's own disposition for `sig`. Chained (guard mode): `SA_NODEFER` and an empty mask
/// leave the signal mask as the fault found it, so [`chain`] can give the program's handler
/// exactly the mask the kernel would have; `SA_ONSTACK` follows the program's handler. Otherwise
/// every signal is blocked while the handler runs (the checks are not interrupted by another
/// ending), on the thread's own stack (an alternate stack may be too small for the leak check).
fn our_action(sig: c_int) -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; we fill the handler and flags.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler as *const () as usize;
    if chained(sig) {
        let p = prog(sig);
        let onstack = if is_handler(p.sa_sigaction) {
            p.sa_flags & libc::SA_ONSTACK
        } else {
            0
        };
        act.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESTART | onstack;
        // SAFETY: sa_mask is a valid sigset_t.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
    } else {
        act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: as above.
        unsafe { libc::sigfillset(&mut act.sa_mask) };
    }
    act
}

fn kernel_disposition(sig: c_int) -> Option<libc::sigaction> {
    // SAFETY: a zeroed sigaction is a valid out-buffer; a null act only reads.
    let mut cur: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { __sigaction(sig, core::ptr::null(), &mut cur) } == 0).then_some(cur)
}

fn is_ours(a: &libc::sigaction) -> bool {
    a.sa_sigaction == handler as *const () as usize
}

/// At start-up: takes over the [`ENDINGS`] left at `SIG_DFL` (when memcheck records anything),
/// and in guard mode SIGSEGV and SIGBUS whatever they are.
pub fn install() {
    let guarded = guard::active();
    let active = opts::ACTIVE.load(Ordering::Relaxed);
    for sig in ENDINGS {
        let chain = guarded && (sig == libc::SIGSEGV || sig == libc::SIGBUS);
        let Some(cur) = kernel_disposition(sig) else {
            continue;
        };
        if !chain && (!active || cur.sa_sigaction != libc::SIG_DFL) {
            continue; // an inherited SIG_IGN stays ignored
        }
        set_prog(sig, cur);
        if chain {
            CHAINED.fetch_or(bit(sig), Ordering::AcqRel);
        }
        TAKEN.fetch_or(bit(sig), Ordering::AcqRel);
        let act = our_action(sig);
        // SAFETY: installing our handler, a valid sigaction.
        unsafe { __sigaction(sig, &act, core::ptr::null_mut()) };
    }
}

/// The interposed `sigaction`. For a taken signal the program's `SIG_DFL` (and, when chained,
/// anything it sets) is recorded and the shim's handler kept; anything else is installed as asked.
/// `old` receives what the program set, never the shim's handler.
///
/// # Safety
/// As `sigaction(2)`: `act` and `old` are null or valid.
pub unsafe fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if crate::live::takes(sig) {
        // SAFETY: as this function's (`memcheck leaks`' signal: live.rs records the program's).
        return unsafe { crate::live::sigaction(act, old) };
    }
    if !taken(sig) {
        // SAFETY: forwarded unchanged.
        return unsafe { __sigaction(sig, act, old) };
    }
    let Some(cur) = kernel_disposition(sig) else {
        // SAFETY: forwarded unchanged (the kernel gives the error).
        return unsafe { __sigaction(sig, act, old) };
    };
    // Someone may have changed it behind the shim's back (glibc's sigset, a raw system call).
    let reported = if is_ours(&cur) { prog(sig) } else { cur };
    if !act.is_null() {
        // SAFETY: per the caller, act is valid.
        let new = unsafe { *act };
        if exit::shared_with_parent() {
            // A vfork child shares the recorded dispositions with its parent (not the kernel's):
            // it sets its own natively and leaves the record alone.
            // SAFETY: the caller's disposition, installed as it asked.
            let r = unsafe { __sigaction(sig, act, core::ptr::null_mut()) };
            if r != 0 {
                return r;
            }
        } else if chained(sig) || new.sa_sigaction == libc::SIG_DFL {
            set_prog(sig, new);
            let ours = our_action(sig);
            // SAFETY: installing our own valid handler.
            unsafe { __sigaction(sig, &ours, core::ptr::null_mut()) };
        } else {
            // SAFETY: the program's own disposition, installed as it asked.
            let r = unsafe { __sigaction(sig, act, core::ptr::null_mut()) };
            if r != 0 {
                return r;
            }
        }
    }
    if !old.is_null() {
        // SAFETY: per the caller, old is valid.
        unsafe { *old = reported };
    }
    0
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

/// Reads whether the fault was a write, the faulting PC and the interrupted stack pointer from
/// the signal context.
fn access_pc_sp(ctx: *mut libc::c_void) -> (Access, usize, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: for SA_SIGINFO handlers the third argument is the ucontext_t.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        let err = uc.uc_mcontext.gregs[libc::REG_ERR as usize];
        let pc = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize;
        let sp = uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize;
        (
            if err & 2 != 0 {
                Access::Write
            } else {
                Access::Read
            },
            pc,
            sp,
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: as above.
        let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
        (
            Access::Unknown,
            uc.uc_mcontext.pc as usize,
            uc.uc_mcontext.sp as usize,
        )
    }
}

/// The interrupted thread's stack pointer and general registers, from the signal context.
fn interrupted(ctx: *mut libc::c_void) -> crate::scan::Roots {
    let (sp, regs) = sigctx::registers(ctx);
    crate::scan::Roots::Signal { sp, regs }
}

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let saved = sys::errno();
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if sig == libc::SIGSEGV && guard::contains(addr) {
        if let Some(rec) = guard_fault(addr, ctx) {
            report::report(rec);
            // --on-error=abort has aborted inside report; continuing means letting the access
            // complete.
            guard::unprotect(addr);
            sys::set_errno(saved);
            return;
        }
    }
    sys::set_errno(saved);
    if chained(sig) {
        let p = prog(sig);
        if is_handler(p.sa_sigaction) {
            chain(sig, info, ctx, p);
            return;
        }
        // A fault the program ignores (SIG_IGN) cannot be ignored: it ends the process as the
        // default would.
    }
    ending(sig, info, ctx);
    sys::set_errno(saved);
}

/// The error a fault at `addr` in the guard pool is: the nearest guarded block's overflow,
/// underflow or use after free, at the faulting instruction.
fn guard_fault(addr: usize, ctx: *mut libc::c_void) -> Option<ErrorRec> {
    let (kind, slot) = guard::diagnose(addr, guard::around(addr))?;
    let (access, pc, _) = access_pc_sp(ctx);
    Some(ErrorRec {
        access,
        addr: addr as u64,
        has_block: true,
        block_addr: slot.user as u64,
        block_size: slot.size as u64,
        alloc_family: Family::from_u8(slot.family).unwrap_or(Family::Malloc),
        stack: fault_stack(pc),
        alloc_stack: slot.alloc_stack,
        free_stack: slot.free_stack,
        exact_pc: true,
        ..report::error_rec(kind)
    })
}

/// How far from a default-mode block's extent (its redzones included) a fault is still that
/// block's: a fault happens on an unmapped or protected page, so the address may lie a page or
/// more from the block that a bad index or pointer started from.
const NEAR_BLOCK: usize = 64 << 10;

/// The heap error a fatal SIGSEGV/SIGBUS at `addr` is, in any mode: a fault in the guard pool, or
/// within [`NEAR_BLOCK`] bytes of a live or quarantined block (the nearest): its overflow or
/// underflow, or a use after free inside a freed block. `None`: no block explains it (a crash).
fn block_fault(addr: usize, ctx: *mut libc::c_void) -> Option<ErrorRec> {
    if guard::contains(addr) {
        if let Some(rec) = guard_fault(addr, ctx) {
            return Some(rec);
        }
    }
    let right = |e: &crate::table::Entry| {
        if e.flags & crate::table::FLAG_GUARDED != 0 {
            0
        } else {
            crate::canary::right_redzone(e.size)
        }
    };
    let (e, _) = crate::table::nearest(addr, NEAR_BLOCK, right)?;
    let freed = e.state == crate::table::BlockState::Freed;
    let kind = if addr >= e.key && addr < e.key + e.size {
        if !freed {
            return None; // the block's own bytes: not an out-of-bounds access
        }
        ErrorKind::UseAfterFree
    } else if addr < e.key {
        ErrorKind::HeapBufferUnderflow
    } else {
        ErrorKind::HeapBufferOverflow
    };
    let (access, pc, _) = access_pc_sp(ctx);
    Some(ErrorRec {
        access,
        exact_pc: true,
        ..report::block_error(kind, &e, addr, e.family, fault_stack(pc))
    })
}

/// A signal whose default action is to end the process: the crash report (the heap error it is
/// when a block explains the fault), the exit checks, then the default action.
fn ending(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo.
    let code = unsafe { (*info).si_code };
    let fault = matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL
    ) && code > 0;
    // SAFETY: all-zero sigsets are valid; both point to locals.
    let mut all: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    let mut before: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: blocking every signal on this thread while the checks run.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
    }
    let checked = !exit::shared_with_parent() && opts::ACTIVE.load(Ordering::Relaxed);
    let in_shim = tls::locks_held() != 0;
    if checked && in_shim && !fault {
        // The checks would wait for a lock this thread holds: the signal comes back when the
        // thread leaves that code (a fault cannot wait: it dies without the checks).
        tls::defer_signal(sig);
        // SAFETY: restoring this thread's mask of the handler.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &before, core::ptr::null_mut()) };
        return;
    }
    let safe = checked && !in_shim;
    if safe {
        let (access, pc, _) = access_pc_sp(ctx);
        // SAFETY: as above.
        let addr = unsafe { (*info).si_addr() } as u64;
        let block = (fault && matches!(sig, libc::SIGSEGV | libc::SIGBUS))
            .then(|| block_fault(addr as usize, ctx))
            .flatten();
        if let Some(rec) = block {
            report::report(rec);
        } else if fault {
            report::report(ErrorRec {
                access: if sig == libc::SIGSEGV {
                    access
                } else {
                    Access::Unknown
                },
                addr,
                stack: fault_stack(pc),
                arg1: sig as u64,
                arg2: code as u64,
                exact_pc: true,
                ..report::error_rec(ErrorKind::Crash)
            });
        }
        // Another thread's checks (its exit, another signal) are let finish first.
        exit::wait_for_others();
        exit::finish(exit::Ending::Signal(sig), interrupted(ctx), false);
    }
    // SAFETY: a zeroed sigaction is SIG_DFL; resetting our own handler.
    unsafe {
        let dfl: libc::sigaction = core::mem::zeroed();
        __sigaction(sig, &dfl, core::ptr::null_mut());
    }
    if fault {
        // Returning restores the interrupted mask and runs the instruction again: it faults
        // again, now with the default action (and a core dump of the real state).
        // SAFETY: restoring this thread's mask of the handler.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &before, core::ptr::null_mut()) };
        return;
    }
    // SAFETY: unblocking the signal and sending it again to this thread: the default action.
    unsafe {
        libc::sigdelset(&mut before, sig);
        libc::pthread_sigmask(libc::SIG_SETMASK, &before, core::ptr::null_mut());
        libc::raise(sig);
    }
}

/// Passes a guard-mode fault that is not the shim's to the program's handler `prev`. The kernel
/// restores the interrupted mask (from the context, which the handler may change) when we return.
fn chain(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, prev: libc::sigaction) {
    if prev.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: a zeroed sigaction is SIG_DFL: the program asked for a one-shot handler.
        set_prog(sig, unsafe { core::mem::zeroed() });
    }
    sigctx::call_program_handler(sig, info, ctx, &prev);
}
