//! `memcheck leaks PID`: a leak check of a process running under `memcheck run`, now, while it
//! goes on. The process's memcheck library pauses its threads for the scan and writes the exit
//! report's records (`proc/live.rs` asks and waits); they are symbolized and rendered as
//! `memcheck run` renders its report. `--since-last` keeps only what is new or grew since the
//! previous check, whose leaks (fingerprint, blocks, bytes) are kept in the run directory.
use crate::cli::{ColorChoice, LeaksArgs, ReportFormat};
use crate::proc::live::{self, Target};
use crate::report::sites::{self, Site};
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
        let s = output::check_for(&format!("--report {}=", r.format.name()), &r.path)
            .map_err(crate::exit::usage)?;
        files.push((r.format, s));
    }
    let suppressions =
        Suppressions::load(&a.suppressions, a.default_suppressions).map_err(crate::exit::usage)?;
    let graph = a
        .flamegraph
        .as_deref()
        .map(|p| output::check_for("--flamegraph ", p).map_err(crate::exit::usage))
        .transpose()?;

    let target = live::find(a.pid)?;
    let answer = live::ask(
        &target,
        live::Question::Leaks,
        Duration::from_secs(a.timeout),
    )?;
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
        progress: &report::progress::Progress::none(),
        baseline: None,
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
        baseline: None,
    };
    let source_root = a.source_root.clone().unwrap_or_else(|| ".".into());
    let mut written: Result<()> = Ok(());
    if let Some(sink) = &graph {
        let p = &report.processes[0];
        written = output::write(
            sink,
            &report::flamegraph::svg(
                &format!(
                    "memcheck leaks {} ({}): {}leaked bytes by allocation stack",
                    p.pid,
                    p.command,
                    if a.since_last { "new " } else { "" }
                ),
                p.leaks.iter().map(|l| (l.stack.as_slice(), l.bytes)),
            )?,
        );
    }
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

/// `memcheck stats PID --sites` (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct SitesReport {
    /// The format version of this JSON (see `docs/stats.md`).
    pub version: u32,
    pub pid: i32,
    pub command: String,
    pub sort: &'static str,
    pub live_bytes: u64,
    pub live_blocks: u64,
    /// How many sites there are in all (`sites` holds the top ones): those with live blocks,
    /// and with `--sort allocs` also those whose blocks are all freed.
    pub total_sites: usize,
    pub sites: Vec<Site>,
}

fn sort_of(a: &crate::cli::StatsArgs) -> sites::Sort {
    match a.sort {
        crate::cli::SitesSort::Bytes => sites::Sort::Bytes,
        crate::cli::SitesSort::Blocks => sites::Sort::Blocks,
        crate::cli::SitesSort::Allocs => sites::Sort::Allocs,
    }
}

fn sites_report(
    target: &Target,
    a: &crate::cli::StatsArgs,
    sym: &mut Symbolizer,
    before: Option<&sites::Sizes>,
    graph: Option<&output::Sink>,
) -> Result<(SitesReport, sites::Sizes)> {
    let answer = live::ask(target, live::Question::Sites, Duration::from_secs(30))?;
    let recs = records::parse(&answer.bytes, &answer.path)?;
    let all = sites::from_records(&recs, sym);
    let now = sites::sizes(&all.sites);
    let by = sort_of(a);
    // Sites whose blocks are all freed matter only to the count of calls.
    let mut list: Vec<Site> = all
        .sites
        .into_iter()
        .filter(|s| s.blocks > 0 || by == sites::Sort::Allocs)
        .collect();
    if let Some(before) = before {
        sites::set_growth(&mut list, before);
    }
    sites::sort(&mut list, by);
    let total_sites = list.len();
    if let Some(sink) = graph {
        output::write(
            sink,
            &report::flamegraph::svg(
                &format!(
                    "memcheck stats --sites {} ({}): live bytes by allocation stack",
                    target.pid,
                    crate::proc::process::command_line(target.pid)
                ),
                list.iter().map(|s| (s.stack.as_slice(), s.bytes)),
            )?,
        )?;
    }
    list.truncate(a.top as usize);
    Ok((
        SitesReport {
            version: super::inspect::JSON_VERSION,
            pid: target.pid,
            command: crate::proc::process::command_line(target.pid),
            sort: by.name(),
            live_bytes: all.live_bytes,
            live_blocks: all.live_blocks,
            total_sites,
            sites: list,
        },
        now,
    ))
}

fn sites_text(r: &SitesReport, p: &Painter) -> String {
    let mut o = format!(
        "{}\n",
        p.bold(&format!(
            "pid {} ({}): {} live in {} blocks; top {} of {} allocation sites by {}",
            r.pid,
            r.command,
            crate::units::bytes(r.live_bytes),
            r.live_blocks,
            r.sites.len(),
            r.total_sites,
            r.sort
        ))
    );
    o.push_str(&sites::table(&r.sites, "", &Painter { on: false }));
    o
}

/// `memcheck stats PID --sites`: the live blocks of a process under memcheck by allocation stack,
/// largest first; with `--watch`, every interval again with each site's growth.
pub fn sites(a: &crate::cli::StatsArgs, color: ColorChoice) -> Result<i32> {
    use crate::cli::Format;
    use std::io::Write as _;
    let graph = a
        .flamegraph
        .as_deref()
        .map(|p| output::check_for("--flamegraph ", p).map_err(crate::exit::usage))
        .transpose()?;
    let target = live::find(a.pid)?;
    let painter = Painter {
        on: style::stdout_color(color),
    };
    let mut sym = Symbolizer::new();
    let (first, mut before) = sites_report(&target, a, &mut sym, None, graph.as_ref())?;
    let show = |r: &SitesReport, watching: bool| -> Result<bool> {
        let text = match (a.format, watching) {
            (Format::Json, false) => serde_json::to_string_pretty(r)? + "\n",
            (Format::Json, true) => serde_json::to_string(r)? + "\n",
            (Format::Text, _) => sites_text(r, &painter) + if watching { "\n" } else { "" },
        };
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
        }
    };
    let Some(secs) = a.watch else {
        show(&first, false)?;
        return Ok(0);
    };
    if !show(&first, true)? {
        return Ok(0);
    }
    let interval = Duration::from_secs_f64(secs.max(0.1));
    loop {
        std::thread::sleep(interval);
        let (r, now) = match sites_report(&target, a, &mut sym, Some(&before), graph.as_ref()) {
            Ok(x) => x,
            Err(_) if !crate::proc::process::exists(target.pid) => {
                eprintln!("memcheck: process {} has exited", target.pid);
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        before = now;
        if !show(&r, true)? {
            return Ok(0);
        }
    }
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
            known: false,
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
