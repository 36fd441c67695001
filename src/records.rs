//! Reading the record files the shim wrote into the run directory: one file per process image,
//! decoded into owned data. A file cut short (a process killed while writing) keeps what was
//! complete and says so; a file of another format version is refused with a clear message.
use anyhow::{bail, Context, Result};
use memcheck_wire::{DecodeError, ErrorRec, LeakKind, LeakSummary, Record, Records};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ModuleInfo {
    pub start: u64,
    pub end: u64,
    pub bias: u64,
    pub path: PathBuf,
    /// Position of the record in the file (records are numbered in order).
    pub seq: usize,
}

#[derive(Debug, Clone)]
pub struct LeakRec {
    pub kind: LeakKind,
    pub bytes: u64,
    pub blocks: u64,
    pub stack: u32,
}

/// Everything one process image recorded.
#[derive(Debug, Clone, Default)]
pub struct ProcessRecords {
    pub pid: u32,
    pub ppid: u32,
    pub start_ns: u64,
    pub exe: String,
    pub argv: Vec<String>,
    pub modules: Vec<ModuleInfo>,
    pub stacks: HashMap<u32, Vec<u64>>,
    /// Position in the file of each stack's record.
    pub stack_seq: HashMap<u32, usize>,
    pub errors: Vec<ErrorRec>,
    pub leaks: Vec<LeakRec>,
    pub leak_summary: Option<LeakSummary>,
    /// Allocation calls per stack id (only in a live sites answer).
    pub allocs: HashMap<u32, u64>,
    pub exit_code: Option<i32>,
    /// The process died by this signal's default action after the shim ran its exit checks.
    pub exit_signal: Option<i32>,
    pub notes: Vec<String>,
    /// The file ended inside a record.
    pub truncated: bool,
}

impl ProcessRecords {
    /// The module containing `pc`, as known at the end of the file.
    pub fn module_of(&self, pc: u64) -> Option<&ModuleInfo> {
        self.modules
            .iter()
            .rev()
            .find(|m| pc >= m.start && pc < m.end)
    }

    /// The module that held `pc` when stack `stack` was written. Objects come and go (`dlopen`,
    /// `dlclose`) and a later one may take an unloaded one's addresses; the shim writes a module's
    /// record before any stack that names it and, when an object is unloaded, the stacks that name
    /// it right then. So a stack's module is the last record before the stack's own that contains
    /// the address (the first after it, if none precedes it).
    pub fn module_at(&self, stack: u32, pc: u64) -> Option<&ModuleInfo> {
        let Some(&at) = self.stack_seq.get(&stack) else {
            return self.module_of(pc);
        };
        let mut hits = self.modules.iter().filter(|m| pc >= m.start && pc < m.end);
        let mut before = None;
        for m in hits.by_ref() {
            if m.seq > at {
                return before.or(Some(m));
            }
            before = Some(m);
        }
        before
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes one record file.
pub fn parse(data: &[u8], name: &Path) -> Result<ProcessRecords> {
    let body = match memcheck_wire::check_header(data) {
        Ok(b) => b,
        Err(DecodeError::Version(v)) => bail!(
            "{}: written by a memcheck library of record format {v}, but this memcheck reads format {}; the library and the CLI come from different builds (reinstall memcheck, or unset MEMCHECK_SHIM)",
            name.display(),
            memcheck_wire::VERSION
        ),
        Err(_) => bail!("{}: not a memcheck record file", name.display()),
    };
    let mut p = ProcessRecords::default();
    // Programs exec'd without the shim (an exec that failed is taken back).
    let mut unchecked: Vec<String> = Vec::new();
    for (seq, rec) in Records::new(body).enumerate() {
        let rec = match rec {
            Ok(r) => r,
            Err(_) => {
                p.truncated = true;
                break;
            }
        };
        match rec {
            Record::Process(x) => {
                p.pid = x.pid;
                p.ppid = x.ppid;
                p.start_ns = x.start_ns;
                p.exe = lossy(x.exe);
                p.argv = x
                    .cmdline
                    .split(|&b| b == 0)
                    .filter(|a| !a.is_empty())
                    .map(lossy)
                    .collect();
            }
            Record::Module(m) => p.modules.push(ModuleInfo {
                start: m.start,
                end: m.end,
                bias: m.bias,
                path: PathBuf::from(std::ffi::OsStr::from_bytes(m.path)),
                seq,
            }),
            Record::Stack(s) => {
                p.stacks.insert(s.id, s.frames().collect());
                p.stack_seq.entry(s.id).or_insert(seq);
            }
            Record::Leak(l) => p.leaks.push(LeakRec {
                kind: l.kind,
                bytes: l.bytes,
                blocks: l.blocks,
                stack: l.stack,
            }),
            Record::LeakSummary(s) => p.leak_summary = Some(s),
            Record::Allocs(a) => *p.allocs.entry(a.stack).or_default() += a.calls,
            Record::Error(e) => p.errors.push(e),
            Record::Exit(x) => p.exit_code = Some(x.code),
            Record::Note(n) => {
                let text = lossy(n.text);
                if let Some(sig) = text.strip_prefix(memcheck_wire::NOTE_SIGNAL) {
                    p.exit_signal = sig.parse().ok();
                } else if let Some(prog) = text.strip_prefix(memcheck_wire::NOTE_EXEC_UNCHECKED) {
                    unchecked.push(prog.to_string());
                } else if let Some(prog) = text.strip_prefix(memcheck_wire::NOTE_EXEC_FAILED) {
                    if let Some(i) = unchecked.iter().rposition(|u| u == prog) {
                        unchecked.remove(i);
                    }
                } else {
                    p.notes.push(text);
                }
            }
        }
    }
    if !unchecked.is_empty() {
        let who = p.argv.first().map_or("the program", |a| a.as_str());
        p.notes.push(unchecked_note(who, &unchecked));
    }
    Ok(p)
}

/// `env exec'd ./leaky, which was not checked: add --trace-children`; past three programs, the
/// rest are counted.
fn unchecked_note(who: &str, progs: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut names: Vec<&str> = progs.iter().take(SHOWN).map(|s| s.as_str()).collect();
    let more = progs.len().saturating_sub(SHOWN);
    let rest = format!("{more} more");
    if more > 0 {
        names.push(&rest);
    }
    let list = match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, init)) => format!("{} and {last}", init.join(", ")),
        None => String::new(),
    };
    let which = if progs.len() == 1 {
        "which was"
    } else {
        "which were"
    };
    format!("{who} exec'd {list}, {which} not checked: add --trace-children")
}

