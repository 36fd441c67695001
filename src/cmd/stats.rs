//! `memcheck stats PID`: the heap figures of a live process. Under the memcheck library they come
//! from its shared statistics page, read without stopping or signalling the process. For any
//! process glibc's own `mallinfo2()`/`malloc_stats()` can be fetched by a brief ptrace remote call
//! (the only way from outside). Both sit next to what `/proc/PID/status` and `smaps_rollup` say.
use super::inspect;
use crate::cli::{ColorChoice, Format, StatsArgs};
use crate::proc::footprint::{self, ProcessMem};
use crate::proc::process;
use crate::proc::remote::{self, Mallinfo2, RemoteOptions};
use crate::proc::{statspage, ProcError};
use crate::style::{self, Painter};
use crate::units;
use anyhow::Result;
use memcheck_wire::stats::{self as page, Snapshot};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Heap {
    pub live_bytes: u64,
    pub live_blocks: u64,
    pub peak_bytes: u64,
    pub allocs: u64,
    pub frees: u64,
    pub alloc_bytes: u64,
    pub quarantine_bytes: u64,
    pub quarantine_blocks: u64,
    pub guard_blocks: u64,
    pub guard_bytes: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Live blocks by size class: `max_size` is the class's upper bound (null for the last).
    pub histogram: Vec<Class>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Class {
    pub max_size: Option<u64>,
    pub blocks: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    /// The format version of this JSON (see `docs/inspection.md`).
    pub version: u32,
    pub pid: i32,
    pub command: String,
    /// When `pid` is a `memcheck run` CLI: the pids of its children, the checked program first.
    /// The figures below are then the CLI's own, not the program's.
    pub memcheck_children: Option<Vec<i32>>,
    /// Whether the process runs under the memcheck library.
    pub shim: bool,
    pub heap: Option<Heap>,
    pub mallinfo: Option<Mallinfo2>,
    /// What `malloc_stats()` printed in the process.
    pub malloc_stats: Option<String>,
    /// Why mallinfo is missing, when it is.
    pub mallinfo_error: Option<String>,
    /// How long the process was stopped for the ptrace call, in milliseconds (0 if not stopped).
    pub stopped_ms: f64,
    pub process: ProcessMem,
}

fn heap_of(s: &Snapshot) -> Heap {
    Heap {
        live_bytes: s.live_bytes,
        live_blocks: s.live_blocks,
        peak_bytes: s.peak_bytes,
        allocs: s.allocs,
        frees: s.frees,
        alloc_bytes: s.alloc_bytes,
        quarantine_bytes: s.quarantine_bytes,
        quarantine_blocks: s.quarantine_blocks,
        guard_blocks: s.guard_blocks,
        guard_bytes: s.guard_bytes,
        errors: s.errors,
        warnings: s.warnings,
        histogram: s
            .hist
            .iter()
            .enumerate()
            .map(|(i, &b)| Class {
                max_size: (i + 1 < page::CLASSES).then_some(16u64 << i),
                blocks: b,
            })
            .collect(),
    }
}

/// Gathers one report.
pub fn collect(pid: i32, a: &StatsArgs) -> Result<StatsReport> {
    if !process::exists(pid) {
        return Err(ProcError::NoSuchProcess(pid).into());
    }
    let memcheck_children = process::is_memcheck_run(pid).then(|| process::children(pid));
    let snap = statspage::read_page(pid);
    let want_remote = !a.no_ptrace && (snap.is_none() || a.ptrace);
    let (mut mallinfo, mut malloc_stats, mut mallinfo_error, mut stopped_ms) =
        (None, None, None, 0.0);
    if want_remote {
        match remote_call(pid) {
            Ok(h) => {
                mallinfo = Some(h.mallinfo);
                malloc_stats = h.malloc_stats.text().map(str::to_string);
                stopped_ms = h.stopped_for.as_secs_f64() * 1000.0;
            }
            Err(e) => mallinfo_error = Some(e.to_string()),
        }
    } else if snap.is_some() {
        mallinfo_error = Some("not asked: the process runs under memcheck and was not stopped (use --ptrace for glibc's figures)".into());
    } else {
        mallinfo_error = Some("not asked (--no-ptrace)".into());
    }
    let report = StatsReport {
        version: inspect::JSON_VERSION,
        pid,
        command: process::command_line(pid),
        memcheck_children,
        shim: snap.is_some(),
        heap: snap.as_ref().map(heap_of),
        mallinfo,
        malloc_stats,
        mallinfo_error,
        stopped_ms,
        process: footprint::footprint(pid),
    };
    if report.heap.is_none() && report.mallinfo.is_none() && !process::exists(pid) {
        return Err(ProcError::NoSuchProcess(pid).into());
    }
    Ok(report)
}

/// The ptrace call with SIGINT, SIGTERM, SIGHUP and SIGQUIT held back: memcheck dying in the
/// middle of a call would leave the process's registers hijacked. A signal that arrives meanwhile
/// takes effect as soon as the process is released.
fn remote_call(pid: i32) -> Result<remote::RemoteHeap, remote::RemoteError> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut held = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        held.add(s);
    }
    let mut old = SigSet::empty();
    let blocked =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&held), Some(&mut old)).is_ok();
    let r = remote::heap_of(pid, &RemoteOptions::default());
    if blocked {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    r
}

