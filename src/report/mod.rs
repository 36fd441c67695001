//! The findings model: what a run found, per process, symbolized and grouped. Built once from the
//! records, then rendered by [`text`] (humans, stderr), [`json`] (machines; the contract is in
//! `docs/report-format.md`), [`sarif`] (code scanning), [`junit`] (test dashboards) and
//! [`valgrind_xml`] (Valgrind's XML, one document per process); every
//! format is a function of the [`Report`] alone (and SARIF's source root), so `memcheck report`
//! re-renders a saved JSON report byte for byte.
pub mod baseline;
pub mod fingerprint;
pub mod flamegraph;
pub mod json;
pub mod junit;
pub mod logpath;
pub mod progress;
pub mod sarif;
pub mod sites;
pub mod summary;
pub mod text;
pub mod valgrind_xml;
pub mod xml;

use crate::records::ProcessRecords;
use crate::suppress::{self, Finding, Suppressions};
use crate::symbolize::{Frame, Symbolizer};
use memcheck_wire::{ErrorKind, ErrorRec, FoundAt, LeakKind, MemFn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON report format; bumped on incompatible changes.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub tool: Tool,
    /// The `--leak-check` mode of the run: `no`, `summary` or `full` (leaks are listed one by one
    /// in the text report only after `full`).
    #[serde(deserialize_with = "static_str", default = "full")]
    pub leak_check: &'static str,
    pub processes: Vec<ProcessReport>,
    /// memcheck's messages about the run as a whole (a process whose report is missing, a
    /// program that left no records, the signal that killed the program), as the text report
    /// ends with them.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The suppressions that matched something, with their hits (most first).
    #[serde(default)]
    pub suppressions_used: Vec<suppress::Used>,
    /// With `--list-unused-suppressions`: the user's entries that matched nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressions_unused: Option<Vec<suppress::Used>>,
    /// With `--baseline`: the findings it knew, the new ones, and its entries that no finding
    /// had (see `docs/ci.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<baseline::Use>,
}

/// The names the model holds as `&'static str` (kinds, families, accesses), so a loaded report
/// holds the same ones; another string (a newer memcheck's kind, a tool version) is leaked, once
/// per load: `memcheck report` loads one or two reports and exits.
fn intern(s: String) -> &'static str {
    use memcheck_wire::{ErrorKind, LeakKind};
    let known = ErrorKind::ALL
        .iter()
        .map(|k| k.name())
        .chain(LeakKind::ALL.iter().map(|k| k.name()))
        .chain(MemFn::ALL.iter().map(|f| f.name()))
        .chain([
            "read",
            "write",
            "malloc",
            "operator new",
            "operator new[]",
            "no",
            "summary",
            "full",
            "memcheck",
            env!("CARGO_PKG_VERSION"),
        ])
        .find(|k| *k == s);
    known.unwrap_or_else(|| Box::leak(s.into_boxed_str()))
}

fn static_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    String::deserialize(d).map(intern)
}

fn opt_static_str<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'static str>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(intern))
}

fn one() -> u64 {
    1
}

fn full() -> &'static str {
    "full"
}

/// Reads a saved JSON report (`memcheck run --format json`). A report of another format version
/// is refused; fingerprints missing from an older report are computed.
pub fn load(text: &str) -> Result<Report, String> {
    #[derive(Deserialize)]
    struct Head {
        version: u32,
    }
    let bad = |e: serde_json::Error| format!("not a memcheck JSON report ({e})");
    // Through a Value: the model's names are `&'static str`, which only an owned deserializer
    // can give (see `intern`).
    let value: serde_json::Value = serde_json::from_str(text).map_err(bad)?;
    let head = Head::deserialize(&value).map_err(bad)?;
    if head.version != REPORT_VERSION {
        return Err(format!(
            "a report of format version {}: this memcheck reads version {REPORT_VERSION}",
            head.version
        ));
    }
    // A report older than the `failed` field: the processes that fail by memcheck's defaults.
    let unmarked = value["processes"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p.get("failed").is_none()));
    let mut r = Report::deserialize(value).map_err(bad)?;
    if unmarked {
        summary::mark(&mut r.processes, summary::Gate::default());
    }
    for p in &mut r.processes {
        for e in &mut p.errors {
            if e.fingerprint.is_empty() {
                e.fingerprint = fingerprint::of_error(e.kind, &e.stack);
            }
        }
        for l in &mut p.leaks {
            if l.fingerprint.is_empty() {
                l.fingerprint = fingerprint::of_leak(l.kind, &l.stack);
            }
        }
    }
    Ok(r)
}

