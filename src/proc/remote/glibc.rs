//! Finding glibc in a process and the addresses memcheck calls and reads in it: the library in
//! the memory map, its symbols (default versions first, no indirect functions) from the file on
//! disk, the `stderr` reference, and the layout of glibc's `FILE` on x86_64.
use procfs::process::{MMPermissions, MMapPath, MemoryMap};
use std::path::{Path, PathBuf};

/// glibc as mapped in a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LibcMapping {
    /// The file as the process names it (without a " (deleted)" suffix).
    pub path: PathBuf,
    /// The file was replaced or removed since it was mapped.
    pub deleted: bool,
    /// The mapping of file offset 0: its start is where the file's first page is loaded.
    pub first: (u64, u64),
    /// Executable ranges of the file.
    pub code: Vec<(u64, u64)>,
}

impl LibcMapping {
    /// True when `addr` lies in libc's code.
    pub fn in_code(&self, addr: u64) -> bool {
        self.code.iter().any(|&(lo, hi)| (lo..hi).contains(&addr))
    }
}

/// True for the file names glibc's C library has had: `libc.so.6`, and `libc-2.NN.so` before 2.34.
pub(super) fn is_glibc_name(name: &str) -> bool {
    name == "libc.so.6"
        || name
            .strip_prefix("libc-")
            .and_then(|r| r.strip_suffix(".so"))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// Finds glibc in a process's memory map (the first file named like it that is mapped from
/// offset 0), or `None` for a static program or another C library.
pub(super) fn find_libc(maps: &[MemoryMap]) -> Option<LibcMapping> {
    let named = |m: &MemoryMap| match &m.pathname {
        MMapPath::Path(p) => {
            let s = p.to_string_lossy();
            let (s, deleted) = match s.strip_suffix(" (deleted)") {
                Some(s) => (s.to_string(), true),
                None => (s.into_owned(), false),
            };
            let name = Path::new(&s).file_name()?.to_string_lossy().into_owned();
            is_glibc_name(&name).then(|| (PathBuf::from(s), deleted))
        }
        _ => None,
    };
    let (first, (path, deleted)) = maps
        .iter()
        .filter(|m| m.offset == 0)
        .find_map(|m| Some((m, named(m)?)))?;
    let code = maps
        .iter()
        .filter(|m| {
            m.perms.contains(MMPermissions::EXECUTE) && named(m).is_some_and(|(p, _)| p == path)
        })
        .map(|m| m.address)
        .collect();
    Some(LibcMapping {
        path,
        deleted,
        first: first.address,
        code,
    })
}

/// Where a process's live `stderr` pointer is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StderrRef {
    /// libc's GOT slot for `stderr`: holds the address of the variable libc's own code uses, which
    /// is the executable's copy when the executable refers to `stderr` (a copy relocation).
    Got(u64),
    /// The variable itself (when libc has no relocation for it).
    Var(u64),
}

/// The parts of libc memcheck calls or reads, as link-time addresses of the file.
#[derive(Debug, Clone)]
pub(super) struct LibcSymbols {
    pub mallinfo2: u64,
    pub malloc_stats: u64,
    pub syscall: u64,
    pub errno_location: u64,
    pub ftrylockfile: u64,
    pub funlockfile: u64,
    pub stderr: StderrRef,
    /// Link-time address of the page loaded at the start of the offset-0 mapping.
    pub first_page: u64,
    /// The first bytes of each function in the file, to check the process mapped the same file.
    pub probes: Vec<(u64, Vec<u8>)>,
}

