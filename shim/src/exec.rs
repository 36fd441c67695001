//! The exec family and `posix_spawn`, seen by the shim:
//!
//! - without `--trace-children` the new program runs natively (the constructor took the shim out of
//!   the environment), so a NOTE record names it ([`memcheck_wire::NOTE_EXEC_UNCHECKED`]) just
//!   before the exec, and a second one ([`memcheck_wire::NOTE_EXEC_FAILED`]) if the exec returns:
//!   the CLI then says which programs were not checked instead of passing silently;
//! - with `--trace-children`, a program whose path matches one of `--trace-children-skip`'s
//!   patterns gets an environment without the shim (Valgrind's semantics).
//!
//! glibc's `execv`, `execvp`, `execl*` and `posix_spawn` reach `execve` through internal names
//! that no preload can interpose, so each public entry point is interposed on its own. The
//! variadic `execl`, `execle` and `execlp` cannot be written in stable Rust: `exports.rs` has
//! naked x86-64 trampolines that store the argument registers next to the caller's stack
//! arguments and call [`execl_body`], which gathers the list into an argv array (on its stack, in
//! the private heap past [`ARGS_ON_STACK`]) and takes the `execve`/`execvpe` path. `system` and `popen` go through
//! glibc's internal `posix_spawn` and run `/bin/sh`, which is the program noted or skipped when it
//! execs the command.
use crate::{opts, record, sys};
use core::ffi::{c_char, c_int, c_void, CStr};
use core::sync::atomic::{AtomicUsize, Ordering};
use rust_alloc::vec::Vec;

extern "C" {
    static mut environ: *mut *mut c_char;
}

/// The real functions, looked up at start-up (a `vfork` child must not call `dlsym`).
static REAL_EXECVPE: AtomicUsize = AtomicUsize::new(0);
static REAL_FEXECVE: AtomicUsize = AtomicUsize::new(0);
static REAL_SPAWN: AtomicUsize = AtomicUsize::new(0);
static REAL_SPAWNP: AtomicUsize = AtomicUsize::new(0);

/// The loader's path of this library, for taking it out of `LD_PRELOAD`.
static mut OWN_PATH: sys::FixedBuf<4096> = sys::FixedBuf::new();

/// At start-up (the constructor, one thread): finds the real functions and this library's path.
pub fn init() {
    for (slot, name) in [
        (&REAL_EXECVPE, c"execvpe"),
        (&REAL_FEXECVE, c"fexecve"),
        (&REAL_SPAWN, c"posix_spawn"),
        (&REAL_SPAWNP, c"posix_spawnp"),
    ] {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        slot.store(
            unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) } as usize,
            Ordering::Relaxed,
        );
    }
    let mut info: libc::Dl_info = libc::Dl_info {
        dli_fname: core::ptr::null(),
        dli_fbase: core::ptr::null_mut(),
        dli_sname: core::ptr::null(),
        dli_saddr: core::ptr::null_mut(),
    };
    // SAFETY: dladdr fills info for an address inside this object; it does not allocate.
    let ok = unsafe { libc::dladdr(init as *const c_void, &mut info) };
    if ok != 0 && !info.dli_fname.is_null() {
        // SAFETY: dli_fname is the loader's NUL-terminated path of this object; one thread runs.
        unsafe {
            let p = CStr::from_ptr(info.dli_fname).to_bytes();
            let own = &mut *core::ptr::addr_of_mut!(OWN_PATH);
            let n = p.len().min(own.buf.len());
            own.buf[..n].copy_from_slice(&p[..n]);
            own.len = n;
        }
    }
}

/// This library's path as the loader opened it (empty if unknown).
pub fn own_path() -> &'static [u8] {
    // SAFETY: written once by init, at start-up, before any reader.
    unsafe { (*core::ptr::addr_of!(OWN_PATH)).as_bytes() }
}

/// `LD_PRELOAD`'s value without `ours` (entries are separated by spaces or colons).
pub fn strip_preload(v: &[u8], ours: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in v.split(|&b| b == b':' || b == b' ') {
        if part.is_empty() || part == ours {
            continue;
        }
        if !out.is_empty() {
            out.push(b':');
        }
        out.extend_from_slice(part);
    }
    out
}

