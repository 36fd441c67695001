//! The preload library, embedded in the binary at build time and written out on first use to a
//! per-user cache (`$XDG_CACHE_HOME/memcheck` or `~/.cache/memcheck`), named by its content hash
//! so every memcheck build uses its own copy. `MEMCHECK_SHIM` overrides the path.
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
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

fn cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("memcheck"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("memcheck"))
}

fn write_to(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(format!("libmemcheck_shim-{HASH}.so"));
    if std::fs::metadata(&path)
        .map(|m| m.len() == SHIM.len() as u64)
        .unwrap_or(false)
    {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(SHIM)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))?;
    tmp.persist(&path)?;
    Ok(path)
}

/// The path of a shim library to preload, writing the embedded copy out if needed. `fallback` is
/// a private directory used when the cache cannot be written.
pub fn path(fallback: &Path) -> Result<PathBuf> {
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
    if let Some(dir) = cache_dir().filter(|d| usable(d)) {
        if let Ok(p) = write_to(&dir) {
            return Ok(p);
        }
    }
    if !usable(fallback) {
        bail!(
            "the directory {} holds a space or a colon, which LD_PRELOAD cannot carry; set TMPDIR to a plain path",
            fallback.display()
        );
    }
    write_to(fallback).with_context(|| {
        format!(
            "cannot write the memcheck preload library to {}",
            fallback.display()
        )
    })
}
