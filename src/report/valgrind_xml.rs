//! Valgrind's XML output, protocol 4 (`docs/internals/xml-output-protocol4.txt` in Valgrind's
//! source), so the tools that read Valgrind's XML (ValgrindCI, valgrind-codequality, Jenkins'
//! Valgrind plugin, CodeChecker, Qt Creator) read memcheck's unchanged. The contract, with the
//! mapping of kinds, is in `docs/report-format.md`.
//!
//! One document per checked process (per pid: the images of a pid that exec'd under
//! `--trace-children` share one), as Valgrind writes one per process: the preamble, pid, ppid,
//! tool and args, `<status>` RUNNING, the errors found while it ran (and a `<fatal_signal>` for a
//! crash), `<status>` FINISHED, the leaks of the kinds `--show-leak-kinds` lists (as Valgrind,
//! which writes only the kinds it shows), `<errorcounts>` and `<suppcounts>`. Like every format
//! it is a function of the [`Report`] alone, so `memcheck report --format xml` writes it again
//! byte for byte.
use super::{ErrorReport, LeakReport, ProcessReport, Report};
use crate::symbolize::Frame;
use std::fmt::Write;

/// Valgrind's `<kind>` of an error. Memcheck's kinds that Valgrind has no name for take the
/// nearest one Valgrind itself writes for the same bug, so that a consumer's list of kinds
/// always knows them: the warnings about allocation arguments are `FishyValue` (Valgrind's kind
/// for `malloc(-5)`), a crash is the invalid access that caused it (`InvalidRead`,
/// `InvalidWrite`, or `InvalidJump` when the faulting address is the instruction itself), and a
/// crash that is no memory access (SIGFPE, SIGILL) is `ClientCheck`.
pub fn kind(e: &ErrorReport) -> &'static str {
    let access = || match e.access {
        Some("read") => "InvalidRead",
        _ => "InvalidWrite",
    };
    match e.kind {
        "heap-buffer-overflow" | "heap-buffer-underflow" | "use-after-free" => access(),
        "double-free" | "invalid-free" | "invalid-realloc" => "InvalidFree",
        "alloc-dealloc-mismatch" => "MismatchedFree",
        "param-overlap" => "Overlap",
        "calloc-overflow" | "allocation-size-too-big" | "invalid-alignment" => "FishyValue",
        "crash" if e.description.starts_with("SEGV") || e.description.starts_with("SIGBUS") => {
            match e.access {
                Some("read") => "InvalidRead",
                Some("write") => "InvalidWrite",
                _ if e.stack.first().is_some_and(|f| f.address == e.address) => "InvalidJump",
                _ => "InvalidRead",
            }
        }
        // A crash without a memory access, or a kind of a newer memcheck.
        _ => "ClientCheck",
    }
}

/// Valgrind's `<kind>` of a leak kind.
pub fn leak_kind(kind: &str) -> &'static str {
    match kind {
        "definite" => "Leak_DefinitelyLost",
        "indirect" => "Leak_IndirectlyLost",
        "possible" => "Leak_PossiblyLost",
        _ => "Leak_StillReachable",
    }
}

/// The pids of the run in order, each once: one document each.
pub fn pids(r: &Report) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    for p in &r.processes {
        if !out.contains(&p.pid) {
            out.push(p.pid);
        }
    }
    out
}