/// Whether `text` matches the glob `pat` (`*`: any run of bytes, `/` included; `?`: one byte).
pub fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Whether `text` matches one of the comma-separated glob `patterns`.
fn matches_any(patterns: &[u8], text: &[u8]) -> bool {
    patterns
        .split(|&b| b == b',')
        .any(|pat| !pat.is_empty() && glob(pat, text))
}

/// Whether a program exec'd at `path` with `argv` is skipped: the path matches one of
/// `--trace-children-skip`'s patterns, or an element of `argv` (argv[0] included) one of
/// `--trace-children-skip-by-arg`'s (Valgrind's two options).
fn skipped(path: &[u8], argv: *const *const c_char) -> bool {
    if matches_any(opts::trace_skip(), path) {
        return true;
    }
    let by_arg = opts::trace_skip_by_arg();
    if by_arg.is_empty() || argv.is_null() {
        return false;
    }
    let mut i = 0;
    loop {
        // SAFETY: argv is a NULL-terminated array of NUL-terminated strings (exec's contract).
        let a = unsafe { *argv.add(i) };
        if a.is_null() {
            return false;
        }
        if matches_any(by_arg, bytes(a)) {
            return true;
        }
        i += 1;
    }
}

fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: exec's path arguments are NUL-terminated strings (the caller's contract).
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

fn note(prefix: &str, path: &[u8]) {
    let mut text = sys::FixedBuf::<4200>::new();
    let _ = core::fmt::Write::write_str(&mut text, prefix);
    let n = path.len().min(text.buf.len() - text.len);
    text.buf[text.len..text.len + n].copy_from_slice(&path[..n]);
    text.len += n;
    record::emit(&memcheck_wire::Record::Note(memcheck_wire::Note {
        text: text.as_bytes(),
    }));
}

/// The program `file` names, searched in `PATH` as `execvp` does when it has no `/`, into `out`
/// (NUL-terminated); the file itself when nothing is found.
fn resolve<'a>(file: &'a [u8], out: &'a mut sys::FixedBuf<4200>) -> &'a [u8] {
    if file.contains(&b'/') || file.is_empty() {
        return file;
    }
    // SAFETY: getenv with a NUL-terminated name; the value is read at once.
    let path = bytes(unsafe { libc::getenv(c"PATH".as_ptr()) });
    let path: &[u8] = if path.is_empty() {
        b"/bin:/usr/bin"
    } else {
        path
    };
    for dir in path.split(|&b| b == b':') {
        out.len = 0;
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if dir.len() + file.len() + 2 > out.buf.len() {
            continue;
        }
        out.buf[..dir.len()].copy_from_slice(dir);
        out.buf[dir.len()] = b'/';
        out.buf[dir.len() + 1..dir.len() + 1 + file.len()].copy_from_slice(file);
        out.buf[dir.len() + 1 + file.len()] = 0;
        out.len = dir.len() + 1 + file.len();
        // SAFETY: out holds a NUL-terminated path.
        if unsafe { libc::access(out.buf.as_ptr().cast(), libc::X_OK) } == 0 {
            return &out.buf[..out.len];
        }
    }
    file
}

/// `envp` without the shim: no `MEMCHECK_*` variables, and this library out of `LD_PRELOAD`.
/// The strings kept are the caller's; new ones live in the private heap (the exec replaces it).
struct CleanEnv {
    ptrs: Vec<*const c_char>,
    _owned: Vec<Vec<u8>>,
}

