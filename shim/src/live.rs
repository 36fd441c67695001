//! The leak check of a running process (`memcheck leaks PID`), without ptrace and without a
//! restart: the CLI queues [`live::SIGNAL`] with the value [`live::REQUEST`]; the thread the
//! kernel hands it to becomes the coordinator, pauses every other thread the way garbage
//! collectors do (a queued signal to each thread, [`live::PAUSE`]; each one's handler stores its
//! interrupted registers and stack pointer and waits on a futex), runs [`scan::classify`] with
//! those registers and stacks as roots, lets the threads go on and writes the answer file (the
//! exit report's records) that the CLI waits for. The contract is `memcheck_wire::live`.
//!
//! Safety rules:
//! - A thread that holds a shim lock or is inside a glibc call the shim made
//!   (`tls::locks_held() != 0`) neither coordinates nor pauses there: it defers the signal
//!   (`tls::defer_live`), which is raised again on this thread when it leaves that code; so no
//!   paused thread holds a lock the scan needs. The loader's lock (`dl_iterate_phdr`) is taken
//!   before anyone is paused; while they are, the coordinator makes raw system calls and runs the
//!   shim's own code only.
//! - The handler is installed with `SA_RESTART`, so a paused `read`, `write`, `wait` or untimed
//!   `futex` goes on transparently; calls the kernel never restarts after a handler (`nanosleep`,
//!   `poll`, `epoll_wait`, `select`, timed futex waits) return `EINTR` as with any signal.
//! - A thread that blocks the signal, or does not answer within [`PAUSE_TIMEOUT_NS`], runs on:
//!   its stack is scanned whole, its registers are not roots, and the answer counts it.
//! - The program keeps its own disposition of the signal: `sigaction` records it (as `fault.rs`
//!   does for the endings) while the shim's handler stays in the kernel, and a signal that is not
//!   memcheck's (a plain `kill`, or anything without the request value) goes to it: its handler is
//!   called with the mask it asked for, `SIG_IGN` drops it, `SIG_DFL` ends the process as it would
//!   natively.
use crate::{exit, modules, opts, scan, sigctx, sys, tls};
use core::cell::{Cell, UnsafeCell};
use core::ffi::c_int;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst,
};
use memcheck_wire::live;
use memcheck_wire::{Leak, LeakSummary, Module, Note, Process, Record, Stack};
use rust_alloc::vec::Vec;

extern "C" {
    fn __sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int;
}

/// How long the coordinator waits for the threads to pause.
const PAUSE_TIMEOUT_NS: u64 = 2_000_000_000;
/// The red zone below a stack pointer that a leaf function may use (x86-64).
const RED_ZONE: usize = 128;

const IDLE: u32 = 0;
const SETUP: u32 = 1;
const PAUSING: u32 = 2;
static PHASE: AtomicU32 = AtomicU32::new(IDLE);
/// Futex word: bumped when the paused threads may go on.
static GEN: AtomicU32 = AtomicU32::new(0);
/// Futex word: how many threads are paused.
static PAUSED: AtomicU32 = AtomicU32::new(0);
/// Threads between "is a pause under way" and having written their slot.
static CLAIMING: AtomicU32 = AtomicU32::new(0);
/// The id of a request that arrived while its thread held a shim lock, raised again when it left.
static REQUESTED: AtomicU64 = AtomicU64::new(0);
/// The same for a request of the live sites.
static SITES_REQUESTED: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// What a paused thread leaves for the coordinator.
#[derive(Clone, Copy)]
struct Slot {
    tid: u32,
    sp: usize,
    regs: [usize; 32],
}
static SLOTS: AtomicPtr<Slot> = AtomicPtr::new(core::ptr::null_mut());
static SLOT_CAP: AtomicUsize = AtomicUsize::new(0);
static SLOT_NEXT: AtomicUsize = AtomicUsize::new(0);

per_thread! {
    /// This thread deferred its pause (it held a shim lock when asked).
    static PAUSE_DEFERRED: Cell<bool>;
}

struct Prog(UnsafeCell<libc::sigaction>);
// SAFETY: written by the program's (rare) sigaction calls, read by the handler: the same race
// the kernel's own table has.
unsafe impl Sync for Prog {}
// SAFETY: an all-zero sigaction is SIG_DFL with no flags.
static PROG: Prog = Prog(UnsafeCell::new(unsafe { core::mem::zeroed() }));

