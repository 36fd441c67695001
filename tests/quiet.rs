//! `memcheck run -q` (only findings on stderr) and the lines that end a run with several
//! processes: one per failing process, with its pid, command and what failed.
mod common;
use common::*;
// Unit-tested in the library (whole words, the program's file name for a long path).
use memcheck::report::summary::short_command;
use serde_json::Value;
use std::process::Command;

/// A frame as the text report prints it (`0x...: main (file:line)`).
fn frame_line(f: &Value) -> String {
    let func = f["function"].as_str().unwrap_or("???");
    let loc = match (f["file"].as_str(), f["line"].as_u64()) {
        (Some(file), Some(line)) => format!("({file}:{line})"),
        (Some(file), None) => format!("({file})"),
        _ => format!("(in {})", f["object"].as_str().unwrap_or("")),
    };
    format!("{}: {func} {loc}", f["address"].as_str().unwrap())
}

/// The leak record of the text report, built from the JSON report's leak.
fn leak_lines(pid: u64, l: &Value) -> String {
    let mut s = format!(
        "=={pid}== {} bytes in {} blocks are definitely lost\n",
        l["bytes"], l["blocks"]
    );
    let frames = l["stack"].as_array().unwrap();
    let end = frames
        .iter()
        .position(|f| f["function"] == "main")
        .expect("main in the stack");
    for (i, f) in frames[..=end].iter().enumerate() {
        let word = if i == 0 { "at" } else { "by" };
        s.push_str(&format!("=={pid}==    {word} {}\n", frame_line(f)));
    }
    s.push_str(&format!("=={pid}==\n"));
    s
}