/// The document of the process `pid`, or None when the run has no such process.
pub fn render(r: &Report, pid: u32) -> Option<String> {
    let images: Vec<&ProcessReport> = r.processes.iter().filter(|p| p.pid == pid).collect();
    let last = *images.last()?;
    let mut x = String::from("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n\n");
    x.push_str("<protocolversion>4</protocolversion>\n<protocoltool>memcheck</protocoltool>\n\n");
    x.push_str("<preamble>\n");
    line(
        &mut x,
        &format!(
            "memcheck {}, a heap error and leak detector (Valgrind's XML, protocol 4)",
            r.tool.version
        ),
    );
    line(&mut x, &format!("Command: {}", last.command));
    // A --baseline's known findings are left out, as suppressed ones are: a reader counts what
    // fails the run.
    let known: usize = images
        .iter()
        .map(|p| {
            p.errors.iter().filter(|e| e.known).count() + p.leaks.iter().filter(|l| l.known).count()
        })
        .sum();
    if known > 0 {
        line(
            &mut x,
            &format!("note: {known} findings the baseline knows are left out"),
        );
    }
    for p in &images {
        for n in &p.notes {
            line(&mut x, &format!("note: {n}"));
        }
        if p.incomplete {
            line(
                &mut x,
                "note: this report is incomplete: some records are missing",
            );
        }
        if p.truncated {
            line(
                &mut x,
                "note: the record ended early: the process died while writing it",
            );
        }
    }
    for n in &r.notes {
        line(&mut x, &format!("note: {n}"));
    }
    x.push_str("</preamble>\n\n");
    let _ = writeln!(
        x,
        "<pid>{}</pid>\n<ppid>{}</ppid>\n<tool>memcheck</tool>\n",
        last.pid, images[0].ppid
    );
    x.push_str("<args>\n  <vargv>\n    <exe>memcheck</exe>\n  </vargv>\n  <argv>\n");
    let mut argv = last.argv.iter();
    let _ = writeln!(
        x,
        "    <exe>{}</exe>",
        esc(argv.next().map_or(last.exe.as_str(), |s| s.as_str()))
    );
    for a in argv {
        let _ = writeln!(x, "    <arg>{}</arg>", esc(a));
    }
    x.push_str("  </argv>\n</args>\n\n");
    status(&mut x, "RUNNING");

    let mut unique = 0u64;
    let mut counts: Vec<(u64, u64)> = Vec::new();
    for p in &images {
        for e in p.errors.iter().filter(|e| !e.known) {
            error(&mut x, unique, e);
            counts.push((e.count, unique));
            unique += 1;
        }
    }
    for p in &images {
        for e in p.errors.iter().filter(|e| e.kind == "crash" && !e.known) {
            fatal_signal(&mut x, e);
        }
    }
    x.push('\n');
    status(&mut x, "FINISHED");

    let leaks: Vec<&LeakReport> = if r.leak_check == "full" {
        images
            .iter()
            .flat_map(|p| &p.leaks)
            .filter(|l| !l.known)
            .collect()
    } else {
        Vec::new()
    };
    for (i, l) in leaks.iter().enumerate() {
        leak(&mut x, unique, last.pid, l, i + 1, leaks.len());
        unique += 1;
    }

    x.push_str("<errorcounts>\n");
    for (count, u) in counts {
        let _ = writeln!(
            x,
            "  <pair>\n    <count>{count}</count>\n    <unique>0x{u:x}</unique>\n  </pair>"
        );
    }
    x.push_str("</errorcounts>\n\n<suppcounts>\n");
    for u in &r.suppressions_used {
        let _ = writeln!(
            x,
            "  <pair>\n    <count>{}</count>\n    <name>{}</name>\n  </pair>",
            u.count,
            esc(&u.name)
        );
    }
    x.push_str("</suppcounts>\n\n</valgrindoutput>\n\n");
    Some(x)
}

fn line(x: &mut String, s: &str) {
    let _ = writeln!(x, "  <line>{}</line>", esc(s));
}

/// memcheck does not time the run: the protocol leaves the string's form open.
fn status(x: &mut String, state: &str) {
    let _ = writeln!(
        x,
        "<status>\n  <state>{state}</state>\n  <time>not measured</time>\n</status>\n"
    );
}

/// Frames up to and including `main`, as Valgrind shows them (below it is libc start-up), but
/// never fewer than two when there are two: Valgrind's stacks of an allocation call begin with
/// the allocator's frame, memcheck's with its caller, and valgrind-codequality fails on a stack
/// of one frame.
fn visible(stack: &[Frame]) -> &[Frame] {
    match stack
        .iter()
        .position(|f| f.function.as_deref() == Some("main"))
    {
        Some(i) => &stack[..(i + 1).max(2).min(stack.len())],
        None => stack,
    }
}

