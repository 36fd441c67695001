//! The private run directory of `memcheck run`, where the library writes its record files, and the
//! removal of run directories whose memcheck is gone (killed with SIGKILL, say).
//!
//! A run directory is `$TMPDIR/memcheck-PID-START-NS-XXXXXX`: mode 0700, owned by the user, and
//! its name records the creating memcheck's pid, start time (field 22 of `/proc/PID/stat`, clock
//! ticks since boot) and pid namespace (the inode of `/proc/self/ns/pid`), so a later run can tell
//! a live run from a dead one even after the pid has been reused, and leaves alone what a run in
//! another pid namespace (a container sharing /tmp) made, since its pids mean nothing here. The name is chosen and made in one `mkdir`, so there is no moment when a new
//! directory lacks its creator.
use anyhow::{bail, Context, Result};
use nix::unistd::Uid;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const PREFIX: &str = "memcheck-";

/// Start time of a process (`/proc/PID/stat` field 22), `None` when there is no such process.
fn start_time(pid: i32) -> Option<u64> {
    procfs::process::Process::new(pid)
        .and_then(|p| p.stat())
        .ok()
        .map(|s| s.starttime)
}

/// This process's pid namespace (the inode `/proc/self/ns/pid` names).
fn pid_namespace() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Creates this run's directory in the temporary directory, 0700, and checks what was made.
pub fn create() -> Result<tempfile::TempDir> {
    let pid = std::process::id() as i32;
    let start = start_time(pid).context("cannot read this process's start time from /proc")?;
    let ns = pid_namespace().context("cannot read this process's pid namespace from /proc")?;
    let dir = tempfile::Builder::new()
        .prefix(&format!("{PREFIX}{pid}-{start}-{ns}-"))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("cannot create a temporary directory for the run (is TMPDIR writable?)")?;
    let m = std::fs::symlink_metadata(dir.path())?;
    if !m.is_dir() || m.uid() != Uid::effective().as_raw() {
        bail!(
            "the run directory {} is not a directory of yours; set TMPDIR to a private directory",
            dir.path().display()
        );
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// The creator recorded in a run directory's name, `memcheck-PID-START-NS-XXXXXX`: pid, start
/// time, pid namespace.
pub fn creator(name: &str) -> Option<(i32, u64, u64)> {
    let mut parts = name.strip_prefix(PREFIX)?.splitn(4, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let ns = parts.next()?.parse().ok()?;
    parts.next().filter(|r| !r.is_empty())?;
    Some((pid, start, ns))
}

/// What a look at one `memcheck-*` entry of the temporary directory found.
#[derive(Debug)]
pub enum Found {
    /// The user's run directory whose memcheck (pid) is gone.
    Stale { path: PathBuf, pid: i32 },
    /// A directory of the user's whose creator cannot be judged here: never removed, since it
    /// may belong to a live run.
    Kept { path: PathBuf, why: &'static str },
}

/// The `memcheck-*` directories of the user in `tmp` that are stale or whose creator is unknown. Live
/// runs, other users' directories and anything that is not a plain directory are left out.
pub fn scan(tmp: &Path) -> Vec<Found> {
    scan_as(tmp, Uid::effective().as_raw())
}

/// [`scan`] for the user `me`.
fn scan_as(tmp: &Path, me: u32) -> Vec<Found> {
    let our_ns = pid_namespace();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(PREFIX)) else {
            continue;
        };
        let path = e.path();
        // lstat: a symbolic link named memcheck-* is never followed, let alone removed through.
        let Ok(m) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !m.is_dir() || m.uid() != me {
            continue;
        }
        match creator(name) {
            Some((_, _, ns)) if Some(ns) != our_ns => out.push(Found::Kept {
                path,
                why: "made in another pid namespace (a container?), whose pids cannot be checked from here",
            }),
            Some((pid, start, _)) => {
                if start_time(pid) != Some(start) {
                    out.push(Found::Stale { path, pid });
                }
            }
            None => out.push(Found::Kept {
                path,
                why: "its name records no memcheck process (an older memcheck made it)",
            }),
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

impl Found {
    pub fn path(&self) -> &Path {
        match self {
            Found::Stale { path, .. } | Found::Kept { path, .. } => path,
        }
    }
}

/// Removes one stale directory (without following symbolic links inside it). A directory that
/// another memcheck removed first counts as removed.
pub fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Removes the stale run directories of the user in `tmp`, quietly (each run does this first).
pub fn remove_stale(tmp: &Path) {
    for f in scan(tmp) {
        if let Found::Stale { path, .. } = f {
            let _ = remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creator_is_read_from_the_name() {
        assert_eq!(creator("memcheck-42-1234-99-Ab3xYz"), Some((42, 1234, 99)));
        assert_eq!(creator("memcheck-42-1234-99-a-b"), Some((42, 1234, 99)));
        assert_eq!(creator("memcheck-Ab3xYz"), None);
        assert_eq!(creator("memcheck-42-1234-abc"), None);
        assert_eq!(creator("memcheck-42-1234-99-"), None);
        assert_eq!(creator("memcheck-42-x-99-abc"), None);
        assert_eq!(creator("other-42-1234-99-abc"), None);
    }

    #[test]
    fn another_users_directory_is_never_a_candidate() {
        let tmp = tempfile::tempdir().unwrap();
        let ns = pid_namespace().unwrap();
        // pid 0 is never a process: the directory is stale for its owner.
        let d = tmp.path().join(format!("memcheck-0-1-{ns}-abcdef"));
        std::fs::create_dir(&d).unwrap();
        let me = Uid::effective().as_raw();
        let mine = scan_as(tmp.path(), me);
        assert!(
            matches!(mine.as_slice(), [Found::Stale { path, pid: 0 }] if path == &d),
            "{mine:?}"
        );
        assert!(scan_as(tmp.path(), me.wrapping_add(1)).is_empty());
    }

    #[test]
    fn this_process_is_live() {
        let pid = std::process::id() as i32;
        assert!(start_time(pid).is_some());
        assert!(pid_namespace().is_some());
    }
}
