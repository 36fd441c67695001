//! `memcheck report`: render a saved JSON report again in any format (the same bytes `memcheck
//! run` would have written), or `--diff` two of them by fingerprint.
use crate::cli::{ColorChoice, ReportArgs, ReportFormat};
use crate::pagecache::FileError;
use crate::report::{self, Report};
use crate::style::{self, Painter};
use crate::{output, symbolize::Frame};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Reads and parses a JSON report; `-` is standard input. Failures are [`FileError`]s (exit 1).
fn load(path: &Path) -> Result<Report> {
    let shown = path.display().to_string();
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| FileError::Io("standard input".into(), e.to_string()))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound(shown.clone()),
            std::io::ErrorKind::PermissionDenied => FileError::PermissionDenied(shown.clone()),
            _ => FileError::Io(shown.clone(), e.to_string()),
        })?
    };
    Ok(report::load(&text).map_err(|e| FileError::Io(shown, e))?)
}

/// Valgrind's XML document of the process `pid` (the only one's without it): what `--xml-file`
/// wrote for it.
fn xml_document(r: &Report, pid: Option<u32>) -> Result<String> {
    let pids = report::valgrind_xml::pids(r);
    let shown = || {
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pid = match (pid, pids.as_slice()) {
        (Some(p), _) => p,
        (None, [one]) => *one,
        (None, []) => {
            return Err(FileError::Io(
                "the report".into(),
                "it holds no process: there is no document to write".into(),
            )
            .into())
        }
        (None, _) => {
            return Err(crate::exit::UsageError(format!(
                "--format xml writes one process's document and the report has {} (pids {}): choose one with --pid",
                pids.len(),
                shown()
            ))
            .into())
        }
    };
    report::valgrind_xml::render(r, pid).ok_or_else(|| {
        crate::exit::UsageError(format!(
            "--pid {pid}: the report has no such process (pids {})",
            shown()
        ))
        .into()
    })
}

pub fn run(a: &ReportArgs, color: ColorChoice) -> Result<i32> {
    if a.pid.is_some() && a.format != ReportFormat::Xml {
        return Err(crate::exit::UsageError(
            "--pid chooses the process of --format xml: add --format xml or drop --pid".into(),
        )
        .into());
    }
    let sink = match &a.output {
        Some(p) => output::check(p).map_err(crate::exit::usage)?,
        None => output::Sink::Stdout,
    };
    let root = a.source_root.clone().unwrap_or_else(|| ".".into());
    // Colour only for text on a terminal; a file gets what `memcheck run` writes to one.
    let painter = Painter {
        on: sink == output::Sink::Stdout && style::stdout_color(color),
    };
    if let Some(d) = &a.diff {
        if !matches!(a.format, ReportFormat::Text | ReportFormat::Json) {
            return Err(crate::exit::UsageError(format!(
                "--diff writes text or json, not {}: drop --format or use --format json",
                a.format.name()
            ))
            .into());
        }
        let (old, new) = (load(&d[0])?, load(&d[1])?);
        let diff = diff(&old, &new, &root);
        let out = match a.format {
            ReportFormat::Json => serde_json::to_string_pretty(&diff).expect("the diff serializes"),
            _ => diff_text(&diff, &painter),
        };
        output::write(&sink, &out)?;
        return Ok(if diff.new.is_empty() { 0 } else { 1 });
    }
    let file = a
        .file
        .as_deref()
        .expect("clap requires FILE without --diff");
    // Read first: a missing or malformed baseline is one line (exit 2), as in `memcheck run`.
    let known = a
        .baseline
        .as_deref()
        .map(report::baseline::Baseline::load)
        .transpose()
        .map_err(crate::exit::UsageError)?;
    let mut r = load(file)?;
    let mut status = 0;
    if let Some(b) = known {
        let m = report::baseline::Matcher::new(Some(b));
        report::baseline::apply(&mut r, &m);
        if r.baseline.as_ref().is_some_and(|u| !u.new.is_empty()) {
            status = 1;
        }
    }
    if a.format == ReportFormat::Xml {
        output::write(&sink, &xml_document(&r, a.pid)?)?;
        return Ok(status);
    }
    let how = report::Render {
        painter: &painter,
        source_root: &root,
    };
    output::write(&sink, &report::render(&r, a.format, &how))?;
    Ok(status)
}

/// One finding as `--diff` lists it.
#[derive(Debug, Serialize)]
pub struct Item {
    pub fingerprint: String,
    /// The SARIF rule id: the error kind, or `leak-KIND`.
    pub rule: String,
    /// The finding's first line in the text report.
    pub message: String,
    pub pid: u32,
    pub command: String,
    /// Where it is located (SARIF's rule): `function`, `file` (relative to --source-root when
    /// under it), `line`; null when no frame has a source file.
    pub location: Option<Location>,
}

#[derive(Debug, Serialize)]
pub struct Location {
    pub function: Option<String>,
    pub file: String,
    pub line: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub version: u32,
    /// In NEW, not in OLD.
    pub new: Vec<Item>,
    /// In OLD, not in NEW.
    pub fixed: Vec<Item>,
}

fn items(r: &Report, root: &Path) -> Vec<Item> {
    let mut out = Vec::new();
    let at = |stacks: &[&[Frame]]| {
        report::sarif::user_frame(stacks, root).map(|(f, file)| Location {
            function: f.function.clone(),
            file,
            line: f.line,
        })
    };
    for p in &r.processes {
        for e in &p.errors {
            out.push(Item {
                fingerprint: e.fingerprint.clone(),
                rule: e.kind.to_string(),
                message: report::text::error_first_line(e),
                pid: p.pid,
                command: p.command.clone(),
                location: at(&[&e.stack, &e.alloc_stack, &e.free_stack]),
            });
        }
        for l in &p.leaks {
            out.push(Item {
                fingerprint: l.fingerprint.clone(),
                rule: report::sarif::leak_rule(l.kind),
                message: report::text::leak_first_line(l),
                pid: p.pid,
                command: p.command.clone(),
                location: at(&[&l.stack]),
            });
        }
    }
    out
}

/// The items of `a` beyond those of `b` with the same fingerprint: a fingerprint found twice in
/// `a` and once in `b` leaves one, the later.
fn beyond(a: Vec<Item>, b: &[Item]) -> Vec<Item> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for i in b {
        *left.entry(i.fingerprint.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for i in a {
        match left.get_mut(i.fingerprint.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(i),
        }
    }
    out
}

/// New and fixed findings between two reports, matched by fingerprint (as a multiset).
pub fn diff(old: &Report, new: &Report, root: &Path) -> Diff {
    let (o, n) = (items(old, root), items(new, root));
    let fixed = beyond(items(old, root), &n);
    let new = beyond(n, &o);
    Diff {
        version: 1,
        new,
        fixed,
    }
}

fn diff_text(d: &Diff, p: &Painter) -> String {
    let mut s = String::new();
    for (word, list) in [("new", &d.new), ("fixed", &d.fixed)] {
        for i in list {
            let word = if word == "new" {
                p.red("new  ")
            } else {
                p.green("fixed")
            };
            let at = match &i.location {
                Some(l) => format!(
                    " at {} ({}{})",
                    l.function.as_deref().unwrap_or("???"),
                    l.file,
                    l.line.map(|n| format!(":{n}")).unwrap_or_default()
                ),
                None => String::new(),
            };
            s.push_str(&format!(
                "{word} {} {}: {}{at} in {}\n",
                i.rule, i.fingerprint, i.message, i.command
            ));
        }
    }
    s.push_str(&format!("{} new, {} fixed\n", d.new.len(), d.fixed.len()));
    s
}
