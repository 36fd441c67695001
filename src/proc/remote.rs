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
use procfs::process::{MMPermissions, MMapPath, MemoryMap, Process};
use procfs::{FromBufRead, ProcError};
use serde::Serialize;
use std::path::{Path, PathBuf};
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
        let target = Target::inspect(pid)?;
        let opts = opts.clone();
        std::thread::Builder::new()
            .name("memcheck-ptrace".into())
            .spawn(move || x86::run(&target, &opts))
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

/// glibc as mapped in a process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LibcMapping {
    /// The file as the process names it (without a " (deleted)" suffix).
    pub path: PathBuf,
    /// The file was replaced or removed since it was mapped.
    pub deleted: bool,
    /// The mapping of file offset 0: its start is where the file's first page is loaded.
    pub first: (u64, u64),
    /// Executable ranges of the file.
    pub code: Vec<(u64, u64)>,
}

impl LibcMapping {
    /// True when `addr` lies in libc's code.
    pub fn in_code(&self, addr: u64) -> bool {
        self.code.iter().any(|&(lo, hi)| (lo..hi).contains(&addr))
    }
}

/// True for the file names glibc's C library has had: `libc.so.6`, and `libc-2.NN.so` before 2.34.
fn is_glibc_name(name: &str) -> bool {
    name == "libc.so.6"
        || name
            .strip_prefix("libc-")
            .and_then(|r| r.strip_suffix(".so"))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// Finds glibc in a process's memory map (the first file named like it that is mapped from
/// offset 0), or `None` for a static program or another C library.
fn find_libc(maps: &[MemoryMap]) -> Option<LibcMapping> {
    let named = |m: &MemoryMap| match &m.pathname {
        MMapPath::Path(p) => {
            let s = p.to_string_lossy();
            let (s, deleted) = match s.strip_suffix(" (deleted)") {
                Some(s) => (s.to_string(), true),
                None => (s.into_owned(), false),
            };
            let name = Path::new(&s).file_name()?.to_string_lossy().into_owned();
            is_glibc_name(&name).then(|| (PathBuf::from(s), deleted))
        }
        _ => None,
    };
    let (first, (path, deleted)) = maps
        .iter()
        .filter(|m| m.offset == 0)
        .find_map(|m| Some((m, named(m)?)))?;
    let code = maps
        .iter()
        .filter(|m| {
            m.perms.contains(MMPermissions::EXECUTE) && named(m).is_some_and(|(p, _)| p == path)
        })
        .map(|m| m.address)
        .collect();
    Some(LibcMapping {
        path,
        deleted,
        first: first.address,
        code,
    })
}

/// Where a process's live `stderr` pointer is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StderrRef {
    /// libc's GOT slot for `stderr`: holds the address of the variable libc's own code uses, which
    /// is the executable's copy when the executable refers to `stderr` (a copy relocation).
    Got(u64),
    /// The variable itself (when libc has no relocation for it).
    Var(u64),
}

/// The parts of libc memcheck calls or reads, as link-time addresses of the file.
#[derive(Debug, Clone)]
struct LibcSymbols {
    pub mallinfo2: u64,
    pub malloc_stats: u64,
    pub syscall: u64,
    pub errno_location: u64,
    pub ftrylockfile: u64,
    pub funlockfile: u64,
    pub stderr: StderrRef,
    /// Link-time address of the page loaded at the start of the offset-0 mapping.
    pub first_page: u64,
    /// The first bytes of each function in the file, to check the process mapped the same file.
    pub probes: Vec<(u64, Vec<u8>)>,
}

