//! Checked memory and string functions (`--check-mem-functions`, on by default): `memcpy`,
//! `strlen`, `strcat`, `puts`, ... and the `_chk` variants `_FORTIFY_SOURCE` calls. Each hook
//! checks every range the call reads or writes that falls in a tracked block ([`crate::range`]
//! finds the block without a global lock) and, for the copying functions, that source and
//! destination do not overlap; then glibc's own (IFUNC-selected) routine does the work, reached
//! through `dlsym(RTLD_NEXT)`, which runs the IFUNC resolver and returns the implementation chosen
//! for this CPU.
//!
//! The exported symbols are naked trampolines: they put the caller's return address into the
//! next free argument register and jump to the Rust body. A call whose return address lies in
//! the shim itself (Rust's own `memcpy`/`memset`/`bcmp`/`strlen` calls: the shim exports those
//! names, so its own calls land here too) is never checked, nor is one made while this thread is
//! inside the shim or holds one of its locks (a signal handler, the unwinder), nor any before the
//! shim's constructor has resolved glibc's routines. Until then Rust's calls are served by the
//! plain byte loops at the end of this file. Nothing here allocates or panics.
//!
//! What a call reads is computed without reading past the block it starts in: a string is
//! measured with `strnlen` bounded by its block, so an unterminated string is reported (as a READ
//! whose size runs up to the first byte past the block) before glibc's routine reads on.
#![allow(clippy::missing_safety_doc)]

use crate::range::{self, Place};
use crate::report::{block_error, error_rec, report};
use crate::table::{BlockState, Entry, FLAG_GUARDED};
use crate::{opts, tls, unwind};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use memcheck_wire::{Access, ErrorKind, ErrorRec, Family, FoundAt, MemFn};

const N: usize = MemFn::ALL.len() + 1;
/// glibc's routine for each function (`MemFn as usize`), 0 until resolved.
static REAL: [AtomicUsize; N] = [const { AtomicUsize::new(0) }; N];
/// Whether calls are checked: `--check-mem-functions` and glibc's routines resolved.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Whether [`init`] ran (every routine resolved).
static RESOLVED: AtomicBool = AtomicBool::new(false);

/// Resolves glibc's routines and turns the checks on (as `--check-mem-functions` says). Called
/// once from the shim's constructor.
pub fn init() {
    for f in MemFn::ALL {
        lookup(f);
    }
    RESOLVED.store(true, Ordering::Release);
    ENABLED.store(
        opts::CHECK_MEM_FNS.load(Ordering::Relaxed),
        Ordering::Release,
    );
}

/// `dlsym(RTLD_NEXT, name)`, stored; 0 if glibc lacks it.
fn lookup(f: MemFn) -> usize {
    let name = f.name().as_bytes();
    let mut buf = [0u8; 32];
    let n = name.len().min(31);
    let mut i = 0;
    while i < n {
        buf[i] = name[i];
        i += 1;
    }
    // SAFETY: buf is NUL-terminated; RTLD_NEXT looks in the objects loaded after the shim.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, buf.as_ptr().cast()) } as usize;
    if p != 0 {
        REAL[f as usize].store(p, Ordering::Release);
    }
    p
}

/// glibc's routine for `f`: before [`init`], the byte loops below for the functions the shim's
/// own code calls; others are looked up on first use.
#[cold]
fn resolve(f: MemFn) -> usize {
    let fallback = match f {
        MemFn::Memcpy => fallback_memcpy as *const () as usize,
        MemFn::Memmove => fallback_memmove as *const () as usize,
        MemFn::Memset => fallback_memset as *const () as usize,
        MemFn::Memcmp | MemFn::Bcmp => fallback_memcmp as *const () as usize,
        MemFn::Strlen => fallback_strlen as *const () as usize,
        _ => 0,
    };
    if fallback != 0 && !RESOLVED.load(Ordering::Acquire) {
        return fallback;
    }
    match lookup(f) {
        0 if fallback != 0 => fallback,
        0 => {
            crate::log!("glibc has no {}: cannot continue", f.name());
            // SAFETY: abort never returns.
            unsafe { libc::abort() }
        }
        p => p,
    }
}

#[inline(always)]
fn real_ptr(f: MemFn) -> usize {
    let p = REAL[f as usize].load(Ordering::Relaxed);
    if p != 0 {
        p
    } else {
        resolve(f)
    }
}