/// A report format (`--format`, `--report FORMAT=FILE`; the command-line names are given in
/// `cli.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    /// Valgrind's XML (protocol 4): one document per process, written by `--xml-file` and
    /// `memcheck report --format xml`, not by `--format`/`--report` of a run.
    Xml,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Xml,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Xml => "xml",
        }
    }
}

/// What a rendering needs besides the report.
pub struct Render<'a> {
    /// Colours of the text format.
    pub painter: &'a crate::style::Painter,
    /// SARIF's `%SRCROOT%`: source files under it are given relative to it.
    pub source_root: &'a std::path::Path,
}

/// The report in `format`.
pub fn render(r: &Report, format: Format, how: &Render) -> String {
    match format {
        Format::Text => text::render_run(r, how.painter),
        Format::Json => json::render(r),
        Format::Sarif => sarif::render(r, how.source_root),
        Format::Junit => junit::render(r),
        // The first process's document; `memcheck report --pid` picks another.
        Format::Xml => valgrind_xml::pids(r)
            .first()
            .and_then(|&pid| valgrind_xml::render(r, pid))
            .unwrap_or_default(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    #[serde(deserialize_with = "static_str")]
    pub name: &'static str,
    #[serde(deserialize_with = "static_str")]
    pub version: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Exit {
    #[serde(rename = "code")]
    Code(i32),
    #[serde(rename = "signal")]
    Signal(i32),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "'de: 'static"))]
pub struct ProcessReport {
    pub pid: u32,
    pub ppid: u32,
    /// The command line, arguments joined by spaces.
    pub command: String,
    pub argv: Vec<String>,
    pub exe: String,
    /// How the process ended; null when it neither ended through exit(), _exit() or a signal the
    /// shim saw nor was memcheck's direct child (it exec'd another program, or was killed by
    /// SIGKILL).
    pub exit: Option<Exit>,
    pub errors: Vec<ErrorReport>,
    pub leaks: Vec<LeakReport>,
    /// Totals of every leak kind; null when the leak check did not run (--leak-check=no, or the
    /// process exec'd another program or was killed by SIGKILL).
    pub leak_summary: Option<LeakSummary>,
    /// The record file ended early (the process died while writing it).
    pub truncated: bool,
    /// Some of the process's records could not be written (the shim says so in a note), or
    /// memcheck stopped waiting for it while it ran: its findings may be missing, so an
    /// `--error-exitcode` gate fails.
    pub incomplete: bool,
    /// Messages of the memcheck library about this run (a degraded mode, a limit reached).
    pub notes: Vec<String>,
    /// Valgrind's ERROR SUMMARY: what fails `--error-exitcode`, and what was suppressed.
    #[serde(default)]
    pub error_summary: ErrorSummary,
    /// The process counts against the run ([`summary::failure`]): unsuppressed errors or leaks
    /// of the `--errors-for-leak-kinds` kinds, death by a signal, or an incomplete report.
    #[serde(default)]
    pub failed: bool,
    /// Why it failed, one line (`2 errors, 48 bytes definitely lost in 3 blocks`); null when it
    /// did not.
    #[serde(default)]
    pub failure: Option<String>,
    /// The live-sites snapshots taken while it ran (`--snapshot-interval`, `--snapshot-signal`),
    /// oldest first; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<sites::Snapshot>,
}

/// Errors as Valgrind counts them: every occurrence of a heap error (and of a warning with
/// `--warnings-as-errors`), plus one per leak context (the blocks of one kind from one allocation
/// stack) of the kinds `--errors-for-leak-kinds` selects; a context is one distinct finding.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct ErrorSummary {
    pub errors: u64,
    pub contexts: u64,
    /// The same for suppressed findings (every kind of leak included).
    pub suppressed: u64,
    pub suppressed_contexts: u64,
    /// With `--baseline`: the same for the findings it has, which do not fail the run (left out
    /// of `errors` and `contexts`; absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub known: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub known_contexts: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct Amount {
    pub bytes: u64,
    pub blocks: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct LeakSummary {
    pub definite: Amount,
    pub indirect: Amount,
    pub possible: Amount,
    pub reachable: Amount,
    /// Blocks that a suppression matched, not counted in the four above.
    #[serde(default)]
    pub suppressed: Amount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeakReport {
    #[serde(deserialize_with = "static_str")]
    pub kind: &'static str,
    pub bytes: u64,
    pub blocks: u64,
    pub stack: Vec<Frame>,
    /// [`fingerprint::of_leak`] of the kind and the allocation stack.
    #[serde(default)]
    pub fingerprint: String,
    /// With `--gen-suppressions`: an entry that suppresses this leak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
    /// With `--baseline`: the baseline has this finding, which does not fail the run (absent
    /// when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub known: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockInfo {
    #[serde(
        serialize_with = "crate::units::hex_json",
        deserialize_with = "crate::symbolize::unhex"
    )]
    pub address: u64,
    pub size: u64,
    /// Offset of the bad address from the block's start (negative before it).
    pub offset: i64,
    #[serde(deserialize_with = "static_str")]
    pub allocated_by: &'static str,
}

