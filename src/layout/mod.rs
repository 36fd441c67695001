//! What each region of a process is: its [`Kind`] (text, heap, thread stack, malloc arena, ...)
//! and, for regions of ELF objects, which sections they hold. A pure function of the smaps
//! regions, the threads' stack pointers and the objects' layouts, so it is tested on fixtures.
//! Invariant: one [`Region`] per input mapping, in the same order; heuristics (thread stacks,
//! arenas, bss tails) only ever refine `anon` regions and never override a kernel-given name.
pub mod elf;

use crate::proc::smaps::{MapName, Mapping};
use crate::proc::tasks::Thread;
use std::collections::HashMap;
use std::rc::Rc;

/// The kind of a region. Its command-line names and help (`--kind`) are given in `cli.rs` from
/// [`Kind::ALL`], [`Kind::as_str`] and [`Kind::about`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Text,
    Rodata,
    Data,
    Bss,
    Heap,
    Stack,
    ThreadStack,
    MallocArena,
    Anon,
    File,
    Shm,
    Vdso,
    Vvar,
    Vsyscall,
    Guard,
    Memcheck,
}

impl Kind {
    /// Every kind, in the order of `--sort kind`.
    pub const ALL: [Kind; 16] = [
        Kind::Text,
        Kind::Rodata,
        Kind::Data,
        Kind::Bss,
        Kind::Heap,
        Kind::Stack,
        Kind::ThreadStack,
        Kind::MallocArena,
        Kind::Anon,
        Kind::File,
        Kind::Shm,
        Kind::Vdso,
        Kind::Vvar,
        Kind::Vsyscall,
        Kind::Guard,
        Kind::Memcheck,
    ];

    /// What the kind means, one line.
    pub fn about(self) -> &'static str {
        match self {
            Kind::Text => "Executable code of an ELF object (`r-x`)",
            Kind::Rodata => "Read-only data of an ELF object: headers, .rodata, .eh_frame, and RELRO after relocation",
            Kind::Data => "Writable data of an ELF object (.data, .got.plt, the start of .bss)",
            Kind::Bss => "The anonymous tail of an object's writable segment: the rest of its .bss",
            Kind::Heap => "The brk area (`[heap]`), where glibc's main arena lives",
            Kind::Stack => "The main thread's stack (`[stack]`)",
            Kind::ThreadStack => "Another thread's stack, found through its stack pointer",
            Kind::MallocArena => "A glibc malloc arena of a non-main thread (64 MiB aligned, PROT_NONE tail)",
            Kind::Anon => "Other anonymous memory (mmap'd blocks, JIT areas, ...)",
            Kind::File => "A mapped file that is not an ELF object, or that could not be read",
            Kind::Shm => "Shared memory: SysV segments, /dev/shm, memfd and shared anonymous mappings",
            Kind::Vdso => "The vDSO, code the kernel maps into every process",
            Kind::Vvar => "The vDSO's data pages",
            Kind::Vsyscall => "The legacy fixed-address system-call page",
            Kind::Guard => "An inaccessible (PROT_NONE) region: a guard page or a gap between segments",
            Kind::Memcheck => "memcheck's own memory inside a checked program (`[anon:memcheck]`)",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Rodata => "rodata",
            Kind::Data => "data",
            Kind::Bss => "bss",
            Kind::Heap => "heap",
            Kind::Stack => "stack",
            Kind::ThreadStack => "thread-stack",
            Kind::MallocArena => "malloc-arena",
            Kind::Anon => "anon",
            Kind::File => "file",
            Kind::Shm => "shm",
            Kind::Vdso => "vdso",
            Kind::Vvar => "vvar",
            Kind::Vsyscall => "vsyscall",
            Kind::Guard => "guard",
            Kind::Memcheck => "memcheck",
        }
    }
}

/// glibc's HEAP_MAX_SIZE on 64-bit (2 * DEFAULT_MMAP_THRESHOLD_MAX): each non-main arena heap is
/// a reservation of this size, aligned to it.
pub const ARENA_HEAP_SIZE: u64 = 64 << 20;

/// A region with what it is.
#[derive(Debug, Clone)]
pub struct Region {
    pub mapping: Mapping,
    pub kind: Kind,
    /// The file mapped, or for a bss tail the object it belongs to.
    pub path: Option<String>,
    /// ELF sections in this region, in address order.
    pub sections: Vec<String>,
    /// The thread whose stack this is.
    pub tid: Option<i32>,
}

