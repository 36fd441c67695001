//! The leak check at exit: a conservative mark phase over the process's memory, classifying every
//! live block as Valgrind does.
//!
//! Roots, as Valgrind's (memcheck's `mc_leakcheck.c` scans every readable *and* writable client
//! segment, file-backed, anonymous or shared, except char and block devices other than
//! `/dev/zero`): the writable segments of every loaded object (data, bss), and every readable and
//! writable mapping that is not allocator memory: other threads' stacks and their TLS, memory the
//! program mapped itself (CPython's arenas, the JVM's CDS archive mapped `MAP_PRIVATE` from a
//! file, `MAP_SHARED` files, shared anonymous memory, memfd and SysV shm segments). Read-only
//! memory is not a root (Valgrind's rule). Not roots: glibc's heap (`[heap]`, arena heaps, mappings
//! that hold live blocks), the shim's own memory, and the exiting thread's frames below its call
//! into `exit()` (exit's own frame, the exit handlers', and frames that returned before `exit`):
//! they are dead and would hide leaks. The exiting thread's stack from the stack pointer at that
//! call up to the stack's top (the callers' frames, and a worker thread's TLS above them) is a root,
//! and so are the caller's callee-saved registers at the call. Blocks reached from roots through
//! start pointers only are *reachable*; through an interior pointer somewhere on the way,
//! *possible*. Of the rest, a block that no other lost block points to is *definite*; what it
//! leads to is *indirect*.
use crate::{guard, heap, modules, real, record, table};
use core::ffi::{c_int, c_void};
use memcheck_wire::{Leak, LeakKind, LeakSummary, Record};
use rust_alloc::vec::Vec;

const UNREACHED: u8 = 0;
const POSSIBLE: u8 = 1;
const REACHABLE: u8 = 2;
const INDIRECT: u8 = 3;
const DEFINITE: u8 = 4;

/// Arena heaps of glibc are aligned to HEAP_MAX_SIZE (64 MiB on 64-bit).
const ARENA_ALIGN: usize = 64 << 20;

#[derive(Clone, Copy)]
struct Block {
    start: usize,
    size: usize,
    stack: u32,
    /// Allocated before this process was forked: the parent's, traced like a root and not
    /// reported here.
    inherited: bool,
}

struct Marker<'a> {
    blocks: &'a [Block],
    state: Vec<u8>,
    work: Vec<u32>,
    lo: usize,
    hi: usize,
}

impl<'a> Marker<'a> {
    fn new(blocks: &'a [Block]) -> Self {
        let lo = blocks.first().map_or(0, |b| b.start);
        let hi = blocks
            .iter()
            .map(|b| b.start + b.size.max(1))
            .max()
            .unwrap_or(0);
        Marker {
            blocks,
            state: rust_alloc::vec![UNREACHED; blocks.len()],
            work: Vec::new(),
            lo,
            hi,
        }
    }

    /// The block containing `addr`, and whether `addr` is its start.
    #[inline]
    fn find(&self, addr: usize) -> Option<(usize, bool)> {
        if addr < self.lo || addr >= self.hi {
            return None;
        }
        let i = self
            .blocks
            .partition_point(|b| b.start <= addr)
            .checked_sub(1)?;
        let b = &self.blocks[i];
        if addr < b.start + b.size.max(1) {
            Some((i, addr == b.start))
        } else {
            None
        }
    }

    /// Phase 1: a word seen in memory of strength `from` (REACHABLE roots, or a marked block).
    #[inline]
    fn see(&mut self, word: usize, from: u8) {
        if let Some((i, start)) = self.find(word) {
            let strength = if start && from == REACHABLE {
                REACHABLE
            } else {
                POSSIBLE
            };
            if self.state[i] < strength {
                self.state[i] = strength;
                self.work.push(i as u32);
            }
        }
    }

    fn scan_words(&mut self, words: &[usize], from: u8) {
        for &w in words {
            self.see(w, from);
        }
    }

    fn drain(&mut self) {
        while let Some(i) = self.work.pop() {
            let b = self.blocks[i as usize];
            let from = self.state[i as usize];
            // SAFETY: live blocks are glibc memory, readable for their size while the table is locked.
            unsafe { block_words(&b, |w| self.see(w, from)) };
        }
    }

