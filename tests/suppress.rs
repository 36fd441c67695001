//! Suppressions (`--suppressions`, the defaults, `--gen-suppressions`), the leak policy
//! (`--errors-for-leak-kinds`, `--show-mismatched-frees`) and identical findings counted once.
mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn used(r: &Run) -> Vec<Value> {
    r.json()["suppressions_used"].as_array().unwrap().clone()
}

/// The one leak of `leak` mode is found, and fails --error-exitcode, without a suppression.
#[test]
fn the_leak_fails_the_gate_without_a_suppression() {
    let prog = compile("suppress.c", &[]);
    let r = run_under(&["--error-exitcode=3"], &prog, &["leak"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert_eq!(r.summary("definite"), (24, 1), "{}", r.show());
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)"),
        "a leak counts as an error, as Valgrind counts it\n{}",
        r.show()
    );
}

#[test]
fn a_leaksanitizer_file_silences_a_leak_and_its_exit_status() {
    let prog = compile("suppress.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "lsan.supp",
        "# known leaks\n\nleak:^forgotten$\n",
    );
    let r = run_under(
        &["--error-exitcode=3", "--suppressions", &f],
        &prog,
        &["two"],
    );
    // also_forgotten's leak is still there: the file silences exactly one.
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert_eq!(r.summary("definite"), (40, 1), "{}", r.show());
    let r = run_under(
        &["--error-exitcode=3", "--suppressions", &f],
        &prog,
        &["leak"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.summary("definite"), (0, 0), "{}", r.show());
    assert!(r.leaks("definite").is_empty(), "{}", r.show());
    assert_eq!(r.summary("suppressed"), (24, 1), "{}", r.show());
    let u = used(&r);
    assert_eq!(u.len(), 1, "{}", r.show());
    assert_eq!(u[0]["name"], "leak:^forgotten$");
    assert_eq!(u[0]["file"], f.as_str());
    assert_eq!(
        (
            u[0]["line"].as_u64(),
            u[0]["count"].as_u64(),
            u[0]["bytes"].as_u64()
        ),
        (Some(3), Some(1), Some(24))
    );
    assert!(
        r.stderr().contains("suppressed: 24 bytes in 1 blocks"),
        "{}",
        r.show()
    );
    assert!(r.stderr().contains("Suppressions used:"), "{}", r.show());
}

#[test]
fn a_valgrind_file_silences_a_leak_and_its_exit_status() {
    let prog = compile("suppress.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    // As Valgrind writes it: the allocator first, then the program's frames.
    let f = write(
        dir.path(),
        "vg.supp",
        "{\n   forgotten on purpose\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n   fun:forgotten\n   fun:main\n}\n",
    );
    let r = run_under(
        &["--error-exitcode=3", "--suppressions", &f],
        &prog,
        &["leak"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.summary("definite"), (0, 0), "{}", r.show());
    assert_eq!(r.summary("suppressed"), (24, 1), "{}", r.show());
    assert_eq!(used(&r)[0]["name"], "forgotten on purpose", "{}", r.show());
    // A block whose kinds do not include the leak's suppresses nothing.
    let g = write(
        dir.path(),
        "reach.supp",
        "{\n   only reachable\n   Memcheck:Leak\n   match-leak-kinds: reachable\n   fun:forgotten\n}\n",
    );
    let r = run_under(
        &[
            "--error-exitcode=3",
            "--suppressions",
            &g,
            "--list-unused-suppressions",
        ],
        &prog,
        &["leak"],
    );
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let unused = r.json()["suppressions_unused"].as_array().unwrap();
    assert_eq!(unused.len(), 1, "{}", r.show());
    assert_eq!(unused[0]["name"], "only reachable");
    assert!(
        r.stderr()
            .contains(&format!("unused suppression: only reachable ({g}:1)")),
        "{}",
        r.show()
    );
}

/// `--gen-suppressions` output, pasted into a file, suppresses the same finding in a rebuild in
/// which every line and address moved.
#[test]
fn generated_suppressions_survive_a_rebuild_that_shifts_lines() {
    let first = compile("suppress.c", &[]);
    let shifted = compile("suppress.c", &["-DSHIFT"]);
    let dir = tempfile::tempdir().unwrap();
    for format in ["valgrind", "lsan"] {
        let r = run_under(
            &[
                "--gen-suppressions=all",
                &format!("--gen-suppressions-format={format}"),
            ],
            &first,
            &["leak"],
        );
        let leaks = r.leaks("definite");
        assert_eq!(leaks.len(), 1, "{}", r.show());
        let entry = leaks[0]["suppression"].as_str().unwrap().to_string();
        assert!(
            r.stderr().contains(&entry),
            "printed under the finding\n{}",
            r.show()
        );
        assert!(!entry.contains("0x"), "no addresses: {entry}");
        let f = write(dir.path(), &format!("{format}.supp"), &format!("{entry}\n"));

        let before = r.leaks("definite")[0]["stack"][0]["line"].as_u64();
        let plain = run_under(&["--error-exitcode=3"], &shifted, &["leak"]);
        assert_eq!(plain.code(), Some(3), "{}", plain.show());
        let after = plain.leaks("definite")[0]["stack"][0]["line"].as_u64();
        assert!(
            before.is_some() && before != after,
            "the rebuild moved the line\n{}",
            plain.show()
        );

        let r = run_under(
            &["--error-exitcode=3", "--suppressions", &f],
            &shifted,
            &["leak"],
        );
        assert_eq!(r.code(), Some(0), "{format}: {entry}\n{}", r.show());
        assert_eq!(r.summary("definite"), (0, 0), "{}", r.show());
        assert_eq!(r.summary("suppressed"), (24, 1), "{}", r.show());
    }
}

#[test]
fn a_malformed_file_is_refused_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let cases = [
        (
            "bad-kind.supp",
            "leak:ok\n# fine\nheap-overflow:f\n",
            3,
            "unknown kind `heap-overflow`",
        ),
        (
            "bad-frame.supp",
            "{\n  n\n  Memcheck:Leak\n  fn:main\n}\n",
            4,
            "is not a frame line",
        ),
        (
            "unclosed.supp",
            "leak:a\n{\n  n\n  Memcheck:Leak\n  fun:main\n",
            2,
            "no closing `}`",
        ),
        (
            "bad-vg-kind.supp",
            "{\n  n\n  Memcheck:Leek\n  fun:main\n}\n",
            3,
            "unknown Memcheck kind `Leek`",
        ),
    ];
    for (name, text, line, why) in cases {
        let f = write(dir.path(), name, text);
        let r = run_cmd(
            Command::new(memcheck())
                .args(["run", "--suppressions", &f, "--", "/usr/bin/touch"])
                .arg(&marker),
        );
        assert_eq!(r.code(), Some(2), "{}", r.show());
        let err = r.stderr();
        assert_eq!(err.lines().count(), 1, "one line\n{}", r.show());
        assert!(
            err.contains(&format!("{f}:{line}: ")) && err.contains(why),
            "{}",
            r.show()
        );
        assert!(!marker.exists(), "the program ran\n{}", r.show());
    }
    let r = run_cmd(Command::new(memcheck()).args([
        "run",
        "--suppressions",
        "/nonexistent/x.supp",
        "--",
        "/bin/true",
    ]));
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(r.stderr().contains("/nonexistent/x.supp"), "{}", r.show());
}

/// `gcc -c` of a small file runs the driver, cc1 and as; the driver and as leak by design
/// (binutils and GCC free nothing at exit). The defaults silence them; without the defaults the
/// gate fails.
#[test]
fn the_default_suppressions_make_gcc_c_report_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        dir.path(),
        "small.c",
        "int twice(int x) { return 2 * x; }\n",
    );
    let obj = dir.path().join("small.o").to_string_lossy().into_owned();
    let gcc = Path::new("/usr/bin/gcc");
    let args = ["-c", src.as_str(), "-o", obj.as_str()];
    let off = run_under(
        &[
            "--trace-children",
            "--error-exitcode=3",
            "--default-suppressions=no",
        ],
        gcc,
        &args,
    );
    assert_eq!(
        off.code(),
        Some(3),
        "gcc's toolchain leaks without the defaults\n{}",
        off.show()
    );
    let r = run_under(&["--trace-children", "--error-exitcode=3"], gcc, &args);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let procs = r.json()["processes"].as_array().unwrap();
    assert!(procs.len() >= 3, "driver, cc1 and as\n{}", r.show());
    for p in procs {
        for k in ["definite", "indirect"] {
            assert_eq!(
                p["leak_summary"][k]["blocks"],
                0,
                "{}\n{}",
                p["command"],
                r.show()
            );
        }
    }
    assert!(
        used(&r).iter().all(|u| u["file"] == "<default>"),
        "{}",
        r.show()
    );
    assert!(!used(&r).is_empty(), "{}", r.show());
}

