//! `memcheck run --snapshot-interval SECS` and `--snapshot-signal SIG`: live-sites snapshots of
//! the running program, on stderr (`==PID==` lines), in the JSON report's `snapshots` and as
//! `FILE.snapshot-N.svg` flame graphs; the program's output and exit status unchanged, and the
//! snapshots kept when the run ends by a SIGTERM to memcheck.
mod common;
use common::*;
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The site of grow.c's growing block in a snapshot.
fn grow_site(snap: &Value, line: u64) -> &Value {
    snap["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| has_frame(&s["stack"], "main", "grow.c", Some(line)))
        .unwrap_or_else(|| panic!("no grow.c:{line} site in {snap}"))
}

fn wait_for(path: &Path, secs: u64) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{} never came",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn interval_snapshots_show_the_growing_site_and_leave_the_program_alone() {
    let line = line_of("grow.c", "the growing site");
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let report = dir.path().join("r.json");
    // Growing until told, a snapshot every half second, told after the third (the first one
    // symbolizes libc, which takes a while on a loaded machine: ticks missed meanwhile are
    // skipped, so the test waits for the snapshots rather than for a time).
    let mut t = grow_under(
        &[
            "--snapshot-interval=0.5",
            "--flamegraph",
            svg.to_str().unwrap(),
        ],
        &report,
        "0",
    );
    wait_for(&dir.path().join("run.snapshot-3.svg"), 120);
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(3), "{}", f.show());
    let grew: u64 = f
        .stdout
        .strip_prefix("waiting\ngrew ")
        .and_then(|r| r.strip_suffix(" blocks\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", f.show()));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let p = &v["processes"][0];
    let pid = p["pid"].as_u64().unwrap();
    assert_eq!(p["leak_summary"]["definite"]["blocks"], 0, "{v}");
    assert!(
        p["leak_summary"]["reachable"]["blocks"].as_u64().unwrap() >= grew,
        "{v}"
    );
    let err = &f.stderr;
    let snaps = p["snapshots"].as_array().unwrap();
    assert!(snaps.len() >= 3, "{}", f.show());
    let mut last = 0;
    for (i, s) in snaps.iter().enumerate() {
        assert_eq!(s["number"], i as u64 + 1, "{s}");
        assert_eq!(s["trigger"], "interval", "{s}");
        let site = grow_site(s, line);
        let blocks = site["blocks"].as_u64().unwrap();
        assert_eq!(site["bytes"].as_u64().unwrap(), blocks * 1000, "{site}");
        assert_eq!(site["allocs"].as_u64().unwrap(), blocks, "{site}");
        assert!(blocks >= last, "the site shrinks: {}", f.show());
        if i > 0 {
            assert_eq!(
                site["growth_blocks"].as_i64().unwrap(),
                (blocks - last) as i64,
                "{site}"
            );
        }
        last = blocks;
        assert!(s["live_bytes"].as_u64().unwrap() >= blocks * 1000, "{s}");
    }
    let first = grow_site(&snaps[0], line)["blocks"].as_u64().unwrap();
    assert!(last > first, "the site does not grow: {}", f.show());
    // On stderr as they were taken, with the exit report's prefix.
    assert!(
        err.contains(&format!("=={pid}== Snapshot 1 of pid {pid} (interval")),
        "{}",
        f.show()
    );
    assert!(
        err.contains(&format!("main (grow.c:{line})")),
        "{}",
        f.show()
    );
    // One flame graph per snapshot beside --flamegraph's, which is still the exit report's.
    for n in 1..=snaps.len() {
        let g = dir.path().join(format!("run.snapshot-{n}.svg"));
        let text = std::fs::read_to_string(&g).unwrap_or_else(|e| panic!("{}: {e}", g.display()));
        assert!(
            text.contains("<svg") && text.contains("grow.c"),
            "{}",
            g.display()
        );
    }
    assert!(svg.exists());
}

