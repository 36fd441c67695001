//! Suppressions: findings the user (or memcheck's defaults) declared known, left out of the
//! report and of `--error-exitcode`. A file holds LeakSanitizer lines (`lsan.rs`), Valgrind
//! blocks (`valgrind.rs`), or both; `#` starts a comment line. Everything is parsed before the
//! program runs, and a malformed file is refused as `FILE:LINE: reason`. The report asks
//! [`Suppressions::suppresses`] about each finding (its kind and symbolized stack) and the hits
//! are counted for the "suppressions used" table. [`generate`] writes an entry for a finding.
pub mod lsan;
pub mod pattern;
pub mod valgrind;

use crate::symbolize::Frame;
use anyhow::{anyhow, Context, Result};
use memcheck_wire::LeakKind;
use pattern::Pattern;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;

/// memcheck's own suppressions, on unless `--default-suppressions=no`.
pub const DEFAULT: &str = include_str!("default.supp");
/// The name the default file has in reports.
pub const DEFAULT_FILE: &str = "<default>";

/// What an entry applies to: error kinds by their JSON names, leak kinds indexed by `LeakKind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kinds {
    pub errors: Vec<&'static str>,
    pub leaks: [bool; 4],
}

impl Kinds {
    pub fn leaks_all() -> Kinds {
        Kinds {
            errors: Vec::new(),
            leaks: [true; 4],
        }
    }
    pub fn error(name: &'static str) -> Kinds {
        Kinds {
            errors: vec![name],
            leaks: [false; 4],
        }
    }
    fn covers(&self, f: Finding) -> bool {
        match f {
            Finding::Error(k) => self.errors.contains(&k),
            Finding::Leak(k) => self.leaks[k as usize],
        }
    }
}

/// One line of a Valgrind block's stack.
#[derive(Debug, Clone)]
pub enum FrameLine {
    /// `fun:`: the pattern, and the demangled form of a mangled literal.
    Fun(Pattern, Option<Pattern>),
    Obj(Pattern),
    Src(Pattern, Option<u32>),
    /// `...`: any number of frames.
    Any,
}

/// How an entry matches a stack.
#[derive(Debug, Clone)]
pub enum Rule {
    /// LeakSanitizer: some frame's function, file or object matches.
    AnyFrame(Pattern),
    /// Valgrind: the lines match the stack from its innermost frame.
    Frames(Vec<FrameLine>),
}

/// A finding as a suppression sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// An error or warning, by its JSON kind name.
    Error(&'static str),
    Leak(LeakKind),
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// The block's name (Valgrind) or the line itself (LeakSanitizer).
    pub name: String,
    /// The file as given (or [`DEFAULT_FILE`]) and the entry's first line.
    pub file: String,
    pub line: usize,
    kinds: Kinds,
    rule: Rule,
}

/// An entry with what it suppressed: `count` findings (each error occurrence; each leak context,
/// the blocks of one kind from one allocation stack) and `bytes` of leaked memory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Used {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub count: u64,
    pub bytes: u64,
}

/// The loaded suppressions and their hits so far.
#[derive(Debug, Default)]
pub struct Suppressions {
    entries: Vec<Entry>,
    hits: RefCell<Vec<(u64, u64)>>,
}

/// The allocator's entry points: the innermost frame of Valgrind's stacks, absent from memcheck's.
const ALLOCATORS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "cfree",
    "memalign",
    "posix_memalign",
    "aligned_alloc",
    "valloc",
    "pvalloc",
    "_Znwm",
    "_Znam",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "operator new(unsigned long)",
    "operator new[](unsigned long)",
    "operator delete(void*)",
    "operator delete[](void*)",
    "operator delete(void*, unsigned long)",
    "operator delete[](void*, unsigned long)",
];

impl FrameLine {
    fn matches(&self, f: &Frame) -> bool {
        let func = f.function.as_deref().unwrap_or("???");
        match self {
            FrameLine::Fun(p, d) => p.matches(func) || d.as_ref().is_some_and(|d| d.matches(func)),
            FrameLine::Obj(p) => p.matches(f.object.as_deref().unwrap_or("???")),
            FrameLine::Src(p, line) => {
                f.file.as_deref().is_some_and(|file| {
                    let base = file.rsplit('/').next().unwrap_or(file);
                    p.matches(file) || p.matches(base)
                }) && line.is_none_or(|l| f.line == Some(l))
            }
            FrameLine::Any => true,
        }
    }

