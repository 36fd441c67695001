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
    use super::abi::is_futex_wait;
    use super::glibc::*;
    use super::memory::read_mem;
    use super::permission::*;
    use super::*;
    use procfs::process::{MemoryMap, Process};
    use std::path::Path;

    fn maps(text: &str) -> Vec<MemoryMap> {
        use procfs::FromBufRead;
        procfs::process::MemoryMaps::from_buf_read(text.as_bytes())
            .unwrap()
            .into_iter()
            .collect()
    }

    const MAPS: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234 /usr/bin/prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 fe:01 1234 /usr/bin/prog
7f1a2b600000-7f1a2b626000 r--p 00000000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b626000-7f1a2b77b000 r-xp 00026000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b77b000-7f1a2b7ce000 r--p 0017b000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b7ce000-7f1a2b7d2000 r--p 001cd000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b7d2000-7f1a2b7d4000 rw-p 001d1000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
";

    #[test]
    fn finds_libc_and_its_code() {
        let l = find_libc(&maps(MAPS)).unwrap();
        assert_eq!(l.path, Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!l.deleted);
        assert_eq!(l.first, (0x7f1a2b600000, 0x7f1a2b626000));
        assert_eq!(l.code, vec![(0x7f1a2b626000, 0x7f1a2b77b000)]);
        assert!(l.in_code(0x7f1a2b700000));
        assert!(!l.in_code(0x7f1a2b600010));
    }

    #[test]
    fn old_names_deleted_files_and_absent_libc() {
        let old = "7f00-7f10 r-xp 00000000 08:01 1 /lib/x86_64-linux-gnu/libc-2.31.so (deleted)\n";
        let l = find_libc(&maps(old)).unwrap();
        assert_eq!(l.path, Path::new("/lib/x86_64-linux-gnu/libc-2.31.so"));
        assert!(l.deleted);
        assert_eq!(l.code, vec![(0x7f00, 0x7f10)]);
        let not = "\
00400000-00401000 r-xp 00000000 08:01 1 /usr/bin/static
7f00-7f10 r-xp 00000000 08:01 2 /lib/ld-musl-x86_64.so.1
7f20-7f30 r-xp 00000000 08:01 3 /usr/lib/libcrypto.so.3
7f40-7f50 r-xp 00000000 08:01 3 /usr/lib/libc.so.6.backup
";
        assert_eq!(find_libc(&maps(not)), None);
        assert!(
            is_glibc_name("libc-2.17.so")
                && !is_glibc_name("libc-client.so")
                && !is_glibc_name("libcap.so.2")
        );
    }

    /// The libc this test binary runs on, found the way a target's is.
    fn own_libc() -> (LibcMapping, Vec<u8>) {
        let me: Vec<MemoryMap> = Process::myself()
            .unwrap()
            .maps()
            .unwrap()
            .into_iter()
            .collect();
        let l = find_libc(&me).expect("the test binary uses glibc");
        let image = std::fs::read(&l.path).unwrap();
        (l, image)
    }

    #[test]
    fn resolves_the_real_libc_and_matches_the_loaded_code() {
        let (l, image) = own_libc();
        let s = parse_libc(&image).unwrap();
        let bias = l.first.0 - s.first_page;
        assert_eq!(
            s.mallinfo2 + bias,
            libc::mallinfo2 as *const () as usize as u64
        );
        assert_eq!(
            s.malloc_stats + bias,
            libc::malloc_stats as *const () as usize as u64
        );
        assert_eq!(
            s.errno_location + bias,
            libc::__errno_location as *const () as usize as u64
        );
        assert!(l.in_code(s.syscall + bias));
        for (vaddr, bytes) in &s.probes {
            assert_eq!(
                &read_mem(std::process::id() as i32, vaddr + bias, bytes.len()).unwrap(),
                bytes
            );
        }
        // The GOT slot holds the address of the `stderr` this process's libc uses.
        let StderrRef::Got(slot) = s.stderr else {
            panic!("glibc reads stderr through its GOT")
        };
        let var = u64::from_ne_bytes(
            read_mem(std::process::id() as i32, slot + bias, 8)
                .unwrap()
                .try_into()
                .unwrap(),
        );
        extern "C" {
            static stderr: *mut libc::FILE;
        }
        // SAFETY: reading the address of an extern static, not its value.
        assert_eq!(var, std::ptr::addr_of!(stderr) as u64);
    }

    #[test]
    fn default_symbol_versions_win() {
        let (_, image) = own_libc();
        let elf = goblin::elf::Elf::parse(&image).unwrap();
        // realpath@@GLIBC_2.3 is the default; realpath@GLIBC_2.2.5 an older, hidden version.
        let all: Vec<u64> = elf
            .dynsyms
            .iter()
            .filter(|s| elf.dynstrtab.get_at(s.st_name) == Some("realpath"))
            .map(|s| s.st_value)
            .collect();
        assert_eq!(all.len(), 2, "glibc has two versions of realpath");
        let (l, _) = own_libc();
        let bias = l.first.0 - parse_libc(&image).unwrap().first_page;
        assert_eq!(
            lookup(&elf, "realpath").unwrap().st_value + bias,
            libc::realpath as *const () as usize as u64
        );
        assert!(lookup(&elf, "no_such_symbol_here").is_none());
    }

    #[test]
    fn refuses_images_that_cannot_serve() {
        assert_eq!(parse_libc(b"not an elf").unwrap_err(), ImageError::NotElf);
        let (_, mut image) = own_libc();
        image[18] = 3; // e_machine = EM_386
        assert!(matches!(parse_libc(&image), Err(ImageError::WrongArch(w)) if w.contains("386")));
    }

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

    #[test]
    fn futex_waits_are_told_from_other_stops() {
        let neg = |e: i64| (-e) as u64;
        assert!(is_futex_wait(202, neg(512)));
        assert!(is_futex_wait(202, neg(4)));
        assert!(!is_futex_wait(202, 0)); // returned: woken, may hold the lock now
        assert!(!is_futex_wait(0, neg(512))); // read
        assert!(!is_futex_wait(u64::MAX, neg(512))); // user code
    }

    #[test]
    fn denials_name_the_cause_and_the_fix() {
        let base = Access {
            uids: [1000; 4],
            me: 1000,
            proc_owner: Some(1000),
            ..Access::default()
        };
        let msg = |a: &Access| explain_denial(7, a).to_string();
        let traced = Access {
            tracer: 42,
            tracer_name: "gdb".into(),
            ..base.clone()
        };
        assert!(matches!(
            explain_denial(7, &traced),
            RemoteError::AlreadyTraced { tracer: 42, .. }
        ));
        assert!(msg(&traced).contains("gdb"));
        let other = Access {
            uids: [0; 4],
            ..base.clone()
        };
        assert!(
            msg(&other).contains("runs as uid 0 and memcheck as uid 1000"),
            "{}",
            msg(&other)
        );
        let setid = Access {
            uids: [1000, 0, 0, 0],
            ..base.clone()
        };
        assert!(msg(&setid).contains("set-id"));
        assert!(msg(&Access {
            yama: Some(1),
            ..base.clone()
        })
        .contains("ptrace_scope=0"));
        assert!(msg(&Access {
            yama: Some(2),
            ..base.clone()
        })
        .contains("CAP_SYS_PTRACE"));
        assert!(msg(&Access {
            yama: Some(3),
            ..base.clone()
        })
        .contains("reboot"));
        assert!(msg(&Access {
            proc_owner: Some(0),
            ..base.clone()
        })
        .contains("non-dumpable"));
        assert!(msg(&base).contains("--cap-add=SYS_PTRACE"));
        // With CAP_SYS_PTRACE, uid and Yama 1/2 do not explain it.
        let cap = Access {
            cap_sys_ptrace: true,
            uids: [0; 4],
            yama: Some(1),
            ..base
        };
        assert!(msg(&cap).contains("security module"));
        for a in [&traced, &other, &setid] {
            assert!(!msg(a).contains('\n'));
        }
    }

    fn file(flags: u32) -> FileView {
        FileView {
            flags,
            flags2: 0,
            write_base: 0,
            write_ptr: 0,
            lock: 0x1000,
            mode: 0,
        }
    }

    #[test]
    fn file_checks() {
        use file_abi::*;
        let ok = MAGIC | UNBUFFERED;
        assert_eq!(file(ok).unusable(), None);
        assert!(file(0x1234_0000 | UNBUFFERED)
            .unusable()
            .unwrap()
            .contains("glibc FILE"));
        assert!(file(ok | NO_WRITES).unusable().unwrap().contains("closed"));
        assert!(file(ok | USER_LOCK)
            .unusable()
            .unwrap()
            .contains("__fsetlocking"));
        assert!(file(MAGIC).unusable().unwrap().contains("buffered"));
        assert!(FileView {
            mode: 1,
            ..file(ok)
        }
        .unusable()
        .unwrap()
        .contains("wide"));
        assert!(FileView {
            lock: 0,
            ..file(ok)
        }
        .unusable()
        .unwrap()
        .contains("no lock"));
        assert!(FileView {
            write_base: 8,
            write_ptr: 9,
            ..file(ok)
        }
        .pending_output());
    }

    /// The FILE offsets and the lock layout, checked against this machine's headers and glibc.
    #[test]
    fn file_layout_matches_glibc() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(FILE), offsetof(FILE, _flags),
         offsetof(FILE, _IO_write_base), offsetof(FILE, _IO_write_ptr), offsetof(FILE, _fileno),
         offsetof(FILE, _flags2), offsetof(FILE, _lock), offsetof(FILE, _mode));
  flockfile(stderr); flockfile(stderr);
  int *l = (int *)stderr->_lock;
  printf("%d %d %d %d\n", l[0] != 0, l[1], *(void **)(l + 2) == (void *)pthread_self(),
         (stderr->_flags & 0xffff0000u) == 0xfbad0000u && (stderr->_flags & 2));
  return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("f");
        let cc = std::process::Command::new("gcc")
            .arg("-pthread")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let out = std::process::Command::new(&exe).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        use file_abi::*;
        let want = format!(
            "{SIZE} {FLAGS} {WRITE_BASE} {WRITE_PTR} {FILENO} {FLAGS2} {LOCK} {MODE}\n1 2 1 1\n"
        );
        assert_eq!(text, want);
    }
}