/// glibc's routine for a function, as a function pointer of its C type.
/// Used inside an `unsafe` block: the address is glibc's routine of this name (or a fallback
/// of the same C type).
macro_rules! real {
    ($f:expr, $t:ty) => {
        core::mem::transmute::<usize, $t>(real_ptr($f))
    };
}

type StrnlenFn = unsafe extern "C" fn(*const u8, usize) -> usize;
type StrlenFn = unsafe extern "C" fn(*const u8) -> usize;
type MemchrFn = unsafe extern "C" fn(*const u8, i32, usize) -> *mut u8;
type StrncmpFn = unsafe extern "C" fn(*const u8, *const u8, usize) -> i32;

/// Whether a call returning to `ra` is checked: the checks are on and the caller is not the
/// shim.
#[inline(always)]
fn on(ra: usize) -> bool {
    ENABLED.load(Ordering::Relaxed) && !unwind::in_self(ra)
}

/// Whether the slow checks may run on this thread now: not inside the shim (unwinding,
/// reporting) and holding none of its locks (a signal handler that interrupted it).
#[inline]
fn allowed() -> bool {
    !tls::in_shim() && tls::locks_held() == 0
}

/// Whether `[a, a + n)` may touch a tracked block (n > 0): the one-load fast path per end.
#[inline(always)]
fn tracked(a: usize, n: usize) -> bool {
    range::maybe_tracked(a) || range::maybe_tracked(a.wrapping_add(n - 1))
}

fn guarded(e: &Entry) -> bool {
    e.flags & FLAG_GUARDED != 0
}

fn freed(e: &Entry) -> bool {
    e.state == BlockState::Freed
}

/// Reports a bad range of a call to `f` at the caller's stack.
#[cold]
fn bad(f: MemFn, kind: ErrorKind, e: Option<&Entry>, addr: usize, size: usize, access: Access) {
    let stack = crate::unwind::capture_stack();
    let rec = match e {
        Some(e) => block_error(kind, e, addr, Family::Malloc, stack),
        None => ErrorRec {
            addr: addr as u64,
            stack,
            ..error_rec(kind)
        },
    };
    report(ErrorRec {
        access,
        access_size: size as u64,
        arg1: FoundAt::Access.to_u64(),
        func: f as u8,
        ..rec
    });
}

