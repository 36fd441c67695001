//! The live statistics page: a file the shim maps shared (`MEMCHECK_DIR/PID-STARTNS.mcstats`) and
//! updates in place, which `memcheck stats PID` reads without stopping or signalling the process.
//! Every field is a little-endian u64 at a fixed offset (field index times 8).
use crate::codec::DecodeError;
use core::sync::atomic::AtomicU64;

pub const MAGIC: u64 = 0x3154_4154_534b_434d; // "MCKSTAT1"
pub const VERSION: u64 = 1;
pub const SHARDS: usize = 64;
/// Size classes of the histogram: class i holds blocks of at most 16 << i bytes; the last
/// class holds everything larger.
pub const CLASSES: usize = 24;
/// File name suffix of the page.
pub const SUFFIX: &str = ".mcstats";

/// The size class of a block.
pub fn class_of(size: u64) -> usize {
    if size <= 16 {
        0
    } else {
        ((64 - (size - 1).leading_zeros()) as usize - 4).min(CLASSES - 1)
    }
}

/// Counters of one block-table shard, updated under that shard's lock.
#[repr(C)]
pub struct Shard {
    pub live_blocks: AtomicU64,
    pub live_bytes: AtomicU64,
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
    pub alloc_bytes: AtomicU64,
    /// Live blocks by size class.
    pub hist: [AtomicU64; CLASSES],
}

/// The whole page.
#[repr(C)]
pub struct Page {
    pub magic: AtomicU64,
    pub version: AtomicU64,
    pub pid: AtomicU64,
    pub start_ns: AtomicU64,
    /// Highest live byte count seen (updated in batches of at most 64 KiB per thread).
    pub peak_bytes: AtomicU64,
    /// Live bytes as batched per thread (the exact figure is the sum of the shards).
    pub batched_live_bytes: AtomicU64,
    pub quarantine_bytes: AtomicU64,
    pub quarantine_blocks: AtomicU64,
    pub guard_blocks: AtomicU64,
    /// Bytes of pages committed for live guarded blocks (data pages; guard pages cost none).
    pub guard_bytes: AtomicU64,
    pub errors: AtomicU64,
    pub warnings: AtomicU64,
    /// Bytes glibc holds in arena chunks that are not the program's: redzones of live blocks
    /// and whole quarantined blocks (batched per thread like the live bytes).
    pub arena_overhead: AtomicU64,
    /// The same for blocks in mmapped chunks.
    pub mmap_overhead: AtomicU64,
    /// Quarantined blocks in mmapped chunks.
    pub mmap_quarantine_blocks: AtomicU64,
    pub reserved: [AtomicU64; 1],
    pub shards: [Shard; SHARDS],
}

pub const HEADER_FIELDS: usize = 16;
pub const SHARD_FIELDS: usize = 5 + CLASSES;
/// Bytes of the page.
pub const PAGE_BYTES: usize = (HEADER_FIELDS + SHARDS * SHARD_FIELDS) * 8;

/// A decoded page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pid: u64,
    pub start_ns: u64,
    pub live_blocks: u64,
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub allocs: u64,
    pub frees: u64,
    pub alloc_bytes: u64,
    pub quarantine_bytes: u64,
    pub quarantine_blocks: u64,
    pub guard_blocks: u64,
    pub guard_bytes: u64,
    pub errors: u64,
    pub warnings: u64,
    pub arena_overhead: u64,
    pub mmap_overhead: u64,
    pub mmap_quarantine_blocks: u64,
    pub hist: [u64; CLASSES],
}

/// Decodes a page read from the file.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    if bytes.len() < PAGE_BYTES {
        return Err(DecodeError::Truncated);
    }
    let w = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(a)
    };
    if w(0) != MAGIC {
        return Err(DecodeError::Magic);
    }
    if w(1) != VERSION {
        return Err(DecodeError::Version(w(1) as u32));
    }
    let mut s = Snapshot {
        pid: w(2),
        start_ns: w(3),
        peak_bytes: w(4),
        quarantine_bytes: w(6),
        quarantine_blocks: w(7),
        guard_blocks: w(8),
        guard_bytes: w(9),
        errors: w(10),
        warnings: w(11),
        arena_overhead: w(12),
        mmap_overhead: w(13),
        mmap_quarantine_blocks: w(14),
        ..Snapshot::default()
    };
    for sh in 0..SHARDS {
        let b = HEADER_FIELDS + sh * SHARD_FIELDS;
        s.live_blocks = s.live_blocks.wrapping_add(w(b));
        s.live_bytes = s.live_bytes.wrapping_add(w(b + 1));
        s.allocs += w(b + 2);
        s.frees += w(b + 3);
        s.alloc_bytes += w(b + 4);
        for c in 0..CLASSES {
            s.hist[c] = s.hist[c].wrapping_add(w(b + 5 + c));
        }
    }
    s.peak_bytes = s.peak_bytes.max(s.live_bytes);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_field_count() {
        assert_eq!(core::mem::size_of::<Page>(), PAGE_BYTES);
        assert_eq!(core::mem::size_of::<Shard>(), SHARD_FIELDS * 8);
    }

    #[test]
    fn classes_are_powers_of_two_from_16() {
        assert_eq!(class_of(0), 0);
        assert_eq!(class_of(16), 0);
        assert_eq!(class_of(17), 1);
        assert_eq!(class_of(32), 1);
        assert_eq!(class_of(33), 2);
        assert_eq!(class_of(u64::MAX), CLASSES - 1);
    }

    #[test]
    fn pages_decode_summing_shards() {
        let mut raw = [0u8; PAGE_BYTES];
        let mut put = |i: usize, v: u64| raw[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        put(0, MAGIC);
        put(1, VERSION);
        put(2, 42);
        put(HEADER_FIELDS, 3); // shard 0 live blocks
        put(HEADER_FIELDS + 1, 300);
        put(HEADER_FIELDS + SHARD_FIELDS, 2); // shard 1
        put(HEADER_FIELDS + SHARD_FIELDS + 1, 200);
        let s = decode(&raw).unwrap();
        assert_eq!(
            (s.pid, s.live_blocks, s.live_bytes, s.peak_bytes),
            (42, 5, 500, 500)
        );
        assert_eq!(decode(&raw[..10]), Err(DecodeError::Truncated));
    }
}
