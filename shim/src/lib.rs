//! memcheck's preload library. Loaded into the target through `LD_PRELOAD`, it replaces the
//! malloc family and C++ `operator new`/`delete`, records a call stack per block, checks
//! redzones and frees, and at exit classifies unfreed blocks by a conservative reachability scan.
//!
//! Invariants: no hook path allocates through the target's allocator (the shim's own memory comes
//! from [`heap`]'s private arena); no hook path unwinds (`panic = "abort"` and no panicking code);
//! every exported C symbol lives in [`exports`].
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(clippy::missing_safety_doc)]
// Unit tests build the library without its exported symbols, so the bodies look unused there.
#![cfg_attr(test, allow(dead_code))]

extern crate alloc as rust_alloc;

#[macro_use]
mod fasttls;
mod alloc;
mod allocs;
mod bytes;
mod canary;
mod depot;
mod exec;
mod exit;
mod exports;
#[cfg(target_arch = "x86_64")]
mod fastunwind;
mod fault;
mod guard;
mod heap;
mod init;
mod live;
mod mallinfo;
mod marks;
mod memfn;
mod modules;
mod opts;
mod quarantine;
mod range;
mod real;
mod record;
mod reentry;
mod report;
mod rlimit;
mod scan;
mod sigctx;
mod spin;
mod stats;
mod sys;
mod table;
mod tls;
mod unload;
mod unwind;

#[cfg(not(test))]
#[global_allocator]
static PRIVATE_HEAP: heap::PrivateHeap = heap::PrivateHeap;
