//! `memcheck leaks PID`: a leak check of a process running under `memcheck run`, now, while it
//! goes on. The process's memcheck library pauses its threads for the scan and writes the exit
//! report's records (`proc/live.rs` asks and waits); they are symbolized and rendered as
//! `memcheck run` renders its report. `--since-last` keeps only what is new or grew since the
//! previous check, whose leaks (fingerprint, blocks, bytes) are kept in the run directory.
use crate::cli::{ColorChoice, LeaksArgs, ReportFormat};
use crate::proc::live::{self, Target};
use crate::report::{self, LeakReport, Report, Tool};
use crate::style::{self, Painter};
use crate::suppress::Suppressions;
use crate::symbolize::Symbolizer;
use crate::{output, records};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What one check found, kept for the next `--since-last`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Previous {
    /// Unix time of the check, in seconds.
    at: u64,
    /// Blocks and bytes per leak fingerprint.
    leaks: HashMap<String, (u64, u64)>,
}

fn load_previous(t: &Target) -> Option<Previous> {
    let text = std::fs::read_to_string(t.with(memcheck_wire::live::LAST_SUFFIX)).ok()?;
    serde_json::from_str(&text).ok()
}

fn save_previous(t: &Target, leaks: &[LeakReport]) -> Result<()> {
    let mut p = Previous {
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        leaks: HashMap::new(),
    };
    for l in leaks {
        let e = p.leaks.entry(l.fingerprint.clone()).or_default();
        e.0 += l.blocks;
        e.1 += l.bytes;
    }
    let path = t.with(memcheck_wire::live::LAST_SUFFIX);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, serde_json::to_string(&p)?.as_bytes())?;
    tmp.persist(&path)?;
    Ok(())
}

/// The leaks of `now` that are new or grew since `before`, each with what it gained.
fn increased(now: Vec<LeakReport>, before: &Previous) -> (Vec<LeakReport>, usize) {
    let mut shown = Vec::new();
    let mut same = 0;
    for mut l in now {
        let (blocks, bytes) = before.leaks.get(&l.fingerprint).copied().unwrap_or((0, 0));
        if l.blocks > blocks || l.bytes > bytes {
            l.blocks = l.blocks.saturating_sub(blocks);
            l.bytes = l.bytes.saturating_sub(bytes);
            shown.push(l);
        } else {
            same += 1;
        }
    }
    (shown, same)
}

pub fn run(a: &LeaksArgs, color: ColorChoice) -> Result<i32> {
    // Every output is checked before the process is asked.
    let sink = match &a.output {
        Some(p) => output::check(p).map_err(crate::exit::usage)?,
        None => output::Sink::Stdout,
    };
    let mut files = vec![(a.format, sink)];
    for r in &a.reports {
        let s = output::check(&r.path).map_err(|e| {
            crate::exit::UsageError(format!(
                "--report {}={}: {e:#}",
                r.format.name(),
                r.path.display()
            ))
        })?;
        files.push((r.format, s));
    }
    let suppressions =
        Suppressions::load(&a.suppressions, a.default_suppressions).map_err(crate::exit::usage)?;

    let target = live::find(a.pid)?;
    let answer = live::ask(&target, Duration::from_secs(a.timeout))?;
    let mut recs = records::parse(&answer.bytes, &answer.path)?;
    let mut notes = Vec::new();
    recs.notes.retain(|n| match live::pause_of(n) {
        Some((threads, pause, unpaused)) => {
            let mut note = format!(
                "live check: {threads} thread{} paused for {:.1} ms",
                if threads == 1 { "" } else { "s" },
                pause.as_secs_f64() * 1000.0
            );
            if unpaused > 0 {
                note.push_str(&format!(
                    "; {unpaused} thread{} could not be paused (blocking signal {}, or no answer): their stacks were scanned whole, their registers not, and they ran on during the scan",
                    if unpaused == 1 { "" } else { "s" },
                    memcheck_wire::live::SIGNAL
                ));
            }
            notes.push(note);
            false
        }
        None => true,
    });

    let opts = report::Options {
        show: a.show_leak_kinds,
        errors_for: a.show_leak_kinds,
        warnings_as_errors: false,
        mismatched_frees: true,
        suppressions: &suppressions,
        gen: None,
    };
    let mut sym = Symbolizer::new();
    let mut proc = report::process_report(&recs, None, &mut sym, &opts);
    proc.notes.splice(0..0, notes);
    let previous = load_previous(&target);
    let all = proc.leaks.clone();
    if a.since_last {
        match &previous {
            Some(before) => {
                let (shown, same) = increased(std::mem::take(&mut proc.leaks), before);
                proc.leaks = shown;
                let ago = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    .saturating_sub(before.at);
                proc.notes.push(format!(
                    "--since-last: only leaks new or grown since the previous check ({ago} s ago), with the blocks and bytes added since; {same} unchanged not shown; the LEAK SUMMARY is the whole of now"
                ));
            }
            None => proc.notes.push(
                "--since-last: no previous check of this process, so every leak is shown; the next --since-last shows what grows from here".into(),
            ),
        }
    }
    save_previous(&target, &all)?;

    let report = Report {
        version: report::REPORT_VERSION,
        tool: Tool {
            name: "memcheck",
            version: env!("CARGO_PKG_VERSION"),
        },
        leak_check: "full",
        processes: vec![proc],
        notes: Vec::new(),
        suppressions_used: suppressions.used(),
        suppressions_unused: None,
    };
    let source_root = a.source_root.clone().unwrap_or_else(|| ".".into());
    let mut written: Result<()> = Ok(());
    for (format, sink) in &files {
        let on = *format == ReportFormat::Text
            && matches!(sink, output::Sink::Stdout)
            && style::stdout_color(color);
        let painter = Painter { on };
        let how = report::Render {
            painter: &painter,
            source_root: &source_root,
        };
        let w = output::write(sink, &report::render(&report, *format, &how));
        if written.is_ok() {
            written = w;
        }
    }
    written?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(fp: &str, blocks: u64, bytes: u64) -> LeakReport {
        LeakReport {
            kind: "definite",
            bytes,
            blocks,
            stack: Vec::new(),
            fingerprint: fp.into(),
            suppression: None,
        }
    }

    #[test]
    fn only_new_and_grown_leaks_remain_with_what_they_gained() {
        let mut before = Previous::default();
        before.leaks.insert("a".into(), (2, 64));
        before.leaks.insert("b".into(), (1, 8));
        let (shown, same) = increased(
            vec![leak("a", 5, 160), leak("b", 1, 8), leak("c", 1, 4)],
            &before,
        );
        assert_eq!(same, 1);
        let got: Vec<(&str, u64, u64)> = shown
            .iter()
            .map(|l| (l.fingerprint.as_str(), l.blocks, l.bytes))
            .collect();
        assert_eq!(got, [("a", 3, 96), ("c", 1, 4)]);
    }
}
