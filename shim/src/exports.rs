//! The exported C symbols, and nothing else: thin wrappers that keep glibc's argument checks and
//! errno conventions and call the bodies elsewhere: the malloc family and C++ operators in
//! [`crate::alloc`], the heap figures in [`crate::mallinfo`], `sigaction`/`signal` in
//! [`crate::fault`], `setrlimit`/`prlimit` in [`crate::rlimit`], `dlclose` in [`crate::unload`].
#![allow(non_snake_case)]

use crate::alloc::{self, allocate, release, release_form, DeleteForm, DEFAULT_ALIGN};
use crate::init;
use crate::report;
use crate::sys;
use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicU32, Ordering};
use libc::size_t;
use memcheck_wire::{ErrorKind, Family};

const PTR: usize = core::mem::size_of::<usize>();
/// glibc never aligns below this for memalign (MINSIZE).
const MIN_ALIGN: usize = 32;

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// glibc's minor version (2.x), read once.
fn glibc_minor() -> u32 {
    static MINOR: AtomicU32 = AtomicU32::new(0);
    let m = MINOR.load(Ordering::Relaxed);
    if m != 0 {
        return m;
    }
    extern "C" {
        fn gnu_get_libc_version() -> *const libc::c_char;
    }
    // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(gnu_get_libc_version()) }.to_bytes();
    let minor = v
        .split(|&b| b == b'.')
        .nth(1)
        .map(|s| {
            s.iter()
                .take_while(|c| c.is_ascii_digit())
                .fold(0u32, |n, &c| n * 10 + (c - b'0') as u32)
        })
        .unwrap_or(36);
    MINOR.store(minor.max(1), Ordering::Relaxed);
    minor
}