    /// Phase 2: the lost block `leader` and everything only it leads to.
    fn clique(&mut self, leader: usize) {
        self.state[leader] = DEFINITE;
        self.work.push(leader as u32);
        while let Some(i) = self.work.pop() {
            let b = self.blocks[i as usize];
            // SAFETY: as in drain.
            unsafe {
                block_words(&b, |w| {
                    if let Some((c, _)) = self.find(w) {
                        match self.state[c] {
                            UNREACHED => {
                                self.state[c] = INDIRECT;
                                self.work.push(c as u32);
                            }
                            DEFINITE if c != leader => self.state[c] = INDIRECT,
                            _ => {}
                        }
                    }
                })
            };
        }
    }
}

/// Calls `f` with each word of a block, from its first byte in steps of 8: a guarded block may
/// start at an address aligned to less than 8 (its size's own alignment), and the pointers it
/// holds lie at multiples of 8 from its start, where the program's structures put them.
///
/// # Safety
/// The block must be live and readable.
unsafe fn block_words(b: &Block, mut f: impl FnMut(usize)) {
    let mut at = b.start;
    while at + 8 <= b.start + b.size {
        // SAFETY: [at, at + 8) lies inside the block, per the caller; it may be unaligned.
        f(unsafe { (at as *const usize).read_unaligned() });
        at += 8;
    }
}

/// Reads `[start, end)` of this process through `process_vm_readv` (a region that vanished or is
/// not readable just fails) and feeds its words to the marker. Where the system call is forbidden,
/// memory is read in place if `direct` (not for file mappings: past the file's end a read faults).
fn scan_region(m: &mut Marker, start: usize, end: usize, buf: &mut [usize], direct: bool) {
    let mut at = start & !7;
    let pid = nix_pid();
    while at < end {
        let len = (end - at).min(buf.len() * 8);
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: at as *mut _,
            iov_len: len,
        };
        // SAFETY: reads from our own address space into buf; faults become an error return.
        let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
        if n <= 0 {
            let e = crate::sys::errno();
            if direct && (e == libc::EPERM || e == libc::ENOSYS) {
                // The syscall is forbidden (seccomp): read directly; these mappings are readable.
                // SAFETY: [at, at+len) is inside a readable mapping listed by /proc/self/maps.
                let words = unsafe { core::slice::from_raw_parts(at as *const usize, len / 8) };
                m.scan_words(words, REACHABLE);
            }
            at += len;
            continue;
        }
        m.scan_words(&buf[..n as usize / 8], REACHABLE);
        at += n as usize;
    }
}

fn nix_pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

struct Mapping<'a> {
    start: usize,
    end: usize,
    readable: bool,
    writable: bool,
    path: &'a [u8],
}

fn parse_hex(s: &[u8]) -> usize {
    s.iter().fold(0usize, |n, &c| {
        n.wrapping_mul(16)
            + match c {
                b'0'..=b'9' => (c - b'0') as usize,
                b'a'..=b'f' => (c - b'a' + 10) as usize,
                _ => 0,
            }
    })
}

fn parse_maps(text: &[u8]) -> Vec<Mapping<'_>> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let mut f = line.splitn(6, |&b| b == b' ');
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let (_off, _dev, _inode) = (f.next(), f.next(), f.next());
        let path = f.next().map(|p| p.trim_ascii_start()).unwrap_or(b"");
        let mut r = range.splitn(2, |&b| b == b'-');
        let (Some(a), Some(b)) = (r.next(), r.next()) else {
            continue;
        };
        out.push(Mapping {
            start: parse_hex(a),
            end: parse_hex(b),
            readable: perms.first() == Some(&b'r'),
            writable: perms.get(1) == Some(&b'w'),
            path,
        });
    }
    out
}

fn read_maps() -> Vec<u8> {
    // /proc/self/maps can be long; grow until it fits.
    let mut cap = 256 << 10;
    loop {
        let mut buf = rust_alloc::vec![0u8; cap];
        let n = crate::sys::read_file(c"/proc/self/maps", &mut buf);
        if n < cap {
            buf.truncate(n);
            return buf;
        }
        cap *= 4;
    }
}

