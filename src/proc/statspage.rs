//! The statistics page of a process under memcheck: a shared file mapping the shim keeps current,
//! found through `/proc/PID/maps` and read without stopping or signalling the process.
use memcheck_wire::stats::{self as page, Snapshot};
use std::path::PathBuf;

/// The statistics page file a process under memcheck maps, found through its memory map.
pub fn page_path(pid: i32) -> Option<PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let prefix = format!("/{pid}-");
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with(page::SUFFIX) && p.contains(&prefix))
        .map(PathBuf::from)
}

/// Reads the page of a process under memcheck; `None` if it maps none (or it is unreadable).
pub fn read_page(pid: i32) -> Option<Snapshot> {
    let path = page_path(pid)?;
    let bytes = std::fs::read(path).ok()?;
    page::decode(&bytes).ok()
}
