//! Issue 13's shortfalls against ASan (the guard-mode part): byte-exact guard pages, underflows
//! at their line or at free, crash diagnosis in every mode, canary ranges and attribution, every
//! `delete` form, and the allocation-size checks.
mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

/// Every mode a guarded or default block can be in.
const EVERY_MODE: [&[&str]; 5] = [
    &[],
    &["--guard"],
    &["--guard=underflow"],
    &["--guard=both"],
    &["--sample-rate=1"],
];

fn guardx() -> PathBuf {
    compile("guardx.c", &["-Wno-alloc-size-larger-than"])
}

fn run(flags: &[&str], mode: &str) -> Run {
    let mut f = vec!["--leak-check=no"];
    f.extend_from_slice(flags);
    run_under(&f, &guardx(), &[mode])
}

/// The one error (severity error) of the run, which must be of `kind`.
fn only_error<'a>(r: &'a Run, kind: &str) -> &'a Value {
    let errs: Vec<&Value> = r
        .errors()
        .into_iter()
        .filter(|e| e["severity"] == "error")
        .collect();
    assert_eq!(errs.len(), 1, "expected one error, a {kind}\n{}", r.show());
    assert_eq!(errs[0]["kind"], kind, "{}", r.show());
    errs[0]
}

fn description(e: &Value) -> &str {
    e["description"].as_str().unwrap()
}

/// The error is reported at the faulting instruction on `marker`'s line, with the block's
/// allocation stack.
fn at_line(r: &Run, e: &Value, marker: &str) {
    assert_eq!(
        e["stack"][0]["line"],
        line_of("guardx.c", marker),
        "{}",
        r.show()
    );
    assert!(
        has_frame(
            &e["alloc_stack"],
            "make",
            "guardx.c",
            Some(line_of("guardx.c", "MAKE-HERE"))
        ),
        "{}",
        r.show()
    );
}