/// Why a libc file cannot serve.
#[derive(Debug, PartialEq, Eq)]
enum ImageError {
    NotElf,
    /// Class or machine other than 64-bit x86_64 (described).
    WrongArch(String),
    /// A symbol memcheck needs is not there (glibc older than 2.33 has no `mallinfo2`).
    Missing(&'static str),
    /// The symbol is a GNU indirect function, whose address is a resolver.
    Indirect(&'static str),
}

const FUNCTIONS: [&str; 6] = [
    "mallinfo2",
    "malloc_stats",
    "syscall",
    "__errno_location",
    "ftrylockfile",
    "funlockfile",
];
const PROBE_LEN: usize = 16;

/// Reads the symbols memcheck needs from a libc image. Of several versions of a symbol, the
/// default one (`name@@VERSION`) is taken, as the linker would.
fn parse_libc(image: &[u8]) -> Result<LibcSymbols, ImageError> {
    use goblin::elf::{header, program_header::PT_LOAD, sym::STT_GNU_IFUNC, Elf};
    let elf = Elf::parse(image).map_err(|_| ImageError::NotElf)?;
    if !elf.is_64 || elf.header.e_machine != header::EM_X86_64 {
        return Err(ImageError::WrongArch(format!(
            "its libc is {}-bit {}",
            if elf.is_64 { 64 } else { 32 },
            header::machine_to_str(elf.header.e_machine)
        )));
    }
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let first = loads
        .iter()
        .find(|p| p.p_offset == 0)
        .ok_or(ImageError::NotElf)?;
    let first_page = first.p_vaddr & !(first.p_align.max(4096) - 1);
    let file_at = |vaddr: u64, len: usize| {
        let p = loads
            .iter()
            .find(|p| (p.p_vaddr..p.p_vaddr + p.p_filesz).contains(&vaddr))?;
        let off = usize::try_from(vaddr - p.p_vaddr + p.p_offset).ok()?;
        image.get(off..off + len).map(<[u8]>::to_vec)
    };
    let mut addr = [0u64; FUNCTIONS.len()];
    let mut probes = Vec::new();
    for (slot, name) in addr.iter_mut().zip(FUNCTIONS) {
        let sym = lookup(&elf, name).ok_or(ImageError::Missing(name))?;
        if sym.st_type() == STT_GNU_IFUNC {
            return Err(ImageError::Indirect(name));
        }
        *slot = sym.st_value;
        probes.push((
            sym.st_value,
            file_at(sym.st_value, PROBE_LEN).ok_or(ImageError::NotElf)?,
        ));
    }
    let var = lookup(&elf, "stderr").ok_or(ImageError::Missing("stderr"))?;
    let got = elf
        .dynrelas
        .iter()
        .find(|r| {
            r.r_type == goblin::elf::reloc::R_X86_64_GLOB_DAT
                && elf
                    .dynsyms
                    .get(r.r_sym)
                    .and_then(|s| elf.dynstrtab.get_at(s.st_name))
                    == Some("stderr")
        })
        .map(|r| r.r_offset);
    let [mallinfo2, malloc_stats, syscall, errno_location, ftrylockfile, funlockfile] = addr;
    Ok(LibcSymbols {
        mallinfo2,
        malloc_stats,
        syscall,
        errno_location,
        ftrylockfile,
        funlockfile,
        stderr: got.map_or(StderrRef::Var(var.st_value), StderrRef::Got),
        first_page,
        probes,
    })
}

/// The defined dynamic symbol `name`, its default version preferred.
fn lookup(elf: &goblin::elf::Elf, name: &str) -> Option<goblin::elf::Sym> {
    let mut hidden = None;
    for (i, sym) in elf.dynsyms.iter().enumerate() {
        if sym.st_shndx == 0 || elf.dynstrtab.get_at(sym.st_name) != Some(name) {
            continue;
        }
        if elf
            .versym
            .as_ref()
            .and_then(|v| v.get_at(i))
            .is_some_and(|v| v.is_hidden())
        {
            hidden.get_or_insert(sym);
        } else {
            return Some(sym);
        }
    }
    hidden
}

/// What decides why ptrace was refused.
#[derive(Debug, Clone, Default)]
struct Access {
    /// `TracerPid` of the thread (0: none).
    pub tracer: i32,
    pub tracer_name: String,
    /// Real, effective, saved and filesystem uid of the process.
    pub uids: [u32; 4],
    /// Owner of `/proc/PID/status`: root for a process that made itself non-dumpable.
    pub proc_owner: Option<u32>,
    /// memcheck's effective uid.
    pub me: u32,
    /// memcheck has CAP_SYS_PTRACE.
    pub cap_sys_ptrace: bool,
    /// `kernel.yama.ptrace_scope`, when Yama is built in.
    pub yama: Option<u32>,
}

/// Turns a refusal into the error that names the likeliest cause and what to do.
fn explain_denial(pid: i32, a: &Access) -> RemoteError {
    if a.tracer != 0 {
        return RemoteError::AlreadyTraced {
            pid,
            tracer: a.tracer,
            tracer_name: a.tracer_name.clone(),
        };
    }
    let reason = if !a.cap_sys_ptrace && a.uids.iter().any(|&u| u != a.me) {
        let owner = if a.uids[0] == a.uids[1] {
            a.uids[0]
        } else {
            a.uids[1]
        };
        if a.uids.iter().all(|&u| u == owner) {
            format!("it runs as uid {owner} and memcheck as uid {}; run memcheck as that user, or as root", a.me)
        } else {
            format!(
                "it has changed uids ({:?}, a set-id program?); run memcheck as root, or with CAP_SYS_PTRACE",
                a.uids
            )
        }
    } else if a.yama == Some(3) {
        "ptrace is disabled on this system (kernel.yama.ptrace_scope=3) until the next reboot"
            .to_string()
    } else if a.yama == Some(2) && !a.cap_sys_ptrace {
        "only processes with CAP_SYS_PTRACE may trace (kernel.yama.ptrace_scope=2); run memcheck as root".to_string()
    } else if a.yama == Some(1) && !a.cap_sys_ptrace {
        "only a parent may trace its children (kernel.yama.ptrace_scope=1); run `sysctl \
         kernel.yama.ptrace_scope=0`, or run memcheck as root or with CAP_SYS_PTRACE"
            .to_string()
    } else if !a.cap_sys_ptrace && a.proc_owner == Some(0) && a.uids[0] != 0 {
        "it made itself non-dumpable (prctl PR_SET_DUMPABLE, or a set-id program); run memcheck as root".to_string()
    } else if !a.cap_sys_ptrace {
        "ptrace was refused (a security module, or a container without CAP_SYS_PTRACE); in a container \
         add --cap-add=SYS_PTRACE, or run memcheck as root"
            .to_string()
    } else {
        "ptrace was refused although memcheck has CAP_SYS_PTRACE (a security module such as SELinux or \
         AppArmor, or a container's seccomp profile); allow ptrace for memcheck"
            .to_string()
    };
    RemoteError::PermissionDenied { pid, reason }
}

fn gather_access(pid: i32, tid: i32) -> Access {
    const CAP_SYS_PTRACE: u64 = 19;
    let status = Process::new(pid)
        .and_then(|p| p.task_from_tid(tid))
        .and_then(|t| t.status())
        .ok();
    let tracer = status.as_ref().map_or(0, |s| s.tracerpid);
    let me = Process::myself().and_then(|p| p.status()).ok();
    Access {
        tracer,
        tracer_name: std::fs::read_to_string(format!("/proc/{tracer}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
        uids: status
            .as_ref()
            .map_or([0; 4], |s| [s.ruid, s.euid, s.suid, s.fuid]),
        proc_owner: std::fs::metadata(format!("/proc/{pid}/status"))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m)),
        me: nix::unistd::geteuid().as_raw(),
        cap_sys_ptrace: me.is_some_and(|s| s.capeff & (1 << CAP_SYS_PTRACE) != 0),
        yama: std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    }
}

/// True when registers stopped in a thread show it waiting in `futex` (a lock wait): the syscall
/// number is futex's and the result is a restart code or EINTR, as after an interrupt.
fn is_futex_wait(orig_rax: u64, rax: u64) -> bool {
    const SYS_FUTEX: i64 = 202;
    // -EINTR, -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK
    orig_rax as i64 == SYS_FUTEX && matches!(rax as i64, -4 | -512 | -513 | -514 | -516)
}

/// glibc's `FILE` on x86_64 (`bits/types/struct_FILE.h`, a stable ABI), checked by a test against
/// the headers, and the flags memcheck reads.
mod file_abi {
    pub const SIZE: usize = 216;
    pub const FLAGS: usize = 0;
    pub const WRITE_BASE: usize = 32;
    pub const WRITE_PTR: usize = 40;
    pub const FILENO: usize = 112;
    pub const FLAGS2: usize = 116;
    pub const LOCK: usize = 136;
    pub const MODE: usize = 192;
    pub const MAGIC_MASK: u32 = 0xffff_0000;
    pub const MAGIC: u32 = 0xfbad_0000;
    pub const UNBUFFERED: u32 = 0x2;
    pub const NO_WRITES: u32 = 0x8;
    pub const USER_LOCK: u32 = 0x8000;
    /// `_IO_FLAGS2_NEED_LOCK`: set once the process has had a second thread; without it stdio may
    /// skip locking.
    pub const NEED_LOCK: u32 = 128;
}

/// The fields of a `FILE` that decide whether `malloc_stats` may print through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileView {
    pub flags: u32,
    pub flags2: u32,
    pub write_base: u64,
    pub write_ptr: u64,
    pub lock: u64,
    pub mode: i32,
}

impl FileView {
    /// Reads the fields from the `FILE`'s bytes (at least [`file_abi::SIZE`]).
    pub fn parse(b: &[u8]) -> Option<FileView> {
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        Some(FileView {
            flags: u32_at(file_abi::FLAGS)?,
            flags2: u32_at(file_abi::FLAGS2)?,
            write_base: u64_at(file_abi::WRITE_BASE)?,
            write_ptr: u64_at(file_abi::WRITE_PTR)?,
            lock: u64_at(file_abi::LOCK)?,
            mode: u32_at(file_abi::MODE)? as i32,
        })
    }