fn prog() -> libc::sigaction {
    // SAFETY: see Prog.
    unsafe { *PROG.0.get() }
}

fn our_action() -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; the handler, flags and mask are filled below.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t. Every signal waits while a thread is paused or scans.
    unsafe { libc::sigfillset(&mut act.sa_mask) };
    act
}

/// At start-up (when memcheck records): the request signal's handler, the inherited disposition
/// recorded as the program's.
pub fn install() {
    if !opts::ACTIVE.load(SeqCst) {
        return;
    }
    // SAFETY: a zeroed sigaction is a valid out-buffer; a null act only reads.
    let mut cur: libc::sigaction = unsafe { core::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { __sigaction(live::SIGNAL, core::ptr::null(), &mut cur) } != 0 {
        return;
    }
    // SAFETY: at start-up, before any handler of ours runs.
    unsafe { *PROG.0.get() = cur };
    let act = our_action();
    // SAFETY: installing our handler, a valid sigaction.
    if unsafe { __sigaction(live::SIGNAL, &act, core::ptr::null_mut()) } == 0 {
        INSTALLED.store(true, SeqCst);
    }
}

/// Whether the interposed `sigaction` must come here for `sig`.
pub fn takes(sig: c_int) -> bool {
    sig == live::SIGNAL && INSTALLED.load(SeqCst) && !exit::shared_with_parent()
}

/// The interposed `sigaction` for the request signal: the program's disposition is recorded and
/// reported back, the shim's handler stays.
///
/// # Safety
/// As `sigaction(2)`: `act` and `old` are null or valid.
pub unsafe fn sigaction(act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int {
    let was = prog();
    if !act.is_null() {
        // SAFETY: per the caller.
        unsafe { *PROG.0.get() = *act };
    }
    if !old.is_null() {
        // SAFETY: per the caller.
        unsafe { *old = was };
    }
    0
}

/// In a fork child: a pause under way in the parent is not the child's.
pub fn after_fork_child() {
    crate::allocs::after_fork_child();
    PHASE.store(IDLE, SeqCst);
    REQUESTED.store(0, SeqCst);
    SITES_REQUESTED.store(0, SeqCst);
    PAUSE_DEFERRED.with(|d| d.set(false));
}

extern "C" fn handler(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let saved = sys::errno();
    // SAFETY: the kernel passes a valid siginfo (at least five words) to SA_SIGINFO handlers.
    let words = unsafe { *(info as *const [u64; 5]) };
    let (code, pid, value, id) = live::read_siginfo(&words);
    let from_self = pid == sys::getpid();
    if code == live::SI_QUEUE && value == live::PAUSE && from_self {
        pause_here(ctx);
    } else if code == live::SI_QUEUE && value == live::REQUEST {
        coordinate(ctx, id);
    } else if code == live::SI_QUEUE && value == live::SITES {
        sites(id);
    } else if code == libc::SI_TKILL && from_self && deferred_any() {
        // Raised again by this thread on leaving the shim (`tls::defer_live`): whatever was put
        // off, a pause of this thread, a request, or both.
        if PAUSE_DEFERRED.with(|d| d.replace(false)) {
            pause_here(ctx);
        }
        let r = REQUESTED.swap(0, SeqCst);
        if r != 0 {
            coordinate(ctx, r);
        }
        let s = SITES_REQUESTED.swap(0, SeqCst);
        if s != 0 {
            sites(s);
        }
    } else {
        programs(sig, info, ctx);
    }
    sys::set_errno(saved);
}

/// Whether a pause of this thread, or a request, was put off.
fn deferred_any() -> bool {
    PAUSE_DEFERRED.with(|d| d.get())
        || REQUESTED.load(SeqCst) != 0
        || SITES_REQUESTED.load(SeqCst) != 0
}

/// A signal that is not memcheck's: what the program's disposition says.
fn programs(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let p = prog();
    if p.sa_sigaction == libc::SIG_IGN {
        return;
    }
    if p.sa_sigaction == libc::SIG_DFL {
        // The default action of a real-time signal ends the process: as natively.
        // SAFETY: a zeroed sigaction is SIG_DFL; the signal is unblocked and sent again.
        unsafe {
            let dfl: libc::sigaction = core::mem::zeroed();
            __sigaction(sig, &dfl, core::ptr::null_mut());
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
            libc::raise(sig);
        }
        return;
    }
    if p.sa_flags & libc::SA_RESETHAND != 0 {
        // SAFETY: a zeroed sigaction is SIG_DFL: the program asked for a one-shot handler.
        unsafe { *PROG.0.get() = core::mem::zeroed() };
    }
    sigctx::call_program_handler(sig, info, ctx, &p);
}

fn futex_wait(word: &AtomicU32, val: u32, timeout_ns: Option<u64>) {
    let ts = timeout_ns.map(|ns| libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT on a live word of ours; a changed value or a timeout just returns.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            val,
            tsp,
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a word of ours.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A paused thread: leaves its registers and waits until the coordinator lets it go.
fn pause_here(ctx: *mut libc::c_void) {
    if tls::locks_held() != 0 {
        // Inside the shim or a glibc call it made: pause when leaving it.
        PAUSE_DEFERRED.with(|d| d.set(true));
        tls::defer_live();
        return;
    }
    let gen = GEN.load(SeqCst);
    CLAIMING.fetch_add(1, SeqCst);
    if PHASE.load(SeqCst) != PAUSING {
        // A late pause signal: the pause is over.
        CLAIMING.fetch_sub(1, SeqCst);
        return;
    }
    let (sp, regs) = sigctx::registers(ctx);
    let i = SLOT_NEXT.fetch_add(1, SeqCst);
    if i < SLOT_CAP.load(SeqCst) {
        // SAFETY: SLOTS holds SLOT_CAP slots while PHASE is PAUSING and CLAIMING is non-zero;
        // index i is this thread's alone.
        unsafe {
            *SLOTS.load(SeqCst).add(i) = Slot {
                tid: sys::gettid(),
                sp,
                regs,
            }
        };
    }
    CLAIMING.fetch_sub(1, SeqCst);
    PAUSED.fetch_add(1, SeqCst);
    futex_wake(&PAUSED);
    while GEN.load(SeqCst) == gen {
        futex_wait(&GEN, gen, None);
    }
}

/// The thread ids of this process.
fn tasks(out: &mut Vec<u32>) {
    out.clear();
    let mut dir = [0u8; 4096];
    // SAFETY: opening a directory of /proc read-only.
    let fd = unsafe {
        libc::open(
            c"/proc/self/task".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
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
            let name = &dir[at + 19..(at + reclen).min(n as usize)];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            at += reclen.max(1);
            let tid = name.iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32)
            });
            if let Some(t) = tid.filter(|&t| t != 0) {
                out.push(t);
            }
        }
    }
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
}

/// Whether thread `tid` blocks the request signal (`SigBlk` of its status), so a pause signal
/// would wait for ever.
fn blocks_signal(tid: u32) -> bool {
    let mut path = sys::FixedBuf::<64>::new();
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/proc/self/task/{tid}/status\0"));
    // SAFETY: NUL-terminated just above.
    let c = unsafe { core::ffi::CStr::from_bytes_with_nul_unchecked(path.as_bytes()) };
    let mut buf = [0u8; 4096];
    let n = sys::read_file(c, &mut buf);
    for line in buf[..n].split(|&b| b == b'\n') {
        if let Some(v) = line.strip_prefix(b"SigBlk:") {
            let mask = v.trim_ascii().iter().fold(0u64, |m, &c| {
                m << 4
                    | match c {
                        b'0'..=b'9' => (c - b'0') as u64,
                        b'a'..=b'f' => (c - b'a' + 10) as u64,
                        _ => 0,
                    }
            });
            return mask & (1 << (live::SIGNAL - 1)) != 0;
        }
    }
    false
}

fn exists(tid: u32) -> bool {
    // SAFETY: tgkill with signal 0 only checks that the thread exists.
    unsafe { libc::syscall(libc::SYS_tgkill, sys::getpid(), tid, 0) == 0 }
}

/// Sends the pause signal to `tid`.
fn send_pause(tid: u32) -> bool {
    let mut info = live::siginfo(live::SIGNAL, sys::getpid(), 0, live::PAUSE, 0);
    // SAFETY: rt_tgsigqueueinfo reads 128 bytes of siginfo; to a thread of this process a
    // SI_QUEUE code is allowed.
    unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            sys::getpid(),
            tid,
            live::SIGNAL,
            info.as_mut_ptr(),
        ) == 0
    }
}