    /// A first line that names the allocator or a checked memory or string function (or
    /// Valgrind's preload object), which memcheck's stacks do not hold.
    fn is_allocator(&self) -> bool {
        match self {
            FrameLine::Fun(p, d) => {
                let names = ALLOCATORS.iter().map(|a| a.to_string()).chain(
                    // Valgrind names its replacement of memcpy by the symbol version too.
                    memcheck_wire::MemFn::ALL
                        .iter()
                        .flat_map(|f| [f.name().to_string(), format!("{}@@GLIBC_2.14", f.name())]),
                );
                names
                    .into_iter()
                    .any(|a| p.matches(&a) || d.as_ref().is_some_and(|d| d.matches(&a)))
            }
            FrameLine::Obj(p) => {
                p.matches("/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so")
            }
            _ => false,
        }
    }
}

/// Valgrind's rule: the lines match a prefix of the stack, `...` standing for any frames.
fn frames_match(lines: &[FrameLine], stack: &[Frame]) -> bool {
    match lines.split_first() {
        None => true,
        Some((FrameLine::Any, rest)) => (0..=stack.len()).any(|k| frames_match(rest, &stack[k..])),
        Some((l, rest)) => {
            stack.first().is_some_and(|f| l.matches(f)) && frames_match(rest, &stack[1..])
        }
    }
}

impl Rule {
    fn matches(&self, stack: &[Frame]) -> bool {
        match self {
            Rule::AnyFrame(p) => stack.iter().any(|f| {
                [&f.function, &f.file, &f.object]
                    .into_iter()
                    .any(|s| s.as_deref().is_some_and(|s| p.matches(s)))
            }),
            Rule::Frames(lines) => {
                frames_match(lines, stack)
                    || (lines.len() > 1
                        && lines[0].is_allocator()
                        && frames_match(&lines[1..], stack))
            }
        }
    }
}

/// Parses a file's text. `file` names it in errors (`FILE:LINE: reason`) and reports.
pub fn parse(text: &str, file: &str) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((n, raw)) = lines.next() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l == "{" {
            match valgrind::parse_block(n, &mut lines) {
                Ok(Some((name, kinds, rule))) => out.push(Entry {
                    name,
                    file: file.to_string(),
                    line: n,
                    kinds,
                    rule,
                }),
                Ok(None) => {}
                Err((at, why)) => return Err(anyhow!("{file}:{at}: {why}")),
            }
            continue;
        }
        if l == "}" {
            return Err(anyhow!("{file}:{n}: `}}` without its `{{`"));
        }
        let (kinds, rule) = lsan::parse_line(l).map_err(|why| anyhow!("{file}:{n}: {why}"))?;
        out.push(Entry {
            name: l.to_string(),
            file: file.to_string(),
            line: n,
            kinds,
            rule,
        });
    }
    Ok(out)
}

impl Suppressions {
    /// The default suppressions (unless `defaults` is false), then each file in order.
    pub fn load(files: &[impl AsRef<Path>], defaults: bool) -> Result<Suppressions> {
        let mut entries = Vec::new();
        if defaults {
            entries.extend(parse(DEFAULT, DEFAULT_FILE).context("the default suppressions")?);
        }
        for f in files {
            let f = f.as_ref();
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("--suppressions {}: cannot read it", f.display()))?;
            entries.extend(parse(&text, &f.display().to_string())?);
        }
        Ok(Suppressions::from_entries(entries))
    }

    pub fn from_entries(entries: Vec<Entry>) -> Suppressions {
        let hits = RefCell::new(vec![(0, 0); entries.len()]);
        Suppressions { entries, hits }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some entry suppresses this finding; the first that does counts `count` hits and
    /// `bytes`.
    pub fn suppresses(&self, f: Finding, stack: &[Frame], count: u64, bytes: u64) -> bool {
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.kinds.covers(f) && e.rule.matches(stack))
        else {
            return false;
        };
        let mut hits = self.hits.borrow_mut();
        hits[i].0 += count;
        hits[i].1 += bytes;
        true
    }

    fn with_hits(&self) -> impl Iterator<Item = Used> + '_ {
        let hits = self.hits.borrow().clone();
        self.entries
            .iter()
            .zip(hits)
            .map(|(e, (count, bytes))| Used {
                name: e.name.clone(),
                file: e.file.clone(),
                line: e.line,
                count,
                bytes,
            })
    }

    /// The entries that suppressed something, most hits first.
    pub fn used(&self) -> Vec<Used> {
        let mut u: Vec<Used> = self.with_hits().filter(|u| u.count > 0).collect();
        u.sort_by(|a, b| b.count.cmp(&a.count).then(b.bytes.cmp(&a.bytes)));
        u
    }

    /// The entries of the user's files that suppressed nothing (the defaults are not listed).
    pub fn unused(&self) -> Vec<Used> {
        self.with_hits()
            .filter(|u| u.count == 0 && u.file != DEFAULT_FILE)
            .collect()
    }
}

