//! `memcheck run`: start the program with the shim preloaded, wait for it, then read what every
//! process recorded, symbolize, report, and choose the exit status.
use crate::cli::{
    ColorChoice, Fill, GenSuppressions, GuardSide, KeepStacktraces, LeakCheck, OnError,
    ReportFormat, RunArgs, SuppressionFormat,
};
use crate::report::{self, baseline, Exit, Report, Tool};
use crate::style::{self, Painter};
use crate::suppress::{self, Suppressions};
use crate::symbolize::Symbolizer;
use crate::{child, output, preload, records, rundir, snapshot, target};
use anyhow::Result;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

/// The shim's settings for these arguments, encoded for `MEMCHECK_OPTIONS`.
fn shim_options(a: &RunArgs) -> String {
    use memcheck_wire as wire;
    // Fills are passed only when given, so the library can honour MALLOC_PERTURB_ otherwise.
    let fill = |f: Option<Fill>| {
        f.map(|f| match f {
            Fill::Byte(b) => wire::Fill::Byte(b),
            Fill::None => wire::Fill::None,
        })
    };
    wire::ShimOptions {
        leak_check: match a.leak_check {
            LeakCheck::No => wire::LeakCheck::No,
            LeakCheck::Summary => wire::LeakCheck::Summary,
            LeakCheck::Full => wire::LeakCheck::Full,
        },
        depth: a.num_callers,
        redzone: a.redzone_size,
        quarantine: a.quarantine_size,
        trace_children: a.trace_children,
        child_silent: a.child_silent_after_fork,
        abort_on_error: a.on_error == OnError::Abort,
        // --sample-rate and --guard-align imply --guard.
        guard: match a.guard {
            Some(GuardSide::Underflow) => wire::GuardMode::Underflow,
            Some(GuardSide::Both) => wire::GuardMode::Both,
            Some(GuardSide::Overflow) => wire::GuardMode::Overflow,
            None if a.sample_rate.is_some() || a.guard_align.is_some() => wire::GuardMode::Overflow,
            None => wire::GuardMode::Off,
        },
        sample_rate: a.sample_rate.unwrap_or(0),
        malloc_fill: fill(a.malloc_fill),
        free_fill: fill(a.free_fill),
        guard_align: a.guard_align.unwrap_or(0),
        max_allocation_size: a.max_allocation_size,
        check_mem_functions: a.check_mem_functions,
        keep_stacks: match a.keep_stacktraces {
            KeepStacktraces::Alloc => wire::KeepStacks::Alloc,
            KeepStacktraces::Free => wire::KeepStacks::Free,
            KeepStacktraces::AllocAndFree => wire::KeepStacks::AllocAndFree,
            KeepStacktraces::AllocThenFree => wire::KeepStacks::AllocThenFree,
            KeepStacktraces::None => wire::KeepStacks::None,
        },
    }
    .to_string()
}

/// Every file report of the run: `--format`'s to `--output`, then each `--report FORMAT=FILE`,
/// checked before the program runs. Two reports to one path, or two to standard output, are
/// refused.
fn file_reports(
    a: &RunArgs,
    sink: Option<&output::Sink>,
) -> Result<Vec<(ReportFormat, output::Sink)>> {
    let mut files: Vec<(ReportFormat, output::Sink)> = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    if let Some(s) = sink {
        files.push((a.format, s.clone()));
        shown.push(format!(
            "--output {}",
            a.output.as_deref().unwrap_or(Path::new("-")).display()
        ));
    }
    for r in &a.reports {
        let flag = format!("--report {}={}", r.format.name(), r.path.display());
        let s = output::check_for(&format!("--report {}=", r.format.name()), &r.path)
            .map_err(crate::exit::usage)?;
        if let Some(i) = files.iter().position(|(_, o)| same_sink(o, &s)) {
            return Err(crate::exit::UsageError(format!(
                "{flag} and {} write to the same place: give each report its own file",
                shown[i]
            ))
            .into());
        }
        files.push((r.format, s));
        shown.push(flag);
    }
    Ok(files)
}

