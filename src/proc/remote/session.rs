//! The ptrace session on x86_64: seize and stop one thread, save what the calls change, run
//! the calls, restore, detach. The register conventions it uses are in [`super::abi`].
use super::abi::*;
use super::glibc::{file_abi, FileView, StderrRef};
use super::memory::{read_mem, write_mem};
use super::permission::{explain_denial, gather_access};
use super::target::{live_thread, Target};
use super::{Mallinfo2, MallocStats, RemoteError, RemoteHeap, RemoteOptions, MALLINFO2_SIZE};
use libc::user_regs_struct;
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;
use std::time::Instant;

/// Pause between attempts, so a thread holding a lock can release it.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Scratch stack mapped in the process for the calls (fprintf needs ~10 KiB).
const SCRATCH: u64 = 256 * 1024;
/// Bytes saved and used on the thread's own stack, below its red zone.
const AREA: u64 = 256;
const STATS_NAME: &[u8] = b"memcheck-malloc-stats\0";
/// Signals left unblocked during calls: the synchronous ones (a blocked fault signal would be
/// forced through and its handler reset) and the two that cannot be blocked.
const SYNC_SIGNALS: [i32; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGTRAP,
    libc::SIGSYS,
];

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// How one call ended.
enum Call {
    Returned(u64),
    /// Stopped while waiting in futex (for a lock).
    Blocked,
}

/// What one stop produced.
enum Attempt {
    Done {
        mallinfo: Mallinfo2,
        stats: MallocStats,
        retry_stats: bool,
    },
    Busy,
}

/// A wait status, decoded (raw, since nix cannot name real-time signals).
enum Event {
    Exited,
    Exec,
    /// Signal-delivery-stop.
    Signal(i32),
    /// PTRACE_EVENT_STOP: an interrupt or a group stop.
    Stop,
    Other,
}

fn cont(tid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_CONT takes no pointer; data is a signal number.
    unsafe { ptrace_raw(libc::PTRACE_CONT, tid, 0, sig as usize) }
}

/// Waits for the next event of `tid` until `deadline` (None: it passed first). Polls, as a
/// ptrace stop cannot be waited for with a timeout. Events are looked at with `WNOWAIT` and
/// only stops are collected: an exit stays unreaped, so a parent in this process still
/// collects its child's status.
fn wait_event(tid: i32, deadline: Instant) -> Result<Option<Event>, Errno> {
    let mut idle = 0u32;
    loop {
        // SAFETY: siginfo_t is plain data, valid when zeroed.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT | libc::WNOHANG | libc::__WALL;
        // SAFETY: info is a valid siginfo_t for the kernel to write.
        if unsafe { libc::waitid(libc::P_PID, tid as libc::id_t, &mut info, flags) } == -1 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        // SAFETY: waitid filled in a SIGCHLD siginfo, or left it zeroed (nothing to report).
        let (who, code) = (unsafe { info.si_pid() }, info.si_code);
        if who == tid {
            if matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED) {
                return Ok(Some(Event::Exited));
            }
            let mut status = 0;
            // SAFETY: status is a valid int for the kernel to write.
            let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
            if r == -1 && Errno::last() != Errno::EINTR {
                return Err(Errno::last());
            }
            if r == tid {
                return Ok(Some(if !libc::WIFSTOPPED(status) {
                    Event::Exited // killed between the two calls
                } else {
                    match status >> 16 {
                        0 => Event::Signal(libc::WSTOPSIG(status)),
                        libc::PTRACE_EVENT_EXEC => Event::Exec,
                        PTRACE_EVENT_STOP => Event::Stop,
                        _ => Event::Other,
                    }
                }));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        idle += 1;
        if idle < 16 {
            std::thread::yield_now();
        } else {
            let nap =
                Duration::from_micros(20 * u64::from(idle - 15)).min(Duration::from_millis(1));
            std::thread::sleep(nap.min(deadline - now));
        }
    }
}

/// What is put back before the thread runs again.
struct Saved {
    regs: user_regs_struct,
    xstate: (usize, Vec<u8>),
    mask: u64,
    area_at: u64,
    area: Vec<u8>,
}

struct Session<'a> {
    t: &'a Target,
    tid: i32,
    timeout: Duration,
    saved: Option<Saved>,
    /// Signals that arrived during calls, to re-inject.
    pending: Vec<libc::siginfo_t>,
    /// The current stop is a signal-delivery-stop (a signal can be injected on detach).
    signal_stop: bool,
    /// The process exited or exec'd: nothing to restore.
    gone: bool,
    stopped_at: Instant,
    calls: u32,
    /// The thread's `errno`, once known.
    errno_at: Option<u64>,
}

