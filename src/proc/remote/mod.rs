//! Asking glibc inside a live process for its heap figures: `mallinfo2()` and the text of
//! `malloc_stats()`, called in the process through ptrace (as a debugger's `call` does), so the
//! heap of any process of the same user can be shown without preloading anything.
//!
//! How: one thread is seized and interrupted; each call sets its registers to the function and
//! its arguments with a return address of 0, and the fault of that return is caught and never
//! delivered. The calls run on a scratch stack mapped in the process (the thread may be on a small
//! signal or coroutine stack). `malloc_stats()` prints to `stderr`: while memcheck holds stderr's
//! lock, that `FILE`'s descriptor is pointed at a memfd, so no other thread's output is captured
//! and nothing is written to disk; the text is read back through `/proc/PID/fd`.
//!
//! Invariants:
//! - One thread is stopped (the thread-group leader, or another live thread when the leader has
//!   exited); the others keep running, so a lock one of them holds gets released.
//! - Everything the calls change is put back before that thread runs again: general and extended
//!   (x87/SSE/AVX) registers, signal mask, `errno`, the stack bytes written, the state of
//!   `stderr`'s `FILE`; the scratch stack mapped for the calls is unmapped, the memfd closed.
//! - A call is abandoned only where it holds no lock: `mallinfo2` waiting on an arena lock, or
//!   `malloc_stats` waiting on one once the `stderr` lock it took is released for it. A call that
//!   is computing is waited for, however long it takes.
//! - Signals arriving during a call stay pending (the thread blocks them) or, if they cannot be
//!   blocked, are recorded and re-injected on detach with their siginfo: none is lost or added.
//! - The ptrace session runs on a thread of its own: if the target never stops, nothing was
//!   changed and that thread's exit detaches it.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod abi;
mod glibc;
mod memory;
mod permission;
#[cfg(target_arch = "x86_64")]
mod session;
mod target;

use serde::Serialize;
use std::time::Duration;

/// glibc's `struct mallinfo2` (see mallinfo(3)), all in bytes except the counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Mallinfo2 {
    /// Non-mmapped space obtained from the system (all arenas).
    pub arena: u64,
    /// Number of free ordinary chunks.
    pub ordblks: u64,
    /// Number of free fastbin chunks.
    pub smblks: u64,
    /// Number of mmapped chunks.
    pub hblks: u64,
    /// Bytes in mmapped chunks.
    pub hblkhd: u64,
    /// Always 0 since glibc 2.x (kept for the ABI).
    pub usmblks: u64,
    /// Bytes in free fastbin chunks.
    pub fsmblks: u64,
    /// Bytes in use in ordinary chunks.
    pub uordblks: u64,
    /// Bytes in free ordinary chunks.
    pub fordblks: u64,
    /// Releasable bytes at the top of the main heap.
    pub keepcost: u64,
}

/// Size of `struct mallinfo2`: ten `size_t`.
pub const MALLINFO2_SIZE: usize = 80;

impl Mallinfo2 {
    /// Decodes the struct as glibc lays it out on a 64-bit target: ten native-endian `size_t`.
    pub fn from_bytes(b: &[u8; MALLINFO2_SIZE]) -> Self {
        let mut f = b.chunks_exact(8).map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_ne_bytes(w)
        });
        let mut next = || f.next().unwrap_or(0);
        Mallinfo2 {
            arena: next(),
            ordblks: next(),
            smblks: next(),
            hblks: next(),
            hblkhd: next(),
            usmblks: next(),
            fsmblks: next(),
            uordblks: next(),
            fordblks: next(),
            keepcost: next(),
        }
    }
}

/// The text `malloc_stats()` printed, or why it was not asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MallocStats {
    Captured(String),
    /// Not captured, for this reason (the process was left untouched by that part).
    Skipped(String),
}

impl MallocStats {
    /// The captured text, if any.
    pub fn text(&self) -> Option<&str> {
        match self {
            MallocStats::Captured(t) => Some(t),
            MallocStats::Skipped(_) => None,
        }
    }
}

