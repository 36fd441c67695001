//! The one table of settings, filled from what the CLI passes in `MEMCHECK_OPTIONS` (a
//! [`ShimOptions`], parsed by `memcheck_wire`; an item it cannot read is logged and its setting
//! keeps its default) and `MEMCHECK_DIR`, and from glibc's `MALLOC_PERTURB_`. Kept in atomics,
//! which the hot paths read. Read from `/proc/self/environ`, which works before libc has set up
//! `environ` (the first `malloc` can come from the dynamic loader).
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use memcheck_wire::{
    env_value, Fill, GuardMode, KeepStacks, LeakCheck, OptionError, ShimOptions, ENV_DIR,
    ENV_OPTIONS, ENV_TRACE_SKIP, ENV_TRACE_SKIP_BY_ARG,
};

const DEFAULT: ShimOptions = ShimOptions::DEFAULT;

/// Leak check (`LeakCheck as u8`); read through [`leak_check`].
pub static LEAK_CHECK: AtomicU8 = AtomicU8::new(DEFAULT.leak_check as u8);
/// Frames recorded per allocation.
pub static DEPTH: AtomicUsize = AtomicUsize::new(DEFAULT.depth as usize);
/// Bytes of canary redzone before each block (at least 16, a multiple of 16).
pub static REDZONE: AtomicUsize = AtomicUsize::new(DEFAULT.redzone as usize);
/// Bytes of freed blocks held back from reuse.
pub static QUARANTINE: AtomicU64 = AtomicU64::new(DEFAULT.quarantine);
/// Whether exec'd children keep the shim.
pub static TRACE_CHILDREN: AtomicBool = AtomicBool::new(DEFAULT.trace_children);
/// Forked children write no report until they exec (`--child-silent-after-fork`).
pub static CHILD_SILENT: AtomicBool = AtomicBool::new(DEFAULT.child_silent);
/// Abort after the first error report (`--on-error=abort`).
pub static ABORT_ON_ERROR: AtomicBool = AtomicBool::new(DEFAULT.abort_on_error);
/// Byte written into new blocks (not calloc's), or -1 for none.
pub static MALLOC_FILL: AtomicI32 = AtomicI32::new(0xbe);
/// Byte written into freed blocks, or -1 for none.
pub static FREE_FILL: AtomicI32 = AtomicI32::new(0xfd);
/// Guard mode (`GuardMode as u8`); read through [`guard_mode`].
pub static GUARD_MODE: AtomicU8 = AtomicU8::new(DEFAULT.guard as u8);
/// With guard mode, guard 1 block in N (0: every block).
pub static SAMPLE_RATE: AtomicU64 = AtomicU64::new(DEFAULT.sample_rate);
/// Guard mode: the fixed alignment of guarded blocks (`--guard-align`), 0 for the size's own.
pub static GUARD_ALIGN: AtomicUsize = AtomicUsize::new(DEFAULT.guard_align as usize);
/// Requests above this many bytes are `allocation-size-too-big` (`--max-allocation-size`).
pub static MAX_ALLOCATION_SIZE: AtomicU64 = AtomicU64::new(DEFAULT.max_allocation_size);
/// Check the ranges of the memory and string functions (`--check-mem-functions`, `memfn`).
pub static CHECK_MEM_FNS: AtomicBool = AtomicBool::new(true);
/// Which stacks a block keeps (`--keep-stacktraces`, `KeepStacks as u8`); read through
/// [`keep_alloc_stack`], [`keep_free_stack`] and [`free_replaces_alloc`].
pub static KEEP_STACKS: AtomicU8 = AtomicU8::new(DEFAULT.keep_stacks as u8);
/// Production mode (GWP-ASan's), decided once by [`apply`]: `--leak-check=no` with
/// `--sample-rate=N` above 1 (which implies guard mode) and neither `--malloc-fill` nor
/// `--free-fill` given. The sampled blocks are guarded blocks, recorded as always; the others are
/// glibc's own, never recorded (no stack, no table entry, no redzones, fills or quarantine), and a
/// pointer outside the guard pool is handed to glibc on free, realloc and usable size
/// ([`crate::alloc::prod`]). An explicit fill asks for a write into every block, so it keeps the full
/// mode; `MALLOC_PERTURB_` and `mallopt(M_PERTURB)` reach glibc, which perturbs its own blocks.
pub static PRODUCTION: AtomicBool = AtomicBool::new(false);
/// Whether the CLI asked for records at all (`MEMCHECK_DIR` set).
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
/// How many forks separate this process from the one memcheck started (mod 256). Live blocks
/// carry the generation that allocated them, so a forked child's leak report covers only what the
/// child itself allocated.
pub static FORK_GEN: AtomicU8 = AtomicU8::new(0);

