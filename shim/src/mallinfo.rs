//! glibc's heap figures with memcheck's own share taken out (`mallinfo2`, `mallinfo`,
//! `malloc_stats`, exported by `exports`): redzones and quarantined blocks are memcheck's, not the
//! program's, and guarded blocks live in memcheck's pages, counted as mmapped blocks.
use crate::sys;
use core::ffi::{c_int, CStr};
use core::sync::atomic::Ordering;

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

/// glibc's `struct mallinfo` (int fields).
#[repr(C)]
pub struct Mallinfo {
    arena: c_int,
    ordblks: c_int,
    smblks: c_int,
    hblks: c_int,
    hblkhd: c_int,
    usmblks: c_int,
    fsmblks: c_int,
    uordblks: c_int,
    fordblks: c_int,
    keepcost: c_int,
}

/// The next definition of `name` (glibc's), looked up once.
fn next_symbol(cache: &core::sync::atomic::AtomicUsize, name: &CStr) -> usize {
    let f = cache.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; not called from a hook path.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize;
    cache.store(f, Ordering::Relaxed);
    f
}

/// glibc's figures with memcheck's own share taken out: redzones and quarantined blocks are not
/// the program's, and guarded blocks live in memcheck's pages, counted as mmapped blocks.
pub fn mallinfo2() -> Mallinfo2 {
    static REAL: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    let f = next_symbol(&REAL, c"mallinfo2");
    if f == 0 {
        return Mallinfo2 {
            arena: 0,
            ordblks: 0,
            smblks: 0,
            hblks: 0,
            hblkhd: 0,
            usmblks: 0,
            fsmblks: 0,
            uordblks: 0,
            fordblks: 0,
            keepcost: 0,
        };
    }
    // SAFETY: f is glibc's mallinfo2, `struct mallinfo2 mallinfo2(void)`.
    let real: extern "C" fn() -> Mallinfo2 = unsafe { core::mem::transmute(f) };
    let mut m = real();
    crate::stats::flush_overhead();
    let p = crate::stats::page();
    let get = |a: &core::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as usize;
    m.uordblks = m.uordblks.saturating_sub(get(&p.arena_overhead));
    m.hblkhd = m.hblkhd.saturating_sub(get(&p.mmap_overhead)) + get(&p.guard_bytes);
    m.hblks = m.hblks.saturating_sub(get(&p.mmap_quarantine_blocks)) + get(&p.guard_blocks);
    m
}

pub fn mallinfo() -> Mallinfo {
    let m = mallinfo2();
    Mallinfo {
        arena: m.arena as c_int,
        ordblks: m.ordblks as c_int,
        smblks: m.smblks as c_int,
        hblks: m.hblks as c_int,
        hblkhd: m.hblkhd as c_int,
        usmblks: m.usmblks as c_int,
        fsmblks: m.fsmblks as c_int,
        uordblks: m.uordblks as c_int,
        fordblks: m.fordblks as c_int,
        keepcost: m.keepcost as c_int,
    }
}

/// glibc's report, then how much of its "in use" is memcheck's rather than the program's.
pub fn malloc_stats() {
    static REAL: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
    let f = next_symbol(&REAL, c"malloc_stats");
    if f != 0 {
        // SAFETY: f is glibc's `void malloc_stats(void)`.
        let real: extern "C" fn() = unsafe { core::mem::transmute(f) };
        real();
    }
    crate::stats::flush_overhead();
    let p = crate::stats::page();
    let get = |a: &core::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut b = sys::FixedBuf::<256>::new();
    let _ = core::fmt::Write::write_fmt(
        &mut b,
        format_args!(
            "memcheck: {} of the in-use bytes above are memcheck's redzones and quarantined blocks; {} bytes in {} guarded blocks are not included\n",
            get(&p.arena_overhead) + get(&p.mmap_overhead),
            get(&p.guard_bytes),
            get(&p.guard_blocks)
        ),
    );
    sys::write_all(2, b.as_bytes());
}