#[test]
fn an_error_kind_is_suppressed_by_its_name_and_identical_errors_are_counted_once() {
    let prog = compile("suppress.c", &[]);
    let r = run_under(&["--error-exitcode=3"], &prog, &["overflow3"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let errs = r.errors();
    assert_eq!(
        errs.len(),
        1,
        "three identical errors, one entry\n{}",
        r.show()
    );
    assert_eq!(errs[0]["kind"], "heap-buffer-overflow");
    assert_eq!(errs[0]["count"], 3, "{}", r.show());
    assert_eq!(r.process()["error_summary"]["errors"], 3, "{}", r.show());
    assert_eq!(r.process()["error_summary"]["contexts"], 1, "{}", r.show());
    assert!(
        r.stderr().contains("3 times from this stack"),
        "{}",
        r.show()
    );
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 3 errors from 1 contexts"),
        "{}",
        r.show()
    );

    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "e.supp", "heap-buffer-overflow:overflow_once\n");
    let r = run_under(
        &["--error-exitcode=3", "--suppressions", &f],
        &prog,
        &["overflow3"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.errors().is_empty(), "{}", r.show());
    assert_eq!(used(&r)[0]["count"], 3, "{}", r.show());
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 3 from 1)"),
        "{}",
        r.show()
    );
    // The kind must match: a use-after-free line leaves the overflow alone.
    let g = write(dir.path(), "uaf.supp", "use-after-free:overflow_once\n");
    let r = run_under(
        &["--error-exitcode=3", "--suppressions", &g],
        &prog,
        &["overflow3"],
    );
    assert_eq!(r.code(), Some(3), "{}", r.show());
}

