//! The preload library (the shim): embedded in the binary at build time, written out on first use
//! to a per-user cache (`$XDG_CACHE_HOME/memcheck` or `~/.cache/memcheck`) under a name carrying
//! its content hash, so every memcheck build uses its own copy. `MEMCHECK_SHIM` overrides the path.
//!
//! The library is loaded into the user's program as the user, so only what memcheck made itself is
//! trusted (docs/ARCHITECTURE.md, "The preload cache"): every directory from `/` to the cache is
//! owned by the user or root and not writable by others (unless sticky), the cache directory is
//! created 0700, opened without following a symbolic link and must be owned by the user, and a
//! library found there is reused only when it is a regular file owned by the user, not writable by
//! others, whose bytes equal the embedded ones. Anything else is replaced atomically (a temporary
//! file renamed over it inside the checked directory) or, for a directory that cannot be trusted,
//! passed over for the private run directory.
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode};
use nix::unistd::{unlinkat, Uid, UnlinkatFlags};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libmemcheck_shim.so"));
/// Content hash of the embedded library.
pub const HASH: &str = env!("MEMCHECK_SHIM_HASH");

/// The version string the embedded library carries (`memcheck-shim X.Y.Z wire NN`).
pub fn embedded_version() -> Option<String> {
    version_of(SHIM)
}

/// Reads the `MEMCHECK_SHIM_VERSION` symbol of a shim library image.
pub fn version_of(image: &[u8]) -> Option<String> {
    let elf = goblin::elf::Elf::parse(image).ok()?;
    let sym = elf
        .dynsyms
        .iter()
        .find(|s| elf.dynstrtab.get_at(s.st_name) == Some("MEMCHECK_SHIM_VERSION"))?;
    let vaddr = sym.st_value;
    let ph = elf.program_headers.iter().find(|p| {
        p.p_type == goblin::elf::program_header::PT_LOAD
            && vaddr >= p.p_vaddr
            && vaddr < p.p_vaddr + p.p_filesz
    })?;
    let off = (vaddr - ph.p_vaddr + ph.p_offset) as usize;
    let raw = image.get(off..off + sym.st_size as usize)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Some(String::from_utf8_lossy(&raw[..end]).into_owned())
}

/// The directory the cache lives in: `$XDG_CACHE_HOME` or `$HOME/.cache`.
fn cache_parent() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache"))
}

/// The file name of the embedded library in any directory.
pub fn file_name() -> String {
    format!("libmemcheck_shim-{HASH}.so")
}

/// Why a place for the library was not used.
#[derive(Debug)]
enum Refusal {
    /// Something another user could have made or can change: said aloud once per run.
    Untrusted(String),
    /// An ordinary failure (read-only home, no space): the run directory is used silently.
    Io(String),
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Refusal::Io(e.desc().to_string())
    }
}

impl From<std::io::Error> for Refusal {
    fn from(e: std::io::Error) -> Self {
        Refusal::Io(e.to_string())
    }
}

/// Every directory from `/` down to `dir` (an absolute path without symbolic links) can be changed
/// only by the user or root: owned by one of them, and not writable by group or others unless it
/// is sticky (as /tmp is: there others cannot rename or remove what the user owns). Otherwise a
/// path checked now could name another file when the loader opens it.
pub fn check_ancestors(dir: &Path) -> Result<(), String> {
    let me = Uid::effective().as_raw();
    for d in dir.ancestors() {
        let m = std::fs::symlink_metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        if m.file_type().is_symlink() {
            return Err(format!("{} is a symbolic link", d.display()));
        }
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "{} belongs to another user (uid {})",
                d.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o022 != 0 && m.mode() & libc::S_ISVTX == 0 {
            return Err(format!(
                "{} is writable by other users and not sticky",
                d.display()
            ));
        }
    }
    Ok(())
}