fn stack(x: &mut String, frames: &[Frame]) {
    x.push_str("  <stack>\n");
    for f in visible(frames) {
        let _ = writeln!(x, "    <frame>\n      <ip>0x{:X}</ip>", f.address);
        if let Some(o) = &f.object {
            let _ = writeln!(x, "      <obj>{}</obj>", esc(o));
        }
        if let Some(func) = &f.function {
            let _ = writeln!(x, "      <fn>{}</fn>", esc(func));
        }
        if let Some(file) = &f.file {
            let (dir, name) = match file.rsplit_once('/') {
                Some((d, n)) if !d.is_empty() => (Some(d), n),
                Some((_, n)) => (Some("/"), n),
                None => (None, file.as_str()),
            };
            // Readers take a <dir> to promise a <line> (ValgrindCI asserts it).
            match (dir, f.line) {
                (Some(d), Some(n)) => {
                    let _ = writeln!(
                        x,
                        "      <dir>{}</dir>\n      <file>{}</file>\n      <line>{n}</line>",
                        esc(d),
                        esc(name)
                    );
                }
                (None, Some(n)) => {
                    let _ = writeln!(
                        x,
                        "      <file>{}</file>\n      <line>{n}</line>",
                        esc(name)
                    );
                }
                (_, None) => {
                    let _ = writeln!(x, "      <file>{}</file>", esc(file));
                }
            }
        }
        x.push_str("    </frame>\n");
    }
    x.push_str("  </stack>\n");
}

/// Valgrind's first line of an error.
fn what(e: &ErrorReport, kind: &str) -> String {
    let size = e
        .access_size
        .map(|n| format!(" of size {n}"))
        .unwrap_or_default();
    match kind {
        "InvalidRead" => format!("Invalid read{size}"),
        "InvalidWrite" => format!("Invalid write{size}"),
        "InvalidJump" => "Jump to the invalid address stated on the next line".to_string(),
        "InvalidFree" => "Invalid free() / delete / delete[] / realloc()".to_string(),
        "MismatchedFree" => "Mismatched free() / delete / delete []".to_string(),
        _ => e.description.clone(),
    }
}

fn error(x: &mut String, unique: u64, e: &ErrorReport) {
    let k = kind(e);
    // Valgrind's words, then memcheck's own (where the block was, when its damage was found) in
    // the one <what>: readers take a second <what> badly (valgrind-codequality fails on it).
    let mut first = what(e, k);
    if !e.description.is_empty() && e.description != first {
        first = format!("{first}: {}", e.description);
    }
    let _ = writeln!(
        x,
        "<error>\n  <unique>0x{unique:x}</unique>\n  <tid>{}</tid>\n  <kind>{k}</kind>\n  <what>{}</what>",
        e.thread,
        esc(&first)
    );
    stack(x, &e.stack);
    match &e.block {
        Some(b) => {
            // A use after free or a double free is of a freed block even when its free stack was
            // not kept (--keep-stacktraces=alloc or none): Valgrind then says free'd, with no
            // stack.
            let freed =
                !e.free_stack.is_empty() || matches!(e.kind, "use-after-free" | "double-free");
            let size = b.size;
            let rel = if b.offset < 0 {
                format!("{} bytes before", b.offset.unsigned_abs())
            } else if b.offset as u64 >= size {
                format!("{} bytes after", b.offset as u64 - size)
            } else {
                format!("{} bytes inside", b.offset)
            };
            let _ = writeln!(
                x,
                "  <auxwhat>Address 0x{:x} is {rel} a block of size {size} {}</auxwhat>",
                e.address,
                if freed { "free'd" } else { "alloc'd" }
            );
            if freed {
                stack(x, &e.free_stack);
                if !e.alloc_stack.is_empty() {
                    x.push_str("  <auxwhat>Block was alloc'd at</auxwhat>\n");
                    stack(x, &e.alloc_stack);
                }
            } else if !e.alloc_stack.is_empty() {
                stack(x, &e.alloc_stack);
            }
        }
        None if matches!(
            k,
            "InvalidRead" | "InvalidWrite" | "InvalidJump" | "InvalidFree"
        ) =>
        {
            let _ = writeln!(
                x,
                "  <auxwhat>Address 0x{:x} is not stack'd, malloc'd or (recently) free'd</auxwhat>",
                e.address
            );
        }
        None => {}
    }
    if let Some(s) = &e.suppression {
        suppression(x, s);
    }
    x.push_str("</error>\n\n");
}

