//! The one table of settings the CLI passes in `MEMCHECK_OPTIONS` (`key=value` pairs separated by
//! commas) and `MEMCHECK_DIR`. Read from `/proc/self/environ`, which works before libc has set up
//! `environ` (the first `malloc` can come from the dynamic loader).
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Leak check: 0 no, 1 summary, 2 full.
pub static LEAK_CHECK: AtomicU8 = AtomicU8::new(2);
/// Frames recorded per allocation.
pub static DEPTH: AtomicUsize = AtomicUsize::new(24);
/// Bytes of canary redzone before each block (at least 16, a multiple of 16).
pub static REDZONE: AtomicUsize = AtomicUsize::new(16);
/// Bytes of freed blocks held back from reuse.
pub static QUARANTINE: AtomicU64 = AtomicU64::new(8 << 20);
/// Whether exec'd children keep the shim.
pub static TRACE_CHILDREN: AtomicBool = AtomicBool::new(false);
/// Abort after the first error report (`--on-error=abort`).
pub static ABORT_ON_ERROR: AtomicBool = AtomicBool::new(false);
/// Whether the CLI asked for records at all (`MEMCHECK_DIR` set).
pub static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Errors found so far in this process.
pub static ERRORS: AtomicU32 = AtomicU32::new(0);

/// `MEMCHECK_DIR`, NUL-terminated, in a static buffer.
pub static mut DIR: [u8; 4096] = [0; 4096];

const ENV_MAX: usize = 256 << 10;

/// Reads the settings. Called once, from init.
pub fn load() {
    let buf = rust_alloc::vec![0u8; ENV_MAX];
    let mut buf = buf;
    let n = crate::sys::read_file(c"/proc/self/environ", &mut buf);
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
        (b"redzone", Some(n)) => REDZONE.store(
            ((n as usize).clamp(16, 4096) + 15) & !15,
            Ordering::Relaxed,
        ),
        (b"quarantine", Some(n)) => QUARANTINE.store(n, Ordering::Relaxed),
        (b"children", Some(n)) => TRACE_CHILDREN.store(n != 0, Ordering::Relaxed),
        (b"abort", Some(n)) => ABORT_ON_ERROR.store(n != 0, Ordering::Relaxed),
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
    }
}