/// `--write-baseline FILE`, checked as a report's path, and not one of the reports'.
fn baseline_sink(p: &Path, files: &[(ReportFormat, output::Sink)]) -> Result<output::Sink> {
    let shown = format!("--write-baseline {}", p.display());
    let s = output::check_for("--write-baseline ", p).map_err(crate::exit::usage)?;
    if files.iter().any(|(_, o)| same_sink(o, &s)) {
        return Err(crate::exit::UsageError(format!(
            "{shown} names the file of a report: give the baseline its own file"
        ))
        .into());
    }
    Ok(s)
}

/// Two sinks are the same place: both stdout, the same path, or paths of one existing file.
fn same_sink(a: &output::Sink, b: &output::Sink) -> bool {
    use output::Sink::*;
    use std::os::unix::fs::MetadataExt;
    let path = |s: &output::Sink| match s {
        Stdout => None,
        Replace(p) | Into(p) => Some(p.clone()),
    };
    match (path(a), path(b)) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            x == y
                || matches!((std::fs::metadata(&x), std::fs::metadata(&y)),
                    (Ok(m), Ok(n)) if m.dev() == n.dev() && m.ino() == n.ino() && m.is_file())
                || {
                    let dir = |p: &Path| {
                        let d = p.parent().filter(|d| !d.as_os_str().is_empty());
                        std::fs::canonicalize(d.unwrap_or(Path::new("."))).ok()
                    };
                    x.file_name() == y.file_name() && dir(&x).is_some() && dir(&x) == dir(&y)
                }
        }
        _ => false,
    }
}

/// A `--log-file` or `--xml-file` pattern, checked before the program runs: the path it gives
/// (with memcheck's own pid for `%p`) must be able to take a report, as `--output`'s.
struct PatternOutput {
    flag: &'static str,
    pattern: report::logpath::Pattern,
}

impl PatternOutput {
    fn new(flag: &'static str, raw: &str) -> Result<PatternOutput> {
        let usage = |m: String| anyhow::Error::from(crate::exit::UsageError(m));
        if raw == "-" {
            return Err(usage(format!(
                "{flag}=- would mix the report into the program's standard output: name a file (/dev/stdout if you mean it)"
            )));
        }
        let pattern = report::logpath::Pattern::from_env(flag, raw).map_err(usage)?;
        let o = PatternOutput { flag, pattern };
        o.check(&o.pattern.expand(std::process::id()))?;
        Ok(o)
    }

    /// `output::check` of one expansion, its message naming this flag and the pattern.
    fn check(&self, path: &Path) -> Result<output::Sink> {
        output::check(path).map_err(|e| {
            let shown = path.display().to_string();
            let m = format!("{e:#}");
            let m = match m.strip_prefix(&format!("--output {shown}")) {
                Some(rest) => format!("{}={}{rest}", self.flag, self.pattern.raw),
                None => format!(
                    "{}={}: {}",
                    self.flag,
                    self.pattern.raw,
                    m.replace(&shown, &self.pattern.raw)
                ),
            };
            crate::exit::UsageError(m).into()
        })
    }

    /// The sink of a sample expansion, to refuse two outputs at one place.
    fn sample(&self) -> output::Sink {
        output::Sink::Replace(self.pattern.expand(std::process::id()))
    }
}

/// `--xml`/`--xml-file` and `--log-file`, checked before the program runs.
fn pattern_outputs(
    a: &RunArgs,
    files: &[(ReportFormat, output::Sink)],
) -> Result<(Option<PatternOutput>, Option<PatternOutput>)> {
    let usage = |m: &str| anyhow::Error::from(crate::exit::UsageError(m.to_string()));
    let xml = match (a.xml, a.xml_file.as_deref()) {
        (true, None) => {
            return Err(usage(
                "--xml=yes needs a destination: add --xml-file=FILE (%p in FILE for one file per process)",
            ))
        }
        (false, Some(_)) => {
            return Err(usage(
                "--xml-file writes Valgrind's XML only with --xml=yes: add --xml=yes",
            ))
        }
        (true, Some(f)) => Some(PatternOutput::new("--xml-file", f)?),
        (false, None) => None,
    };
    let log = a
        .log_file
        .as_deref()
        .map(|f| PatternOutput::new("--log-file", f))
        .transpose()?;
    if log.is_some() && a.format == ReportFormat::Text && a.output.is_some() {
        return Err(usage(
            "--log-file and --format text --output both take the text report: give one of them",
        ));
    }
    for o in xml.iter().chain(&log) {
        if files.iter().any(|(_, s)| same_sink(s, &o.sample())) {
            return Err(usage(&format!(
                "{}={} writes where another report goes: give each report its own file",
                o.flag, o.pattern.raw
            )));
        }
    }
    if let (Some(x), Some(l)) = (&xml, &log) {
        if same_sink(&x.sample(), &l.sample()) {
            return Err(usage(
                "--xml-file and --log-file write to the same place: give each its own file",
            ));
        }
    }
    Ok((xml, log))
}