#[test]
fn errors_for_leak_kinds_decides_which_leaks_fail_the_gate() {
    let prog = compile("suppress.c", &[]);
    let r = run_under(&["--error-exitcode=3"], &prog, &["possible"]);
    assert_eq!(
        r.code(),
        Some(0),
        "a possible leak passes by default\n{}",
        r.show()
    );
    assert_eq!(r.summary("possible"), (64, 1), "{}", r.show());
    assert!(
        r.stderr().contains("ERROR SUMMARY: 0 errors"),
        "{}",
        r.show()
    );
    let r = run_under(
        &[
            "--error-exitcode=3",
            "--errors-for-leak-kinds=definite,possible",
        ],
        &prog,
        &["possible"],
    );
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 1 errors from 1 contexts"),
        "{}",
        r.show()
    );
    // And definite alone no longer fails on an indirect-free definite leak's absence.
    let r = run_under(
        &["--error-exitcode=3", "--errors-for-leak-kinds=none"],
        &prog,
        &["leak"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(
        r.summary("definite"),
        (24, 1),
        "still reported\n{}",
        r.show()
    );
}

#[test]
fn show_mismatched_frees_no_leaves_them_out() {
    let prog = compile("mismatch.cc", &[]);
    let r = run_under(&["--error-exitcode=3"], &prog, &["malloc-delete"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert!(
        r.errors()
            .iter()
            .any(|e| e["kind"] == "alloc-dealloc-mismatch"),
        "{}",
        r.show()
    );
    let r = run_under(
        &["--error-exitcode=3", "--show-mismatched-frees=no"],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.errors().is_empty(), "{}", r.show());
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{}",
        r.show()
    );
}

/// rust-lld (the linker rustc uses on x86_64 Linux) frees malloc'd buffers with operator delete
/// on purpose: each link reports alloc-dealloc-mismatch errors, which the defaults silence.
#[test]
fn the_default_suppressions_silence_rust_lld_mismatches() {
    let rustc = |arg: &str| {
        let o = Command::new("rustc").arg(arg).output().expect("rustc");
        String::from_utf8(o.stdout).unwrap()
    };
    let host = rustc("-vV")
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    let lld = Path::new(rustc("--print=sysroot").trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-lld");
    assert!(lld.is_file(), "{} is missing", lld.display());
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), "f.c", "int f(void) { return 7; }\n");
    let obj = dir.path().join("f.o");
    let out = dir.path().join("f.out");
    let o = Command::new("gcc")
        .args(["-c", &src, "-o"])
        .arg(&obj)
        .output()
        .unwrap();
    assert!(o.status.success());
    let (obj, out) = (obj.to_string_lossy(), out.to_string_lossy());
    let args = ["-flavor", "gnu", &*obj, "-o", &*out, "-e", "f"];
    let off = run_under(
        &["--error-exitcode=3", "--default-suppressions=no"],
        &lld,
        &args,
    );
    assert_eq!(off.code(), Some(3), "{}", off.show());
    assert!(
        off.errors()
            .iter()
            .all(|e| e["kind"] == "alloc-dealloc-mismatch"),
        "{}",
        off.show()
    );
    let r = run_under(&["--error-exitcode=3"], &lld, &args);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.errors().is_empty(), "{}", r.show());
    let u = used(&r);
    assert_eq!(
        u[0]["name"],
        "alloc-dealloc-mismatch:/rust-lld$",
        "{}",
        r.show()
    );
    assert_eq!(
        u[0]["count"].as_u64(),
        Some(
            off.errors()
                .iter()
                .map(|e| e["count"].as_u64().unwrap())
                .sum()
        ),
        "{}",
        r.show()
    );
}