#[test]
fn quiet_prints_nothing_for_a_clean_program_and_keeps_its_stderr_and_status() {
    let prog = compile("quiet.c", &[]);
    let r = run_under(&["-q"], &prog, &["clean"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert_eq!(r.stderr(), "the program's own line\n", "{}", r.show());
    // The file report is complete all the same.
    assert!(r.process()["leak_summary"].is_object(), "{}", r.show());
    // Without -q the same run says more.
    let loud = run_under(&[], &prog, &["clean"]);
    assert!(
        loud.stderr().contains("ERROR SUMMARY: 0 errors"),
        "{}",
        loud.show()
    );
    assert!(loud.stderr().contains("LEAK SUMMARY:"), "{}", loud.show());
}

#[test]
fn quiet_prints_exactly_the_leak_and_the_error_summary() {
    let prog = compile("quiet.c", &[]);
    let r = run_under(&["-q"], &prog, &["leak"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let p = r.process();
    let pid = p["pid"].as_u64().unwrap();
    let leaks = r.leaks("definite");
    assert_eq!(leaks.len(), 1, "{}", r.show());
    let expected = format!(
        "the program's own line\n{}=={pid}== ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0), 0 warnings\n",
        leak_lines(pid, leaks[0])
    );
    assert_eq!(r.stderr(), expected, "{}", r.show());
    assert!(expected.contains("lose ("), "{expected}");
    // The gate is the same with -q.
    let gated = run_under(&["-q", "--error-exitcode=9"], &prog, &["leak"]);
    assert_eq!(gated.code(), Some(9), "{}", gated.show());
}

/// The end of the text report: the "N processes checked" line and the failing lines after it.
fn tail(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    match lines
        .iter()
        .position(|l| l.contains(" processes checked, "))
    {
        Some(i) => lines[i..].iter().map(|l| l.to_string()).collect(),
        None => Vec::new(),
    }
}

fn distinct_pids(j: &Value) -> usize {
    let mut pids: Vec<u64> = j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.len()
}

#[test]
fn a_forked_leaking_child_gets_one_line_and_its_reason_in_json() {
    let prog = compile("forktwo.c", &[]);
    for quiet in [false, true] {
        let flags: &[&str] = if quiet { &["-q"] } else { &[] };
        let r = run_under(flags, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let procs = r.json()["processes"].as_array().unwrap();
        assert_eq!(procs.len(), 3, "{}", r.show());
        let failed: Vec<&Value> = procs.iter().filter(|p| p["failed"] == true).collect();
        assert_eq!(failed.len(), 1, "{}", r.show());
        let f = failed[0];
        let why = "1 error, 48 bytes definitely lost in 3 blocks";
        assert_eq!(f["failure"], why, "{}", r.show());
        assert_ne!(f["pid"], procs[0]["pid"], "the child fails, not the parent");
        for p in procs.iter().filter(|p| p["failed"] == false) {
            assert!(p["failure"].is_null(), "{}", r.show());
        }
        let first = procs[0]["pid"].as_u64().unwrap();
        assert_eq!(
            tail(&r.stderr()),
            [
                format!("=={first}== 3 processes checked, 1 failed:"),
                format!(
                    "=={first}==   pid {} ({}): {why}",
                    f["pid"],
                    short_command(f["command"].as_str().unwrap())
                ),
            ],
            "{}",
            r.show()
        );
    }
}

#[test]
fn trace_children_over_sh_names_the_failing_program() {
    let fj = compile("forkjunit.c", &[]);
    let script = format!("{0} leak; {0} clean; true", fj.display());
    for quiet in [false, true] {
        let mut flags = vec!["--trace-children"];
        if quiet {
            flags.push("-q");
        }
        let r = run_under(&flags, std::path::Path::new("sh"), &["-c", &script]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let j = r.json();
        let failed: Vec<&Value> = j["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["failed"] == true)
            .collect();
        assert_eq!(failed.len(), 1, "{}", r.show());
        assert_eq!(failed[0]["argv"][1], "leak", "{}", r.show());
        let first = j["processes"][0]["pid"].as_u64().unwrap();
        assert_eq!(
            tail(&r.stderr()),
            [
                format!(
                    "=={first}== {} processes checked, 1 failed:",
                    distinct_pids(j)
                ),
                format!(
                    "=={first}==   pid {} ({}): 40 bytes definitely lost in 1 block",
                    failed[0]["pid"],
                    short_command(failed[0]["command"].as_str().unwrap())
                ),
            ],
            "{}",
            r.show()
        );
    }
}

#[test]
fn a_clean_multi_process_run_says_none_failed_and_quiet_says_nothing() {
    let fj = compile("forkjunit.c", &[]);
    let script = format!("{0} clean; {0} clean; true", fj.display());
    let r = run_under(
        &["--trace-children"],
        std::path::Path::new("sh"),
        &["-c", &script],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let first = r.json()["processes"][0]["pid"].as_u64().unwrap();
    assert_eq!(
        tail(&r.stderr()),
        [format!(
            "=={first}== {} processes checked, none failed",
            distinct_pids(r.json())
        )],
        "{}",
        r.show()
    );
    let q = run_under(
        &["--trace-children", "-q"],
        std::path::Path::new("sh"),
        &["-c", &script],
    );
    assert_eq!(q.code(), Some(0), "{}", q.show());
    assert_eq!(q.stderr(), "", "{}", q.show());
}

#[test]
fn a_child_killed_by_a_signal_is_a_failing_process() {
    let fj = compile("forkjunit.c", &[]);
    let script = format!("{} clean; sh -c 'kill -SEGV $$'; true", fj.display());
    let r = run_under(
        &["--trace-children", "-q"],
        std::path::Path::new("sh"),
        &["-c", &script],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let j = r.json();
    let failed: Vec<&Value> = j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["failed"] == true)
        .collect();
    assert_eq!(failed.len(), 1, "{}", r.show());
    assert_eq!(
        failed[0]["failure"],
        "killed by signal 11 (SIGSEGV)",
        "{}",
        r.show()
    );
    let t = tail(&r.stderr());
    assert_eq!(t.len(), 2, "{}", r.show());
    assert!(
        t[1].ends_with("(sh -c kill -SEGV $$): killed by signal 11 (SIGSEGV)"),
        "{}",
        r.show()
    );
}

#[test]
fn quiet_is_in_the_help() {
    let r = run_cmd(Command::new(memcheck()).args(["run", "--help"]));
    assert!(r.stdout().contains("-q, --quiet"), "{}", r.show());
}
