//! Finding the program to run and deciding whether `LD_PRELOAD` can reach it: a dynamically linked
//! 64-bit ELF of this machine, or a `#!` script whose interpreter is one. Everything else is
//! refused with a one-line reason and what to do instead.
use goblin::elf::{header, program_header, Elf};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a program cannot be run under the shim.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{0}: program not found (check the name, or give a path)")]
    NotFound(String),
    #[error("{0}: not executable (chmod +x it, or run it through its interpreter)")]
    NotExecutable(String),
    #[error("{0}: is a directory, not a program")]
    Directory(String),
    #[error("{0}: cannot read it: {1}")]
    Unreadable(String, std::io::Error),
    #[error("{0}: neither an ELF executable nor a #! script, so it cannot be run under memcheck")]
    NotElf(String),
    #[error("{0}: statically linked, so LD_PRELOAD cannot reach its allocator; rebuild it dynamically linked (without -static)")]
    Static(String),
    #[error(
        "{0}: a 32-bit program; memcheck's library is 64-bit ({1}), rebuild the program for 64-bit"
    )]
    Wrong32(String, &'static str),
    #[error(
        "{0}: built for another machine ({1}); memcheck checks programs of this machine ({2})"
    )]
    WrongMachine(String, String, &'static str),
    #[error("{0}: setuid/setgid, so the loader ignores LD_PRELOAD for it; run a copy without the set-id bit")]
    SetId(String),
    #[error("{0}: its #! line names {1}, which cannot be checked: {2}")]
    Interpreter(String, String, Box<TargetError>),
}

impl TargetError {
    /// The exit status memcheck returns for this error (127: not found, 126: cannot execute).
    pub fn exit_code(&self) -> i32 {
        match self {
            TargetError::NotFound(_) => 127,
            TargetError::Interpreter(_, _, inner) => inner.exit_code(),
            _ => 126,
        }
    }
}

#[cfg(target_arch = "x86_64")]
const HOST_MACHINE: u16 = header::EM_X86_64;
#[cfg(target_arch = "aarch64")]
const HOST_MACHINE: u16 = header::EM_AARCH64;
const HOST_NAME: &str = std::env::consts::ARCH;

/// Resolves `prog` as `execvp` would: a name with a slash is a path, otherwise PATH is searched.
pub fn resolve(prog: &OsStr) -> Result<PathBuf, TargetError> {
    let shown = prog.to_string_lossy().into_owned();
    if prog.as_bytes().contains(&b'/') {
        let p = PathBuf::from(prog);
        return if p.exists() {
            Ok(p)
        } else {
            Err(TargetError::NotFound(shown))
        };
    }
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut first_non_exec = None;
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(prog);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && m.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            first_non_exec.get_or_insert(cand);
        }
    }
    first_non_exec.ok_or(TargetError::NotFound(shown))
}

/// Checks that the resolved program can run under the shim.
pub fn check(path: &Path) -> Result<(), TargetError> {
    check_depth(path, 0)
}

fn check_depth(path: &Path, depth: u32) -> Result<(), TargetError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TargetError::NotFound(shown.clone()),
        _ => TargetError::Unreadable(shown.clone(), e),
    })?;
    if meta.is_dir() {
        return Err(TargetError::Directory(shown));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(TargetError::NotExecutable(shown));
    }
    if mode & 0o6000 != 0 {
        return Err(TargetError::SetId(shown));
    }
    let data = std::fs::read(path).map_err(|e| TargetError::Unreadable(shown.clone(), e))?;
    if data.starts_with(b"#!") {
        if depth > 3 {
            return Err(TargetError::NotElf(shown));
        }
        let line = data[2..].split(|&b| b == b'\n').next().unwrap_or(b"");
        let line = String::from_utf8_lossy(line);
        let interp = line.split_whitespace().next().unwrap_or("").to_string();
        if interp.is_empty() {
            return Err(TargetError::NotElf(shown));
        }
        return check_depth(Path::new(&interp), depth + 1)
            .map_err(|e| TargetError::Interpreter(shown, interp, Box::new(e)));
    }
    if !data.starts_with(b"\x7fELF") {
        return Err(TargetError::NotElf(shown));
    }
    if data.get(header::EI_CLASS) == Some(&header::ELFCLASS32) {
        return Err(TargetError::Wrong32(shown, HOST_NAME));
    }
    let elf = Elf::parse(&data).map_err(|_| TargetError::NotElf(shown.clone()))?;
    if elf.header.e_machine != HOST_MACHINE {
        return Err(TargetError::WrongMachine(
            shown,
            header::machine_to_str(elf.header.e_machine).to_string(),
            HOST_NAME,
        ));
    }
    let has_interp = elf
        .program_headers
        .iter()
        .any(|p| p.p_type == program_header::PT_INTERP);
    if !has_interp {
        // No program interpreter: a static executable (or static-pie) that never runs ld.so.
        return Err(TargetError::Static(shown));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_path_and_refuses_missing_ones() {
        assert!(resolve(OsStr::new("sh")).is_ok());
        let e = resolve(OsStr::new("no-such-program-xyz")).unwrap_err();
        assert_eq!(e.exit_code(), 127);
        assert!(e.to_string().contains("not found"));
    }

    #[test]
    fn dynamic_elf_passes_and_text_is_refused() {
        check(Path::new("/bin/sh")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes");
        std::fs::write(&f, "hello").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(check(&f), Err(TargetError::NotElf(_))));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(check(&f), Err(TargetError::NotExecutable(_))));
    }

    #[test]
    fn scripts_are_judged_by_their_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        check(&f).unwrap();
        std::fs::write(&f, "#!/nonexistent/interp\n").unwrap();
        let e = check(&f).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/interp"), "{e}");
        assert_eq!(e.exit_code(), 127);
    }
}