/// A range of memory a call was given.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    #[serde(
        serialize_with = "crate::units::hex_json",
        deserialize_with = "crate::symbolize::unhex"
    )]
    pub address: u64,
    pub size: u64,
}

/// The overlapping ranges of a param-overlap error.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Overlap {
    pub destination: Range,
    pub source: Range,
}

/// How bad a finding is. JSON shows `"error"` or `"warning"`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A heap error: the program did something wrong.
    Error,
    /// A suspicious call that keeps glibc's answer (calloc-overflow, allocation-size-too-big,
    /// invalid-alignment).
    Warning,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReport {
    #[serde(deserialize_with = "static_str")]
    pub kind: &'static str,
    pub severity: Severity,
    #[serde(
        serialize_with = "crate::units::hex_json",
        deserialize_with = "crate::symbolize::unhex"
    )]
    pub address: u64,
    /// "read" or "write" where known.
    #[serde(deserialize_with = "opt_static_str")]
    pub access: Option<&'static str>,
    /// Size of the access in bytes where known.
    pub access_size: Option<u64>,
    /// Thread id (as gettid) of the bad access or call.
    pub thread: u32,
    /// One line saying what happened, e.g. "0 bytes after a 13-byte block".
    pub description: String,
    /// The checked memory or string function the error was found in (`memcpy`, `strcat`,
    /// `__memcpy_chk`, ...); absent for other errors.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_static_str"
    )]
    pub function: Option<&'static str>,
    /// param-overlap: the two ranges of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<Overlap>,
    pub block: Option<BlockInfo>,
    /// The bad access or call.
    pub stack: Vec<Frame>,
    pub alloc_stack: Vec<Frame>,
    pub free_stack: Vec<Frame>,
    /// [`fingerprint::of_error`] of the kind and `stack`.
    #[serde(default)]
    pub fingerprint: String,
    /// How many times this error happened with the same kind and stack (the first is shown).
    #[serde(default = "one")]
    pub count: u64,
    /// With `--gen-suppressions`: an entry that suppresses this error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
    /// With `--baseline`: the baseline has this finding, which does not fail the run (absent
    /// when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub known: bool,
}