/// Looks up the ELF layout of the object a file-backed mapping maps (`None`: not ELF, or
/// unreadable). Called once per mapping; callers cache.
pub trait Objects {
    fn layout(&mut self, m: &Mapping) -> Option<Rc<elf::Layout>>;
}

/// Finds the objects a live process maps: first through `/proc/PID/map_files/START-END` (the very
/// file mapped, even if deleted or replaced since; needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE),
/// then by path inside the process's root (`/proc/PID/root`), then by path. A file found by path
/// is used only if its inode is the one mapped, so a replaced library is never misread.
pub struct ProcObjects {
    pid: i32,
    cache: HashMap<(u32, u32, u64), Option<Rc<elf::Layout>>>,
}

impl ProcObjects {
    pub fn new(pid: i32) -> ProcObjects {
        ProcObjects {
            pid,
            cache: HashMap::new(),
        }
    }

    fn load(&self, m: &Mapping) -> Option<elf::Layout> {
        use std::os::unix::fs::MetadataExt;
        let exact = format!("/proc/{}/map_files/{:x}-{:x}", self.pid, m.start, m.end);
        if let Ok(l) = elf::read(std::path::Path::new(&exact)) {
            return Some(l);
        }
        let path = m.file()?;
        if path.ends_with(" (deleted)") {
            return None;
        }
        let rooted = format!("/proc/{}/root{}", self.pid, path);
        let found = [rooted.as_str(), path].into_iter().find_map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            (meta.ino() == m.inode && meta.is_file()).then_some(())?;
            elf::read(std::path::Path::new(p)).ok()
        });
        found
    }
}

impl Objects for ProcObjects {
    fn layout(&mut self, m: &Mapping) -> Option<Rc<elf::Layout>> {
        let key = (m.dev.0, m.dev.1, m.inode);
        if let Some(l) = self.cache.get(&key) {
            return l.clone();
        }
        let l = self.load(m).map(Rc::new);
        self.cache.insert(key, l.clone());
        l
    }
}

fn shm_path(p: &str) -> bool {
    p.starts_with("/dev/shm/")
        || p.starts_with("/SYSV")
        || p.starts_with("/memfd:")
        || p.starts_with("/dev/zero")
}

/// The kind a mapping has from its name and permissions alone.
fn base_kind(m: &Mapping) -> Kind {
    match &m.name {
        MapName::Heap => Kind::Heap,
        MapName::Stack => Kind::Stack,
        MapName::ThreadStack(_) => Kind::ThreadStack,
        MapName::Vdso => Kind::Vdso,
        MapName::Vvar => Kind::Vvar,
        // Kernels from 6.13 on split the vvar area and name its parts [vvar_vclock] etc.
        MapName::Other(o) if o.starts_with("vvar") => Kind::Vvar,
        MapName::Vsyscall => Kind::Vsyscall,
        MapName::SysV(_) => Kind::Shm,
        MapName::AnonNamed(n) if n == memcheck_wire::MAPPING_NAME => Kind::Memcheck,
        MapName::Other(o) if o.starts_with("anon_shmem") => Kind::Shm,
        _ if m.inaccessible() => Kind::Guard,
        MapName::Path(p) if m.shared() && shm_path(p) => Kind::Shm,
        MapName::Path(_) if m.inode != 0 => Kind::File,
        MapName::Path(p) if m.shared() || shm_path(p) => Kind::Shm,
        _ => Kind::Anon,
    }
}

/// One load of an object: where its first mapping put it and which mappings it spans.
struct Instance {
    layout: Rc<elf::Layout>,
    bias: Option<u64>,
    path: String,
    last: usize,
}