/// Opens `parent/name` as a directory of ours, creating it 0700: never through a symbolic link,
/// owned by the user; a looser mode of the user's own directory is tightened to 0700 first, so
/// nobody else can add or swap a file in it from then on.
fn open_private_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Refusal> {
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = match openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
            return Err(Refusal::Untrusted(format!(
                "{name} is a symbolic link or not a directory"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let st = fstat(&fd)?;
    if st.st_uid != Uid::effective().as_raw() {
        return Err(Refusal::Untrusted(format!(
            "{name} belongs to another user (uid {})",
            st.st_uid
        )));
    }
    if st.st_mode & 0o077 != 0 {
        fchmod(&fd, Mode::S_IRWXU)?;
    }
    Ok(fd)
}

/// The library file `name` in `dir` is ours and exactly the embedded library: a regular file
/// (not a symbolic link), owned by the user, not writable by group or others, with the embedded
/// bytes.
fn is_genuine(dir: &OwnedFd, name: &str) -> bool {
    let Ok(fd) = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) else {
        return false;
    };
    let Ok(st) = fstat(&fd) else {
        return false;
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_uid != Uid::effective().as_raw()
        || st.st_mode & 0o022 != 0
        || st.st_size as u64 != SHIM.len() as u64
    {
        return false;
    }
    let mut have = Vec::with_capacity(SHIM.len());
    let mut f = File::from(fd);
    f.read_to_end(&mut have).is_ok() && have == SHIM
}

/// Writes the embedded library as `dir/name`: a new temporary file (never an existing one) in the
/// same directory, renamed over `name`, so a reader sees the old file or the whole new one.
fn install(dir: &OwnedFd, name: &str) -> Result<(), Refusal> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let tmp = format!(
        ".{name}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o755),
    )?;
    let written = (|| -> Result<(), Refusal> {
        fchmod(&fd, Mode::from_bits_truncate(0o755))?;
        let mut f = File::from(fd);
        f.write_all(SHIM)?;
        f.sync_all()?;
        renameat(dir, tmp.as_str(), dir, name)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// The library in `dir/name`, checked or written anew.
fn ensure_in(dir: &OwnedFd, name: &str) -> Result<(), Refusal> {
    if is_genuine(dir, name) {
        return Ok(());
    }
    install(dir, name)
}

fn open_dir(path: &Path) -> Result<OwnedFd, Refusal> {
    let fd = openat(
        AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(Refusal::Io(format!(
            "{} is not a directory",
            path.display()
        )));
    }
    Ok(fd)
}

/// The library in the per-user cache.
fn in_cache(parent: &Path) -> Result<PathBuf, Refusal> {
    if !parent.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
    }
    // The loader opens the path again in the program: it must hold no symbolic link and no
    // directory on it may be changeable by anyone but the user or root.
    let parent = std::fs::canonicalize(parent)?;
    check_ancestors(&parent).map_err(Refusal::Untrusted)?;
    let pfd = open_dir(&parent)?;
    let dfd = open_private_dir(&pfd, "memcheck")?;
    let name = file_name();
    ensure_in(&dfd, &name)?;
    Ok(parent.join("memcheck").join(name))
}

/// The path of a shim library to preload, writing the embedded copy out if needed. `rundir` is
/// the run's private directory (made by [`crate::rundir::create`]), used when the cache cannot be
/// written or trusted.
pub fn path(rundir: &Path) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MEMCHECK_SHIM").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "MEMCHECK_SHIM names {}, which is not a file; unset it to use the built-in library",
                p.display()
            );
        }
        return Ok(std::fs::canonicalize(p)?);
    }
    // LD_PRELOAD splits on spaces and colons, so a path holding either cannot be preloaded.
    let usable = |p: &Path| !p.to_string_lossy().contains([' ', ':']);
    if let Some(parent) = cache_parent() {
        match in_cache(&parent) {
            Ok(p) if usable(&p) => return Ok(p),
            Ok(_) | Err(Refusal::Io(_)) => {}
            Err(Refusal::Untrusted(why)) => eprintln!(
                "memcheck: warning: the library cache {} is not used: {why}; the library goes to the run directory",
                parent.join("memcheck").display()
            ),
        }
    }
    let rundir = std::fs::canonicalize(rundir)
        .with_context(|| format!("cannot find the run directory {}", rundir.display()))?;
    if !usable(&rundir) {
        bail!(
            "the directory {} holds a space or a colon, which LD_PRELOAD cannot carry; set TMPDIR to a plain path",
            rundir.display()
        );
    }
    if let Err(why) = rundir.parent().map_or(Ok(()), check_ancestors) {
        bail!("cannot trust the temporary directory: {why}; set TMPDIR to a directory only you can change");
    }
    let name = file_name();
    let written = open_dir(&rundir).and_then(|fd| ensure_in(&fd, &name));
    if let Err(Refusal::Io(why) | Refusal::Untrusted(why)) = written {
        bail!(
            "cannot write the memcheck preload library to {}: {why}",
            rundir.display()
        );
    }
    Ok(rundir.join(name))
}