/// Why a libc file cannot serve.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ImageError {
    NotElf,
    /// Class or machine other than 64-bit x86_64 (described).
    WrongArch(String),
    /// A symbol memcheck needs is not there (glibc older than 2.33 has no `mallinfo2`).
    Missing(&'static str),
    /// The symbol is a GNU indirect function, whose address is a resolver.
    Indirect(&'static str),
}

pub(super) const FUNCTIONS: [&str; 6] = [
    "mallinfo2",
    "malloc_stats",
    "syscall",
    "__errno_location",
    "ftrylockfile",
    "funlockfile",
];
pub(super) const PROBE_LEN: usize = 16;

/// Reads the symbols memcheck needs from a libc image. Of several versions of a symbol, the
/// default one (`name@@VERSION`) is taken, as the linker would.
pub(super) fn parse_libc(image: &[u8]) -> Result<LibcSymbols, ImageError> {
    use goblin::elf::{header, program_header::PT_LOAD, sym::STT_GNU_IFUNC, Elf};
    let elf = Elf::parse(image).map_err(|_| ImageError::NotElf)?;
    if !elf.is_64 || elf.header.e_machine != header::EM_X86_64 {
        return Err(ImageError::WrongArch(format!(
            "its libc is {}-bit {}",
            if elf.is_64 { 64 } else { 32 },
            header::machine_to_str(elf.header.e_machine)
        )));
    }
    let loads: Vec<_> = elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .collect();
    let first = loads
        .iter()
        .find(|p| p.p_offset == 0)
        .ok_or(ImageError::NotElf)?;
    let first_page = first.p_vaddr & !(first.p_align.max(4096) - 1);
    let file_at = |vaddr: u64, len: usize| {
        let p = loads
            .iter()
            .find(|p| (p.p_vaddr..p.p_vaddr + p.p_filesz).contains(&vaddr))?;
        let off = usize::try_from(vaddr - p.p_vaddr + p.p_offset).ok()?;
        image.get(off..off + len).map(<[u8]>::to_vec)
    };
    let mut addr = [0u64; FUNCTIONS.len()];
    let mut probes = Vec::new();
    for (slot, name) in addr.iter_mut().zip(FUNCTIONS) {
        let sym = lookup(&elf, name).ok_or(ImageError::Missing(name))?;
        if sym.st_type() == STT_GNU_IFUNC {
            return Err(ImageError::Indirect(name));
        }
        *slot = sym.st_value;
        probes.push((
            sym.st_value,
            file_at(sym.st_value, PROBE_LEN).ok_or(ImageError::NotElf)?,
        ));
    }
    let var = lookup(&elf, "stderr").ok_or(ImageError::Missing("stderr"))?;
    let got = elf
        .dynrelas
        .iter()
        .find(|r| {
            r.r_type == goblin::elf::reloc::R_X86_64_GLOB_DAT
                && elf
                    .dynsyms
                    .get(r.r_sym)
                    .and_then(|s| elf.dynstrtab.get_at(s.st_name))
                    == Some("stderr")
        })
        .map(|r| r.r_offset);
    let [mallinfo2, malloc_stats, syscall, errno_location, ftrylockfile, funlockfile] = addr;
    Ok(LibcSymbols {
        mallinfo2,
        malloc_stats,
        syscall,
        errno_location,
        ftrylockfile,
        funlockfile,
        stderr: got.map_or(StderrRef::Var(var.st_value), StderrRef::Got),
        first_page,
        probes,
    })
}

/// The defined dynamic symbol `name`, its default version preferred.
pub(super) fn lookup(elf: &goblin::elf::Elf, name: &str) -> Option<goblin::elf::Sym> {
    let mut hidden = None;
    for (i, sym) in elf.dynsyms.iter().enumerate() {
        if sym.st_shndx == 0 || elf.dynstrtab.get_at(sym.st_name) != Some(name) {
            continue;
        }
        if elf
            .versym
            .as_ref()
            .and_then(|v| v.get_at(i))
            .is_some_and(|v| v.is_hidden())
        {
            hidden.get_or_insert(sym);
        } else {
            return Some(sym);
        }
    }
    hidden
}

/// glibc's `FILE` on x86_64 (`bits/types/struct_FILE.h`, a stable ABI), checked by a test against
/// the headers, and the flags memcheck reads.
pub(super) mod file_abi {
    pub const SIZE: usize = 216;
    pub const FLAGS: usize = 0;
    pub const WRITE_BASE: usize = 32;
    pub const WRITE_PTR: usize = 40;
    pub const FILENO: usize = 112;
    pub const FLAGS2: usize = 116;
    pub const LOCK: usize = 136;
    pub const MODE: usize = 192;
    pub const MAGIC_MASK: u32 = 0xffff_0000;
    pub const MAGIC: u32 = 0xfbad_0000;
    pub const UNBUFFERED: u32 = 0x2;
    pub const NO_WRITES: u32 = 0x8;
    pub const USER_LOCK: u32 = 0x8000;
    /// `_IO_FLAGS2_NEED_LOCK`: set once the process has had a second thread; without it stdio may
    /// skip locking.
    pub const NEED_LOCK: u32 = 128;
}

/// The fields of a `FILE` that decide whether `malloc_stats` may print through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileView {
    pub flags: u32,
    pub flags2: u32,
    pub write_base: u64,
    pub write_ptr: u64,
    pub lock: u64,
    pub mode: i32,
}