/// `MEMCHECK_DIR`, NUL-terminated, in a static buffer.
pub static mut DIR: [u8; 4096] = [0; 4096];
/// `--trace-children-skip`'s patterns (`MEMCHECK_TRACE_SKIP`), and their length.
static mut SKIP: [u8; 4096] = [0; 4096];
static SKIP_LEN: AtomicUsize = AtomicUsize::new(0);
/// `--trace-children-skip-by-arg`'s patterns (`MEMCHECK_TRACE_SKIP_BY_ARG`), and their length.
static mut SKIP_BY_ARG: [u8; 4096] = [0; 4096];
static SKIP_BY_ARG_LEN: AtomicUsize = AtomicUsize::new(0);

/// `--trace-children-skip-by-arg`'s comma-separated patterns (empty: none).
pub fn trace_skip_by_arg() -> &'static [u8] {
    let n = SKIP_BY_ARG_LEN.load(Ordering::Acquire);
    // SAFETY: SKIP_BY_ARG is written once in load, before SKIP_BY_ARG_LEN is published.
    unsafe { &(&*core::ptr::addr_of!(SKIP_BY_ARG))[..n] }
}

/// `--trace-children-skip`'s comma-separated patterns (empty: none).
pub fn trace_skip() -> &'static [u8] {
    let n = SKIP_LEN.load(Ordering::Acquire);
    // SAFETY: SKIP is written once in load, before SKIP_LEN is published.
    unsafe { &(&*core::ptr::addr_of!(SKIP))[..n] }
}

const ENV_MAX: usize = 256 << 10;

/// Reads the settings. Called once, from init.
pub fn load() {
    let mut buf = rust_alloc::vec![0u8; ENV_MAX];
    let n = crate::sys::read_file(c"/proc/self/environ", &mut buf);
    // glibc's MALLOC_PERTURB_ first, so explicit memcheck settings override it.
    for var in buf[..n].split(|&b| b == 0) {
        if let Some(v) = var.strip_prefix(b"MALLOC_PERTURB_=") {
            if let Some(p) = parse_u64(v) {
                set_perturb((p & 0xff) as i32);
            }
        }
    }
    for var in buf[..n].split(|&b| b == 0) {
        if let Some(v) = env_value(var, ENV_DIR) {
            if !v.is_empty() && v.len() < 4095 {
                // SAFETY: load runs once during init, before any reader of DIR.
                let dir = unsafe { &mut *core::ptr::addr_of_mut!(DIR) };
                dir[..v.len()].copy_from_slice(v);
                dir[v.len()] = 0;
                ACTIVE.store(true, Ordering::Relaxed);
            }
        } else if let Some(v) = env_value(var, ENV_TRACE_SKIP) {
            let n = v.len().min(4096);
            // SAFETY: load runs once during init, before any reader of SKIP.
            unsafe { (&mut *core::ptr::addr_of_mut!(SKIP))[..n].copy_from_slice(&v[..n]) };
            SKIP_LEN.store(n, Ordering::Release);
        } else if let Some(v) = env_value(var, ENV_TRACE_SKIP_BY_ARG) {
            let n = v.len().min(4096);
            // SAFETY: load runs once during init, before any reader of SKIP_BY_ARG.
            unsafe { (&mut *core::ptr::addr_of_mut!(SKIP_BY_ARG))[..n].copy_from_slice(&v[..n]) };
            SKIP_BY_ARG_LEN.store(n, Ordering::Release);
        } else if let Some(v) = env_value(var, ENV_OPTIONS) {
            apply(&ShimOptions::parse_lenient(v, |e| match e {
                OptionError::UnknownKey(_) | OptionError::NotKeyValue(_) => {
                    crate::log!("{e}: ignored")
                }
                OptionError::BadValue { .. } => crate::log!("{e}: the default is kept"),
            }));
        }
    }
}

/// The leak check asked for.
#[inline]
pub fn leak_check() -> LeakCheck {
    LeakCheck::from_u8(LEAK_CHECK.load(Ordering::Relaxed)).unwrap_or(DEFAULT.leak_check)
}

/// Whether production mode is on (see [`PRODUCTION`]).
#[inline(always)]
pub fn production() -> bool {
    PRODUCTION.load(Ordering::Relaxed)
}

fn keep_stacks() -> KeepStacks {
    KeepStacks::from_u8(KEEP_STACKS.load(Ordering::Relaxed)).unwrap_or(DEFAULT.keep_stacks)
}

/// Whether an allocation captures its stack (`--keep-stacktraces` other than `free`, `none`).
#[inline(always)]
pub fn keep_alloc_stack() -> bool {
    keep_stacks().alloc()
}

/// Whether a free captures its stack (`--keep-stacktraces` other than `alloc`, `none`).
#[inline(always)]
pub fn keep_free_stack() -> bool {
    keep_stacks().free()
}

/// Whether a freed block's free stack replaces its allocation stack
/// (`--keep-stacktraces=alloc-then-free`).
#[inline(always)]
pub fn free_replaces_alloc() -> bool {
    keep_stacks() == KeepStacks::AllocThenFree
}

/// The guard mode asked for.
#[inline]
pub fn guard_mode() -> GuardMode {
    GuardMode::from_u8(GUARD_MODE.load(Ordering::Relaxed)).unwrap_or(GuardMode::Off)
}

