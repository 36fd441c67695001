//! Baselines: `memcheck run --write-baseline FILE` records the findings by fingerprint,
//! `--baseline FILE` fails only on new ones (the known ones are shown, marked), lists the ones
//! that disappeared, and keeps matching across a rebuild that moves every line; `memcheck report
//! FILE.json --baseline FILE` does the same for a saved report.
mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn baseline_of(r: &Run, path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no baseline at {} ({e})\n{}", path.display(), r.show()));
    serde_json::from_str(&text).unwrap()
}

/// The `--write-baseline` file of the "old" run of the unshifted program.
fn old_baseline(dir: &Path) -> PathBuf {
    let prog = compile("baseline.c", &[]);
    let b = dir.join("memcheck-baseline.json");
    let bs = b.to_str().unwrap();
    let r = run_under(
        &["--error-exitcode=3", "--write-baseline", bs],
        &prog,
        &["old"],
    );
    // Writing a baseline does not change the exit status: the findings are still there.
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let v = baseline_of(&r, &b);
    assert_eq!(v["format"], "memcheck-baseline", "{v}");
    assert_eq!(v["version"], 1, "{v}");
    let f = v["findings"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = f
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["functions"][0].as_str().unwrap(),
            )
        })
        .collect();
    // Sorted by kind, then functions.
    assert_eq!(
        kinds,
        [
            ("heap-buffer-overflow", "old_overflow"),
            ("leak-definite", "old_leak_a"),
            ("leak-definite", "old_leak_b"),
        ],
        "{v}"
    );
    for e in f {
        assert_eq!(e["count"], 1, "{v}");
        assert_eq!(e["functions"].as_array().unwrap().last().unwrap(), "main");
        // The report's fingerprint, so a finding can be looked up in either.
        let fp = e["fingerprint"].as_str().unwrap();
        let in_report = r
            .errors()
            .into_iter()
            .chain(r.leaks("definite"))
            .any(|x| x["fingerprint"] == fp);
        assert!(
            in_report,
            "{fp} is a fingerprint of the report\n{}",
            r.show()
        );
    }
    // Diff-friendly: one line per function, no addresses, no lines.
    let text = std::fs::read_to_string(&b).unwrap();
    assert!(text.contains("\n        \"old_leak_a\",\n"), "{text}");
    assert!(
        !text.contains("0x") && !text.contains("baseline.c"),
        "{text}"
    );
    b
}

