//! The regions of a process as `/proc/PID/smaps` lists them, in address order, with sizes in KiB.
//! Invariant: one [`Mapping`] per smaps entry, nothing merged or dropped, values as the kernel
//! reported them (only converted from bytes back to KiB).
use super::{convert, ProcError};
use procfs::process::{MMapPath, VmFlags};

/// What the last column of a maps line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapName {
    /// A file (possibly with the kernel's ` (deleted)` suffix).
    Path(String),
    Heap,
    Stack,
    /// `[stack:TID]`, shown by kernels before 4.5.
    ThreadStack(u32),
    Vdso,
    Vvar,
    Vsyscall,
    /// No name: anonymous memory.
    Anon,
    /// `[anon:NAME]`, set with `prctl(PR_SET_VMA_ANON_NAME)`.
    AnonNamed(String),
    /// A System V shared memory segment (`/SYSV<key>`).
    SysV(i32),
    /// Any other bracketed pseudo-name, without the brackets.
    Other(String),
}

impl MapName {
    /// The name as the kernel prints it in `/proc/PID/maps`, or `None` for anonymous memory.
    pub fn shown(&self) -> Option<String> {
        Some(match self {
            MapName::Path(p) => p.clone(),
            MapName::Heap => "[heap]".into(),
            MapName::Stack => "[stack]".into(),
            MapName::ThreadStack(t) => format!("[stack:{t}]"),
            MapName::Vdso => "[vdso]".into(),
            MapName::Vvar => "[vvar]".into(),
            MapName::Vsyscall => "[vsyscall]".into(),
            MapName::Anon => return None,
            MapName::AnonNamed(n) => format!("[anon:{n}]"),
            MapName::SysV(k) => format!("/SYSV{:08x}", *k as u32),
            MapName::Other(o) => format!("[{o}]"),
        })
    }

    fn from_procfs(p: MMapPath) -> MapName {
        match p {
            MMapPath::Path(p) => MapName::Path(p.to_string_lossy().into_owned()),
            MMapPath::Heap => MapName::Heap,
            MMapPath::Stack => MapName::Stack,
            MMapPath::TStack(t) => MapName::ThreadStack(t),
            MMapPath::Vdso => MapName::Vdso,
            MMapPath::Vvar => MapName::Vvar,
            MMapPath::Vsyscall => MapName::Vsyscall,
            MMapPath::Anonymous => MapName::Anon,
            MMapPath::Vsys(k) => MapName::SysV(k),
            MMapPath::Rollup => MapName::Other("rollup".into()),
            MMapPath::Other(o) => match o.strip_prefix("anon:") {
                Some(n) => MapName::AnonNamed(n.to_string()),
                None => MapName::Other(o),
            },
            // MMapPath is non-exhaustive in spirit: keep whatever a newer procfs adds visible.
            #[allow(unreachable_patterns)]
            other => MapName::Other(format!("{other:?}")),
        }
    }
}

/// The memory counters of one region, in KiB, as smaps reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub rss_kb: u64,
    pub pss_kb: u64,
    pub shared_clean_kb: u64,
    pub shared_dirty_kb: u64,
    pub private_clean_kb: u64,
    pub private_dirty_kb: u64,
    pub referenced_kb: u64,
    pub anonymous_kb: u64,
    pub swap_kb: u64,
    pub swap_pss_kb: u64,
    pub locked_kb: u64,
}

impl Counters {
    /// Dirty pages, shared or private.
    pub fn dirty_kb(&self) -> u64 {
        self.shared_dirty_kb + self.private_dirty_kb
    }
}

/// One region of the address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxp` as in maps: read, write, execute, then `s`hared or `p`rivate.
    pub perms: String,
    pub offset: u64,
    pub dev: (u32, u32),
    pub inode: u64,
    pub name: MapName,
    pub counters: Counters,
    /// The region is charged to the commit limit (`ac` in VmFlags).
    pub accountable: bool,
}

