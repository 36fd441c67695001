//! The README's CI recipes, run as written on the small projects of `tests/data/`: a C project
//! through its test-runner variable (`make check RUNNER=...`), a Rust crate through cargo's
//! runner variable, a CMake project through ctest's test launcher, and the `--trace-children`
//! gate over `make check` from clean. Each passes when nothing leaks and fails, naming the test,
//! when one test leaks a block; the default suppressions keep the toolchain (make, cc1, as, ld)
//! out of it. The commands are the README's: each test checks the README holds them verbatim.
mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const C_CHECK: &str = r#"make check RUNNER="memcheck run --error-exitcode=1 --""#;
const RUST_RUNNER_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER";
const RUST_RUNNER: &str = "memcheck run --error-exitcode=1 --";
const RUST_TEST: &str = "cargo test";
const CMAKE_CONFIGURE_LAUNCHER: &str = r#"cmake -B build -DCMAKE_BUILD_TYPE=Debug -DCMAKE_TEST_LAUNCHER="memcheck;run;--error-exitcode=1;--""#;
const CMAKE_CONFIGURE_EMULATOR: &str = r#"cmake -B build -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CROSSCOMPILING_EMULATOR="memcheck;run;--error-exitcode=1;--""#;
const CMAKE_BUILD: &str = "cmake --build build";
const CTEST: &str = "ctest --test-dir build --output-on-failure";
const GATE: &str = "memcheck run --trace-children=yes --error-exitcode=1 -- make check";

/// The README holds `text` verbatim (the recipe the test runs is the one users copy).
fn in_readme(text: &str) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(text),
        "README.md must show the command the test runs: {text}"
    );
}