#[test]
fn a_baseline_run_passes_on_old_findings_and_fails_on_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let b = old_baseline(dir.path());
    let bs = b.to_str().unwrap();
    let prog = compile("baseline.c", &[]);

    let r = run_under(&["--error-exitcode=3", "--baseline", bs], &prog, &["old"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    // Still shown, marked known.
    let leaks = r.leaks("definite");
    assert_eq!(leaks.len(), 2, "{}", r.show());
    assert!(leaks.iter().all(|l| l["known"] == true), "{}", r.show());
    assert_eq!(r.errors().len(), 1, "{}", r.show());
    assert_eq!(r.errors()[0]["known"], true, "{}", r.show());
    let s = &r.process()["error_summary"];
    assert_eq!(
        (s["errors"].as_u64(), s["contexts"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (s["known"].as_u64(), s["known_contexts"].as_u64()),
        (Some(3), Some(3))
    );
    let bl = &r.json()["baseline"];
    assert_eq!(bl["file"], bs, "{}", r.show());
    assert_eq!(bl["known"], 3, "{}", r.show());
    assert_eq!(bl["new"].as_array().unwrap().len(), 0, "{}", r.show());
    assert_eq!(
        bl["disappeared"].as_array().unwrap().len(),
        0,
        "{}",
        r.show()
    );
    let err = r.stderr();
    assert_eq!(
        err.matches("known: in the baseline, does not fail the run")
            .count(),
        3,
        "{}",
        r.show()
    );
    assert!(
        err.contains(&format!("baseline {bs}: 3 known, 0 new, 0 disappeared")),
        "{}",
        r.show()
    );
    assert!(
        err.contains(
            "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0; known: 3 from 3)"
        ),
        "{}",
        r.show()
    );

    let r = run_under(&["--error-exitcode=3", "--baseline", bs], &prog, &["new"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let new: Vec<&Value> = r
        .leaks("definite")
        .into_iter()
        .filter(|l| l.get("known").is_none())
        .collect();
    assert_eq!(new.len(), 1, "{}", r.show());
    assert!(has_frame(&new[0]["stack"], "new_leak", "baseline.c", None));
    let bl = &r.json()["baseline"];
    assert_eq!(bl["known"], 3, "{}", r.show());
    assert_eq!(bl["new"][0]["kind"], "leak-definite", "{}", r.show());
    assert_eq!(bl["new"][0]["functions"][0], "new_leak", "{}", r.show());
    assert_eq!(r.process()["error_summary"]["errors"], 1, "{}", r.show());
    assert!(
        r.stderr()
            .contains("new: leak-definite in new_leak <- main"),
        "the new one is named\n{}",
        r.show()
    );
    assert!(
        r.stderr().contains("3 known, 1 new, 0 disappeared"),
        "{}",
        r.show()
    );
}

#[test]
fn a_rebuild_that_shifts_lines_still_matches() {
    let dir = tempfile::tempdir().unwrap();
    let b = old_baseline(dir.path());
    let first = compile("baseline.c", &[]);
    let shifted = compile("baseline.c", &["-DSHIFT"]);
    let line = |r: &Run| r.leaks("definite")[0]["stack"][1]["line"].as_u64();
    let before = run_under(&[], &first, &["old"]);
    let r = run_under(
        &["--error-exitcode=3", "--baseline", b.to_str().unwrap()],
        &shifted,
        &["old"],
    );
    assert!(
        line(&before).is_some() && line(&before) != line(&r),
        "the rebuild moved the lines\n{}\n{}",
        before.show(),
        r.show()
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.json()["baseline"]["known"], 3, "{}", r.show());
}

#[test]
fn a_fixed_finding_is_listed_as_disappeared_and_the_baseline_can_be_updated() {
    let dir = tempfile::tempdir().unwrap();
    let b = old_baseline(dir.path());
    let bs = b.to_str().unwrap();
    let prog = compile("baseline.c", &[]);
    let r = run_under(
        &[
            "--error-exitcode=3",
            "--baseline",
            bs,
            "--write-baseline",
            bs,
        ],
        &prog,
        &["fixed"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let gone = r.json()["baseline"]["disappeared"].as_array().unwrap();
    let gone: Vec<&str> = gone
        .iter()
        .map(|e| e["functions"][0].as_str().unwrap())
        .collect();
    assert_eq!(gone, ["old_overflow", "old_leak_b"], "{}", r.show());
    assert!(
        r.stderr()
            .contains("disappeared: leak-definite in old_leak_b <- main"),
        "{}",
        r.show()
    );
    assert!(
        r.stderr().contains("1 known, 0 new, 2 disappeared"),
        "{}",
        r.show()
    );
    // Read before the run, rewritten after it: only what is left.
    let v = baseline_of(&r, &b);
    let f = v["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "{v}");
    assert_eq!(f[0]["functions"][0], "old_leak_a", "{v}");
}

#[test]
fn a_missing_or_malformed_baseline_is_refused_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let missing = dir.path().join("nope.json").to_str().unwrap().to_string();
    let cases = [
        (
            missing.clone(),
            "no such file: write it first with --write-baseline",
        ),
        (
            write("broken.json", "{\"format\": \"memcheck-baseline\",\n"),
            "not a memcheck baseline",
        ),
        (
            write("report.json", r#"{"version": 1, "processes": []}"#),
            "a memcheck JSON report, not a baseline",
        ),
        (
            write(
                "kind.json",
                r#"{"format": "memcheck-baseline", "version": 1, "findings": [{"kind": "leak", "functions": []}]}"#,
            ),
            "finding 1: unknown kind \"leak\"",
        ),
    ];
    for (file, why) in &cases {
        let r = run_cmd(
            Command::new(memcheck())
                .args(["run", "--baseline", file, "--", "sh", "-c", "echo ran"])
                .env("NO_COLOR", "1"),
        );
        assert_eq!(r.code(), Some(2), "{}", r.show());
        assert!(
            !r.stdout().contains("ran"),
            "the program did not run\n{}",
            r.show()
        );
        let err = r.stderr();
        assert_eq!(err.trim_end().lines().count(), 1, "one line\n{}", r.show());
        assert!(
            err.contains(&format!("--baseline {file}: ")),
            "{}",
            r.show()
        );
        assert!(err.contains(why), "{why}\n{}", r.show());
    }
    // --write-baseline's path is checked as a report's.
    let r = run_cmd(
        Command::new(memcheck())
            .args([
                "run",
                "--write-baseline",
                "/nonexistent-dir/b.json",
                "--",
                "sh",
                "-c",
                "echo ran",
            ])
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(!r.stdout().contains("ran"), "{}", r.show());
    assert!(
        r.stderr()
            .contains("--write-baseline /nonexistent-dir/b.json"),
        "{}",
        r.show()
    );
    assert_eq!(r.stderr().trim_end().lines().count(), 1, "{}", r.show());
    let out = dir.path().join("r.json");
    let o = out.to_str().unwrap();
    let r = run_cmd(
        Command::new(memcheck())
            .args([
                "run",
                "--format=json",
                "-o",
                o,
                "--write-baseline",
                o,
                "--",
                "true",
            ])
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(
        r.stderr().contains("give the baseline its own file"),
        "{}",
        r.show()
    );
}

#[test]
fn a_saved_report_is_checked_against_a_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let b = old_baseline(dir.path());
    let bs = b.to_str().unwrap();
    let prog = compile("baseline.c", &[]);
    for (mode, status, new) in [("old", 0, 0), ("new", 1, 1), ("fixed", 0, 0)] {
        let saved = run_under(&[], &prog, &[mode]);
        let file = dir.path().join(format!("{mode}.json"));
        std::fs::write(&file, serde_json::to_string(saved.json()).unwrap()).unwrap();
        let r = run_cmd(
            Command::new(memcheck())
                .arg("report")
                .arg(&file)
                .args(["--baseline", bs, "--format", "json"])
                .env("NO_COLOR", "1"),
        );
        assert_eq!(r.code(), Some(status), "{mode}\n{}", r.show());
        let v: Value = serde_json::from_str(&r.stdout()).unwrap();
        let bl = &v["baseline"];
        assert_eq!(
            bl["new"].as_array().unwrap().len(),
            new,
            "{mode}\n{}",
            r.show()
        );
        let known = v["processes"][0]["leaks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["known"] == true)
            .count();
        assert_eq!(
            known,
            if mode == "fixed" { 1 } else { 2 },
            "{mode}\n{}",
            r.show()
        );
        if mode == "fixed" {
            assert_eq!(
                bl["disappeared"].as_array().unwrap().len(),
                2,
                "{}",
                r.show()
            );
        }
        // The text says the same.
        let t = run_cmd(
            Command::new(memcheck())
                .arg("report")
                .arg(&file)
                .args(["--baseline", bs])
                .env("NO_COLOR", "1"),
        );
        assert_eq!(t.code(), Some(status), "{}", t.show());
        assert!(
            t.stdout().contains(&format!("baseline {bs}: ")),
            "{}",
            t.show()
        );
    }
    let r = run_cmd(
        Command::new(memcheck())
            .args(["report", "x.json", "--baseline", "/nonexistent/b.json"])
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(r.stderr().contains("no such file"), "{}", r.show());
}