/// Checks `[a, a + n)` (n > 0) against the tracked blocks (the caller saw [`tracked`]).
#[cold]
fn check_range(f: MemFn, a: usize, n: usize, access: Access) {
    if !allowed() {
        return;
    }
    let end = a.wrapping_add(n);
    if range::live_end(a).is_some_and(|e| end <= e && end > a) {
        return;
    }
    match range::place(a) {
        Place::Inside(e) if freed(&e) => bad(f, ErrorKind::UseAfterFree, Some(&e), a, n, access),
        Place::Inside(e) => {
            let block_end = e.key + e.size;
            if end > block_end || end < a {
                bad(
                    f,
                    ErrorKind::HeapBufferOverflow,
                    Some(&e),
                    block_end,
                    n,
                    access,
                );
            }
        }
        Place::After(e) if freed(&e) => bad(f, ErrorKind::UseAfterFree, Some(&e), a, n, access),
        Place::After(e) => bad(f, ErrorKind::HeapBufferOverflow, Some(&e), a, n, access),
        Place::Before(e) => bad(f, ErrorKind::HeapBufferUnderflow, Some(&e), a, n, access),
        Place::Outside(next) => {
            // Starting clear of every block, the range may still run into one.
            let last = end.wrapping_sub(1);
            if last > a && last >= next && range::maybe_tracked(last) {
                match range::place(last) {
                    Place::Inside(e) | Place::Before(e) if e.key > a => {
                        bad(f, ErrorKind::HeapBufferUnderflow, Some(&e), a, n, access)
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Checks `[a, a + n)` if it may touch a tracked block.
#[inline(always)]
fn range(f: MemFn, a: *const u8, n: usize, access: Access) {
    if n != 0 && tracked(a as usize, n) {
        check_range(f, a as usize, n, access);
    }
}

/// Checks that `[d, d + dn)` and `[s, s + sn)` do not overlap (a call whose contract forbids
/// it).
#[inline(always)]
fn overlap(f: MemFn, d: *const u8, dn: usize, s: *const u8, sn: usize) {
    let (d, s) = (d as usize, s as usize);
    if dn != 0 && sn != 0 && d < s.wrapping_add(sn) && s < d.wrapping_add(dn) {
        overlapping(f, d, dn, s, sn);
    }
}

#[cold]
fn overlapping(f: MemFn, d: usize, dn: usize, s: usize, sn: usize) {
    if !allowed() {
        return;
    }
    let stack = crate::unwind::capture_stack();
    report(ErrorRec {
        addr: d as u64,
        access_size: dn as u64,
        arg1: s as u64,
        arg2: sn as u64,
        func: f as u8,
        stack,
        ..error_rec(ErrorKind::ParamOverlap)
    });
}

/// `strnlen(s, max)` (`strlen` for `usize::MAX`) by glibc.
#[inline(always)]
fn real_strnlen(s: *const u8, max: usize) -> usize {
    // SAFETY: the program passed s to a string function: it is readable up to its NUL or `max`.
    unsafe {
        if max == usize::MAX {
            real!(MemFn::Strlen, StrlenFn)(s)
        } else {
            real!(MemFn::Strnlen, StrnlenFn)(s, max)
        }
    }
}

/// The bytes of `[s, s + max)` up to and including the first `stop` byte (or all `max`), by
/// glibc's memchr; `max` bounded by what is readable.
#[inline(always)]
fn real_until(s: *const u8, stop: u8, max: usize) -> usize {
    // SAFETY: as real_strnlen.
    let p = unsafe { real!(MemFn::Memchr, MemchrFn)(s, stop as i32, max) };
    if p.is_null() {
        max
    } else {
        p as usize - s as usize + 1
    }
}

/// What a string call reads at `s`: up to its NUL, or `stop` when given, or `max` bytes, whichever
/// comes first. Checked against the block `s` is in without reading past it. Returns
/// `strnlen(s, max)` (the string's length, measured by glibc as the program's call would) and
/// whether the read was good.
#[inline(always)]
fn read_str(f: MemFn, s: *const u8, max: usize, stop: Option<u8>) -> (usize, bool) {
    if range::maybe_tracked(s as usize) {
        read_str_slow(f, s, max, stop)
    } else {
        (real_strnlen(s, max), true)
    }
}

#[cold]
fn read_str_slow(f: MemFn, s: *const u8, max: usize, stop: Option<u8>) -> (usize, bool) {
    if !allowed() {
        return (real_strnlen(s, max), true);
    }
    let a = s as usize;
    if let (Some(end), None) = (range::live_end(a), stop) {
        let rem = end - a;
        let bound = rem.min(max);
        let l = real_strnlen(s, bound);
        if l < bound || max <= rem {
            return (l, true);
        }
    }
    match range::place(a) {
        Place::Inside(e) => {
            let rem = e.key + e.size - a;
            if freed(&e) && guarded(&e) {
                // Its pages are gone: the size of the read is not known, and the shim does not
                // fault on them itself (glibc's routine then does, as the program's own access).
                bad(f, ErrorKind::UseAfterFree, Some(&e), a, 0, Access::Read);
                return (0, false);
            }
            let bound = rem.min(max);
            let l = real_strnlen(s, bound);
            let nul = l < bound;
            let mut read = if nul { l + 1 } else { bound };
            let mut hit = false;
            if let Some(c) = stop {
                let k = real_until(s, c, bound);
                if c_at(s, k, c) && k <= read {
                    read = k;
                    hit = true;
                }
            }
            let done = nul || hit || max <= rem;
            if freed(&e) {
                let size = if done { read } else { rem + 1 };
                bad(f, ErrorKind::UseAfterFree, Some(&e), a, size, Access::Read);
            } else if !done {
                let end = e.key + e.size;
                bad(
                    f,
                    ErrorKind::HeapBufferOverflow,
                    Some(&e),
                    end,
                    rem + 1,
                    Access::Read,
                );
            } else if nul || bound == max {
                return (l, true);
            } else {
                return (real_strnlen(s, max), true);
            }
            (real_strnlen(s, max), false)
        }
        Place::After(e) => {
            let l = real_strnlen(s, max);
            let size = if guarded(&e) { 0 } else { (l + 1).min(max) };
            let kind = if freed(&e) {
                ErrorKind::UseAfterFree
            } else {
                ErrorKind::HeapBufferOverflow
            };
            bad(f, kind, Some(&e), a, size, Access::Read);
            (l, false)
        }
        Place::Before(e) => {
            let l = real_strnlen(s, max);
            let size = if guarded(&e) { 0 } else { (l + 1).min(max) };
            bad(
                f,
                ErrorKind::HeapBufferUnderflow,
                Some(&e),
                a,
                size,
                Access::Read,
            );
            (l, false)
        }
        Place::Outside(next) => {
            let l = real_strnlen(s, max);
            let n = (l + 1).min(max);
            if n != 0 && a.wrapping_add(n - 1) >= next {
                check_range(f, a, n, Access::Read);
            }
            (l, true)
        }
    }
}

/// What a bounded search reads at `s` (memchr, memccpy, rawmemchr): up to and including the
/// first `c`, at most `n` bytes. Checked without reading past the block; returns the count.
fn read_until(f: MemFn, s: *const u8, c: u8, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let a = s as usize;
    if !range::maybe_tracked(a) || !allowed() {
        return real_until(s, c, n);
    }
    read_until_slow(f, s, c, n)
}

#[cold]
fn read_until_slow(f: MemFn, s: *const u8, c: u8, n: usize) -> usize {
    let a = s as usize;
    match range::place(a) {
        Place::Inside(e) if freed(&e) && guarded(&e) => {
            bad(f, ErrorKind::UseAfterFree, Some(&e), a, 0, Access::Read);
            return 0;
        }
        Place::Inside(e) => {
            let rem = e.key + e.size - a;
            let bound = rem.min(n);
            let k = real_until(s, c, bound);
            let done = c_at(s, k, c) || n <= rem;
            if freed(&e) {
                let size = if done { k } else { rem + 1 };
                bad(f, ErrorKind::UseAfterFree, Some(&e), a, size, Access::Read);
            } else if !done {
                let end = e.key + e.size;
                bad(
                    f,
                    ErrorKind::HeapBufferOverflow,
                    Some(&e),
                    end,
                    rem + 1,
                    Access::Read,
                );
            } else {
                return k;
            }
        }
        _ => {
            let k = real_until(s, c, n);
            check_range(f, a, k, Access::Read);
            return k;
        }
    }
    real_until(s, c, n)
}

/// Whether byte `k - 1` of `s` is `c` (the search stopped on it).
fn c_at(s: *const u8, k: usize, c: u8) -> bool {
    // SAFETY: k > 0 bytes of s were just read by glibc.
    k > 0 && unsafe { *s.add(k - 1) } == c
}

/// `strcmp`/`strncmp` (n = usize::MAX for strcmp): both strings are read up to the first
/// difference or NUL, at most n bytes.
fn compare(f: MemFn, a: *const u8, b: *const u8, n: usize) {
    let (ta, tb) = (
        range::maybe_tracked(a as usize),
        range::maybe_tracked(b as usize),
    );
    if (!ta && !tb) || n == 0 || !allowed() {
        return;
    }
    compare_slow(f, a, b, n, ta, tb);
}

#[cold]
fn compare_slow(f: MemFn, a: *const u8, b: *const u8, n: usize, ta: bool, tb: bool) {
    // Room left in each string's block (usize::MAX when not in one); blocks not safely
    // readable are checked as strings on their own.
    let room = |p: *const u8, t: bool| -> Option<(usize, Option<Entry>)> {
        if !t {
            return Some((usize::MAX, None));
        }
        match range::place(p as usize) {
            Place::Inside(e) if !freed(&e) => Some((e.key + e.size - p as usize, Some(e))),
            _ => None,
        }
    };
    let (Some((ra, ea)), Some((rb, eb))) = (room(a, ta), room(b, tb)) else {
        if ta {
            read_str(f, a, n, None);
        }
        if tb {
            read_str(f, b, n, None);
        }
        return;
    };
    let m = ra.min(rb).min(n);
    if m == n {
        return; // every byte the call can read is inside the blocks
    }
    // SAFETY: m bytes of both strings lie inside their blocks.
    let r = unsafe { real!(MemFn::Strncmp, StrncmpFn)(a, b, m) };
    if r != 0 || real_strnlen(a, m) < m {
        return; // the comparison ends inside both blocks
    }
    for (room, e) in [(ra, ea), (rb, eb)] {
        if let (true, Some(e)) = (room == m, e) {
            bad(
                f,
                ErrorKind::HeapBufferOverflow,
                Some(&e),
                e.key + e.size,
                m + 1,
                Access::Read,
            );
        }
    }
}

/// The exported symbol `$name`: the caller's return address goes into `$reg` (the argument
/// register after the function's own), then the body `$imp` runs.
macro_rules! hook {
    ($name:ident, $imp:ident, $reg:literal) => {
        #[cfg(all(not(test), target_arch = "x86_64"))]
        #[no_mangle]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            core::arch::naked_asm!(
                concat!("mov ", $reg, ", qword ptr [rsp]"),
                "jmp {imp}",
                imp = sym $imp,
            );
        }
    };
}

type P = *mut u8;
type C = *const u8;
use Access::{Read as R, Write as W};

// ---- memory ----

hook!(memset, memset_impl, "rcx");
unsafe extern "C" fn memset_impl(d: P, c: i32, n: usize, ra: usize) -> P {
    if on(ra) {
        range(MemFn::Memset, d, n, W);
    }
    // SAFETY: the program's call, passed on.
    unsafe { real!(MemFn::Memset, unsafe extern "C" fn(P, i32, usize) -> P)(d, c, n) }
}

hook!(__memset_chk, memset_chk_impl, "r8");
unsafe extern "C" fn memset_chk_impl(d: P, c: i32, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        range(MemFn::MemsetChk, d, n, W);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::MemsetChk,
            unsafe extern "C" fn(P, i32, usize, usize) -> P
        )(d, c, n, dl)
    }
}

hook!(bzero, bzero_impl, "rdx");
unsafe extern "C" fn bzero_impl(d: P, n: usize, ra: usize) {
    if on(ra) {
        range(MemFn::Bzero, d, n, W);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Bzero, unsafe extern "C" fn(P, usize))(d, n) }
}

hook!(explicit_bzero, explicit_bzero_impl, "rdx");
unsafe extern "C" fn explicit_bzero_impl(d: P, n: usize, ra: usize) {
    if on(ra) {
        range(MemFn::ExplicitBzero, d, n, W);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::ExplicitBzero, unsafe extern "C" fn(P, usize))(d, n) }
}