fn leak(x: &mut String, unique: u64, tid: u32, l: &LeakReport, n: usize, of: usize) {
    let _ = writeln!(
        x,
        "<error>\n  <unique>0x{unique:x}</unique>\n  <tid>{tid}</tid>\n  <kind>{}</kind>\n  <xwhat>\n    <text>{} in loss record {n} of {of}</text>\n    <leakedbytes>{}</leakedbytes>\n    <leakedblocks>{}</leakedblocks>\n  </xwhat>",
        leak_kind(l.kind),
        esc(&super::text::leak_first_line(l)),
        l.bytes,
        l.blocks
    );
    stack(x, &l.stack);
    if let Some(s) = &l.suppression {
        suppression(x, s);
    }
    x.push_str("</error>\n\n");
}

/// Valgrind's `<fatal_signal>` for a crash, after the errors of the run as Valgrind writes it.
fn fatal_signal(x: &mut String, e: &ErrorReport) {
    let (signo, name) = match e.description.split_whitespace().next() {
        Some("SEGV") => (libc::SIGSEGV, "SIGSEGV"),
        Some("SIGBUS") => (libc::SIGBUS, "SIGBUS"),
        Some("SIGFPE") => (libc::SIGFPE, "SIGFPE"),
        Some("SIGILL") => (libc::SIGILL, "SIGILL"),
        _ => return,
    };
    let _ = writeln!(
        x,
        "<fatal_signal>\n  <tid>{}</tid>\n  <signo>{signo}</signo>\n  <signame>{name}</signame>\n  <event>{}</event>\n  <siaddr>0x{:x}</siaddr>",
        e.thread,
        esc(&e.description),
        e.address
    );
    stack(x, &e.stack);
    x.push_str("</fatal_signal>\n\n");
}

/// A generated suppression in Valgrind's form (`{ name, Memcheck:KIND, fun:..., }`) as the
/// protocol's SUPPRESSION; an lsan line is given as its raw text only.
fn suppression(x: &mut String, s: &str) {
    x.push_str("  <suppression>\n");
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| *l != "{" && *l != "}")
        .collect();
    if s.trim_start().starts_with('{') && lines.len() >= 2 {
        let _ = writeln!(x, "    <sname>{}</sname>", esc(lines[0]));
        let _ = writeln!(x, "    <skind>{}</skind>", esc(lines[1]));
        let mut aux = true;
        for l in &lines[2..] {
            if let Some(f) = l.strip_prefix("fun:") {
                let _ = writeln!(x, "    <sframe> <fun>{}</fun> </sframe>", esc(f));
            } else if let Some(o) = l.strip_prefix("obj:") {
                let _ = writeln!(x, "    <sframe> <obj>{}</obj> </sframe>", esc(o));
            } else if *l != "..." && aux {
                let _ = writeln!(x, "    <skaux>{}</skaux>", esc(l));
                aux = false;
            }
        }
    }
    let _ = writeln!(
        x,
        "    <rawtext>\n<![CDATA[\n{}\n]]>\n    </rawtext>\n  </suppression>",
        s.replace("]]>", "]]]]><![CDATA[>")
    );
}