/// The thread that received the request: pause the others, scan, resume them, answer.
fn coordinate(ctx: *mut libc::c_void, id: u64) {
    if tls::locks_held() != 0 {
        REQUESTED.store(id.max(1), SeqCst);
        tls::defer_live();
        return;
    }
    if exit::running_elsewhere() || !opts::ACTIVE.load(SeqCst) {
        return; // the process is ending: its exit report is under way
    }
    if PHASE.compare_exchange(IDLE, SETUP, SeqCst, SeqCst).is_err() {
        return; // a check is under way (the CLI serializes its requests)
    }
    let me = sys::gettid();
    // Everything that takes a glibc lock happens before anyone is paused: the loader's list.
    let mods = modules::all();
    if opts::production() {
        // Nothing but the sampled blocks is recorded: a scan would miss every other leak and
        // call lost the sampled blocks only they point to. The answer says so instead.
        PHASE.store(IDLE, SeqCst);
        answer(&mods, LeakSummary::default(), &[], None, &[], id);
        return;
    }
    let mut tids: Vec<u32> = Vec::new();
    tasks(&mut tids);
    let cap = tids.len() * 2 + 64;
    let mut slots: Vec<Slot> = Vec::with_capacity(cap);
    SLOTS.store(slots.as_mut_ptr(), SeqCst);
    SLOT_CAP.store(cap, SeqCst);
    SLOT_NEXT.store(0, SeqCst);
    PAUSED.store(0, SeqCst);
    let mut sent: Vec<u32> = Vec::new();
    let mut unpaused = 0u32;
    let mut skipped: Vec<u32> = Vec::new();
    let started = now_ns(libc::CLOCK_MONOTONIC);
    PHASE.store(PAUSING, SeqCst);
    // Threads started meanwhile (by a thread not paused yet) are found by a second look.
    for _round in 0..4 {
        let before = sent.len() + skipped.len();
        for &t in &tids {
            if t == me || sent.contains(&t) || skipped.contains(&t) {
                continue;
            }
            if blocks_signal(t) {
                skipped.push(t);
            } else if send_pause(t) {
                sent.push(t);
            }
        }
        // Wait until every thread signalled is paused, has gone, or the time is up.
        let mut gone = 0u32;
        loop {
            let n = PAUSED.load(SeqCst);
            if n as usize + gone as usize >= sent.len() {
                break;
            }
            if now_ns(libc::CLOCK_MONOTONIC) - started > PAUSE_TIMEOUT_NS {
                break;
            }
            futex_wait(&PAUSED, n, Some(10_000_000));
            gone = sent.iter().filter(|&&t| !exists(t)).count() as u32;
        }
        tasks(&mut tids);
        let new = tids
            .iter()
            .filter(|&&t| t != me && !sent.contains(&t) && !skipped.contains(&t))
            .count();
        if new == 0 || sent.len() + skipped.len() == before {
            break;
        }
    }
    // Threads still new after the last look ran on unpaused.
    unpaused += tids
        .iter()
        .filter(|&&t| t != me && !sent.contains(&t) && !skipped.contains(&t))
        .count() as u32;
    // The roots: each paused thread's registers and stack from its stack pointer; this thread's
    // likewise from where the request interrupted it.
    let n = SLOT_NEXT.load(SeqCst).min(cap);
    // SAFETY: the first n slots were written by paused threads before they counted themselves;
    // a thread still claiming one (CLAIMING) writes only its own index.
    unsafe { slots.set_len(n) };
    let (my_sp, my_regs) = sigctx::registers(ctx);
    let mut regs: Vec<usize> = Vec::with_capacity((n + 1) * 32);
    regs.extend_from_slice(&my_regs);
    let mut sps: Vec<usize> = Vec::with_capacity(n);
    for s in slots.iter() {
        regs.extend_from_slice(&s.regs);
        sps.push(s.sp);
    }
    let paused = slots.len() as u32;
    for t in &sent {
        if !slots.iter().any(|s| s.tid == *t) && exists(*t) {
            unpaused += 1;
        }
    }
    unpaused += skipped.len() as u32;
    let (summary, groups) = scan::classify(
        &mods,
        &scan::StackRoots {
            own: Some(my_sp.saturating_sub(RED_ZONE)),
            others: &sps,
            regs: &regs,
        },
    );
    // Resume: the phase first, then the generation (see pause_here), then wait until no thread
    // is still writing a slot before the slots go.
    PHASE.store(IDLE, SeqCst);
    GEN.fetch_add(1, SeqCst);
    futex_wake(&GEN);
    let pause_ns = now_ns(libc::CLOCK_MONOTONIC) - started;
    while CLAIMING.load(SeqCst) != 0 {
        sys::yield_now();
    }
    SLOTS.store(core::ptr::null_mut(), SeqCst);
    SLOT_CAP.store(0, SeqCst);
    // The registers are roots only of this check: wipe them before the memory is reused.
    regs.iter_mut().for_each(|r| *r = 0);
    slots.iter_mut().for_each(|s| s.regs = [0; 32]);
    drop(slots);
    answer(
        &mods,
        summary,
        &groups,
        Some((paused + 1, pause_ns, unpaused)),
        &[],
        id,
    );
}

