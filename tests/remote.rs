//! `memcheck::proc::remote`: glibc's heap figures read inside live processes through ptrace.
//! Each test starts a small C program from `tests/programs/remote_*.c`, inspects it while it
//! runs, then checks it finished as it would have: same output, same exit status.
mod common;
use common::Ready;

use memcheck::proc::remote::{heap_of, MallocStats, RemoteError, RemoteOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The state letter of a process (R, S, T, t, Z...).
fn state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(") ")
        .next()
        .and_then(|s| s.chars().next())
        .unwrap()
}

/// Polls until `f` holds (a process changes state asynchronously); fails after a minute.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn tracer_of(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("TracerPid:"))
        .unwrap();
    line[10..].trim().parse().unwrap()
}

/// Live bytes remote_target.c holds for its whole run.
const TARGET_LIVE: u64 = 10 * 100_000 + 1000 * 48;

#[test]
fn heap_of_a_working_process_thirty_times_leaves_it_unchanged() {
    let mut p = Ready::start("remote_target.c", &[], &[]);
    let pid = p.pid();
    // Real-time signals are queued, not merged: every one sent, also while the main thread is
    // stopped, must be handled exactly once.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: kill takes integers only.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGRTMIN() + 1) }, 0);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    let opts = RemoteOptions::default();
    let mut stops = Vec::new();
    for i in 0..30 {
        let h = heap_of(pid, &opts).unwrap_or_else(|e| panic!("inspection {i}: {e}"));
        assert_eq!((h.pid, h.tid), (pid, pid));
        let m = h.mallinfo;
        assert!(
            m.uordblks + m.hblkhd >= TARGET_LIVE,
            "inspection {i}: {m:?}"
        );
        assert!(
            m.arena > 0 && m.fordblks + m.uordblks <= m.arena,
            "inspection {i}: {m:?}"
        );
        let text = h
            .malloc_stats
            .text()
            .unwrap_or_else(|| panic!("inspection {i}: {:?}", h.malloc_stats));
        for want in [
            "Arena 0:",
            "system bytes",
            "in use bytes",
            "Total (incl. mmap):",
            "max mmap bytes",
        ] {
            assert!(
                text.contains(want),
                "inspection {i}: no {want:?} in\n{text}"
            );
        }
        stops.push((h.stopped_for, h.attempts, h.calls));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    let f = p.finish("quit\n");
    assert_eq!(f.code, Some(7), "{}", f.show());
    assert_eq!(
        f.stdout,
        format!("blocks intact\nmask ok\nrt {sent}\ndone\nsegv handler ran\n"),
        "{}",
        f.show()
    );
    assert_eq!(
        f.stderr, "",
        "malloc_stats' text must not reach the program's stderr"
    );
    stops.sort();
    eprintln!(
        "stopped: min {:?}, median {:?}, max {:?} (attempts, calls of the median: {}, {})",
        stops[0].0, stops[15].0, stops[29].0, stops[15].1, stops[15].2
    );
}

#[test]
fn job_control_during_inspections_is_kept() {
    // SIGSTOP and SIGCONT keep arriving, also while a call runs: a stop that reaches the
    // inspected thread is held and delivered on detach, a group stop is resumed for the call
    // and re-entered after it.
    let mut p = Ready::start("remote_target.c", &[], &[]);
    let pid = p.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for sig in [libc::SIGSTOP, libc::SIGCONT] {
                    // SAFETY: kill takes integers only.
                    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
                    std::thread::sleep(Duration::from_micros(700));
                }
            }
        })
    };
    for i in 0..30 {
        let h = heap_of(pid, &RemoteOptions::default())
            .unwrap_or_else(|e| panic!("inspection {i}: {e}"));
        assert!(
            h.mallinfo.uordblks + h.mallinfo.hblkhd >= TARGET_LIVE,
            "{:?}",
            h.mallinfo
        );
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let f = p.finish("quit\n");
    assert_eq!(f.code, Some(7), "{}", f.show());
    assert_eq!(
        f.stdout,
        "blocks intact\nmask ok\nrt 0\ndone\nsegv handler ran\n",
        "{}",
        f.show()
    );
}

#[test]
fn a_read_in_progress_completes_after_the_inspection() {
    let mut p = Ready::start("remote_blocked.c", &[], &[]);
    let h = heap_of(p.pid(), &RemoteOptions::default()).unwrap();
    assert!(
        h.mallinfo.hblks >= 1 && h.mallinfo.hblkhd >= 300_000,
        "{:?}",
        h.mallinfo
    );
    assert_eq!(h.attempts, 1);
    assert!(
        h.malloc_stats
            .text()
            .is_some_and(|t| t.contains("Arena 0:")),
        "{:?}",
        h.malloc_stats
    );
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str(), f.stderr.as_str()),
        (Some(3), "got hello\n", "stderr still works\n"),
        "{}",
        f.show()
    );
}

