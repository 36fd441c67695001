//! Issue 14's production mode (`--leak-check=no --sample-rate=N`): the sampled blocks are guarded
//! and reported as in guard mode, the others are glibc's own (nothing recorded), with no false
//! report and the program's native output (`tests/programs/production.cc`).
mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

fn prog() -> PathBuf {
    compile("production.cc", &[])
}

const PRODUCTION: &[&str] = &["--leak-check=no", "--sample-rate=1000"];

fn native(args: &[&str]) -> Run {
    run_cmd(Command::new(prog()).args(args))
}

fn with(extra: &[&str], args: &[&str]) -> Run {
    let mut f = PRODUCTION.to_vec();
    f.extend_from_slice(extra);
    run_under(&f, &prog(), args)
}

fn errors(r: &Run) -> usize {
    r.errors().len()
}

/// `glibc N exact M other K` of the `usable` mode.
fn usable_counts(out: &str) -> (u64, u64, u64) {
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(w.len(), 6, "{out}");
    (
        w[1].parse().unwrap(),
        w[3].parse().unwrap(),
        w[5].parse().unwrap(),
    )
}

#[test]
fn a_one_byte_overflow_of_a_sampled_block_is_caught_with_its_allocation_stack() {
    for rate in ["--sample-rate=2", "--sample-rate=1000"] {
        let r = run_under(&["--leak-check=no", rate], &prog(), &["overflow", "5000"]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        assert_eq!(r.stdout(), native(&["overflow", "5000"]).stdout());
        let errs = r.errors();
        assert_eq!(errs.len(), 1, "{}", r.show());
        let e = errs[0];
        assert_eq!(e["kind"], "heap-buffer-overflow", "{}", r.show());
        assert!(e["count"].as_u64().unwrap() >= 1, "{}", r.show());
        assert_eq!(
            e["stack"][0]["line"],
            line_of("production.cc", "OVERFLOW-HERE"),
            "{}",
            r.show()
        );
        assert!(
            has_frame(
                &e["alloc_stack"],
                "make",
                "production.cc",
                Some(line_of("production.cc", "MAKE-HERE"))
            ),
            "{}",
            r.show()
        );
    }
}

#[test]
fn every_allocation_form_runs_clean_with_its_native_output() {
    let n = native(&["mix"]);
    assert_eq!(n.code(), Some(0), "{}", n.show());
    for rate in ["--sample-rate=2", "--sample-rate=50", "--sample-rate=1000"] {
        let r = run_under(&["--leak-check=no", rate], &prog(), &["mix"]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        assert_eq!(r.stdout(), n.stdout(), "{}", r.show());
        assert_eq!(errors(&r), 0, "{}", r.show());
    }
    let r = with(&[], &["fork"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "fork child status 0\n", "{}", r.show());
    assert_eq!(errors(&r), 0, "{}", r.show());
}

#[test]
fn unsampled_blocks_are_glibcs_and_explicit_fills_keep_the_full_mode() {
    let (g, e, o) = usable_counts(&native(&["usable", "3000"]).stdout());
    assert_eq!((g, e, o), (3000, 0, 0), "glibc's usable size of malloc(5)");
    // Production mode: glibc's usable size but for the sampled blocks (about 1 in 1000).
    let r = with(&[], &["usable", "3000"]);
    let (g, e, o) = usable_counts(&r.stdout());
    assert_eq!(o, 0, "{}", r.show());
    assert!((1..=4).contains(&e) && g == 3000 - e, "{}", r.show());
    // A fill asked for needs every block: the full sampled mode, where every block is exact.
    for fill in ["--malloc-fill=0xaa", "--free-fill=none"] {
        let r = with(&[fill], &["usable", "3000"]);
        assert_eq!(usable_counts(&r.stdout()), (0, 3000, 0), "{}", r.show());
    }
    // So does a leak check.
    let r = run_under(&["--sample-rate=1000"], &prog(), &["usable", "3000"]);
    assert_eq!(usable_counts(&r.stdout()), (0, 3000, 0), "{}", r.show());
    // A program exec'd under --trace-children inherits production mode.
    let r = with(&["--trace-children"], &["exec-usable", "3000"]);
    let (g, e, _) = usable_counts(&r.stdout());
    assert!(g >= 2990 && e >= 1, "{}", r.show());
}

#[test]
fn a_double_free_of_a_sampled_block_is_reported_and_of_an_unsampled_one_is_glibcs() {
    let r = run_under(
        &["--leak-check=no", "--sample-rate=2"],
        &prog(),
        &["sampled-double-free"],
    );
    assert_eq!(r.stdout(), "double free done\n", "{}", r.show());
    let errs = r.errors();
    assert_eq!(errs.len(), 1, "{}", r.show());
    assert_eq!(errs[0]["kind"], "double-free", "{}", r.show());
    assert!(
        has_frame(
            &errs[0]["stack"],
            "sampled_double_free",
            "production.cc",
            Some(line_of("production.cc", "DOUBLE-FREE-HERE"))
        ),
        "{}",
        r.show()
    );
    // Natively glibc's tcache check aborts; in production mode the block is glibc's, so glibc
    // does the same, and memcheck reports no error of its own.
    let n = native(&["glibc-double-free"]);
    assert_eq!(n.out.status.code(), None, "{}", n.show());
    let r = with(&[], &["glibc-double-free"]);
    assert_eq!(r.stdout(), n.stdout(), "{}", r.show());
    assert_eq!(r.code(), Some(128 + 6), "{}", r.show());
    assert!(r.stderr().contains("double free detected"), "{}", r.show());
    assert_eq!(
        r.errors().iter().filter(|e| e["kind"] != "crash").count(),
        0,
        "{}",
        r.show()
    );
}

#[test]
fn a_live_leak_check_in_production_mode_says_why_it_has_no_leaks() {
    let prog = compile("live_threads.c", &[]);
    let mut t = Ready::spawn(
        "live_threads.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .arg("run")
            .args(PRODUCTION)
            .arg("--")
            .arg(&prog),
    );
    let r = run_cmd(
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["leaks", "--format", "json"])
            .arg(t.pid.to_string()),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let p = &v["processes"][0];
    assert_eq!(
        p["leaks"].as_array().map_or(0, |l| l.len()),
        0,
        "{}",
        r.show()
    );
    assert!(
        p["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("records only the sampled blocks")),
        "{}",
        r.show()
    );
    let f = t.finish("go\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
}

#[test]
fn mem_and_str_checks_are_off_unless_asked_and_an_overflow_then_faults_on_the_guard_page() {
    let args = ["memcpy-over", "3000", "21"];
    let native_out = native(&args).stdout();
    let in_memcpy = |r: &Run| {
        r.errors()
            .iter()
            .filter(|e| e["kind"] == "heap-buffer-overflow" && e["function"] == "memcpy")
            .count()
    };
    // Not given: the checks are off, so the sampled block's overflow is the fault on its guard
    // page, inside glibc's memcpy, reported with the line that called it.
    let r = run_under(&["--leak-check=no", "--sample-rate=2"], &prog(), &args);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native_out);
    assert_eq!(in_memcpy(&r), 0, "{}", r.show());
    let faults: Vec<_> = r
        .errors()
        .into_iter()
        .filter(|e| e["kind"] == "heap-buffer-overflow")
        .collect();
    assert_eq!(faults.len(), 1, "{}", r.show());
    assert!(
        has_frame(
            &faults[0]["stack"],
            "memcpy_over",
            "production.cc",
            Some(line_of("production.cc", "MEMCPY-HERE"))
        ),
        "{}",
        r.show()
    );
    // Asked for: the checked memcpy finds it before glibc's copy runs.
    let r = run_under(
        &[
            "--leak-check=no",
            "--sample-rate=2",
            "--check-mem-functions",
        ],
        &prog(),
        &args,
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native_out);
    assert_eq!(in_memcpy(&r), 1, "{}", r.show());
}
