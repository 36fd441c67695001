//! Turning return addresses into function, file and line, with goblin (to find the debug file:
//! the object itself, `/usr/lib/debug/.build-id/xx/yyyy.debug`, or `.gnu_debuglink` candidates,
//! with a `.gnu_debugaltlink` supplement) and addr2line (DWARF lines, inlined frames, demangled
//! C++ and Rust names), falling back to the symbol table. Objects and addresses are cached, so each
//! distinct PC is resolved once however many stacks hold it.
use goblin::elf::Elf;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One source-level frame. An inlined call expands into several frames with the same address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Frame {
    /// The return address (or faulting PC), as hex.
    #[serde(serialize_with = "hex", deserialize_with = "unhex")]
    pub address: u64,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub object: Option<String>,
    /// True for a frame inlined into the next one.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub inlined: bool,
}

fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

/// Reads what [`hex`] wrote (`memcheck report` loads saved reports).
pub fn unhex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    s.strip_prefix("0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a hex address (0x...)")))
}

struct Object {
    path: PathBuf,
    /// The separate debug file's DWARF, loaded on first need (`None` until then).
    dwarf: Option<Option<addr2line::Loader>>,
    /// The object itself: its symbol table, and its DWARF when it was not stripped.
    symbols: Option<addr2line::Loader>,
    /// The separate debug file's symbol table alone (functions by address), loaded on first need:
    /// local symbols such as libc's `start_thread` and `clone3` are only there.
    debug_symbols: Option<Vec<DebugSym>>,
}

struct DebugSym {
    addr: u64,
    size: u64,
    name: String,
}

/// The function symbols of an ELF file's `.symtab`, sorted by address; of several at one address
/// the plainest name first (`clone` before `__clone`), as Valgrind prefers.
fn function_symbols(data: &[u8]) -> Vec<DebugSym> {
    let Ok(elf) = Elf::parse(data) else {
        return Vec::new();
    };
    let mut out: Vec<DebugSym> = elf
        .syms
        .iter()
        .filter(|s| s.st_type() == goblin::elf::sym::STT_FUNC && s.st_value != 0)
        .filter_map(|s| {
            let name = elf.strtab.get_at(s.st_name)?;
            (!name.is_empty()).then(|| DebugSym {
                addr: s.st_value,
                size: s.st_size,
                name: name.to_string(),
            })
        })
        .collect();
    let underscores = |n: &str| n.bytes().take_while(|&b| b == b'_').count();
    out.sort_by(|a, b| {
        a.addr
            .cmp(&b.addr)
            .then(underscores(&a.name).cmp(&underscores(&b.name)))
            .then(a.name.len().cmp(&b.name.len()))
    });
    out.dedup_by_key(|s| s.addr);
    out
}

/// The function of `syms` containing `addr`.
fn symbol_at(syms: &[DebugSym], addr: u64) -> Option<&str> {
    let i = syms.partition_point(|s| s.addr <= addr).checked_sub(1)?;
    let s = &syms[i];
    (addr < s.addr + s.size.max(1)).then_some(s.name.as_str())
}

#[derive(Default)]
pub struct Symbolizer {
    objects: HashMap<PathBuf, Object>,
    cache: HashMap<(PathBuf, u64, bool), Vec<Frame>>,
    /// Root for debug files; `/usr/lib/debug` unless tests change it.
    pub debug_root: Option<PathBuf>,
}

/// Where a stripped object keeps its debug information, per its build-id and debuglink.
pub fn debug_file_for(path: &Path, data: &[u8], debug_root: &Path) -> Option<PathBuf> {
    let elf = Elf::parse(data).ok()?;
    if let Some(notes) = elf.iter_note_sections(data, Some(".note.gnu.build-id")) {
        for note in notes.flatten() {
            if note.n_type == goblin::elf::note::NT_GNU_BUILD_ID && note.desc.len() > 1 {
                let hex: String = note.desc.iter().map(|b| format!("{b:02x}")).collect();
                let p = debug_root
                    .join(".build-id")
                    .join(&hex[..2])
                    .join(format!("{}.debug", &hex[2..]));
                if p.is_file() {
                    return Some(p);
                }
            }
        }
    }
    let link = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".gnu_debuglink"))?;
    let raw = data.get(link.sh_offset as usize..(link.sh_offset + link.sh_size) as usize)?;
    let name = raw.split(|&b| b == 0).next()?;
    let name = std::str::from_utf8(name).ok()?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let rel = dir.strip_prefix("/").unwrap_or(dir);
    [
        dir.join(name),
        dir.join(".debug").join(name),
        debug_root.join(rel).join(name),
    ]
    .into_iter()
    .find(|p| p.is_file() && p != path)
}

