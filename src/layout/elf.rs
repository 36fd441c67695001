//! The load layout of an ELF object (its PT_LOAD segments and its allocated sections), read with
//! goblin from the headers alone: a few small reads per object, never the whole file. Invariant:
//! addresses are link-time virtual addresses; add the load bias to compare them with a process.
use goblin::container::Ctx;
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};
use goblin::elf::section_header::{SectionHeader, SHF_ALLOC, SHN_XINDEX, SHT_NOBITS};
use goblin::elf::{header, Elf};
use goblin::strtab::Strtab;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Why an object's layout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{0}: cannot read it: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not an ELF object")]
    NotElf(String),
    #[error("{0}: malformed ELF headers: {1}")]
    Malformed(String, String),
}

/// A PT_LOAD segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
}

/// An allocated (SHF_ALLOC) section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// Occupies no file space (`.bss`, `.tbss`): it exists only in memory.
    pub nobits: bool,
}

/// What matters of an object to attribute its mapped regions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub loads: Vec<Segment>,
    pub sections: Vec<Section>,
}

impl Layout {
    /// The load bias that puts file offset `offset` (page-aligned) at address `start`, using the
    /// first PT_LOAD whose file pages hold that offset.
    pub fn bias_for(&self, start: u64, offset: u64, page: u64) -> Option<u64> {
        self.loads.iter().find_map(|s| {
            let file_start = s.offset / page * page;
            let file_end = s.offset + s.filesz.max(1);
            (file_start <= offset && offset < file_end).then(|| {
                let vaddr_of_offset = (s.vaddr / page * page) + (offset - file_start);
                start.wrapping_sub(vaddr_of_offset)
            })
        })
    }

    /// The names of the sections that lie, once loaded with `bias`, in `[start, end)`, in address
    /// order. Thread-local templates (`.tdata`, `.tbss`) are skipped: each thread gets its own
    /// copy elsewhere, and `.tbss` overlaps other sections' addresses.
    pub fn sections_in(&self, bias: u64, start: u64, end: u64) -> Vec<String> {
        self.sections
            .iter()
            .filter(|s| s.size > 0 && !s.name.starts_with(".tbss") && !s.name.starts_with(".tdata"))
            .filter(|s| {
                let a = s.addr.wrapping_add(bias);
                a < end && a.saturating_add(s.size) > start
            })
            .map(|s| s.name.clone())
            .collect()
    }

    /// The loaded address range of the memory-only part of the writable segment (bss and its
    /// kin), if the object has one.
    pub fn bss_range(&self, bias: u64) -> Option<(u64, u64)> {
        self.loads
            .iter()
            .filter(|s| s.memsz > s.filesz)
            .map(|s| {
                let a = s.vaddr.wrapping_add(bias);
                (a + s.filesz, a + s.memsz)
            })
            .next_back()
    }
}

fn read_at(f: &File, shown: &str, offset: u64, len: usize) -> Result<Vec<u8>, ElfError> {
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset)
        .map_err(|e| ElfError::Io(shown.to_string(), e))?;
    Ok(buf)
}

