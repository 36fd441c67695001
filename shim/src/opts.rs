//! The one table of settings the CLI passes in `MEMCHECK_OPTIONS` (`key=value` pairs separated by
//! commas) and `MEMCHECK_DIR`. Read from `/proc/self/environ`, which works before libc has set up
//! `environ` (the first `malloc` can come from the dynamic loader).
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Leak check: 0 no, 1 summary, 2 full.
pub static LEAK_CHECK: AtomicU8 = AtomicU8::new(2);
/// Frames recorded per allocation.
pub static DEPTH: AtomicUsize = AtomicUsize::new(16);
/// Bytes of canary redzone before each block (at least 16, a multiple of 16).
pub static REDZONE: AtomicUsize = AtomicUsize::new(16);
/// Bytes of freed blocks held back from reuse.
pub static QUARANTINE: AtomicU64 = AtomicU64::new(8 << 20);
/// Whether exec'd children keep the shim.
pub static TRACE_CHILDREN: AtomicBool = AtomicBool::new(false);
/// Abort after the first error report (`--on-error=abort`).
pub static ABORT_ON_ERROR: AtomicBool = AtomicBool::new(false);
/// Byte written into new blocks (not calloc's), or -1 for none.
pub static MALLOC_FILL: AtomicI32 = AtomicI32::new(0xbe);
/// Byte written into freed blocks, or -1 for none.
pub static FREE_FILL: AtomicI32 = AtomicI32::new(0xfd);
/// Guard mode: 0 off, 1 overflow (block end against a PROT_NONE page), 2 underflow.
pub static GUARD: AtomicU8 = AtomicU8::new(0);
/// With guard mode, guard 1 block in N (0: every block).
pub static SAMPLE_RATE: AtomicU64 = AtomicU64::new(0);
/// Whether the CLI asked for records at all (`MEMCHECK_DIR` set).
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
/// How many forks separate this process from the one memcheck started (mod 256). Live blocks
/// carry the generation that allocated them, so a forked child's leak report covers only what the
/// child itself allocated.
pub static FORK_GEN: AtomicU8 = AtomicU8::new(0);

/// `MEMCHECK_DIR`, NUL-terminated, in a static buffer.
pub static mut DIR: [u8; 4096] = [0; 4096];

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
        if let Some(v) = var.strip_prefix(b"MEMCHECK_DIR=") {
            if !v.is_empty() && v.len() < 4095 {
                // SAFETY: load runs once during init, before any reader of DIR.
                let dir = unsafe { &mut *core::ptr::addr_of_mut!(DIR) };
                dir[..v.len()].copy_from_slice(v);
                dir[v.len()] = 0;
                ACTIVE.store(true, Ordering::Relaxed);
            }
        } else if let Some(v) = var.strip_prefix(b"MEMCHECK_OPTIONS=") {
            for kv in v.split(|&b| b == b',') {
                apply(kv);
            }
        }
    }
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

fn apply(kv: &[u8]) {
    let mut it = kv.splitn(2, |&b| b == b'=');
    let (Some(k), Some(v)) = (it.next(), it.next()) else {
        return;
    };
    let num = parse_u64(v);
    match (k, num) {
        (b"leak", _) => LEAK_CHECK.store(
            match v {
                b"no" => 0,
                b"summary" => 1,
                _ => 2,
            },
            Ordering::Relaxed,
        ),
        (b"depth", Some(n)) => DEPTH.store(
            (n as usize).clamp(1, memcheck_wire::MAX_FRAMES),
            Ordering::Relaxed,
        ),
        (b"redzone", Some(n)) => {
            REDZONE.store(((n as usize).clamp(16, 4096) + 15) & !15, Ordering::Relaxed)
        }
        (b"quarantine", Some(n)) => QUARANTINE.store(n, Ordering::Relaxed),
        (b"children", Some(n)) => TRACE_CHILDREN.store(n != 0, Ordering::Relaxed),
        (b"abort", Some(n)) => ABORT_ON_ERROR.store(n != 0, Ordering::Relaxed),
        (b"mfill", _) => {
            MALLOC_FILL.store(num.map_or(-1, |n| (n & 0xff) as i32), Ordering::Relaxed)
        }
        (b"ffill", _) => FREE_FILL.store(num.map_or(-1, |n| (n & 0xff) as i32), Ordering::Relaxed),
        (b"guard", Some(n)) => GUARD.store(n.min(2) as u8, Ordering::Relaxed),
        (b"sample", Some(n)) => SAMPLE_RATE.store(n, Ordering::Relaxed),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_clamp() {
        apply(b"depth=500");
        assert_eq!(DEPTH.load(Ordering::Relaxed), memcheck_wire::MAX_FRAMES);
        apply(b"depth=7");
        assert_eq!(DEPTH.load(Ordering::Relaxed), 7);
        apply(b"redzone=20");
        assert_eq!(REDZONE.load(Ordering::Relaxed), 32);
        apply(b"leak=summary");
        assert_eq!(LEAK_CHECK.load(Ordering::Relaxed), 1);
        apply(b"depth=x");
        assert_eq!(DEPTH.load(Ordering::Relaxed), 7);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        set_perturb(0x42);
        assert_eq!(MALLOC_FILL.load(Ordering::Relaxed), 0x42 ^ 0xff);
        assert_eq!(FREE_FILL.load(Ordering::Relaxed), 0x42);
        apply(b"ffill=none");
        assert_eq!(FREE_FILL.load(Ordering::Relaxed), -1);
    }
}