/// Classifies every mapping of a process.
pub fn classify(
    maps: Vec<Mapping>,
    threads: &[Thread],
    objects: &mut dyn Objects,
    page: u64,
) -> Vec<Region> {
    let mut regions: Vec<Region> = maps
        .into_iter()
        .map(|m| Region {
            kind: base_kind(&m),
            path: m.file().map(str::to_string),
            sections: Vec::new(),
            tid: match m.name {
                MapName::ThreadStack(t) => Some(t as i32),
                _ => None,
            },
            mapping: m,
        })
        .collect();

    // ELF objects: the bias comes from an object's first mapping (offset 0, or the first seen);
    // later mappings of the same file reuse it, since segments may share file pages.
    let mut instances: Vec<Instance> = Vec::new();
    let mut current: HashMap<(u32, u32, u64), usize> = HashMap::new();
    for (i, r) in regions.iter_mut().enumerate() {
        let m = &r.mapping;
        if m.file().is_none() || r.kind == Kind::Shm {
            continue;
        }
        let key = (m.dev.0, m.dev.1, m.inode);
        let inst = match current.get(&key) {
            Some(&k) if m.offset != 0 => k,
            _ => {
                let Some(layout) = objects.layout(m) else {
                    continue;
                };
                let bias = layout.bias_for(m.start, m.offset, page);
                instances.push(Instance {
                    layout,
                    bias,
                    path: m.file().unwrap_or_default().to_string(),
                    last: i,
                });
                current.insert(key, instances.len() - 1);
                instances.len() - 1
            }
        };
        let inst = &mut instances[inst];
        inst.last = i;
        if let Some(bias) = inst.bias {
            r.sections = inst
                .layout
                .sections_in(bias, r.mapping.start, r.mapping.end);
        }
        if r.kind == Kind::File {
            r.kind = if r.mapping.executable() {
                Kind::Text
            } else if r.mapping.writable() {
                Kind::Data
            } else {
                Kind::Rodata
            };
        }
    }
    // The anonymous region right after an object's last file mapping that covers its bss.
    for inst in &instances {
        let (Some(bias), Some(next)) = (inst.bias, regions.get(inst.last + 1)) else {
            continue;
        };
        let Some((bss_start, bss_end)) = inst.layout.bss_range(bias) else {
            continue;
        };
        let m = &next.mapping;
        if next.kind == Kind::Anon
            && m.name == MapName::Anon
            && m.start < bss_end
            && m.end > bss_start
        {
            let sections = inst.layout.sections_in(bias, m.start, m.end);
            let r = &mut regions[inst.last + 1];
            r.kind = Kind::Bss;
            r.path = Some(inst.path.clone());
            r.sections = sections;
        }
    }

    // Thread stacks: the anonymous region a thread's stack pointer is in.
    for t in threads {
        let Some(sp) = t.stack_pointer else { continue };
        if let Some(r) = regions.iter_mut().find(|r| r.mapping.contains(sp)) {
            if r.kind == Kind::Anon {
                r.kind = Kind::ThreadStack;
                r.tid = Some(t.tid);
            }
        }
    }

    // glibc arenas: a read-write anonymous region starting on a 64 MiB boundary that, with the
    // PROT_NONE region right after it, spans exactly 64 MiB (or is 64 MiB by itself).
    for i in 0..regions.len() {
        let m = &regions[i].mapping;
        if regions[i].kind != Kind::Anon
            || !m.start.is_multiple_of(ARENA_HEAP_SIZE)
            || !m.writable()
            || m.shared()
        {
            continue;
        }
        let tail = regions.get(i + 1).filter(|n| {
            n.kind == Kind::Guard && n.mapping.name == MapName::Anon && n.mapping.start == m.end
        });
        match tail {
            Some(t) if t.mapping.end - m.start == ARENA_HEAP_SIZE => {
                regions[i].kind = Kind::MallocArena;
                regions[i + 1].kind = Kind::MallocArena;
            }
            _ if m.size() == ARENA_HEAP_SIZE => regions[i].kind = Kind::MallocArena,
            _ => {}
        }
    }
    regions
}

/// Reads and classifies every region of `pid`.
pub fn regions(pid: i32) -> Result<Vec<Region>, crate::proc::ProcError> {
    let maps = crate::proc::smaps::read(pid)?;
    let threads = crate::proc::tasks::threads(pid);
    let mut objects = ProcObjects::new(pid);
    Ok(classify(
        maps,
        &threads,
        &mut objects,
        crate::proc::page_size(),
    ))
}

#[cfg(test)]
mod tests {
    use super::elf::{Layout, Section, Segment};
    use super::*;
    use crate::proc::smaps::Counters;

    fn map(start: u64, end: u64, perms: &str, offset: u64, inode: u64, name: MapName) -> Mapping {
        Mapping {
            start,
            end,
            perms: perms.into(),
            offset,
            dev: if inode != 0 { (254, 0) } else { (0, 0) },
            inode,
            name,
            counters: Counters::default(),
            accountable: false,
        }
    }

    struct Fixture(Rc<Layout>);
    impl Objects for Fixture {
        fn layout(&mut self, m: &Mapping) -> Option<Rc<Layout>> {
            (m.file() == Some("/bin/prog")).then(|| self.0.clone())
        }
    }