/// `memcheck stats --sites`: every live block by allocation stack, read under the table's locks
/// (allocations wait meanwhile; nothing is paused), written as the answer to request `id`.
fn sites(id: u64) {
    if tls::locks_held() != 0 {
        SITES_REQUESTED.store(id.max(1), SeqCst);
        tls::defer_live();
        return;
    }
    if exit::running_elsewhere() || !opts::ACTIVE.load(SeqCst) {
        return;
    }
    if PHASE.compare_exchange(IDLE, SETUP, SeqCst, SeqCst).is_err() {
        return;
    }
    let mods = modules::all();
    let gen = opts::FORK_GEN.load(SeqCst);
    let mut live: Vec<(u32, u64)> = Vec::new();
    crate::table::lock_all();
    crate::table::for_each_held(|e| {
        if e.state == crate::table::BlockState::Live && e.fork_gen() == gen {
            live.push((e.alloc_stack, e.size as u64));
        }
    });
    crate::table::unlock_all();
    // The calls per stack, read after the blocks (nothing waits for this).
    let mut calls: Vec<(u32, u64)> = Vec::new();
    crate::allocs::snapshot(&mut calls);
    PHASE.store(IDLE, SeqCst);
    live.sort_unstable_by_key(|l| l.0);
    let mut groups: Vec<scan::Group> = Vec::new();
    let mut summary = LeakSummary::default();
    let group = |stack| scan::Group {
        kind: memcheck_wire::LeakKind::Reachable,
        stack,
        bytes: 0,
        blocks: 0,
    };
    for (stack, size) in live {
        let r = &mut summary.kinds[memcheck_wire::LeakKind::Reachable as usize];
        r.0 += size;
        r.1 += 1;
        match groups.last_mut() {
            Some(g) if g.stack == stack => {
                g.bytes += size;
                g.blocks += 1;
            }
            _ => groups.push(scan::Group {
                bytes: size,
                blocks: 1,
                ..group(stack)
            }),
        }
    }
    // Stacks whose blocks are all freed: 0 bytes in 0 blocks, for their calls.
    let n = groups.len();
    for &(stack, _) in &calls {
        if stack != 0
            && groups[..n]
                .binary_search_by_key(&stack, |g| g.stack)
                .is_err()
        {
            groups.push(group(stack));
        }
    }
    answer(&mods, summary, &groups, None, &calls, id);
}