/// glibc's `_mid_memalign`: alignment fix-ups, then the allocation. An alignment up to 16 is
/// malloc's in glibc; in guard mode the block gets at least the alignment asked for.
fn mid_memalign(align: usize, size: usize) -> *mut u8 {
    if align <= 16 {
        return allocate(size, align.next_power_of_two(), Family::Malloc, false);
    }
    if align > usize::MAX / 2 + 1 {
        init::ensure();
        report::warn(ErrorKind::InvalidAlignment, size as u64, align as u64);
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    let align = align.max(MIN_ALIGN).next_power_of_two();
    allocate(size, align, Family::Malloc, false)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc(size: size_t) -> *mut c_void {
    allocate(size, DEFAULT_ALIGN, Family::Malloc, false).cast()
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    release(p.cast(), Family::Malloc)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn calloc(n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => allocate(total, DEFAULT_ALIGN, Family::Malloc, true).cast(),
        None => {
            init::ensure();
            report::warn(ErrorKind::CallocOverflow, n as u64, size as u64);
            sys::set_errno(libc::ENOMEM);
            core::ptr::null_mut()
        }
    }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: size_t) -> *mut c_void {
    alloc::reallocate(p.cast(), size).cast()
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: size_t, size: size_t) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => alloc::reallocate(p.cast(), total).cast(),
        None => {
            alloc::size_overflows(usize::MAX);
            sys::set_errno(libc::ENOMEM);
            core::ptr::null_mut()
        }
    }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if !align.is_multiple_of(PTR) || !(align / PTR).is_power_of_two() || align == 0 {
        init::ensure();
        let saved = sys::errno();
        report::warn(ErrorKind::InvalidAlignment, size as u64, align as u64);
        sys::set_errno(saved);
        return libc::EINVAL;
    }
    let saved = sys::errno();
    let p = mid_memalign(align, size);
    if p.is_null() {
        sys::set_errno(saved);
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer, as posix_memalign requires.
    unsafe { *out = p.cast() };
    0
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    if glibc_minor() >= 38 && (align == 0 || !align.is_power_of_two()) {
        init::ensure();
        report::warn(ErrorKind::InvalidAlignment, size as u64, align as u64);
        sys::set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    mid_memalign(align, size).cast()
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    mid_memalign(align, size).cast()
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn valloc(size: size_t) -> *mut c_void {
    mid_memalign(page_size(), size).cast()
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    let page = page_size();
    match size.checked_add(page - 1) {
        Some(s) => mid_memalign(page, s & !(page - 1)).cast(),
        None => {
            alloc::size_overflows(size);
            sys::set_errno(libc::ENOMEM);
            core::ptr::null_mut()
        }
    }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> size_t {
    alloc::usable_size(p.cast())
}

extern "C" {
    fn __libc_mallopt(param: c_int, value: c_int) -> c_int;
}

/// `mallopt` stays glibc's; `M_PERTURB` also sets the shim's fill bytes, as glibc's own would.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    const M_PERTURB: c_int = -6;
    init::ensure();
    if param == M_PERTURB {
        crate::opts::set_perturb(value & 0xff);
    }
    // SAFETY: glibc's own implementation, same arguments.
    unsafe { __libc_mallopt(param, value) }
}

/// glibc's `mallinfo2` with memcheck's own share taken out (see `mallinfo`).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallinfo2() -> crate::mallinfo::Mallinfo2 {
    init::ensure();
    crate::mallinfo::mallinfo2()
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn mallinfo() -> crate::mallinfo::Mallinfo {
    crate::mallinfo::mallinfo()
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn malloc_stats() {
    init::ensure();
    crate::mallinfo::malloc_stats()
}

/// `_exit` runs the exit checks (the exit record, canaries, the leak check) as `exit` would at its
/// end, then ends the process with the `exit_group` system call, as glibc's `_exit` does. A `vfork`
/// child (which shares its parent's memory) skips the checks.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn _exit(status: c_int) -> ! {
    end_now(status, _exit as *const () as usize)
}

/// `_Exit`: the same as `_exit`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn _Exit(status: c_int) -> ! {
    end_now(status, _Exit as *const () as usize)
}

/// The exit checks with the stack live from the call of `entry` (`_exit` or `_Exit`) up, then
/// the end.
#[inline(always)]
fn end_now(status: c_int, entry: usize) -> ! {
    if !crate::exit::shared_with_parent() {
        crate::exit::finish(
            crate::exit::Ending::Exit(status),
            crate::scan::Roots::CallTo(entry),
            false,
        );
    }
    loop {
        // SAFETY: exit_group ends every thread of the process and does not return.
        unsafe { libc::syscall(libc::SYS_exit_group, status) };
    }
}

/// `execve`: noted when the new program is not followed, without the shim when
/// `--trace-children-skip` matches it (see [`crate::exec`]).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execve(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    crate::exec::around_exec(path, false, argv, envp, |env| {
        // SAFETY: the caller's arguments, as execve(2) takes them; glibc's execve is this call.
        unsafe { libc::syscall(libc::SYS_execve, path, argv, env) as c_int }
    })
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execv(
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
) -> c_int {
    // SAFETY: as execve.
    unsafe { execve(path, argv, crate::exec::environment()) }
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execvpe(
    file: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    crate::exec::around_exec(file, true, argv, envp, |env| {
        crate::exec::real_execvpe(file, argv, env)
    })
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn execvp(
    file: *const libc::c_char,
    argv: *const *const libc::c_char,
) -> c_int {
    // SAFETY: as execvpe.
    unsafe { execvpe(file, argv, crate::exec::environment()) }
}

/// `execl(path, arg0, ..., NULL)`, `execle(path, arg0, ..., NULL, envp)` and `execlp(file, arg0,
/// ..., NULL)`: variadic, so naked trampolines (x86-64 System V) that put the five argument
/// registers after the first below the return address, in a row with the caller's stack
/// arguments, and call `exec::execl_body` with `path`, the registers, the stack arguments and
/// which call this is; its status is returned as it is.
macro_rules! execl_trampoline {
    ($name:ident, $which:path) => {
        #[cfg(target_arch = "x86_64")]
        #[cfg_attr(not(test), no_mangle)]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name(path: *const libc::c_char, arg0: *const libc::c_char) -> c_int {
            core::arch::naked_asm!(
                ".cfi_startproc",
                "sub rsp, 40",
                ".cfi_adjust_cfa_offset 40",
                "mov [rsp], rsi",
                "mov [rsp + 8], rdx",
                "mov [rsp + 16], rcx",
                "mov [rsp + 24], r8",
                "mov [rsp + 32], r9",
                "mov rsi, rsp",
                "lea rdx, [rsp + 48]",
                "mov ecx, {which}",
                "call {body}",
                "add rsp, 40",
                ".cfi_adjust_cfa_offset -40",
                "ret",
                ".cfi_endproc",
                which = const $which,
                body = sym crate::exec::execl_body,
            )
        }
    };
}
execl_trampoline!(execl, crate::exec::EXECL);
execl_trampoline!(execle, crate::exec::EXECLE);
execl_trampoline!(execlp, crate::exec::EXECLP);

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    let mut name = sys::FixedBuf::<64>::new();
    let _ = core::fmt::Write::write_fmt(&mut name, format_args!("/proc/self/fd/{fd}\0"));
    let mut target = [0u8; 4096];
    // SAFETY: name is NUL-terminated; readlink writes at most target.len() - 1 bytes.
    let n = unsafe { libc::readlink(name.buf.as_ptr().cast(), target.as_mut_ptr().cast(), 4095) };
    let path = if n > 0 {
        target[n as usize] = 0;
        target.as_ptr().cast()
    } else {
        name.buf.as_ptr().cast()
    };
    crate::exec::around_exec(path, false, argv, envp, |env| {
        crate::exec::real_fexecve(fd, argv, env)
    })
}

