//! What a signal handler of the shim needs of the interrupted thread and of the program's own
//! handler: the interrupted registers and stack pointer, and a call of the program's handler
//! with the mask the kernel would have set for it. Shared by `fault` (ending signals and guard
//! faults) and `live` (the pause and request signals).
use core::ffi::c_int;

/// The interrupted stack pointer and general registers of an SA_SIGINFO handler's context.
pub fn registers(ctx: *mut libc::c_void) -> (usize, [usize; 32]) {
    let mut regs = [0usize; 32];
    // SAFETY: for SA_SIGINFO handlers the third argument is the ucontext_t.
    let uc = unsafe { &*(ctx as *const libc::ucontext_t) };
    #[cfg(target_arch = "x86_64")]
    let sp = {
        for (r, &g) in regs.iter_mut().zip(uc.uc_mcontext.gregs.iter()) {
            *r = g as usize;
        }
        uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize
    };
    #[cfg(target_arch = "aarch64")]
    let sp = {
        for (r, &g) in regs.iter_mut().zip(uc.uc_mcontext.regs.iter()) {
            *r = g as usize;
        }
        uc.uc_mcontext.sp as usize
    };
    (sp, regs)
}

/// Calls the program's handler `p` (neither SIG_DFL nor SIG_IGN) for `sig` as the kernel would
/// have: with the interrupted code's mask plus the handler's `sa_mask`, plus the signal itself
/// unless SA_NODEFER, and the one- or three-argument form its flags say; the handler's mask is
/// restored when it returns. SA_RESETHAND is the caller's (it knows where the disposition lives).
pub fn call_program_handler(
    sig: c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    p: &libc::sigaction,
) {
    // SAFETY: an all-zero sigset_t is a valid (empty) set.
    let mut old: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: for SA_SIGINFO handlers the third argument is the ucontext_t; the sets are valid.
    unsafe {
        let uc = &*(ctx as *const libc::ucontext_t);
        let mut mask = uc.uc_sigmask;
        for s in 1..=64 {
            if libc::sigismember(&p.sa_mask, s) == 1 {
                libc::sigaddset(&mut mask, s);
            }
        }
        if p.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, &mut old);
    }
    if p.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the program installed this three-argument handler for this signal.
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { core::mem::transmute(p.sa_sigaction) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the program installed this one-argument handler.
        let f: extern "C" fn(c_int) = unsafe { core::mem::transmute(p.sa_sigaction) };
        f(sig);
    }
    // SAFETY: restoring the handler's mask saved above (the handler returned normally).
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
}
