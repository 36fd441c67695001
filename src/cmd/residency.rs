//! `memcheck residency`: which pages of files are in the page cache (mincore), optionally after
//! reading them in, evicting them or locking them; or, with `--pid`, which pages of each region
//! of a live process are resident, swapped out or not present (pagemap). Invariants: directories
//! are walked without following symbolic links and each file (device and inode) is counted once;
//! a file that cannot be read is reported on its own line and the others are still processed.
use super::inspect::{self, percent};
use crate::cli::{ColorChoice, Format, ResidencyArgs};
use crate::layout::Kind;
use crate::pagecache::{self, FileError, Locked};
use crate::proc::{self, pagemap};
use crate::style::Painter;
use crate::units::{self, hex};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Width of the compact residency map.
pub const MAP_WIDTH: usize = 60;

#[derive(Serialize, Debug)]
pub struct FilesReport {
    /// The format version of this JSON.
    pub version: u32,
    pub page_size: u64,
    /// `touch`, `evict`, `lock`, or null.
    pub action: Option<&'static str>,
    pub files: Vec<FileOut>,
    pub total: FileTotal,
    pub errors: Vec<ErrorOut>,
}

#[derive(Serialize, Debug)]
pub struct FileOut {
    pub path: String,
    pub size_bytes: u64,
    pub pages: u64,
    pub resident_pages: u64,
    pub resident_percent: f64,
    /// Resident pages before the action, when there was one.
    pub resident_pages_before: Option<u64>,
    pub map: String,
}

#[derive(Serialize, Debug, Default)]
pub struct FileTotal {
    pub files: usize,
    pub size_bytes: u64,
    pub pages: u64,
    pub resident_pages: u64,
    pub resident_percent: f64,
    pub locked_bytes: u64,
}

#[derive(Serialize, Debug)]
pub struct ErrorOut {
    pub path: String,
    pub error: String,
}

#[derive(Serialize, Debug)]
pub struct PidReport {
    /// The format version of this JSON.
    pub version: u32,
    pub pid: i32,
    pub command: String,
    pub page_size: u64,
    pub regions: Vec<PidRegion>,
    pub total: PidTotal,
    /// Regions whose pages could not be read (the others are still reported), as in the file
    /// form: `path` is the pagemap file, `error` names the region.
    pub errors: Vec<ErrorOut>,
}

#[derive(Serialize, Debug)]
pub struct PidRegion {
    pub start: String,
    pub end: String,
    pub perms: String,
    pub kind: Kind,
    pub path: Option<String>,
    pub name: Option<String>,
    pub pages: u64,
    pub resident_pages: u64,
    pub swapped_pages: u64,
    pub not_present_pages: u64,
    pub resident_percent: f64,
    pub map: String,
}

#[derive(Serialize, Debug, Default)]
pub struct PidTotal {
    pub regions: usize,
    pub pages: u64,
    pub resident_pages: u64,
    pub swapped_pages: u64,
    pub not_present_pages: u64,
}

pub fn run(a: &ResidencyArgs, color: ColorChoice) -> Result<i32> {
    let painter = inspect::painter(color, a.output.as_deref());
    if let Some(pid) = a.pid {
        let r = for_pid(pid)?;
        for e in &r.errors {
            eprintln!("memcheck: error: {}: {}", e.path, e.error);
        }
        let text = match a.format {
            Format::Json => inspect::json(&r),
            Format::Text => render_pid(&r, &painter),
        };
        inspect::emit(a.output.as_deref(), &text)?;
        return Ok(if r.errors.is_empty() {
            0
        } else {
            crate::exit::EXIT_FAILURE
        });
    }
    let action = if a.touch {
        Some(Action::Touch)
    } else if a.evict {
        Some(Action::Evict)
    } else if a.lock {
        Some(Action::Lock)
    } else {
        None
    };
    // Block the signals that end --lock before locking anything: one that arrives early stays
    // pending and ends the wait at once instead of killing memcheck half-way.
    let stop =
        nix::sys::signal::SigSet::from_iter([nix::sys::signal::SIGINT, nix::sys::signal::SIGTERM]);
    if action == Some(Action::Lock) {
        stop.thread_block()?;
    }
    let mut held = Vec::new();
    let report = for_files(&a.paths, action, &mut held)?;
    for e in &report.errors {
        eprintln!("memcheck: error: {}", e.error);
    }
    let text = match a.format {
        Format::Json => inspect::json(&report),
        Format::Text => render_files(&report, &painter),
    };
    inspect::emit(a.output.as_deref(), &text)?;
    if action == Some(Action::Lock) {
        if std::io::stderr().is_terminal() {
            eprintln!(
                "memcheck: holding {} locked in memory; interrupt (Ctrl-C) or send SIGTERM to release",
                units::bytes(report.total.locked_bytes)
            );
        }
        let sig = stop.wait()?;
        drop(held);
        if std::io::stderr().is_terminal() {
            eprintln!("memcheck: {} received, pages released", sig.as_str());
        }
    }
    // Each unreadable path already had its one line on stderr.
    Ok(if report.errors.is_empty() {
        0
    } else {
        crate::exit::EXIT_FAILURE
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Touch,
    Evict,
    Lock,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Touch => "touch",
            Action::Evict => "evict",
            Action::Lock => "lock",
        }
    }
}