/// With --leak-check=summary there are no leak stacks, but a failing kind's blocks still count
/// as an error: a run that fails the gate never says "0 errors".
#[test]
fn the_error_summary_counts_leaks_in_summary_mode_too() {
    let prog = compile("suppress.c", &[]);
    let r = run_under(
        &["--error-exitcode=3", "--leak-check=summary"],
        &prog,
        &["two"],
    );
    assert_eq!(r.code(), Some(3), "{}", r.show());
    assert_eq!(r.process()["error_summary"]["errors"], 1, "{}", r.show());
    assert!(
        r.stderr()
            .contains("ERROR SUMMARY: 1 errors from 1 contexts"),
        "{}",
        r.show()
    );
}

/// `memcheck report` re-renders a saved report with counts, generated entries and the
/// suppressions table byte for byte.
#[test]
fn memcheck_report_keeps_counts_and_suppressions() {
    let prog = compile("suppress.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "s.supp", "heap-buffer-overflow:overflow_once\n");
    let p = |n: &str| d.path().join(n).to_string_lossy().into_owned();
    for (args, flags, expect) in [
        (
            ["overflow3"],
            vec!["--gen-suppressions=all"],
            "3 times from this stack",
        ),
        (
            ["overflow3"],
            vec!["--suppressions", f.as_str(), "--list-unused-suppressions"],
            "Suppressions used:",
        ),
    ] {
        let mut all = flags.clone();
        let (json, text) = (
            format!("--report=json={}", p("run.json")),
            format!("--report=text={}", p("run.text")),
        );
        all.extend([json.as_str(), text.as_str()]);
        let r = run_under(&all, &prog, &args);
        assert!(r.json.is_some(), "{}", r.show());
        let again = p("again.text");
        let rr = run_cmd(
            Command::new(memcheck())
                .args([
                    "report",
                    &p("run.json"),
                    "--format",
                    "text",
                    "--output",
                    &again,
                ])
                .env("NO_COLOR", "1"),
        );
        assert_eq!(rr.code(), Some(0), "{}", rr.show());
        let (a, b) = (
            std::fs::read_to_string(p("run.text")).unwrap(),
            std::fs::read_to_string(&again).unwrap(),
        );
        assert_eq!(a, b, "{}", r.show());
        assert!(a.contains(expect), "{a}");
    }
}

/// A Rust program's runtime keeps the main thread's stack-overflow information and its
/// std::thread::current() handle until exit (reachable, possible): with every leak kind failing
/// the gate, the defaults still let it pass.
#[test]
fn the_default_suppressions_cover_the_rust_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(
        dir.path(),
        "main.rs",
        "fn main() {\n    let t = std::thread::current();\n    let h = std::thread::spawn(|| std::thread::current().id());\n    println!(\"{:?} {:?}\", t.id(), h.join().unwrap());\n}\n",
    );
    let exe = dir.path().join("rt");
    let o = Command::new("rustc")
        .args(["-g", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gate = ["--error-exitcode=3", "--errors-for-leak-kinds=all"];
    let off = run_under(
        &[&gate[..], &["--default-suppressions=no"]].concat(),
        &exe,
        &[],
    );
    assert_eq!(
        off.code(),
        Some(3),
        "the runtime keeps blocks\n{}",
        off.show()
    );
    let r = run_under(&gate, &exe, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    for k in ["definite", "indirect", "possible", "reachable"] {
        assert_eq!(r.summary(k).1, 0, "{k}\n{}", r.show());
    }
}