/// What glibc inside the process said about its heap.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteHeap {
    pub pid: i32,
    /// The thread that ran the calls (the leader unless it has exited).
    pub tid: i32,
    pub mallinfo: Mallinfo2,
    pub malloc_stats: MallocStats,
    /// How long that thread was stopped, summed over attempts (the other threads ran on).
    pub stopped_for: Duration,
    /// Stops used: 1 unless a lock was busy or `stderr` was in use.
    pub attempts: u32,
    /// Functions called in the process during the last attempt.
    pub calls: u32,
}

/// Limits of one inspection.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// How long a call may wait before it is checked: one waiting for a lock is abandoned (and
    /// retried after the process ran a little), one computing is waited for.
    pub call_timeout: Duration,
    /// How many times to stop the process before giving up on a busy allocator.
    pub max_attempts: u32,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            call_timeout: Duration::from_millis(300),
            max_attempts: 5,
        }
    }
}

/// Why glibc in a process could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{}", super::no_such_process(*.0))]
    NoSuchProcess(i32),
    #[error("process {pid}: not allowed to trace it: {reason}")]
    PermissionDenied { pid: i32, reason: String },
    #[error(
        "process {pid} is already traced by process {tracer} ({tracer_name}) and a process has one \
         tracer at a time: detach that debugger or strace, then try again"
    )]
    AlreadyTraced {
        pid: i32,
        tracer: i32,
        tracer_name: String,
    },
    #[error(
        "process {pid} has no glibc heap to ask about ({reason}); only dynamically linked \
         programs using glibc's libc.so.6 can be inspected this way"
    )]
    NoGlibc { pid: i32, reason: String },
    #[error("process {pid}: {what}; remote calls need a 64-bit x86_64 process and memcheck built for x86_64")]
    WrongArch { pid: i32, what: String },
    #[error(
        "process {pid}: a thread held the allocator's lock in each of {attempts} attempts; try \
         again, or allow more attempts"
    )]
    Busy { pid: i32, attempts: u32 },
    #[error("process {pid} exited or started another program while it was being inspected")]
    Died { pid: i32 },
    #[error("process {pid}: {what}")]
    Unsupported { pid: i32, what: String },
    #[error("process {pid}: {what}")]
    Other { pid: i32, what: String },
}

/// Calls `mallinfo2()` and `malloc_stats()` in process `pid` and returns what they reported.
///
/// The process continues exactly as before: its registers, memory, descriptors, signal state and
/// `errno` are restored before it runs again. Do not wait on `pid` from another thread of this
/// process meanwhile (a parent's `waitpid` would see the ptrace stops).
pub fn heap_of(pid: i32, opts: &RemoteOptions) -> Result<RemoteHeap, RemoteError> {
    #[cfg(target_arch = "x86_64")]
    {
        let target = target::Target::inspect(pid)?;
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("memcheck-ptrace".into())
            .spawn(move || session::run(&target, &opts))
            .map_err(|e| RemoteError::Other {
                pid,
                what: format!("cannot start a thread: {e}"),
            })?
            .join()
            .unwrap_or_else(|_| {
                Err(RemoteError::Other {
                    pid,
                    what: "the ptrace thread panicked".into(),
                })
            })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = opts;
        Err(RemoteError::WrongArch {
            pid,
            what: format!("memcheck was built for {}", std::env::consts::ARCH),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mallinfo2_decodes_in_field_order() {
        let mut b = [0u8; MALLINFO2_SIZE];
        for i in 0..10 {
            b[i * 8..i * 8 + 8].copy_from_slice(&(i as u64 + 1).to_ne_bytes());
        }
        let m = Mallinfo2::from_bytes(&b);
        assert_eq!(
            (m.arena, m.ordblks, m.hblkhd, m.uordblks, m.keepcost),
            (1, 2, 5, 8, 10)
        );
    }
}
