//! Scale: a run with 10,000 distinct leak stacks renders every format in full (text, JSON,
//! SARIF, JUnit, and `memcheck report` again from the JSON), and draws no progress bar on a
//! pipe. How long it takes is measured in `bench/formats`, never asserted here.
mod common;
use common::*;
use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;

const STACKS: usize = 10_000;

/// The `leakNNNN` function names in `text`, each `at 0x...: leakNNNN (` line once.
fn leak_functions(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.split(": leak").nth(1))
        .filter_map(|rest| rest.split(' ').next())
        .map(|n| format!("leak{n}"))
        .collect()
}

#[test]
fn ten_thousand_leak_stacks_are_in_every_format() {
    let prog = compile("manystacks.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let mut c = Command::new(memcheck());
    c.arg("run")
        .arg("--format=json")
        .arg("--output")
        .arg(path("r.json"))
        .arg(format!("--report=sarif={}", path("r.sarif").display()))
        .arg(format!("--report=junit={}", path("r.xml").display()))
        .arg(format!("--report=text={}", path("r.txt").display()))
        .arg("--")
        .arg(&prog)
        .env("NO_COLOR", "1");
    let r = run_cmd(&mut c);
    assert_eq!(r.code(), Some(0), "{}", r.cmd);
    let read = |name: &str| std::fs::read_to_string(path(name)).unwrap();

    // JSON: 10,000 leaks, each its own fingerprint and its own function.
    let json: Value = serde_json::from_str(&read("r.json")).unwrap();
    let leaks = json["processes"][0]["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), STACKS);
    let prints: HashSet<&str> = leaks
        .iter()
        .map(|l| l["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(prints.len(), STACKS);
    let functions: HashSet<&str> = leaks
        .iter()
        .filter_map(|l| {
            l["stack"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|f| f["function"].as_str().filter(|n| n.starts_with("leak")))
        })
        .collect();
    assert_eq!(functions.len(), STACKS);

    // Text, on stderr and in the file alike; no progress bar on a pipe.
    let text = read("r.txt");
    assert_eq!(r.stderr(), text, "stderr differs from the text report");
    assert_eq!(
        text.matches("8 bytes in 1 blocks are definitely lost")
            .count(),
        STACKS
    );
    assert_eq!(leak_functions(&text).len(), STACKS);
    assert!(!r.stderr().contains('\r'), "a progress bar on a pipe");
    assert!(
        !r.stderr().contains("symbolizing"),
        "a progress bar on a pipe"
    );

    // SARIF: one result per leak, each its own fingerprint.
    let sarif: Value = serde_json::from_str(&read("r.sarif")).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), STACKS);
    let prints: HashSet<&str> = results
        .iter()
        .map(|r| r["partialFingerprints"]["memcheck/v1"].as_str().unwrap())
        .collect();
    assert_eq!(prints.len(), STACKS);

    // JUnit: the failing process's body holds every leak.
    let junit = read("r.xml");
    assert_eq!(junit.matches("<failure ").count(), 1);
    assert_eq!(junit.matches("are definitely lost").count(), STACKS);
    assert_eq!(leak_functions(&junit).len(), STACKS);

    // `memcheck report` gives the same bytes in every format.
    for (format, file) in [
        ("json", "r.json"),
        ("sarif", "r.sarif"),
        ("junit", "r.xml"),
        ("text", "r.txt"),
    ] {
        let again = run_cmd(
            Command::new(memcheck())
                .args(["report", "--format", format, "--output"])
                .arg(path("again"))
                .arg(path("r.json"))
                .env("NO_COLOR", "1"),
        );
        assert_eq!(again.code(), Some(0), "{}", again.show());
        assert!(
            read("again") == read(file),
            "memcheck report --format {format} differs"
        );
        assert!(again.stderr().is_empty(), "{}", again.show());
    }
}