/// The format of generated entries (`--gen-suppressions-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Valgrind,
    Lsan,
}

/// The frames a generated entry names: from the innermost through `main` (the program's own
/// frames; what lies below is libc's start-up), else through the outermost frame of the
/// executable `exe`, else at most eight.
fn user_frames<'a>(stack: &'a [Frame], exe: &str) -> &'a [Frame] {
    if let Some(i) = stack
        .iter()
        .position(|f| f.function.as_deref() == Some("main"))
    {
        return &stack[..=i];
    }
    if let Some(i) = stack.iter().rposition(|f| f.object.as_deref() == Some(exe)) {
        return &stack[..=i];
    }
    &stack[..stack.len().min(8)]
}

/// The Valgrind kind line(s) of a finding.
fn valgrind_kind(f: Finding, access_size: Option<u64>) -> String {
    match f {
        Finding::Leak(k) => format!("Memcheck:Leak\n   match-leak-kinds: {}", k.name()),
        Finding::Error(k) => match k {
            "heap-buffer-overflow" | "heap-buffer-underflow" | "use-after-free" => {
                let n = access_size
                    .filter(|n| [1, 2, 4, 8, 16, 32].contains(n))
                    .unwrap_or(1);
                format!("Memcheck:Addr{n}")
            }
            "calloc-overflow" | "allocation-size-too-big" => "Memcheck:FishyValue".into(),
            "invalid-alignment" => "Memcheck:BadAlign".into(),
            "param-overlap" => "Memcheck:Overlap".into(),
            _ => "Memcheck:Free".into(),
        },
    }
}

/// A ready entry for a finding, general enough to survive a rebuild: function names (an
/// object's path where the function is unknown), never addresses or lines. None for a finding
/// without a stack (`--keep-stacktraces=free` or `none`): an entry without a frame would match
/// every finding of its kind.
pub fn generate(
    format: Format,
    f: Finding,
    access_size: Option<u64>,
    stack: &[Frame],
    exe: &str,
) -> Option<String> {
    if stack.is_empty() {
        return None;
    }
    Some(generate_for(format, f, access_size, stack, exe))
}