    /// Why this stream cannot take `malloc_stats`' text at all, if it cannot.
    pub fn unusable(&self) -> Option<&'static str> {
        use file_abi::*;
        Some(if self.flags & MAGIC_MASK != MAGIC {
            "stderr does not look like a glibc FILE"
        } else if self.flags & NO_WRITES != 0 {
            "stderr is closed in the process"
        } else if self.flags & USER_LOCK != 0 {
            "the program locks stderr itself (__fsetlocking), so it cannot be borrowed safely"
        } else if self.flags & UNBUFFERED == 0 {
            "stderr is buffered in the process (setvbuf), so the text would stay in its buffer"
        } else if self.mode > 0 {
            "stderr is wide-oriented in the process"
        } else if self.lock == 0 {
            "stderr has no lock in the process"
        } else {
            return None;
        })
    }

    /// Output is waiting in the stream's buffer (the program is in the middle of writing).
    pub fn pending_output(&self) -> bool {
        self.write_ptr != self.write_base
    }
}

/// A process checked and resolved before it is stopped.
struct Target {
    pid: i32,
    libc: LibcMapping,
    /// Symbols at their addresses in the process.
    syms: LibcSymbols,
}

impl Target {
    fn inspect(pid: i32) -> Result<Target, RemoteError> {
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
fn live_thread(pid: i32) -> Result<i32, RemoteError> {
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

/// Reads `len` bytes of process memory.
fn read_mem(tid: i32, addr: u64, len: usize) -> Result<Vec<u8>, nix::errno::Errno> {
    use nix::sys::uio::{process_vm_readv, RemoteIoVec};
    let mut buf = vec![0u8; len];
    let n = process_vm_readv(
        nix::unistd::Pid::from_raw(tid),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &[RemoteIoVec {
            base: addr as usize,
            len,
        }],
    )?;
    if n == len {
        Ok(buf)
    } else {
        Err(nix::errno::Errno::EFAULT)
    }
}

/// Writes process memory (respecting its page protections).
fn write_mem(tid: i32, addr: u64, data: &[u8]) -> Result<(), nix::errno::Errno> {
    use nix::sys::uio::{process_vm_writev, RemoteIoVec};
    let n = process_vm_writev(
        nix::unistd::Pid::from_raw(tid),
        &[std::io::IoSlice::new(data)],
        &[RemoteIoVec {
            base: addr as usize,
            len: data.len(),
        }],
    )?;
    if n == data.len() {
        Ok(())
    } else {
        Err(nix::errno::Errno::EFAULT)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The ptrace session on x86_64: attach, save, call, restore, detach.
    use super::*;
    use libc::user_regs_struct;
    use nix::errno::Errno;
    use nix::sys::ptrace;
    use nix::unistd::Pid;
    use std::time::Instant;

    /// Pause between attempts, so a thread holding a lock can release it.
    const RETRY_PAUSE: Duration = Duration::from_millis(50);
    /// Scratch stack mapped in the process for the calls (fprintf needs ~10 KiB).
    const SCRATCH: u64 = 256 * 1024;
    /// Bytes saved and used on the thread's own stack, below its red zone.
    const AREA: u64 = 256;
    const RED_ZONE: u64 = 128;
    const NT_PRFPREG: usize = 2;
    const NT_X86_XSTATE: usize = 0x202;
    const PTRACE_GETREGSET: libc::c_uint = 0x4204;
    const PTRACE_SETREGSET: libc::c_uint = 0x4205;
    const PTRACE_EVENT_STOP: i32 = 128;
    const EFLAGS_TF: u64 = 1 << 8;
    const EFLAGS_DF: u64 = 1 << 10;
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

    /// Issues a ptrace request with raw arguments.
    ///
    /// # Safety
    /// `addr` and `data` must be what `request` expects; any pointer among them must be valid for
    /// the kernel to read or write as that request does.
    unsafe fn ptrace_raw(
        request: libc::c_uint,
        tid: i32,
        addr: usize,
        data: usize,
    ) -> Result<(), Errno> {
        // SAFETY: the caller upholds the request's contract.
        let r = unsafe {
            libc::ptrace(
                request,
                tid,
                addr as *mut libc::c_void,
                data as *mut libc::c_void,
            )
        };
        if r == -1 {
            Err(Errno::last())
        } else {
            Ok(())
        }
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
            let flags =
                libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT | libc::WNOHANG | libc::__WALL;
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
                    Some(Event::Signal(sig)) => {
                        cont(tid, sig).map_err(|e| s.fail("PTRACE_CONT", e))?
                    }
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
            debug_assert_eq!(sp % 16, 8);
            let tid = self.tid;
            let mut regs = self.saved().regs;
            for (reg, &v) in [
                &mut regs.rdi,
                &mut regs.rsi,
                &mut regs.rdx,
                &mut regs.rcx,
                &mut regs.r8,
                &mut regs.r9,
            ]
            .into_iter()
            .zip(args)
            {
                *reg = v;
            }
            let frame: Vec<u8> = std::iter::once(0u64)
                .chain(args.iter().skip(6).copied())
                .flat_map(u64::to_ne_bytes)
                .collect();
            self.write(sp, &frame)?;
            regs.rip = func;
            regs.rsp = sp;
            regs.rax = 0; // no vector registers for variadic functions
            regs.orig_rax = u64::MAX; // not in a syscall: no restart applied to these registers
            regs.eflags &= !(EFLAGS_TF | EFLAGS_DF);
            ptrace::setregs(Pid::from_raw(tid), regs)
                .map_err(|e| self.fail("PTRACE_SETREGS", e))?;
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
            let mapped =
                self.syscall(libc::SYS_mmap, &[0, SCRATCH, prot, flags, u64::MAX, 0], sp)?;
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
            let outcome = match FileView::parse(&saved).map(|v| (v.unusable(), v.pending_output()))
            {
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
                    return Err(
                        self.err("stderr's lock changed owner during the call; left as it is")
                    );
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
            let word = |r: std::ops::Range<usize>| {
                b[r].iter().rev().fold(0u64, |v, &x| v << 8 | u64::from(x))
            };
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
            closed?
                .map_err(|e| self.err(format!("closing the memfd in the process failed: {e}")))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
