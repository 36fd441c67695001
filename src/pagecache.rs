//! Page-cache residency of files: `mincore(2)` over a read-only shared mapping to see which pages
//! are in memory, `read(2)` to bring them in, `posix_fadvise(POSIX_FADV_DONTNEED)` to drop them
//! and `mlock(2)` to hold them. Invariants: mappings are read-only and never written through,
//! every mapping is unmapped when its owner is dropped, and the `unsafe` blocks here are the only
//! ones of the inspection commands besides the overcommit probe's fork and `proc::remote`'s ptrace
//! session.
#![deny(unsafe_op_in_unsafe_fn)]

use crate::residency_map::MapBuilder;
use nix::sys::mman::{MapFlags, ProtFlags};
use std::ffi::c_void;
use std::fs::File;
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::Path;
use std::ptr::NonNull;

/// Why a file could not be inspected or locked.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}: no such file or directory (check the path)")]
    NotFound(String),
    #[error("{0}: permission denied (run memcheck as a user who may read it, or as root)")]
    PermissionDenied(String),
    #[error("{0}: cannot read it: {1}")]
    Io(String, String),
    #[error("{0}: not a regular file or a directory, so it has no page-cache pages to show")]
    NotRegular(String),
    #[error(
        "{path}: cannot lock its {size} in memory: {cause}. Locked memory is limited by RLIMIT_MEMLOCK \
         (here soft {soft}, hard {hard}; see `ulimit -l`) unless the process has CAP_IPC_LOCK: raise the \
         limit (`ulimit -l unlimited`, memlock in /etc/security/limits.conf, LimitMEMLOCK= for a systemd \
         service) or give memcheck CAP_IPC_LOCK (run it as root, or `setcap cap_ipc_lock+ep` on it)"
    )]
    Lock {
        path: String,
        size: String,
        cause: String,
        soft: String,
        hard: String,
    },
}

impl FileError {
    /// The error for `e`, met while reading `path`.
    pub fn from_io(path: &Path, e: std::io::Error) -> FileError {
        let shown = path.display().to_string();
        match e.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound(shown),
            std::io::ErrorKind::PermissionDenied => FileError::PermissionDenied(shown),
            _ => FileError::Io(shown, e.to_string()),
        }
    }
}

/// Residency of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residency {
    pub pages: u64,
    pub resident_pages: u64,
    pub map: String,
}

/// A read-only shared mapping of a whole file, unmapped on drop.
struct Mapped {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapped {
    fn new(file: &File, len: u64) -> std::io::Result<Option<Mapped>> {
        let Some(nz) = NonZeroUsize::new(len as usize) else {
            return Ok(None);
        };
        // SAFETY: a fresh read-only mapping chosen by the kernel (no address hint, no MAP_FIXED),
        // so it cannot overlap memory Rust owns; it is only read through mincore/mlock and is
        // unmapped exactly once, in Drop.
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                nz,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }?;
        Ok(Some(Mapped { ptr, len: nz.get() }))
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned, and nothing refers into the mapping.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}

/// Pages asked of mincore per call, to bound the vector on huge files.
const CHUNK_PAGES: usize = 1 << 18;

/// Which pages of `file` (of `len` bytes) are in the page cache now, with a `width`-character map.
pub fn residency(file: &File, len: u64, width: usize) -> std::io::Result<Residency> {
    let ps = procfs::page_size();
    let pages = len.div_ceil(ps);
    let mut map = MapBuilder::new(pages, width);
    let mut resident = 0;
    if let Some(m) = Mapped::new(file, len)? {
        let mut vec = vec![0u8; CHUNK_PAGES.min(pages as usize)];
        let mut page = 0u64;
        while page < pages {
            let n = ((pages - page) as usize).min(CHUNK_PAGES);
            let offset = (page * ps) as usize;
            let bytes = (n as u64 * ps).min(len - page * ps) as usize;
            // SAFETY: [ptr+offset, ptr+offset+bytes) lies inside the mapping (offset and bytes
            // are bounded by len), and vec holds at least ceil(bytes / page size) = n entries.
            let rc = unsafe {
                libc::mincore(
                    m.ptr.as_ptr().cast::<u8>().add(offset).cast(),
                    bytes,
                    vec.as_mut_ptr(),
                )
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (i, v) in vec[..n].iter().enumerate() {
                let r = v & 1 == 1;
                resident += r as u64;
                map.record(page + i as u64, r);
            }
            page += n as u64;
        }
    }
    Ok(Residency {
        pages,
        resident_pages: resident,
        map: map.finish(),
    })
}

/// Reads the whole file so that its pages enter the page cache.
pub fn touch(file: &mut File) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while file.read(&mut buf)? > 0 {}
    Ok(())
}

/// Asks the kernel to drop the file's pages from the page cache. Dirty pages cannot be dropped,
/// so the file's data is written back first (`fdatasync`). Pages other processes have mapped or
/// locked, and files on tmpfs, stay in memory whatever is asked.
pub fn evict(file: &File) -> std::io::Result<()> {
    // A read-only descriptor may still be synced on Linux; failure (e.g. EINVAL on special
    // files) only means there was nothing to write back through it.
    let _ = nix::unistd::fdatasync(file);
    nix::fcntl::posix_fadvise(
        file,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )?;
    Ok(())
}

/// A file held in memory with mlock; unlocked and unmapped on drop.
pub struct Locked {
    mapping: Mapped,
}

impl Locked {
    pub fn bytes(&self) -> u64 {
        self.mapping.len as u64
    }
}

/// Maps `file` and locks all of its pages in memory (reading them in). `Ok(None)` for an empty
/// file. The error is mlock's or mmap's.
pub fn lock(file: &File, len: u64) -> std::io::Result<Option<Locked>> {
    let Some(mapping) = Mapped::new(file, len)? else {
        return Ok(None);
    };
    // SAFETY: the range is exactly the live mapping created above; locking does not change its
    // contents, and munmap in Drop releases the lock.
    unsafe { nix::sys::mman::mlock(mapping.ptr, mapping.len) }?;
    Ok(Some(Locked { mapping }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_written_and_read_file_is_resident_and_evict_drops_it() {
        // The crate directory is on a real disk; tmpfs pages could not be evicted.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 256 * 1024 + 1]).unwrap();
        f.sync_all().unwrap();
        let mut f = File::open(&path).unwrap();
        touch(&mut f).unwrap();
        let ps = procfs::page_size();
        let r = residency(&f, 256 * 1024 + 1, 10).unwrap();
        assert_eq!(r.pages, (256 * 1024 + 1u64).div_ceil(ps));
        assert_eq!(r.resident_pages, r.pages);
        evict(&f).unwrap();
        let r = residency(&f, 256 * 1024 + 1, 10).unwrap();
        assert_eq!(r.resident_pages, 0, "{r:?}");
        assert_eq!(r.map, "..........");
        let empty = File::create(dir.path().join("e")).unwrap();
        assert_eq!(residency(&empty, 0, 10).unwrap().pages, 0);
    }
}