hook!(__explicit_bzero_chk, explicit_bzero_chk_impl, "rcx");
unsafe extern "C" fn explicit_bzero_chk_impl(d: P, n: usize, dl: usize, ra: usize) {
    if on(ra) {
        range(MemFn::ExplicitBzeroChk, d, n, W);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::ExplicitBzeroChk,
            unsafe extern "C" fn(P, usize, usize)
        )(d, n, dl)
    }
}

hook!(memcmp, memcmp_impl, "rcx");
unsafe extern "C" fn memcmp_impl(a: C, b: C, n: usize, ra: usize) -> i32 {
    if on(ra) {
        range(MemFn::Memcmp, a, n, R);
        range(MemFn::Memcmp, b, n, R);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memcmp, unsafe extern "C" fn(C, C, usize) -> i32)(a, b, n) }
}

hook!(bcmp, bcmp_impl, "rcx");
unsafe extern "C" fn bcmp_impl(a: C, b: C, n: usize, ra: usize) -> i32 {
    if on(ra) {
        range(MemFn::Bcmp, a, n, R);
        range(MemFn::Bcmp, b, n, R);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Bcmp, unsafe extern "C" fn(C, C, usize) -> i32)(a, b, n) }
}

/// The checks of a copy of `n` bytes from `s` to `d`.
#[inline(always)]
fn copy(f: MemFn, d: P, s: C, n: usize, forbid_overlap: bool) {
    // The same pointer on both sides is what a compiler emits for `*p = *p`: not reported.
    if forbid_overlap && d.cast_const() != s {
        overlap(f, d, n, s, n);
    }
    range(f, s, n, R);
    range(f, d, n, W);
}

