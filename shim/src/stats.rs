//! The live statistics page (`memcheck_wire::stats::Page`): a file in `MEMCHECK_DIR` mapped shared,
//! so `memcheck stats PID` reads the counters without stopping the process. Until the file exists
//! (and when no CLI asked for records) the counters live in a private static page.
use crate::{opts, sys};
use core::cell::Cell;
use core::fmt::Write;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use memcheck_wire::stats::{self, Page, Shard, CLASSES, SHARDS};

#[allow(clippy::declare_interior_mutable_const)] // a fresh zero for each field below
const Z: AtomicU64 = AtomicU64::new(0);
static STATIC_PAGE: Page = Page {
    magic: Z,
    version: Z,
    pid: Z,
    start_ns: Z,
    peak_bytes: Z,
    batched_live_bytes: Z,
    quarantine_bytes: Z,
    quarantine_blocks: Z,
    guard_blocks: Z,
    guard_bytes: Z,
    errors: Z,
    warnings: Z,
    arena_overhead: Z,
    mmap_overhead: Z,
    mmap_quarantine_blocks: Z,
    reserved: [Z; 1],
    shards: [const {
        Shard {
            live_blocks: Z,
            live_bytes: Z,
            allocs: Z,
            frees: Z,
            alloc_bytes: Z,
            hist: [Z; CLASSES],
        }
    }; SHARDS],
};

static PAGE: AtomicPtr<Page> = AtomicPtr::new(core::ptr::null_mut());

/// The page in use.
#[inline]
pub fn page() -> &'static Page {
    let p = PAGE.load(Ordering::Acquire);
    if p.is_null() {
        &STATIC_PAGE
    } else {
        // SAFETY: a published page is a shared mapping of PAGE_BYTES that is never unmapped.
        unsafe { &*p }
    }
}

fn copy_counters(from: &Page, to: &Page) {
    let copy = |a: &AtomicU64, b: &AtomicU64| b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
    for (a, b) in [
        (&from.peak_bytes, &to.peak_bytes),
        (&from.batched_live_bytes, &to.batched_live_bytes),
        (&from.quarantine_bytes, &to.quarantine_bytes),
        (&from.quarantine_blocks, &to.quarantine_blocks),
        (&from.guard_blocks, &to.guard_blocks),
        (&from.guard_bytes, &to.guard_bytes),
        (&from.errors, &to.errors),
        (&from.warnings, &to.warnings),
        (&from.arena_overhead, &to.arena_overhead),
        (&from.mmap_overhead, &to.mmap_overhead),
        (&from.mmap_quarantine_blocks, &to.mmap_quarantine_blocks),
    ] {
        copy(a, b);
    }
    for (sa, sb) in from.shards.iter().zip(to.shards.iter()) {
        for (a, b) in [
            (&sa.live_blocks, &sb.live_blocks),
            (&sa.live_bytes, &sb.live_bytes),
            (&sa.allocs, &sb.allocs),
            (&sa.frees, &sb.frees),
            (&sa.alloc_bytes, &sb.alloc_bytes),
        ] {
            copy(a, b);
        }
        for (a, b) in sa.hist.iter().zip(sb.hist.iter()) {
            copy(a, b);
        }
    }
}

