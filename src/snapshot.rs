//! `memcheck run --snapshot-interval SECS` / `--snapshot-signal SIG`: snapshots of the live
//! allocation sites of the run's processes while they run. A thread of memcheck's takes them:
//! every SECS seconds, and each time memcheck gets SIG (its handler writes a byte to a pipe the
//! thread polls; the signal is kept from the forwarded ones, `child::keep_signal`). Each process
//! of the run that maps its statistics page in the run directory is asked for its sites
//! (`proc::live::ask`, the request of `memcheck stats --sites`: nothing is paused); the answer is
//! grouped by `report::sites`, printed to stderr at once (when the text report goes there) and
//! kept for the report (`ProcessReport::snapshots`), and with `--flamegraph FILE.svg` drawn to
//! `FILE.snapshot-N.svg`.
use crate::proc::live;
use crate::report::sites::{self, Snapshot};
use crate::style::Painter;
use crate::symbolize::Symbolizer;
use crate::{child, output};
use anyhow::Result;
use std::collections::HashMap;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The write end of the pipe the signal handler wakes the thread through (-1: none).
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// Set by [`Snapshots::finish`]: the thread takes no more snapshots.
static DONE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; a full pipe (non-blocking) just drops the byte,
        // and one byte waiting is enough.
        unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    }
}

/// What the snapshots need to know of the run.
pub struct Setup {
    pub run_dir: PathBuf,
    pub interval: Option<f64>,
    pub signal: Option<i32>,
    /// `--flamegraph FILE.svg`: each snapshot also to `FILE.snapshot-N.svg`.
    pub flamegraph: Option<PathBuf>,
    /// Print each snapshot on stderr as it is taken (the text report goes there).
    pub to_stderr: bool,
    pub color: bool,
}

/// The snapshots of each process image, by `(pid, start_ns)`.
pub type Taken = HashMap<(u32, u64), Vec<Snapshot>>;

/// The running snapshot thread.
pub struct Snapshots {
    thread: std::thread::JoinHandle<Taken>,
    wake: OwnedFd,
}

/// `FILE.svg` -> `FILE.snapshot-N.svg` (any other name gets `.snapshot-N.svg` appended).
pub fn graph_path(base: &Path, n: u32) -> PathBuf {
    let s = base.to_string_lossy();
    let stem = s.strip_suffix(".svg").unwrap_or(&s);
    PathBuf::from(format!("{stem}.snapshot-{n}.svg"))
}