#[test]
fn byte_exact_guard_pages_fault_at_one_byte_overreads_and_overwrites() {
    for flags in [&["--guard"][..], &["--guard=both"]] {
        for (mode, marker, size, access) in [
            ("overread", "OVERREAD-HERE", 10, "read"),
            ("straddle", "STRADDLE-HERE", 10, "read"),
            ("write42", "WRITE42-HERE", 42, "write"),
        ] {
            let r = run(flags, mode);
            let e = only_error(&r, "heap-buffer-overflow");
            assert_eq!(e["access"], access, "{}", r.show());
            assert_eq!(e["block"]["size"], size, "{}", r.show());
            assert_eq!(e["block"]["offset"], size, "{}", r.show());
            assert_eq!(
                description(e),
                format!("0 bytes after a {size}-byte block"),
                "{}",
                r.show()
            );
            at_line(&r, e, marker);
            // The block ends flush with its guard page.
            let addr = u64::from_str_radix(
                e["block"]["address"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("0x"),
                16,
            )
            .unwrap();
            assert_eq!((addr + size) % 4096, 0, "{}", r.show());
            assert_eq!(r.stdout(), "survived\n", "{}", r.show());
        }
    }
}

#[test]
fn guard_align_restores_a_fixed_alignment_and_the_canary_finds_the_rest_at_free() {
    let r = run(&["--guard-align=16"], "write42");
    let e = only_error(&r, "heap-buffer-overflow");
    let addr = u64::from_str_radix(
        e["block"]["address"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(addr % 16, 0, "{}", r.show());
    assert!(
        description(e)
            .starts_with("0 bytes after a 42-byte block (found damaged when the block was freed)"),
        "{}",
        r.show()
    );
    // A read within the padding is not an error of the guard page's.
    let r = run(&["--guard-align=16"], "overread");
    assert!(r.errors().is_empty(), "{}", r.show());

    // A block of odd size keeps one byte of slop by default (programs tag the low bit of heap
    // pointers); --guard-align=1 makes it exact too.
    let bugs = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    let r = run_under(&["--leak-check=no", "--guard"], &bugs, &["overflow"]);
    let e = only_error(&r, "heap-buffer-overflow");
    assert!(
        description(e)
            .starts_with("0 bytes after a 13-byte block (found damaged when the block was freed)"),
        "{}",
        r.show()
    );
    let r = run_under(
        &["--leak-check=no", "--guard-align=1"],
        &bugs,
        &["overflow"],
    );
    let e = only_error(&r, "heap-buffer-overflow");
    assert_eq!(
        description(e),
        "0 bytes after a 13-byte block",
        "{}",
        r.show()
    );
    assert_eq!(
        e["stack"][0]["line"],
        line_of("bugs.c", "OVERFLOW-HERE"),
        "{}",
        r.show()
    );

    let o = std::process::Command::new(memcheck())
        .args(["run", "--guard-align=24", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("power of two from 1 to 4096"), "{err}");
}

#[test]
fn a_far_underflow_of_a_big_block_is_diagnosed_against_it_in_every_mode() {
    for flags in EVERY_MODE {
        let r = run(flags, "far-underflow");
        let e = only_error(&r, "heap-buffer-underflow");
        assert_eq!(e["access"], "read", "{flags:?}\n{}", r.show());
        assert_eq!(e["block"]["size"], 1 << 20, "{}", r.show());
        assert_eq!(e["block"]["offset"], -4000, "{}", r.show());
        assert!(
            description(e).starts_with("4000 bytes before a 1048576-byte block"),
            "{}",
            r.show()
        );
        at_line(&r, e, "FAR-UNDERFLOW-HERE");
        if flags.is_empty() {
            // The default mode cannot continue: the program dies of its SIGSEGV, after the report.
            assert_eq!(r.code(), Some(128 + 11), "{}", r.show());
            assert!(
                !r.errors().iter().any(|e| e["kind"] == "crash"),
                "{}",
                r.show()
            );
        } else {
            assert_eq!(r.stdout(), "survived\n", "{flags:?}\n{}", r.show());
        }
    }
}

#[test]
fn a_far_underflow_write_is_a_write_from_the_faults_error_code() {
    for flags in [&[][..], &["--guard"]] {
        let r = run(flags, "far-underflow-write");
        let e = only_error(&r, "heap-buffer-underflow");
        assert_eq!(e["access"], "write", "{flags:?}\n{}", r.show());
        assert_eq!(e["block"]["offset"], -4000, "{}", r.show());
        at_line(&r, e, "FAR-UNDERFLOW-WRITE-HERE");
    }
}

#[test]
fn the_programs_own_sigsegv_handler_keeps_priority_in_the_default_mode() {
    let r = run(&[], "handled");
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "handled\nsurvived\n", "{}", r.show());
    assert!(r.errors().is_empty(), "{}", r.show());
}

#[test]
fn underflows_fault_on_the_underflow_side_and_writes_are_found_at_free_on_the_other() {
    // A read-modify-write that leaves the byte as it was: only a guard page can see it.
    let r = run(&["--guard=underflow"], "writeback");
    let e = only_error(&r, "heap-buffer-underflow");
    assert_eq!(e["access"], "read", "{}", r.show());
    assert!(
        description(e).starts_with("1 byte before a 32-byte block"),
        "{}",
        r.show()
    );
    at_line(&r, e, "WRITEBACK-HERE");
    // --guard=both: one site's blocks alternate sides; the underflow of the overflow-side block is
    // found by its canary at free, the other's at the instruction.
    let r = run(&["--guard=both"], "two-underflows");
    let errs = r.errors();
    assert_eq!(errs.len(), 2, "{}", r.show());
    let exact = errs
        .iter()
        .find(|e| e["stack"][0]["line"] == line_of("guardx.c", "TWO-UNDERFLOWS-HERE"))
        .unwrap_or_else(|| panic!("no underflow at its line\n{}", r.show()));
    assert_eq!(exact["kind"], "heap-buffer-underflow", "{}", r.show());
    assert_eq!(
        description(exact),
        "2 bytes before a 24-byte block",
        "{}",
        r.show()
    );
    let at_free = errs
        .iter()
        .find(|e| {
            has_frame(
                &e["stack"],
                "two_underflows",
                "guardx.c",
                Some(line_of("guardx.c", "TWO-UNDERFLOWS-FREE")),
            )
        })
        .unwrap_or_else(|| panic!("no underflow found at free\n{}", r.show()));
    assert_eq!(at_free["kind"], "heap-buffer-underflow", "{}", r.show());
    assert!(
        description(at_free)
            .starts_with("2 bytes before a 24-byte block (found damaged when the block was freed)"),
        "{}",
        r.show()
    );
    // Plain --guard (overflow side): both found at free, by the canaried head of the block's page.
    let r = run(&["--guard"], "two-underflows");
    let e = only_error(&r, "heap-buffer-underflow");
    assert_eq!(e["count"], 2, "{}", r.show());
    assert_eq!(e["block"]["size"], 24, "{}", r.show());
}

#[test]
fn canary_damage_is_one_range_and_belongs_to_the_block_it_ran_from() {
    let r = run(&[], "range");
    let e = only_error(&r, "heap-buffer-overflow");
    assert_eq!(e["block"]["size"], 13, "{}", r.show());
    assert_eq!(e["block"]["offset"], 13, "{}", r.show());
    assert_eq!(e["access_size"], 3, "{}", r.show());
    assert!(
        description(e).contains("; 3 bytes damaged, 0x"),
        "{}",
        r.show()
    );

    // Block a's overflow runs through its redzone and glibc's chunk header into the left redzone
    // of b, which is freed first: one overflow of a, not an underflow of b.
    let r = run(&[], "contiguous");
    let e = only_error(&r, "heap-buffer-overflow");
    let gap: u64 = r
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("gap "))
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("no gap line\n{}", r.show()));
    assert_eq!(e["block"]["size"], 24, "{}", r.show());
    assert_eq!(e["block"]["offset"], 24, "{}", r.show());
    assert_eq!(e["access_size"], gap - 12 - 24, "{}", r.show());
    assert!(
        has_frame(
            &e["stack"],
            "contiguous",
            "guardx.c",
            Some(line_of("guardx.c", "CONTIGUOUS-FREE-B"))
        ),
        "{}",
        r.show()
    );
}

#[test]
fn invalid_realloc_tells_an_interior_pointer_from_a_freed_block() {
    for flags in EVERY_MODE {
        let r = run(flags, "realloc-interior");
        let e = only_error(&r, "invalid-realloc");
        assert_eq!(
            description(e),
            "realloc of a pointer 8 bytes inside a 40-byte block, not the start of a block",
            "{flags:?}\n{}",
            r.show()
        );
    }
    let bugs = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    for flags in EVERY_MODE {
        let mut f = vec!["--leak-check=no"];
        f.extend_from_slice(flags);
        let r = run_under(&f, &bugs, &["invalid-realloc"]);
        let e = only_error(&r, "invalid-realloc");
        assert!(
            description(e).starts_with("realloc of a freed block: an 8-byte block"),
            "{flags:?}\n{}",
            r.show()
        );
    }
}

#[test]
fn every_delete_form_is_checked_in_every_mode() {
    let prog = compile("deletes.cc", &["-std=c++17", "-fsized-deallocation"]);
    let cases = [
        (
            "sized-wrong",
            "SIZED-WRONG-HERE",
            "allocated as a 24-byte block with operator new and released with a sized operator delete of 16 bytes",
        ),
        (
            "sized-array-wrong",
            "SIZED-ARRAY-WRONG-HERE",
            "allocated as a 40-byte block with operator new[] and released with a sized operator delete[] of 48 bytes",
        ),
        (
            "base-delete",
            "BASE-DELETE-HERE",
            "allocated as a 44-byte block with operator new and released with a sized operator delete of 4 bytes",
        ),
        (
            "aligned-unaligned",
            "ALIGNED-UNALIGNED-HERE",
            "allocated with operator new with alignment 64 and released with operator delete with the default alignment",
        ),
        (
            "unaligned-aligned",
            "UNALIGNED-ALIGNED-HERE",
            "allocated with operator new with the default alignment and released with operator delete with alignment 32",
        ),
        (
            "aligned-differ",
            "ALIGNED-DIFFER-HERE",
            "allocated with operator new[] with alignment 64 and released with operator delete[] with alignment 128",
        ),
    ];
    for flags in EVERY_MODE {
        let mut f = vec!["--leak-check=no"];
        f.extend_from_slice(flags);
        for (mode, marker, words) in cases {
            let r = run_under(&f, &prog, &[mode]);
            let e = only_error(&r, "alloc-dealloc-mismatch");
            assert_eq!(description(e), words, "{flags:?}\n{}", r.show());
            assert!(
                has_frame(
                    &e["stack"],
                    "main",
                    "deletes.cc",
                    Some(line_of("deletes.cc", marker))
                ),
                "{}",
                r.show()
            );
            assert_eq!(r.stdout(), "survived\n", "{}", r.show());
        }
        let r = run_under(&f, &prog, &["correct"]);
        assert!(r.errors().is_empty(), "{flags:?}\n{}", r.show());
        assert_eq!(r.stdout(), "survived\n", "{}", r.show());
    }
}

#[test]
fn requests_too_big_or_overflowing_are_reported_and_get_glibcs_answer() {
    let native = std::process::Command::new(guardx())
        .arg("args")
        .output()
        .unwrap();
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(native.contains("pvalloc null 12"), "{native}");
    let lines = [
        "MALLOC-BIG-HERE",
        "PVALLOC-HERE",
        "VALLOC-HERE",
        "ALIGNED-ALLOC-HERE",
        "REALLOCARRAY-HERE",
        "POSIX-MEMALIGN-HERE",
    ];
    for flags in EVERY_MODE {
        let r = run(flags, "args");
        assert_eq!(r.stdout(), native, "{flags:?}\n{}", r.show());
        let warns: Vec<&Value> = r
            .errors()
            .into_iter()
            .filter(|e| e["kind"] == "allocation-size-too-big")
            .collect();
        assert_eq!(warns.len(), lines.len(), "{flags:?}\n{}", r.show());
        assert!(
            warns.iter().all(|w| w["severity"] == "warning"),
            "{}",
            r.show()
        );
        for marker in lines {
            assert!(
                warns.iter().any(|w| has_frame(
                    &w["stack"],
                    "args",
                    "guardx.c",
                    Some(line_of("guardx.c", marker))
                )),
                "{marker}\n{}",
                r.show()
            );
        }
        let big = warns
            .iter()
            .find(|w| w["stack"][0]["line"] == line_of("guardx.c", "MALLOC-BIG-HERE"))
            .unwrap();
        assert_eq!(
            description(big),
            "requested 1099511627777 bytes (1.0 TiB), more than the maximum allocation size of 1.0 TiB (--max-allocation-size)",
            "{}",
            r.show()
        );
    }
    // --max-allocation-size moves the threshold both ways.
    let r = run(&["--max-allocation-size=1M"], "args");
    assert_eq!(r.stdout(), native, "{}", r.show());
    assert!(
        r.errors()
            .iter()
            .any(|w| w["stack"][0]["line"] == line_of("guardx.c", "MALLOC-2M-HERE")),
        "{}",
        r.show()
    );
    let r = run(&["--max-allocation-size=2T"], "args");
    assert!(
        !r.errors()
            .iter()
            .any(|w| w["stack"][0]["line"] == line_of("guardx.c", "MALLOC-BIG-HERE")),
        "{}",
        r.show()
    );
    assert_eq!(r.errors().len(), lines.len() - 1, "{}", r.show());
}
