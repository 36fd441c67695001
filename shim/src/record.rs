//! The record file of this process: `MEMCHECK_DIR/PID-STARTNS.mcr`, created at start-up (and anew
//! in a forked child).
//!
//! No descriptor is relied on between records: each write opens the file by its path
//! (`O_APPEND`), writes whole records with one `write(2)` and closes it again. (A spare
//! descriptor at a high number serves only when the program has used up every descriptor, and
//! only after checking it still refers to this file.) A program that
//! closes every descriptor, `dup2`s `/dev/null` over them or opens its own files on the numbers
//! memcheck used therefore neither loses the report nor receives memcheck's records in its files.
//! The exit report (many records at once) is gathered in a buffer and written in large pieces
//! ([`batch`]). A write that fails is counted and said aloud on stderr, and the count reaches the
//! report as a note when a later write succeeds, so an incomplete report never passes silently.
use crate::{depot, modules, opts, spin::SpinLock, sys};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use memcheck_wire::{Module, Process, Record, Stack};
use rust_alloc::vec::Vec;

/// The record file's NUL-terminated path. Written only while the process has one thread that
/// can use it (at start-up, in the fork child handler) and before [`OPEN`] is set.
static mut PATH: sys::FixedBuf<4200> = sys::FixedBuf::new();
/// Whether the file exists (created, header and process record written) and `PATH` names it.
static OPEN: AtomicBool = AtomicBool::new(false);
/// A spare descriptor of the file at a high number, used only when `open` fails for want of
/// descriptors (`EMFILE`), and checked to still be this file (device and inode) before each use.
static SPARE_FD: AtomicI32 = AtomicI32::new(-1);
static FILE_ID: AtomicU64 = AtomicU64::new(0);
/// Records that could not be written, and the errno of the last failure.
static LOST: AtomicU64 = AtomicU64::new(0);
static LOST_ERRNO: AtomicU64 = AtomicU64::new(0);
/// Serializes the sets of what was written and the batch buffer.
static STATE: SpinLock<Written> = SpinLock::new(Written {
    stacks: Vec::new(),
    modules: Vec::new(),
    batch: None,
});

struct Written {
    /// Bitset of stack ids already written to this file.
    stacks: Vec<u64>,
    /// (bias, start) of modules already written.
    modules: Vec<(usize, usize)>,
    /// While [`batch`] runs: encoded records not yet written.
    batch: Option<Vec<u8>>,
}

/// A batch is written once it holds this many bytes.
const BATCH_FLUSH: usize = 256 << 10;

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The path of the record file, if it exists.
fn path() -> Option<&'static [u8]> {
    if !OPEN.load(Ordering::Acquire) {
        return None;
    }
    // SAFETY: PATH is not written again while OPEN is set (see PATH).
    let p = unsafe { &*core::ptr::addr_of!(PATH) };
    Some(&p.buf[..p.len])
}

/// Writes `bytes` (whole records) to the file: open, one `write(2)`, close.
fn write_out(bytes: &[u8]) {
    let Some(path) = path() else { return };
    let saved = sys::errno();
    // SAFETY: path is NUL-terminated (it ends with the NUL written by `create`).
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    let ok = if fd >= 0 {
        let ok = sys::write_all(fd, bytes);
        // SAFETY: fd was opened above and is closed once.
        unsafe { libc::close(fd) };
        ok
    } else {
        let e = sys::errno();
        let spare = SPARE_FD.load(Ordering::Relaxed);
        (e == libc::EMFILE || e == libc::ENFILE)
            && spare >= 0
            && file_id(spare) == Some(FILE_ID.load(Ordering::Relaxed))
            && sys::write_all(spare, bytes)
    };
    if !ok {
        lost(sys::errno());
    }
    if ok && LOST.load(Ordering::Relaxed) != 0 {
        note_lost();
    }
    sys::set_errno(saved);
}

/// The device and inode of what `fd` refers to, folded into one word.
fn file_id(fd: i32) -> Option<u64> {
    // SAFETY: an all-zero stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat writes into st; a closed fd just fails.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev << 40) ^ st.st_ino)
}

/// Keeps a spare descriptor of the new file `fd` at a high number (below 1024 and the limit).
fn keep_spare(fd: i32) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    let top = r.rlim_cur.min(1024) as i32 - 1;
    if top <= 2 {
        return;
    }
    // SAFETY: F_DUPFD_CLOEXEC duplicates fd onto the lowest free number >= top.
    let spare = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, top) };
    if spare >= 0 {
        if let Some(id) = file_id(spare) {
            FILE_ID.store(id, Ordering::Relaxed);
            SPARE_FD.store(spare, Ordering::Relaxed);
        }
    }
}

/// Counts a record that could not be written and says so (once) on stderr.
fn lost(errno: i32) {
    LOST_ERRNO.store(errno as u64, Ordering::Relaxed);
    if LOST.fetch_add(1, Ordering::Relaxed) == 0 {
        crate::log!(
            "cannot write to the record file in MEMCHECK_DIR (errno {errno}); the report of pid {} is incomplete",
            sys::getpid()
        );
    }
}

