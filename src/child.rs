//! The checked program as memcheck's child: started with the signal mask and SIGPIPE disposition
//! memcheck inherited (Rust's `Command` would reset both), the terminating signals people send
//! to memcheck passed on to it, waited for without reaping first (so a forwarded signal never
//! reaches a reused pid), and afterwards the processes of the run that outlived it (memcheck is a
//! child subreaper) waited for while they still carry the preload library.
use anyhow::{Context, Result};
use libc::c_int;
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The signals forwarded to the program: those whose default action terminates a process and
/// that people and supervisors send (a terminal's hangup, Ctrl-C and Ctrl-\, `kill`, `timeout`,
/// daemons' reload and log-rotate signals, `alarm` from a parent). SIGPIPE, SIGXCPU, SIGXFSZ,
/// SIGPROF and SIGVTALRM are raised by the kernel in the process that caused them, not sent to a
/// parent; SIGKILL and SIGSTOP cannot be caught.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
];

/// While memcheck waits for processes that outlived the program, these stop the wait.
const STOP_WAIT: [c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];

/// The program's pid while it runs (0 before and after): where forwarded signals go.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// A signal memcheck keeps for itself (`--snapshot-signal`): not forwarded.
static KEPT: AtomicI32 = AtomicI32::new(0);

/// Keeps `sig` from the forwarded signals (its handler is the caller's).
pub fn keep_signal(sig: c_int) {
    KEPT.store(sig, Ordering::Relaxed);
}
/// memcheck waits for late processes (after the program ended).
static WAITING: AtomicBool = AtomicBool::new(false);
/// A STOP_WAIT signal arrived during that wait.
static STOP: AtomicBool = AtomicBool::new(false);
/// memcheck was started with SIGPIPE ignored (recorded by `main.rs` before Rust's runtime
/// ignores SIGPIPE itself, which hides what was inherited).
static SIGPIPE_INHERITED_IGNORED: AtomicBool = AtomicBool::new(false);

/// Called from `main.rs`'s `.init_array` constructor, before Rust's runtime sets SIGPIPE to
/// SIG_IGN: records whether SIGPIPE was ignored when memcheck was executed, so the program gets
/// the same disposition.
pub fn record_inherited_sigpipe() {
    SIGPIPE_INHERITED_IGNORED.store(is_ignored(libc::SIGPIPE), Ordering::Relaxed);
}

/// The signal's disposition is SIG_IGN.
pub fn is_ignored(sig: c_int) -> bool {
    // SAFETY: sigaction with a null new action only reads the disposition into `old`, a
    // zero-initialised struct of the right type.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

extern "C" fn on_signal(sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    if WAITING.load(Ordering::Relaxed) {
        if STOP_WAIT.contains(&sig) {
            STOP.store(true, Ordering::Relaxed);
        }
        return;
    }
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo; si_pid is meaningful for the
    // SI_USER/SI_QUEUE codes it is compared under and harmless to read for the others.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let pid = CHILD.load(Ordering::Relaxed);
    // The terminal signals its whole foreground process group, the program included (si_code
    // SI_KERNEL): passing that on would deliver it twice. A signal the program sends to its
    // parent is not bounced back to it.
    if pid > 0 && code != libc::SI_KERNEL && sender != pid {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forwards the FORWARDED signals sent to memcheck to the program, so memcheck survives them to
/// write the report while the program gets them as if memcheck were not there. A signal memcheck
/// inherited as ignored is left ignored (the program inherits SIG_IGN, as without memcheck);
/// handlers reset to the default on exec, so the program starts with the dispositions it would
/// have had. Returns the signals now handled, to be blocked across the spawn.
fn forward_signals() -> SigSet {
    let mut handled = SigSet::empty();
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in FORWARDED {
        if is_ignored(s as c_int) || s as c_int == KEPT.load(Ordering::Relaxed) {
            continue;
        }
        // SAFETY: `on_signal` only reads atomics, stores one and calls kill, all
        // async-signal-safe.
        if unsafe { signal::sigaction(s, &action) }.is_ok() {
            handled.add(s);
        }
    }
    handled
}

/// Reaps every exited child (orphans of the run are reparented to memcheck, a child subreaper)
/// and tells whether any child is left: without one, memcheck has no descendant at all.
fn reap_children() -> bool {
    loop {
        match nix::sys::wait::waitpid(
            Pid::from_raw(-1),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => return true,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::ECHILD) => return false,
            Err(_) => return true,
        }
    }
}

/// The processes below memcheck (their parent chain reaches it) that still run with the library
/// `lib` mapped: they have records to write. Others (programs exec'd without --trace-children)
/// are not memcheck's to wait for.
fn late_processes(lib: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut parent = std::collections::HashMap::new();
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    for p in all.flatten() {
        if let Ok(st) = p.stat() {
            if st.state != 'Z' && st.state != 'X' {
                parent.insert(st.pid, st.ppid);
            }
        }
    }
    let below_me = |mut pid: i32| {
        for _ in 0..parent.len() {
            match parent.get(&pid) {
                Some(&pp) if pp == me => return true,
                Some(&pp) if pp > 1 => pid = pp,
                _ => return false,
            }
        }
        false
    };
    let deleted = format!("{lib} (deleted)");
    let mut out: Vec<i32> = parent
        .keys()
        .copied()
        .filter(|&pid| pid != me && below_me(pid))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| {
                m.lines()
                    .any(|l| l.ends_with(lib) || l.ends_with(deleted.as_str()))
            })
        })
        .collect();
    out.sort_unstable();
    out
}