/// Writes Valgrind's XML, one document per process: to the pattern's file for its pid, or, without
/// `%p`, the first process's to FILE and each other's to FILE.PID (said on stderr).
fn write_xml(o: &PatternOutput, r: &Report) -> Result<()> {
    let pids = report::valgrind_xml::pids(r);
    let mut moved = Vec::new();
    let mut written: Result<()> = Ok(());
    for (i, &pid) in pids.iter().enumerate() {
        let mut path = o.pattern.expand(pid);
        if !o.pattern.per_process() && i > 0 {
            let mut s = path.into_os_string();
            s.push(format!(".{pid}"));
            path = s.into();
            moved.push(path.display().to_string());
        }
        let doc = report::valgrind_xml::render(r, pid).expect("a pid of the run");
        let w = o.check(&path).and_then(|s| output::write(&s, &doc));
        if written.is_ok() {
            written = w;
        }
    }
    if !moved.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "memcheck: {}={} has no %p: the documents of the run's other processes went to {}",
            o.flag,
            o.pattern.raw,
            moved.join(", ")
        );
    }
    written
}

/// Writes the text report in place of stderr's, without colour and with `-q` as stderr's: with
/// `%p` one file per process (the first also gets the run's suppression table and notes), else
/// one file with every process.
fn write_log(o: &PatternOutput, r: &Report, quiet: bool) -> Result<()> {
    let plain = Painter { on: false };
    if !o.pattern.per_process() {
        let s = o.check(&o.pattern.expand(std::process::id()))?;
        return output::write(&s, &report::text::render_run_with(r, &plain, quiet));
    }
    let mut written: Result<()> = Ok(());
    // One copy of the report, its processes handed out per pid (each cloned once).
    let mut one = r.clone();
    let processes = std::mem::take(&mut one.processes);
    for (i, pid) in report::valgrind_xml::pids(r).into_iter().enumerate() {
        one.processes = processes.iter().filter(|p| p.pid == pid).cloned().collect();
        if i > 0 {
            one.notes.clear();
            one.suppressions_used.clear();
            one.suppressions_unused = None;
        }
        let w = o
            .check(&o.pattern.expand(pid))
            .and_then(|s| output::write(&s, &report::text::render_run_with(&one, &plain, quiet)));
        if written.is_ok() {
            written = w;
        }
    }
    written
}

