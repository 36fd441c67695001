//! The program's own `setrlimit`/`prlimit` calls: done with the `prlimit64` system call, and when
//! they lower this process's `RLIMIT_AS` soft limit to a finite value (which counts address space
//! that is only reserved), the private heap and the guard pool give back what they reserved and
//! do not use, and reserve small pieces from then on, so the program's own mappings meet the
//! limit as they would without memcheck.
use crate::{guard, heap, sys};
use core::ffi::c_int;

/// `prlimit(pid, res, new, old)`, with the trim described above.
pub fn prlimit(
    pid: libc::pid_t,
    res: c_int,
    new: *const libc::rlimit,
    old: *mut libc::rlimit,
) -> c_int {
    // SAFETY: prlimit64 with the caller's pointers, which it validates (EFAULT).
    let r = unsafe { libc::syscall(libc::SYS_prlimit64, pid, res, new, old) };
    let ours = pid == 0 || pid as u32 == sys::getpid();
    if r == 0 && !new.is_null() && res == libc::RLIMIT_AS as c_int && ours {
        // SAFETY: new is the caller's valid rlimit (the kernel accepted it).
        if unsafe { (*new).rlim_cur } != libc::RLIM_INFINITY {
            heap::trim();
            guard::trim();
        }
    }
    r as c_int
}