fn thread_count() -> usize {
    let mut buf = [0u8; 4096];
    let n = crate::sys::read_file(c"/proc/self/status", &mut buf);
    for line in buf[..n].split(|&b| b == b'\n') {
        if let Some(v) = line.strip_prefix(b"Threads:") {
            return v
                .trim_ascii()
                .iter()
                .fold(0, |n, &c| n * 10 + (c.wrapping_sub(b'0')) as usize);
        }
    }
    0
}

/// Whether the mapping of `path` is a character or block device other than `/dev/zero`: Valgrind
/// does not read those (reading device memory may hang or have side effects), nor do we.
fn is_device(path: &[u8]) -> bool {
    if !path.starts_with(b"/dev/") || path == b"/dev/zero" || path.len() >= 4096 {
        return false;
    }
    let mut c = [0u8; 4096];
    c[..path.len()].copy_from_slice(path);
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: c is NUL-terminated; st is a valid out-pointer.
    if unsafe { libc::stat(c.as_ptr().cast(), &mut st) } != 0 {
        return false;
    }
    let kind = st.st_mode & libc::S_IFMT;
    kind == libc::S_IFCHR || kind == libc::S_IFBLK
}

#[allow(non_camel_case_types)]
type _Unwind_Trace_Fn = extern "C" fn(ctx: *mut c_void, arg: *mut c_void) -> c_int;

extern "C" {
    fn _Unwind_Backtrace(cb: _Unwind_Trace_Fn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(ctx: *mut c_void) -> usize;
    fn _Unwind_GetCFA(ctx: *mut c_void) -> usize;
    fn _Unwind_GetGR(ctx: *mut c_void, reg: c_int) -> usize;
}

/// DWARF numbers of the callee-saved registers: what the caller of `exit` may hold a pointer in.
#[cfg(target_arch = "x86_64")]
const CALLEE_SAVED: [c_int; 6] = [3, 6, 12, 13, 14, 15]; // rbx, rbp, r12-r15
#[cfg(target_arch = "aarch64")]
const CALLEE_SAVED: [c_int; 11] = [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]; // x19-x29
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const CALLEE_SAVED: [c_int; 0] = [];

/// The exiting thread at its call into `exit()`: the stack pointer there (the CFA of `exit`'s
/// frame: everything from it up belongs to the callers) and the caller's callee-saved registers.
struct ExitFrame {
    sp: usize,
    regs: [usize; CALLEE_SAVED.len()],
}

struct Walk {
    exit_fn: usize,
    found: Option<ExitFrame>,
    seen_exit: bool,
    frames: usize,
}

extern "C" fn walk_step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
    // _URC_NO_REASON and _URC_END_OF_STACK.
    const CONTINUE: c_int = 0;
    const STOP: c_int = 5;
    // SAFETY: arg is the &mut Walk passed by exit_frame, alive for the whole walk.
    let w = unsafe { &mut *(arg as *mut Walk) };
    // SAFETY: ctx is the unwinder's context for this frame.
    let ip = unsafe { _Unwind_GetIP(ctx) };
    w.frames += 1;
    if ip == 0 || w.frames > 256 {
        return STOP;
    }
    if w.seen_exit {
        // The caller of exit: its callee-saved registers as they were at the call.
        if let Some(f) = w.found.as_mut() {
            for (r, &n) in f.regs.iter_mut().zip(CALLEE_SAVED.iter()) {
                // SAFETY: ctx is valid; n is a general register of this architecture.
                *r = unsafe { _Unwind_GetGR(ctx, n) };
            }
        }
        return STOP;
    }
    // A return address: the call lies one byte before it (exit is noreturn, so its last call may
    // be the function's last instruction).
    let mut info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads the loader's tables and fills info.
    let ok = unsafe { libc::dladdr((ip - 1) as *const c_void, &mut info) };
    if ok != 0 && info.dli_saddr as usize == w.exit_fn {
        w.seen_exit = true;
        w.found = Some(ExitFrame {
            // SAFETY: ctx is valid.
            sp: unsafe { _Unwind_GetCFA(ctx) },
            regs: [0; CALLEE_SAVED.len()],
        });
    }
    CONTINUE
}

