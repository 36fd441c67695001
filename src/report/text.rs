//! The human report: each error with its stacks, each listed leak, and a summary like Valgrind's,
//! every line prefixed `==PID==` so interleaved output stays attributable.
use super::{ErrorReport, LeakReport, ProcessReport, Report};
use crate::style::Painter;
use crate::suppress::Used;
use crate::symbolize::Frame;
use std::fmt::Write;

fn frame_line(f: &Frame) -> String {
    let func = f.function.as_deref().unwrap_or("???");
    let loc = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("({file}:{line})"),
        (Some(file), None) => format!("({file})"),
        _ => match &f.object {
            Some(o) => format!("(in {o})"),
            None => String::new(),
        },
    };
    let inl = if f.inlined { " [inlined]" } else { "" };
    format!("{:#x}: {func} {loc}{inl}", f.address)
}

/// Frames up to and including `main`; what lies below it is libc start-up.
fn visible(stack: &[Frame]) -> &[Frame] {
    match stack
        .iter()
        .position(|f| f.function.as_deref() == Some("main"))
    {
        Some(i) => &stack[..=i],
        None => stack,
    }
}

fn stack(out: &mut String, pre: &str, title: &str, frames: &[Frame], p: &Painter) {
    if frames.is_empty() {
        return;
    }
    if !title.is_empty() {
        let _ = writeln!(out, "{pre} {}", p.bold(title));
    }
    for (i, f) in visible(frames).iter().enumerate() {
        let word = if i == 0 { "at" } else { "by" };
        let _ = writeln!(out, "{pre}    {word} {}", frame_line(f));
    }
}

/// What an error's first line says after its kind: `write of 1 bytes at 0x... (thread N)`.
fn error_what(e: &ErrorReport) -> String {
    let mut what = String::new();
    if let Some(a) = e.access {
        let _ = write!(what, "{a} ");
        if let Some(n) = e.access_size {
            let _ = write!(what, "of {n} bytes ");
        }
        let _ = write!(what, "at {:#x}", e.address);
    } else if e.address != 0 {
        let _ = write!(what, "at {:#x}", e.address);
    }
    if let Some(f) = e.function {
        let _ = write!(what, " in {f}");
    }
    format!("{what} (thread {})", e.thread)
}

fn error_word(e: &ErrorReport) -> &'static str {
    if e.severity == super::Severity::Warning {
        "warning"
    } else {
        "error"
    }
}

/// The first line of an error in the text report, without the `==PID==` prefix and colour
/// (SARIF's message).
pub fn error_first_line(e: &ErrorReport) -> String {
    format!("{}: {} {}", error_word(e), e.kind, error_what(e))
}

/// The first line of a leak in the text report, without the `==PID==` prefix and colour.
pub fn leak_first_line(l: &LeakReport) -> String {
    let word = match l.kind {
        "definite" => "definitely lost",
        "indirect" => "indirectly lost",
        "possible" => "possibly lost",
        _ => "still reachable",
    };
    format!("{} bytes in {} blocks are {word}", l.bytes, l.blocks)
}

fn error(out: &mut String, pre: &str, e: &ErrorReport, p: &Painter) {
    let head = format!("{}: {}", error_word(e), e.kind);
    let head = if e.severity == super::Severity::Warning {
        p.yellow(&head)
    } else {
        p.red(&head)
    };
    let _ = writeln!(out, "{pre} {head} {}", error_what(e));
    if !e.description.is_empty() {
        let _ = writeln!(out, "{pre}   {}", e.description);
    }
    if e.count > 1 {
        let _ = writeln!(
            out,
            "{pre}   {} times from this stack; the first is shown",
            e.count
        );
    }
    known(out, pre, e.known, p);
    stack(out, pre, "", &e.stack, p);
    if let Some(b) = &e.block {
        stack(
            out,
            pre,
            &format!(
                " block {:#x} of {} bytes allocated by {}:",
                b.address, b.size, b.allocated_by
            ),
            &e.alloc_stack,
            p,
        );
    }
    stack(out, pre, " freed by:", &e.free_stack, p);
    suppression(out, e.suppression.as_deref());
    let _ = writeln!(out, "{pre}");
}

/// The mark of a finding the `--baseline` has.
fn known(out: &mut String, pre: &str, known: bool, p: &Painter) {
    if known {
        let _ = writeln!(
            out,
            "{pre}   {}",
            p.dim("known: in the baseline, does not fail the run")
        );
    }
}