/// `DIR/PID-STARTNS` + the answer's name for `id` + `suffix`, NUL-terminated.
fn answer_path(id: u64, suffix: &str) -> sys::FixedBuf<4200> {
    let mut path = sys::FixedBuf::<4200>::new();
    // SAFETY: DIR is written once during init, before any request can be handled.
    let dir = unsafe { &*core::ptr::addr_of!(opts::DIR) };
    let dlen = dir.iter().position(|&b| b == 0).unwrap_or(0);
    path.buf[..dlen].copy_from_slice(&dir[..dlen]);
    path.len = dlen;
    let start = crate::stats::page()
        .start_ns
        .load(core::sync::atomic::Ordering::Relaxed);
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/{}-{}", sys::getpid(), start));
    let _ = live::answer_name(&mut path, id);
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("{suffix}\0"));
    path
}

fn push(out: &mut Vec<u8>, scratch: &mut [u8], rec: &Record) {
    if let Some(n) = rec.encode(scratch) {
        out.extend_from_slice(&scratch[..n]);
    }
}

/// The note of an answer in production mode (`--leak-check=no --sample-rate=N`, `prod.rs`).
const PRODUCTION_NOTE: &str = "production mode (--leak-check=no with --sample-rate) records only the sampled blocks: no leak check, and the live blocks listed are the sampled ones";