fn kb(v: Option<u64>) -> String {
    v.map(units::kib).unwrap_or_else(|| "-".into())
}

/// What each mallinfo2 field means (glibc manual).
pub const MALLINFO_FIELDS: [(&str, &str); 10] = [
    (
        "arena",
        "bytes obtained from the system with brk/sbrk (non-mmapped)",
    ),
    ("ordblks", "number of free chunks (not in fastbins)"),
    ("smblks", "number of free fastbin chunks"),
    ("hblks", "number of blocks allocated with mmap"),
    ("hblkhd", "bytes in blocks allocated with mmap"),
    ("usmblks", "always 0 (obsolete)"),
    ("fsmblks", "bytes in free fastbin chunks"),
    ("uordblks", "bytes in use by allocated chunks"),
    ("fordblks", "bytes in free chunks"),
    (
        "keepcost",
        "releasable bytes at the top of the heap (malloc_trim could return them)",
    ),
];

pub fn render_text(r: &StatsReport, p: &Painter) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{} {}", p.bold(&format!("pid {}", r.pid)), r.command);
    if let Some(kids) = &r.memcheck_children {
        let _ = match kids.first() {
            Some(child) => writeln!(
                o,
                "{}",
                p.yellow(&format!(
                    "this is the memcheck CLI (`memcheck run`); the checked program is its child, \
                     pid {child}: run `memcheck stats {child}` (the figures below are the CLI's)"
                ))
            ),
            None => writeln!(
                o,
                "{}",
                p.yellow(
                    "this is the memcheck CLI (`memcheck run`); its checked program has exited"
                )
            ),
        };
    }
    if let Some(h) = &r.heap {
        let _ = writeln!(
            o,
            "{}",
            p.bold("heap (memcheck library, read without stopping the process)")
        );
        let _ = writeln!(
            o,
            "  live        {} in {} blocks (peak {})",
            units::bytes(h.live_bytes),
            h.live_blocks,
            units::bytes(h.peak_bytes)
        );
        let _ = writeln!(
            o,
            "  total       {} allocations ({}), {} frees",
            h.allocs,
            units::bytes(h.alloc_bytes),
            h.frees
        );
        let _ = writeln!(
            o,
            "  quarantine  {} in {} blocks",
            units::bytes(h.quarantine_bytes),
            h.quarantine_blocks
        );
        let _ = writeln!(
            o,
            "  guard pages {} blocks on {} of pages",
            h.guard_blocks,
            units::bytes(h.guard_bytes)
        );
        let errs = format!("{} errors, {} warnings", h.errors, h.warnings);
        let _ = writeln!(
            o,
            "  found       {}",
            if h.errors > 0 { p.red(&errs) } else { errs }
        );
        let classes: Vec<String> = h
            .histogram
            .iter()
            .filter(|c| c.blocks > 0)
            .map(|c| match c.max_size {
                Some(m) => format!("<={}: {}", units::bytes(m), c.blocks),
                None => format!("larger: {}", c.blocks),
            })
            .collect();
        let _ = writeln!(
            o,
            "  sizes       {}",
            if classes.is_empty() {
                "-".into()
            } else {
                classes.join(", ")
            }
        );
    }
    match &r.mallinfo {
        Some(m) => {
            let _ = writeln!(
                o,
                "{}",
                p.bold(&format!(
                    "glibc mallinfo2 (ptrace call; process stopped {:.1} ms)",
                    r.stopped_ms
                ))
            );
            let values = [
                m.arena, m.ordblks, m.smblks, m.hblks, m.hblkhd, m.usmblks, m.fsmblks, m.uordblks,
                m.fordblks, m.keepcost,
            ];
            for ((name, meaning), v) in MALLINFO_FIELDS.iter().zip(values) {
                let _ = writeln!(o, "  {name:<9} {v:>14}  {}", p.dim(meaning));
            }
        }
        None => {
            if let Some(e) = &r.mallinfo_error {
                let _ = writeln!(o, "{} {}", p.bold("glibc mallinfo2:"), e);
            }
        }
    }
    let pm = &r.process;
    let _ = writeln!(o, "{}", p.bold("process (/proc status and smaps_rollup)"));
    let _ = writeln!(
        o,
        "  rss {} (anon {}, file {}), peak rss {}",
        kb(pm.rss_kb),
        kb(pm.rss_anon_kb),
        kb(pm.rss_file_kb),
        kb(pm.hwm_kb)
    );
    let _ = writeln!(
        o,
        "  pss {}, private dirty {}, data {}, swap {}, virtual {}",
        kb(pm.pss_kb),
        kb(pm.private_dirty_kb),
        kb(pm.data_kb),
        kb(pm.swap_kb),
        kb(pm.vsize_kb)
    );
    o
}

