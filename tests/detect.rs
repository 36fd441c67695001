//! Heap error detection: every error kind in the default mode and in guard mode, exact lines for
//! faults, clean runs of correct programs in every mode, and the mapping budget of guard mode.
mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

const MODES: [&[&str]; 3] = [&[], &["--guard"], &["--guard=underflow"]];

fn only_error<'a>(r: &'a Run, kind: &str) -> &'a Value {
    let errs = r.errors();
    let found: Vec<&&Value> = errs.iter().filter(|e| e["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}\n{}", r.show());
    assert_eq!(
        errs.iter().filter(|e| e["severity"] == "error").count(),
        1,
        "other errors too\n{}",
        r.show()
    );
    found[0]
}

fn bugs(flags: &[&str], mode: &str) -> Run {
    let prog = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    let mut f = vec!["--leak-check=no"];
    f.extend_from_slice(flags);
    run_under(&f, &prog, &[mode])
}

fn alloc_stack_ok(e: &Value, caller: &str) {
    assert!(
        has_frame(
            &e["alloc_stack"],
            "make",
            "bugs.c",
            Some(line_of("bugs.c", "ALLOC-HERE"))
        ),
        "{e:#}"
    );
    assert!(
        has_frame(&e["alloc_stack"], caller, "bugs.c", None),
        "{e:#}"
    );
}

#[test]
fn one_byte_overflow_and_underflow_are_caught_in_every_mode() {
    for flags in MODES {
        let r = bugs(flags, "overflow");
        let e = only_error(&r, "heap-buffer-overflow");
        assert_eq!(e["block"]["size"], 13, "{}", r.show());
        assert_eq!(e["block"]["offset"], 13, "{}", r.show());
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("0 bytes after a 13-byte block"),
            "{}",
            r.show()
        );
        assert_eq!(e["access"], "write", "{}", r.show());
        alloc_stack_ok(e, "overflow");
        assert_eq!(r.code(), Some(0), "continue is the default\n{}", r.show());

        let r = bugs(flags, "underflow");
        let e = only_error(&r, "heap-buffer-underflow");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("1 byte before a 13-byte block"),
            "{}",
            r.show()
        );
        alloc_stack_ok(e, "underflow");
    }
}

#[test]
fn guard_faults_name_the_exact_line_of_the_bad_access() {
    let r = bugs(&["--guard"], "overflow-to-guard");
    let e = only_error(&r, "heap-buffer-overflow");
    let line = line_of("bugs.c", "GUARD-OVERFLOW-HERE");
    assert_eq!(
        e["stack"][0]["function"],
        "overflow_to_guard",
        "{}",
        r.show()
    );
    assert_eq!(e["stack"][0]["line"], line, "{}", r.show());
    assert_eq!(e["access"], "write", "{}", r.show());
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .starts_with("0 bytes after a 16-byte block"),
        "{}",
        r.show()
    );
    assert_eq!(
        r.stdout(),
        "survived\n",
        "continuing after the report\n{}",
        r.show()
    );

    let r = bugs(&["--guard=underflow"], "underflow");
    let e = only_error(&r, "heap-buffer-underflow");
    assert_eq!(
        e["stack"][0]["line"],
        line_of("bugs.c", "UNDERFLOW-HERE"),
        "{}",
        r.show()
    );

    let r = bugs(&["--guard"], "uaf-read");
    let e = only_error(&r, "use-after-free");
    assert_eq!(e["access"], "read", "{}", r.show());
    assert_eq!(
        e["stack"][0]["line"],
        line_of("bugs.c", "UAF-READ-HERE"),
        "{}",
        r.show()
    );
    assert!(
        has_frame(
            &e["free_stack"],
            "uaf_read",
            "bugs.c",
            Some(line_of("bugs.c", "FREE-HERE"))
        ),
        "{}",
        r.show()
    );
    alloc_stack_ok(e, "uaf_read");
}

#[test]
fn use_after_free_writes_are_caught_in_every_mode() {
    for flags in MODES {
        let r = bugs(flags, "uaf-write");
        let e = only_error(&r, "use-after-free");
        assert_eq!(e["access"], "write", "{}", r.show());
        assert_eq!(e["block"]["offset"], 7, "{}", r.show());
        assert!(
            !e["free_stack"].as_array().unwrap().is_empty(),
            "{}",
            r.show()
        );
        alloc_stack_ok(e, "uaf_write");
    }
}

