//! `memcheck leaks PID`: a leak check of a process running under `memcheck run`, while it runs.
//! The threads pause only for the scan (in process, by a signal handler), their registers and
//! stacks are roots, the program goes on with its output unchanged, and `--since-last` shows only
//! what is new since the previous check.
mod common;
use common::*;
use serde_json::Value;
use std::io::BufRead;
use std::process::Command;

/// `memcheck leaks --format json EXTRA PID`, which must succeed.
fn leaks(pid: i32, extra: &[&str]) -> (Run, Value) {
    let r = run_cmd(
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["leaks", "--format", "json"])
            .args(extra)
            .arg(pid.to_string()),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let v: Value =
        serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", r.show()));
    (r, v)
}

/// `kill(pid, sig)`, which must succeed.
fn send(pid: i32, sig: i32) {
    // SAFETY: kill has no memory preconditions; the pid is a test program's.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

fn the_process(v: &Value) -> &Value {
    &v["processes"][0]
}

/// The leak groups of the report whose stack has a frame in `func` of `file`.
fn groups<'a>(v: &'a Value, func: &str, file: &str) -> Vec<&'a Value> {
    the_process(v)["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| has_frame(&l["stack"], func, file, None))
        .collect()
}

fn blocks(gs: &[&Value]) -> u64 {
    gs.iter().map(|g| g["blocks"].as_u64().unwrap()).sum()
}

/// Reads the program's stdout up to a line `tick N` with N >= `n`; returns that N.
fn wait_tick(t: &mut Ready, lines: &mut Vec<String>, n: u64) -> u64 {
    loop {
        let mut line = String::new();
        assert!(
            t.out.read_line(&mut line).unwrap() > 0,
            "the program ended early: {lines:?}"
        );
        let line = line.trim_end().to_string();
        lines.push(line.clone());
        if let Some(k) = line
            .strip_prefix("tick ")
            .and_then(|k| k.parse::<u64>().ok())
        {
            if k >= n {
                return k;
            }
        }
    }
}

/// Every line of `out` is `tick 0`, `tick 1`, ... in order, then `done`.
fn assert_ticks_in_order(lines: &[String], what: &str) {
    let (last, ticks) = lines.split_last().unwrap();
    assert_eq!(last, "done", "{what}: {lines:?}");
    for (i, l) in ticks.iter().enumerate() {
        assert_eq!(l, &format!("tick {i}"), "{what}: {lines:?}");
    }
}

