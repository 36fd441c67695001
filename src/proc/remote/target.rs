//! A process checked and resolved before it is stopped: it exists, is a process (not a thread),
//! may be traced, maps glibc, and the glibc it maps is the file read from disk; the thread to
//! stop is chosen.
use super::glibc::{find_libc, parse_libc, ImageError, LibcMapping, LibcSymbols, StderrRef};
use super::memory::read_mem;
use super::permission::{explain_denial, gather_access};
use super::RemoteError;
use procfs::process::{MemoryMap, Process};
use procfs::{FromBufRead, ProcError};
use std::path::{Path, PathBuf};

/// A process checked and resolved before it is stopped.
pub(super) struct Target {
    pub pid: i32,
    pub libc: LibcMapping,
    /// Symbols at their addresses in the process.
    pub syms: LibcSymbols,
}

impl Target {
    pub fn inspect(pid: i32) -> Result<Target, RemoteError> {
        let gone = |e: ProcError| match e {
            ProcError::NotFound(_) => RemoteError::NoSuchProcess(pid),
            ProcError::PermissionDenied(_) => explain_denial(pid, &gather_access(pid, pid)),
            e => RemoteError::Other {
                pid,
                what: format!("cannot read /proc/{pid}: {e}"),
            },
        };
        if pid <= 0 {
            return Err(RemoteError::NoSuchProcess(pid));
        }
        if pid as u32 == std::process::id() {
            return Err(RemoteError::Unsupported {
                pid,
                what: "a process cannot trace itself; call mallinfo2() in it directly".into(),
            });
        }
        let proc = Process::new(pid).map_err(gone)?;
        let status = proc.status().map_err(gone)?;
        if status.tgid != pid {
            return Err(RemoteError::Other {
                pid,
                what: format!(
                    "{pid} is a thread of process {}; give the process's PID",
                    status.tgid
                ),
            });
        }
        if status.state.starts_with('Z') && status.threads <= 1 {
            return Err(RemoteError::NoSuchProcess(pid));
        }
        let tid = live_thread(pid)?;
        let status = proc
            .task_from_tid(tid)
            .and_then(|t| t.status())
            .map_err(gone)?;
        let maps: Vec<MemoryMap> = std::fs::File::open(format!("/proc/{pid}/task/{tid}/maps"))
            .map_err(ProcError::from)
            .and_then(|f| procfs::process::MemoryMaps::from_buf_read(std::io::BufReader::new(f)))
            .map_err(gone)?
            .into_iter()
            .collect();
        if maps.is_empty() {
            return Err(RemoteError::NoGlibc {
                pid,
                reason: "it has no user-space memory (a kernel thread)".into(),
            });
        }
        let libc = find_libc(&maps).ok_or_else(|| RemoteError::NoGlibc {
            pid,
            reason: "no libc.so.6 in its memory map: statically linked, or another C library such as musl".into(),
        })?;
        let file = if libc.deleted {
            PathBuf::from(format!(
                "/proc/{tid}/map_files/{:x}-{:x}",
                libc.first.0, libc.first.1
            ))
        } else {
            Path::new(&format!("/proc/{tid}/root"))
                .join(libc.path.strip_prefix("/").unwrap_or(&libc.path))
        };
        let image = std::fs::read(&file).map_err(|e| RemoteError::Other {
            pid,
            what: format!(
                "cannot read its libc ({}{}): {e}",
                libc.path.display(),
                if libc.deleted {
                    ", deleted since it was loaded; restart the process"
                } else {
                    ""
                }
            ),
        })?;
        let mut syms = parse_libc(&image).map_err(|e| match e {
            ImageError::WrongArch(what) => RemoteError::WrongArch { pid, what },
            ImageError::NotElf => RemoteError::Other {
                pid,
                what: format!("{} is not a usable ELF library", libc.path.display()),
            },
            ImageError::Missing(name) => RemoteError::Unsupported {
                pid,
                what: format!("its glibc has no {name} (mallinfo2 needs glibc 2.33 or later)"),
            },
            ImageError::Indirect(name) => RemoteError::Unsupported {
                pid,
                what: format!("its glibc's {name} is an indirect function"),
            },
        })?;
        let bias = libc.first.0.wrapping_sub(syms.first_page);
        for a in [
            &mut syms.mallinfo2,
            &mut syms.malloc_stats,
            &mut syms.syscall,
            &mut syms.errno_location,
            &mut syms.ftrylockfile,
            &mut syms.funlockfile,
        ] {
            *a = a.wrapping_add(bias);
        }
        syms.stderr = match syms.stderr {
            StderrRef::Got(a) => StderrRef::Got(a.wrapping_add(bias)),
            StderrRef::Var(a) => StderrRef::Var(a.wrapping_add(bias)),
        };
        for (vaddr, bytes) in &mut syms.probes {
            *vaddr = vaddr.wrapping_add(bias);
            let mapped = read_mem(tid, *vaddr, bytes.len()).map_err(|e| match e {
                nix::errno::Errno::ESRCH => RemoteError::NoSuchProcess(pid),
                e => RemoteError::Other {
                    pid,
                    what: format!("cannot read its memory at {:#x}: {e}", *vaddr),
                },
            })?;
            if mapped != *bytes {
                return Err(RemoteError::Other {
                    pid,
                    what: format!(
                        "the libc mapped in it differs from {} (replaced since it started?); restart it",
                        libc.path.display()
                    ),
                });
            }
        }
        if status.seccomp == Some(2) {
            return Err(RemoteError::Unsupported {
                pid,
                what: "it runs under a seccomp filter, which could refuse the calls memcheck makes in it or \
                       kill it for them; nothing was changed"
                    .into(),
            });
        }
        if status.sigign & (1 << (libc::SIGSEGV - 1)) != 0 {
            return Err(RemoteError::Unsupported {
                pid,
                what: "it ignores SIGSEGV, which a remote call's return would reset; nothing was changed".into(),
            });
        }
        Ok(Target { pid, libc, syms })
    }
}

/// The thread to stop: the leader if it is alive, else another live thread (the leader of a
/// process whose main thread called pthread_exit is a zombie: it never stops and has no maps).
pub(super) fn live_thread(pid: i32) -> Result<i32, RemoteError> {
    let proc = Process::new(pid).map_err(|_| RemoteError::NoSuchProcess(pid))?;
    let live = |t: &procfs::process::Task| t.status().is_ok_and(|s| !s.state.starts_with('Z'));
    let tid = match proc.task_main_thread() {
        Ok(leader) if live(&leader) => pid,
        _ => proc
            .tasks()
            .map_err(|_| RemoteError::NoSuchProcess(pid))?
            .flatten()
            .find(live)
            .map(|t| t.tid)
            .ok_or(RemoteError::NoSuchProcess(pid))?,
    };
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
    if status
        .lines()
        .any(|l| l.starts_with("x86_Thread_features:") && l.contains("shstk"))
    {
        return Err(RemoteError::Unsupported {
            pid,
            what: "its thread uses a shadow stack, which a remote call's return would violate"
                .into(),
        });
    }
    Ok(tid)
}