/// After the program ended: waits while processes of the run still have the library loaded
/// (a daemon's child, say), reaping orphans as they end. Says after a second whom it waits for;
/// SIGINT, SIGTERM, SIGHUP or SIGQUIT end the wait. Returns the processes not waited for.
pub fn wait_for_late_processes(lib: &Path) -> Vec<i32> {
    let lib = lib.to_string_lossy();
    let started = Instant::now();
    let mut told = false;
    STOP.store(false, Ordering::Relaxed);
    WAITING.store(true, Ordering::Relaxed);
    let left = loop {
        let late = if reap_children() {
            late_processes(&lib)
        } else {
            Vec::new()
        };
        if late.is_empty() || STOP.load(Ordering::Relaxed) {
            break late;
        }
        if !told && started.elapsed() >= Duration::from_secs(1) {
            let pids: Vec<String> = late.iter().map(|p| p.to_string()).collect();
            eprintln!(
                "memcheck: waiting for pid {} (still running with the memcheck library); Ctrl-C stops the wait",
                pids.join(", ")
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    WAITING.store(false, Ordering::Relaxed);
    reap_children();
    left
}

/// Spawns `cmd` (the program at `path`) as described in the module doc and waits for it: its exit
/// status and pid.
pub fn spawn_and_wait(cmd: &mut Command, path: &Path) -> Result<(ExitStatus, u32)> {
    // What memcheck inherited, to be handed to the program as it is: Rust's Command empties the
    // signal mask and sets SIGPIPE to SIG_DFL in the child.
    let inherited_mask = SigSet::thread_get_mask().unwrap_or_else(|_| SigSet::empty());
    let sigpipe_ignored = SIGPIPE_INHERITED_IGNORED.load(Ordering::Relaxed);
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions
    // (signal, pthread_sigmask) on values copied before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if sigpipe_ignored {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            inherited_mask.thread_set_mask()?;
            Ok(())
        });
    }
    // Orphans of the run (a daemon's child) are reparented to memcheck, so it can wait for them.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let handled = forward_signals();
    // Blocked across the spawn, so a signal that arrives before CHILD is set is forwarded once
    // it is; then unblocked even if memcheck inherited them blocked: the program's own mask (the
    // inherited one) decides what it does with them.
    let _ = handled.thread_block();
    let spawned = cmd.spawn();
    if let Ok(c) = &spawned {
        CHILD.store(c.id() as i32, Ordering::Relaxed);
    }
    let _ = handled.thread_unblock();
    let mut child = spawned.with_context(|| format!("cannot start {}", path.display()))?;
    let child_pid = child.id();
    // Wait without reaping first: once reaped, the pid may be reused and must no longer receive
    // forwarded signals.
    while let Err(nix::errno::Errno::EINTR) = waitid(
        Id::Pid(Pid::from_raw(child_pid as i32)),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
    ) {}
    CHILD.store(0, Ordering::Relaxed);
    let status = child.wait().context("cannot wait for the program")?;
    Ok((status, child_pid))
}
