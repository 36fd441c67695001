//! The shim's thread-local variables, in the initial-exec TLS model.
//!
//! Rust's `thread_local!` in a shared library uses the general-dynamic model: every access is a
//! call to `__tls_get_addr` (about ten instructions and a call), and a malloc+free pair touched a
//! dozen of them. The shim is loaded at start-up (`LD_PRELOAD`), so its thread-local block is in
//! every thread's static TLS and its offset from the thread pointer is fixed: [`per_thread!`]
//! places each variable in `.tbss` and reads its address as `%fs:0` plus that offset, taken from
//! the GOT (two instructions, no call), as C's `__attribute__((tls_model("initial-exec")))` does.
//!
//! A variable starts all-zero in every thread (`.tbss`), so its type must be valid all-zero and
//! must not be `Sync`: [`PerThread`] says so (a `Cell`, or arrays and structs of them). It has no destructor. `VAR.with(|v| ...)` and `VAR.get()`/`set()` on a
//! `Cell` read as they did with `thread_local!`. Other architectures keep `thread_local!`.

/// Types whose all-zero bytes are a valid value, and the value a fresh thread must see.
///
/// # Safety
/// All-zero bytes must be a valid value of the type.
pub unsafe trait Zeroed {}

// SAFETY: zero is a valid value of every integer, bool, float and raw pointer.
unsafe impl Zeroed for u8 {}
// SAFETY: as above.
unsafe impl Zeroed for u32 {}
// SAFETY: as above.
unsafe impl Zeroed for i32 {}
// SAFETY: as above.
unsafe impl Zeroed for u64 {}
// SAFETY: as above.
unsafe impl Zeroed for i64 {}
// SAFETY: as above.
unsafe impl Zeroed for usize {}
// SAFETY: as above (false).
unsafe impl Zeroed for bool {}
// SAFETY: as above (null).
unsafe impl<T> Zeroed for *mut T {}
// SAFETY: a Cell has its content's representation.
unsafe impl<T: Zeroed> Zeroed for core::cell::Cell<T> {}
// SAFETY: an array of zero-valid elements.
unsafe impl<T: Zeroed, const N: usize> Zeroed for [T; N] {}
// SAFETY: tuples of zero-valid fields.
unsafe impl<A: Zeroed, B: Zeroed> Zeroed for (A, B) {}
// SAFETY: as above.
unsafe impl<A: Zeroed, B: Zeroed, C: Zeroed> Zeroed for (A, B, C) {}

/// Types a [`per_thread!`] variable may have: all-zero valid and not `Sync` (a `Cell`, arrays and
/// structs of them), so the `&'static` reference `Deref` hands out cannot reach another thread,
/// which could then outlive this one.
///
/// # Safety
/// The type must be [`Zeroed`] and must not be `Sync`.
pub unsafe trait PerThread: Zeroed {}

// SAFETY: Cell is !Sync; its content is Zeroed.
unsafe impl<T: Zeroed> PerThread for core::cell::Cell<T> {}
// SAFETY: an array of !Sync elements is !Sync.
unsafe impl<T: PerThread, const N: usize> PerThread for [T; N] {}

/// Compile-time proof that a variable's type is [`PerThread`].
pub const fn assert_per_thread<T: PerThread>() {}

/// Declares thread-local variables in the initial-exec model:
/// `per_thread! { /// doc \n static NAME: Type; }`. Each starts all-zero in every thread. The
/// names become assembler symbols (`memcheck_tls_NAME`), so they must be unique in the shim (a
/// duplicate fails the link).
macro_rules! per_thread {
    ($($(#[$m:meta])* static $name:ident: $t:ty;)*) => {$(
        $(#[$m])*
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        struct $name;

        const _: () = $crate::fasttls::assert_per_thread::<$t>();

        #[cfg(target_arch = "x86_64")]
        ::core::arch::global_asm!(
            concat!(".pushsection .tbss.memcheck_tls_", stringify!($name), ",\"awT\",@nobits"),
            ".p2align {align}",
            concat!(".globl memcheck_tls_", stringify!($name)),
            concat!(".hidden memcheck_tls_", stringify!($name)),
            concat!(".type memcheck_tls_", stringify!($name), ", @tls_object"),
            concat!(".size memcheck_tls_", stringify!($name), ", {size}"),
            concat!("memcheck_tls_", stringify!($name), ":"),
            ".zero {size}",
            ".popsection",
            align = const ::core::mem::align_of::<$t>().trailing_zeros(),
            size = const ::core::mem::size_of::<$t>(),
        );

        impl $name {
            /// This thread's instance.
            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn ptr(self) -> *const $t {
                let p: usize;
                // SAFETY: reads the thread pointer (`%fs:0`, the TCB's self pointer on x86_64
                // glibc) and the variable's static-TLS offset from the GOT; no other memory.
                unsafe {
                    ::core::arch::asm!(
                        concat!("mov {p}, qword ptr [rip + memcheck_tls_", stringify!($name), "@GOTTPOFF]"),
                        "add {p}, qword ptr fs:[0]",
                        p = out(reg) p,
                        options(pure, readonly, nostack),
                    );
                }
                p as *const $t
            }

            /// This thread's instance.
            #[cfg(not(target_arch = "x86_64"))]
            #[inline(always)]
            fn ptr(self) -> *const $t {
                ::std::thread_local! {
                    static V: $t = const {
                        // SAFETY: the type is Zeroed (checked above).
                        unsafe { ::core::mem::zeroed() }
                    };
                }
                V.with(|v| v as *const $t)
            }

            /// Runs `f` on this thread's instance.
            #[allow(dead_code)]
            #[inline(always)]
            fn with<R>(self, f: impl FnOnce(&$t) -> R) -> R {
                // SAFETY: the instance lives as long as this thread and only it can reach it
                // (the type is not Sync, so the reference cannot leave the thread).
                f(unsafe { &*self.ptr() })
            }
        }

        impl ::core::ops::Deref for $name {
            type Target = $t;
            #[inline(always)]
            fn deref(&self) -> &$t {
                // SAFETY: as in `with`.
                unsafe { &*self.ptr() }
            }
        }
    )*};
}