/// XML 1.0 content (not an attribute).
fn esc(s: &str) -> String {
    super::xml::escape(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Exit, LeakSummary, Severity, Tool};

    fn frame(f: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            address: 0x1234,
            function: Some(f.into()),
            file: file.map(Into::into),
            line,
            object: Some("/bin/p".into()),
            inlined: false,
        }
    }

    fn err(kind: &'static str, access: Option<&'static str>) -> ErrorReport {
        ErrorReport {
            kind,
            severity: Severity::Error,
            address: 0x10,
            access,
            access_size: Some(1),
            thread: 9,
            description: String::new(),
            function: None,
            overlap: None,
            block: None,
            stack: vec![
                frame("f", Some("/src/a.c"), Some(3)),
                frame("main", Some("a.c"), Some(9)),
                frame("_start", None, None),
            ],
            alloc_stack: vec![],
            free_stack: vec![],
            fingerprint: String::new(),
            count: 2,
            suppression: None,
            known: false,
        }
    }

    #[test]
    fn kinds_map_to_the_names_valgrind_writes() {
        assert_eq!(
            kind(&err("heap-buffer-overflow", Some("read"))),
            "InvalidRead"
        );
        assert_eq!(kind(&err("use-after-free", Some("write"))), "InvalidWrite");
        assert_eq!(kind(&err("heap-buffer-overflow", None)), "InvalidWrite");
        assert_eq!(kind(&err("double-free", None)), "InvalidFree");
        assert_eq!(kind(&err("invalid-realloc", None)), "InvalidFree");
        assert_eq!(kind(&err("alloc-dealloc-mismatch", None)), "MismatchedFree");
        assert_eq!(kind(&err("calloc-overflow", None)), "FishyValue");
        let mut c = err("crash", Some("write"));
        c.description = "SEGV on unknown address 0x10".into();
        assert_eq!(kind(&c), "InvalidWrite");
        c.access = None;
        c.stack[0].address = 0x10;
        assert_eq!(kind(&c), "InvalidJump");
        c.description = "SIGFPE at 0x10: integer divide by zero".into();
        assert_eq!(kind(&c), "ClientCheck");
        assert_eq!(leak_kind("indirect"), "Leak_IndirectlyLost");
        assert_eq!(leak_kind("reachable"), "Leak_StillReachable");
    }

    #[test]
    fn a_document_has_the_protocol_parts_in_order() {
        let mut e = err("invalid-free", None);
        e.access_size = None;
        let r = Report {
            version: 1,
            tool: Tool {
                name: "memcheck",
                version: "9.9",
            },
            leak_check: "full",
            processes: vec![ProcessReport {
                pid: 5,
                ppid: 1,
                command: "./p <x>".into(),
                argv: vec!["./p".into(), "<x>".into()],
                exe: "/bin/p".into(),
                exit: Some(Exit::Code(0)),
                errors: vec![e],
                leaks: vec![LeakReport {
                    kind: "definite",
                    bytes: 40,
                    blocks: 1,
                    stack: vec![frame("g", None, None)],
                    fingerprint: String::new(),
                    suppression: None,
                    known: false,
                }],
                leak_summary: Some(LeakSummary::default()),
                truncated: false,
                incomplete: false,
                notes: vec![],
                error_summary: Default::default(),
                failed: true,
                failure: None,
                snapshots: Vec::new(),
            }],
            notes: vec![],
            suppressions_used: vec![],
            suppressions_unused: None,
            baseline: None,
        };
        assert!(render(&r, 6).is_none());
        let x = render(&r, 5).unwrap();
        let order = [
            "<?xml version=\"1.0\"?>",
            "<protocolversion>4</protocolversion>",
            "<protocoltool>memcheck</protocoltool>",
            "<line>Command: ./p &lt;x&gt;</line>",
            "<pid>5</pid>",
            "<ppid>1</ppid>",
            "<arg>&lt;x&gt;</arg>",
            "<state>RUNNING</state>",
            "<unique>0x0</unique>\n  <tid>9</tid>\n  <kind>InvalidFree</kind>",
            "<dir>/src</dir>\n      <file>a.c</file>\n      <line>3</line>",
            "<file>a.c</file>\n      <line>9</line>",
            "is not stack'd, malloc'd or (recently) free'd",
            "<state>FINISHED</state>",
            "<kind>Leak_DefinitelyLost</kind>",
            "<text>40 bytes in 1 blocks are definitely lost in loss record 1 of 1</text>",
            "<leakedbytes>40</leakedbytes>",
            "<count>2</count>\n    <unique>0x0</unique>",
            "<suppcounts>",
            "</valgrindoutput>",
        ];
        let mut at = 0;
        for o in order {
            let i = x[at..]
                .find(o)
                .unwrap_or_else(|| panic!("{o} missing after {at}:\n{x}"));
            at += i + o.len();
        }
        // Frames below main are start-up code, not shown; a stack keeps two frames.
        assert!(!x.contains("_start"));
        assert_eq!(visible(&r.processes[0].errors[0].stack[1..]).len(), 2);
    }

    #[test]
    fn suppressions_become_the_protocols_element() {
        let mut x = String::new();
        suppression(
            &mut x,
            "{\n   leak in f\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:f\n   obj:/bin/p\n   ...\n}",
        );
        assert!(x.contains("<sname>leak in f</sname>"));
        assert!(x.contains("<skind>Memcheck:Leak</skind>"));
        assert!(x.contains("<skaux>match-leak-kinds: definite</skaux>"));
        assert!(x.contains("<sframe> <fun>f</fun> </sframe>"));
        assert!(x.contains("<sframe> <obj>/bin/p</obj> </sframe>"));
        assert!(x.contains("<rawtext>\n<![CDATA[\n{\n"));
    }
}