impl ProcessReport {
    /// Heap errors, each occurrence counted.
    pub fn error_count(&self) -> u64 {
        self.errors
            .iter()
            .filter(|e| e.severity == Severity::Error)
            .map(|e| e.count)
            .sum()
    }
    /// Warnings, each occurrence counted.
    pub fn warning_count(&self) -> u64 {
        self.errors
            .iter()
            .filter(|e| e.severity == Severity::Warning)
            .map(|e| e.count)
            .sum()
    }
    /// Definite plus indirect blocks, unsuppressed (a lost 0-byte block counts too).
    pub fn lost_blocks(&self) -> u64 {
        self.leaked_blocks(LeakKinds {
            definite: true,
            indirect: true,
            ..LeakKinds::default()
        })
    }
    /// Unsuppressed blocks of the given kinds (a lost 0-byte block counts too).
    pub fn leaked_blocks(&self, kinds: LeakKinds) -> u64 {
        self.leak_summary
            .map(|s| {
                [s.definite, s.indirect, s.possible, s.reachable]
                    .iter()
                    .zip(LeakKind::ALL)
                    .filter(|(_, k)| kinds.shows(*k))
                    .map(|(a, _)| a.blocks)
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// What to keep when building the report.
pub struct Options<'a> {
    /// Leak kinds listed one by one (`--show-leak-kinds`).
    pub show: LeakKinds,
    /// Leak kinds that count as errors (`--errors-for-leak-kinds`).
    pub errors_for: LeakKinds,
    /// Warnings count as errors (`--warnings-as-errors`).
    pub warnings_as_errors: bool,
    /// Report alloc-dealloc-mismatch (`--show-mismatched-frees`).
    pub mismatched_frees: bool,
    /// Findings to leave out.
    pub suppressions: &'a Suppressions,
    /// Write a suppression under each finding in this format (`--gen-suppressions`).
    pub gen: Option<suppress::Format>,
    /// Advanced by one for each error and leak record symbolized (or passed over).
    pub progress: &'a progress::Progress,
    /// Findings matched against `--baseline` and collected for `--write-baseline`.
    pub baseline: Option<&'a baseline::Matcher>,
}

/// Which leak kinds are listed one by one (`--show-leak-kinds`; the totals cover every kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LeakKinds {
    pub definite: bool,
    pub indirect: bool,
    pub possible: bool,
    pub reachable: bool,
}

impl LeakKinds {
    /// Every kind.
    pub const ALL: LeakKinds = LeakKinds {
        definite: true,
        indirect: true,
        possible: true,
        reachable: true,
    };

    pub fn shows(&self, kind: LeakKind) -> bool {
        match kind {
            LeakKind::Definite => self.definite,
            LeakKind::Indirect => self.indirect,
            LeakKind::Possible => self.possible,
            LeakKind::Reachable => self.reachable,
        }
    }
}

/// The frames of a recorded stack. Addresses are return addresses, except the first one of a
/// fault's stack (`exact_first`), which is the faulting instruction itself.
fn stack_frames(
    p: &ProcessRecords,
    sym: &mut Symbolizer,
    id: u32,
    exact_first: bool,
) -> Vec<Frame> {
    let Some(pcs) = p.stacks.get(&id) else {
        return Vec::new();
    };
    let mut out: Vec<Frame> = Vec::new();
    // The outermost frames that all lie in one object are start-up code (libc's `_start` chain,
    // `start_thread`/`clone3`): they are named from symbol tables without loading that object's
    // separate debug file (libc's costs tens of megabytes) for lines nobody reads. Every frame
    // with a frame of another object further out gets its lines.
    let modules: Vec<Option<(&std::path::Path, u64)>> = pcs
        .iter()
        .map(|&pc| p.module_at(id, pc).map(|m| (m.path.as_path(), m.bias)))
        .collect();
    for (i, &pc) in pcs.iter().enumerate() {
        let here = modules[i].map(|m| m.0);
        let detail = modules[i + 1..].iter().any(|m| m.map(|m| m.0) != here);
        out.extend(sym.frames_with(pc, modules[i], !(exact_first && i == 0), detail));
    }
    out
}

fn relation(addr: u64, block: u64, size: u64) -> String {
    if addr >= block + size {
        format!("{} after {}", bytes(addr - (block + size)), a_block(size))
    } else if addr < block {
        format!("{} before {}", bytes(block - addr), a_block(size))
    } else {
        format!("{} inside {}", bytes(addr - block), a_block(size))
    }
}

fn describe(e: &ErrorRec) -> String {
    match e.kind {
        ErrorKind::AllocDeallocMismatch => mismatch(e),
        ErrorKind::CallocOverflow => format!(
            "calloc({}, {}): the product overflows size_t",
            e.arg1, e.arg2
        ),
        // arg2: the limit exceeded (--max-allocation-size), or 0 when the size computation
        // itself overflowed (arg1 is then the size argument, saturated).
        ErrorKind::AllocationSizeTooBig if e.arg2 == 0 => {
            if e.arg1 == u64::MAX {
                "the size computation of the request overflows size_t".to_string()
            } else {
                format!(
                    "requested {} bytes: rounding it up to the alignment or a page overflows size_t",
                    e.arg1
                )
            }
        }
        ErrorKind::AllocationSizeTooBig => format!(
            "requested {} bytes ({}), more than the maximum allocation size of {} (--max-allocation-size)",
            e.arg1,
            crate::units::bytes(e.arg1),
            crate::units::bytes(e.arg2)
        ),
        ErrorKind::InvalidAlignment => format!(
            "alignment {} is not a valid alignment (size {})",
            e.arg2, e.arg1
        ),
        ErrorKind::Crash => crash(e),
        ErrorKind::ParamOverlap => format!(
            "{}: destination [{:#x}, {:#x}) ({}) overlaps source [{:#x}, {:#x}) ({})",
            MemFn::from_u8(e.func).map_or("the call", MemFn::name),
            e.addr,
            e.addr + e.access_size,
            bytes(e.access_size),
            e.arg1,
            e.arg1 + e.arg2,
            bytes(e.arg2)
        ),
        ErrorKind::DoubleFree => format!(
            "{} freed twice",
            relation(e.addr, e.block_addr, e.block_size).replace("0 bytes inside a", "a")
        ),
        ErrorKind::InvalidFree | ErrorKind::InvalidRealloc if !e.has_block => {
            "the pointer was never returned by the allocator".to_string()
        }
        ErrorKind::InvalidRealloc if e.addr != e.block_addr => format!(
            "realloc of a pointer {}, not the start of a block{}",
            relation(e.addr, e.block_addr, e.block_size),
            if e.free_stack != 0 {
                " (and the block is freed)"
            } else {
                ""
            }
        ),
        ErrorKind::InvalidRealloc => format!(
            "realloc of a freed block: {}",
            relation(e.addr, e.block_addr, e.block_size).replace("0 bytes inside a", "a")
        ),
        _ if e.has_block => {
            let when = match (e.exact_pc, FoundAt::from_u64(e.arg1)) {
                (true, _) => "",
                (false, Some(FoundAt::Free)) => " (found damaged when the block was freed)",
                (false, Some(FoundAt::Eviction)) => {
                    " (found damaged when the block left the quarantine)"
                }
                (false, Some(FoundAt::Exit)) => " (found damaged at exit)",
                (false, Some(FoundAt::Access) | None) => "",
            };
            // Damage found after the fact is one range of changed bytes.
            let range = if e.exact_pc || e.access_size == 0 {
                String::new()
            } else {
                format!(
                    "; {} damaged, {:#x}-{:#x}",
                    bytes(e.access_size),
                    e.addr,
                    e.addr + e.access_size - 1
                )
            };
            format!(
                "{}{when}{range}",
                relation(e.addr, e.block_addr, e.block_size)
            )
        }
        _ => String::new(),
    }
}

/// An `alloc-dealloc-mismatch`: of families (`arg1` 0), of a sized `delete`'s size (1: `arg2` is
/// the size it passed) or of alignments (2: `arg2` holds the `new`'s alignment in its high 32
/// bits and the `delete`'s in its low ones, 0 for an unaligned call).
fn mismatch(e: &ErrorRec) -> String {
    let new = e.alloc_family.alloc_name();
    let delete = e.free_family.free_name();
    match e.arg1 {
        1 => format!(
            "allocated as a {}-byte block with {new} and released with a sized {delete} of {} bytes",
            e.block_size, e.arg2
        ),
        2 => {
            let align = |a: u64| {
                if a == 0 {
                    "the default alignment".to_string()
                } else {
                    format!("alignment {a}")
                }
            };
            format!(
                "allocated with {new} with {} and released with {delete} with {}",
                align(e.arg2 >> 32),
                align(e.arg2 & 0xffff_ffff)
            )
        }
        _ => format!("allocated with {new} and released with {delete}"),
    }
}

/// What a crash was, in ASan's words where it has them (`SEGV on unknown address 0x0`), from the
/// signal (`arg1`) and its `si_code` (`arg2`).
fn crash(e: &ErrorRec) -> String {
    let code = e.arg2 as i32;
    let why = |names: &[&str]| {
        names
            .get((code as usize).wrapping_sub(1))
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    };
    match e.arg1 as i32 {
        libc::SIGSEGV if code == libc::SI_KERNEL => {
            "SEGV on an unknown address (a general protection fault: a non-canonical address or a privileged instruction)".to_string()
        }
        libc::SIGSEGV => {
            let what = match code {
                1 => "nothing is mapped there",
                2 => "the mapping there does not allow this access",
                _ => "",
            };
            let zero = if e.addr < 4096 {
                "; the address points to the zero page (a null pointer dereference)"
            } else {
                ""
            };
            format!(
                "SEGV on unknown address {:#x}{}{what}{zero}",
                e.addr,
                if what.is_empty() { "" } else { ": " }
            )
        }
        libc::SIGBUS => format!(
            "SIGBUS at address {:#x}{}",
            e.addr,
            why(&[
                "invalid address alignment",
                "nonexistent physical address (past the end of a mapped file?)",
                "object-specific hardware error",
            ])
        ),
        libc::SIGFPE => format!(
            "SIGFPE at {:#x}{}",
            e.addr,
            why(&[
                "integer divide by zero",
                "integer overflow",
                "floating-point divide by zero",
                "floating-point overflow",
                "floating-point underflow",
                "floating-point inexact result",
                "invalid floating-point operation",
                "subscript out of range",
            ])
        ),
        libc::SIGILL => format!(
            "SIGILL at {:#x}{}",
            e.addr,
            why(&[
                "illegal opcode",
                "illegal operand",
                "illegal addressing mode",
                "illegal trap",
                "privileged opcode",
                "privileged register",
                "coprocessor error",
                "internal stack error",
            ])
        ),
        s => format!("signal {s} at {:#x}", e.addr),
    }
}

/// A frame reduced to what groups leaks: function, file, line.
type SourceLine = (Option<String>, Option<String>, Option<u32>);

/// Builds the report of one process.
pub fn process_report(
    p: &ProcessRecords,
    exit: Option<Exit>,
    sym: &mut Symbolizer,
    opts: &Options,
) -> ProcessReport {
    let mut summary = ErrorSummary::default();
    let all_errors = p
        .errors
        .iter()
        .filter(|e| opts.mismatched_frees || e.kind != ErrorKind::AllocDeallocMismatch)
        .map(|e| {
            opts.progress.add(1);
            let stack = stack_frames(p, sym, e.stack, e.exact_pc);
            ErrorReport {
                kind: e.kind.name(),
                severity: if e.kind.is_warning() {
                    Severity::Warning
                } else {
                    Severity::Error
                },
                address: e.addr,
                access: e.access.name(),
                access_size: (e.access_size > 0).then_some(e.access_size),
                thread: e.tid,
                description: describe(e),
                function: MemFn::from_u8(e.func).map(MemFn::name),
                overlap: (e.kind == ErrorKind::ParamOverlap).then_some(Overlap {
                    destination: Range {
                        address: e.addr,
                        size: e.access_size,
                    },
                    source: Range {
                        address: e.arg1,
                        size: e.arg2,
                    },
                }),
                block: e.has_block.then(|| BlockInfo {
                    address: e.block_addr,
                    size: e.block_size,
                    offset: e.addr.wrapping_sub(e.block_addr) as i64,
                    allocated_by: e.alloc_family.alloc_name(),
                }),
                fingerprint: fingerprint::of_error(e.kind.name(), &stack),
                stack,
                alloc_stack: stack_frames(p, sym, e.alloc_stack, false),
                free_stack: stack_frames(p, sym, e.free_stack, false),
                count: 1,
                suppression: None,
                known: false,
            }
        });
    // Identical errors (same kind, same symbolized stack) are one context with a count, shown
    // once, in the order of their first occurrence.
    let mut errors: Vec<ErrorReport> = Vec::new();
    let mut seen: std::collections::HashMap<(&'static str, Vec<SourceLine>), usize> =
        std::collections::HashMap::new();
    for e in all_errors {
        let key = (e.kind, source_lines(&e.stack));
        match seen.get(&key) {
            Some(&i) => errors[i].count += 1,
            None => {
                seen.insert(key, errors.len());
                errors.push(e);
            }
        }
    }
    errors.retain_mut(|e| {
        if opts
            .suppressions
            .suppresses(Finding::Error(e.kind), &e.stack, e.count, 0)
        {
            summary.suppressed += e.count;
            summary.suppressed_contexts += 1;
            return false;
        }
        let counts = e.severity == Severity::Error || opts.warnings_as_errors;
        e.known = opts
            .baseline
            .is_some_and(|b| b.saw(e.kind, &e.stack, &e.fingerprint, counts));
        if counts && e.known {
            summary.known += e.count;
            summary.known_contexts += 1;
        } else if counts {
            summary.errors += e.count;
            summary.contexts += 1;
        }
        if let Some(format) = opts.gen {
            e.suppression = suppress::generate(
                format,
                Finding::Error(e.kind),
                e.access_size,
                &e.stack,
                &p.exe,
            );
        }
        true
    });

    // Group leaks by kind and symbolized stack (two PCs of one line merge), largest first: the
    // kinds listed and those that count as errors (suppressions apply to both). The others are
    // not symbolized, which costs seconds on a large program's reachable blocks: their totals
    // stay the shim's.
    let mut groups: BTreeMap<(LeakKind, Vec<SourceLine>), LeakReport> = BTreeMap::new();
    for l in &p.leaks {
        opts.progress.add(1);
        if !opts.show.shows(l.kind) && !opts.errors_for.shows(l.kind) {
            continue;
        }
        let stack = stack_frames(p, sym, l.stack, false);
        let key = source_lines(&stack);
        let g = groups.entry((l.kind, key)).or_insert_with(|| LeakReport {
            kind: l.kind.name(),
            bytes: 0,
            blocks: 0,
            fingerprint: fingerprint::of_leak(l.kind.name(), &stack),
            stack,
            suppression: None,
            known: false,
        });
        g.bytes += l.bytes;
        g.blocks += l.blocks;
    }
    let mut suppressed = [Amount::default(); 4];
    let mut leaks: Vec<(LeakKind, LeakReport)> = Vec::new();
    let mut failing_contexts = [0u64; 4];
    let mut known_blocks = [0u64; 4];
    for ((k, _), mut l) in groups {
        if opts
            .suppressions
            .suppresses(Finding::Leak(k), &l.stack, 1, l.bytes)
        {
            suppressed[k as usize].bytes += l.bytes;
            suppressed[k as usize].blocks += l.blocks;
            if opts.errors_for.shows(k) {
                summary.suppressed += 1;
                summary.suppressed_contexts += 1;
            }
            continue;
        }
        let counts = opts.errors_for.shows(k);
        l.known = opts
            .baseline
            .is_some_and(|b| b.saw(&sarif::leak_rule(l.kind), &l.stack, &l.fingerprint, counts));
        if counts && l.known {
            known_blocks[k as usize] += l.blocks;
            summary.known += 1;
            summary.known_contexts += 1;
        } else if counts {
            failing_contexts[k as usize] += 1;
        }
        if opts.show.shows(k) {
            if let Some(format) = opts.gen {
                l.suppression =
                    suppress::generate(format, Finding::Leak(k), None, &l.stack, &p.exe);
            }
            leaks.push((k, l));
        }
    }
    leaks.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.bytes.cmp(&a.1.bytes)));

    let leak_summary = p.leak_summary.map(|s| {
        let a = |k: LeakKind| Amount {
            bytes: s.kinds[k as usize]
                .0
                .saturating_sub(suppressed[k as usize].bytes),
            blocks: s.kinds[k as usize]
                .1
                .saturating_sub(suppressed[k as usize].blocks),
        };
        LeakSummary {
            definite: a(LeakKind::Definite),
            indirect: a(LeakKind::Indirect),
            possible: a(LeakKind::Possible),
            reachable: a(LeakKind::Reachable),
            suppressed: Amount {
                bytes: suppressed.iter().map(|a| a.bytes).sum(),
                blocks: suppressed.iter().map(|a| a.blocks).sum(),
            },
        }
    });
    // A leak context of each failing kind; without leak records (--leak-check=summary) each
    // failing kind with blocks is one.
    for k in LeakKind::ALL {
        let blocks = p.leak_summary.map_or(0, |s| {
            s.kinds[k as usize]
                .1
                .saturating_sub(suppressed[k as usize].blocks)
                .saturating_sub(known_blocks[k as usize])
        });
        let n = if failing_contexts[k as usize] == 0 && blocks > 0 && opts.errors_for.shows(k) {
            1
        } else {
            failing_contexts[k as usize]
        };
        summary.errors += n;
        summary.contexts += n;
    }
    ProcessReport {
        pid: p.pid,
        ppid: p.ppid,
        command: p.argv.join(" "),
        argv: p.argv.clone(),
        exe: p.exe.clone(),
        exit: exit
            .or(p.exit_code.map(Exit::Code))
            .or(p.exit_signal.map(Exit::Signal)),
        errors,
        leaks: leaks.into_iter().map(|(_, l)| l).collect(),
        leak_summary,
        truncated: p.truncated,
        incomplete: p
            .notes
            .iter()
            .any(|n| n.contains(memcheck_wire::NOTE_RECORDS_LOST)),
        notes: p.notes.clone(),
        error_summary: summary,
        failed: false,
        failure: None,
        snapshots: Vec::new(),
    }
}

/// A stack reduced to what tells findings apart: function, file and line of each frame.
fn source_lines(stack: &[Frame]) -> Vec<SourceLine> {
    stack
        .iter()
        .map(|f| match (&f.function, &f.file) {
            // A frame with neither function nor file keeps its address: unnamed frames of two
            // different places must not merge.
            (None, None) => (None, Some(format!("{:#x}", f.address)), None),
            _ => (f.function.clone(), f.file.clone(), f.line),
        })
        .collect()
}

/// `1 byte`, `0 bytes`, `13 bytes`.
fn bytes(n: u64) -> String {
    format!("{n} byte{}", if n == 1 { "" } else { "s" })
}

/// `a 13-byte block`, `an 8-byte block`, `an 11-byte block`: the article that fits the number
/// as it is spoken (eight, eleven, eighteen, eighty, eleven thousand, ...).
fn a_block(size: u64) -> String {
    let s = size.to_string();
    let an =
        s.starts_with('8') || (s.len() % 3 == 2 && (s.starts_with("11") || s.starts_with("18")));
    format!("{} {size}-byte block", if an { "an" } else { "a" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_read_like_asan() {
        assert_eq!(
            relation(0x100d, 0x1000, 13),
            "0 bytes after a 13-byte block"
        );
        assert_eq!(relation(0xfff, 0x1000, 13), "1 byte before a 13-byte block");
        assert_eq!(
            relation(0x1004, 0x1000, 13),
            "4 bytes inside a 13-byte block"
        );
    }

    #[test]
    fn articles_and_plurals_read_right() {
        assert_eq!(relation(0x1008, 0x1000, 8), "0 bytes after an 8-byte block");
        assert_eq!(a_block(11), "an 11-byte block");
        assert_eq!(a_block(18), "an 18-byte block");
        assert_eq!(a_block(80), "an 80-byte block");
        assert_eq!(a_block(800), "an 800-byte block");
        assert_eq!(a_block(11000), "an 11000-byte block");
        assert_eq!(a_block(110), "a 110-byte block");
        assert_eq!(a_block(1100), "a 1100-byte block");
        assert_eq!(a_block(1), "a 1-byte block");
        assert_eq!(a_block(16), "a 16-byte block");
        assert_eq!(bytes(1), "1 byte");
    }

    #[test]
    fn severity_is_a_word_in_json() {
        assert_eq!(serde_json::to_value(Severity::Error).unwrap(), "error");
        assert_eq!(serde_json::to_value(Severity::Warning).unwrap(), "warning");
    }

    #[test]
    fn a_loaded_report_renders_the_same_json_and_old_ones_get_fingerprints() {
        let old = r#"{"version": 1, "tool": {"name": "memcheck", "version": "0.0.9"},
            "processes": [{"pid": 5, "ppid": 1, "command": "./p", "argv": ["./p"], "exe": "/p",
              "exit": {"code": 0}, "errors": [], "leak_summary": null, "truncated": false,
              "incomplete": false, "notes": [],
              "leaks": [{"kind": "definite", "bytes": 3, "blocks": 1, "stack": [
                {"address": "0x10", "function": "f", "file": null, "line": null,
                 "object": "/p", "inlined": true}]}]}]}"#;
        let r = load(old).unwrap();
        assert_eq!(r.leak_check, "full");
        let l = &r.processes[0].leaks[0];
        assert_eq!(l.fingerprint, fingerprint::of_leak("definite", &l.stack));
        assert_eq!(l.stack[0].address, 0x10);
        assert!(l.stack[0].inlined);
        let again = json::render(&r);
        assert_eq!(json::render(&load(&again).unwrap()), again);
        assert!(load(r#"{"version": 2}"#)
            .unwrap_err()
            .contains("format version 2"));
        assert!(load("[]")
            .unwrap_err()
            .contains("not a memcheck JSON report"));
    }
}