/// The end of a run's report with `--baseline`: how many findings it knew, then each new finding
/// and each entry that disappeared, by kind and functions.
fn baseline(pid: u32, b: &super::baseline::Use, p: &Painter) -> String {
    let pre = p.dim(&format!("=={pid}=="));
    let mut out = String::new();
    let line = format!(
        "baseline {}: {} known, {} new, {} disappeared",
        b.file,
        b.known,
        b.new.len(),
        b.disappeared.len()
    );
    let line = if b.new.is_empty() {
        p.green(&line)
    } else {
        p.red(&line)
    };
    let _ = writeln!(out, "{pre} {}", p.bold(&line));
    for (word, list) in [("new", &b.new), ("disappeared", &b.disappeared)] {
        for e in list {
            let _ = writeln!(
                out,
                "{pre}   {word}: {} in {}",
                e.kind,
                e.functions.join(" <- ")
            );
        }
    }
    out
}

/// A generated suppression, unprefixed so it can be pasted into a file as it is.
fn suppression(out: &mut String, s: Option<&str>) {
    if let Some(s) = s {
        let _ = writeln!(out, "{s}");
    }
}

fn leak(out: &mut String, pre: &str, l: &LeakReport, p: &Painter) {
    let line = leak_first_line(l);
    let line = if l.kind == "definite" || l.kind == "indirect" {
        p.red(&line)
    } else {
        p.bold(&line)
    };
    let _ = writeln!(out, "{pre} {line}");
    known(out, pre, l.known, p);
    stack(out, pre, "", &l.stack, p);
    suppression(out, l.suppression.as_deref());
    let _ = writeln!(out, "{pre}");
}

/// Renders one process's part of the report. `listed` says whether leaks were listed one by one.
pub fn render(r: &ProcessReport, p: &Painter, listed: bool) -> String {
    render_process(r, p, listed, None)
}

/// One process's part; `quiet` (`-q`) holds whether a later image of the same pid is in the
/// report (the process exec'd a program that was checked too), and leaves out what is not a
/// finding: the first line, the LEAK SUMMARY, a note that the exec'd image makes moot, and the
/// ERROR SUMMARY when it counts nothing.
fn render_process(r: &ProcessReport, p: &Painter, listed: bool, quiet: Option<bool>) -> String {
    let pre = p.dim(&format!("=={}==", r.pid));
    let mut out = String::new();
    if quiet.is_none() {
        let _ = writeln!(
            out,
            "{pre} memcheck: {}",
            p.bold(&r.command.escape_debug().to_string())
        );
    }
    for s in &r.snapshots {
        out.push_str(&super::sites::snapshot_text(
            s,
            r.pid,
            &format!("{pre} "),
            p,
        ));
    }
    for e in &r.errors {
        error(&mut out, &pre, e, p);
    }
    if listed {
        for l in &r.leaks {
            leak(&mut out, &pre, l, p);
        }
    }
    if let Some(s) = r.leak_summary.as_ref().filter(|_| quiet.is_none()) {
        let _ = writeln!(out, "{pre} {}", p.bold("LEAK SUMMARY:"));
        for (name, a) in [
            ("definitely lost", s.definite),
            ("indirectly lost", s.indirect),
            ("  possibly lost", s.possible),
            ("still reachable", s.reachable),
            ("     suppressed", s.suppressed),
        ] {
            let _ = writeln!(
                out,
                "{pre}    {name}: {} bytes in {} blocks",
                a.bytes, a.blocks
            );
        }
        if s.definite.blocks + s.indirect.blocks + s.possible.blocks > 0
            && r.leaks.is_empty()
            && listed
        {
            let _ = writeln!(out, "{pre} (use --show-leak-kinds=all to list every kind)");
        }
    }
    // The exec'd image's report (or the note that it went unchecked) says what this note would.
    let moot = quiet == Some(true)
        || r.notes
            .iter()
            .any(|n| n.ends_with(" not checked: add --trace-children"));
    for n in &r.notes {
        if quiet.is_some() && moot && n.starts_with(super::summary::NOTE_NO_LEAK_CHECK) {
            continue;
        }
        let _ = writeln!(out, "{pre} note: {n}");
    }
    if r.incomplete {
        let _ = writeln!(
            out,
            "{pre} {}",
            p.red("this report is incomplete: some records are missing (see the note)")
        );
    }
    if r.truncated {
        let _ = writeln!(
            out,
            "{pre} the record ended early: the process died while writing it"
        );
    }
    let e = r.error_summary;
    let warnings = r.warning_count();
    if quiet.is_some() && e.errors == 0 && warnings == 0 {
        return out;
    }
    let known = if e.known_contexts > 0 {
        format!("; known: {} from {}", e.known, e.known_contexts)
    } else {
        String::new()
    };
    let summary = format!(
        "ERROR SUMMARY: {} errors from {} contexts (suppressed: {} from {}{known}), {warnings} warnings",
        e.errors, e.contexts, e.suppressed, e.suppressed_contexts
    );
    let summary = if e.errors > 0 {
        p.red(&summary)
    } else {
        p.green(&summary)
    };
    let _ = writeln!(out, "{pre} {summary}");
    out
}