hook!(memcpy, memcpy_impl, "rcx");
unsafe extern "C" fn memcpy_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::Memcpy, d, s, n, true);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memcpy, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__memcpy_chk, memcpy_chk_impl, "r8");
unsafe extern "C" fn memcpy_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::MemcpyChk, d, s, n, true);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::MemcpyChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(memmove, memmove_impl, "rcx");
unsafe extern "C" fn memmove_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::Memmove, d, s, n, false);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memmove, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__memmove_chk, memmove_chk_impl, "r8");
unsafe extern "C" fn memmove_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::MemmoveChk, d, s, n, false);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::MemmoveChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(mempcpy, mempcpy_impl, "rcx");
unsafe extern "C" fn mempcpy_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::Mempcpy, d, s, n, true);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Mempcpy, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__mempcpy_chk, mempcpy_chk_impl, "r8");
unsafe extern "C" fn mempcpy_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        copy(MemFn::MempcpyChk, d, s, n, true);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::MempcpyChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(bcopy, bcopy_impl, "rcx");
unsafe extern "C" fn bcopy_impl(s: C, d: P, n: usize, ra: usize) {
    if on(ra) {
        copy(MemFn::Bcopy, d, s, n, false);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Bcopy, unsafe extern "C" fn(C, P, usize))(s, d, n) }
}