/// Progress on stderr for big trees, only when stderr is a terminal.
struct Progress {
    on: bool,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: std::io::stderr().is_terminal(),
            last: Instant::now(),
            shown: false,
        }
    }
    fn tick(&mut self, files: usize, pages: u64) {
        if self.on && self.last.elapsed() > Duration::from_millis(200) {
            self.last = Instant::now();
            self.shown = true;
            eprint!("\rmemcheck: {files} files, {pages} pages so far\x1b[K");
        }
    }
    fn done(&self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// Every regular file under `paths`, each (device, inode) once, in walk order. Unreadable
/// entries become errors.
fn walk(paths: &[PathBuf], errors: &mut Vec<ErrorOut>) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(PathBuf, bool)> = paths.iter().rev().map(|p| (p.clone(), true)).collect();
    let fail = |p: &Path, e: std::io::Error, errors: &mut Vec<ErrorOut>| {
        errors.push(ErrorOut {
            path: p.display().to_string(),
            error: FileError::from_io(p, e).to_string(),
        })
    };
    while let Some((p, top)) = stack.pop() {
        // Symbolic links named on the command line are followed; those found inside are not.
        let meta = if top {
            std::fs::metadata(&p)
        } else {
            std::fs::symlink_metadata(&p)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                fail(&p, e, errors);
                continue;
            }
        };
        if meta.is_dir() {
            match std::fs::read_dir(&p) {
                Ok(rd) => {
                    let mut kids: Vec<PathBuf> =
                        rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
                    kids.sort();
                    stack.extend(kids.into_iter().rev().map(|k| (k, false)));
                }
                Err(e) => fail(&p, e, errors),
            }
        } else if meta.is_file() {
            if seen.insert((meta.dev(), meta.ino())) {
                out.push((p, meta));
            }
        } else if top {
            // Devices, sockets and the like are skipped inside trees, but one named on purpose
            // deserves an answer.
            errors.push(ErrorOut {
                path: p.display().to_string(),
                error: FileError::NotRegular(p.display().to_string()).to_string(),
            });
        }
    }
    out
}

fn memlock_limits() -> (String, String) {
    let show = |v: u64| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            units::bytes(v)
        }
    };
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK) {
        Ok((s, h)) => (show(s), show(h)),
        Err(_) => ("unknown".into(), "unknown".into()),
    }
}