/// Finds the exiting thread's call into `exit()` (from `main`, `__libc_start_call_main` after
/// `main` returned, or any function) by unwinding from the exit hook.
fn exit_frame(exit_fn: usize) -> Option<ExitFrame> {
    let mut w = Walk {
        exit_fn,
        found: None,
        seen_exit: false,
        frames: 0,
    };
    // SAFETY: walk_step only touches `w`, which outlives the call.
    unsafe { _Unwind_Backtrace(walk_step, &mut w as *mut Walk as *mut c_void) };
    w.found
}

/// The glibc memory of an mmapped chunk holding the block whose glibc pointer is `base`, if the
/// chunk is mmapped (`IS_MMAPPED` in its size field).
fn mmapped_chunk(base: usize) -> Option<(usize, usize)> {
    let chunk = base - 16;
    // SAFETY: every block the table knows is a glibc block, preceded by its chunk header.
    let (prev_size, size) = unsafe { (*(chunk as *const usize), *((chunk + 8) as *const usize)) };
    (size & 2 != 0).then(|| (chunk - prev_size, chunk + (size & !7)))
}

/// Whether a 64 MiB-aligned address starts a glibc arena heap (its `heap_info` header is sane):
/// returns the bytes of it in use.
fn arena_heap(at: usize) -> Option<usize> {
    // SAFETY: `at` lies inside a readable mapping; heap_info is four words.
    let w = unsafe { core::slice::from_raw_parts(at as *const usize, 4) };
    let (ar_ptr, size, mprotect) = (w[0], w[2], w[3]);
    let sane = ar_ptr != 0
        && size > 0
        && size % 4096 == 0
        && size <= ARENA_ALIGN
        && mprotect >= size
        && mprotect <= ARENA_ALIGN;
    sane.then_some(mprotect)
}

/// `[start, end)` minus the sorted, possibly overlapping `holes`.
fn subtract(start: usize, end: usize, holes: &[(usize, usize)], out: &mut Vec<(usize, usize)>) {
    let mut at = start;
    let first = holes.partition_point(|h| h.1 <= start);
    for &(hs, he) in &holes[first..] {
        if hs >= end {
            break;
        }
        if hs > at {
            out.push((at, hs));
        }
        at = at.max(he);
    }
    if at < end {
        out.push((at, end));
    }
}

/// The words below a stack pointer that a leaf function may still use (the x86-64 red zone).
const RED_ZONE: usize = 128;

/// The stack pointers of this process's other threads that are blocked in a system call (from
/// `/proc/self/task/TID/syscall`: `NR args... SP PC`); a running thread's is unknown.
fn blocked_thread_sps(me: u32) -> Vec<usize> {
    let mut out = Vec::new();
    let mut dir = [0u8; 8192];
    // SAFETY: opening a directory of /proc read-only.
    let fd = unsafe {
        libc::open(
            c"/proc/self/task".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return out;
    }
    loop {
        // SAFETY: getdents64 fills dir with whole entries.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, dir.as_mut_ptr(), dir.len()) };
        if n <= 0 {
            break;
        }
        let mut at = 0;
        while at + 19 < n as usize {
            let reclen = u16::from_ne_bytes([dir[at + 16], dir[at + 17]]) as usize;
            let name = &dir[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            at += reclen.max(1);
            let tid = name.iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32)
            });
            let Some(tid) = tid.filter(|&t| t != 0 && t != me) else {
                continue;
            };
            let mut path = crate::sys::FixedBuf::<64>::new();
            let _ = core::fmt::Write::write_fmt(
                &mut path,
                format_args!("/proc/self/task/{tid}/syscall\0"),
            );
            let mut buf = [0u8; 256];
            // SAFETY: the path is NUL-terminated (written just above).
            let c = unsafe { core::ffi::CStr::from_bytes_with_nul_unchecked(path.as_bytes()) };
            let len = crate::sys::read_file(c, &mut buf);
            let mut f = buf[..len].split(|&b| b == b' ' || b == b'\n');
            // "running", or "-1 SP PC" outside a system call, tell nothing reliable.
            if !f
                .next()
                .is_some_and(|nr| nr.first().is_some_and(|c| c.is_ascii_digit()))
            {
                continue;
            }
            if let Some(sp) = f.nth(6).and_then(|t| t.strip_prefix(b"0x")) {
                out.push(parse_hex(sp));
            }
        }
    }
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    out
}

