//! The x86-64 conventions a remote call relies on: the System V calling convention (integer
//! arguments in rdi, rsi, rdx, rcx, r8, r9, the rest on the stack above the return address, rax
//! the count of vector registers of a variadic call), the ptrace requests and regset notes of
//! the extended state, the flags a call must clear, and how a futex wait looks in the registers.
//! Everything here except [`ptrace_raw`] is a pure function of its arguments.
use nix::errno::Errno;

pub(super) const RED_ZONE: u64 = 128;
pub(super) const NT_PRFPREG: usize = 2;
pub(super) const NT_X86_XSTATE: usize = 0x202;
pub(super) const PTRACE_GETREGSET: libc::c_uint = 0x4204;
pub(super) const PTRACE_SETREGSET: libc::c_uint = 0x4205;
pub(super) const PTRACE_EVENT_STOP: i32 = 128;
pub(super) const EFLAGS_TF: u64 = 1 << 8;
pub(super) const EFLAGS_DF: u64 = 1 << 10;

/// True when registers stopped in a thread show it waiting in `futex` (a lock wait): the syscall
/// number is futex's and the result is a restart code or EINTR, as after an interrupt.
pub(super) fn is_futex_wait(orig_rax: u64, rax: u64) -> bool {
    const SYS_FUTEX: i64 = 202;
    // -EINTR, -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK
    orig_rax as i64 == SYS_FUTEX && matches!(rax as i64, -4 | -512 | -513 | -514 | -516)
}

/// The registers and stack bytes of a call of `func(args...)` from the saved registers `saved`,
/// with the stack at `sp` (`sp % 16 == 8`, as after a call instruction): the frame holds a return
/// address of 0 (so the return faults where it is caught) and the arguments after the sixth.
#[cfg(target_arch = "x86_64")]
pub(super) fn call_registers(
    saved: &libc::user_regs_struct,
    func: u64,
    args: &[u64],
    sp: u64,
) -> (libc::user_regs_struct, Vec<u8>) {
    debug_assert_eq!(sp % 16, 8);
    let mut regs = *saved;
    for (reg, &v) in [
        &mut regs.rdi,
        &mut regs.rsi,
        &mut regs.rdx,
        &mut regs.rcx,
        &mut regs.r8,
        &mut regs.r9,
    ]
    .into_iter()
    .zip(args)
    {
        *reg = v;
    }
    let frame: Vec<u8> = std::iter::once(0u64)
        .chain(args.iter().skip(6).copied())
        .flat_map(u64::to_ne_bytes)
        .collect();
    regs.rip = func;
    regs.rsp = sp;
    regs.rax = 0; // no vector registers for variadic functions
    regs.orig_rax = u64::MAX; // not in a syscall: no restart applied to these registers
    regs.eflags &= !(EFLAGS_TF | EFLAGS_DF);
    (regs, frame)
}

/// Issues a ptrace request with raw arguments.
///
/// # Safety
/// `addr` and `data` must be what `request` expects; any pointer among them must be valid for
/// the kernel to read or write as that request does.
pub(super) unsafe fn ptrace_raw(
    request: libc::c_uint,
    tid: i32,
    addr: usize,
    data: usize,
) -> Result<(), Errno> {
    // SAFETY: the caller upholds the request's contract.
    let r = unsafe {
        libc::ptrace(
            request,
            tid,
            addr as *mut libc::c_void,
            data as *mut libc::c_void,
        )
    };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_waits_are_told_from_other_stops() {
        let neg = |e: i64| (-e) as u64;
        assert!(is_futex_wait(202, neg(512)));
        assert!(is_futex_wait(202, neg(4)));
        assert!(!is_futex_wait(202, 0)); // returned: woken, may hold the lock now
        assert!(!is_futex_wait(0, neg(512))); // read
        assert!(!is_futex_wait(u64::MAX, neg(512))); // user code
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn arguments_go_to_registers_then_the_stack() {
        // SAFETY: user_regs_struct is plain integers, valid when zeroed.
        let mut saved: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        saved.eflags = EFLAGS_TF | EFLAGS_DF | 0x202;
        saved.rbx = 77;
        let (r, frame) = call_registers(&saved, 0x1000, &[1, 2, 3, 4, 5, 6, 7, 8], 0x7ff8);
        assert_eq!((r.rdi, r.rsi, r.rdx, r.rcx, r.r8, r.r9), (1, 2, 3, 4, 5, 6));
        assert_eq!(
            (r.rip, r.rsp, r.rax, r.orig_rax),
            (0x1000, 0x7ff8, 0, u64::MAX)
        );
        assert_eq!(r.eflags, 0x202, "trap and direction flags cleared");
        assert_eq!(r.rbx, 77, "other registers kept");
        let words: Vec<u64> = frame
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            words,
            [0, 7, 8],
            "return address 0, then the 7th and 8th arguments"
        );
        let (_, frame) = call_registers(&saved, 0x1000, &[1], 0x7ff8);
        assert_eq!(frame, 0u64.to_ne_bytes());
    }
}