    fn prog() -> Layout {
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
    fn a_programs_regions_get_their_kinds_and_sections() {
        let b = 0x5555_5555_4000u64;
        let p = || MapName::Path("/bin/prog".into());
        let arena = 0x7f00_0000_0000u64;
        let tstack = 0x7f10_0000_0000u64;
        let maps = vec![
            map(b, b + 0x1000, "r--p", 0, 7, p()),
            map(b + 0x1000, b + 0x2000, "r-xp", 0x1000, 7, p()),
            map(b + 0x2000, b + 0x3000, "r--p", 0x2000, 7, p()),
            map(b + 0x3000, b + 0x4000, "r--p", 0x2000, 7, p()),
            map(b + 0x4000, b + 0x5000, "rw-p", 0x3000, 7, p()),
            map(b + 0x5000, b + 0x405000, "rw-p", 0, 0, MapName::Anon),
            map(b + 0x500000, b + 0x521000, "rw-p", 0, 0, MapName::Heap),
            map(arena, arena + 0x21000, "rw-p", 0, 0, MapName::Anon),
            map(
                arena + 0x21000,
                arena + ARENA_HEAP_SIZE,
                "---p",
                0,
                0,
                MapName::Anon,
            ),
            map(tstack, tstack + 0x1000, "---p", 0, 0, MapName::Anon),
            map(
                tstack + 0x1000,
                tstack + 0x801000,
                "rw-p",
                0,
                0,
                MapName::Anon,
            ),
            map(
                tstack + 0x900000,
                tstack + 0x910000,
                "rw-p",
                0,
                0,
                MapName::AnonNamed("memcheck".into()),
            ),
            map(
                tstack + 0xa00000,
                tstack + 0xa10000,
                "rw-s",
                0,
                9,
                MapName::Path("/dev/zero (deleted)".into()),
            ),
            map(
                tstack + 0xb00000,
                tstack + 0xb10000,
                "r--p",
                0,
                12,
                MapName::Path("/etc/locale".into()),
            ),
            map(
                0x7ffd_0000_0000,
                0x7ffd_0002_1000,
                "rw-p",
                0,
                0,
                MapName::Stack,
            ),
            map(
                0x7ffd_0003_0000,
                0x7ffd_0003_2000,
                "r-xp",
                0,
                0,
                MapName::Vdso,
            ),
        ];
        let threads = [
            Thread {
                tid: 100,
                stack_pointer: Some(0x7ffd_0002_0000),
            },
            Thread {
                tid: 101,
                stack_pointer: Some(tstack + 0x800000),
            },
            Thread {
                tid: 102,
                stack_pointer: None,
            },
        ];
        let rs = classify(maps, &threads, &mut Fixture(Rc::new(prog())), 0x1000);
        let kinds: Vec<_> = rs.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "rodata",
                "text",
                "rodata",
                "rodata",
                "data",
                "bss",
                "heap",
                "malloc-arena",
                "malloc-arena",
                "guard",
                "thread-stack",
                "memcheck",
                "shm",
                "file",
                "stack",
                "vdso"
            ]
        );
        assert_eq!(rs[1].sections, [".text"]);
        assert_eq!(rs[2].sections, [".rodata"]);
        // The RELRO page: read-only now, but .got by its sections.
        assert_eq!(rs[3].sections, [".got"]);
        assert_eq!(rs[4].sections, [".data", ".bss"]);
        assert_eq!(rs[5].sections, [".bss"]);
        assert_eq!(rs[5].path.as_deref(), Some("/bin/prog"));
        assert_eq!(rs[10].tid, Some(101));
        assert_eq!(
            rs[14].tid, None,
            "the main thread's stack keeps its kernel name"
        );
    }

    #[test]
    fn arena_lookalikes_stay_anonymous() {
        let a = 0x7f00_0000_0000u64;
        let maps = vec![
            // Aligned but the tail does not complete 64 MiB.
            map(a, a + 0x21000, "rw-p", 0, 0, MapName::Anon),
            map(a + 0x21000, a + 0x100000, "---p", 0, 0, MapName::Anon),
            // 64 MiB but not aligned.
            map(
                a + 0x1000_0000 + 0x1000,
                a + 0x1000_0000 + 0x1000 + ARENA_HEAP_SIZE,
                "rw-p",
                0,
                0,
                MapName::Anon,
            ),
            // A full-size arena without a tail.
            map(
                a + 0x2000_0000,
                a + 0x2000_0000 + ARENA_HEAP_SIZE,
                "rw-p",
                0,
                0,
                MapName::Anon,
            ),
        ];
        let rs = classify(maps, &[], &mut Fixture(Rc::new(prog())), 0x1000);
        let kinds: Vec<_> = rs.iter().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Anon, Kind::Guard, Kind::Anon, Kind::MallocArena]
        );
    }
}
