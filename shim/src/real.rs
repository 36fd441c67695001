//! glibc's own allocator entry points. glibc exports them under these names, so the shim reaches
//! the real allocator without a `dlsym` bootstrap and `mallinfo2`/`malloc_trim`/`mallopt` stay real.
use libc::{c_void, size_t};

extern "C" {
    pub fn __libc_malloc(size: size_t) -> *mut c_void;
    pub fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    pub fn __libc_realloc(p: *mut c_void, size: size_t) -> *mut c_void;
    pub fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
    pub fn __libc_free(p: *mut c_void);
    /// Frees glibc's one-time buffers; called before the leak scan as Valgrind does.
    pub fn __libc_freeres();
}