fn slow_leak_checked_twice(mode: &[&str]) {
    let prog = compile("live_slow.c", &[]);
    let mut t = Ready::spawn(
        "live_slow.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .arg("run")
            .args(mode)
            .arg("--")
            .arg(&prog),
    );
    let mut lines = Vec::new();
    let t1 = wait_tick(&mut t, &mut lines, 1);

    // The first check has no previous one: everything is shown, the start-up leak too.
    let (r1, v1) = leaks(t.pid, &["--since-last"]);
    let at_start = groups(&v1, "leak_at_start", "live_slow.c");
    assert_eq!(blocks(&at_start), 1, "{}", r1.show());
    assert_eq!(at_start[0]["kind"], "definite", "{}", r1.show());
    let first_ticks = blocks(&groups(&v1, "leak_tick", "live_slow.c"));
    assert!(first_ticks >= t1, "{}", r1.show());
    let notes = the_process(&v1)["notes"].to_string();
    assert!(notes.contains("threads paused"), "{}", r1.show());
    assert!(notes.contains("no previous check"), "{}", r1.show());

    // Two ticks later: only the blocks leaked since, with the ticker's stack.
    let t2 = wait_tick(&mut t, &mut lines, t1 + 2);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("new.svg");
    let (r2, v2) = leaks(
        t.pid,
        &["--since-last", "--flamegraph", svg.to_str().unwrap()],
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("leak_tick (live_slow.c:"), "{svg}");
    assert!(
        !svg.contains("leak_at_start"),
        "the flame graph draws the listed (new) leaks only"
    );
    assert!(
        groups(&v2, "leak_at_start", "live_slow.c").is_empty(),
        "the start-up leak was reported before\n{}",
        r2.show()
    );
    let new = groups(&v2, "leak_tick", "live_slow.c");
    assert!(!new.is_empty(), "{}", r2.show());
    assert!(
        new.iter()
            .all(|g| g["kind"] == "definite"
                && has_frame(&g["stack"], "ticker", "live_slow.c", None)),
        "{}",
        r2.show()
    );
    let new_blocks = blocks(&new);
    assert!(new_blocks >= t2 - t1 - 1, "{}", r2.show());
    assert_eq!(
        new.iter()
            .map(|g| g["bytes"].as_u64().unwrap())
            .sum::<u64>(),
        64 * new_blocks,
        "{}",
        r2.show()
    );
    // Fewer than every tick block: the ones of the first check are not repeated.
    let (_, definite_now) = {
        let s = &the_process(&v2)["leak_summary"]["definite"];
        (s["bytes"].as_u64().unwrap(), s["blocks"].as_u64().unwrap())
    };
    assert_eq!(
        definite_now,
        1 + first_ticks + new_blocks,
        "the summary is the whole of now: the start-up block, the first check's and the new ones\n{}",
        r2.show()
    );
    assert!(
        the_process(&v2)["leaks"].as_array().unwrap().len() == new.len(),
        "{}",
        r2.show()
    );

    // The text report of a check without --since-last lists every leak.
    let r3 = run_cmd(
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["leaks", &t.pid.to_string()]),
    );
    assert_eq!(r3.code(), Some(0), "{}", r3.show());
    let text = r3.stdout();
    assert!(text.contains("definitely lost"), "{}", r3.show());
    assert!(text.contains("leak_at_start"), "{}", r3.show());
    assert!(text.contains("LEAK SUMMARY"), "{}", r3.show());

    wait_tick(&mut t, &mut lines, t2 + 1);
    let f = t.finish("");
    assert_eq!(f.code, Some(0), "{}", f.show());
    lines.extend(f.stdout.lines().map(str::to_string));
    assert_ticks_in_order(&lines, "checked three times");

    // The same program without checks prints the same lines.
    let mut u = Ready::spawn(
        "live_slow.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .arg("run")
            .args(mode)
            .arg("--")
            .arg(&prog),
    );
    let mut plain = Vec::new();
    wait_tick(&mut u, &mut plain, 2);
    let f = u.finish("");
    assert_eq!(f.code, Some(0), "{}", f.show());
    plain.extend(f.stdout.lines().map(str::to_string));
    assert_ticks_in_order(&plain, "not checked");
    let n = plain.len().min(lines.len()) - 1;
    assert_eq!(plain[..n], lines[..n]);
}

#[test]
fn a_slow_leak_stands_out_after_two_checks_and_the_program_runs_on_unchanged() {
    slow_leak_checked_twice(&[]);
}

#[test]
fn a_slow_leak_stands_out_under_guard_too() {
    slow_leak_checked_twice(&["--guard"]);
}

fn threads_are_roots(mode: &[&str]) {
    let prog = compile("live_threads.c", &[]);
    let mut t = Ready::spawn(
        "live_threads.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .arg("run")
            .args(mode)
            .arg("--")
            .arg(&prog),
    );
    let (r, v) = leaks(t.pid, &["--show-leak-kinds=all"]);
    let held = groups(&v, "block_of", "live_threads.c");
    assert_eq!(
        blocks(&held),
        4,
        "the four blocks the threads hold\n{}",
        r.show()
    );
    for g in &held {
        assert_eq!(
            g["kind"],
            "reachable",
            "a block held in a register or on the stack of a paused thread is reachable\n{}",
            r.show()
        );
    }
    let notes = the_process(&v)["notes"].to_string();
    assert!(notes.contains("3 threads paused"), "{}", r.show());
    assert!(!notes.contains("could not be paused"), "{}", r.show());
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
    assert_eq!(f.stdout.trim(), "ok", "{}", f.show());
}

#[test]
fn threads_blocked_in_read_and_busy_in_a_loop_are_scanned_with_their_registers() {
    threads_are_roots(&[]);
}

#[test]
fn threads_are_scanned_with_their_registers_under_guard() {
    threads_are_roots(&["--guard"]);
}

#[test]
fn a_process_not_under_memcheck_is_answered_in_one_line() {
    let mut t = Ready::start("live_threads.c", &[], &[]);
    let r = run_cmd(Command::new(memcheck()).args(["leaks", &t.pid.to_string()]));
    assert_eq!(r.code(), Some(1), "{}", r.show());
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{}", r.show());
    assert!(
        err.contains("is not running under memcheck"),
        "{}",
        r.show()
    );
    assert!(err.contains("memcheck run"), "{}", r.show());
    assert!(r.stdout().is_empty(), "{}", r.show());
    // The process was left alone.
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());

    let r = run_cmd(Command::new(memcheck()).args(["leaks", "2147483646"]));
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
    assert!(r.stderr().contains("no process with pid"), "{}", r.show());
}

