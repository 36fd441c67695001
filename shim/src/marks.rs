//! The marks of where blocks start, for [`crate::range`]'s lookups: every block of
//! [`crate::table`] has its user pointer marked in a hierarchical bitmap, one bit per 16-byte
//! granule (glibc's blocks start on one; a guarded block anywhere in its granule, and guarded
//! blocks are pages apart). The address space is cut into 256 MiB regions; a directory of 524288
//! region pointers (a static, 4 MiB of zero pages until touched) says which regions hold a block
//! at all, so an address in any other region (the stack, a string literal, most mappings) is
//! answered by one load. A region's bitmap (2 MiB of address space, its own mapping between two
//! PROT_NONE pages, committed page by page as it is written) has three summary levels above it,
//! each bit saying "some bit is set in this word below", so the nearest mark before or after an address is found
//! in at most four word loads up and four down, without a lock. The table also raises a
//! generation per shard here on every change ([`changed`]), which `range`'s per-thread cache
//! checks.
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

pub const GRANULE_SHIFT: usize = 4;
const REGION_SHIFT: usize = 28;
/// Addresses at or above this are never tracked (47-bit user address space).
const ADDR_LIMIT: usize = 1 << 47;
const REGIONS: usize = ADDR_LIMIT >> REGION_SHIFT;
/// Granules (bits) per region.
const BITS: usize = 1 << (REGION_SHIFT - GRANULE_SHIFT);
const LEVELS: usize = 4;
/// Words of each level: 2^18, 2^12, 64 and the one top word.
const WORDS: [usize; LEVELS] = [BITS >> 6, BITS >> 12, BITS >> 18, 1];
const OFFSETS: [usize; LEVELS] = [
    0,
    WORDS[0],
    WORDS[0] + WORDS[1],
    WORDS[0] + WORDS[1] + WORDS[2],
];
const REGION_WORDS: usize = OFFSETS[3] + WORDS[3];
const REGION_BYTES: usize = (REGION_WORDS * 8).next_multiple_of(4096);

/// One region: the levels of its bitmap, level 0 first, in one array of words.
struct Region {
    words: [AtomicU64; REGION_WORDS],
}

static DIR: [AtomicPtr<Region>; REGIONS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; REGIONS];

impl Region {
    #[inline]
    fn word(&self, level: usize, i: usize) -> &AtomicU64 {
        &self.words[OFFSETS[level] + i]
    }

    fn set(&self, bit: usize) {
        let mut i = bit;
        for level in 0..LEVELS {
            let old = self
                .word(level, i >> 6)
                .fetch_or(1 << (i & 63), Ordering::SeqCst);
            if old != 0 {
                return; // the levels above already say so
            }
            i >>= 6;
        }
    }

    fn clear(&self, bit: usize) {
        let m = 1u64 << (bit & 63);
        if self.word(0, bit >> 6).fetch_and(!m, Ordering::SeqCst) & !m != 0 {
            return;
        }
        // The word went empty: clear its summary bit above, then put it back if a bit was set
        // below meanwhile (that setter may have seen the summary bit still set and stopped);
        // and so on up while words go empty.
        let mut i = bit >> 6;
        for level in 0..LEVELS - 1 {
            let below = self.word(level, i);
            let up = self.word(level + 1, i >> 6);
            let sm = 1u64 << (i & 63);
            let left = up.fetch_and(!sm, Ordering::SeqCst) & !sm;
            if below.load(Ordering::SeqCst) != 0 {
                up.fetch_or(sm, Ordering::SeqCst);
                return;
            }
            if left != 0 {
                return;
            }
            i >>= 6;
        }
    }

    /// The highest set bit at or below `bit`, one attempt: `Err(restart)` when a summary bit led
    /// to an empty word (a clear in progress), to retry below `restart`.
    fn prev_once(&self, bit: usize) -> Result<Option<usize>, usize> {
        let mut idx = bit;
        let mut level = 0;
        let found = loop {
            let w = self.word(level, idx >> 6).load(Ordering::Acquire);
            let b = idx & 63;
            let mask = if b == 63 {
                u64::MAX
            } else {
                (1u64 << (b + 1)) - 1
            };
            let m = w & mask;
            if m != 0 {
                break (idx & !63) | (63 - m.leading_zeros() as usize);
            }
            if idx >> 6 == 0 || level + 1 == LEVELS {
                return Ok(None);
            }
            idx = (idx >> 6) - 1;
            level += 1;
        };
        let mut pos = found;
        while level > 0 {
            level -= 1;
            let w = self.word(level, pos).load(Ordering::Acquire);
            if w == 0 {
                let first = pos << (6 * (level + 1));
                return Err(first);
            }
            pos = pos * 64 + 63 - w.leading_zeros() as usize;
        }
        Ok(Some(pos))
    }