/// Inspects (and acts on) every file under `paths`. Locks taken go to `held`. Only a failed lock
/// is fatal; other failures are listed in the report's errors.
pub fn for_files(
    paths: &[PathBuf],
    action: Option<Action>,
    held: &mut Vec<Locked>,
) -> Result<FilesReport> {
    let mut errors = Vec::new();
    let files = walk(paths, &mut errors);
    let mut progress = Progress::new();
    let mut out = Vec::new();
    let mut total = FileTotal::default();
    for (path, meta) in files {
        let shown = path.display().to_string();
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(ErrorOut {
                    path: shown,
                    error: FileError::from_io(&path, e).to_string(),
                });
                continue;
            }
        };
        let len = meta.len();
        let mut step = || -> Result<FileOut> {
            let mut before = None;
            if let Some(act) = action {
                before = Some(pagecache::residency(&f, len, 0)?.resident_pages);
                match act {
                    Action::Touch => pagecache::touch(&mut f)?,
                    Action::Evict => pagecache::evict(&f)?,
                    Action::Lock => match pagecache::lock(&f, len) {
                        Ok(Some(l)) => {
                            total.locked_bytes += l.bytes();
                            held.push(l);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let (soft, hard) = memlock_limits();
                            return Err(FileError::Lock {
                                path: shown.clone(),
                                size: units::bytes(len),
                                cause: match e.raw_os_error() {
                                    Some(n) => format!(
                                        "mlock failed with {}",
                                        nix::errno::Errno::from_raw(n)
                                    ),
                                    None => format!("mlock failed: {e}"),
                                },
                                soft,
                                hard,
                            }
                            .into());
                        }
                    },
                }
            }
            let r = pagecache::residency(&f, len, MAP_WIDTH)?;
            Ok(FileOut {
                path: shown.clone(),
                size_bytes: len,
                pages: r.pages,
                resident_pages: r.resident_pages,
                resident_percent: percent(r.resident_pages, r.pages),
                resident_pages_before: before,
                map: r.map,
            })
        };
        match step() {
            Ok(fo) => {
                total.files += 1;
                total.size_bytes += fo.size_bytes;
                total.pages += fo.pages;
                total.resident_pages += fo.resident_pages;
                out.push(fo);
            }
            Err(e) if e.is::<FileError>() => {
                progress.done();
                return Err(e);
            }
            Err(e) => {
                let io = e
                    .downcast::<std::io::Error>()
                    .map(|io| FileError::from_io(&path, io).to_string())
                    .unwrap_or_else(|e| format!("{shown}: {e}"));
                errors.push(ErrorOut {
                    path: shown,
                    error: io,
                });
            }
        }
        progress.tick(total.files, total.pages);
    }
    progress.done();
    total.resident_percent = percent(total.resident_pages, total.pages);
    Ok(FilesReport {
        version: inspect::JSON_VERSION,
        page_size: proc::page_size(),
        action: action.map(Action::name),
        files: out,
        total,
        errors,
    })
}

/// Residency of every region of a live process.
pub fn for_pid(pid: i32) -> Result<PidReport> {
    let regions = crate::layout::regions(pid)?;
    // Opened on first use: a kernel thread has no regions and no pagemap to open.
    let mut pm: Option<pagemap::Pagemap> = None;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut total = PidTotal::default();
    for r in regions {
        let m = &r.mapping;
        let res = if (m.counters.rss_kb == 0 && m.counters.swap_kb == 0) || r.kind == Kind::Vsyscall
        {
            pagemap::empty_range(m.start, m.end, MAP_WIDTH)
        } else {
            let pm = match &mut pm {
                Some(pm) => pm,
                None => pm.insert(pagemap::Pagemap::open(pid)?),
            };
            match pm.range(m.start, m.end, MAP_WIDTH) {
                Ok(res) => res,
                Err(e @ proc::ProcError::NoSuchProcess(_)) => return Err(e.into()),
                Err(e) => {
                    errors.push(ErrorOut {
                        path: format!("/proc/{pid}/pagemap"),
                        error: format!("region {}-{}: {e}", hex(m.start), hex(m.end)),
                    });
                    continue;
                }
            }
        };
        total.regions += 1;
        total.pages += res.pages;
        total.resident_pages += res.resident_pages;
        total.swapped_pages += res.swapped_pages;
        total.not_present_pages += res.not_present_pages();
        out.push(PidRegion {
            start: hex(m.start),
            end: hex(m.end),
            perms: m.perms.clone(),
            kind: r.kind,
            path: r.path.clone(),
            name: m.name.shown(),
            pages: res.pages,
            resident_pages: res.resident_pages,
            swapped_pages: res.swapped_pages,
            not_present_pages: res.not_present_pages(),
            resident_percent: percent(res.resident_pages, res.pages),
            map: res.map,
        });
    }
    Ok(PidReport {
        version: inspect::JSON_VERSION,
        pid,
        command: proc::comm(pid),
        page_size: proc::page_size(),
        regions: out,
        total,
        errors,
    })
}

fn pages_kb(pages: u64, ps: u64) -> String {
    units::bytes(pages * ps)
}