/// Which frames of the calling thread's stack are live roots.
// Built once per process, on the stack of the ending: a box would allocate in a signal handler.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy)]
pub enum Roots {
    /// The process ends by a call of this function (`exit`, or the shim's `_exit`/`_Exit`): the
    /// stack is a root from that call up, with the caller's callee-saved registers.
    CallTo(usize),
    /// In a fatal signal's handler the process dies with every thread's frames as they are, as
    /// under Valgrind: this thread's stack is a root from the interrupted stack pointer `sp` up,
    /// with the interrupted registers `regs`; another thread's from its stack pointer where it is
    /// blocked in a system call, whole where it runs.
    Signal { sp: usize, regs: [usize; 32] },
}

/// Runs the leak check and writes its records. `freeres`: free glibc's one-time buffers first
/// when one thread is left (at `exit` only: it also flushes stdio).
pub fn leak_check(roots_of: Roots, freeres: bool) {
    let full = crate::opts::leak_check() == memcheck_wire::LeakCheck::Full;
    if full {
        // Before `__libc_freeres` unloads glibc's own modules (NSS, gconv) behind dlclose's back:
        // their records must precede the stacks that name them.
        record::emit_modules();
    }
    if freeres && thread_count() == 1 {
        // SAFETY: with one thread left nobody else uses what glibc frees here.
        unsafe { real::__libc_freeres() };
    }
    let mods = modules::all();
    let (signal, exit) = match roots_of {
        Roots::CallTo(f) => (false, exit_frame(f)),
        Roots::Signal { sp, .. } => (
            true,
            Some(ExitFrame {
                sp,
                regs: [0; CALLEE_SAVED.len()],
            }),
        ),
    };
    let others: Vec<usize> = if signal {
        blocked_thread_sps(crate::sys::gettid())
    } else {
        Vec::new()
    };
    let mut regs: Vec<usize> = Vec::new();
    if let Some(f) = &exit {
        regs.extend_from_slice(&f.regs);
    }
    if let Roots::Signal { regs: r, .. } = roots_of {
        regs.extend_from_slice(&r);
    }
    let (summary, merged) = classify(
        &mods,
        &StackRoots {
            own: exit.as_ref().map(|f| f.sp),
            others: &others,
            regs: &regs,
        },
    );
    if full && !merged.is_empty() {
        record::emit_modules();
        for g in &merged {
            record::emit_stack(g.stack);
            record::emit(&Record::Leak(Leak {
                kind: g.kind,
                bytes: g.bytes,
                blocks: g.blocks,
                stack: g.stack,
            }));
        }
    }
    record::emit(&Record::LeakSummary(summary));
}

/// What the threads' stacks and registers contribute to the roots.
pub struct StackRoots<'a> {
    /// The calling thread's stack is live from this address up (its mapping's top); `None`: from
    /// the scan's own frame up.
    pub own: Option<usize>,
    /// Other threads' stack pointers: a mapping holding exactly one of them is live from it (less
    /// the red zone) up; one holding several (stacks carved from one mapping) is scanned whole.
    pub others: &'a [usize],
    /// Register values that are roots.
    pub regs: &'a [usize],
}

/// Leaks of one kind and allocation stack.
#[derive(Clone, Copy)]
pub struct Group {
    pub kind: LeakKind,
    pub stack: u32,
    pub bytes: u64,
    pub blocks: u64,
}