fn generate_for(
    format: Format,
    f: Finding,
    access_size: Option<u64>,
    stack: &[Frame],
    exe: &str,
) -> String {
    let frames = user_frames(stack, exe);
    let what = match f {
        Finding::Leak(k) => format!("{} leak", k.name()),
        Finding::Error(k) => k.to_string(),
    };
    // The innermost named frame of the program itself, else the innermost named one.
    let site = frames
        .iter()
        .find(|fr| fr.function.is_some() && fr.object.as_deref() == Some(exe))
        .or_else(|| frames.iter().find(|fr| fr.function.is_some()))
        .and_then(|fr| fr.function.clone());
    match format {
        Format::Lsan => {
            let kind = match f {
                Finding::Leak(_) => "leak",
                Finding::Error(k) => k,
            };
            match site {
                Some(s) => format!("{kind}:^{s}$"),
                None => format!(
                    "{kind}:{}",
                    frames
                        .first()
                        .and_then(|f| f.object.clone())
                        .unwrap_or_else(|| exe.into())
                ),
            }
        }
        Format::Valgrind => {
            let mut out = format!(
                "{{\n   {what} in {}\n   {}\n",
                site.as_deref().unwrap_or("???"),
                valgrind_kind(f, access_size)
            );
            for fr in frames {
                match (&fr.function, &fr.object) {
                    (Some(func), _) => out.push_str(&format!("   fun:{func}\n")),
                    (None, Some(obj)) => out.push_str(&format!("   obj:{obj}\n")),
                    (None, None) => out.push_str("   ...\n"),
                }
            }
            if frames.is_empty() {
                out.push_str("   ...\n");
            }
            out.push('}');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(func: Option<&str>, file: Option<&str>, obj: &str) -> Frame {
        Frame {
            address: 0x1000,
            function: func.map(str::to_string),
            file: file.map(str::to_string),
            line: Some(3),
            object: Some(obj.to_string()),
            inlined: false,
        }
    }

    fn stack() -> Vec<Frame> {
        vec![
            frame(Some("make_greeting"), Some("/src/leaky.c"), "/bin/leaky"),
            frame(Some("main"), Some("/src/leaky.c"), "/bin/leaky"),
            frame(Some("__libc_start_call_main"), None, "/lib/libc.so.6"),
        ]
    }

    fn one(text: &str) -> Suppressions {
        Suppressions::from_entries(parse(text, "t.supp").unwrap())
    }

    #[test]
    fn lsan_lines_match_any_frame_by_function_file_or_object() {
        let leak = Finding::Leak(LeakKind::Definite);
        assert!(one("leak:make_greeting").suppresses(leak, &stack(), 1, 13));
        assert!(one("leak:leaky.c").suppresses(leak, &stack(), 1, 13));
        assert!(one("leak:libc.so").suppresses(leak, &stack(), 1, 13));
        assert!(!one("leak:^greeting").suppresses(leak, &stack(), 1, 13));
        assert!(!one("use-after-free:make_greeting").suppresses(leak, &stack(), 1, 13));
        let s = one("# comment\n\nheap-buffer-overflow:make_*\n");
        assert!(s.suppresses(Finding::Error("heap-buffer-overflow"), &stack(), 2, 0));
        assert_eq!(
            s.used(),
            [Used {
                name: "heap-buffer-overflow:make_*".into(),
                file: "t.supp".into(),
                line: 3,
                count: 2,
                bytes: 0
            }]
        );
        assert!(s.unused().is_empty());
    }

    #[test]
    fn valgrind_frames_match_from_the_innermost() {
        let leak = Finding::Leak(LeakKind::Definite);
        let v = |body: &str| one(&format!("{{\n n\n Memcheck:Leak\n{body}\n}}"));
        assert!(v(" fun:make_greeting\n fun:main").suppresses(leak, &stack(), 1, 1));
        assert!(v(" fun:malloc\n fun:make_greeting").suppresses(leak, &stack(), 1, 1));
        // Valgrind's Overlap stacks start in its memcpy, memcheck's at the caller.
        for first in ["memcpy*", "memcpy@@GLIBC_2.14", "strcat"] {
            let overlap = one(&format!(
                "{{\n n\n Memcheck:Overlap\n fun:{first}\n fun:make_greeting\n}}"
            ));
            assert!(overlap.suppresses(Finding::Error("param-overlap"), &stack(), 1, 0));
        }
        assert!(v(" fun:make_*").suppresses(leak, &stack(), 1, 1));
        assert!(
            !v(" fun:main").suppresses(leak, &stack(), 1, 1),
            "not the innermost"
        );
        assert!(v(" ...\n fun:main").suppresses(leak, &stack(), 1, 1));
        assert!(v(" obj:/bin/leaky\n ...\n obj:*/libc.so*").suppresses(leak, &stack(), 1, 1));
        assert!(v(" src:leaky.c:3").suppresses(leak, &stack(), 1, 1));
        assert!(
            !v(" fun:make_greeting\n fun:main\n fun:x\n fun:y").suppresses(leak, &stack(), 1, 1)
        );
        let k = one("{\n n\n Memcheck:Leak\n match-leak-kinds: reachable\n fun:make_greeting\n}");
        assert!(!k.suppresses(leak, &stack(), 1, 1));
        assert!(k.suppresses(Finding::Leak(LeakKind::Reachable), &stack(), 1, 1));
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let e = parse("leak:a\n\nbogus:b\n", "x.supp")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.supp:3: unknown kind `bogus`"), "{e}");
        let e = parse("{\n n\n Memcheck:Leak\n fun:a\n", "x.supp")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.supp:1: "), "{e}");
        let e = parse("}\n", "x.supp").unwrap_err().to_string();
        assert!(e.starts_with("x.supp:1: "), "{e}");
    }

    #[test]
    fn the_defaults_parse() {
        assert!(!parse(DEFAULT, DEFAULT_FILE).unwrap().is_empty());
    }

    #[test]
    fn generated_entries_suppress_what_they_were_made_from() {
        let leak = Finding::Leak(LeakKind::Definite);
        for format in [Format::Valgrind, Format::Lsan] {
            let text = generate(format, leak, None, &stack(), "/bin/leaky").unwrap();
            assert!(!text.contains("0x") && !text.contains(":3"), "{text}");
            // Without a stack there is nothing to tell this finding from any other of its kind.
            assert_eq!(generate(format, leak, None, &[], "/bin/leaky"), None);
            let s = one(&text);
            assert!(s.suppresses(leak, &stack(), 1, 1), "{text}");
            let mut other = stack();
            other[0].function = Some("make_farewell".into());
            assert!(!s.suppresses(leak, &other, 1, 1), "{text}");
        }
        let g = generate(
            Format::Valgrind,
            Finding::Error("heap-buffer-overflow"),
            Some(4),
            &stack(),
            "/bin/leaky",
        )
        .unwrap();
        assert!(
            g.contains("Memcheck:Addr4") && !g.contains("__libc_start"),
            "{g}"
        );
    }
}