/// Reads the layout of the ELF object at `path`.
pub fn read(path: &Path) -> Result<Layout, ElfError> {
    let shown = path.display().to_string();
    let f = File::open(path).map_err(|e| ElfError::Io(shown.clone(), e))?;
    let bad = |e: goblin::error::Error| ElfError::Malformed(shown.clone(), e.to_string());
    let mut ident = [0u8; header::header64::SIZEOF_EHDR];
    let n = f
        .read_at(&mut ident, 0)
        .map_err(|e| ElfError::Io(shown.clone(), e))?;
    if n < header::header32::SIZEOF_EHDR || &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf(shown));
    }
    let hdr = Elf::parse_header(&ident[..n]).map_err(bad)?;
    let container = hdr.container().map_err(bad)?;
    let ctx = Ctx::new(container, hdr.endianness().map_err(bad)?);
    let phsize = ProgramHeader::size(ctx);
    let shsize = SectionHeader::size(ctx);

    let ph_bytes = read_at(&f, &shown, hdr.e_phoff, phsize * hdr.e_phnum as usize)?;
    let loads = ProgramHeader::parse(&ph_bytes, 0, hdr.e_phnum as usize, ctx)
        .map_err(bad)?
        .into_iter()
        .filter(|p| p.p_type == PT_LOAD)
        .map(|p| Segment {
            vaddr: p.p_vaddr,
            memsz: p.p_memsz,
            offset: p.p_offset,
            filesz: p.p_filesz,
        })
        .collect();

    let mut sections = Vec::new();
    if hdr.e_shoff != 0 {
        let first = read_at(&f, &shown, hdr.e_shoff, shsize)?;
        let null = SectionHeader::parse_from(&first, 0, 1, ctx).map_err(bad)?;
        let count = match hdr.e_shnum {
            0 => null.first().map(|s| s.sh_size as usize).unwrap_or(0),
            n => n as usize,
        };
        let strndx = match hdr.e_shstrndx as u32 {
            SHN_XINDEX => null.first().map(|s| s.sh_link as usize).unwrap_or(0),
            i => i as usize,
        };
        if count > 0 && count < 1 << 20 {
            let bytes = read_at(&f, &shown, hdr.e_shoff, shsize * count)?;
            let shdrs = SectionHeader::parse_from(&bytes, 0, count, ctx).map_err(bad)?;
            let names = shdrs
                .get(strndx)
                .filter(|s| s.sh_size < 1 << 24)
                .map(|s| read_at(&f, &shown, s.sh_offset, s.sh_size as usize))
                .transpose()?
                .unwrap_or_default();
            let strtab = Strtab::parse(&names, 0, names.len(), 0).map_err(bad)?;
            for s in &shdrs {
                if s.sh_flags & SHF_ALLOC as u64 == 0 {
                    continue;
                }
                sections.push(Section {
                    name: strtab.get_at(s.sh_name).unwrap_or("?").to_string(),
                    addr: s.sh_addr,
                    size: s.sh_size,
                    nobits: s.sh_type == SHT_NOBITS,
                });
            }
            sections.sort_by_key(|s| s.addr);
        }
    }
    Ok(Layout { loads, sections })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        // A PIE as ld lays it out with -z separate-code: headers, text, rodata, then data+bss.
        Layout {
            loads: vec![
                Segment {
                    vaddr: 0,
                    memsz: 0x6a0,
                    offset: 0,
                    filesz: 0x6a0,
                },
                Segment {
                    vaddr: 0x1000,
                    memsz: 0x1d5,
                    offset: 0x1000,
                    filesz: 0x1d5,
                },
                Segment {
                    vaddr: 0x2000,
                    memsz: 0x134,
                    offset: 0x2000,
                    filesz: 0x134,
                },
                Segment {
                    vaddr: 0x3db8,
                    memsz: 0x400270,
                    offset: 0x2db8,
                    filesz: 0x260,
                },
            ],
            sections: vec![
                Section {
                    name: ".interp".into(),
                    addr: 0x318,
                    size: 0x1c,
                    nobits: false,
                },
                Section {
                    name: ".text".into(),
                    addr: 0x1060,
                    size: 0x160,
                    nobits: false,
                },
                Section {
                    name: ".rodata".into(),
                    addr: 0x2000,
                    size: 0x40,
                    nobits: false,
                },
                Section {
                    name: ".eh_frame".into(),
                    addr: 0x20a0,
                    size: 0x94,
                    nobits: false,
                },
                Section {
                    name: ".data.rel.ro".into(),
                    addr: 0x3db8,
                    size: 0x8,
                    nobits: false,
                },
                Section {
                    name: ".got".into(),
                    addr: 0x3fb8,
                    size: 0x48,
                    nobits: false,
                },
                Section {
                    name: ".data".into(),
                    addr: 0x4000,
                    size: 0x18,
                    nobits: false,
                },
                Section {
                    name: ".bss".into(),
                    addr: 0x4020,
                    size: 0x400008,
                    nobits: true,
                },
            ],
        }
    }

    #[test]
    fn bias_comes_from_the_segment_holding_the_offset() {
        let l = layout();
        let base = 0x5555_5555_4000;
        assert_eq!(l.bias_for(base, 0, 0x1000), Some(base));
        assert_eq!(l.bias_for(base + 0x1000, 0x1000, 0x1000), Some(base));
        // The data segment's file page 0x2000 is also rodata's: the first segment wins, which is
        // why maps attribution takes the bias from an object's first mapping.
        assert_eq!(l.bias_for(base + 0x2000, 0x2000, 0x1000), Some(base));
        assert_eq!(l.bias_for(base, 0x10_0000, 0x1000), None);
    }

    #[test]
    fn sections_are_found_by_loaded_address() {
        let l = layout();
        let b = 0x5555_5555_4000u64;
        assert_eq!(l.sections_in(b, b + 0x1000, b + 0x2000), [".text"]);
        assert_eq!(
            l.sections_in(b, b + 0x2000, b + 0x3000),
            [".rodata", ".eh_frame"]
        );
        assert_eq!(
            l.sections_in(b, b + 0x3000, b + 0x4000),
            [".data.rel.ro", ".got"]
        );
        assert_eq!(l.sections_in(b, b + 0x4000, b + 0x5000), [".data", ".bss"]);
        assert_eq!(l.sections_in(b, b + 0x5000, b + 0x405000), [".bss"]);
        assert_eq!(
            l.bss_range(b),
            Some((b + 0x3db8 + 0x260, b + 0x3db8 + 0x400270))
        );
    }

    #[test]
    fn reads_a_real_object() {
        let exe = std::env::current_exe().unwrap();
        let l = read(&exe).unwrap();
        assert!(!l.loads.is_empty());
        let names: Vec<_> = l.sections.iter().map(|s| s.name.as_str()).collect();
        for want in [".text", ".rodata", ".data", ".bss"] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(l.sections.iter().find(|s| s.name == ".bss").unwrap().nobits);
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::write(
            &t,
            "not elf at all, not elf at all, not elf at all, not elf at all!",
        )
        .unwrap();
        assert!(matches!(read(&t), Err(ElfError::NotElf(_))));
    }
}