/// The mark phase over every root, and the blocks classified and grouped by (kind, stack). Calls
/// only raw system calls and the shim's own code (no loader lock: `mods` is gathered by the
/// caller), so it can run while other threads are paused anywhere outside the shim.
pub fn classify(mods: &[modules::Module], stack_roots: &StackRoots) -> (LeakSummary, Vec<Group>) {
    let maps_text = read_maps();
    let maps = parse_maps(&maps_text);
    let sp = &maps_text as *const _ as usize;
    let others = stack_roots.others;

    let gen = crate::opts::FORK_GEN.load(core::sync::atomic::Ordering::Relaxed);
    table::lock_all();
    let mut blocks: Vec<Block> = Vec::new();
    // Allocator memory that must not count as a root: glibc's mmapped chunks (of live and
    // quarantined blocks alike) and arena heaps.
    let mut holes: Vec<(usize, usize)> = Vec::new();
    table::for_each_held(|e| {
        if e.flags & table::FLAG_GUARDED == 0 {
            if let Some(h) = mmapped_chunk(e.key - e.base_off as usize) {
                holes.push(h);
            }
        }
        if e.state == table::BlockState::Live {
            blocks.push(Block {
                start: e.key,
                size: e.size,
                stack: e.alloc_stack,
                inherited: e.fork_gen() != gen,
            });
        }
    });
    blocks.sort_unstable_by_key(|b| b.start);
    let mut m = Marker::new(&blocks);
    let mut buf = rust_alloc::vec![0usize; 8192];
    for (i, b) in blocks.iter().enumerate() {
        if b.inherited {
            m.state[i] = REACHABLE;
            m.work.push(i as u32);
        }
    }
    m.drain();
    m.scan_words(stack_roots.regs, REACHABLE);
    m.drain();

    for md in mods {
        for &(s, e) in &md.writable {
            scan_region(&mut m, s, e, &mut buf, true);
            m.drain();
        }
    }
    // Data and bss were scanned above; an anonymous mapping may hold a bss tail and more after it
    // (ld.so's start-up allocations follow its bss), so only the segments are cut out of it.
    for md in mods {
        holes.extend_from_slice(&md.writable);
    }
    // The guard pool holds blocks, which are traced, not roots; the shim's own memory is not the
    // program's.
    guard::for_each_range(|s, e| holes.push((s, e)));
    heap::for_each_range(|s, e| holes.push((s, e)));
    // The statistics page is the shim's (a shared file mapping of counters).
    let stats_page = crate::stats::page() as *const _ as usize;
    // (start, end, whether it may be read in place: not a file mapping)
    let mut roots: Vec<(usize, usize, bool)> = Vec::new();
    for mp in &maps {
        // Valgrind's rule: readable and writable, any kind (anonymous, file, shared), not a device.
        if !mp.readable || !mp.writable {
            continue;
        }
        if memcheck_wire::is_shim_mapping(mp.path) || mp.path == b"[heap]" {
            continue;
        }
        if (stats_page >= mp.start && stats_page < mp.end) || is_device(mp.path) {
            continue;
        }
        let mut start = mp.start;
        let mut inside = others.iter().filter(|&&p| p >= mp.start && p < mp.end);
        if sp >= mp.start && sp < mp.end {
            // The calling thread's stack: live from its call into exit() (or the interrupted
            // stack pointer) up; below are exit's own frames, the exit handlers', frames that had
            // returned, the signal handler's: dead.
            start = match stack_roots.own {
                Some(f) if f > sp && f <= mp.end => f,
                _ => sp, // exit() not found on the stack: everything above this frame
            };
        } else if let (Some(&from), None) = (inside.next(), inside.next()) {
            // Another thread's stack (paused, or blocked in a system call): live from its stack
            // pointer up, less the red zone a leaf function may use.
            start = from.saturating_sub(RED_ZONE).max(mp.start);
        }
        // Arena heaps are private anonymous memory (read in place: a file mapping may end past its
        // file, where a read faults).
        let anon = mp.path.is_empty() || mp.path.starts_with(b"[anon:");
        let mut a = (start + ARENA_ALIGN - 1) & !(ARENA_ALIGN - 1);
        while anon && a < mp.end {
            if let Some(used) = arena_heap(a) {
                holes.push((a, a + used));
            }
            a += ARENA_ALIGN;
        }
        roots.push((start, mp.end, anon || mp.path.starts_with(b"[")));
    }
    holes.sort_unstable();
    let mut pieces = Vec::new();
    for &(s, e, direct) in &roots {
        pieces.clear();
        subtract(s, e, &holes, &mut pieces);
        for &(s, e) in &pieces {
            scan_region(&mut m, s, e, &mut buf, direct);
            m.drain();
        }
    }
    for i in 0..blocks.len() {
        if m.state[i] == UNREACHED {
            m.clique(i);
        }
    }
    table::unlock_all();

    // Aggregate by (kind, stack).
    let mut summary = LeakSummary::default();
    let mut groups: Vec<Group> = Vec::new();
    for (i, b) in blocks.iter().enumerate().filter(|(_, b)| !b.inherited) {
        let kind = match m.state[i] {
            REACHABLE => LeakKind::Reachable,
            POSSIBLE => LeakKind::Possible,
            INDIRECT => LeakKind::Indirect,
            _ => LeakKind::Definite,
        };
        let s = &mut summary.kinds[kind as usize];
        s.0 += b.size as u64;
        s.1 += 1;
        groups.push(Group {
            kind,
            stack: b.stack,
            bytes: b.size as u64,
            blocks: 1,
        });
    }
    groups.sort_unstable_by_key(|g| (g.kind, g.stack));
    let mut merged: Vec<Group> = Vec::new();
    for g in groups {
        match merged.last_mut() {
            Some(last) if last.kind == g.kind && last.stack == g.stack => {
                last.bytes += g.bytes;
                last.blocks += g.blocks;
            }
            _ => merged.push(g),
        }
    }
    (summary, merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_cut_out_of_roots() {
        let mut out = Vec::new();
        subtract(0, 100, &[(10, 20), (15, 30), (90, 120)], &mut out);
        assert_eq!(out, [(0, 10), (30, 90)]);
        out.clear();
        subtract(50, 60, &[(10, 20)], &mut out);
        assert_eq!(out, [(50, 60)]);
    }

    #[test]
    fn maps_lines_parse() {
        let text = b"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n7f00-7f10 ---p 00000000 00:00 0 \n7ffc0000-7ffd0000 rw-p 00000000 00:00 0                          [stack]\n";
        let m = parse_maps(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].start, 0x55d0c0a00000);
        assert_eq!(m[0].path, b"[heap]");
        assert!(!m[1].readable);
        assert_eq!(m[1].path, b"");
        assert_eq!(m[2].path, b"[stack]");
    }

    fn classify(blocks: &[Block], roots: &[usize]) -> Vec<u8> {
        let mut m = Marker::new(blocks);
        m.scan_words(roots, REACHABLE);
        m.drain();
        for i in 0..blocks.len() {
            if m.state[i] == UNREACHED {
                m.clique(i);
            }
        }
        m.state
    }

    #[test]
    fn list_is_one_definite_and_the_rest_indirect_and_roots_reach() {
        // Four blocks of two words: a list a -> b -> c, and d held by a root through its middle.
        let mut mem = [0usize; 8];
        let base = mem.as_mut_ptr() as usize;
        let blocks: Vec<Block> = (0..4)
            .map(|i| Block {
                start: base + i * 16,
                size: 16,
                stack: 0,
                inherited: false,
            })
            .collect();
        mem[0] = base + 16; // a -> b
        mem[2] = base + 32; // b -> c
        std::hint::black_box(&mem);
        let st = classify(&blocks, &[base + 48 + 8]);
        assert_eq!(st[0], DEFINITE);
        assert_eq!(st[1], INDIRECT);
        assert_eq!(st[2], INDIRECT);
        assert_eq!(st[3], POSSIBLE);
        let st = classify(&blocks, &[base]);
        assert_eq!(&st[..3], &[REACHABLE; 3]);
    }

    #[test]
    fn a_list_allocated_tail_first_still_has_one_leader() {
        let mut mem = [0usize; 6];
        let base = mem.as_mut_ptr() as usize;
        let blocks: Vec<Block> = (0..3)
            .map(|i| Block {
                start: base + i * 16,
                size: 16,
                stack: 0,
                inherited: false,
            })
            .collect();
        // c -> b -> a: block 2 is the head.
        mem[4] = base + 16;
        mem[2] = base;
        std::hint::black_box(&mem);
        let st = classify(&blocks, &[]);
        assert_eq!(st, [INDIRECT, INDIRECT, DEFINITE]);
    }
}