hook!(memccpy, memccpy_impl, "r8");
unsafe extern "C" fn memccpy_impl(d: P, s: C, c: i32, n: usize, ra: usize) -> P {
    if on(ra) {
        let f = MemFn::Memccpy;
        let k = read_until(f, s, c as u8, n);
        overlap(f, d, k, s, k);
        range(f, d, k, W);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memccpy, unsafe extern "C" fn(P, C, i32, usize) -> P)(d, s, c, n) }
}

hook!(memchr, memchr_impl, "rcx");
unsafe extern "C" fn memchr_impl(s: C, c: i32, n: usize, ra: usize) -> P {
    if on(ra) {
        read_until(MemFn::Memchr, s, c as u8, n);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memchr, MemchrFn)(s, c, n) }
}

hook!(memrchr, memrchr_impl, "rcx");
unsafe extern "C" fn memrchr_impl(s: C, c: i32, n: usize, ra: usize) -> P {
    if on(ra) {
        range(MemFn::Memrchr, s, n, R);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memrchr, MemchrFn)(s, c, n) }
}

hook!(rawmemchr, rawmemchr_impl, "rdx");
unsafe extern "C" fn rawmemchr_impl(s: C, c: i32, ra: usize) -> P {
    if on(ra) {
        read_until(MemFn::Rawmemchr, s, c as u8, usize::MAX - s as usize);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Rawmemchr, unsafe extern "C" fn(C, i32) -> P)(s, c) }
}

hook!(memmem, memmem_impl, "r8");
unsafe extern "C" fn memmem_impl(h: C, hl: usize, nd: C, nl: usize, ra: usize) -> P {
    if on(ra) {
        range(MemFn::Memmem, h, hl, R);
        range(MemFn::Memmem, nd, nl, R);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memmem, unsafe extern "C" fn(C, usize, C, usize) -> P)(h, hl, nd, nl) }
}

hook!(memfrob, memfrob_impl, "rdx");
unsafe extern "C" fn memfrob_impl(s: P, n: usize, ra: usize) -> P {
    if on(ra) {
        range(MemFn::Memfrob, s, n, W);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Memfrob, unsafe extern "C" fn(P, usize) -> P)(s, n) }
}

// ---- strings ----

hook!(strlen, strlen_impl, "rsi");
unsafe extern "C" fn strlen_impl(s: C, ra: usize) -> usize {
    if on(ra) {
        return read_str(MemFn::Strlen, s, usize::MAX, None).0;
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strlen, StrlenFn)(s) }
}

hook!(strnlen, strnlen_impl, "rdx");
unsafe extern "C" fn strnlen_impl(s: C, n: usize, ra: usize) -> usize {
    if on(ra) && n != usize::MAX {
        return read_str(MemFn::Strnlen, s, n, None).0;
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strnlen, StrnlenFn)(s, n) }
}

/// The checks of `strcpy`/`stpcpy` (and their `_chk`): the source through its NUL is read and
/// written to the destination.
fn str_copy(f: MemFn, d: P, s: C) {
    let (l, _) = read_str(f, s, usize::MAX, None);
    overlap(f, d, l + 1, s, l + 1);
    range(f, d, l + 1, W);
}

/// `strncpy`/`stpncpy`: up to n bytes of the source are read; n bytes are written.
fn str_ncopy(f: MemFn, d: P, s: C, n: usize) {
    let (l, _) = read_str(f, s, n, None);
    let read = (l + 1).min(n);
    overlap(f, d, n, s, read);
    range(f, d, n, W);
}

