//! The shim's own small memory writes: fills and canaries without a call to `memset`, which in
//! the shim is its own checked hook (`memfn`).

/// Writes `n` bytes of `byte` at `p`: the shim's fills and canaries. Up to 64 bytes (redzones,
/// small blocks) with a few overlapping stores and no call; more through `memset`, which is the
/// shim's own checked hook (it passes the shim's calls straight on), so small fills skip it.
///
/// # Safety
/// `[p, p + n)` must be writable.
#[inline(always)]
pub unsafe fn set(p: *mut u8, byte: u8, n: usize) {
    if n > 64 {
        // SAFETY: the caller's range.
        unsafe { core::ptr::write_bytes(p, byte, n) };
        return;
    }
    let w = u64::from_ne_bytes([byte; 8]);
    let v = (w as u128) << 64 | w as u128;
    // SAFETY: every store below lies in [p, p + n): the pairs overlap instead of looping (a
    // loop would be turned back into a memset call).
    unsafe {
        if n >= 16 {
            (p as *mut u128).write_unaligned(v);
            (p.add(n - 16) as *mut u128).write_unaligned(v);
            if n > 32 {
                (p.add(16) as *mut u128).write_unaligned(v);
                (p.add(n - 32) as *mut u128).write_unaligned(v);
            }
        } else if n >= 8 {
            (p as *mut u64).write_unaligned(w);
            (p.add(n - 8) as *mut u64).write_unaligned(w);
        } else if n >= 4 {
            (p as *mut u32).write_unaligned(w as u32);
            (p.add(n - 4) as *mut u32).write_unaligned(w as u32);
        } else if n > 0 {
            *p = byte;
            *p.add(n - 1) = byte;
            *p.add(n / 2) = byte;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_writes_exactly_its_range() {
        for n in 0..=140usize {
            for off in 0..8usize {
                let mut buf = [0u8; 160];
                // SAFETY: off + n <= 148 < 160.
                unsafe { set(buf.as_mut_ptr().add(off), 0xab, n) };
                for (i, &b) in buf.iter().enumerate() {
                    let inside = i >= off && i < off + n;
                    assert_eq!(b, if inside { 0xab } else { 0 }, "n {n} off {off} byte {i}");
                }
            }
        }
    }
}
