//! `memcheck stats PID`: live heap figures of a process under memcheck (its statistics page, no
//! stop) and of a plain process (glibc's mallinfo2 through ptrace), with the target running on
//! unchanged.
mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const HELD: u64 = 5 * 100_000 + 1000 * 100;

/// Starts a ready-line program (holder.c prints `ready PID`).
fn start(cmd: &mut Command) -> Ready {
    Ready::spawn("holder.c", cmd)
}

/// Lets holder.c finish: its status, the rest of its stdout, its stderr.
fn finish(mut t: Ready) -> (Option<i32>, String, String) {
    let f = t.finish("go\n");
    (f.code, f.stdout, f.stderr)
}

fn stats(pid: i32, extra: &[&str]) -> (Run, Value) {
    let r = run_cmd(
        Command::new(memcheck())
            .args(["stats", "--format", "json"])
            .args(extra)
            .arg(pid.to_string()),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let v: Value =
        serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", r.show()));
    (r, v)
}

#[test]
fn a_process_under_memcheck_reports_its_live_bytes_without_stopping() {
    let prog = compile("holder.c", &[]);
    let t = start(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "--"])
            .arg(&prog),
    );
    let mut last = Value::Null;
    for _ in 0..20 {
        let (r, v) = stats(t.pid, &[]);
        assert_eq!(v["shim"], true, "{}", r.show());
        assert_eq!(
            v["stopped_ms"],
            0.0,
            "the process must not be stopped\n{}",
            r.show()
        );
        assert!(v["mallinfo"].is_null(), "{}", r.show());
        let live = v["heap"]["live_bytes"].as_u64().unwrap();
        // The held bytes, plus at most what the churn thread and stdio hold at that moment.
        assert!(
            (HELD..HELD + 64 * 1024).contains(&live),
            "live {live}\n{}",
            r.show()
        );
        assert!(
            v["heap"]["live_blocks"].as_u64().unwrap() >= 1005,
            "{}",
            r.show()
        );
        assert!(
            v["heap"]["peak_bytes"].as_u64().unwrap() >= HELD,
            "{}",
            r.show()
        );
        assert!(v["process"]["rss_kb"].as_u64().unwrap() > 0, "{}", r.show());
        last = v;
    }
    let hist: u64 = last["heap"]["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["blocks"].as_u64().unwrap())
        .sum();
    assert_eq!(hist, last["heap"]["live_blocks"].as_u64().unwrap());
    let (code, out, _) = finish(t);
    assert_eq!(code, Some(7));
    assert_eq!(out, "bye\n");
}

#[test]
fn a_plain_process_reports_glibc_figures_and_runs_on_unchanged() {
    let prog = compile("holder.c", &[]);
    let t = start(&mut Command::new(&prog));
    for _ in 0..30 {
        let (r, v) = stats(t.pid, &[]);
        assert_eq!(v["shim"], false, "{}", r.show());
        assert!(v["heap"].is_null(), "{}", r.show());
        let m = &v["mallinfo"];
        assert!(m.is_object(), "{}", r.show());
        for f in [
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        ] {
            assert!(m[f].is_u64(), "mallinfo lacks {f}\n{}", r.show());
        }
        let used = m["uordblks"].as_u64().unwrap() + m["hblkhd"].as_u64().unwrap();
        assert!(used >= HELD, "in use {used}\n{}", r.show());
        assert!(
            v["malloc_stats"].as_str().unwrap().contains("system bytes"),
            "{}",
            r.show()
        );
    }
    let (code, out, err) = finish(t);
    assert_eq!(code, Some(7), "{err}");
    assert_eq!(out, "bye\n");
    assert_eq!(
        err, "",
        "malloc_stats output must not leak into the target's stderr"
    );
}

#[test]
fn text_view_explains_the_fields_and_watch_prints_lines() {
    let prog = compile("holder.c", &[]);
    let t = start(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "--"])
            .arg(&prog),
    );
    let r = run_cmd(
        Command::new(memcheck())
            .args(["stats", "--ptrace"])
            .arg(t.pid.to_string())
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let s = r.stdout();
    assert!(s.contains("live "), "{s}");
    assert!(
        s.contains("uordblks") && s.contains("bytes in use by allocated chunks"),
        "{s}"
    );
    assert!(s.contains("rss"), "{s}");
    let mut w = Command::new(memcheck())
        .args(["stats", "--watch", "0.2"])
        .arg(t.pid.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(w.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let l = lines.next().unwrap().unwrap();
        assert!(
            l.contains(&format!("pid={}", t.pid)) && l.contains("live_bytes="),
            "{l}"
        );
    }
    let (code, _, _) = finish(t);
    assert_eq!(code, Some(7));
    // The watcher ends by itself once the process is gone.
    let status = w.wait().unwrap();
    assert!(status.success());
}

#[test]
fn a_missing_pid_is_one_clear_line_and_exit_status_1() {
    // With and without --watch, in both formats: the same line and status as `maps`.
    for args in [
        &["stats", "999999999"][..],
        &["stats", "--format", "json", "999999999"],
        &["stats", "--watch", "1", "999999999"],
        &["stats", "--watch", "1", "--format", "json", "999999999"],
        &["maps", "999999999"],
    ] {
        let r = run_cmd(Command::new(memcheck()).args(args));
        assert_eq!(r.code(), Some(1), "{}", r.show());
        assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
        assert_eq!(
            r.stderr(),
            "memcheck: error: no process with pid 999999999 (it may have exited; check the pid \
             with `ps -p 999999999`)\n",
            "{}",
            r.show()
        );
        assert_eq!(r.stdout(), "", "{}", r.show());
    }
}

#[test]
fn the_memcheck_cli_pid_names_the_checked_child() {
    let prog = compile("holder.c", &[]);
    let t = start(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "--"])
            .arg(&prog),
    );
    // `$!` after `memcheck run ... &` is the CLI, whose child is the program.
    let cli = t.child.id() as i32;
    assert_ne!(cli, t.pid);
    let (r, v) = stats(cli, &["--no-ptrace"]);
    assert_eq!(v["version"], 1, "{}", r.show());
    assert_eq!(v["memcheck_children"][0], t.pid, "{}", r.show());
    let text = run_cmd(
        Command::new(memcheck())
            .args(["stats", "--no-ptrace"])
            .arg(cli.to_string())
            .env("NO_COLOR", "1"),
    );
    assert_eq!(text.code(), Some(0), "{}", text.show());
    assert!(
        text.stdout()
            .contains(&format!("the checked program is its child, pid {}", t.pid)),
        "{}",
        text.show()
    );
    // The program itself is not a memcheck CLI.
    let (r, v) = stats(t.pid, &[]);
    assert!(v["memcheck_children"].is_null(), "{}", r.show());
    let (code, _, _) = finish(t);
    assert_eq!(code, Some(7));
}
