//! `memcheck run`: start the program with the shim preloaded, wait for it, then read what every
//! process recorded, symbolize, report, and choose the exit status.
use crate::cli::{ColorChoice, Fill, Format, GuardSide, LeakCheck, OnError, RunArgs};
use crate::report::{self, Exit, Report, Tool};
use crate::style::{self, Painter};
use crate::symbolize::Symbolizer;
use crate::{records, shim, target};
use anyhow::{Context, Result};
use nix::sys::signal::{self, SigHandler, Signal};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::Relaxed);
    if pid > 0 && (sig == libc::SIGTERM || sig == libc::SIGHUP) {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// While the program runs memcheck must survive the signals meant for it (so the report still
/// gets written): SIGINT and SIGQUIT reach the program from the terminal anyway; SIGTERM and
/// SIGHUP sent to memcheck are passed on. Handlers, unlike SIG_IGN, reset on exec, so the program
/// starts with default dispositions.
fn guard_signals() {
    for s in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        // SAFETY: `forward` only reads an atomic and calls kill, both async-signal-safe.
        let _ = unsafe { signal::signal(s, SigHandler::Handler(forward)) };
    }
}

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
        abort_on_error: a.on_error == OnError::Abort,
        // --sample-rate implies --guard.
        guard: match (a.guard, a.sample_rate) {
            (Some(GuardSide::Underflow), _) => wire::GuardMode::Underflow,
            (Some(GuardSide::Overflow), _) | (None, Some(_)) => wire::GuardMode::Overflow,
            (None, None) => wire::GuardMode::Off,
        },
        sample_rate: a.sample_rate.unwrap_or(0),
        malloc_fill: fill(a.malloc_fill),
        free_fill: fill(a.free_fill),
    }
    .to_string()
}

pub fn run(a: &RunArgs, color: ColorChoice) -> Result<i32> {
    if a.format == Format::Json && a.output.is_none() {
        return Err(crate::exit::UsageError(
            "--format json needs --output FILE (or --output - for standard output)".into(),
        )
        .into());
    }
    let prog = &a.command[0];
    let path = target::resolve(prog)?;
    target::check(&path)?;

    let dir = tempfile::Builder::new()
        .prefix("memcheck-")
        .tempdir()
        .context("cannot create a temporary directory for the run (is TMPDIR writable?)")?;
    let shim = shim::path(dir.path())?;
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
    guard_signals();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", path.display()))?;
    let child_pid = child.id();
    CHILD.store(child_pid as i32, Ordering::Relaxed);
    let status = child.wait().context("cannot wait for the program")?;
    CHILD.store(0, Ordering::Relaxed);

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
    let opts = report::Options {
        show: a.show_leak_kinds,
    };
    let mut sym = Symbolizer::new();
    let processes: Vec<_> = procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let e = (Some(i) == last_of_child).then_some(exit);
            report::process_report(p, e, &mut sym, &opts)
        })
        .collect();
    let report = Report {
        version: report::REPORT_VERSION,
        tool: Tool {
            name: "memcheck",
            version: env!("CARGO_PKG_VERSION"),
        },
        processes,
    };

    let painter = Painter {
        on: style::stderr_color(color),
    };
    let mut text = String::new();
    for p in &report.processes {
        text.push_str(&report::text::render(
            p,
            &painter,
            a.leak_check == LeakCheck::Full,
        ));
    }
    if last_of_child.is_none() {
        text.push_str(&format!(
            "memcheck: {} left no records: the memcheck library was not loaded into it\n",
            path.display()
        ));
    }
    if let Exit::Signal(s) = exit {
        let name = Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?");
        text.push_str(&format!(
            "memcheck: the program was killed by signal {s} ({name})\n"
        ));
    }
    eprint!("{text}");
    if a.format == Format::Json {
        let out = a.output.as_ref().expect("checked above");
        report::json::write_atomically(out, &report::json::render(&report))?;
    }

    let errors: usize = report
        .processes
        .iter()
        .map(|p| {
            p.error_count()
                + if a.warnings_as_errors {
                    p.warning_count()
                } else {
                    0
                }
        })
        .sum();
    let lost: u64 = report.processes.iter().map(|p| p.lost_blocks()).sum();
    let incomplete = report.processes.iter().any(|p| p.incomplete);
    if let Some(n) = a.error_exitcode {
        if errors > 0 || lost > 0 || incomplete {
            return Ok(n as i32);
        }
    }
    Ok(match exit {
        Exit::Code(c) => c,
        Exit::Signal(s) => 128 + s,
    })
}