impl FileView {
    /// Reads the fields from the `FILE`'s bytes (at least [`file_abi::SIZE`]).
    pub fn parse(b: &[u8]) -> Option<FileView> {
        let u32_at = |o: usize| Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?));
        let u64_at = |o: usize| Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?));
        Some(FileView {
            flags: u32_at(file_abi::FLAGS)?,
            flags2: u32_at(file_abi::FLAGS2)?,
            write_base: u64_at(file_abi::WRITE_BASE)?,
            write_ptr: u64_at(file_abi::WRITE_PTR)?,
            lock: u64_at(file_abi::LOCK)?,
            mode: u32_at(file_abi::MODE)? as i32,
        })
    }

    /// Why this stream cannot take `malloc_stats`' text at all, if it cannot.
    pub fn unusable(&self) -> Option<&'static str> {
        use file_abi::*;
        Some(if self.flags & MAGIC_MASK != MAGIC {
            "stderr does not look like a glibc FILE"
        } else if self.flags & NO_WRITES != 0 {
            "stderr is closed in the process"
        } else if self.flags & USER_LOCK != 0 {
            "the program locks stderr itself (__fsetlocking), so it cannot be borrowed safely"
        } else if self.flags & UNBUFFERED == 0 {
            "stderr is buffered in the process (setvbuf), so the text would stay in its buffer"
        } else if self.mode > 0 {
            "stderr is wide-oriented in the process"
        } else if self.lock == 0 {
            "stderr has no lock in the process"
        } else {
            return None;
        })
    }

    /// Output is waiting in the stream's buffer (the program is in the middle of writing).
    pub fn pending_output(&self) -> bool {
        self.write_ptr != self.write_base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::remote::memory::read_mem;
    use procfs::process::Process;

    fn maps(text: &str) -> Vec<MemoryMap> {
        use procfs::FromBufRead;
        procfs::process::MemoryMaps::from_buf_read(text.as_bytes())
            .unwrap()
            .into_iter()
            .collect()
    }

    const MAPS: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 1234 /usr/bin/prog
55d0c0a01000-55d0c0a02000 r-xp 00001000 fe:01 1234 /usr/bin/prog
7f1a2b600000-7f1a2b626000 r--p 00000000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b626000-7f1a2b77b000 r-xp 00026000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b77b000-7f1a2b7ce000 r--p 0017b000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b7ce000-7f1a2b7d2000 r--p 001cd000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7f1a2b7d2000-7f1a2b7d4000 rw-p 001d1000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
";

    #[test]
    fn finds_libc_and_its_code() {
        let l = find_libc(&maps(MAPS)).unwrap();
        assert_eq!(l.path, Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!l.deleted);
        assert_eq!(l.first, (0x7f1a2b600000, 0x7f1a2b626000));
        assert_eq!(l.code, vec![(0x7f1a2b626000, 0x7f1a2b77b000)]);
        assert!(l.in_code(0x7f1a2b700000));
        assert!(!l.in_code(0x7f1a2b600010));
    }

    #[test]
    fn old_names_deleted_files_and_absent_libc() {
        let old = "7f00-7f10 r-xp 00000000 08:01 1 /lib/x86_64-linux-gnu/libc-2.31.so (deleted)\n";
        let l = find_libc(&maps(old)).unwrap();
        assert_eq!(l.path, Path::new("/lib/x86_64-linux-gnu/libc-2.31.so"));
        assert!(l.deleted);
        assert_eq!(l.code, vec![(0x7f00, 0x7f10)]);
        let not = "\
00400000-00401000 r-xp 00000000 08:01 1 /usr/bin/static
7f00-7f10 r-xp 00000000 08:01 2 /lib/ld-musl-x86_64.so.1
7f20-7f30 r-xp 00000000 08:01 3 /usr/lib/libcrypto.so.3
7f40-7f50 r-xp 00000000 08:01 3 /usr/lib/libc.so.6.backup
";
        assert_eq!(find_libc(&maps(not)), None);
        assert!(
            is_glibc_name("libc-2.17.so")
                && !is_glibc_name("libc-client.so")
                && !is_glibc_name("libcap.so.2")
        );
    }

    /// The libc this test binary runs on, found the way a target's is.
    fn own_libc() -> (LibcMapping, Vec<u8>) {
        let me: Vec<MemoryMap> = Process::myself()
            .unwrap()
            .maps()
            .unwrap()
            .into_iter()
            .collect();
        let l = find_libc(&me).expect("the test binary uses glibc");
        let image = std::fs::read(&l.path).unwrap();
        (l, image)
    }

    #[test]
    fn resolves_the_real_libc_and_matches_the_loaded_code() {
        let (l, image) = own_libc();
        let s = parse_libc(&image).unwrap();
        let bias = l.first.0 - s.first_page;
        assert_eq!(
            s.mallinfo2 + bias,
            libc::mallinfo2 as *const () as usize as u64
        );
        assert_eq!(
            s.malloc_stats + bias,
            libc::malloc_stats as *const () as usize as u64
        );
        assert_eq!(
            s.errno_location + bias,
            libc::__errno_location as *const () as usize as u64
        );
        assert!(l.in_code(s.syscall + bias));
        for (vaddr, bytes) in &s.probes {
            assert_eq!(
                &read_mem(std::process::id() as i32, vaddr + bias, bytes.len()).unwrap(),
                bytes
            );
        }
        // The GOT slot holds the address of the `stderr` this process's libc uses.
        let StderrRef::Got(slot) = s.stderr else {
            panic!("glibc reads stderr through its GOT")
        };
        let var = u64::from_ne_bytes(
            read_mem(std::process::id() as i32, slot + bias, 8)
                .unwrap()
                .try_into()
                .unwrap(),
        );
        extern "C" {
            static stderr: *mut libc::FILE;
        }
        // SAFETY: reading the address of an extern static, not its value.
        assert_eq!(var, std::ptr::addr_of!(stderr) as u64);
    }

    #[test]
    fn default_symbol_versions_win() {
        let (_, image) = own_libc();
        let elf = goblin::elf::Elf::parse(&image).unwrap();
        // realpath@@GLIBC_2.3 is the default; realpath@GLIBC_2.2.5 an older, hidden version.
        let all: Vec<u64> = elf
            .dynsyms
            .iter()
            .filter(|s| elf.dynstrtab.get_at(s.st_name) == Some("realpath"))
            .map(|s| s.st_value)
            .collect();
        assert_eq!(all.len(), 2, "glibc has two versions of realpath");
        let (l, _) = own_libc();
        let bias = l.first.0 - parse_libc(&image).unwrap().first_page;
        assert_eq!(
            lookup(&elf, "realpath").unwrap().st_value + bias,
            libc::realpath as *const () as usize as u64
        );
        assert!(lookup(&elf, "no_such_symbol_here").is_none());
    }

    #[test]
    fn refuses_images_that_cannot_serve() {
        assert_eq!(parse_libc(b"not an elf").unwrap_err(), ImageError::NotElf);
        let (_, mut image) = own_libc();
        image[18] = 3; // e_machine = EM_386
        assert!(matches!(parse_libc(&image), Err(ImageError::WrongArch(w)) if w.contains("386")));
    }

    fn file(flags: u32) -> FileView {
        FileView {
            flags,
            flags2: 0,
            write_base: 0,
            write_ptr: 0,
            lock: 0x1000,
            mode: 0,
        }
    }

    #[test]
    fn file_checks() {
        use file_abi::*;
        let ok = MAGIC | UNBUFFERED;
        assert_eq!(file(ok).unusable(), None);
        assert!(file(0x1234_0000 | UNBUFFERED)
            .unusable()
            .unwrap()
            .contains("glibc FILE"));
        assert!(file(ok | NO_WRITES).unusable().unwrap().contains("closed"));
        assert!(file(ok | USER_LOCK)
            .unusable()
            .unwrap()
            .contains("__fsetlocking"));
        assert!(file(MAGIC).unusable().unwrap().contains("buffered"));
        assert!(FileView {
            mode: 1,
            ..file(ok)
        }
        .unusable()
        .unwrap()
        .contains("wide"));
        assert!(FileView {
            lock: 0,
            ..file(ok)
        }
        .unusable()
        .unwrap()
        .contains("no lock"));
        assert!(FileView {
            write_base: 8,
            write_ptr: 9,
            ..file(ok)
        }
        .pending_output());
    }

    /// The FILE offsets and the lock layout, checked against this machine's headers and glibc.
    #[test]
    fn file_layout_matches_glibc() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(FILE), offsetof(FILE, _flags),
         offsetof(FILE, _IO_write_base), offsetof(FILE, _IO_write_ptr), offsetof(FILE, _fileno),
         offsetof(FILE, _flags2), offsetof(FILE, _lock), offsetof(FILE, _mode));
  flockfile(stderr); flockfile(stderr);
  int *l = (int *)stderr->_lock;
  printf("%d %d %d %d\n", l[0] != 0, l[1], *(void **)(l + 2) == (void *)pthread_self(),
         (stderr->_flags & 0xffff0000u) == 0xfbad0000u && (stderr->_flags & 2));
  return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("f");
        let cc = std::process::Command::new("gcc")
            .arg("-pthread")
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let out = std::process::Command::new(&exe).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        use file_abi::*;
        let want = format!(
            "{SIZE} {FLAGS} {WRITE_BASE} {WRITE_PTR} {FILENO} {FLAGS2} {LOCK} {MODE}\n1 2 1 1\n"
        );
        assert_eq!(text, want);
    }
}