/// After a failed write, a later good one appends a note saying how many records are missing.
fn note_lost() {
    let n = LOST.swap(0, Ordering::Relaxed);
    if n == 0 {
        return;
    }
    let mut text = sys::FixedBuf::<160>::new();
    let _ = write!(
        text,
        "{n} {} (errno {}): this process's report is incomplete",
        memcheck_wire::NOTE_RECORDS_LOST,
        LOST_ERRNO.load(Ordering::Relaxed)
    );
    let rec = Record::Note(memcheck_wire::Note {
        text: text.as_bytes(),
    });
    let mut buf = [0u8; 256];
    if let Some(len) = rec.encode(&mut buf) {
        write_out(&buf[..len]);
    }
}

/// Creates this process's file (header and process record) and remembers its path.
fn create() {
    if !opts::ACTIVE.load(Ordering::Relaxed) {
        return;
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
            libc::O_WRONLY
                | libc::O_CREAT
                | libc::O_EXCL
                | libc::O_APPEND
                | libc::O_CLOEXEC
                | libc::O_NOFOLLOW,
            0o600,
        )
    };
    if fd < 0 {
        crate::log!("cannot create the record file in MEMCHECK_DIR (errno {}); no report will be written for pid {}", sys::errno(), sys::getpid());
        return;
    }
    let mut hdr = [0u8; memcheck_wire::HEADER_LEN];
    memcheck_wire::encode_header(&mut hdr);
    sys::write_all(fd, &hdr);
    keep_spare(fd);
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    // SAFETY: see PATH: no thread reads it before OPEN is set below.
    unsafe { *core::ptr::addr_of_mut!(PATH) = path };
    OPEN.store(true, Ordering::Release);
    let exe = modules::exe_path();
    let mut cmdline = rust_alloc::vec![0u8; 8192];
    let n = sys::read_file(c"/proc/self/cmdline", &mut cmdline);
    cmdline.truncate(n);
    emit(&Record::Process(Process {
        pid: sys::getpid(),
        // SAFETY: getppid has no preconditions.
        ppid: unsafe { libc::getppid() } as u32,
        start_ns: start,
        exe: &exe,
        cmdline: &cmdline,
    }));
}

/// Encodes a record and writes it, or adds it to the running batch.
fn write_rec(rec: &Record) {
    // Most records fit a small stack buffer (threads may have small stacks); the rest go through
    // a private-heap buffer.
    let mut small = [0u8; 1536];
    let mut big = Vec::new();
    let bytes: &[u8] = match rec.encode(&mut small) {
        Some(n) => &small[..n],
        None => {
            big.resize(16384, 0);
            match rec.encode(&mut big) {
                Some(n) => &big[..n],
                None => return,
            }
        }
    };
    {
        let mut w = STATE.lock();
        if let Some(b) = w.batch.as_mut() {
            b.extend_from_slice(bytes);
            if b.len() < BATCH_FLUSH {
                return;
            }
            let full = core::mem::take(b);
            drop(w);
            write_out(&full);
            return;
        }
    }
    write_out(bytes);
}

/// Creates the file now (at init) so every process appears in the report.
pub fn open() {
    create();
}

/// Runs `f` with its records gathered and written in large pieces (the exit report).
pub fn batch(f: impl FnOnce()) {
    STATE.lock().batch = Some(Vec::new());
    f();
    let rest = STATE.lock().batch.take();
    if let Some(b) = rest.filter(|b| !b.is_empty()) {
        write_out(&b);
    }
}

/// Writes one record.
pub fn emit(rec: &Record) {
    if OPEN.load(Ordering::Acquire) {
        write_rec(rec);
    }
}

/// Writes the stack `id` unless this file already has it.
pub fn emit_stack(id: u32) {
    if id == 0 || !OPEN.load(Ordering::Acquire) {
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
    write_rec(&Record::Stack(Stack {
        id,
        raw: &raw[..n * 8],
    }));
}

/// Writes the modules this file does not have yet.
pub fn emit_modules() {
    if !OPEN.load(Ordering::Acquire) {
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
        write_rec(&Record::Module(Module {
            start: m.start as u64,
            end: m.end as u64,
            bias: m.bias as u64,
            path,
        }));
    }
}

/// Forgets that modules `(bias, start)` were written: they were unloaded, and another object
/// loaded at the same place later gets a record of its own.
pub fn forget_modules(gone: &[(usize, usize)]) {
    STATE.lock().modules.retain(|m| !gone.contains(m));
}

/// In a forked child: forget the parent's file; [`open`] then creates the child's own.
pub fn after_fork_child() {
    OPEN.store(false, Ordering::Release);
    // The parent's spare descriptor: closed only if it still is the parent's file.
    let spare = SPARE_FD.swap(-1, Ordering::Relaxed);
    if spare >= 0 && file_id(spare) == Some(FILE_ID.load(Ordering::Relaxed)) {
        // SAFETY: spare refers to the parent's record file (checked just now), not to a file of
        // the program's.
        unsafe { libc::close(spare) };
    }
    LOST.store(0, Ordering::Relaxed);
    // SAFETY: the fork child handler runs single-threaded with STATE's lock held by prepare.
    let w = unsafe { STATE.held() };
    w.stacks.clear();
    w.modules.clear();
    w.batch = None;
}

pub fn lock() {
    STATE.raw_lock();
}
pub fn unlock() {
    STATE.raw_unlock();
}