/// `strcat`/`strncat` (n = usize::MAX for strcat): the destination's string is read, then the
/// source's (at most n bytes) is appended with a NUL.
fn str_cat(f: MemFn, d: P, s: C, n: usize) {
    let (dl, d_ok) = read_str(f, d, usize::MAX, None);
    let (sl, _) = read_str(f, s, n, None);
    if !d_ok {
        // The destination's string already ran off its block: where the copy lands says
        // nothing more.
        return;
    }
    let read = if n == usize::MAX {
        sl + 1
    } else {
        (sl + 1).min(n)
    };
    overlap(f, d, dl + sl + 1, s, read);
    range(f, d.wrapping_add(dl), sl + 1, W);
}

hook!(strcpy, strcpy_impl, "rdx");
unsafe extern "C" fn strcpy_impl(d: P, s: C, ra: usize) -> P {
    if on(ra) {
        str_copy(MemFn::Strcpy, d, s);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strcpy, unsafe extern "C" fn(P, C) -> P)(d, s) }
}

hook!(__strcpy_chk, strcpy_chk_impl, "rcx");
unsafe extern "C" fn strcpy_chk_impl(d: P, s: C, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_copy(MemFn::StrcpyChk, d, s);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::StrcpyChk, unsafe extern "C" fn(P, C, usize) -> P)(d, s, dl) }
}

hook!(stpcpy, stpcpy_impl, "rdx");
unsafe extern "C" fn stpcpy_impl(d: P, s: C, ra: usize) -> P {
    if on(ra) {
        str_copy(MemFn::Stpcpy, d, s);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Stpcpy, unsafe extern "C" fn(P, C) -> P)(d, s) }
}

hook!(__stpcpy_chk, stpcpy_chk_impl, "rcx");
unsafe extern "C" fn stpcpy_chk_impl(d: P, s: C, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_copy(MemFn::StpcpyChk, d, s);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::StpcpyChk, unsafe extern "C" fn(P, C, usize) -> P)(d, s, dl) }
}

hook!(strncpy, strncpy_impl, "rcx");
unsafe extern "C" fn strncpy_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        str_ncopy(MemFn::Strncpy, d, s, n);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strncpy, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__strncpy_chk, strncpy_chk_impl, "r8");
unsafe extern "C" fn strncpy_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_ncopy(MemFn::StrncpyChk, d, s, n);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::StrncpyChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(stpncpy, stpncpy_impl, "rcx");
unsafe extern "C" fn stpncpy_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        str_ncopy(MemFn::Stpncpy, d, s, n);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Stpncpy, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__stpncpy_chk, stpncpy_chk_impl, "r8");
unsafe extern "C" fn stpncpy_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_ncopy(MemFn::StpncpyChk, d, s, n);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::StpncpyChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(strcat, strcat_impl, "rdx");
unsafe extern "C" fn strcat_impl(d: P, s: C, ra: usize) -> P {
    if on(ra) {
        str_cat(MemFn::Strcat, d, s, usize::MAX);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strcat, unsafe extern "C" fn(P, C) -> P)(d, s) }
}

hook!(__strcat_chk, strcat_chk_impl, "rcx");
unsafe extern "C" fn strcat_chk_impl(d: P, s: C, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_cat(MemFn::StrcatChk, d, s, usize::MAX);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::StrcatChk, unsafe extern "C" fn(P, C, usize) -> P)(d, s, dl) }
}

hook!(strncat, strncat_impl, "rcx");
unsafe extern "C" fn strncat_impl(d: P, s: C, n: usize, ra: usize) -> P {
    if on(ra) {
        str_cat(MemFn::Strncat, d, s, n);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strncat, unsafe extern "C" fn(P, C, usize) -> P)(d, s, n) }
}

hook!(__strncat_chk, strncat_chk_impl, "r8");
unsafe extern "C" fn strncat_chk_impl(d: P, s: C, n: usize, dl: usize, ra: usize) -> P {
    if on(ra) {
        str_cat(MemFn::StrncatChk, d, s, n);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::StrncatChk,
            unsafe extern "C" fn(P, C, usize, usize) -> P
        )(d, s, n, dl)
    }
}

hook!(strcmp, strcmp_impl, "rdx");
unsafe extern "C" fn strcmp_impl(a: C, b: C, ra: usize) -> i32 {
    if on(ra) {
        compare(MemFn::Strcmp, a, b, usize::MAX);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strcmp, unsafe extern "C" fn(C, C) -> i32)(a, b) }
}