/// Starts taking snapshots (before the program is spawned). Refused in one line: a
/// `--snapshot-signal` memcheck was started with ignored (the program would not inherit it
/// ignored any more).
pub fn start(setup: Setup) -> Result<Snapshots> {
    if let Some(sig) = setup.signal {
        if child::is_ignored(sig) {
            return Err(crate::exit::UsageError(format!(
                "--snapshot-signal {sig}: memcheck was started with this signal ignored (nohup, a supervisor), and the program must inherit that: pick another signal"
            ))
            .into());
        }
    }
    let (rd, wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    WAKE.store(wr.as_raw_fd(), Ordering::Relaxed);
    DONE.store(false, Ordering::Relaxed);
    if let Some(sig) = setup.signal {
        child::keep_signal(sig);
        // SAFETY: the handler only writes one byte to a pipe (async-signal-safe).
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as *const () as usize;
            act.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
                anyhow::bail!(
                    "--snapshot-signal {sig}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    let signal = setup.signal;
    let thread = std::thread::Builder::new()
        .name("snapshots".into())
        .spawn(move || {
            if let Some(sig) = signal {
                // This thread takes the signal even when memcheck's (and so the program's)
                // inherited mask blocks it.
                // SAFETY: a sigset built here; only this thread's mask changes.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, sig);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                }
            }
            run(setup, rd)
        })?;
    Ok(Snapshots { thread, wake: wr })
}

impl Snapshots {
    /// Stops the thread (after the run's processes ended) and returns what it took.
    pub fn finish(self) -> Taken {
        DONE.store(true, Ordering::Relaxed);
        // SAFETY: one byte to our own pipe.
        unsafe { libc::write(self.wake.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        WAKE.store(-1, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// The processes of the run now: the statistics pages in the run directory whose process maps
/// them (an ended process's page stays; a pid reused by another process maps no page of ours).
fn processes(dir: &Path) -> Vec<live::Target> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<live::Target> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(memcheck_wire::stats::SUFFIX)?;
            let pid: i32 = base.split('-').next()?.parse().ok()?;
            let t = live::find(pid).ok()?;
            (t.pid == pid && t.base == dir.join(base)).then_some(t)
        })
        .collect();
    out.sort_by_key(|t| t.pid);
    out
}

fn run(setup: Setup, wake: OwnedFd) -> Taken {
    let started = Instant::now();
    let mut taken = Taken::new();
    let mut before: HashMap<(u32, u64), sites::Sizes> = HashMap::new();
    let mut sym = Symbolizer::new();
    let interval = setup.interval.map(Duration::from_secs_f64);
    let mut next = interval.map(|i| started + i);
    let mut number = 0u32;
    let painter = Painter { on: setup.color };
    loop {
        let timeout = match next {
            Some(t) => t
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(i32::MAX as u128) as i32,
            None => -1,
        };
        let mut pfd = libc::pollfd {
            fd: wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if DONE.load(Ordering::Relaxed) {
            break;
        }
        let trigger = if r > 0 {
            let mut buf = [0u8; 64];
            // SAFETY: reading into our buffer from our non-blocking pipe.
            while unsafe { libc::read(wake.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
            "signal"
        } else if r == 0 {
            if let (Some(t), Some(i)) = (next.as_mut(), interval) {
                // The next tick after now: ticks missed while a snapshot took long are skipped.
                let now = Instant::now();
                while *t <= now {
                    *t += i;
                }
            }
            "interval"
        } else {
            continue; // EINTR
        };
        let procs = processes(&setup.run_dir);
        if procs.is_empty() {
            continue;
        }
        // Numbered once some process answered.
        let number_now = number + 1;
        let elapsed = started.elapsed().as_secs_f64();
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut graph: Vec<(Vec<crate::symbolize::Frame>, u64)> = Vec::new();
        let mut text = String::new();
        for t in procs {
            let Ok(answer) = live::ask(&t, live::Question::Sites, Duration::from_secs(10)) else {
                continue; // it ended meanwhile, or is stopped
            };
            let Ok(recs) = crate::records::parse(&answer.bytes, &answer.path) else {
                continue;
            };
            let key = (recs.pid, recs.start_ns);
            let all = sites::from_records(&recs, &mut sym);
            let mut list: Vec<sites::Site> =
                all.sites.into_iter().filter(|s| s.blocks > 0).collect();
            if let Some(b) = before.get(&key) {
                sites::set_growth(&mut list, b);
            }
            before.insert(key, sites::sizes(&list));
            sites::sort(&mut list, sites::Sort::Bytes);
            if setup.flamegraph.is_some() {
                graph.extend(list.iter().map(|s| (s.stack.clone(), s.bytes)));
            }
            let total_sites = list.len();
            list.truncate(sites::SNAPSHOT_TOP);
            let snap = Snapshot {
                number: number_now,
                trigger,
                elapsed_seconds: (elapsed * 10.0).round() / 10.0,
                unix_time_ms: unix_ms,
                live_bytes: all.live_bytes,
                live_blocks: all.live_blocks,
                total_sites,
                sites: list,
            };
            if setup.to_stderr {
                let pre = painter.dim(&format!("=={}==", recs.pid)) + " ";
                text.push_str(&sites::snapshot_text(&snap, recs.pid, &pre, &painter));
            }
            taken.entry(key).or_default().push(snap);
        }
        if !text.is_empty() {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
        if !taken
            .values()
            .any(|v| v.last().is_some_and(|s| s.number == number_now))
        {
            continue; // nobody answered (the program was ending)
        }
        number = number_now;
        if let Some(base) = &setup.flamegraph {
            let path = graph_path(base, number);
            let title = format!("memcheck snapshot {number} ({trigger}, {elapsed:.1} s): live bytes by allocation stack");
            let w = crate::report::flamegraph::svg(
                &title,
                graph.iter().map(|(s, b)| (s.as_slice(), *b)),
            )
            .and_then(|svg| output::check(&path).and_then(|s| output::write(&s, &svg)));
            if let Err(e) = w {
                eprintln!("memcheck: snapshot {number}: {}: {e:#}", path.display());
            }
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_signals_are_names_or_numbers_and_the_unusable_ones_are_refused() {
        use crate::cli::parse_snapshot_signal as p;
        assert_eq!(p("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(p("sigusr2"), Ok(libc::SIGUSR2));
        assert_eq!(p("SIGHUP"), Ok(libc::SIGHUP));
        assert_eq!(p("10"), Ok(10));
        assert_eq!(p("RTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(p("rtmin"), Ok(libc::SIGRTMIN()));
        assert_eq!(p("RTMAX-3"), Ok(libc::SIGRTMAX() - 3));
        for bad in [
            "KILL", "STOP", "TERM", "INT", "SEGV", "CHLD", "PIPE", "62", "RTMAX-2", "33",
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.contains("use USR1"), "{bad}: {e}");
        }
        for bad in ["", "0", "65", "USR3", "RTMIN+x"] {
            assert!(p(bad).unwrap_err().contains("not a signal"), "{bad}");
        }
    }

    #[test]
    fn snapshot_graphs_are_named_after_the_flamegraph() {
        assert_eq!(
            graph_path(Path::new("out/run.svg"), 3),
            PathBuf::from("out/run.snapshot-3.svg")
        );
        assert_eq!(
            graph_path(Path::new("graph"), 1),
            PathBuf::from("graph.snapshot-1.svg")
        );
    }
}
