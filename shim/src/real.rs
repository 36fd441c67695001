//! glibc's own allocator entry points. glibc exports them under these names, so the shim reaches
//! the real allocator without a `dlsym` bootstrap (`malloc_trim` stays glibc's; `mallopt` and the
//! `mallinfo` family are glibc's through `exports`, with memcheck's share taken out).
//!
//! The wrappers count the call as a held shim lock while it runs: a signal handler that allocates
//! then must not enter glibc again (see `reentry`).
use libc::{c_void, size_t};

extern "C" {
    fn __libc_malloc(size: size_t) -> *mut c_void;
    fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
    /// Frees glibc's one-time buffers; called before the leak scan as Valgrind does.
    pub fn __libc_freeres();
}

/// Runs one of glibc's allocator calls counted as a held shim lock ([`crate::tls::count_lock`]):
/// a signal handler that allocates meanwhile must not enter glibc again, which is the same rule
/// as for an interrupted locked section (see `reentry`), and a deferred signal is raised when the
/// call returns.
#[inline]
fn marked<T>(f: impl FnOnce() -> T) -> T {
    crate::tls::count_lock(1);
    let r = f();
    crate::tls::count_lock(-1);
    r
}

/// glibc's `malloc`.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    // SAFETY: malloc accepts any size.
    marked(|| unsafe { __libc_malloc(size) }).cast()
}

/// glibc's `calloc`.
#[inline]
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    // SAFETY: calloc accepts any sizes (it checks the product).
    marked(|| unsafe { __libc_calloc(n, size) }).cast()
}

/// glibc's `memalign`; `align` is a power of two.
#[inline]
pub fn memalign(align: usize, size: usize) -> *mut u8 {
    // SAFETY: memalign accepts any size and a power-of-two alignment.
    marked(|| unsafe { __libc_memalign(align, size) }).cast()
}

/// glibc's `free`.
///
/// # Safety
/// `p` is null or a block from one of the functions above, not yet freed.
#[inline]
pub unsafe fn free(p: *mut u8) {
    // SAFETY: per the caller.
    marked(|| unsafe { __libc_free(p.cast()) })
}

extern "C" {
    fn __libc_realloc(p: *mut c_void, size: size_t) -> *mut c_void;
}

/// glibc's `realloc` (production mode's blocks that memcheck never recorded).
///
/// # Safety
/// `p` is null or a live block from one of the functions above.
#[inline]
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: per the caller.
    marked(|| unsafe { __libc_realloc(p.cast(), size) }).cast()
}

/// glibc's `malloc_usable_size` of a block from one of the functions above (its `musable`: the
/// chunk size less its header, 0 for a chunk glibc does not count in use). glibc exports the
/// function only under the name the shim itself exports, so it is computed from the chunk header,
/// as glibc does.
///
/// # Safety
/// `p` is a block from one of the functions above.
#[inline]
pub unsafe fn usable_size(p: *mut u8) -> usize {
    let chunk = p as usize - 16;
    // SAFETY: a glibc block is preceded by its chunk header; an in-use chunk's successor's size
    // word (its PREV_INUSE bit) lies inside the heap, right after the chunk.
    unsafe {
        let word = *((chunk + 8) as *const usize);
        let size = word & !7;
        if word & 2 != 0 {
            return size - 16; // mmapped
        }
        let next = *((chunk + size + 8) as *const usize);
        if next & 1 != 0 {
            size - 8
        } else {
            0
        }
    }
}
