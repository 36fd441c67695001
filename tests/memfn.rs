//! Checked memory and string functions (`--check-mem-functions`): the bad calls of
//! `tests/programs/memfn.c` are reported at their line with the right kind, access and size in
//! every mode, `_FORTIFY_SOURCE` builds are caught in the `_chk` variants, the correct calls of
//! every checked function stay clean, and `--check-mem-functions=no` turns the checks off.
mod common;
use common::*;
use serde_json::Value;

const MODES: [&[&str]; 3] = [&[], &["--guard"], &["--guard=underflow"]];
const SRC: &str = "memfn.c";

fn prog() -> std::path::PathBuf {
    compile(SRC, &[])
}

fn fortified() -> std::path::PathBuf {
    compile(
        SRC,
        &["-O2", "-D_FORTIFY_SOURCE=2", "-Wno-stringop-overflow"],
    )
}

fn run(flags: &[&str], prog: &std::path::Path, args: &[&str]) -> Run {
    let mut f = vec!["--leak-check=no"];
    f.extend_from_slice(flags);
    run_under(&f, prog, args)
}

/// The one error found in the checked function `func`.
fn in_function<'a>(r: &'a Run, func: &str) -> &'a Value {
    let found: Vec<&Value> = r
        .errors()
        .into_iter()
        .filter(|e| e["function"] == func)
        .collect();
    assert_eq!(found.len(), 1, "expected one error in {func}\n{}", r.show());
    found[0]
}

/// The error's innermost frame in the program's source is the call at `marker`, and no frame of
/// the shim comes before it.
fn at_line(r: &Run, e: &Value, marker: &str) {
    let frames = e["stack"].as_array().expect("a stack");
    let i = frames
        .iter()
        .position(|f| f["file"].as_str().is_some_and(|p| p.ends_with(SRC)))
        .unwrap_or_else(|| panic!("no frame in {SRC}\n{}", r.show()));
    assert_eq!(
        frames[i]["line"].as_u64(),
        Some(line_of(SRC, marker)),
        "{e:#}"
    );
    assert!(
        frames[..i].iter().all(|f| !f["function"]
            .as_str()
            .unwrap_or("")
            .contains("memcheck_shim")),
        "a shim frame on top\n{e:#}"
    );
}

#[test]
fn an_overlapping_memcpy_is_param_overlap_with_both_ranges_in_every_mode() {
    let p = prog();
    for flags in MODES {
        let r = run(flags, &p, &["overlap"]);
        let e = in_function(&r, "memcpy");
        assert_eq!(e["kind"], "param-overlap", "{}", r.show());
        assert_eq!(e["severity"], "error");
        at_line(&r, e, "MEMCPY-OVERLAP");
        let d = &e["overlap"]["destination"];
        let s = &e["overlap"]["source"];
        assert_eq!(d["size"], 16, "{e:#}");
        assert_eq!(s["size"], 16, "{e:#}");
        let addr = |v: &Value| {
            u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        };
        assert_eq!(addr(&d["address"]), addr(&s["address"]) + 4, "{e:#}");
        assert_eq!(e["address"], d["address"]);
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("memcpy: destination ["),
            "{e:#}"
        );
        assert!(
            r.stderr().contains("error: param-overlap at ") && r.stderr().contains(" in memcpy"),
            "{}",
            r.show()
        );
        assert_eq!(r.errors().len(), 1, "{}", r.show());
    }
}

#[test]
fn param_overlap_is_a_suppression_kind() {
    let dir = tempfile::tempdir().unwrap();
    let supp = dir.path().join("s.supp");
    std::fs::write(&supp, "param-overlap:overlap\n").unwrap();
    let r = run(
        &[&format!("--suppressions={}", supp.display())],
        &prog(),
        &["overlap"],
    );
    assert!(r.errors().is_empty(), "{}", r.show());
    assert_eq!(
        r.process()["error_summary"]["suppressed"],
        1,
        "{}",
        r.show()
    );
}

#[test]
fn strncat_past_the_end_of_a_block_is_an_overflow_write_with_its_size_at_its_line() {
    let p = prog();
    for flags in MODES {
        let r = run(flags, &p, &["strncat"]);
        let e = in_function(&r, "strncat");
        assert_eq!(e["kind"], "heap-buffer-overflow", "{}", r.show());
        assert_eq!(e["access"], "write", "{e:#}");
        // "abc" + 12 bytes + NUL from offset 3: 13 bytes written, the first bad one at 10.
        assert_eq!(e["access_size"], 13, "{e:#}");
        assert_eq!(e["block"]["size"], 10, "{e:#}");
        assert_eq!(e["block"]["offset"], 10, "{e:#}");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("0 bytes after a 10-byte block"),
            "{e:#}"
        );
        at_line(&r, e, "STRNCAT-HERE");
    }
}