pub(super) fn run(t: &Target, opts: &RemoteOptions) -> Result<RemoteHeap, RemoteError> {
    let pid = t.pid;
    let max = opts.max_attempts.max(1);
    let mut stopped_for = Duration::ZERO;
    let mut best: Option<RemoteHeap> = None;
    for attempt in 1..=max {
        if attempt > 1 {
            std::thread::sleep(RETRY_PAUSE);
        }
        let tid = live_thread(pid)?;
        let mut s = Session::attach(t, tid, opts.call_timeout)?;
        let outcome = s.save().and_then(|()| s.work());
        let calls = s.calls;
        let released = s.release();
        stopped_for += released?;
        match outcome? {
            Attempt::Busy => {}
            Attempt::Done {
                mallinfo,
                stats,
                retry_stats,
            } => {
                let heap = RemoteHeap {
                    pid,
                    tid,
                    mallinfo,
                    malloc_stats: stats,
                    stopped_for,
                    attempts: attempt,
                    calls,
                };
                if !retry_stats {
                    return Ok(heap);
                }
                best = Some(heap);
            }
        }
    }
    match best {
        Some(mut heap) => {
            heap.stopped_for = stopped_for;
            heap.attempts = max;
            Ok(heap)
        }
        None => Err(RemoteError::Busy { pid, attempts: max }),
    }
}

impl<'a> Session<'a> {
    fn pid(&self) -> i32 {
        self.t.pid
    }

    fn err(&self, what: impl Into<String>) -> RemoteError {
        RemoteError::Other {
            pid: self.pid(),
            what: what.into(),
        }
    }

    /// Maps a failed ptrace or memory access: the process is gone, or something else failed.
    fn fail(&mut self, doing: &str, e: Errno) -> RemoteError {
        if e == Errno::ESRCH
            && !Path::new(&format!("/proc/{}/task/{}", self.pid(), self.tid)).exists()
        {
            self.gone = true;
            return RemoteError::Died { pid: self.pid() };
        }
        self.err(format!("{doing}: {e}"))
    }

    /// PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the stop, passing through signals that
    /// are delivered first.
    fn attach(t: &'a Target, tid: i32, timeout: Duration) -> Result<Session<'a>, RemoteError> {
        let pid = t.pid;
        match ptrace::seize(Pid::from_raw(tid), ptrace::Options::PTRACE_O_TRACEEXEC) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Err(RemoteError::NoSuchProcess(pid)),
            Err(Errno::EPERM) => return Err(explain_denial(pid, &gather_access(pid, tid))),
            Err(e) => {
                return Err(RemoteError::Other {
                    pid,
                    what: format!("PTRACE_SEIZE failed: {e}"),
                })
            }
        }
        let mut s = Session {
            t,
            tid,
            timeout,
            saved: None,
            pending: Vec::new(),
            signal_stop: false,
            gone: false,
            stopped_at: Instant::now(),
            calls: 0,
            errno_at: None,
        };
        ptrace::interrupt(Pid::from_raw(tid)).map_err(|e| s.fail("PTRACE_INTERRUPT", e))?;
        let deadline = Instant::now() + timeout.max(Duration::from_secs(1)) * 3;
        loop {
            match wait_event(tid, deadline).map_err(|e| s.fail("waitpid", e))? {
                None => {
                    // Nothing changed yet; this thread's exit detaches it.
                    return Err(RemoteError::Other {
                        pid,
                        what: "it did not stop when asked (uninterruptible sleep, or frozen); try again".into(),
                    });
                }
                Some(Event::Stop) => break,
                Some(Event::Signal(sig)) => cont(tid, sig).map_err(|e| s.fail("PTRACE_CONT", e))?,
                Some(Event::Exited) => return Err(RemoteError::Died { pid }),
                Some(Event::Exec) => {
                    s.gone = true;
                    // SAFETY: PTRACE_DETACH takes no pointer.
                    let _ = unsafe { ptrace_raw(libc::PTRACE_DETACH, tid, 0, 0) };
                    return Err(RemoteError::Died { pid });
                }
                Some(Event::Other) => cont(tid, 0).map_err(|e| s.fail("PTRACE_CONT", e))?,
            }
        }
        s.stopped_at = Instant::now();
        Ok(s)
    }