#[test]
fn frees_and_reallocs_of_bad_pointers_are_caught_in_every_mode() {
    for flags in MODES {
        let r = bugs(flags, "double-free");
        let e = only_error(&r, "double-free");
        let line = line_of("bugs.c", "DOUBLE-FREE-HERE");
        assert!(
            has_frame(&e["stack"], "double_free", "bugs.c", Some(line)),
            "{}",
            r.show()
        );
        assert!(
            has_frame(&e["free_stack"], "double_free", "bugs.c", Some(line - 1)),
            "{}",
            r.show()
        );
        alloc_stack_ok(e, "double_free");

        let r = bugs(flags, "invalid-free");
        let e = only_error(&r, "invalid-free");
        assert!(e["block"].is_null(), "{}", r.show());
        assert!(
            has_frame(
                &e["stack"],
                "invalid_free",
                "bugs.c",
                Some(line_of("bugs.c", "INVALID-FREE-HERE"))
            ),
            "{}",
            r.show()
        );

        let r = bugs(flags, "invalid-free-middle");
        let e = only_error(&r, "invalid-free");
        assert_eq!(e["block"]["size"], 40, "{}", r.show());
        assert_eq!(e["block"]["offset"], 8, "{}", r.show());

        let r = bugs(flags, "invalid-realloc");
        let e = only_error(&r, "invalid-realloc");
        assert!(
            has_frame(
                &e["stack"],
                "invalid_realloc",
                "bugs.c",
                Some(line_of("bugs.c", "REALLOC-HERE"))
            ),
            "{}",
            r.show()
        );
        assert!(
            !e["free_stack"].as_array().unwrap().is_empty(),
            "{}",
            r.show()
        );
    }
}

#[test]
fn alloc_dealloc_mismatches_are_caught_in_every_mode() {
    let prog = compile("mismatch.cc", &[]);
    for flags in MODES {
        for (mode, marker, words) in [
            (
                "new-free",
                "NEW-FREE-HERE",
                "allocated with operator new and released with free",
            ),
            (
                "newarray-delete",
                "NEWARRAY-DELETE-HERE",
                "allocated with operator new[] and released with operator delete",
            ),
            (
                "malloc-delete",
                "MALLOC-DELETE-HERE",
                "allocated with malloc and released with operator delete[]",
            ),
        ] {
            let mut f = vec!["--leak-check=no"];
            f.extend_from_slice(flags);
            let r = run_under(&f, &prog, &[mode]);
            let e = only_error(&r, "alloc-dealloc-mismatch");
            assert_eq!(e["description"], words, "{}", r.show());
            assert!(
                has_frame(
                    &e["stack"],
                    "main",
                    "mismatch.cc",
                    Some(line_of("mismatch.cc", marker))
                ),
                "{}",
                r.show()
            );
            assert_eq!(r.stdout(), "survived\n", "{}", r.show());
        }
    }
}

#[test]
fn on_error_abort_stops_at_the_first_error_and_error_exitcode_counts_errors() {
    let r = bugs(&["--on-error=abort"], "double-free");
    assert_eq!(r.code(), Some(128 + 6), "{}", r.show());
    assert_eq!(r.stdout(), "", "{}", r.show());
    only_error(&r, "double-free");
    let r = bugs(&["--error-exitcode=9"], "double-free");
    assert_eq!(r.code(), Some(9), "{}", r.show());
    let r = bugs(&["--guard", "--on-error=abort"], "overflow-to-guard");
    assert_eq!(r.code(), Some(128 + 6), "{}", r.show());
    only_error(&r, "heap-buffer-overflow");
}

