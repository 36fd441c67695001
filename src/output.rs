//! Where a report goes (`--output`): checked before the program runs, then written so that nothing
//! is destroyed and nothing is half written.
//!
//! - `-` is standard output.
//! - A regular file, or a path that does not exist yet, is replaced atomically: the report is
//!   written to a temporary file in the same directory and renamed over the path.
//! - A character device, a FIFO, a socket or a symbolic link (`/dev/stdout`, `/dev/null`, a named
//!   pipe with a reader, a link into a CI artefact directory) is opened and written into, never
//!   replaced. A link to a regular file stays a link, and the file it leads to is replaced
//!   atomically. When it leads to the file memcheck's own stdout or stderr writes to (`--output
//!   /dev/stdout > out.txt`), the report is appended, so the program's output in it stays.
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A checked output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    /// A regular file (or a new one), replaced atomically.
    Replace(PathBuf),
    /// Something that is written into: a device, FIFO, socket, or whatever a symlink leads to.
    Into(PathBuf),
}

/// Checks that `path` can take a report, before the program runs. The error names the path and
/// the reason.
pub fn check(path: &Path) -> Result<Sink> {
    if path == Path::new("-") {
        return Ok(Sink::Stdout);
    }
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let ft = m.file_type();
            if ft.is_symlink() {
                match std::fs::metadata(path) {
                    Ok(t) if t.is_dir() => {
                        bail!("--output {shown} leads to a directory; name a file")
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // A dangling link: its target is created through it when written.
                    }
                    Err(e) => bail!("--output {shown}: {e}"),
                }
                writable(path)?;
                return Ok(Sink::Into(path.to_path_buf()));
            }
            if ft.is_dir() {
                bail!("--output {shown} is a directory; name a file in it");
            }
            if ft.is_block_device() {
                bail!("--output {shown} is a block device; memcheck will not write a report onto a disk");
            }
            if ft.is_char_device() || ft.is_fifo() || ft.is_socket() {
                writable(path)?;
                return Ok(Sink::Into(path.to_path_buf()));
            }
            writable(path)?;
            dir_writable(path)?;
            Ok(Sink::Replace(path.to_path_buf()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            dir_writable(path)?;
            Ok(Sink::Replace(path.to_path_buf()))
        }
        Err(e) => bail!("--output {shown}: {e}"),
    }
}

/// [`check`] of a path another flag gave: the error names that flag. `flag` is what comes before
/// the path on the command line (`--flamegraph `, `--report json=`), so a message of [`check`]'s
/// that names `--output PATH` names `FLAG PATH` instead, and any other is prefixed with it.
pub fn check_for(flag: &str, path: &Path) -> Result<Sink> {
    check(path).map_err(|e| {
        let m = format!("{e:#}");
        match m.strip_prefix("--output ") {
            Some(rest) => anyhow::anyhow!("{flag}{rest}"),
            None => anyhow::anyhow!("{flag}{}: {m}", path.display()),
        }
    })
}

fn writable(path: &Path) -> Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .with_context(|| format!("--output {}: the path holds a NUL byte", path.display()))?;
    // SAFETY: access only reads the NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::NotFound {
            bail!("cannot write the report to {}: {e}", path.display());
        }
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The directory can take the temporary file of an atomic replace: tried for real.
fn dir_writable(path: &Path) -> Result<()> {
    let dir = parent(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "cannot write the report to {}: {} is not a directory",
            path.display(),
            dir.display()
        ),
        Err(e) => bail!(
            "cannot write the report to {}: the directory {} {}",
            path.display(),
            dir.display(),
            if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_string()
            } else {
                format!("cannot be read ({e})")
            }
        ),
    }
    tempfile::NamedTempFile::new_in(dir).map(drop).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the report to {}: cannot create a file in {} ({})",
            path.display(),
            dir.display(),
            e
        )
    })
}

/// The (device, inode) of what memcheck's stdout and stderr write to.
fn std_streams() -> Vec<(u64, u64)> {
    [1, 2]
        .iter()
        .filter_map(|fd| {
            // SAFETY: an all-zero stat is a valid out-buffer; fstat of a closed fd just fails.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            (unsafe { libc::fstat(*fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
        })
        .collect()
}

/// Writes `text` (a newline is added when it lacks one) to the checked sink.
pub fn write(sink: &Sink, text: &str) -> Result<()> {
    let mut bytes = text.as_bytes().to_vec();
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    match sink {
        Sink::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|_| out.flush())
                .context("cannot write the report to standard output")
        }
        Sink::Into(path) => {
            let target = std::fs::metadata(path).ok().filter(|m| m.is_file());
            let shared = target
                .as_ref()
                .is_some_and(|m| std_streams().contains(&(m.dev(), m.ino())));
            if target.is_some() && !shared {
                // A link to a regular file: the file it leads to is replaced atomically (the
                // link stays), so no reader sees half a report.
                if let Ok(real) = std::fs::canonicalize(path) {
                    if replace(&real, &bytes).is_ok() {
                        return Ok(());
                    }
                }
            }
            let mut f: File = OpenOptions::new()
                .write(true)
                .create(true)
                .append(shared)
                .truncate(!shared)
                .open(path)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            f.write_all(&bytes)
                .and_then(|_| f.flush())
                .with_context(|| format!("cannot write the report to {}", path.display()))
        }
        Sink::Replace(path) => replace(path, &bytes)
            .with_context(|| format!("cannot write the report to {}", path.display())),
    }
}

/// Replaces the regular file `path` (or creates it) atomically: a temporary file in the same
/// directory, renamed over it.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(parent(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_into_what_is_replaced_and_what_is_written_into() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("r.json");
        assert_eq!(check(&new).unwrap(), Sink::Replace(new.clone()));
        std::fs::write(&new, "old").unwrap();
        assert_eq!(check(&new).unwrap(), Sink::Replace(new.clone()));
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&new, &link).unwrap();
        assert_eq!(check(&link).unwrap(), Sink::Into(link.clone()));
        assert_eq!(
            check(Path::new("/dev/null")).unwrap(),
            Sink::Into("/dev/null".into())
        );
        assert_eq!(check(Path::new("-")).unwrap(), Sink::Stdout);
        let e = check(&d.path().join("missing/r.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let e = check(d.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "old contents").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&check(&link).unwrap(), "{}").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}\n");
    }
}