    /// Saves what the calls change and blocks the signals that can wait.
    fn save(&mut self) -> Result<(), RemoteError> {
        let tid = self.tid;
        let regs =
            ptrace::getregs(Pid::from_raw(tid)).map_err(|e| self.fail("PTRACE_GETREGS", e))?;
        let xstate = self
            .get_xstate()
            .map_err(|e| self.fail("PTRACE_GETREGSET", e))?;
        let mut mask = 0u64;
        // SAFETY: the kernel writes a sigset of the size given in addr (8 bytes) into mask.
        unsafe {
            ptrace_raw(
                libc::PTRACE_GETSIGMASK,
                tid,
                8,
                &mut mask as *mut u64 as usize,
            )
        }
        .map_err(|e| self.fail("PTRACE_GETSIGMASK", e))?;
        let area_at = ((regs.rsp - RED_ZONE) & !15) - AREA;
        let area = read_mem(tid, area_at, AREA as usize)
            .map_err(|e| self.fail("cannot read the thread's stack", e))?;
        self.saved = Some(Saved {
            regs,
            xstate,
            mask,
            area_at,
            area,
        });
        let blocked = SYNC_SIGNALS.iter().fold(u64::MAX, |m, &s| m & !bit(s));
        self.set_mask(blocked)
    }

    fn saved(&self) -> &Saved {
        self.saved.as_ref().expect("save() runs before any call")
    }

    fn get_xstate(&self) -> Result<(usize, Vec<u8>), Errno> {
        for note in [NT_X86_XSTATE, NT_PRFPREG] {
            let mut buf = vec![0u8; 16 * 1024];
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            // SAFETY: iov describes buf, which outlives the call; the kernel writes at most
            // iov_len bytes and stores the length it wrote in iov_len.
            match unsafe {
                ptrace_raw(
                    PTRACE_GETREGSET,
                    self.tid,
                    note,
                    &mut iov as *mut libc::iovec as usize,
                )
            } {
                Ok(()) => {
                    buf.truncate(iov.iov_len);
                    return Ok((note, buf));
                }
                Err(Errno::EINVAL | Errno::ENODEV) if note == NT_X86_XSTATE => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Errno::EINVAL)
    }

    fn set_mask(&mut self, mask: u64) -> Result<(), RemoteError> {
        // SAFETY: the kernel reads a sigset of the size given in addr (8 bytes) from mask.
        unsafe {
            ptrace_raw(
                libc::PTRACE_SETSIGMASK,
                self.tid,
                8,
                &mask as *const u64 as usize,
            )
        }
        .map_err(|e| self.fail("PTRACE_SETSIGMASK", e))
    }

    fn read(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, RemoteError> {
        read_mem(self.tid, addr, len)
            .map_err(|e| self.fail(&format!("cannot read its memory at {addr:#x}"), e))
    }

    fn read_u64(&mut self, addr: u64) -> Result<u64, RemoteError> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_ne_bytes(b.try_into().unwrap_or_default()))
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), RemoteError> {
        write_mem(self.tid, addr, data)
            .map_err(|e| self.fail(&format!("cannot write its memory at {addr:#x}"), e))
    }

    /// Stack pointer for calls on the saved area of the thread's own stack: the return slot
    /// and a stack argument above it, 128 saved bytes below for the callee.
    fn area_sp(&self) -> u64 {
        self.saved().area_at + 128 + 8
    }