/// glibc's perturb semantics (`MALLOC_PERTURB_`, `mallopt(M_PERTURB)`): new blocks get
/// `p ^ 0xff`, freed blocks `p`; 0 turns both off.
pub fn set_perturb(p: i32) {
    if p == 0 {
        MALLOC_FILL.store(-1, Ordering::Relaxed);
        FREE_FILL.store(-1, Ordering::Relaxed);
    } else {
        MALLOC_FILL.store((p ^ 0xff) & 0xff, Ordering::Relaxed);
        FREE_FILL.store(p & 0xff, Ordering::Relaxed);
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(n)
}

/// Stores the parsed options, clamped to what the shim supports. Fills not given keep their
/// defaults (or what `MALLOC_PERTURB_` set).
fn apply(o: &ShimOptions) {
    LEAK_CHECK.store(o.leak_check as u8, Ordering::Relaxed);
    DEPTH.store(
        (o.depth as usize).clamp(1, memcheck_wire::MAX_FRAMES),
        Ordering::Relaxed,
    );
    REDZONE.store(
        ((o.redzone as usize).clamp(16, 4096) + 15) & !15,
        Ordering::Relaxed,
    );
    QUARANTINE.store(o.quarantine, Ordering::Relaxed);
    TRACE_CHILDREN.store(o.trace_children, Ordering::Relaxed);
    CHILD_SILENT.store(o.child_silent, Ordering::Relaxed);
    ABORT_ON_ERROR.store(o.abort_on_error, Ordering::Relaxed);
    GUARD_MODE.store(o.guard as u8, Ordering::Relaxed);
    SAMPLE_RATE.store(o.sample_rate, Ordering::Relaxed);
    GUARD_ALIGN.store(o.guard_align as usize, Ordering::Relaxed);
    MAX_ALLOCATION_SIZE.store(o.max_allocation_size, Ordering::Relaxed);
    CHECK_MEM_FNS.store(o.mem_checks(), Ordering::Relaxed);
    KEEP_STACKS.store(o.keep_stacks as u8, Ordering::Relaxed);
    PRODUCTION.store(o.is_production(), Ordering::Relaxed);
    for (fill, to) in [(o.malloc_fill, &MALLOC_FILL), (o.free_fill, &FREE_FILL)] {
        match fill {
            Some(Fill::Byte(b)) => to.store(b as i32, Ordering::Relaxed),
            Some(Fill::None) => to.store(-1, Ordering::Relaxed),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &[u8]) -> ShimOptions {
        ShimOptions::parse(s).expect("valid options")
    }

    #[test]
    fn options_apply_and_clamp() {
        apply(&parsed(b"depth=500"));
        assert_eq!(DEPTH.load(Ordering::Relaxed), memcheck_wire::MAX_FRAMES);
        apply(&parsed(b"depth=7,redzone=20,leak=summary,guard=2"));
        assert_eq!(DEPTH.load(Ordering::Relaxed), 7);
        assert_eq!(REDZONE.load(Ordering::Relaxed), 32);
        assert_eq!(leak_check(), LeakCheck::Summary);
        assert_eq!(guard_mode(), GuardMode::Underflow);
        // A bad value keeps the default, not the previous setting or a guess.
        let o = ShimOptions::parse_lenient(b"depth=x,leak=bogus", |_| {});
        apply(&o);
        assert_eq!(DEPTH.load(Ordering::Relaxed), 16);
        assert_eq!(leak_check(), LeakCheck::Full);
        assert_eq!(guard_mode(), GuardMode::Off);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        set_perturb(0x42);
        assert_eq!(MALLOC_FILL.load(Ordering::Relaxed), 0x42 ^ 0xff);
        assert_eq!(FREE_FILL.load(Ordering::Relaxed), 0x42);
        // Fills not given leave MALLOC_PERTURB_'s bytes alone.
        apply(&parsed(b"depth=3"));
        assert_eq!(MALLOC_FILL.load(Ordering::Relaxed), 0x42 ^ 0xff);
        apply(&parsed(b"ffill=none,mfill=7"));
        assert_eq!(FREE_FILL.load(Ordering::Relaxed), -1);
        assert_eq!(MALLOC_FILL.load(Ordering::Relaxed), 7);
        assert!(!production());
        // --keep-stacktraces: which walks the hot paths make.
        let walks = || (keep_alloc_stack(), keep_free_stack(), free_replaces_alloc());
        assert_eq!(walks(), (true, true, false));
        apply(&parsed(b"stacks=alloc"));
        assert_eq!(walks(), (true, false, false));
        apply(&parsed(b"stacks=free"));
        assert_eq!(walks(), (false, true, false));
        apply(&parsed(b"stacks=alloc-then-free"));
        assert_eq!(walks(), (true, true, true));
        apply(&parsed(b"stacks=none"));
        assert_eq!(walks(), (false, false, false));
        apply(&parsed(b""));
        assert_eq!(walks(), (true, true, false));
    }
}