/// A fresh copy of `tests/data/NAME` in a temporary directory (nothing built yet).
fn project(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("tests/data").join(name), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// PATH with memcheck's directory first, as after installing it.
fn path_with_memcheck() -> String {
    format!(
        "{}:{}",
        memcheck().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    )
}

/// `sh -c CMD` in `dir`, memcheck on PATH, as a CI step runs it.
fn step(dir: &Path, cmd: &str) -> Run {
    run_cmd(
        Command::new("sh")
            .args(["-c", cmd])
            .current_dir(dir)
            .env("PATH", path_with_memcheck())
            .env("NO_COLOR", "1"),
    )
}

/// The text report's processes: pid -> (command, errors of its ERROR SUMMARY).
fn processes(text: &str) -> BTreeMap<u32, (String, u64)> {
    let mut out: BTreeMap<u32, (String, u64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("==") else {
            continue;
        };
        let Some((pid, rest)) = rest.split_once("== ") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if let Some(cmd) = rest.strip_prefix("memcheck: ") {
            out.entry(pid).or_default().0 = cmd.to_string();
        } else if let Some(s) = rest.strip_prefix("ERROR SUMMARY: ") {
            let n = s.split(' ').next().unwrap().parse().unwrap();
            out.entry(pid).or_default().1 = n;
        }
    }
    out
}

/// The commands of the processes whose ERROR SUMMARY counts errors.
fn failing(text: &str) -> Vec<String> {
    processes(text)
        .into_values()
        .filter(|(_, n)| *n > 0)
        .map(|(c, _)| c)
        .collect()
}

/// The leak of test_greet, as the report shows it: where greet.c's greeting allocated it.
fn names_the_leak(text: &str, test_file: &str) -> bool {
    text.contains("13 bytes in 1 blocks are definitely lost")
        && text.contains("greeting (")
        && text.contains(test_file)
}

#[test]
fn a_c_project_checked_through_its_test_runner_variable() {
    in_readme(C_CHECK);
    let p = project("ci-c");
    let r = step(p.path(), C_CHECK);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let procs = processes(&r.stderr());
    let cmds: Vec<&str> = procs.values().map(|(c, _)| c.as_str()).collect();
    assert_eq!(cmds, ["./test_sum", "./test_greet"], "{}", r.show());
    assert!(failing(&r.stderr()).is_empty(), "{}", r.show());

    let p = project("ci-c");
    let r = step(p.path(), &format!("{C_CHECK} LEAK=1"));
    assert_ne!(r.code(), Some(0), "{}", r.show());
    // make names the failing test, memcheck its leak.
    assert!(
        r.stderr().contains("run-test_greet] Error 1"),
        "{}",
        r.show()
    );
    assert_eq!(failing(&r.stderr()), ["./test_greet"], "{}", r.show());
    assert!(names_the_leak(&r.stderr(), "test_greet.c"), "{}", r.show());
}

#[test]
fn the_trace_children_gate_over_make_check_from_clean() {
    in_readme(GATE);
    let p = project("ci-c");
    let r = step(p.path(), GATE);
    // make, the compiler driver, cc1, as, collect2 and ld were all checked, and the default
    // suppressions leave nothing of theirs.
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let procs = processes(&r.stderr());
    for tool in [
        "make check",
        "cc ",
        "cc1 ",
        "as ",
        "collect2 ",
        "ld ",
        "./test_sum",
        "./test_greet",
    ] {
        assert!(
            procs
                .values()
                .any(|(c, _)| c.starts_with(tool) || c.contains(&format!("/{tool}"))),
            "{tool} was checked\n{}",
            r.show()
        );
    }
    assert!(failing(&r.stderr()).is_empty(), "{}", r.show());
    assert!(p.path().join("test_greet").exists(), "built from clean");

    let p = project("ci-c");
    let r = step(p.path(), &format!("{GATE} LEAK=1"));
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert_eq!(failing(&r.stderr()), ["./test_greet"], "{}", r.show());
    assert!(names_the_leak(&r.stderr(), "test_greet.c"), "{}", r.show());
}

#[test]
fn a_rust_crate_checked_through_cargos_runner_variable() {
    in_readme(&format!("{RUST_RUNNER_VAR}: {RUST_RUNNER}"));
    in_readme(&format!("run: {RUST_TEST}"));
    // A fixed place under target/tmp, so the crate's build is reused between runs.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ci-rust");
    let src = base.join("crate");
    let _ = std::fs::remove_dir_all(&src);
    copy_dir(&root().join("tests/data/ci-rust"), &src);
    let cargo = |features: &str| {
        run_cmd(
            Command::new("sh")
                .args(["-c", &format!("{RUST_TEST} --offline{features}")])
                .current_dir(&src)
                .env("PATH", path_with_memcheck())
                .env("CARGO_TARGET_DIR", base.join("target"))
                .env(RUST_RUNNER_VAR, RUST_RUNNER)
                .env("NO_COLOR", "1"),
        )
    };
    let r = cargo("");
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(
        r.stdout().contains("test result: ok. 2 passed"),
        "{}",
        r.show()
    );
    let procs = processes(&r.stderr());
    assert_eq!(
        procs.len(),
        1,
        "the test binary ran under memcheck\n{}",
        r.show()
    );
    assert!(failing(&r.stderr()).is_empty(), "{}", r.show());

    let r = cargo(" --features leak");
    assert_ne!(r.code(), Some(0), "{}", r.show());
    // The leak's stack names the test.
    let err = r.stderr();
    assert_eq!(failing(&err).len(), 1, "{}", r.show());
    assert!(
        err.contains("are definitely lost") && err.contains("citest::tests::greets ("),
        "{}",
        r.show()
    );
    assert!(
        err.contains(&format!("`{RUST_RUNNER} ")),
        "cargo names the runner that failed\n{}",
        r.show()
    );
}

/// CMake's version, (major, minor).
fn cmake_version() -> (u32, u32) {
    let o = Command::new("cmake")
        .arg("--version")
        .output()
        .expect("cmake is needed for this test (.ci/run installs it)");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let v = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("cmake --version said {text:?}"));
    let mut parts = v.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn a_cmake_project_checked_through_ctests_test_launcher() {
    // CMake 3.29 has CMAKE_TEST_LAUNCHER; before it add_test ran tests through
    // CMAKE_CROSSCOMPILING_EMULATOR even when not cross-compiling (policy CMP0158).
    let configure = if cmake_version() >= (3, 29) {
        CMAKE_CONFIGURE_LAUNCHER
    } else {
        CMAKE_CONFIGURE_EMULATOR
    };
    for c in [
        CMAKE_CONFIGURE_LAUNCHER,
        CMAKE_CONFIGURE_EMULATOR,
        CMAKE_BUILD,
        CTEST,
    ] {
        in_readme(c);
    }
    for (leak, code) in [("", Some(0)), (" -DLEAK=ON", None)] {
        let p = project("ci-cmake");
        let r = step(p.path(), &format!("{configure}{leak}"));
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let r = step(p.path(), CMAKE_BUILD);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        // Each test's command starts with memcheck.
        let list = step(p.path(), "ctest --test-dir build -N -V");
        assert_eq!(
            list.stdout()
                .matches(r#"memcheck "run" "--error-exitcode=1" "--" "#)
                .count(),
            2,
            "{}",
            list.show()
        );
        let r = step(p.path(), CTEST);
        let out = r.stdout();
        if code == Some(0) {
            assert_eq!(r.code(), Some(0), "{}", r.show());
            assert!(out.contains("100% tests passed"), "{}", r.show());
        } else {
            assert_ne!(r.code(), Some(0), "{}", r.show());
            assert!(out.contains("test_greet (Failed)"), "{}", r.show());
            assert!(!out.contains("test_sum (Failed)"), "{}", r.show());
            assert!(names_the_leak(&out, "test_greet.c"), "{}", r.show());
        }
    }
}