/// The end of a run's report: the suppressions used with their hits (as LeakSanitizer's table),
/// and with `--list-unused-suppressions` those of the user's files that matched nothing. Lines
/// carry the `==PID==` prefix of the checked program `pid`, as the rest of the report.
fn suppressions(pid: u32, used: &[Used], unused: Option<&[Used]>, p: &Painter) -> String {
    let pre = p.dim(&format!("=={pid}=="));
    let mut out = String::new();
    if !used.is_empty() {
        let _ = writeln!(out, "{pre} {}", p.bold("Suppressions used:"));
        let _ = writeln!(out, "{pre}   count      bytes  suppression");
        for u in used {
            let _ = writeln!(
                out,
                "{pre} {:>7} {:>10}  {} ({}:{})",
                u.count, u.bytes, u.name, u.file, u.line
            );
        }
    }
    for u in unused.unwrap_or_default() {
        let _ = writeln!(
            out,
            "{pre} unused suppression: {} ({}:{})",
            u.name, u.file, u.line
        );
    }
    out
}

/// The whole text report of a run: each process's part, then memcheck's notes about the run.
/// Leaks are listed one by one only after a full leak check (`leak_check` `full`).
pub fn render_run(r: &Report, p: &Painter) -> String {
    render_run_with(r, p, false)
}

/// [`render_run`], or with `quiet` (`-q`, Valgrind's) only the findings: errors, leak records,
/// warnings that a report is incomplete, the ERROR SUMMARY of a process with errors, unused
/// suppressions when asked for, memcheck's notes about the run and the failing processes; no
/// first line per process, LEAK SUMMARY, clean ERROR SUMMARY, "Suppressions used" table or
/// count of the processes checked.
pub fn render_run_with(r: &Report, p: &Painter, quiet: bool) -> String {
    let listed = r.leak_check == "full";
    let mut text = String::new();
    for (i, proc) in r.processes.iter().enumerate() {
        let quiet = quiet.then(|| r.processes[i + 1..].iter().any(|q| q.pid == proc.pid));
        text.push_str(&render_process(proc, p, listed, quiet));
    }
    // Prefixed with the checked program's pid (the first process), as the rest of the report.
    let pid = r.processes.first().map_or(std::process::id(), |p| p.pid);
    let used: &[Used] = if quiet { &[] } else { &r.suppressions_used };
    text.push_str(&suppressions(
        pid,
        used,
        r.suppressions_unused.as_deref(),
        p,
    ));
    if let Some(b) = &r.baseline {
        text.push_str(&baseline(pid, b, p));
    }
    text.push_str(&failing(pid, r, p, quiet));
    for n in &r.notes {
        let _ = writeln!(text, "memcheck: {n}");
    }
    text
}

/// The end of a run that checked several processes: how many, and one line per failing one
/// (pid, command line shortened, what failed). Quiet, the failing lines only.
fn failing(pid: u32, r: &Report, p: &Painter, quiet: bool) -> String {
    let mut pids: Vec<u32> = r.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut out = String::new();
    if pids.len() < 2 {
        return out;
    }
    let pre = p.dim(&format!("=={pid}=="));
    let failed: Vec<&ProcessReport> = r.processes.iter().filter(|p| p.failed).collect();
    let mut failed_pids: Vec<u32> = failed.iter().map(|p| p.pid).collect();
    failed_pids.sort_unstable();
    failed_pids.dedup();
    if failed.is_empty() {
        if !quiet {
            let _ = writeln!(out, "{pre} {} processes checked, none failed", pids.len());
        }
        return out;
    }
    let _ = writeln!(
        out,
        "{pre} {}",
        p.red(&format!(
            "{} processes checked, {} failed:",
            pids.len(),
            failed_pids.len()
        ))
    );
    for f in failed {
        let _ = writeln!(
            out,
            "{pre}   pid {} ({}): {}",
            f.pid,
            super::summary::short_command(&f.command),
            f.failure.as_deref().unwrap_or("failed")
        );
    }
    out
}
