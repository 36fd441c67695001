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

#[test]
fn a_program_killed_by_sigterm_has_its_leak_reported_and_dies_by_it() {
    let r = run_under(&[], &endings(), &["term"]);
    assert_eq!(r.code(), Some(128 + libc::SIGTERM), "{}", r.show());
    let p = leak_of(&r, 19);
    assert_eq!(
        p["exit"],
        serde_json::json!({"signal": libc::SIGTERM}),
        "{}",
        r.show()
    );
    assert_eq!(p["leak_summary"]["definite"]["blocks"], 1, "{}", r.show());
    assert!(r.stderr().contains("killed by signal 15"), "{}", r.show());
}

#[test]
fn a_program_with_its_own_sigterm_handler_behaves_natively() {
    let native = run_cmd(std::process::Command::new(endings()).arg("term_handler"));
    assert_eq!(native.code(), Some(7), "{}", native.show());
    let r = run_under(&[], &endings(), &["term_handler"]);
    assert_eq!(r.code(), Some(7), "{}", r.show());
    // Its handler ends with _exit, which still gets the exit checks (the leaked block may count as
    // reachable: the kernel's signal frame leaves stale stack words below the handler's frames).
    let p = r.process();
    assert_eq!(p["exit"], serde_json::json!({"code": 7}), "{}", r.show());
    let s = &p["leak_summary"];
    let total =
        s["definite"]["bytes"].as_u64().unwrap() + s["reachable"]["bytes"].as_u64().unwrap();
    assert_eq!(total, 19, "{}", r.show());
}

#[test]
fn an_inherited_sig_ign_stays_ignored() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let mut c = std::process::Command::new(memcheck());
    c.args(["run", "--format=json", "--output"])
        .arg(&report)
        .arg("--")
        .arg(endings())
        .arg("ignored");
    // SAFETY: only signal(), async-signal-safe, runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            Ok(())
        });
    }
    let r = run_cmd(&mut c);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "SIGTERM ign\nsurvived\n", "{}", r.show());
}

#[test]
fn sigaction_reports_what_the_program_set_never_the_shims_handler() {
    let native = run_cmd(std::process::Command::new(endings()).arg("query"));
    assert_eq!(native.code(), Some(0), "{}", native.show());
    assert!(native
        .stdout()
        .contains("15 start dfl set on_term ign ign old ign now dfl"));
    let r = run_under(&[], &endings(), &["query"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native.stdout(), "{}", r.show());
    for guard in ["--guard", "--sample-rate=3"] {
        let r = run_under(&[guard], &endings(), &["query"]);
        assert_eq!(r.stdout(), native.stdout(), "{guard}: {}", r.show());
    }
}

#[test]
fn a_sigsegv_in_the_default_mode_prints_its_stack_and_the_program_still_dies_by_it() {
    let line = line_of("endings.c", "SEGV-HERE");
    for flags in [&[][..], &["--guard"][..]] {
        let r = run_under(flags, &endings(), &["segv"]);
        assert_eq!(
            r.code(),
            Some(128 + libc::SIGSEGV),
            "{flags:?}: {}",
            r.show()
        );
        let errors = r.errors();
        assert_eq!(errors.len(), 1, "{flags:?}: {}", r.show());
        let e = errors[0];
        assert_eq!(e["kind"], "crash", "{}", r.show());
        assert_eq!(e["address"], "0x0", "{}", r.show());
        assert_eq!(e["access"], "read", "{}", r.show());
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("SEGV on unknown address 0x0"),
            "{}",
            r.show()
        );
        // The faulting line first, then its caller.
        assert_eq!(
            e["stack"][0]["function"],
            "crash",
            "{flags:?}: {}",
            r.show()
        );
        assert_eq!(e["stack"][0]["line"], line, "{flags:?}: {}", r.show());
        assert!(
            e["stack"][0]["file"]
                .as_str()
                .unwrap_or("")
                .ends_with("endings.c"),
            "{}",
            r.show()
        );
        assert!(
            has_frame(&e["stack"], "main", "endings.c", None),
            "{}",
            r.show()
        );
        // The exit checks ran too, and the report is complete.
        leak_of(&r, 31);
        assert_eq!(
            r.process()["exit"],
            serde_json::json!({"signal": 11}),
            "{}",
            r.show()
        );
        // The text report names the crash with its source line.
        assert!(
            r.stderr().contains("killed by signal 11"),
            "{flags:?}: {}",
            r.show()
        );
    }
}

#[test]
fn a_program_with_its_own_sigsegv_handler_sees_it_called_and_nothing_reported() {
    let prog = compile("handler.c", &[]);
    for flags in [&[][..], &["--guard"][..]] {
        let r = run_under(flags, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{flags:?}: {}", r.show());
        assert!(
            r.stdout().contains("own handler caught 3 faults"),
            "{}",
            r.show()
        );
        assert!(r.errors().is_empty(), "{flags:?}: {}", r.show());
    }
}

/// A leaking program, copied as `leaky` into a fresh directory that is the working directory of
/// the run.
fn leaky_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(compile("leaks.c", &[]), dir.path().join("leaky")).unwrap();
    dir
}

fn run_in(dir: &std::path::Path, flags: &[&str], cmd: &[&str]) -> Run {
    let report = dir.join("report.json");
    let mut c = std::process::Command::new(memcheck());
    c.current_dir(dir)
        .arg("run")
        .args(flags)
        .arg("--format=json")
        .arg("--output")
        .arg(&report)
        .arg("--")
        .args(cmd)
        .env("NO_COLOR", "1");
    let mut r = output_retrying(c);
    r.json = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("valid JSON"));
    r
}