hook!(strncmp, strncmp_impl, "rcx");
unsafe extern "C" fn strncmp_impl(a: C, b: C, n: usize, ra: usize) -> i32 {
    if on(ra) {
        compare(MemFn::Strncmp, a, b, n);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strncmp, StrncmpFn)(a, b, n) }
}

hook!(strchr, strchr_impl, "rdx");
unsafe extern "C" fn strchr_impl(s: C, c: i32, ra: usize) -> P {
    if on(ra) {
        let stop = (c as u8 != 0).then_some(c as u8);
        read_str(MemFn::Strchr, s, usize::MAX, stop);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strchr, unsafe extern "C" fn(C, i32) -> P)(s, c) }
}

hook!(strrchr, strrchr_impl, "rdx");
unsafe extern "C" fn strrchr_impl(s: C, c: i32, ra: usize) -> P {
    if on(ra) {
        read_str(MemFn::Strrchr, s, usize::MAX, None);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strrchr, unsafe extern "C" fn(C, i32) -> P)(s, c) }
}

hook!(strstr, strstr_impl, "rdx");
unsafe extern "C" fn strstr_impl(h: C, nd: C, ra: usize) -> P {
    if on(ra) {
        read_str(MemFn::Strstr, h, usize::MAX, None);
        read_str(MemFn::Strstr, nd, usize::MAX, None);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strstr, unsafe extern "C" fn(C, C) -> P)(h, nd) }
}

hook!(strdup, strdup_impl, "rsi");
unsafe extern "C" fn strdup_impl(s: C, ra: usize) -> P {
    if on(ra) {
        read_str(MemFn::Strdup, s, usize::MAX, None);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strdup, unsafe extern "C" fn(C) -> P)(s) }
}

hook!(strndup, strndup_impl, "rdx");
unsafe extern "C" fn strndup_impl(s: C, n: usize, ra: usize) -> P {
    if on(ra) && n != usize::MAX {
        read_str(MemFn::Strndup, s, n, None);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Strndup, unsafe extern "C" fn(C, usize) -> P)(s, n) }
}

hook!(puts, puts_impl, "rsi");
unsafe extern "C" fn puts_impl(s: C, ra: usize) -> i32 {
    if on(ra) {
        read_str(MemFn::Puts, s, usize::MAX, None);
    }
    // SAFETY: as memset.
    unsafe { real!(MemFn::Puts, unsafe extern "C" fn(C) -> i32)(s) }
}

hook!(fputs, fputs_impl, "rdx");
unsafe extern "C" fn fputs_impl(s: C, stream: *mut libc::FILE, ra: usize) -> i32 {
    if on(ra) {
        read_str(MemFn::Fputs, s, usize::MAX, None);
    }
    // SAFETY: as memset.
    unsafe {
        real!(
            MemFn::Fputs,
            unsafe extern "C" fn(C, *mut libc::FILE) -> i32
        )(s, stream)
    }
}

// ---- before glibc's routines are resolved: plain loops for the shim's own calls ----
// Volatile accesses, so the compiler cannot turn them back into calls of these very functions.

unsafe extern "C" fn fallback_memcpy(d: P, s: C, n: usize) -> P {
    for i in 0..n {
        // SAFETY: the caller (the shim) passes valid, non-overlapping ranges of n bytes.
        unsafe { d.add(i).write_volatile(s.add(i).read_volatile()) };
    }
    d
}

unsafe extern "C" fn fallback_memmove(d: P, s: C, n: usize) -> P {
    if (d as usize) <= (s as usize) {
        // SAFETY: forward copy is safe when the destination starts at or before the source.
        unsafe { fallback_memcpy(d, s, n) }
    } else {
        for i in (0..n).rev() {
            // SAFETY: valid ranges of n bytes; backwards for an overlap with d after s.
            unsafe { d.add(i).write_volatile(s.add(i).read_volatile()) };
        }
        d
    }
}

unsafe extern "C" fn fallback_memset(d: P, c: i32, n: usize) -> P {
    for i in 0..n {
        // SAFETY: the caller passes n writable bytes.
        unsafe { d.add(i).write_volatile(c as u8) };
    }
    d
}

unsafe extern "C" fn fallback_memcmp(a: C, b: C, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller passes n readable bytes on each side.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

unsafe extern "C" fn fallback_strlen(s: C) -> usize {
    let mut i = 0;
    // SAFETY: the caller passes a NUL-terminated string.
    while unsafe { s.add(i).read_volatile() } != 0 {
        i += 1;
    }
    i
}