#[test]
fn puts_of_a_freed_string_is_a_use_after_free_read() {
    let p = prog();
    for flags in MODES {
        let r = run(flags, &p, &["puts-freed"]);
        let e = in_function(&r, "puts");
        assert_eq!(e["kind"], "use-after-free", "{}", r.show());
        assert_eq!(e["access"], "read", "{e:#}");
        assert_eq!(e["block"]["size"], 13, "{e:#}");
        assert_eq!(e["block"]["offset"], 0, "{e:#}");
        at_line(&r, e, "PUTS-HERE");
        assert!(
            has_frame(&e["free_stack"], "puts_freed", SRC, None),
            "{e:#}"
        );
        // strdup's block: the allocation stack has glibc's strdup and the caller, no shim frame.
        let alloc = e["alloc_stack"].as_array().unwrap();
        assert!(
            alloc[0]["function"].as_str().unwrap().contains("strdup"),
            "{e:#}"
        );
        assert!(
            alloc.iter().all(|f| !f["function"]
                .as_str()
                .unwrap_or("")
                .contains("memcheck_shim")),
            "{e:#}"
        );
        if flags.is_empty() {
            // The freed block holds the free fill, no NUL: the read runs to its end and past.
            assert_eq!(e["access_size"], 14, "{e:#}");
        }
    }
}

#[test]
fn strcat_onto_an_unterminated_block_is_an_overflow_read_of_that_block() {
    let p = prog();
    for flags in MODES {
        let r = run(flags, &p, &["strcat-unterminated"]);
        let e = in_function(&r, "strcat");
        assert_eq!(e["kind"], "heap-buffer-overflow", "{}", r.show());
        assert_eq!(e["access"], "read", "{e:#}");
        assert_eq!(e["block"]["size"], 24, "{e:#}");
        assert_eq!(e["block"]["offset"], 24, "{e:#}");
        assert_eq!(e["access_size"], 25, "{e:#}");
        at_line(&r, e, "STRCAT-HERE");
        assert!(
            r.errors()
                .iter()
                .all(|e| e["kind"] != "heap-buffer-underflow"),
            "not an underflow of the next block\n{}",
            r.show()
        );
    }
}

#[test]
fn memset_one_byte_before_a_block_is_an_underflow_write() {
    let p = prog();
    for flags in MODES {
        let r = run(flags, &p, &["memset-before"]);
        let e = in_function(&r, "memset");
        assert_eq!(e["kind"], "heap-buffer-underflow", "{}", r.show());
        assert_eq!(e["access"], "write", "{e:#}");
        assert_eq!(e["access_size"], 4, "{e:#}");
        assert_eq!(e["block"]["size"], 16, "{e:#}");
        assert_eq!(e["block"]["offset"], -1, "{e:#}");
        assert!(
            e["description"]
                .as_str()
                .unwrap()
                .starts_with("1 byte before a 16-byte block"),
            "{e:#}"
        );
        at_line(&r, e, "MEMSET-UNDER");
    }
}

#[test]
fn fortify_source_builds_are_caught_in_the_chk_variants() {
    let p = fortified();
    for flags in MODES {
        let r = run(flags, &p, &["fortify", "20"]);
        let e = in_function(&r, "__memcpy_chk");
        assert_eq!(e["kind"], "heap-buffer-overflow", "{}", r.show());
        assert_eq!(e["access"], "write", "{e:#}");
        assert_eq!(e["access_size"], 20, "{e:#}");
        assert_eq!(e["block"]["size"], 10, "{e:#}");
        at_line(&r, e, "FORTIFY-MEMCPY");
        // glibc's own check then ends the program.
        assert_eq!(r.process()["exit"]["signal"], 6, "{}", r.show());

        let r = run(flags, &p, &["fortify-strncat", "20"]);
        let e = in_function(&r, "__strncat_chk");
        assert_eq!(e["kind"], "heap-buffer-overflow", "{}", r.show());
        assert_eq!(e["access"], "write", "{e:#}");
        assert_eq!(e["access_size"], 21, "{e:#}");
        at_line(&r, e, "FORTIFY-STRNCAT");

        // In bounds: nothing.
        let r = run(flags, &p, &["fortify", "5"]);
        assert!(r.errors().is_empty(), "{}", r.show());
        assert_eq!(r.code(), Some(0), "{}", r.show());
    }
}

#[test]
fn check_mem_functions_no_turns_every_check_off() {
    let p = prog();
    let f = fortified();
    for flags in MODES {
        let mut flags = flags.to_vec();
        flags.push("--check-mem-functions=no");
        for (prog, args) in [
            (&p, &["overlap"][..]),
            (&p, &["strncat"]),
            (&p, &["puts-freed"]),
            (&p, &["strcat-unterminated"]),
            (&p, &["memset-before"]),
            (&f, &["fortify", "20"]),
        ] {
            let r = run(&flags, prog, args);
            assert!(
                r.errors()
                    .iter()
                    .all(|e| e.get("function").is_none() && e["kind"] != "param-overlap"),
                "{}",
                r.show()
            );
        }
    }
    // The default is on, and =yes says so.
    let r = run(&["--check-mem-functions=yes"], &p, &["overlap"]);
    in_function(&r, "memcpy");
}

#[test]
fn correct_calls_of_every_checked_function_are_clean_in_every_mode() {
    for p in [prog(), fortified()] {
        for flags in MODES {
            let r = run(flags, &p, &["clean"]);
            assert!(r.errors().is_empty(), "{}", r.show());
            assert_eq!(r.code(), Some(0), "{}", r.show());
            assert!(r.stdout().starts_with("abcd\nabcd\n"), "{}", r.show());
        }
    }
}

#[test]
fn a_block_last_touched_by_a_checked_call_is_still_lost() {
    // leaks.c memsets its 12-byte block and drops the pointer: the checks keep no copy of it
    // where the leak scan would find one (their per-thread cache is a root).
    let r = run_under(&[], &compile("leaks.c", &[]), &["12"]);
    assert_eq!(r.summary("definite"), (12 + 16, 2), "{}", r.show());
}
