//! The live leak check (`memcheck leaks PID`): how the CLI asks a process running under the shim
//! for a leak check now, and where the answer is.
//!
//! 1. The CLI takes an exclusive `flock` on `RUNDIR/PID-STARTNS` + [`LOCK_SUFFIX`] (one check of a
//!    process at a time), removes any old answer, and sends [`SIGNAL`] with `sigqueue` and the
//!    value [`REQUEST`] (`si_code` `SI_QUEUE`) and a request id (non-zero, in the word after the
//!    value, see [`siginfo`]): a plain `kill` of the same signal is not a request and goes to the
//!    program's own disposition.
//! 2. The shim pauses its threads, scans, resumes them, and writes a record file (the format of
//!    the exit report: PROCESS, MODULE, STACK, LEAK, LEAK_SUMMARY and a NOTE starting with
//!    [`NOTE_PAUSE`]) to `RUNDIR/PID-STARTNS` + [`ANSWER_SUFFIX`] + `.ID.tmp`, then renames it to
//!    `RUNDIR/PID-STARTNS` + [`ANSWER_SUFFIX`] + `.ID` ([`answer_name`]): the answer is complete
//!    once that name exists, and a late answer to an earlier request that timed out is never
//!    taken for this one.
//! 3. The CLI polls for the name (with a timeout), reads and removes it. `RUNDIR/PID-STARTNS` +
//!    [`LAST_SUFFIX`] holds the CLI's previous result for `--since-last`.
//!
//! None of the suffixes ends in [`crate::RECORD_SUFFIX`], so the exit report never reads them.

/// The request signal: `SIGRTMAX - 2` (62 on Linux, whose `SIGRTMAX` is 64 for every
/// architecture memcheck supports). glibc reserves the first real-time signals (32-34) for
/// itself; programs that use real-time signals mostly count up from `SIGRTMIN`.
pub const SIGNAL: i32 = 62;
/// `si_value` of a request from the CLI.
pub const REQUEST: usize = 0x4d43_4c56_5245_5131; // "MCLVREQ1"
/// `si_value` of a request for the live blocks by allocation stack (`memcheck stats --sites`):
/// nothing is paused (the block table is locked while it is read, so allocations wait that
/// long); the answer has the same name and records, its LEAK records holding every live block
/// grouped by allocation stack with kind `reachable` (no reachability scan), the LEAK_SUMMARY
/// the totals as reachable, and no pause note. Each stack with allocation calls also has an
/// ALLOCS record (the calls made there since the process image started or forked, freed blocks
/// included); a stack whose blocks are all freed has a LEAK record of 0 bytes in 0 blocks.
pub const SITES: usize = 0x4d43_4c56_5349_5445; // "MCLVSITE"
/// `si_value` of the shim's own "pause now" signal to each of its threads.
pub const PAUSE: usize = 0x4d43_4c56_5041_5553; // "MCLVPAUS"
/// The answer file's suffix (after `PID-STARTNS`).
pub const ANSWER_SUFFIX: &str = ".mclive";
/// The lock file's suffix.
pub const LOCK_SUFFIX: &str = ".mclock";
/// The previous result's suffix (`--since-last`; written by the CLI only).
pub const LAST_SUFFIX: &str = ".mclast";
/// The NOTE of an answer that says how long the threads were paused: this prefix, then
/// `THREADS PAUSE_NS UNPAUSED` in decimal (the threads paused, the pause in nanoseconds, and the
/// threads that could not be paused: they block the signal, or did not answer in time).
pub const NOTE_PAUSE: &str = "live pause: ";

/// `si_code` of a signal queued by `sigqueue`/`rt_sigqueueinfo` (`SI_QUEUE`).
pub const SI_QUEUE: i32 = -1;

/// The `siginfo_t` of a queued signal, as the 16 words `rt_sigqueueinfo` and
/// `rt_tgsigqueueinfo` take (the 64-bit Linux layout: `si_signo`, `si_errno`, `si_code`, padding,
/// then `si_pid`, `si_uid` and the `sigval` at byte 16), with `id` in the word after the `sigval`
/// (byte 32: still inside the kernel's siginfo union, so it reaches the handler as sent).
pub fn siginfo(sig: i32, pid: u32, uid: u32, value: usize, id: u64) -> [u64; 16] {
    let mut w = [0u64; 16];
    w[0] = sig as u32 as u64;
    w[1] = SI_QUEUE as u32 as u64;
    w[2] = pid as u64 | (uid as u64) << 32;
    w[3] = value as u64;
    w[4] = id;
    w
}

/// What a `siginfo_t` (its first five words) says: `(si_code, si_pid, si_value, id)`.
pub fn read_siginfo(w: &[u64; 5]) -> (i32, u32, usize, u64) {
    (w[1] as u32 as i32, w[2] as u32, w[3] as usize, w[4])
}

/// The answer to request `id`: `PID-STARTNS` + this, in the run directory.
pub fn answer_name(f: &mut impl core::fmt::Write, id: u64) -> core::fmt::Result {
    write!(f, "{ANSWER_SUFFIX}.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_not_record_files() {
        for s in [ANSWER_SUFFIX, LOCK_SUFFIX, LAST_SUFFIX] {
            assert!(!s.ends_with(crate::RECORD_SUFFIX));
            assert!(!s.ends_with(crate::stats::SUFFIX));
        }
        assert_ne!(REQUEST, PAUSE);
        assert_ne!(SITES, PAUSE);
        assert_ne!(SITES, REQUEST);
        let w = siginfo(SIGNAL, 7, 1000, REQUEST, 99);
        assert_eq!(
            read_siginfo(&[w[0], w[1], w[2], w[3], w[4]]),
            (SI_QUEUE, 7, REQUEST, 99)
        );
    }
}