/// Writes the answer file: the records of the exit report, under a temporary name renamed into
/// place when complete.
fn answer(
    mods: &[modules::Module],
    summary: LeakSummary,
    groups: &[scan::Group],
    pause: Option<(u32, u64, u32)>,
    calls: &[(u32, u64)],
    id: u64,
) {
    let mut out: Vec<u8> = Vec::new();
    let mut scratch = rust_alloc::vec![0u8; 16384];
    out.resize(memcheck_wire::HEADER_LEN, 0);
    memcheck_wire::encode_header(&mut out);
    let exe = modules::exe_path();
    let mut cmdline = rust_alloc::vec![0u8; 8192];
    let n = sys::read_file(c"/proc/self/cmdline", &mut cmdline);
    cmdline.truncate(n);
    push(
        &mut out,
        &mut scratch,
        &Record::Process(Process {
            pid: sys::getpid(),
            // SAFETY: getppid has no preconditions.
            ppid: unsafe { libc::getppid() } as u32,
            start_ns: crate::stats::page()
                .start_ns
                .load(core::sync::atomic::Ordering::Relaxed),
            exe: &exe,
            cmdline: &cmdline,
        }),
    );
    for (i, m) in mods.iter().enumerate() {
        let path: &[u8] = if i == 0 && m.path.is_empty() {
            &exe
        } else {
            &m.path
        };
        if path.is_empty() || path.starts_with(b"linux-vdso") {
            continue;
        }
        push(
            &mut out,
            &mut scratch,
            &Record::Module(Module {
                start: m.start as u64,
                end: m.end as u64,
                bias: m.bias as u64,
                path,
            }),
        );
    }
    let mut written: Vec<u32> = Vec::new();
    let mut raw = rust_alloc::vec![0u8; memcheck_wire::MAX_FRAMES * 8];
    for g in groups {
        if g.stack != 0 && !written.contains(&g.stack) {
            written.push(g.stack);
            let frames = crate::depot::frames(g.stack);
            let k = frames.len().min(memcheck_wire::MAX_FRAMES);
            for (i, f) in frames[..k].iter().enumerate() {
                raw[i * 8..i * 8 + 8].copy_from_slice(&f.to_le_bytes());
            }
            push(
                &mut out,
                &mut scratch,
                &Record::Stack(Stack {
                    id: g.stack,
                    raw: &raw[..k * 8],
                }),
            );
        }
        push(
            &mut out,
            &mut scratch,
            &Record::Leak(Leak {
                kind: g.kind,
                bytes: g.bytes,
                blocks: g.blocks,
                stack: g.stack,
            }),
        );
    }
    for &(stack, calls) in calls {
        push(
            &mut out,
            &mut scratch,
            &Record::Allocs(memcheck_wire::Allocs { stack, calls }),
        );
    }
    push(&mut out, &mut scratch, &Record::LeakSummary(summary));
    if let Some((paused, pause_ns, unpaused)) = pause {
        let mut text = sys::FixedBuf::<96>::new();
        let _ = core::fmt::Write::write_fmt(
            &mut text,
            format_args!("{}{paused} {pause_ns} {unpaused}", live::NOTE_PAUSE),
        );
        push(
            &mut out,
            &mut scratch,
            &Record::Note(Note {
                text: text.as_bytes(),
            }),
        );
    }
    if opts::production() {
        push(
            &mut out,
            &mut scratch,
            &Record::Note(Note {
                text: PRODUCTION_NOTE.as_bytes(),
            }),
        );
    }
    let tmp = answer_path(id, ".tmp");
    let fin = answer_path(id, "");
    // SAFETY: both paths are NUL-terminated; the file is ours (0600, no symbolic link followed).
    unsafe {
        let fd = libc::open(
            tmp.buf.as_ptr().cast(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600,
        );
        if fd < 0 {
            crate::log!(
                "memcheck leaks: cannot write the answer in MEMCHECK_DIR (errno {})",
                sys::errno()
            );
            return;
        }
        let ok = sys::write_all(fd, &out);
        libc::close(fd);
        if ok {
            libc::rename(tmp.buf.as_ptr().cast(), fin.buf.as_ptr().cast());
        } else {
            libc::unlink(tmp.buf.as_ptr().cast());
        }
    }
}