pub fn render_files(r: &FilesReport, p: &Painter) -> String {
    let mut out = String::new();
    let ps = r.page_size;
    let before = r.action.is_some();
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "{:>9} {:>9} {:>6}{} {:<w$}  PATH",
            "PAGES",
            "RESIDENT",
            "%",
            if before {
                format!(" {:>9}", "BEFORE")
            } else {
                String::new()
            },
            "MAP",
            w = MAP_WIDTH + 2
        ))
    );
    for f in &r.files {
        let _ = writeln!(
            out,
            "{:>9} {:>9} {:>5.1}%{} [{:<w$}]  {}",
            f.pages,
            f.resident_pages,
            f.resident_percent,
            f.resident_pages_before
                .map(|b| format!(" {b:>9}"))
                .unwrap_or_default(),
            f.map,
            f.path,
            w = MAP_WIDTH
        );
    }
    let t = &r.total;
    let mut line = format!(
        "{} files, {} pages ({}), {} resident ({}), {:.1}%",
        t.files,
        t.pages,
        pages_kb(t.pages, ps),
        t.resident_pages,
        pages_kb(t.resident_pages, ps),
        t.resident_percent
    );
    match r.action {
        Some("lock") => line.push_str(&format!("; {} locked", units::bytes(t.locked_bytes))),
        Some(a) => line.push_str(&format!("; after --{a}")),
        None => {}
    }
    let _ = writeln!(out, "{}", p.bold(&line));
    if !r.errors.is_empty() {
        let n = r.errors.len();
        let _ = writeln!(
            out,
            "{}",
            p.red(&format!(
                "{n} {} could not be read",
                if n == 1 { "path" } else { "paths" }
            ))
        );
    }
    out
}

pub fn render_pid(r: &PidReport, p: &Painter) -> String {
    let mut out = String::new();
    let ps = r.page_size;
    let _ = writeln!(
        out,
        "{} pid {} ({})",
        p.bold("memcheck residency:"),
        r.pid,
        r.command
    );
    let w = r
        .regions
        .iter()
        .map(|x| x.end.len() - 2)
        .max()
        .unwrap_or(12);
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "{:>w$} {:<5} {:<12} {:>10} {:>10} {:>10} {:>10}  {:<mw$}  PATH",
            "START",
            "PERMS",
            "KIND",
            "SIZE",
            "RESIDENT",
            "SWAPPED",
            "ABSENT",
            "MAP",
            mw = MAP_WIDTH + 2
        ))
    );
    for x in &r.regions {
        let what = x
            .path
            .clone()
            .or_else(|| x.name.clone())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>w$} {:<5} {:<12} {:>10} {:>10} {:>10} {:>10}  [{:<mw$}]  {}",
            x.start.trim_start_matches("0x"),
            x.perms,
            x.kind.as_str(),
            pages_kb(x.pages, ps),
            pages_kb(x.resident_pages, ps),
            pages_kb(x.swapped_pages, ps),
            pages_kb(x.not_present_pages, ps),
            x.map,
            what,
            mw = MAP_WIDTH
        );
    }
    let t = &r.total;
    let _ = writeln!(
        out,
        "{}",
        p.bold(&format!(
            "{} regions, {} mapped: {} resident, {} swapped out, {} not present",
            t.regions,
            pages_kb(t.pages, ps),
            pages_kb(t.resident_pages, ps),
            pages_kb(t.swapped_pages, ps),
            pages_kb(t.not_present_pages, ps)
        ))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_recurses_skips_links_and_counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("a"), "a").unwrap();
        std::fs::write(d.join("sub/b"), "b").unwrap();
        std::fs::write(d.join("sub/deeper/c"), "c").unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/a-again")).unwrap();
        std::os::unix::fs::symlink(d.join("sub"), d.join("link-to-sub")).unwrap();
        let mut errors = Vec::new();
        let files = walk(
            &[d.to_path_buf(), d.join("missing"), "/dev/null".into()],
            &mut errors,
        );
        let names: Vec<String> = files
            .iter()
            .map(|(p, _)| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a", "sub/b", "sub/deeper/c"]);
        assert_eq!(errors.len(), 2);
        assert!(
            errors[0].error.contains("no such file"),
            "{}",
            errors[0].error
        );
        assert!(
            errors[1].error.starts_with("/dev/null: not a regular file"),
            "{}",
            errors[1].error
        );
    }

    #[test]
    fn lock_errors_explain_the_limit_and_the_capability() {
        let (soft, hard) = memlock_limits();
        let e = FileError::Lock {
            path: "/f".into(),
            size: "1.0M".into(),
            cause: "mlock failed: ENOMEM".into(),
            soft,
            hard,
        };
        let s = e.to_string();
        assert!(
            s.contains("RLIMIT_MEMLOCK") && s.contains("CAP_IPC_LOCK") && !s.contains('\n'),
            "{s}"
        );
    }
}