/// Reads every record file of a run directory, ordered by start time.
pub fn read_dir(dir: &Path) -> Result<Vec<ProcessRecords>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(memcheck_wire::RECORD_SUFFIX) {
            continue;
        }
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        out.push(parse(&data, &path)?);
    }
    out.sort_by_key(|p| (p.start_ns, p.pid));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use memcheck_wire::{Exit, Process};

    fn file(records: &[Record]) -> Vec<u8> {
        let mut out = vec![0u8; memcheck_wire::HEADER_LEN];
        memcheck_wire::encode_header(&mut out);
        for r in records {
            let mut buf = vec![0u8; 8192];
            let n = r.encode(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn a_file_decodes_and_a_cut_file_keeps_what_was_whole() {
        let mut data = file(&[
            Record::Process(Process {
                pid: 42,
                ppid: 1,
                start_ns: 5,
                exe: b"/bin/x",
                cmdline: b"x\0-v\0",
            }),
            Record::Exit(Exit { code: 3 }),
        ]);
        let p = parse(&data, Path::new("f")).unwrap();
        assert_eq!((p.pid, p.exit_code, p.truncated), (42, Some(3), false));
        assert_eq!(p.argv, ["x", "-v"]);
        data.truncate(data.len() - 2);
        let p = parse(&data, Path::new("f")).unwrap();
        assert_eq!((p.exit_code, p.truncated), (None, true));
    }

    #[test]
    fn unchecked_execs_are_named_and_a_failed_one_is_taken_back() {
        let note = |prefix: &str, prog: &str| format!("{prefix}{prog}");
        let texts = [
            note(memcheck_wire::NOTE_EXEC_UNCHECKED, "./missing"),
            note(memcheck_wire::NOTE_EXEC_FAILED, "./missing"),
            note(memcheck_wire::NOTE_EXEC_UNCHECKED, "./leaky"),
        ];
        let mut recs = vec![Record::Process(Process {
            pid: 7,
            ppid: 1,
            start_ns: 1,
            exe: b"/usr/bin/env",
            cmdline: b"env\0./leaky\0",
        })];
        recs.extend(
            texts
                .iter()
                .map(|t| Record::Note(memcheck_wire::Note { text: t.as_bytes() })),
        );
        let p = parse(&file(&recs), Path::new("f")).unwrap();
        assert_eq!(
            p.notes,
            ["env exec'd ./leaky, which was not checked: add --trace-children"]
        );
        let many: Vec<String> = (1..=5).map(|i| format!("./t{i}")).collect();
        assert_eq!(
            unchecked_note("make", &many),
            "make exec'd ./t1, ./t2, ./t3 and 2 more, which were not checked: add --trace-children"
        );
        assert_eq!(
            unchecked_note("sh", &many[..2]),
            "sh exec'd ./t1 and ./t2, which were not checked: add --trace-children"
        );
    }

    #[test]
    fn a_stack_takes_the_module_that_held_its_addresses_when_it_was_written() {
        let module = |path: &'static [u8], bias| {
            Record::Module(memcheck_wire::Module {
                start: 0x1000,
                end: 0x2000,
                bias,
                path,
            })
        };
        let stack = |id, raw: &'static [u8]| Record::Stack(memcheck_wire::Stack { id, raw });
        const PC: &[u8] = &0x1800u64.to_le_bytes();
        let data = file(&[
            stack(7, PC), // written before any module record: the first that follows
            module(b"/old.so", 0x1000),
            stack(1, PC),
            module(b"/new.so", 0x1000),
            stack(2, PC),
        ]);
        let p = parse(&data, Path::new("f")).unwrap();
        let path = |id| p.module_at(id, 0x1800).map(|m| m.path.clone());
        assert_eq!(path(7), Some(PathBuf::from("/old.so")));
        assert_eq!(path(1), Some(PathBuf::from("/old.so")));
        assert_eq!(path(2), Some(PathBuf::from("/new.so")));
        assert_eq!(p.module_at(1, 0x3000).map(|m| m.seq), None);
    }

    #[test]
    fn another_version_is_refused_with_the_reason() {
        let mut data = file(&[]);
        data[8] = 77;
        let e = parse(&data, Path::new("f")).unwrap_err().to_string();
        assert!(e.contains("format 77"), "{e}");
    }
}