/// Creates this process's page file and moves the counters into it. Called at start-up and in a
/// forked child (which continues from its parent's counters).
pub fn publish(start_ns: u64) {
    if !opts::ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    let mut path = sys::FixedBuf::<4200>::new();
    // SAFETY: DIR is written once during init, before this runs.
    let dir = unsafe { &*core::ptr::addr_of!(opts::DIR) };
    let dlen = dir.iter().position(|&b| b == 0).unwrap_or(0);
    path.buf[..dlen].copy_from_slice(&dir[..dlen]);
    path.len = dlen;
    let _ = write!(path, "/{}-{}{}\0", sys::getpid(), start_ns, stats::SUFFIX);
    // SAFETY: path is NUL-terminated.
    let fd = unsafe {
        libc::open(
            path.buf.as_ptr().cast(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return;
    }
    let len = stats::PAGE_BYTES.div_ceil(4096) * 4096;
    // SAFETY: fd is ours; the mapping is shared with the file and never unmapped.
    let p = unsafe {
        if libc::ftruncate(fd, len as libc::off_t) != 0 {
            libc::close(fd);
            return;
        }
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        libc::close(fd);
        p
    };
    if p == libc::MAP_FAILED {
        return;
    }
    // SAFETY: a fresh zeroed shared mapping of at least PAGE_BYTES, suitably aligned.
    let new = unsafe { &*(p as *const Page) };
    copy_counters(page(), new);
    new.pid.store(sys::getpid() as u64, Ordering::Relaxed);
    new.start_ns.store(start_ns, Ordering::Relaxed);
    new.version.store(stats::VERSION, Ordering::Relaxed);
    new.magic.store(stats::MAGIC, Ordering::Release);
    let old = PAGE.swap(p as *mut Page, Ordering::AcqRel);
    if !old.is_null() {
        // In a forked child: the parent's page is shared with the parent; let go of it.
        // SAFETY: `old` was mapped by this function with the same length; nothing uses it now.
        unsafe { libc::munmap(old.cast(), len) };
    }
}

/// Counts a new block in shard `shard` (called under that shard's lock).
#[inline]
pub fn on_alloc(shard: usize, size: usize) {
    let s = &page().shards[shard];
    let add = |a: &AtomicU64, v: u64| {
        a.store(a.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed)
    };
    add(&s.live_blocks, 1);
    add(&s.live_bytes, size as u64);
    add(&s.allocs, 1);
    add(&s.alloc_bytes, size as u64);
    add(&s.hist[stats::class_of(size as u64)], 1);
    batch(size as i64);
}

/// Counts a freed block in shard `shard` (called under that shard's lock).
#[inline]
pub fn on_free(shard: usize, size: usize) {
    let s = &page().shards[shard];
    let add = |a: &AtomicU64, v: u64| {
        a.store(a.load(Ordering::Relaxed).wrapping_add(v), Ordering::Relaxed)
    };
    add(&s.live_blocks, u64::MAX);
    add(&s.live_bytes, (size as u64).wrapping_neg());
    add(&s.frees, 1);
    add(&s.hist[stats::class_of(size as u64)], u64::MAX);
    batch(-(size as i64));
}

per_thread! {
    static DELTA: Cell<i64>;
    /// Pending overhead changes: arena bytes, mmap bytes, mmapped quarantined blocks.
    static OVERHEAD: Cell<(i64, i64, i64)>;
}

/// Records a change of the bytes glibc holds for memcheck rather than for the program.
#[inline]
pub fn overhead(arena: i64, mmap: i64, mmap_blocks: i64) {
    let flush = OVERHEAD.with(|c| {
        let (a, m, b) = c.get();
        let v = (a + arena, m + mmap, b + mmap_blocks);
        if v.0.abs() > BATCH || v.1.abs() > BATCH || v.2.abs() > 64 {
            c.set((0, 0, 0));
            Some(v)
        } else {
            c.set(v);
            None
        }
    });
    if let Some((a, m, b)) = flush {
        let p = page();
        p.arena_overhead.fetch_add(a as u64, Ordering::Relaxed);
        p.mmap_overhead.fetch_add(m as u64, Ordering::Relaxed);
        p.mmap_quarantine_blocks
            .fetch_add(b as u64, Ordering::Relaxed);
    }
}

/// Folds this thread's pending overhead into the page (before the program reads mallinfo).
pub fn flush_overhead() {
    let (a, m, b) = OVERHEAD.with(|c| c.replace((0, 0, 0)));
    let p = page();
    p.arena_overhead.fetch_add(a as u64, Ordering::Relaxed);
    p.mmap_overhead.fetch_add(m as u64, Ordering::Relaxed);
    p.mmap_quarantine_blocks
        .fetch_add(b as u64, Ordering::Relaxed);
}
const BATCH: i64 = 64 << 10;

/// Folds this thread's change of live bytes into the global figure and the peak, in batches so
/// threads do not meet on one cache line at every allocation.
#[inline]
fn batch(d: i64) {
    let pending = DELTA.with(|c| {
        let v = c.get() + d;
        if (-BATCH..=BATCH).contains(&v) {
            c.set(v);
            None
        } else {
            c.set(0);
            Some(v)
        }
    });
    if let Some(v) = pending {
        let p = page();
        let now = p
            .batched_live_bytes
            .fetch_add(v as u64, Ordering::Relaxed)
            .wrapping_add(v as u64);
        if (now as i64) > 0 {
            p.peak_bytes.fetch_max(now, Ordering::Relaxed);
        }
    }
}

/// Adds to a page counter (quarantine, guard, errors).
#[inline]
pub fn add(field: fn(&Page) -> &AtomicU64, v: i64) {
    field(page()).fetch_add(v as u64, Ordering::Relaxed);
}
