//! Children: `execl`, `execle` and `execlp` are followed under `--trace-children` (their argument
//! lists gathered whole, past the registers and past the shim's on-stack array), noted when not
//! followed, and skipped by `--trace-children-skip` and `--trace-children-skip-by-arg`.
mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

/// `memcheck run FLAGS --format=json -- execl MODE`, with the program's directory first in PATH
/// (for execlp).
fn run_execl(flags: &[&str], mode: &str) -> Run {
    let prog = compile("execl.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let path = format!(
        "{}:{}",
        prog.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(flags)
        .arg("--format=json")
        .arg("--output")
        .arg(&report)
        .arg("--")
        .arg(&prog)
        .arg(mode)
        .env("PATH", path)
        .env("NO_COLOR", "1");
    let mut r = run_cmd(&mut c);
    r.json = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    r
}

/// The process of the report that ran in "leak" mode.
fn child(r: &Run) -> Option<&Value> {
    r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["argv"][1] == "leak")
}

#[test]
fn execl_execle_and_execlp_are_followed_with_their_whole_argument_list() {
    for (mode, bytes, argc, mark) in [
        ("execl", 17, 10, "-"),
        ("execle", 19, 9, "execle"),
        ("execlp", 23, 9, "-"),
        ("many", 29, 304, "-"),
    ] {
        let r = run_execl(&["--trace-children", "--error-exitcode=9"], mode);
        assert_eq!(r.code(), Some(9), "{mode}: {}", r.show());
        assert!(
            r.stdout()
                .contains(&format!("child argc={argc} last=end mark={mark}")),
            "{mode}: {}",
            r.show()
        );
        let c = child(&r).unwrap_or_else(|| panic!("{mode}: the child was checked\n{}", r.show()));
        assert_eq!(c["argv"][0], mode, "{}", r.show());
        assert_eq!(c["argv"].as_array().unwrap().len(), argc, "{}", r.show());
        assert_eq!(
            c["leak_summary"]["definite"]["bytes"],
            bytes,
            "{mode}: {}",
            r.show()
        );
        assert!(
            has_frame(&c["leaks"][0]["stack"], "child_leak", "execl.c", None),
            "{}",
            r.show()
        );
    }
}

#[test]
fn an_execl_not_followed_is_named_and_a_failed_one_is_not() {
    for mode in ["execl", "execle", "execlp"] {
        let r = run_execl(&[], mode);
        assert_eq!(r.code(), Some(0), "{mode}: {}", r.show());
        assert!(
            r.stderr()
                .contains("which was not checked: add --trace-children"),
            "{mode}: {}",
            r.show()
        );
        assert!(child(&r).is_none(), "{mode}: {}", r.show());
    }
    let r = run_execl(&[], "missing");
    assert!(r.stdout().contains("execl failed"), "{}", r.show());
    assert!(!r.stderr().contains("not checked"), "{}", r.show());
}

#[test]
fn trace_children_skip_and_skip_by_arg_apply_to_execl() {
    let flags = |extra: &'static str| ["--trace-children", "--error-exitcode=9", extra];
    // By path (execl's own path, execlp's as found in PATH).
    for mode in ["execl", "execlp"] {
        let r = run_execl(&flags("--trace-children-skip=*/nothing,*/execl"), mode);
        assert_eq!(r.code(), Some(0), "{mode}: {}", r.show());
        assert!(child(&r).is_none(), "{mode}: {}", r.show());
        assert!(r.stdout().contains("child argc="), "it ran: {}", r.show());
    }
    // By argument: any element of argv matches (here the 10th, on the stack).
    let r = run_execl(
        &flags("--trace-children-skip-by-arg=--nothing,--skip-*"),
        "execl",
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(child(&r).is_none(), "{}", r.show());
    assert!(r.stdout().contains("child argc=10"), "{}", r.show());
    // argv[0] counts too.
    let r = run_execl(&flags("--trace-children-skip-by-arg=exec?e"), "execle");
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(child(&r).is_none(), "{}", r.show());
    // Patterns that match nothing change nothing.
    let r = run_execl(
        &flags("--trace-children-skip-by-arg=--skip,*/execl"),
        "execl",
    );
    assert_eq!(r.code(), Some(9), "{}", r.show());
    assert!(child(&r).is_some(), "{}", r.show());
}

#[test]
fn skip_by_arg_applies_to_execve_and_posix_spawn_through_a_shell() {
    // sh (dash or bash) execs each command of a script through execve or posix_spawn.
    let leaky = compile("execl.c", &[]);
    let script = format!(
        "{l} leak 31 --plain; {l} leak 37 --skip-me",
        l = leaky.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let r = run_cmd(
        Command::new(memcheck())
            .args([
                "run",
                "--trace-children",
                "--trace-children-skip-by-arg=--skip-me",
                "--format=json",
                "--output",
            ])
            .arg(&report)
            .args(["--", "sh", "-c", &script])
            .env("NO_COLOR", "1"),
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let leaked: Vec<u64> = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["argv"][1] == "leak")
        .map(|p| p["leak_summary"]["definite"]["bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(leaked, [31], "{}\n{v}", r.show());
    assert_eq!(
        r.stdout().matches("child argc=4").count(),
        2,
        "{}",
        r.show()
    );
}