fn spawn(
    search: bool,
    pid: *mut libc::pid_t,
    file: *const libc::c_char,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    let Some(real) = crate::exec::real_spawn(search) else {
        return libc::ENOSYS;
    };
    crate::exec::around_spawn(file, search, argv, envp, |env| {
        real(pid, file, actions, attr, argv, env)
    })
}

/// `posix_spawn`: noted after it started a program that is not followed, without the shim when
/// `--trace-children-skip` matches it.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const libc::c_char,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    spawn(false, pid, path, actions, attr, argv, envp)
}

#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const libc::c_char,
    actions: *const c_void,
    attr: *const c_void,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> c_int {
    spawn(true, pid, file, actions, attr, argv, envp)
}

/// `sigaction` keeps the program's SIGSEGV/SIGBUS handlers behind the guard-mode handler.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    // SAFETY: the caller's pointers are passed on as sigaction(2) requires.
    unsafe { crate::fault::sigaction(sig, act, old) }
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    crate::fault::signal(sig, handler)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn bsd_signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    crate::fault::signal(sig, handler)
}

/// `setrlimit` and `prlimit` (and their 64-bit names) go through `rlimit`, which trims the
/// shim's reservations when the program lowers its own `RLIMIT_AS`.
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn setrlimit(res: c_int, new: *const libc::rlimit) -> c_int {
    crate::rlimit::prlimit(0, res, new, core::ptr::null_mut())
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn setrlimit64(res: c_int, new: *const libc::rlimit) -> c_int {
    crate::rlimit::prlimit(0, res, new, core::ptr::null_mut())
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn prlimit(
    pid: libc::pid_t,
    res: c_int,
    new: *const libc::rlimit,
    old: *mut libc::rlimit,
) -> c_int {
    crate::rlimit::prlimit(pid, res, new, old)
}

#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn prlimit64(
    pid: libc::pid_t,
    res: c_int,
    new: *const libc::rlimit,
    old: *mut libc::rlimit,
) -> c_int {
    crate::rlimit::prlimit(pid, res, new, old)
}

/// Where `operator new` cannot allocate, the real libstdc++ operator (found with `dlsym`) runs
/// the new-handler loop and throws `std::bad_alloc`; its inner `malloc` comes back here.
fn cxx_fallback(sym: &CStr, size: usize, align: usize, family: Family) -> *mut u8 {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, sym.as_ptr()) };
    if f.is_null() {
        return core::ptr::null_mut();
    }
    let p = crate::tls::with_quiet(|| {
        if align == 0 {
            // SAFETY: f is libstdc++'s operator new(size_t) (or its nothrow twin, same ABI here).
            let f: extern "C" fn(usize, *const c_void) -> *mut u8 =
                unsafe { core::mem::transmute(f) };
            f(size, core::ptr::null())
        } else {
            // SAFETY: f is libstdc++'s aligned operator new(size_t, align_val_t[, nothrow]).
            let f: extern "C" fn(usize, usize, *const c_void) -> *mut u8 =
                unsafe { core::mem::transmute(f) };
            f(size, align, core::ptr::null())
        }
    });
    if !p.is_null() {
        crate::table::set_family(p as usize, family, crate::table::new_align_flags(align));
    }
    p
}

/// `operator new`; `align` is the `align_val_t` of an aligned one (0: unaligned), recorded in the
/// block so that its `delete` is checked against it.
fn cxx_new(size: usize, align: usize, family: Family, sym: &CStr) -> *mut u8 {
    let a = if align == 0 {
        DEFAULT_ALIGN
    } else {
        align.next_power_of_two()
    };
    let p = alloc::allocate_new(size, a, family, false, a);
    if p.is_null() {
        return cxx_fallback(sym, size, a, family);
    }
    p
}

macro_rules! new_fn {
    ($name:ident, $fam:expr, $sym:literal) => {
        #[cfg_attr(not(test), no_mangle)]
        pub extern "C" fn $name(size: size_t) -> *mut c_void {
            cxx_new(size, 0, $fam, $sym).cast()
        }
    };
    ($name:ident, $fam:expr, $sym:literal, nothrow) => {
        #[cfg_attr(not(test), no_mangle)]
        pub extern "C" fn $name(size: size_t, _nt: *const c_void) -> *mut c_void {
            cxx_new(size, 0, $fam, $sym).cast()
        }
    };
    ($name:ident, $fam:expr, $sym:literal, aligned) => {
        #[cfg_attr(not(test), no_mangle)]
        pub extern "C" fn $name(size: size_t, align: size_t) -> *mut c_void {
            cxx_new(size, align, $fam, $sym).cast()
        }
    };
    ($name:ident, $fam:expr, $sym:literal, aligned_nothrow) => {
        #[cfg_attr(not(test), no_mangle)]
        pub extern "C" fn $name(size: size_t, align: size_t, _nt: *const c_void) -> *mut c_void {
            cxx_new(size, align, $fam, $sym).cast()
        }
    };
}