    /// The lowest set bit at or above `bit`, as [`Region::prev_once`].
    fn next_once(&self, bit: usize) -> Result<Option<usize>, usize> {
        let mut idx = bit;
        let mut level = 0;
        let found = loop {
            let w = self.word(level, idx >> 6).load(Ordering::Acquire);
            let m = w & (u64::MAX << (idx & 63));
            if m != 0 {
                break (idx & !63) | m.trailing_zeros() as usize;
            }
            let up = (idx >> 6) + 1;
            if level + 1 == LEVELS || up >= WORDS[level] {
                return Ok(None);
            }
            idx = up;
            level += 1;
        };
        let mut pos = found;
        while level > 0 {
            level -= 1;
            let w = self.word(level, pos).load(Ordering::Acquire);
            if w == 0 {
                let last = ((pos + 1) << (6 * (level + 1))) - 1;
                return Err(last + 1);
            }
            pos = pos * 64 + w.trailing_zeros() as usize;
        }
        Ok(Some(pos))
    }
}

#[inline]
fn region(addr: usize) -> Option<&'static Region> {
    if addr >= ADDR_LIMIT {
        return None;
    }
    let p = DIR[addr >> REGION_SHIFT].load(Ordering::Acquire);
    // SAFETY: a published region is never freed.
    (!p.is_null()).then(|| unsafe { &*p })
}

#[inline]
fn bit_of(addr: usize) -> usize {
    (addr & ((1 << REGION_SHIFT) - 1)) >> GRANULE_SHIFT
}

/// A region's bitmap: its own anonymous mapping, committed page by page as bits are set (not
/// from the private heap, whose growth by doubling pieces would cost a program under `RLIMIT_AS`
/// more address space than the bitmap needs), named `[anon:memcheck]` so the leak scan skips it.
///
/// A PROT_NONE page on each side: the kernel places the mapping next to the program's own (a
/// large block glibc just mapped), where a bad access a little past that block must still fault.
fn map_region() -> *mut Region {
    let Some(base) = crate::sys::reserve(REGION_BYTES + 2 * PAGE) else {
        return core::ptr::null_mut();
    };
    let p = (base + PAGE) as *mut libc::c_void;
    // SAFETY: the inside of the reservation just made, ours alone.
    if unsafe { libc::mprotect(p, REGION_BYTES, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        // SAFETY: the reservation made above.
        unsafe { libc::munmap(base as *mut _, REGION_BYTES + 2 * PAGE) };
        return core::ptr::null_mut();
    }
    crate::sys::name_mapping(p.cast(), REGION_BYTES, memcheck_wire::MAPPING_NAME_C);
    p.cast()
}

const PAGE: usize = 4096;

fn region_or_new(addr: usize) -> Option<&'static Region> {
    if let Some(r) = region(addr) {
        return Some(r);
    }
    if addr >= ADDR_LIMIT {
        return None;
    }
    let new = map_region();
    if new.is_null() {
        return None;
    }
    let slot = &DIR[addr >> REGION_SHIFT];
    match slot.compare_exchange(
        core::ptr::null_mut(),
        new,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: published just now; zeroed pages are an empty bitmap.
        Ok(_) => Some(unsafe { &*new }),
        Err(other) => {
            // SAFETY: the mapping made above (with its guard pages), never published.
            unsafe { libc::munmap((new as usize - PAGE) as *mut _, REGION_BYTES + 2 * PAGE) };
            // SAFETY: another thread published this region; it is never freed.
            Some(unsafe { &*other })
        }
    }
}

/// Marks a block's user pointer (the table calls it for every block it records). The regions a
/// long block reaches into exist too (empty), so a lookup there walks back to its start.
///
/// No address inside the block is computed here: this runs in every allocation, and a register
/// left holding one until the program crashes would be saved in the signal frame, where the leak
/// scan reads it as an interior pointer. Not inlined, so the allocation path's own frame (whose
/// dead bytes a crash's red zone keeps) is laid out as without it.
#[inline(never)]
pub fn add(key: usize, size: usize) {
    if !on() {
        return;
    }
    if let Some(r) = region_or_new(key) {
        r.set(bit_of(key));
    }
    let off = key & ((1 << REGION_SHIFT) - 1);
    if size > (1 << REGION_SHIFT) - off {
        let later = (off + (size - 1)) >> REGION_SHIFT;
        let first = key >> REGION_SHIFT;
        for i in 1..=later.min(MAX_BACK) {
            if first + i < REGIONS {
                region_or_new((first + i) << REGION_SHIFT);
            }
        }
    }
    scrub_registers();
}

