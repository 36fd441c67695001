//! Readers of `/proc` for the inspection commands (`maps`, `residency`, `overcommit`, `stats`),
//! built on the `procfs` crate, and [`remote`], glibc's heap figures fetched inside a live process
//! by ptrace. Invariant: a reader that fails returns a [`ProcError`] (remote: its `RemoteError`)
//! whose one-line message names the file or pid and says what to do, so the command boundary can
//! print it as is; `statspage` and `footprint` report what is absent as `None`.
pub mod cgroup;
pub mod footprint;
pub mod live;
pub mod pagemap;
pub mod process;
pub mod remote;
pub mod smaps;
pub mod statspage;
pub mod tasks;
pub mod vm;

use std::path::{Path, PathBuf};

/// Why something under `/proc` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{}", no_such_process(*.0))]
    NoSuchProcess(i32),
    #[error(
        "{0}: permission denied (the process belongs to another user: run memcheck as that user, \
         or as root / with CAP_SYS_PTRACE)"
    )]
    PermissionDenied(String),
    #[error("{0}: not available on this kernel ({1})")]
    Unsupported(String, &'static str),
    #[error("{0}: cannot read it: {1}")]
    Io(String, String),
}

/// The one wording of "no such process", used by every command (`crate::exit` maps it to 1).
pub fn no_such_process(pid: i32) -> String {
    format!("no process with pid {pid} (it may have exited; check the pid with `ps -p {pid}`)")
}

/// The `/proc` directory of `pid`, after checking that it exists.
pub fn process(pid: i32) -> Result<procfs::process::Process, ProcError> {
    if pid <= 0 {
        return Err(ProcError::NoSuchProcess(pid));
    }
    procfs::process::Process::new(pid).map_err(|e| convert(e, pid, &format!("/proc/{pid}")))
}

/// Turns a `procfs` error about `what` (a path shown to the user) of process `pid` into a
/// [`ProcError`]. A `NotFound` while `/proc/PID` itself is gone means the process exited.
pub fn convert(e: procfs::ProcError, pid: i32, what: &str) -> ProcError {
    use procfs::ProcError as P;
    let gone = || !Path::new(&format!("/proc/{pid}")).exists();
    match e {
        P::PermissionDenied(p) => ProcError::PermissionDenied(shown(p, what)),
        P::NotFound(_) if pid > 0 && gone() => ProcError::NoSuchProcess(pid),
        P::NotFound(p) => ProcError::Io(shown(p, what), "no such file".into()),
        P::Io(ref err, _) if err.raw_os_error() == Some(libc::ESRCH) => {
            ProcError::NoSuchProcess(pid)
        }
        P::Io(err, p) => ProcError::Io(shown(p, what), err.to_string()),
        P::Incomplete(p) if pid > 0 && gone() => {
            let _ = p;
            ProcError::NoSuchProcess(pid)
        }
        P::Incomplete(p) => ProcError::Io(shown(p, what), "incomplete contents, try again".into()),
        P::Other(s) => ProcError::Io(what.to_string(), s),
        P::InternalError(ie) => ProcError::Io(what.to_string(), ie.to_string()),
    }
}

fn shown(p: Option<PathBuf>, what: &str) -> String {
    p.map(|p| p.display().to_string())
        .unwrap_or_else(|| what.to_string())
}

/// Converts a `std::io::Error` met while reading `path` (of process `pid`, or 0) to a
/// [`ProcError`].
pub fn io_error(e: std::io::Error, pid: i32, path: &str) -> ProcError {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => ProcError::PermissionDenied(path.to_string()),
        std::io::ErrorKind::NotFound if pid > 0 && !Path::new(&format!("/proc/{pid}")).exists() => {
            ProcError::NoSuchProcess(pid)
        }
        _ if e.raw_os_error() == Some(libc::ESRCH) => ProcError::NoSuchProcess(pid),
        _ => ProcError::Io(path.to_string(), e.to_string()),
    }
}

/// The short command name of `pid` (`/proc/PID/comm`), or an empty string if it is unreadable.
pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end().to_string())
        .unwrap_or_default()
}

/// The page size of this machine in bytes.
pub fn page_size() -> u64 {
    procfs::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pids_are_reported_as_such() {
        let e = process(-5).unwrap_err();
        assert!(matches!(e, ProcError::NoSuchProcess(-5)), "{e}");
        // pid_max bounds real pids, so pid_max itself never exists.
        let max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let e = process(max).unwrap_err();
        assert!(matches!(e, ProcError::NoSuchProcess(p) if p == max), "{e}");
        assert!(e.to_string().contains("no process with pid"));
    }

    #[test]
    fn permission_errors_name_the_file_and_the_fix() {
        let e = convert(
            procfs::ProcError::PermissionDenied(Some("/proc/1/smaps".into())),
            1,
            "x",
        );
        let s = e.to_string();
        assert!(s.starts_with("/proc/1/smaps: permission denied"), "{s}");
        assert!(s.contains("as root"), "{s}");
    }
}
