//! `dlclose` through the shim: objects that go keep their names in the report. Before the object
//! can go, the record file gets a MODULE record of every loaded object (what it lacks); after an
//! object went, the STACK record of every stored stack with a frame inside it, and the object is
//! forgotten among the written modules, so an object loaded later at the same addresses gets a
//! record of its own. The CLI names a stack's frames with the module records that precede the
//! stack's own (a module record holds until a later one overlaps it).
use crate::modules::{all, Module};
use rust_alloc::vec::Vec;

type DlcloseFn = unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int;

/// The real `dlclose`, with the records described above.
///
/// # Safety
/// As for the real `dlclose`.
pub unsafe fn dlclose(handle: *mut libc::c_void) -> libc::c_int {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let mut real = REAL.load(Ordering::Acquire);
    if real == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name: the next object's dlclose (libc's).
        real = unsafe { libc::dlsym(libc::RTLD_NEXT, c"dlclose".as_ptr()) } as usize;
        if real == 0 {
            return -1;
        }
        REAL.store(real, Ordering::Release);
    }
    // SAFETY: `real` is the address of a function with dlclose's signature.
    let real: DlcloseFn = unsafe { core::mem::transmute::<usize, DlcloseFn>(real) };
    if !crate::opts::ACTIVE.load(Ordering::Relaxed) {
        // SAFETY: forwarded as the caller gave it.
        return unsafe { real(handle) };
    }
    let before = all();
    crate::record::emit_modules();
    // SAFETY: forwarded as the caller gave it.
    let rc = unsafe { real(handle) };
    if rc != 0 {
        return rc;
    }
    let after = all();
    let gone: Vec<&Module> = before
        .iter()
        .filter(|b| {
            !after
                .iter()
                .any(|a| a.bias == b.bias && a.start == b.start && a.path == b.path)
        })
        .collect();
    if gone.is_empty() {
        return rc;
    }
    crate::depot::for_each(|id, frames| {
        let inside = frames.iter().any(|&pc| {
            gone.iter()
                .any(|m| pc as usize > m.start && pc as usize <= m.end)
        });
        if inside {
            crate::record::emit_stack(id);
        }
    });
    let keys: Vec<(usize, usize)> = gone.iter().map(|m| (m.bias, m.start)).collect();
    crate::record::forget_modules(&keys);
    rc
}