fn line(r: &StatsReport) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match &r.heap {
        Some(h) => format!(
            "{now} pid={} live_bytes={} live_blocks={} peak_bytes={} quarantine_bytes={} errors={} rss_kb={}",
            r.pid,
            h.live_bytes,
            h.live_blocks,
            h.peak_bytes,
            h.quarantine_bytes,
            h.errors,
            r.process.rss_kb.unwrap_or(0)
        ),
        None => format!(
            "{now} pid={} uordblks={} hblkhd={} rss_kb={}",
            r.pid,
            r.mallinfo.map(|m| m.uordblks).unwrap_or(0),
            r.mallinfo.map(|m| m.hblkhd).unwrap_or(0),
            r.process.rss_kb.unwrap_or(0)
        ),
    }
}

pub fn run(a: &StatsArgs, color: ColorChoice) -> Result<i32> {
    let pid = a.pid;
    let painter = Painter {
        on: style::stdout_color(color),
    };
    let Some(secs) = a.watch else {
        let r = collect(pid, a)?;
        let text = match a.format {
            Format::Json => serde_json::to_string_pretty(&r)? + "\n",
            Format::Text => render_text(&r, &painter),
        };
        super::inspect::emit(None, &text)?;
        return Ok(0);
    };
    let tty = std::io::stdout().is_terminal() && a.format == Format::Text;
    let interval = Duration::from_secs_f64(secs.max(0.1));
    let mut shown = false;
    loop {
        let t = Instant::now();
        let r = match collect(pid, a) {
            Ok(r) => r,
            // Once at least one refresh was shown, the process ending is the normal end of the
            // watch; before that it is the same error as without --watch.
            Err(_) if shown && !process::exists(pid) => {
                eprintln!("memcheck: process {pid} has exited");
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let mut out = std::io::stdout().lock();
        let text = match (a.format, tty) {
            (Format::Json, _) => serde_json::to_string(&r)? + "\n",
            (Format::Text, true) => format!("\x1b[H\x1b[2J{}", render_text(&r, &painter)),
            (Format::Text, false) => line(&r) + "\n",
        };
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => {}
            // The reader went away (a closed pipe): the normal end of a watch.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            Err(e) => return Err(anyhow::Error::new(e).context("cannot write to standard output")),
        }
        drop(out);
        shown = true;
        std::thread::sleep(interval.saturating_sub(t.elapsed()));
    }
}