#[test]
fn registers_of_a_thread_stopped_in_user_code_are_restored() {
    // The main thread spins with known values in general and vector registers (all 256 bits with
    // AVX2: glibc's string functions end with vzeroupper) and checks them after each spin.
    let mut p = Ready::start("remote_regs.c", &[], &[]);
    for i in 0..20 {
        let h = heap_of(p.pid(), &RemoteOptions::default())
            .unwrap_or_else(|e| panic!("inspection {i}: {e}"));
        assert!(h.malloc_stats.text().is_some(), "{:?}", h.malloc_stats);
    }
    let f = p.finish("quit\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(0), "regs ok\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_stopped_process_is_inspected_and_stays_stopped() {
    let mut p = Ready::start("remote_blocked.c", &[], &[]);
    let pid = p.pid();
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    until("the process stops", || state(pid) == 'T');
    let h = heap_of(pid, &RemoteOptions::default()).unwrap();
    assert!(h.mallinfo.hblkhd >= 300_000, "{:?}", h.mallinfo);
    until("the process is stopped again", || state(pid) == 'T');
    // SAFETY: kill takes integers only.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_thread_holding_the_arena_lock_makes_it_busy_and_is_not_disturbed() {
    // A thread blocks inside malloc_stats() holding the main arena's lock until its stderr is read.
    let mut p = Ready::start("remote_busy.c", &[], &["stats"]);
    let opts = RemoteOptions {
        call_timeout: Duration::from_millis(100),
        max_attempts: 3,
    };
    match heap_of(p.pid(), &opts) {
        Err(e @ RemoteError::Busy { attempts: 3, .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("allocator's lock")
                    && msg.contains("try again")
                    && !msg.contains('\n'),
                "{msg}"
            );
        }
        other => panic!("expected Busy after 3 attempts, got {other:?}"),
    }
    // Draining stderr lets the thread finish; the abandoned waits left the lock working.
    let f = p.finish("quit\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(4), "done\n"),
        "{}",
        f.show()
    );
    assert!(
        f.stderr.contains("Arena 0:") && f.stderr.contains("Total (incl. mmap):"),
        "{}",
        f.show()
    );
}

#[test]
fn a_thread_writing_to_stderr_leaves_mallinfo_but_skips_malloc_stats() {
    let mut p = Ready::start("remote_busy.c", &[], &["print"]);
    let opts = RemoteOptions {
        call_timeout: Duration::from_millis(100),
        max_attempts: 3,
    };
    let h = heap_of(p.pid(), &opts).unwrap();
    assert!(h.mallinfo.uordblks >= 5000, "{:?}", h.mallinfo);
    assert_eq!(h.attempts, 3);
    match &h.malloc_stats {
        MallocStats::Skipped(why) => assert!(why.contains("writing to stderr"), "{why}"),
        other => panic!("expected a skip, got {other:?}"),
    }
    let f = p.finish("quit\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(4), "done\n"),
        "{}",
        f.show()
    );
    assert!(f.stderr.ends_with("a line that waits\n"), "{}", f.show());
}

#[test]
fn a_process_killed_during_a_call_is_reported_as_died() {
    let mut p = Ready::start("remote_busy.c", &[], &["stats"]);
    let pid = p.pid();
    // The call waits for the arena lock for up to a minute; the process is killed meanwhile.
    let killer = std::thread::spawn(move || {
        until("memcheck attaches", || tracer_of(pid) != 0);
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill takes integers only.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let opts = RemoteOptions {
        call_timeout: Duration::from_secs(60),
        max_attempts: 1,
    };
    let r = heap_of(pid, &opts);
    killer.join().unwrap();
    assert!(
        matches!(r, Err(RemoteError::Died { pid: p2 }) if p2 == pid),
        "{r:?}"
    );
    let f = p.finish("");
    assert_eq!(f.signal, Some(libc::SIGKILL), "{}", f.show());
}

#[test]
fn a_leader_that_exited_is_replaced_by_a_live_thread() {
    let mut p = Ready::start("remote_leaderless.c", &[], &[]);
    let pid = p.pid();
    assert_eq!(state(pid), 'Z', "the main thread has exited");
    let h = heap_of(pid, &RemoteOptions::default()).unwrap();
    assert_ne!(h.tid, pid);
    assert!(h.mallinfo.hblkhd >= 200_000, "{:?}", h.mallinfo);
    let f = p.finish("quit\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(5), "worker done\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_missing_process_is_named() {
    let pid = i32::MAX;
    match heap_of(pid, &RemoteOptions::default()) {
        Err(e @ RemoteError::NoSuchProcess(p)) if p == pid => {
            assert_eq!(
                e.to_string(),
                format!("no process with pid {pid} (it may have exited; check the pid with `ps -p {pid}`)")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        heap_of(0, &RemoteOptions::default()),
        Err(RemoteError::NoSuchProcess(0))
    ));
}

#[test]
fn a_static_program_has_no_glibc_heap_to_ask() {
    let mut p = Ready::start("remote_blocked.c", &["-static"], &[]);
    match heap_of(p.pid(), &RemoteOptions::default()) {
        Err(e @ RemoteError::NoGlibc { .. }) => {
            assert!(e.to_string().contains("statically linked"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_traced_process_names_its_tracer() {
    let mut p = Ready::start("remote_blocked.c", &[], &[]);
    let pid = p.pid();
    let tracer_exe = common::compile("remote_tracer.c", &[]);
    let mut tracer = Command::new(tracer_exe)
        .arg(pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(tracer.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "attached\n");
    match heap_of(pid, &RemoteOptions::default()) {
        Err(e @ RemoteError::AlreadyTraced { .. }) => {
            let RemoteError::AlreadyTraced {
                tracer: t,
                tracer_name,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(
                (*t, tracer_name.as_str()),
                (tracer.id() as i32, "remote_tracer")
            );
            assert!(e.to_string().contains("detach that debugger"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    tracer.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(tracer.wait().unwrap().success());
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_seccomp_filtered_process_is_refused_untouched() {
    let mut p = Ready::start("remote_blocked.c", &[], &["seccomp"]);
    match heap_of(p.pid(), &RemoteOptions::default()) {
        Err(e @ RemoteError::Unsupported { .. }) => {
            assert!(e.to_string().contains("seccomp filter"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

/// Calls `heap_of(pid)` in a forked child running as `uid` (when given; root drops to it) and
/// returns the error message, or what it got instead.
fn refusal_as(uid: Option<u32>, pid: i32) -> String {
    use nix::unistd::{fork, setgroups, setresgid, setresuid, ForkResult, Gid, Uid};
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only calls into memcheck and writes to a pipe before _exit; it neither
    // returns into the test harness nor touches locks other threads may have held at fork time.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let result = std::panic::catch_unwind(|| {
                if let Some(uid) = uid {
                    setgroups(&[]).unwrap();
                    let (g, u) = (Gid::from_raw(uid), Uid::from_raw(uid));
                    setresgid(g, g, g).unwrap();
                    setresuid(u, u, u).unwrap();
                }
                let msg = match heap_of(pid, &RemoteOptions::default()) {
                    Err(e @ RemoteError::PermissionDenied { .. }) => format!("denied: {e}"),
                    other => format!("unexpected: {other:?}"),
                };
                let _ = nix::unistd::write(&w, msg.as_bytes());
            });
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(i32::from(result.is_err())) }
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            std::fs::File::from(r).read_to_string(&mut msg).unwrap();
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(child, 0),
                "{msg}"
            );
            msg
        }
    }
}

const NOBODY: u32 = 65534;

#[test]
fn another_users_process_is_refused_with_the_reason() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test drops from root to another user: run it as root"
    );
    let mut p = Ready::start("remote_blocked.c", &[], &[]);
    let pid = p.pid();
    assert_eq!(
        refusal_as(Some(NOBODY), pid),
        format!(
            "denied: process {pid}: not allowed to trace it: it runs as uid 0 and memcheck as uid \
             {NOBODY}; run memcheck as that user, or as root"
        )
    );
    let f = p.finish("hello\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

#[test]
fn a_non_dumpable_process_of_the_same_user_is_refused_with_the_reason() {
    // Root may trace anything, so as root both sides run as another user.
    let root = nix::unistd::geteuid().is_root();
    let exe = common::compile("remote_blocked.c", &[]);
    let mut cmd = Command::new(exe);
    if root {
        use std::os::unix::process::CommandExt;
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let mut p = Ready::spawn("remote_blocked.c", cmd.arg("nodump"));
    let pid = p.pid();
    let msg = refusal_as(root.then_some(NOBODY), pid);
    let f = p.finish("hello\n");
    assert!(
        msg.starts_with(&format!(
            "denied: process {pid}: not allowed to trace it: it made itself non-dumpable"
        )),
        "{msg}"
    );
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(3), "got hello\n"),
        "{}",
        f.show()
    );
}

#[test]
fn inspecting_itself_is_refused() {
    let pid = std::process::id() as i32;
    match heap_of(pid, &RemoteOptions::default()) {
        Err(e @ RemoteError::Unsupported { .. }) => {
            assert!(e.to_string().contains("cannot trace itself"), "{e}")
        }
        other => panic!("{other:?}"),
    }
}