fn clean_env(envp: *const *const c_char) -> CleanEnv {
    let mut ptrs = Vec::new();
    let mut owned = Vec::new();
    let mut i = 0;
    while !envp.is_null() {
        // SAFETY: envp is a NULL-terminated array of NUL-terminated strings (exec's contract).
        let e = unsafe { *envp.add(i) };
        if e.is_null() {
            break;
        }
        i += 1;
        let s = bytes(e);
        if memcheck_wire::ENV_ALL
            .iter()
            .any(|v| memcheck_wire::env_value(s, v).is_some())
        {
            continue;
        }
        if let Some(v) = s.strip_prefix(b"LD_PRELOAD=") {
            let kept = strip_preload(v, own_path());
            if kept.is_empty() {
                continue;
            }
            let mut b = Vec::with_capacity(kept.len() + 12);
            b.extend_from_slice(b"LD_PRELOAD=");
            b.extend_from_slice(&kept);
            b.push(0);
            ptrs.push(b.as_ptr().cast());
            owned.push(b);
            continue;
        }
        ptrs.push(e);
    }
    ptrs.push(core::ptr::null());
    CleanEnv {
        ptrs,
        _owned: owned,
    }
}

/// What an exec of `file` (searched in `PATH` when `search`) with `argv` does around the real
/// call `f`, given the environment it would pass: notes it when the new program is not followed,
/// strips the shim from the environment of a skipped one.
pub fn around_exec(
    file: *const c_char,
    search: bool,
    argv: *const *const c_char,
    envp: *const *const c_char,
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    if !opts::ACTIVE.load(Ordering::Relaxed) {
        return f(envp);
    }
    let name = bytes(file);
    if !opts::TRACE_CHILDREN.load(Ordering::Relaxed) {
        note(memcheck_wire::NOTE_EXEC_UNCHECKED, name);
        let r = f(envp);
        let saved = sys::errno();
        note(memcheck_wire::NOTE_EXEC_FAILED, name);
        sys::set_errno(saved);
        return r;
    }
    let mut buf = sys::FixedBuf::new();
    let path = if search {
        resolve(name, &mut buf)
    } else {
        name
    };
    if skipped(path, argv) {
        let env = clean_env(envp);
        return f(env.ptrs.as_ptr());
    }
    f(envp)
}

/// The same around `posix_spawn`/`posix_spawnp`, whose success is known: the note is written
/// after a spawn that started the program.
pub fn around_spawn(
    file: *const c_char,
    search: bool,
    argv: *const *const c_char,
    envp: *const *const c_char,
    f: impl FnOnce(*const *const c_char) -> c_int,
) -> c_int {
    if !opts::ACTIVE.load(Ordering::Relaxed) {
        return f(envp);
    }
    let name = bytes(file);
    if !opts::TRACE_CHILDREN.load(Ordering::Relaxed) {
        let r = f(envp);
        if r == 0 {
            let saved = sys::errno();
            note(memcheck_wire::NOTE_EXEC_UNCHECKED, name);
            sys::set_errno(saved);
        }
        return r;
    }
    around_exec(file, search, argv, envp, f)
}

/// Which of the `execl` family a trampoline of `exports.rs` enters [`execl_body`] for.
pub const EXECL: usize = 0;
pub const EXECLE: usize = 1;
pub const EXECLP: usize = 2;

/// Arguments of an `execl` call gathered on the stack; a longer list goes to the private heap.
pub const ARGS_ON_STACK: usize = 256;