new_fn!(_Znwm, Family::New, c"_Znwm");
new_fn!(_Znam, Family::NewArray, c"_Znam");
new_fn!(
    _ZnwmRKSt9nothrow_t,
    Family::New,
    c"_ZnwmRKSt9nothrow_t",
    nothrow
);
new_fn!(
    _ZnamRKSt9nothrow_t,
    Family::NewArray,
    c"_ZnamRKSt9nothrow_t",
    nothrow
);
new_fn!(
    _ZnwmSt11align_val_t,
    Family::New,
    c"_ZnwmSt11align_val_t",
    aligned
);
new_fn!(
    _ZnamSt11align_val_t,
    Family::NewArray,
    c"_ZnamSt11align_val_t",
    aligned
);
new_fn!(
    _ZnwmSt11align_val_tRKSt9nothrow_t,
    Family::New,
    c"_ZnwmSt11align_val_tRKSt9nothrow_t",
    aligned_nothrow
);
new_fn!(
    _ZnamSt11align_val_tRKSt9nothrow_t,
    Family::NewArray,
    c"_ZnamSt11align_val_tRKSt9nothrow_t",
    aligned_nothrow
);

/// `operator delete` in every form: sized ones are checked against the block's size, aligned ones
/// (and unaligned ones) against the alignment its `new` was given.
macro_rules! delete_fn {
    ($name:ident, $fam:expr, sized) => {
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void, size: size_t) {
            release_form(p.cast(), $fam, Some(DeleteForm { size: Some(size), align: 0 }))
        }
    };
    ($name:ident, $fam:expr, aligned) => {
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void, align: size_t) {
            release_form(p.cast(), $fam, Some(DeleteForm { size: None, align }))
        }
    };
    ($name:ident, $fam:expr, sized_aligned) => {
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void, size: size_t, align: size_t) {
            release_form(p.cast(), $fam, Some(DeleteForm { size: Some(size), align }))
        }
    };
    ($name:ident, $fam:expr, aligned_nothrow) => {
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void, align: size_t, _nt: *const c_void) {
            release_form(p.cast(), $fam, Some(DeleteForm { size: None, align }))
        }
    };
    ($name:ident, $fam:expr $(, $extra:ident : $ty:ty)*) => {
        #[cfg_attr(not(test), no_mangle)]
        pub unsafe extern "C" fn $name(p: *mut c_void $(, $extra: $ty)*) {
            $(let _ = $extra;)*
            release_form(p.cast(), $fam, Some(DeleteForm { size: None, align: 0 }))
        }
    };
}

delete_fn!(_ZdlPv, Family::New);
delete_fn!(_ZdaPv, Family::NewArray);
delete_fn!(_ZdlPvm, Family::New, sized);
delete_fn!(_ZdaPvm, Family::NewArray, sized);
delete_fn!(_ZdlPvRKSt9nothrow_t, Family::New, _nt: *const c_void);
delete_fn!(_ZdaPvRKSt9nothrow_t, Family::NewArray, _nt: *const c_void);
delete_fn!(_ZdlPvSt11align_val_t, Family::New, aligned);
delete_fn!(_ZdaPvSt11align_val_t, Family::NewArray, aligned);
delete_fn!(_ZdlPvmSt11align_val_t, Family::New, sized_aligned);
delete_fn!(_ZdaPvmSt11align_val_t, Family::NewArray, sized_aligned);
delete_fn!(
    _ZdlPvSt11align_val_tRKSt9nothrow_t,
    Family::New,
    aligned_nothrow
);
delete_fn!(
    _ZdaPvSt11align_val_tRKSt9nothrow_t,
    Family::NewArray,
    aligned_nothrow
);

/// Keeps the modules an unload removes nameable after it (see [`crate::unload`]).
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    // SAFETY: the handle is passed on to the real dlclose unchanged.
    unsafe { crate::unload::dlclose(handle) }
}

/// The shim's version, read by `memcheck --version` from the embedded library.
#[cfg_attr(not(test), no_mangle)]
pub static MEMCHECK_SHIM_VERSION: [u8; 32] = {
    let v = concat!("memcheck-shim ", env!("CARGO_PKG_VERSION"), " wire ").as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < v.len() {
        out[i] = v[i];
        i += 1;
    }
    // The record format version in decimal, without leading zeros.
    let w = memcheck_wire::VERSION;
    let mut div = 1;
    while div * 10 <= w {
        div *= 10;
    }
    while div > 0 {
        out[i] = b'0' + (w / div % 10) as u8;
        i += 1;
        div /= 10;
    }
    out
};