pub fn run(a: &RunArgs, color: ColorChoice) -> Result<i32> {
    if a.format == ReportFormat::Xml {
        return Err(
            crate::exit::UsageError(format!("--format xml: {}", crate::cli::XML_HINT)).into(),
        );
    }
    if a.format != ReportFormat::Text && a.output.is_none() {
        return Err(crate::exit::UsageError(format!(
            "--format {} needs --output FILE (or --output - for standard output)",
            a.format.name()
        ))
        .into());
    }
    // Checked before the program runs: a report must never be lost for want of a writable path.
    let sink = a
        .output
        .as_deref()
        .map(output::check)
        .transpose()
        .map_err(crate::exit::usage)?;
    let files = file_reports(a, sink.as_ref())?;
    let (xml, log) = pattern_outputs(a, &files)?;
    let graph = a
        .flamegraph
        .as_deref()
        .map(|p| output::check_for("--flamegraph ", p).map_err(crate::exit::usage))
        .transpose()?;
    // Read before the program runs: a malformed file is refused with FILE:LINE.
    let suppressions =
        Suppressions::load(&a.suppressions, a.default_suppressions).map_err(crate::exit::usage)?;
    // The baseline too (a missing or malformed one is one line), and --write-baseline's path is
    // checked as a report's.
    let known = a
        .baseline
        .as_deref()
        .map(baseline::Baseline::load)
        .transpose()
        .map_err(crate::exit::UsageError)?;
    let baseline_sink = match &a.write_baseline {
        Some(p) => Some(baseline_sink(p, &files)?),
        None => None,
    };
    let matcher = baseline::Matcher::new(known);
    let prog = &a.command[0];
    let path = target::resolve(prog)?;
    target::check(&path)?;

    let tmp = std::env::temp_dir();
    rundir::remove_stale(&tmp);
    let dir = rundir::create()?;
    let shim = preload::path(dir.path())?;
    let mut preload = OsString::from(&shim);
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
        preload.push(":");
        preload.push(old);
    }

    let mut cmd = Command::new(&path);
    cmd.arg0(prog)
        .args(&a.command[1..])
        .env("LD_PRELOAD", preload)
        .env(memcheck_wire::ENV_DIR, dir.path())
        .env(memcheck_wire::ENV_OPTIONS, shim_options(a));
    if let Some(skip) = a.trace_children_skip.as_deref().filter(|s| !s.is_empty()) {
        cmd.env(memcheck_wire::ENV_TRACE_SKIP, skip);
    }
    if let Some(skip) = a
        .trace_children_skip_by_arg
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        cmd.env(memcheck_wire::ENV_TRACE_SKIP_BY_ARG, skip);
    }
    // Snapshots go where the text report goes: stderr at once, or the --log-file/--output text.
    let text_to_file = (a.format == ReportFormat::Text && sink.is_some()) || log.is_some();
    let snapshots = (a.snapshot_interval.is_some() || a.snapshot_signal.is_some())
        .then(|| {
            snapshot::start(snapshot::Setup {
                run_dir: dir.path().to_path_buf(),
                interval: a.snapshot_interval,
                signal: a.snapshot_signal,
                flamegraph: a.flamegraph.clone(),
                to_stderr: !text_to_file,
                color: !text_to_file && style::stderr_color(color),
            })
        })
        .transpose()?;
    let (status, child_pid) = child::spawn_and_wait(&mut cmd, &path)?;
    let missing = child::wait_for_late_processes(&shim);
    let mut taken = snapshots
        .map(snapshot::Snapshots::finish)
        .unwrap_or_default();

    let exit = match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        _ => Exit::Code(0),
    };

    let procs = records::read_dir(dir.path())?;
    let last_of_child = procs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.pid == child_pid)
        .map(|(i, _)| i)
        .next_back();
    // On a terminal, a bar while the findings are symbolized (tens of thousands take seconds).
    let steps = procs
        .iter()
        .map(|p| p.errors.len() + p.leaks.len())
        .sum::<usize>();
    let progress = report::progress::Progress::stderr("symbolizing", steps as u64, a.quiet);
    let opts = report::Options {
        show: a.show_leak_kinds,
        errors_for: a.errors_for_leak_kinds,
        warnings_as_errors: a.warnings_as_errors,
        mismatched_frees: a.show_mismatched_frees,
        suppressions: &suppressions,
        gen: match (a.gen_suppressions, a.gen_suppressions_format) {
            (GenSuppressions::No, _) => None,
            (_, SuppressionFormat::Valgrind) => Some(suppress::Format::Valgrind),
            (_, SuppressionFormat::Lsan) => Some(suppress::Format::Lsan),
        },
        progress: &progress,
        baseline: (a.baseline.is_some() || a.write_baseline.is_some()).then_some(&matcher),
    };
    let mut sym = Symbolizer::new();
    let processes: Vec<_> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let e = (Some(i) == last_of_child).then_some(exit);
            let mut r = report::process_report(p, e, &mut sym, &opts);
            r.snapshots = taken.remove(&(p.pid, p.start_ns)).unwrap_or_default();
            r
        })
        .collect();
    progress.finish();
    let mut processes = processes;
    if a.leak_check != LeakCheck::No {
        // Said aloud: a report without a leak check must not read like a clean one.
        for p in processes
            .iter_mut()
            .filter(|p| p.leak_summary.is_none() && !p.truncated)
        {
            p.notes.push(
                report::summary::NOTE_NO_LEAK_CHECK.to_string()
                    + "this process did not end through exit(), _exit() or a signal the memcheck library could handle (it exec'd another program, or was killed by SIGKILL)",
            );
        }
    }
    let mut unreported = Vec::new();
    for pid in missing {
        let note = format!("pid {pid} was still running: its report is missing");
        match processes.iter_mut().rev().find(|p| p.pid == pid as u32) {
            Some(p) => {
                p.notes.push(note);
                p.incomplete = true;
            }
            None => unreported.push(note),
        }
    }
    // A process whose report is missing fails an --error-exitcode gate.
    let reports_missing = !unreported.is_empty();
    if last_of_child.is_none() {
        unreported.push(format!(
            "{} left no records: the memcheck library was not loaded into it",
            path.display()
        ));
    }
    if let Exit::Signal(s) = exit {
        let name = report::summary::signal_name(s);
        unreported.push(format!("the program was killed by signal {s} ({name})"));
    }
    let gate = report::summary::Gate {
        errors_for: a.errors_for_leak_kinds,
        warnings_as_errors: a.warnings_as_errors,
    };
    report::summary::mark(&mut processes, gate);
    let mut report = Report {
        version: report::REPORT_VERSION,
        tool: Tool {
            name: "memcheck",
            version: env!("CARGO_PKG_VERSION"),
        },
        leak_check: match a.leak_check {
            LeakCheck::No => "no",
            LeakCheck::Summary => "summary",
            LeakCheck::Full => "full",
        },
        processes,
        notes: unreported,
        suppressions_used: suppressions.used(),
        suppressions_unused: a.list_unused_suppressions.then(|| suppressions.unused()),
        baseline: matcher.result(),
    };

    // Text to a file (`--format text --output FILE`) has no colour.
    let painter = Painter {
        on: !text_to_file && style::stderr_color(color),
    };
    let source_root = a.source_root.clone().unwrap_or_else(|| ".".into());
    let plain = report::Render {
        painter: &Painter { on: false },
        source_root: &source_root,
    };
    // The file reports first: a closed stderr (`2>&1 | head -1`) must not cost them. A failed
    // write does not stop the others; the first failure is the run's.
    let mut written: Result<()> = Ok(());
    let writing =
        report::progress::Progress::stderr("writing reports", files.len() as u64, a.quiet);
    for (format, sink) in &files {
        let w = output::write(sink, &report::render(&report, *format, &plain));
        writing.add(1);
        if written.is_ok() {
            written = w;
        }
    }
    writing.finish();
    if let Some(sink) = &baseline_sink {
        let w = output::write(sink, &matcher.write());
        if written.is_ok() {
            written = w;
        }
    }
    if let Some(sink) = &graph {
        // The listed leaks of every process, by allocation stack.
        let title = format!(
            "memcheck run {}: leaked bytes by allocation stack",
            path.display()
        );
        let leaks = report.processes.iter().flat_map(|p| &p.leaks);
        let w = report::flamegraph::svg(&title, leaks.map(|l| (l.stack.as_slice(), l.bytes)))
            .and_then(|svg| output::write(sink, &svg));
        if written.is_ok() {
            written = w;
        }
    }
    let xml_and_log = [
        xml.as_ref().map(|o| write_xml(o, &report)),
        log.as_ref().map(|o| write_log(o, &report, a.quiet)),
    ];
    for w in xml_and_log.into_iter().flatten() {
        if written.is_ok() {
            written = w;
        }
    }
    if !text_to_file {
        // Its snapshots were printed as they were taken.
        report
            .processes
            .iter_mut()
            .for_each(|p| p.snapshots.clear());
        let text = report::text::render_run_with(&report, &painter, a.quiet);
        // A stderr that is closed or a broken pipe is not an error of the run.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
    written?;

    // The gate: a process with findings that count (errors, warnings with --warnings-as-errors,
    // leaks of --errors-for-leak-kinds; suppressed ones and those a --baseline knows left out)
    // or a report that may miss some: the rule of the failing-process lines and JUnit.
    if let Some(n) = a.error_exitcode {
        if reports_missing
            || report
                .processes
                .iter()
                .any(|p| report::summary::fails_gate(p, gate))
        {
            return Ok(n as i32);
        }
    }
    Ok(match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    })
}