fn has_dwarf(data: &[u8]) -> bool {
    Elf::parse(data)
        .map(|e| {
            e.section_headers
                .iter()
                .any(|s| e.shdr_strtab.get_at(s.sh_name) == Some(".debug_info") && s.sh_size > 0)
        })
        .unwrap_or(false)
}

/// The `.gnu_debugaltlink` supplementary file of a debug file (dwz), if present.
fn altlink(debug: &Path, data: &[u8]) -> Option<PathBuf> {
    let elf = Elf::parse(data).ok()?;
    let s = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".gnu_debugaltlink"))?;
    let raw = data.get(s.sh_offset as usize..(s.sh_offset + s.sh_size) as usize)?;
    let name = std::str::from_utf8(raw.split(|&b| b == 0).next()?).ok()?;
    let p = Path::new(name);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        debug.parent()?.join(p)
    };
    p.is_file().then_some(p)
}

impl Object {
    fn open(path: &Path) -> Object {
        Object {
            path: path.to_path_buf(),
            dwarf: None,
            symbols: addr2line::Loader::new(path).ok(),
            debug_symbols: None,
        }
    }

    /// The name of the function at `probe` from the separate debug file's symbol table, read
    /// without its DWARF.
    fn debug_symbol(&mut self, probe: u64, debug_root: &Path) -> Option<String> {
        if self.debug_symbols.is_none() {
            let syms = std::fs::read(&self.path)
                .ok()
                .and_then(|data| debug_file_for(&self.path, &data, debug_root))
                .and_then(|dbg| std::fs::read(dbg).ok())
                .map(|d| function_symbols(&d))
                .unwrap_or_default();
            self.debug_symbols = Some(syms);
        }
        let name = symbol_at(self.debug_symbols.as_deref()?, probe)?;
        Some(addr2line::demangle_auto(name.into(), None).into_owned())
    }

