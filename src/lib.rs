//! memcheck: heap error and leak detection for unmodified Linux programs, and inspection of how a
//! live process uses memory. The binary is a thin wrapper over [`main_with_args`].
pub mod child;
pub mod cli;
pub mod cmd;
pub mod exit;
pub mod layout;
pub mod output;
pub mod pagecache;
pub mod preload;
pub mod proc;
pub mod records;
pub mod report;
pub mod residency_map;
pub mod rundir;
pub mod snapshot;
pub mod style;
pub mod suppress;
pub mod symbolize;
pub mod target;
pub mod units;
pub mod version;

/// Runs memcheck with these arguments and returns the process exit status.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    cmd::dispatch(args)
}