fn definite_bytes(r: &Run) -> u64 {
    r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["leak_summary"]["definite"]["bytes"].as_u64().unwrap_or(0))
        .sum()
}

const UNCHECKED: &str = "env exec'd ./leaky, which was not checked: add --trace-children";

#[test]
fn a_wrapper_that_execs_an_unfollowed_program_says_so() {
    let dir = leaky_dir();
    let r = run_in(dir.path(), &[], &["env", "./leaky"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stderr().contains(UNCHECKED), "{}", r.show());
    let notes = r.process()["notes"].as_array().unwrap();
    assert_eq!(notes[0], UNCHECKED, "{}", r.show());
    // Followed, it is checked and nothing is said.
    let r = run_in(dir.path(), &["--trace-children"], &["env", "./leaky"]);
    assert!(definite_bytes(&r) > 0, "{}", r.show());
    assert!(!r.stderr().contains("not checked"), "{}", r.show());
    // An exec that fails is not named.
    let r = run_in(dir.path(), &[], &["env", "./missing"]);
    assert_eq!(r.code(), Some(127), "{}", r.show());
    assert!(!r.stderr().contains("not checked"), "{}", r.show());
}

#[test]
fn a_program_started_by_posix_spawn_and_not_followed_is_named() {
    let dir = leaky_dir();
    let prog = endings();
    let r = run_in(
        dir.path(),
        &[],
        &[prog.to_str().unwrap(), "spawn", "./leaky"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("spawned status 0"), "{}", r.show());
    assert!(
        r.stderr()
            .contains("exec'd ./leaky, which was not checked: add --trace-children"),
        "{}",
        r.show()
    );
}

#[test]
fn trace_children_skip_runs_matching_programs_without_memcheck() {
    let dir = leaky_dir();
    let prog = endings();
    for cmd in [
        &["env", "./leaky"][..],
        &[prog.to_str().unwrap(), "spawn", "./leaky"][..],
    ] {
        let r = run_in(dir.path(), &["--trace-children"], cmd);
        assert!(definite_bytes(&r) > 0, "{cmd:?}: {}", r.show());
        let r = run_in(
            dir.path(),
            &[
                "--trace-children",
                "--trace-children-skip=*/nothing,*leaky*",
            ],
            cmd,
        );
        assert_eq!(r.code(), Some(0), "{cmd:?}: {}", r.show());
        assert_eq!(definite_bytes(&r), 0, "{cmd:?}: {}", r.show());
        assert!(!r.stderr().contains("leaks.c"), "{cmd:?}: {}", r.show());
        // A pattern that matches something else changes nothing.
        let r = run_in(
            dir.path(),
            &["--trace-children", "--trace-children-skip=*/ld"],
            cmd,
        );
        assert!(definite_bytes(&r) > 0, "{cmd:?}: {}", r.show());
    }
}

#[test]
fn child_silent_after_fork_leaves_out_forked_children() {
    let r = run_under(
        &["--child-silent-after-fork=yes"],
        &endings(),
        &["child_exit"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("child status 3"), "{}", r.show());
    let procs = r.json()["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1, "{}", r.show());
    assert_eq!(
        procs[0]["leak_summary"]["definite"]["bytes"],
        0,
        "{}",
        r.show()
    );
    // Without it the child has its report (a_forked_child_that_ends_with_exit_...).
    let r = run_under(
        &["--child-silent-after-fork=no"],
        &endings(),
        &["child_exit"],
    );
    assert_eq!(
        r.json()["processes"].as_array().unwrap().len(),
        2,
        "{}",
        r.show()
    );
}

#[test]
fn a_forked_child_killed_by_a_signal_has_its_leak_and_its_death_reported() {
    let r = run_under(&[], &endings(), &["child_term"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("child signal 15"), "{}", r.show());
    let child = leak_of(&r, 17);
    assert_eq!(
        child["exit"],
        serde_json::json!({"signal": 15}),
        "{}",
        r.show()
    );
}

#[test]
fn sigterm_to_a_program_whose_threads_allocate_still_gets_the_leak_check() {
    // The signal lands on a worker (main blocks it), nearly always inside the allocator, where
    // the checks cannot run at once: it is taken again when that thread leaves the shim's locked
    // code.
    for _ in 0..5 {
        let r = run_under(&[], &endings(), &["threads_term"]);
        assert_eq!(r.code(), Some(128 + libc::SIGTERM), "{}", r.show());
        let p = leak_of(&r, 37);
        assert_eq!(p["exit"], serde_json::json!({"signal": 15}), "{}", r.show());
        // Nothing else is lost: the handling thread's live frames and its TLS (at the top of its
        // stack mapping) are roots, as the other threads' stacks are.
        assert_eq!(p["leak_summary"]["definite"]["bytes"], 37, "{}", r.show());
        assert_eq!(p["leak_summary"]["indirect"]["bytes"], 0, "{}", r.show());
    }
}

#[test]
fn a_handler_set_in_a_vfork_child_is_not_its_parents() {
    for flags in [&[][..], &["--guard"][..]] {
        let r = run_under(flags, &endings(), &["vfork_segv"]);
        assert_eq!(
            r.code(),
            Some(128 + libc::SIGSEGV),
            "{flags:?}: {}",
            r.show()
        );
        let kinds: Vec<_> = r.errors().iter().map(|e| e["kind"].clone()).collect();
        assert_eq!(kinds, ["crash"], "{flags:?}: {}", r.show());
    }
}