    /// The separate debug file, found and loaded the first time a frame asks for lines.
    fn dwarf(&mut self, debug_root: &Path) -> Option<&addr2line::Loader> {
        if self.dwarf.is_none() {
            let loaded = std::fs::read(&self.path).ok().and_then(|data| {
                if has_dwarf(&data) {
                    return None; // the object's own loader has it
                }
                let dbg = debug_file_for(&self.path, &data, debug_root)?;
                let ddata = std::fs::read(&dbg).ok()?;
                let sup = altlink(&dbg, &ddata);
                addr2line::Loader::new_with_sup(&dbg, sup.as_deref()).ok()
            });
            self.dwarf = Some(loaded);
        }
        self.dwarf.as_ref().and_then(Option::as_ref)
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The source frames of `pc` inside the object at `path` loaded with `bias`. Return addresses
    /// are looked up one byte earlier, inside the call instruction.
    pub fn frames(&mut self, pc: u64, module: Option<(&Path, u64)>, is_return: bool) -> Vec<Frame> {
        self.frames_with(pc, module, is_return, true)
    }

    /// As [`Self::frames`]; without `detail` only what the object itself holds is used (its symbol
    /// table, or its own DWARF), never a separate debug file: for frames nobody reads the lines
    /// of, such as libc's start-up below `main`, whose debug file costs tens of megabytes.
    pub fn frames_with(
        &mut self,
        pc: u64,
        module: Option<(&Path, u64)>,
        is_return: bool,
        detail: bool,
    ) -> Vec<Frame> {
        let Some((path, bias)) = module else {
            return vec![Frame {
                address: pc,
                function: None,
                file: None,
                line: None,
                object: None,
                inlined: false,
            }];
        };
        let probe = pc.wrapping_sub(bias).wrapping_sub(is_return as u64);
        let key = (path.to_path_buf(), probe, detail);
        if let Some(f) = self.cache.get(&key) {
            return f
                .iter()
                .map(|fr| Frame {
                    address: pc,
                    ..fr.clone()
                })
                .collect();
        }
        let root = self
            .debug_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/usr/lib/debug"));
        let obj = self
            .objects
            .entry(path.to_path_buf())
            .or_insert_with(|| Object::open(path));
        if detail {
            obj.dwarf(&root);
        }
        let obj = &*obj;
        let dwarf = obj.dwarf.as_ref().and_then(Option::as_ref);
        let object = Some(path.display().to_string());
        let mut out = Vec::new();
        for loader in [dwarf, obj.symbols.as_ref()].into_iter().flatten() {
            if let Ok(mut it) = loader.find_frames(probe) {
                while let Ok(Some(f)) = it.next() {
                    let function = f
                        .function
                        .as_ref()
                        .and_then(|n| n.demangle().ok().map(|c| c.into_owned()));
                    let (file, line) = f
                        .location
                        .map(|l| (l.file.map(str::to_string), l.line))
                        .unwrap_or((None, None));
                    if function.is_none() && file.is_none() {
                        continue;
                    }
                    out.push(Frame {
                        address: pc,
                        function,
                        file,
                        line,
                        object: object.clone(),
                        inlined: true,
                    });
                }
            }
            if !out.is_empty() {
                break;
            }
        }
        // The outermost source frame is the real one; those before it were inlined into it.
        if let Some(last) = out.last_mut() {
            last.inlined = false;
        }
        let mut sym = obj
            .symbols
            .as_ref()
            .or(dwarf)
            .and_then(|l| l.find_symbol(probe))
            .map(|s| addr2line::demangle_auto(s.into(), None).into_owned());
        let unnamed = out.is_empty() || out.iter().all(|f| f.function.is_none());
        if sym.is_none() && unnamed {
            if let Some(obj) = self.objects.get_mut(path) {
                sym = obj.debug_symbol(probe, &root);
            }
        }
        if out.is_empty() {
            out.push(Frame {
                address: pc,
                function: sym,
                file: None,
                line: None,
                object,
                inlined: false,
            });
        } else if out.iter().all(|f| f.function.is_none()) {
            out.last_mut().unwrap().function = sym;
        }
        self.cache.insert(key, out.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libc_addresses_resolve_to_symbols() {
        // malloc's own address inside libc resolves to a symbol named malloc-something.
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc_line = maps
            .lines()
            .find(|l| l.contains("libc.so.6") && l.contains(" r-xp "))
            .or_else(|| maps.lines().find(|l| l.contains("libc.so.6")))
            .expect("libc mapped");
        let path = libc_line.split_whitespace().last().unwrap();
        let first = maps.lines().find(|l| l.ends_with(path)).unwrap();
        let base = u64::from_str_radix(first.split('-').next().unwrap(), 16).unwrap();
        let addr = libc::malloc as *const () as u64;
        let mut s = Symbolizer::new();
        let f = s.frames(addr, Some((Path::new(path), base)), false);
        let name = f.last().unwrap().function.clone().unwrap_or_default();
        assert!(name.contains("malloc"), "{f:?}");
    }

    #[test]
    fn debug_symbols_pick_the_containing_function_and_the_plainest_alias() {
        let syms = vec![
            DebugSym {
                addr: 0x100,
                size: 0x10,
                name: "clone".into(),
            },
            DebugSym {
                addr: 0x200,
                size: 0,
                name: "tail".into(),
            },
        ];
        assert_eq!(symbol_at(&syms, 0x10f), Some("clone"));
        assert_eq!(symbol_at(&syms, 0x110), None);
        assert_eq!(symbol_at(&syms, 0x200), Some("tail"));
        assert_eq!(symbol_at(&syms, 0x50), None);
    }

    #[test]
    fn unknown_module_keeps_the_address() {
        let mut s = Symbolizer::new();
        let f = s.frames(0x1234, None, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].address, 0x1234);
        assert!(f[0].function.is_none());
    }
}
