//! The record file of this process: `MEMCHECK_DIR/PID-STARTNS.mcr`, opened on first use (and anew
//! in a forked child), each record written with one `write(2)` on an `O_APPEND` descriptor so a
//! crash right after a report still leaves it complete.
use crate::{depot, modules, opts, spin::SpinLock, sys};
use core::fmt::Write;
use core::sync::atomic::{AtomicI32, Ordering};
use memcheck_wire::{Module, Process, Record, Stack};
use rust_alloc::vec::Vec;

static FD: AtomicI32 = AtomicI32::new(-1);
/// Serializes opening the file and the sets of what was written.
static STATE: SpinLock<Written> = SpinLock::new(Written {
    stacks: Vec::new(),
    modules: Vec::new(),
});

struct Written {
    /// Bitset of stack ids already written to this file.
    stacks: Vec<u64>,
    /// (bias, start) of modules already written.
    modules: Vec<(usize, usize)>,
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn open_file() -> i32 {
    if !opts::ACTIVE.load(Ordering::Relaxed) {
        return -1;
    }
    let start = now_ns();
    crate::stats::publish(start);
    let mut path = sys::FixedBuf::<4200>::new();
    // SAFETY: DIR is written once during init, before any record is opened.
    let dir = unsafe { &*core::ptr::addr_of!(opts::DIR) };
    let dlen = dir.iter().position(|&b| b == 0).unwrap_or(0);
    path.buf[..dlen].copy_from_slice(&dir[..dlen]);
    path.len = dlen;
    let suffix = memcheck_wire::RECORD_SUFFIX;
    let _ = write!(path, "/{}-{}{suffix}\0", sys::getpid(), start);
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path.buf.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_APPEND | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        crate::log!("cannot create the record file in MEMCHECK_DIR (errno {}); no report will be written for pid {}", sys::errno(), sys::getpid());
        return -1;
    }
    let mut hdr = [0u8; memcheck_wire::HEADER_LEN];
    memcheck_wire::encode_header(&mut hdr);
    sys::write_all(fd, &hdr);
    let exe = modules::exe_path();
    let mut cmdline = rust_alloc::vec![0u8; 8192];
    let n = sys::read_file(c"/proc/self/cmdline", &mut cmdline);
    cmdline.truncate(n);
    let rec = Record::Process(Process {
        pid: sys::getpid(),
        // SAFETY: getppid has no preconditions.
        ppid: unsafe { libc::getppid() } as u32,
        start_ns: start,
        exe: &exe,
        cmdline: &cmdline,
    });
    write_to(fd, &rec);
    fd
}

fn write_to(fd: i32, rec: &Record) {
    // Most records fit a small stack buffer (threads may have small stacks); the rest go through
    // a private-heap buffer.
    let mut buf = [0u8; 1536];
    if let Some(n) = rec.encode(&mut buf) {
        sys::write_all(fd, &buf[..n]);
        return;
    }
    let mut big = rust_alloc::vec![0u8; 16384];
    if let Some(n) = rec.encode(&mut big) {
        sys::write_all(fd, &big[..n]);
    }
}

fn fd() -> i32 {
    let fd = FD.load(Ordering::Acquire);
    if fd >= 0 {
        return fd;
    }
    let _g = STATE.lock();
    let fd = FD.load(Ordering::Acquire);
    if fd >= 0 {
        return fd;
    }
    let fd = open_file();
    FD.store(fd, Ordering::Release);
    fd
}

/// Opens the file now (at init) so every process appears in the report.
pub fn open() {
    fd();
}

/// Writes one record.
pub fn emit(rec: &Record) {
    let fd = fd();
    if fd >= 0 {
        write_to(fd, rec);
    }
}

/// Writes the stack `id` unless this file already has it.
pub fn emit_stack(id: u32) {
    if id == 0 {
        return;
    }
    let fd = fd();
    if fd < 0 {
        return;
    }
    {
        let mut w = STATE.lock();
        let (word, bit) = (id as usize / 64, id % 64);
        if w.stacks.len() <= word {
            w.stacks.resize(word + 1, 0);
        }
        if w.stacks[word] & (1 << bit) != 0 {
            return;
        }
        w.stacks[word] |= 1 << bit;
    }
    let frames = depot::frames(id);
    let mut raw = [0u8; memcheck_wire::MAX_FRAMES * 8];
    let n = frames.len().min(memcheck_wire::MAX_FRAMES);
    for (i, f) in frames[..n].iter().enumerate() {
        raw[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
    }
    write_to(
        fd,
        &Record::Stack(Stack {
            id,
            raw: &raw[..n * 8],
        }),
    );
}

/// Writes the modules this file does not have yet.
pub fn emit_modules() {
    let fd = fd();
    if fd < 0 {
        return;
    }
    let mods = modules::all();
    let exe = modules::exe_path();
    for (i, m) in mods.iter().enumerate() {
        {
            let mut w = STATE.lock();
            if w.modules.contains(&(m.bias, m.start)) {
                continue;
            }
            w.modules.push((m.bias, m.start));
        }
        let path: &[u8] = if i == 0 && m.path.is_empty() {
            &exe
        } else {
            &m.path
        };
        if path.is_empty() || path.starts_with(b"linux-vdso") {
            continue;
        }
        write_to(
            fd,
            &Record::Module(Module {
                start: m.start as u64,
                end: m.end as u64,
                bias: m.bias as u64,
                path,
            }),
        );
    }
}

/// In a forked child: forget the parent's file; the next record opens the child's own.
pub fn after_fork_child() {
    let fd = FD.swap(-1, Ordering::AcqRel);
    if fd >= 0 {
        // SAFETY: the child's copy of the parent's descriptor is ours to close.
        unsafe { libc::close(fd) };
    }
    // SAFETY: the fork child handler runs single-threaded with STATE's lock held by prepare.
    let w = unsafe { STATE.held() };
    w.stacks.clear();
    w.modules.clear();
}

pub fn lock() {
    STATE.raw_lock();
}
pub fn unlock() {
    STATE.raw_unlock();
}