#[test]
fn warnings_count_only_when_asked() {
    let prog = compile("edge.c", &[]);
    let r = run_under(&["--error-exitcode=9"], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let r = run_under(&["--error-exitcode=9", "--warnings-as-errors"], &prog, &[]);
    assert_eq!(r.code(), Some(9), "{}", r.show());
}

#[test]
fn perturb_fill_follows_flags_malloc_perturb_and_mallopt() {
    let r = bugs(&[], "fresh-byte");
    assert_eq!(
        r.stdout(),
        format!("fresh {}\nsurvived\n", 0xbe),
        "{}",
        r.show()
    );
    let r = bugs(&["--malloc-fill=0x41"], "fresh-byte");
    assert_eq!(r.stdout(), "fresh 65\nsurvived\n", "{}", r.show());
    let prog = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    let mut c = Command::new(memcheck());
    c.args(["run", "--leak-check=no", "--"])
        .arg(&prog)
        .arg("fresh-byte")
        .env("MALLOC_PERTURB_", "85");
    let r = run_cmd(&mut c);
    assert_eq!(
        r.stdout(),
        format!("fresh {}\nsurvived\n", 85 ^ 0xff),
        "{}",
        r.show()
    );
    let r = bugs(&[], "mallopt-perturb");
    assert_eq!(
        r.stdout(),
        format!("fresh {}\nsurvived\n", 0x11 ^ 0xff),
        "{}",
        r.show()
    );
    // Without a free fill a write after free cannot be seen in the default mode.
    let r = bugs(&["--free-fill=none"], "uaf-write");
    assert!(r.errors().is_empty(), "{}", r.show());
}

#[test]
fn correct_threaded_forking_program_is_clean_in_every_mode() {
    let prog = compile("threads.c", &[]);
    for flags in [
        &[][..],
        &["--guard"],
        &["--guard=underflow"],
        &["--guard=both"],
        &["--guard-align=16"],
        &["--sample-rate=10"],
    ] {
        let mut f = vec!["--error-exitcode=9"];
        f.extend_from_slice(flags);
        let r = run_under(&f, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{flags:?}\n{}", r.show());
        assert_eq!(r.stdout(), "threads done, child exit 0\n", "{}", r.show());
        assert!(r.errors().is_empty(), "{}", r.show());
        assert_eq!(
            r.json()["processes"].as_array().unwrap().len(),
            2,
            "parent and forked child\n{}",
            r.show()
        );
    }
}

#[test]
fn guard_mode_survives_more_live_blocks_than_max_map_count() {
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let n = (max + 5000).to_string();
    let prog = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    let r = run_under(&["--guard", "--error-exitcode=9"], &prog, &["many", &n]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(
        r.stdout().starts_with(&format!("{n} blocks")),
        "{}",
        r.show()
    );
    assert_eq!(
        r.stderr().matches("live guarded blocks reach").count(),
        1,
        "one warning\n{}",
        r.show()
    );
    let notes = r.process()["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{}", r.show());
    assert!(
        notes[0].as_str().unwrap().contains("max_map_count"),
        "{}",
        r.show()
    );
}

#[test]
fn programs_with_their_own_sigsegv_handler_keep_it() {
    let prog = compile("handler.c", &[]);
    for flags in [&[][..], &["--guard"], &["--sample-rate=1"]] {
        let r = run_under(flags, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{flags:?}\n{}", r.show());
        assert_eq!(r.stdout(), "own handler caught 3 faults\n", "{}", r.show());
        assert!(r.errors().is_empty(), "{}", r.show());
    }
    let r = run_under(&["--guard"], &prog, &["overflow"]);
    let e = only_error(&r, "heap-buffer-overflow");
    assert_eq!(
        e["stack"][0]["line"],
        line_of("handler.c", "HANDLER-OVERFLOW-HERE"),
        "{}",
        r.show()
    );
}

#[test]
fn a_real_segfault_still_kills_the_program_under_guard_mode() {
    let r = run_under(
        &["--guard"],
        std::path::Path::new("/bin/sh"),
        &["-c", "kill -SEGV $$"],
    );
    assert_eq!(r.code(), Some(128 + 11), "{}", r.show());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("null.c");
    std::fs::write(&src, "int main(void) { volatile int *p = 0; return *p; }\n").unwrap();
    let bin = dir.path().join("null");
    assert!(Command::new("gcc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let r = run_under(&["--guard"], &bin, &[]);
    assert_eq!(r.code(), Some(128 + 11), "{}", r.show());
    // Not a guard-page finding: the one error is the crash itself (issue 11).
    let kinds: Vec<_> = r.errors().iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, ["crash"], "{}", r.show());
}

/// mallinfo2 under memcheck counts what the program holds, not memcheck's redzones, quarantined
/// blocks or guard pages: its deltas match the native ones.
#[test]
fn mallinfo_reports_the_programs_share_in_every_mode() {
    let prog = compile("mallinfo.c", &[]);
    let native = run_cmd(&mut Command::new(&prog));
    let nums = |s: &str| -> Vec<i64> {
        s.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let n = nums(&native.stdout());
    for flags in MODES {
        let mut f = vec!["--leak-check=no"];
        f.extend_from_slice(flags);
        let r = run_under(&f, &prog, &[]);
        let m = nums(&r.stdout());
        assert_eq!(m.len(), n.len(), "{}", r.show());
        // 1000 x 100 bytes: within 10% of the native delta (chunk rounding differs).
        if flags.is_empty() {
            assert!(
                (m[0] - n[0]).abs() * 10 <= n[0],
                "small delta {} vs native {}\n{}",
                m[0],
                n[0],
                r.show()
            );
        }
        // Four 1 MiB blocks show as four mmapped blocks of at least 4 MiB, as natively.
        assert_eq!(m[1], 4, "{}", r.show());
        assert!(
            m[2] >= 4 << 20 && m[2] < (4 << 20) + (4 << 20) / 8,
            "{}",
            r.show()
        );
        // After freeing everything nothing is left in use, although memcheck still holds the
        // blocks in its quarantine.
        assert!(m[3].abs() < 4096, "after free {}\n{}", m[3], r.show());
        assert_eq!(m[4], 0, "{}", r.show());
        assert_eq!(m[5], 1, "{}", r.show());
    }
}