/// `memcheck run FLAGS --format json --output REPORT -- grow TICKS` as a [`Ready`] (its child
/// is memcheck).
fn grow_under(flags: &[&str], report: &Path, ticks: &str) -> Ready {
    let prog = compile("grow.c", &[]);
    Ready::spawn(
        "grow.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .arg("run")
            .args(flags)
            .arg("--format=json")
            .arg("--output")
            .arg(report)
            .arg("--")
            .arg(&prog)
            .arg(ticks),
    )
}

#[test]
fn a_signal_to_memcheck_takes_a_snapshot_and_is_not_passed_on() {
    let line = line_of("grow.c", "the growing site");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let svg = dir.path().join("g.svg");
    let mut t = grow_under(
        &[
            "--snapshot-signal=SIGUSR1",
            "--flamegraph",
            svg.to_str().unwrap(),
        ],
        &report,
        "5",
    );
    let mut l = String::new();
    t.out.read_line(&mut l).unwrap();
    assert_eq!(l, "waiting\n");
    let memcheck_pid = t.child.id() as i32;
    for n in 1..=2 {
        // SAFETY: kill has no memory preconditions.
        assert_eq!(unsafe { libc::kill(memcheck_pid, libc::SIGUSR1) }, 0);
        wait_for(&dir.path().join(format!("g.snapshot-{n}.svg")), 30);
    }
    let f = t.finish("go\n");
    // USR1's default action would have ended the program: it never got it.
    assert_eq!(f.code, Some(3), "{}", f.show());
    assert_eq!(f.stdout, "grew 5 blocks\n", "{}", f.show());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let snaps = v["processes"][0]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{v}");
    for s in snaps {
        assert_eq!(s["trigger"], "signal", "{s}");
        assert_eq!(grow_site(s, line)["blocks"], 5, "{s}");
    }
    assert_eq!(grow_site(&snaps[1], line)["growth_blocks"], 0);
    assert!(f.stderr.contains("Snapshot 2 of pid"), "{}", f.show());
}

#[test]
fn a_sigterm_to_memcheck_keeps_the_snapshots_and_the_exit_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let svg = dir.path().join("g.svg");
    let mut t = grow_under(
        &[
            "--snapshot-interval=0.3",
            "--flamegraph",
            svg.to_str().unwrap(),
        ],
        &report,
        "100000",
    );
    wait_for(&dir.path().join("g.snapshot-2.svg"), 30);
    let memcheck_pid = t.child.id() as i32;
    // A timeout's kill.
    // SAFETY: kill has no memory preconditions.
    assert_eq!(unsafe { libc::kill(memcheck_pid, libc::SIGTERM) }, 0);
    let f = t.finish("");
    assert_eq!(f.code, Some(128 + libc::SIGTERM), "{}", f.show());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let p = &v["processes"][0];
    assert!(p["snapshots"].as_array().unwrap().len() >= 2, "{v}");
    assert_eq!(p["exit"]["signal"], libc::SIGTERM, "{v}");
    assert!(p["leak_summary"].is_object(), "{v}");
    assert!(f.stderr.contains("Snapshot 2 of pid"), "{}", f.show());
}

#[test]
fn snapshots_go_into_the_log_file_and_a_bad_signal_is_refused_in_one_line() {
    let prog = compile("grow.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--snapshot-interval=0.5", "--log-file"])
            .arg(&log)
            .arg("--")
            .arg(&prog)
            .arg("12"),
    );
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Snapshot 1 of pid"), "{text}");
    assert!(!r.stderr().contains("Snapshot"), "{}", r.show());

    for (sig, why) in [
        ("KILL", "cannot be caught"),
        ("TERM", "ends the run"),
        ("SEGV", "crash"),
        ("62", "live-check signal"),
        ("CHLD", "program ended"),
        ("USR9", "not a signal"),
    ] {
        let r = run_cmd(
            Command::new(memcheck())
                .args(["run", &format!("--snapshot-signal={sig}"), "--"])
                .arg(&prog),
        );
        assert_eq!(r.code(), Some(2), "{}", r.show());
        assert!(r.stderr().contains(why), "{sig}: {}", r.show());
        assert!(!r.stdout().contains("ready"), "{}", r.show());
    }
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--snapshot-interval=0", "--"])
            .arg(&prog),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
}