#[test]
fn a_program_handler_for_the_signal_keeps_working() {
    let prog = compile("live_handler.c", &[]);
    let mut t = Ready::spawn(
        "live_handler.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    // A plain kill of the signal is the program's.
    send(t.pid, 62);
    let mut line = String::new();
    t.out.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "handler 62", "the program's handler ran");
    // memcheck's request is not; the pid of the `memcheck run` CLI names its program.
    let (r, v) = leaks(t.child.id() as i32, &[]);
    assert_eq!(the_process(&v)["pid"], t.pid, "{}", r.show());
    assert_eq!(
        blocks(&groups(&v, "main", "live_handler.c")),
        1,
        "{}",
        r.show()
    );
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
    assert_eq!(
        f.stdout.trim(),
        "handled 1, old handler was the program's",
        "{}",
        f.show()
    );
}

#[test]
fn a_stopped_process_is_answered_after_the_timeout_in_one_line() {
    let prog = compile("live_handler.c", &[]);
    let mut t = Ready::spawn(
        "live_handler.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    let pid = t.pid.to_string();
    send(t.pid, libc::SIGSTOP);
    let r = run_cmd(Command::new(memcheck()).args(["leaks", "--timeout", "1", &pid]));
    send(t.pid, libc::SIGCONT);
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
    assert!(
        r.stderr()
            .contains(&format!("pid {pid} did not answer within 1 s")),
        "{}",
        r.show()
    );
    // Once it runs again, it answers the next check, in every format of the exit report.
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("l.sarif");
    let junit = dir.path().join("l.xml");
    let valgrind = dir.path().join("l.valgrind.xml");
    let r = run_cmd(
        Command::new(memcheck())
            .args(["leaks", "--format", "sarif", "-o"])
            .arg(&sarif)
            .arg("--report")
            .arg(format!("junit={}", junit.display()))
            .arg("--report")
            .arg(format!("xml={}", valgrind.display()))
            .arg(&pid),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert!(
        s.to_string().contains("definite"),
        "the definite leak is a SARIF result: {s}"
    );
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<testsuite"));
    // Valgrind's XML of the running process, read by ValgrindCI's parser (pip).
    let read = run_cmd(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, xml.etree.ElementTree as et\n\
         from ValgrindCI.parse import ValgrindData\n\
         root = et.parse(sys.argv[1]).getroot()\n\
         d = ValgrindData(); d.parse(sys.argv[1])\n\
         print(','.join(s.text for s in root.findall('status/state')), root.find('pid').text, \
               sorted(set(e.kind for e in d.errors)))",
            )
            .arg(&valgrind),
    );
    assert_eq!(read.code(), Some(0), "{}", read.show());
    assert!(
        read.stdout()
            .starts_with(&format!("RUNNING,FINISHED {pid} "))
            && read.stdout().contains("Leak_DefinitelyLost"),
        "{}",
        read.show()
    );
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
}

/// `memcheck stats PID --sites` (JSON), which must succeed.
fn sites(pid: i32, extra: &[&str]) -> (Run, Value) {
    let r = run_cmd(
        Command::new(memcheck())
            .args(["stats", "--sites", "--format", "json"])
            .args(extra)
            .arg(pid.to_string()),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let v: Value =
        serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("{e}\n{}", r.show()));
    (r, v)
}

#[test]
fn stats_sites_lists_the_stack_that_holds_most_of_the_memory_first() {
    let prog = compile("holder.c", &[]);
    let mut t = Ready::spawn(
        "holder.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    let big = line_of("holder.c", "big[i] = malloc");
    let small = line_of("holder.c", "small[i] = malloc");
    let (r, v) = sites(t.pid, &[]);
    let top = &v["sites"][0];
    assert!(
        has_frame(&top["stack"], "main", "holder.c", Some(big)),
        "{}",
        r.show()
    );
    assert_eq!(
        (top["bytes"].as_u64(), top["blocks"].as_u64()),
        (Some(500_000), Some(5))
    );
    assert!(
        top["percent_bytes"].as_f64().unwrap() > 50.0,
        "{}",
        r.show()
    );
    assert!(v["total_sites"].as_u64().unwrap() >= 2, "{}", r.show());
    assert!(v["live_bytes"].as_u64().unwrap() >= 600_000, "{}", r.show());

    let (r, v) = sites(t.pid, &["--sort", "blocks", "--top", "1"]);
    assert_eq!(v["sites"].as_array().unwrap().len(), 1, "{}", r.show());
    assert!(
        has_frame(&v["sites"][0]["stack"], "main", "holder.c", Some(small)),
        "{}",
        r.show()
    );
    assert_eq!(v["sites"][0]["blocks"], 1000, "{}", r.show());
    // Each site's allocation calls: as many as its blocks for the sites that keep them.
    assert_eq!(v["sites"][0]["allocs"], 1000, "{}", r.show());

    // --sort allocs: calls since the start, freed blocks included: the churning thread's site
    // (at most one block live) keeps counting, read from that thread's counters.
    let churn = line_of("holder.c", "void *p = malloc");
    let churn_calls = |v: &Value| {
        let s = v["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| has_frame(&s["stack"], "churn", "holder.c", Some(churn)))
            .unwrap_or_else(|| panic!("no churn site in {v}"));
        assert!(s["blocks"].as_u64().unwrap() <= 1, "{s}");
        s["allocs"].as_u64().unwrap()
    };
    let (r, v) = sites(t.pid, &["--sort", "allocs", "--top", "50"]);
    assert_eq!(v["sort"], "allocs", "{}", r.show());
    let counts: Vec<u64> = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["allocs"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{}", r.show());
    let first_calls = churn_calls(&v);
    assert!(first_calls >= 1, "{}", r.show());
    let big_site = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| has_frame(&s["stack"], "main", "holder.c", Some(big)))
        .unwrap();
    assert_eq!(big_site["allocs"], 5, "{}", r.show());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (r, v) = sites(t.pid, &["--sort", "allocs", "--top", "50"]);
    assert!(churn_calls(&v) > first_calls, "{}", r.show());

    // --watch: one JSON object per refresh, the later ones with each site's growth.
    let mut w = Command::new(memcheck())
        .args([
            "stats", "--sites", "--format", "json", "--top", "2", "--watch", "0.2",
        ])
        .arg(t.pid.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(w.stdout.take().unwrap());
    let mut first = String::new();
    let mut second = String::new();
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let _ = w.kill();
    let _ = w.wait();
    let first: Value = serde_json::from_str(&first).unwrap();
    let second: Value = serde_json::from_str(&second).unwrap();
    assert!(first["sites"][0]["growth_bytes"].is_null(), "{first}");
    assert_eq!(second["sites"][0]["growth_bytes"], 0, "{second}");
    assert_eq!(second["sites"][1]["growth_blocks"], 0, "{second}");
    assert_eq!(second["sites"][1]["growth_allocs"], 0, "{second}");

    // The text form names the site.
    let r = run_cmd(Command::new(memcheck()).args(["stats", "--sites", &t.pid.to_string()]));
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(
        r.stdout().contains(&format!("main (holder.c:{big})")),
        "{}",
        r.show()
    );
    assert!(r.stdout().contains(" allocs "), "{}", r.show());
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(7), "{}", f.show());

    // Not under memcheck: one line, status 1.
    let mut n = Ready::start("holder.c", &[], &[]);
    let r = run_cmd(Command::new(memcheck()).args(["stats", "--sites", &n.pid.to_string()]));
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
    assert!(
        r.stderr().contains("not running under memcheck"),
        "{}",
        r.show()
    );
    n.finish("go\n");
}

#[test]
fn threads_busy_inside_the_allocator_pause_when_they_leave_it_and_nothing_is_lost() {
    let prog = compile("live_churn.c", &[]);
    let mut t = Ready::spawn(
        "live_churn.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    for _ in 0..5 {
        let (r, v) = leaks(t.pid, &[]);
        let notes = the_process(&v)["notes"].to_string();
        assert!(notes.contains("4 threads paused"), "{}", r.show());
        assert!(!notes.contains("could not be paused"), "{}", r.show());
        let s = &the_process(&v)["leak_summary"];
        assert_eq!(
            (
                s["definite"]["blocks"].as_u64(),
                s["indirect"]["blocks"].as_u64()
            ),
            (Some(0), Some(0)),
            "blocks held in the paused threads' arrays and registers are not lost\n{}",
            r.show()
        );
        // At least the 3 x 64 blocks (less those being replaced) are reachable.
        assert!(
            s["reachable"]["blocks"].as_u64().unwrap() >= 3 * 63,
            "{}",
            r.show()
        );
    }
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
    assert_eq!(f.stdout.trim(), "ok", "{}", f.show());
}

/// The headless Chromium of the machine (`.ci/run` installs `chromium-headless-shell`).
fn chromium() -> std::path::PathBuf {
    for name in ["chromium-headless-shell", "chromium", "chromium-browser"] {
        for dir in std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(["/usr/bin".into(), "/usr/lib/chromium".into()])
        {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("no headless Chromium: install chromium-headless-shell (Debian), as .ci/run does")
}

#[test]
fn the_sites_flame_graph_opens_in_chromium_and_its_largest_frame_is_the_top_site() {
    let prog = compile("holder.c", &[]);
    let mut t = Ready::spawn(
        "holder.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sites.svg");
    let (r, _) = sites(t.pid, &["--flamegraph", svg.to_str().unwrap()]);
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(7), "{}", f.show());
    let profile = dir.path().join("profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", svg.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    // The flame graph's script ran in the browser: it fitted the frames to the 1000-pixel window.
    assert!(
        dom.contains(r#"id="frames" x="10" width="980""#),
        "{}\n{}",
        r.show(),
        &dom[..dom.len().min(3000)]
    );
    // Every frame is `<g><title>NAME (N bytes, P%)</title><rect ... fg:w="N"/>`.
    let mut frames: Vec<(String, u64)> = Vec::new();
    for g in dom.split("<g><title>").skip(1) {
        let Some((title, rest)) = g.split_once("</title>") else {
            continue;
        };
        let w = rest
            .split("fg:w=\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .and_then(|x| x.parse::<u64>().ok());
        if let Some(w) = w {
            frames.push((title.to_string(), w));
        }
    }
    let startup = [
        "all ",
        "_start",
        "__libc_start_main",
        "__libc_start_call_main",
    ];
    let largest = frames
        .iter()
        .filter(|(t, _)| !startup.iter().any(|s| t.starts_with(s)))
        .max_by_key(|(_, w)| *w)
        .unwrap_or_else(|| panic!("no frames in the DOM: {frames:?}"));
    let big = line_of("holder.c", "big[i] = malloc");
    assert!(
        largest
            .0
            .starts_with(&format!("main (holder.c:{big}) (500,000 bytes")),
        "{largest:?} in {frames:?}"
    );
}

#[test]
fn the_exit_report_draws_its_leaks_as_a_flame_graph() {
    let prog = compile("leaks.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("exit.svg");
    let r = run_under(&["--flamegraph", svg.to_str().unwrap()], &prog, &[]);
    let definite: u64 = r
        .leaks("definite")
        .iter()
        .map(|l| l["bytes"].as_u64().unwrap())
        .sum();
    assert!(definite > 0, "{}", r.show());
    let svg = std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{e}\n{}", r.show()));
    assert!(svg.contains("<svg"), "{svg}");
    // The root frame holds the leaked bytes listed (definite and indirect by default).
    let indirect: u64 = r
        .leaks("indirect")
        .iter()
        .map(|l| l["bytes"].as_u64().unwrap())
        .sum();
    let total = definite + indirect;
    assert!(
        svg.contains(&format!(
            "<title>all ({} bytes, 100%)</title>",
            group_digits(total)
        )),
        "{total}\n{svg}"
    );
    assert!(svg.contains("leak_bytes (leaks.c:"), "{svg}");
    // An unwritable path is refused before the program runs.
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--flamegraph", "/no/such/dir/x.svg", "--"])
            .arg(&prog),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(r.stderr().contains("--flamegraph"), "{}", r.show());
}

/// `1234567` as inferno writes counts: `1,234,567`.
fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn a_thread_that_blocks_the_signal_is_named_in_the_report_not_scanned_silently() {
    let prog = compile("live_blocked.c", &[]);
    let mut t = Ready::spawn(
        "live_blocked.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--"])
            .arg(&prog),
    );
    let (r, v) = leaks(t.pid, &[]);
    let notes = the_process(&v)["notes"].to_string();
    assert!(
        notes.contains("1 thread could not be paused (blocking signal 62"),
        "{}",
        r.show()
    );
    // The main thread (the coordinator) was paused: 1 of the 2.
    assert!(
        notes.contains("live check: 1 thread paused"),
        "{}",
        r.show()
    );
    let f = t.finish("go\n");
    assert_eq!(
        (f.code, f.stdout.as_str()),
        (Some(0), "bye\n"),
        "{}",
        f.show()
    );
}