    /// Runs `func(args...)` in the thread with the stack at `sp` (`sp % 16 == 8`, as after a
    /// call instruction) and a return address of 0, so the return faults where it is caught.
    fn call(&mut self, func: u64, args: &[u64], sp: u64) -> Result<Call, RemoteError> {
        let tid = self.tid;
        let (regs, frame) = call_registers(&self.saved().regs, func, args, sp);
        self.write(sp, &frame)?;
        ptrace::setregs(Pid::from_raw(tid), regs).map_err(|e| self.fail("PTRACE_SETREGS", e))?;
        cont(tid, 0).map_err(|e| self.fail("PTRACE_CONT", e))?;
        self.signal_stop = false;
        self.calls += 1;
        let mut deadline = Instant::now() + self.timeout;
        let mut interrupted = false;
        loop {
            let event = match wait_event(tid, deadline).map_err(|e| self.fail("waitpid", e))? {
                Some(e) => e,
                None => {
                    if !interrupted {
                        ptrace::interrupt(Pid::from_raw(tid))
                            .map_err(|e| self.fail("PTRACE_INTERRUPT", e))?;
                        interrupted = true;
                    }
                    // The thread runs our code now: it must stop before anything else.
                    deadline = Instant::now() + Duration::from_secs(3600);
                    continue;
                }
            };
            match event {
                Event::Exited => {
                    self.gone = true;
                    return Err(RemoteError::Died { pid: self.pid() });
                }
                Event::Exec => {
                    // Another thread ran execve: ours is gone, and the thread that now has
                    // its id keeps its own registers and signal mask. Nothing to restore.
                    self.gone = true;
                    // SAFETY: PTRACE_DETACH takes no pointer.
                    let _ = unsafe { ptrace_raw(libc::PTRACE_DETACH, tid, 0, 0) };
                    return Err(RemoteError::Died { pid: self.pid() });
                }
                Event::Stop if interrupted => {
                    let r = ptrace::getregs(Pid::from_raw(tid))
                        .map_err(|e| self.fail("PTRACE_GETREGS", e))?;
                    if is_futex_wait(r.orig_rax, r.rax) {
                        return Ok(Call::Blocked);
                    }
                    // Computing: let it finish.
                    interrupted = false;
                    deadline = Instant::now() + self.timeout;
                    cont(tid, 0).map_err(|e| self.fail("PTRACE_CONT", e))?;
                }
                Event::Stop | Event::Other => {
                    cont(tid, 0).map_err(|e| self.fail("PTRACE_CONT", e))?
                }
                Event::Signal(sig) => {
                    self.signal_stop = true;
                    let info = ptrace::getsiginfo(Pid::from_raw(tid))
                        .map_err(|e| self.fail("PTRACE_GETSIGINFO", e))?;
                    let r = ptrace::getregs(Pid::from_raw(tid))
                        .map_err(|e| self.fail("PTRACE_GETREGS", e))?;
                    if sig == libc::SIGSEGV && r.rip == 0 && r.rsp == sp + 8 {
                        return Ok(Call::Returned(r.rax));
                    }
                    if SYNC_SIGNALS.contains(&sig) && info.si_code > 0 {
                        return Err(self.err(format!(
                            "the call at {func:#x} faulted with signal {sig} at {:#x}; the process was restored",
                            r.rip
                        )));
                    }
                    // Arrived meanwhile: hold it and deliver it on detach.
                    self.pending.push(info);
                    cont(tid, 0).map_err(|e| self.fail("PTRACE_CONT", e))?;
                    self.signal_stop = false;
                }
            }
        }
    }

    /// A call to a function that never waits on a lock; returns its result.
    fn ret(&mut self, func: u64, args: &[u64], sp: u64) -> Result<u64, RemoteError> {
        match self.call(func, args, sp)? {
            Call::Returned(v) => Ok(v),
            Call::Blocked => Err(self.err(format!(
                "the call at {func:#x} waited on a lock unexpectedly"
            ))),
        }
    }

    /// `syscall(nr, args...)` in the process; the inner error is the errno it set.
    fn syscall(
        &mut self,
        nr: i64,
        args: &[u64],
        sp: u64,
    ) -> Result<Result<u64, Errno>, RemoteError> {
        let all: Vec<u64> = std::iter::once(nr as u64)
            .chain(args.iter().copied())
            .collect();
        let r = self.ret(self.t.syms.syscall, &all, sp)?;
        if r as i64 != -1 {
            return Ok(Ok(r));
        }
        let errno = match self.errno_at {
            Some(at) => i32::from_ne_bytes(self.read(at, 4)?.try_into().unwrap_or_default()),
            None => 0,
        };
        Ok(Err(Errno::from_raw(errno)))
    }

