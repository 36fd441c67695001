//! The CLI side of `memcheck leaks PID` (contract: `memcheck_wire::live`): find the process's
//! files in its run directory, ask its memcheck library for a leak check with a queued signal,
//! wait for the answer file and read it. The paused-thread machinery is the library's
//! (`shim/src/live.rs`); nothing here stops or traces the process.
use super::{process, statspage};
use memcheck_wire::live;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why a live check could not be had (`crate::exit` maps every one to status 1).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{}", super::no_such_process(*.0))]
    NoSuchProcess(i32),
    #[error("pid {0} is not running under memcheck: start it with `memcheck run -- PROG` to check it while it runs")]
    NotUnderMemcheck(i32),
    #[error("pid {0} runs under a memcheck library that does not answer live checks (signal {sig} is not handled: an older memcheck, or the library records nothing in this process): restart it with this memcheck", sig = live::SIGNAL)]
    NoHandler(i32),
    #[error("pid {0} did not answer within {1} s (it may be stopped, or all its threads block signal {sig}); try again, or give more --timeout", sig = live::SIGNAL)]
    NoAnswer(i32, u64),
    #[error("pid {0} exited before it answered")]
    Exited(i32),
    #[error("pid {0}: permission denied (it belongs to another user: run memcheck as that user)")]
    PermissionDenied(i32),
    #[error("{0}: {1}")]
    Io(String, String),
}

/// The files of one process under memcheck: `RUNDIR/PID-STARTNS` and its suffixes.
#[derive(Debug, Clone)]
pub struct Target {
    pub pid: i32,
    /// `RUNDIR/PID-STARTNS`, without a suffix.
    pub base: PathBuf,
}

impl Target {
    pub fn with(&self, suffix: &str) -> PathBuf {
        let mut s = self.base.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    }
}

/// The process `pid` (or, for the pid of a `memcheck run` CLI, its checked program) and its
/// files, found through the statistics page it maps.
pub fn find(pid: i32) -> Result<Target, LiveError> {
    if !process::exists(pid) {
        return Err(LiveError::NoSuchProcess(pid));
    }
    let mut pid = pid;
    if statspage::page_path(pid).is_none() && process::is_memcheck_run(pid) {
        if let Some(&child) = process::children(pid).first() {
            pid = child;
        }
    }
    let page = statspage::page_path(pid).ok_or(LiveError::NotUnderMemcheck(pid))?;
    let name = page.to_string_lossy();
    let base = name
        .strip_suffix(memcheck_wire::stats::SUFFIX)
        .ok_or(LiveError::NotUnderMemcheck(pid))?;
    Ok(Target {
        pid,
        base: PathBuf::from(base),
    })
}

/// Whether `pid` has a handler for the request signal (`SigCgt` of its status): without one the
/// signal would end it.
fn catches_signal(pid: i32) -> Result<bool, LiveError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| LiveError::NoSuchProcess(pid))?;
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    Ok(mask & (1 << (live::SIGNAL - 1)) != 0)
}

/// The answer of one live check.
pub struct Answer {
    /// The record file the library wrote (the exit report's format).
    pub bytes: Vec<u8>,
    pub path: PathBuf,
}

/// What to ask a process for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Question {
    /// A leak check (its threads paused for the scan).
    Leaks,
    /// Its live blocks by allocation stack (nothing paused).
    Sites,
}

/// Asks `t` and waits up to `timeout` for the answer.
pub fn ask(t: &Target, what: Question, timeout: Duration) -> Result<Answer, LiveError> {
    let io = |p: &PathBuf, e: std::io::Error| LiveError::Io(p.display().to_string(), e.to_string());
    // One check of a process at a time.
    let lock_path = t.with(live::LOCK_SUFFIX);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(|e| io(&lock_path, e))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(&lock_path, std::io::Error::last_os_error()));
    }
    // A request id of this call: time and pid, so that no earlier request's late answer is taken.
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ (std::process::id() as u64) << 40
        | 1;
    let mut name = String::new();
    let _ = live::answer_name(&mut name, id);
    let answer = t.with(&name);
    if !catches_signal(t.pid)? {
        return Err(LiveError::NoHandler(t.pid));
    }
    // SAFETY: getpid and getuid have no preconditions.
    let (me, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let value = match what {
        Question::Leaks => live::REQUEST,
        Question::Sites => live::SITES,
    };
    let mut info = live::siginfo(live::SIGNAL, me as u32, uid, value, id);
    // SAFETY: rt_sigqueueinfo reads 128 bytes of siginfo; si_code SI_QUEUE is allowed to another
    // process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            t.pid,
            live::SIGNAL,
            info.as_mut_ptr(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ESRCH) => LiveError::NoSuchProcess(t.pid),
            Some(libc::EPERM) => LiveError::PermissionDenied(t.pid),
            _ => LiveError::Io(format!("signalling pid {}", t.pid), e.to_string()),
        });
    }
    let start = Instant::now();
    loop {
        match std::fs::read(&answer) {
            Ok(bytes) => {
                let _ = std::fs::remove_file(&answer);
                return Ok(Answer {
                    bytes,
                    path: answer,
                });
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&answer, e)),
            Err(_) => {}
        }
        if !process::exists(t.pid) || is_zombie(t.pid) {
            return Err(LiveError::Exited(t.pid));
        }
        if start.elapsed() >= timeout {
            return Err(LiveError::NoAnswer(t.pid, timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The pause the library reports in its answer's note: (threads paused, pause, threads that
/// could not be paused).
pub fn pause_of(note: &str) -> Option<(u32, Duration, u32)> {
    let rest = note.strip_prefix(live::NOTE_PAUSE)?;
    let mut w = rest.split_whitespace().map(|x| x.parse::<u64>().ok());
    let (Some(Some(t)), Some(Some(ns)), Some(Some(u))) = (w.next(), w.next(), w.next()) else {
        return None;
    };
    Some((t as u32, Duration::from_nanos(ns), u as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_note_parses() {
        let note = format!("{}3 1500000 1", live::NOTE_PAUSE);
        assert_eq!(pause_of(&note), Some((3, Duration::from_micros(1500), 1)));
        assert_eq!(pause_of("other"), None);
    }

    #[test]
    fn a_process_that_is_not_under_memcheck_is_named() {
        // This test process maps no statistics page.
        let me = std::process::id() as i32;
        let e = find(me).unwrap_err();
        assert!(
            matches!(e, LiveError::NotUnderMemcheck(p) if p == me),
            "{e}"
        );
        assert!(e.to_string().contains("memcheck run"));
        assert!(matches!(find(i32::MAX), Err(LiveError::NoSuchProcess(_))));
    }
}