impl Mapping {
    pub fn size(&self) -> u64 {
        self.end - self.start
    }
    pub fn size_kb(&self) -> u64 {
        self.size() / 1024
    }
    pub fn readable(&self) -> bool {
        self.perms.as_bytes().first() == Some(&b'r')
    }
    pub fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    pub fn shared(&self) -> bool {
        self.perms.as_bytes().get(3) == Some(&b's')
    }
    /// No access at all (`---p`): a guard gap or a reservation.
    pub fn inaccessible(&self) -> bool {
        self.perms.starts_with("---")
    }
    /// The file this region maps, if it maps one.
    pub fn file(&self) -> Option<&str> {
        match &self.name {
            MapName::Path(p) if self.inode != 0 => Some(p),
            _ => None,
        }
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// Reads `/proc/PID/smaps`.
pub fn read(pid: i32) -> Result<Vec<Mapping>, ProcError> {
    let proc = super::process(pid)?;
    let what = format!("/proc/{pid}/smaps");
    let maps = proc.smaps().map_err(|e| convert(e, pid, &what))?;
    Ok(maps.into_iter().map(from_procfs).collect())
}

fn from_procfs(m: procfs::process::MemoryMap) -> Mapping {
    let kb = |k: &str| m.extension.map.get(k).copied().unwrap_or(0) / 1024;
    let counters = Counters {
        rss_kb: kb("Rss"),
        pss_kb: kb("Pss"),
        shared_clean_kb: kb("Shared_Clean"),
        shared_dirty_kb: kb("Shared_Dirty"),
        private_clean_kb: kb("Private_Clean"),
        private_dirty_kb: kb("Private_Dirty"),
        referenced_kb: kb("Referenced"),
        anonymous_kb: kb("Anonymous"),
        swap_kb: kb("Swap"),
        swap_pss_kb: kb("SwapPss"),
        locked_kb: kb("Locked"),
    };
    Mapping {
        start: m.address.0,
        end: m.address.1,
        perms: m.perms.as_str(),
        offset: m.offset,
        dev: (m.dev.0 as u32, m.dev.1 as u32),
        inode: m.inode,
        accountable: m.extension.vm_flags.contains(VmFlags::AC),
        counters,
        name: MapName::from_procfs(m.pathname),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_regions_as_the_kernel_lists_them() {
        let maps = read(std::process::id() as i32).unwrap();
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        // The two reads happen at different times, but the stack and the vdso do not move.
        assert!(maps
            .iter()
            .any(|m| m.name == MapName::Stack && m.writable()));
        assert!(maps
            .iter()
            .any(|m| m.name == MapName::Vdso && m.executable()));
        let stack_line = text.lines().find(|l| l.ends_with("[stack]")).unwrap();
        let range = stack_line.split(' ').next().unwrap();
        let (s, e) = range.split_once('-').unwrap();
        let stack = maps.iter().find(|m| m.name == MapName::Stack).unwrap();
        assert_eq!(stack.start, u64::from_str_radix(s, 16).unwrap());
        assert_eq!(stack.end, u64::from_str_radix(e, 16).unwrap());
        assert!(stack.counters.rss_kb > 0 && stack.accountable);
        assert!(maps.windows(2).all(|w| w[0].end <= w[1].start));
    }

    #[test]
    fn pseudo_names_round_trip() {
        for (raw, name) in [
            ("[heap]", MapName::Heap),
            ("[anon:memcheck]", MapName::AnonNamed("memcheck".into())),
            ("[vvar_vclock]", MapName::Other("vvar_vclock".into())),
            ("", MapName::Anon),
            (
                "/usr/lib/libc.so.6",
                MapName::Path("/usr/lib/libc.so.6".into()),
            ),
        ] {
            let got = MapName::from_procfs(MMapPath::from(raw).unwrap());
            assert_eq!(got, name, "{raw}");
        }
        assert_eq!(
            MapName::AnonNamed("memcheck".into()).shown().as_deref(),
            Some("[anon:memcheck]")
        );
        assert_eq!(MapName::Anon.shown(), None);
    }
}