    /// The calls of one stop: errno saved, a scratch stack mapped, mallinfo2 and malloc_stats
    /// on it, the stack unmapped, errno put back.
    fn work(&mut self) -> Result<Attempt, RemoteError> {
        let sp = self.area_sp();
        let errno_at = self.ret(self.t.syms.errno_location, &[], sp)?;
        let errno = self.read(errno_at, 4)?;
        self.errno_at = Some(errno_at);
        let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE) as u64;
        let mapped = self.syscall(libc::SYS_mmap, &[0, SCRATCH, prot, flags, u64::MAX, 0], sp)?;
        let result = match mapped {
            Ok(base) => self.heap_calls(base + SCRATCH),
            Err(e) => Err(self.err(format!(
                "could not map a scratch stack in it ({e}); it may be at its memory or mapping limit"
            ))),
        };
        if self.gone {
            return result;
        }
        let unmapped = match mapped {
            Ok(base) => match self.syscall(libc::SYS_munmap, &[base, SCRATCH], sp) {
                Ok(Err(e)) => Err(self.err(format!("unmapping the scratch stack failed: {e}"))),
                r => r.map(|_| ()),
            },
            Err(_) => Ok(()),
        };
        let restored = unmapped.and_then(|()| self.write(errno_at, &errno));
        let r = result?;
        restored?;
        Ok(r)
    }

    /// mallinfo2 and malloc_stats with the scratch stack ending at `top`.
    fn heap_calls(&mut self, top: u64) -> Result<Attempt, RemoteError> {
        let buf = top - 128;
        let sp = top - 256 - 8;
        let mallinfo2 = self.t.syms.mallinfo2;
        match self.call(mallinfo2, &[buf], sp)? {
            Call::Blocked => return Ok(Attempt::Busy),
            Call::Returned(r) if r != buf => {
                return Err(self.err(format!(
                    "mallinfo2 returned {r:#x} instead of its buffer {buf:#x}"
                )))
            }
            Call::Returned(_) => {}
        }
        let raw = self.read(buf, MALLINFO2_SIZE)?;
        let mut b = [0u8; MALLINFO2_SIZE];
        b.copy_from_slice(&raw);
        // mallinfo2 succeeding shows this thread holds no arena lock, so malloc_stats can
        // only wait for other threads, which run on.
        let (stats, retry_stats) = self.stats(top, sp)?;
        Ok(Attempt::Done {
            mallinfo: Mallinfo2::from_bytes(&b),
            stats,
            retry_stats,
        })
    }

    /// malloc_stats() printing into a memfd: stderr's lock is taken without waiting, its
    /// `FILE` is saved, pointed at the memfd for the call and put back. Returns the text or
    /// why not, and whether a later stop may do better.
    fn stats(&mut self, top: u64, sp: u64) -> Result<(MallocStats, bool), RemoteError> {
        let skip = |why: &str, retry: bool| Ok((MallocStats::Skipped(why.to_string()), retry));
        let sy = &self.t.syms;
        let (ftrylockfile, funlockfile) = (sy.ftrylockfile, sy.funlockfile);
        let var = match sy.stderr {
            StderrRef::Got(slot) => self.read_u64(slot)?,
            StderrRef::Var(v) => v,
        };
        let file = self.read_u64(var)?;
        if file == 0 {
            return skip("stderr is NULL in the process", false);
        }
        let regs = self.saved().regs;
        let Some(view) = FileView::parse(&self.read(file, file_abi::SIZE)?) else {
            return skip("stderr is unreadable", false);
        };
        if let Some(why) = view.unusable() {
            return skip(why, false);
        }
        let (held, _, owner) = self.lock_state(view.lock)?;
        if held && owner == regs.fs_base {
            return skip("the thread was inside stdio on stderr", true);
        }
        if view.flags2 & file_abi::NEED_LOCK == 0
            && self.t.libc.in_code(regs.rip)
            && (regs.orig_rax as i64) < 0
        {
            return skip(
                "the thread was inside libc, where stdio runs unlocked in a single-threaded process",
                true,
            );
        }
        if self.ret(ftrylockfile, &[file], sp)? as u32 != 0 {
            return skip("another thread was writing to stderr", true);
        }
        // Under the lock no other thread changes the FILE: check it again and save it whole.
        let saved = self.read(file, file_abi::SIZE)?;
        let outcome = match FileView::parse(&saved).map(|v| (v.unusable(), v.pending_output())) {
            Some((None, false)) => self.stats_locked(file, &saved, top, sp),
            Some((Some(why), _)) => skip(why, false),
            _ => skip("stderr had output pending", true),
        };
        if self.gone {
            return outcome;
        }
        // Release what this thread holds: our lock, and malloc_stats' if it was abandoned.
        let released = self.lock_state(view.lock).and_then(|(_, count, owner)| {
            if owner != regs.fs_base {
                return Err(self.err("stderr's lock changed owner during the call; left as it is"));
            }
            (0..count).try_for_each(|_| self.ret(funlockfile, &[file], sp).map(|_| ()))
        });
        let r = outcome?;
        released?;
        Ok(r)
    }

    /// glibc's `_IO_lock_t` at `at`: held, recursion count, owner (the owning thread's
    /// `struct pthread`, which is its fs base on x86_64).
    fn lock_state(&mut self, at: u64) -> Result<(bool, u32, u64), RemoteError> {
        let b = self.read(at, 16)?;
        let word =
            |r: std::ops::Range<usize>| b[r].iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x));
        Ok((word(0..4) != 0, word(4..8) as u32, word(8..16)))
    }

    /// The part of [`Self::stats`] done holding stderr's lock: malloc_stats() with stderr's
    /// descriptor pointed at a memfd, then the FILE put back as `saved`.
    fn stats_locked(
        &mut self,
        file: u64,
        saved: &[u8],
        top: u64,
        sp: u64,
    ) -> Result<(MallocStats, bool), RemoteError> {
        let name = top - 40;
        self.write(name, STATS_NAME)?;
        let flags = libc::MFD_CLOEXEC as u64;
        let fd = match self.syscall(libc::SYS_memfd_create, &[name, flags], sp)? {
            Ok(fd) => fd,
            Err(e) => {
                let why = format!("memfd_create failed in the process ({e})");
                return Ok((MallocStats::Skipped(why), false));
            }
        };
        let malloc_stats = self.t.syms.malloc_stats;
        let called = self
            .write(file + file_abi::FILENO as u64, &(fd as i32).to_ne_bytes())
            .and_then(|()| self.call(malloc_stats, &[], sp));
        if self.gone {
            return Err(RemoteError::Died { pid: self.pid() });
        }
        // Put the FILE back as it was: descriptor, flags2, buffer pointers, offset.
        let restored = self.write(file, saved);
        let text = match &called {
            Ok(Call::Returned(_)) => std::fs::read(format!("/proc/{}/fd/{fd}", self.tid))
                .map(|b| MallocStats::Captured(String::from_utf8_lossy(&b).into_owned()))
                .map_err(|e| self.err(format!("cannot read malloc_stats' output: {e}"))),
            _ => Ok(MallocStats::Skipped(
                "malloc_stats waited for an arena lock".into(),
            )),
        };
        let closed = self.syscall(libc::SYS_close, &[fd], sp);
        let called = called?;
        restored?;
        closed?.map_err(|e| self.err(format!("closing the memfd in the process failed: {e}")))?;
        Ok((text?, matches!(called, Call::Blocked)))
    }

    /// Restores registers, extended state, signal mask and stack bytes, then detaches,
    /// injecting a signal that arrived meanwhile. Returns how long the thread was stopped.
    fn release(mut self) -> Result<Duration, RemoteError> {
        let tid = self.tid;
        if self.gone {
            return Ok(self.stopped_at.elapsed());
        }
        // Every step is tried even if one fails, and the thread is detached in any case.
        let mut restored = Ok(());
        if let Some(saved) = self.saved.take() {
            let stack = self.write(saved.area_at, &saved.area);
            let regs = ptrace::setregs(Pid::from_raw(tid), saved.regs)
                .map_err(|e| self.fail("PTRACE_SETREGS", e));
            let (note, mut x) = saved.xstate;
            let mut iov = libc::iovec {
                iov_base: x.as_mut_ptr().cast(),
                iov_len: x.len(),
            };
            // SAFETY: iov describes x, which outlives the call; the kernel reads iov_len bytes.
            let xstate = unsafe {
                ptrace_raw(
                    PTRACE_SETREGSET,
                    tid,
                    note,
                    &mut iov as *mut libc::iovec as usize,
                )
            }
            .map_err(|e| self.fail("PTRACE_SETREGSET", e));
            let mask = self.set_mask(saved.mask);
            restored = stack.and(regs).and(xstate).and(mask);
        }
        // The first signal that arrived is injected with its siginfo; later ones are sent.
        let mut pending = std::mem::take(&mut self.pending);
        let mut sig = 0;
        if self.signal_stop
            && !pending.is_empty()
            && ptrace::setsiginfo(Pid::from_raw(tid), &pending[0]).is_ok()
        {
            sig = pending.remove(0).si_signo;
        }
        // SAFETY: PTRACE_DETACH takes no pointer; data is a signal number.
        let detached = unsafe { ptrace_raw(libc::PTRACE_DETACH, tid, 0, sig as usize) }
            .map_err(|e| self.fail("PTRACE_DETACH", e));
        let stopped = self.stopped_at.elapsed();
        for info in pending {
            // SAFETY: tgkill takes three integers.
            unsafe { libc::syscall(libc::SYS_tgkill, self.pid(), tid, info.si_signo) };
        }
        restored.and(detached).map(|()| stopped)
    }
}