/// The body of `execl` (`which` [`EXECL`]), `execle` and `execlp`. The variadic arguments after
/// `path` are `regs[0..5]` (the five that came in `rsi`, `rdx`, `rcx`, `r8`, `r9`), then
/// `stack[0..]` (the caller's stack arguments): the argument strings up to a NULL, and for
/// `execle` the environment after it.
///
/// # Safety
/// Called only by the trampolines, with the caller's registers and stack arguments of a call
/// that follows the execl contract (a NULL-terminated list of strings).
pub unsafe extern "C" fn execl_body(
    path: *const c_char,
    regs: *const usize,
    stack: *const usize,
    which: usize,
) -> c_int {
    // SAFETY: the i-th variadic argument: the trampoline stored five registers at regs, and the
    // caller's further arguments follow at stack; the list ends with a NULL the caller passed.
    let arg = |i: usize| unsafe {
        if i < 5 {
            *regs.add(i)
        } else {
            *stack.add(i - 5)
        }
    };
    let mut n = 0;
    while arg(n) != 0 {
        n += 1;
    }
    let envp = if which == EXECLE {
        arg(n + 1) as *const *const c_char
    } else {
        environment()
    };
    let mut on_stack = [core::ptr::null::<c_char>(); ARGS_ON_STACK];
    let mut on_heap = Vec::new();
    let argv: &mut [*const c_char] = if n < ARGS_ON_STACK {
        &mut on_stack[..n + 1]
    } else {
        on_heap.resize(n + 1, core::ptr::null());
        &mut on_heap[..]
    };
    for (i, a) in argv.iter_mut().take(n).enumerate() {
        *a = arg(i) as *const c_char;
    }
    let argv = argv.as_ptr();
    if which == EXECLP {
        around_exec(path, true, argv, envp, |env| real_execvpe(path, argv, env))
    } else {
        around_exec(path, false, argv, envp, |env| {
            // SAFETY: execve(2) with the caller's path, the gathered argv and the environment.
            unsafe { libc::syscall(libc::SYS_execve, path, argv, env) as c_int }
        })
    }
}

/// The process's environment, as `execv` and `execvp` pass it.
pub fn environment() -> *const *const c_char {
    // SAFETY: reading libc's environ pointer.
    unsafe { *core::ptr::addr_of!(environ) as *const *const c_char }
}

/// glibc's `execvpe`.
pub fn real_execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    let f = REAL_EXECVPE.load(Ordering::Relaxed);
    if f == 0 {
        sys::set_errno(libc::ENOSYS);
        return -1;
    }
    // SAFETY: f is glibc's execvpe, `int execvpe(const char *, char *const[], char *const[])`.
    let f: extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int =
        unsafe { core::mem::transmute(f) };
    f(file, argv, envp)
}

/// glibc's `fexecve`.
pub fn real_fexecve(fd: c_int, argv: *const *const c_char, envp: *const *const c_char) -> c_int {
    let f = REAL_FEXECVE.load(Ordering::Relaxed);
    if f == 0 {
        sys::set_errno(libc::ENOSYS);
        return -1;
    }
    // SAFETY: f is glibc's fexecve, `int fexecve(int, char *const[], char *const[])`.
    let f: extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int =
        unsafe { core::mem::transmute(f) };
    f(fd, argv, envp)
}

/// The signature of glibc's `posix_spawn` and `posix_spawnp`.
pub type SpawnFn = extern "C" fn(
    *mut libc::pid_t,
    *const c_char,
    *const c_void,
    *const c_void,
    *const *const c_char,
    *const *const c_char,
) -> c_int;

/// glibc's `posix_spawn` (`search` false) or `posix_spawnp`.
pub fn real_spawn(search: bool) -> Option<SpawnFn> {
    let f = if search { &REAL_SPAWNP } else { &REAL_SPAWN }.load(Ordering::Relaxed);
    // SAFETY: f is glibc's posix_spawn[p], of the SpawnFn signature.
    (f != 0).then(|| unsafe { core::mem::transmute::<usize, SpawnFn>(f) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_loses_only_the_shim() {
        assert_eq!(strip_preload(b"/x/shim.so", b"/x/shim.so"), b"");
        assert_eq!(
            strip_preload(b"/x/shim.so:/usr/lib/other.so", b"/x/shim.so"),
            b"/usr/lib/other.so"
        );
        assert_eq!(strip_preload(b"/a.so /b.so", b"/x/shim.so"), b"/a.so:/b.so");
    }

    #[test]
    fn globs_match_as_valgrinds() {
        assert!(glob(b"*leaky*", b"/tmp/x/leaky"));
        assert!(glob(b"*/ld", b"/usr/bin/ld"));
        assert!(!glob(b"*/ld", b"/usr/bin/ldd"));
        assert!(glob(b"/usr/bin/l?", b"/usr/bin/ld"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"aXbYbZc"));
        assert!(!glob(b"a*b*c", b"aXbYbZ"));
        assert!(!glob(b"sh", b"/bin/sh"));
    }
}