/// Zeroes the caller-saved registers: the block's address must not outlive the allocation call
/// in one of them (the leak scan of a crash reads the crashed thread's registers as roots).
#[inline(always)]
fn scrub_registers() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only clobbers registers the calling convention lets a callee clobber.
    unsafe {
        core::arch::asm!(
            "xor ecx, ecx",
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            out("rcx") _,
            out("rdx") _,
            out("rsi") _,
            out("rdi") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            options(nomem, nostack)
        );
    }
}

/// Forgets a block's user pointer (the table calls it when a block leaves it).
#[inline(never)]
pub fn remove(key: usize) {
    if !on() {
        return;
    }
    if let Some(r) = region(key) {
        r.clear(bit_of(key));
    }
}

/// Whether some block may lie in the region of `addr`: the one-load fast path.
#[inline]
pub fn maybe_tracked(addr: usize) -> bool {
    region(addr).is_some()
}

pub const RETRIES: usize = 8;
/// How many regions back a lookup walks for the start of a long block (16 GiB).
const MAX_BACK: usize = 64;

/// The highest marked user pointer at or below `addr` (this region and, for a block that began
/// in an earlier one, the regions before it that exist), or none.
pub fn prev_key(addr: usize) -> Option<usize> {
    let mut a = addr;
    let mut regions = 0;
    loop {
        let r = region(a);
        if let Some(r) = r {
            let mut bit = bit_of(a);
            for _ in 0..RETRIES {
                match r.prev_once(bit) {
                    Ok(Some(b)) => {
                        return Some((a & !((1 << REGION_SHIFT) - 1)) | (b << GRANULE_SHIFT))
                    }
                    Ok(None) => break,
                    Err(0) => break,
                    Err(restart) => bit = restart - 1,
                }
            }
        }
        // A block more than a region long began in an earlier region (which then exists).
        let base = a & !((1 << REGION_SHIFT) - 1);
        regions += 1;
        if base == 0 || regions > MAX_BACK || r.is_none() {
            return None;
        }
        a = base - 1;
    }
}

/// The lowest marked user pointer at or above `addr` in its region, or none.
pub fn next_key(addr: usize) -> Option<usize> {
    let r = region(addr)?;
    let mut bit = bit_of(addr);
    for _ in 0..RETRIES {
        match r.next_once(bit) {
            Ok(Some(b)) => return Some((addr & !((1 << REGION_SHIFT) - 1)) | (b << GRANULE_SHIFT)),
            Ok(None) => return None,
            Err(restart) if restart >= BITS => return None,
            Err(restart) => bit = restart,
        }
    }
    None
}

/// A generation per table shard, raised (under the shard's lock) whenever a block of the shard
/// is freed, forgotten or changes family: a thread's cached verdict "this block is live" holds
/// while its shard's generation is unchanged.
pub static GEN: [AtomicU32; 64] = [const { AtomicU32::new(0) }; 64];

/// A block of `shard` changed (the table calls it under the shard's lock).
#[inline]
pub fn changed(shard: usize) {
    if on() {
        GEN[shard].fetch_add(1, Ordering::Release);
    }
}

/// The marks serve only the checked memory and string functions: with
/// `--check-mem-functions=no` the allocation path keeps none (the option is set once, in the
/// constructor, before the program allocates).
#[inline]
fn on() -> bool {
    crate::opts::CHECK_MEM_FNS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_starts_are_found_across_levels() {
        let base = 0x5a00_0000_0000usize;
        let keys = [
            base + 0x40,
            base + 0x1000,
            base + (3 << 20),
            base + (200 << 20),
        ];
        for &k in &keys {
            add(k, 16);
        }
        assert_eq!(prev_key(base + 0x40), Some(base + 0x40));
        assert_eq!(prev_key(base + 0x3f), None);
        assert_eq!(prev_key(base + 0xfff), Some(base + 0x40));
        assert_eq!(prev_key(base + (3 << 20) - 16), Some(base + 0x1000));
        assert_eq!(prev_key(base + (250 << 20)), Some(base + (200 << 20)));
        assert_eq!(
            next_key(base + 0x41),
            Some(base + 0x40),
            "the granule of 0x41"
        );
        assert_eq!(next_key(base + 0x50), Some(base + 0x1000));
        assert_eq!(next_key(base + 0x1010), Some(base + (3 << 20)));
        assert_eq!(next_key(base + (3 << 20) + 16), Some(base + (200 << 20)));
        assert_eq!(next_key(base + (200 << 20) + 16), None);
        remove(base + 0x1000);
        assert_eq!(prev_key(base + (3 << 20) - 16), Some(base + 0x40));
        assert_eq!(next_key(base + 0x50), Some(base + (3 << 20)));
        for &k in &keys {
            remove(k);
        }
        assert_eq!(prev_key(base + (250 << 20)), None);
        assert_eq!(next_key(base), None);
        assert!(maybe_tracked(base + 5));
        assert!(!maybe_tracked(base + (1 << 31)));
    }
}
