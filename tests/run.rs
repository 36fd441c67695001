//! `memcheck run`: leak classification, symbolization, exit statuses, glibc semantics, real
//! programs, and refusals of programs the shim cannot reach.
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn definite_leak_names_function_and_line_with_exact_bytes() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&[], &prog, &["37"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "done\n", "{}", r.show());
    let line = line_of("leaks.c", "LEAK-HERE");
    let definite = r.leaks("definite");
    let leak = definite
        .iter()
        .find(|l| has_frame(&l["stack"], "leak_bytes", "leaks.c", Some(line)))
        .unwrap_or_else(|| {
            panic!(
                "no definite leak in leak_bytes at leaks.c:{line}\n{}",
                r.show()
            )
        });
    assert_eq!(leak["bytes"], 37, "{}", r.show());
    assert_eq!(leak["blocks"], 1, "{}", r.show());
    assert!(
        has_frame(&leak["stack"], "main", "leaks.c", None),
        "{}",
        r.show()
    );
    // The human report names the function and line too.
    assert!(r.stderr().contains("leak_bytes ("), "{}", r.show());
    assert!(
        r.stderr().contains(&format!("leaks.c:{line})")),
        "{}",
        r.show()
    );
    assert!(r.stderr().contains("LEAK SUMMARY"), "{}", r.show());
}

#[test]
fn list_is_one_definite_block_and_the_rest_indirect() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&["--show-leak-kinds=all"], &prog, &["8"]);
    let line = line_of("leaks.c", "LIST-HERE");
    let at_list = |kind: &str| -> (u64, u64) {
        r.leaks(kind)
            .iter()
            .filter(|l| has_frame(&l["stack"], "lose_list", "leaks.c", Some(line)))
            .fold((0, 0), |(b, n), l| {
                (
                    b + l["bytes"].as_u64().unwrap(),
                    n + l["blocks"].as_u64().unwrap(),
                )
            })
    };
    assert_eq!(at_list("definite"), (16, 1), "{}", r.show());
    assert_eq!(at_list("indirect"), (64, 4), "{}", r.show());
    // Totals: 8 bytes + the list head are definite, the list tail indirect.
    assert_eq!(r.summary("definite"), (8 + 16, 2), "{}", r.show());
    assert_eq!(r.summary("indirect"), (64, 4), "{}", r.show());
}

#[test]
fn global_held_block_is_reachable_and_interior_pointer_is_possible() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&["--show-leak-kinds=all"], &prog, &[]);
    let keep = line_of("leaks.c", "KEEP-HERE");
    let reach = r.leaks("reachable");
    assert!(
        reach
            .iter()
            .any(|l| l["bytes"] == 100
                && has_frame(&l["stack"], "keep_block", "leaks.c", Some(keep))),
        "{}",
        r.show()
    );
    assert!(
        !r.leaks("definite")
            .iter()
            .any(|l| has_frame(&l["stack"], "keep_block", "leaks.c", None)),
        "{}",
        r.show()
    );
    let interior = line_of("leaks.c", "INTERIOR-HERE");
    assert!(
        r.leaks("possible").iter().any(|l| l["bytes"] == 64
            && has_frame(&l["stack"], "keep_interior", "leaks.c", Some(interior))),
        "{}",
        r.show()
    );
}

#[test]
fn default_listing_shows_definite_and_indirect_only() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&[], &prog, &[]);
    assert!(!r.leaks("definite").is_empty(), "{}", r.show());
    assert!(!r.leaks("indirect").is_empty(), "{}", r.show());
    assert!(r.leaks("reachable").is_empty(), "{}", r.show());
    assert!(r.leaks("possible").is_empty(), "{}", r.show());
    // The summary still counts every kind.
    assert!(r.summary("reachable").0 >= 100, "{}", r.show());
}

#[test]
fn json_report_has_the_documented_shape() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&[], &prog, &["5", "3"]);
    let j = r.json();
    assert_eq!(j["version"], 1);
    let p = r.process();
    assert!(p["pid"].as_u64().unwrap() > 0);
    assert!(
        p["command"].as_str().unwrap().ends_with("leaks 5 3"),
        "{}",
        r.show()
    );
    assert_eq!(p["exit"], serde_json::json!({"code": 3}), "{}", r.show());
    assert!(p["errors"].as_array().unwrap().is_empty(), "{}", r.show());
    let leak = &p["leaks"][0];
    for k in ["kind", "bytes", "blocks", "stack"] {
        assert!(!leak[k].is_null(), "leak lacks {k}\n{}", r.show());
    }
    let frame = &leak["stack"][0];
    for k in ["address", "function", "file", "line", "object"] {
        assert!(frame.get(k).is_some(), "frame lacks {k}\n{}", r.show());
    }
    assert!(frame["address"].as_str().unwrap().starts_with("0x"));
}

#[test]
fn exit_status_passes_through_and_error_exitcode_applies_to_leaks() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&[], &prog, &["5", "3"]);
    assert_eq!(r.code(), Some(3), "{}", r.show());
    let r = run_under(&["--error-exitcode=42"], &prog, &["5", "0"]);
    assert_eq!(r.code(), Some(42), "{}", r.show());
    let r = run_under(
        &["--error-exitcode=42", "--leak-check=no"],
        &prog,
        &["5", "0"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.process()["leak_summary"].is_null(), "{}", r.show());
    let r = run_under(
        &["--error-exitcode=42", "--leak-check=summary"],
        &prog,
        &["5", "0"],
    );
    assert_eq!(r.code(), Some(42), "{}", r.show());
    assert!(
        r.process()["leaks"].as_array().unwrap().is_empty(),
        "{}",
        r.show()
    );
    assert_eq!(r.summary("definite").1, 2, "{}", r.show());
}

#[test]
fn a_program_killed_by_a_signal_is_reported_as_such() {
    let r = run_under(
        &[],
        std::path::Path::new("/bin/sh"),
        &["-c", "kill -SEGV $$"],
    );
    assert_eq!(r.code(), Some(128 + 11), "{}", r.show());
    assert_eq!(
        r.process()["exit"],
        serde_json::json!({"signal": 11}),
        "{}",
        r.show()
    );
    assert!(r.stderr().contains("killed by signal 11"), "{}", r.show());
}

#[test]
fn glibc_edge_cases_behave_as_natively_and_report_nothing() {
    let prog = compile("edge.c", &[]);
    let native = run_cmd(&mut Command::new(&prog));
    assert_eq!(native.code(), Some(0), "{}", native.show());
    let r = run_under(&["--error-exitcode=99"], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native.stdout(), "{}", r.show());
    let errors: Vec<_> = r
        .errors()
        .into_iter()
        .filter(|e| e["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{}", r.show());
    assert_eq!(r.summary("definite"), (0, 0), "{}", r.show());
    assert_eq!(r.summary("indirect"), (0, 0), "{}", r.show());
    // The deliberate bad requests are warnings with their own kinds.
    let kinds: Vec<&str> = r
        .errors()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"calloc-overflow"), "{}", r.show());
    assert!(kinds.contains(&"invalid-alignment"), "{}", r.show());
    assert!(kinds.contains(&"allocation-size-too-big"), "{}", r.show());
}

#[test]
fn cxx_forms_work_and_names_are_demangled() {
    let prog = compile("cxx.cc", &[]);
    let native = run_cmd(&mut Command::new(&prog));
    let r = run_under(&[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native.stdout(), "{}", r.show());
    assert!(r.stdout().contains("bad_alloc caught"), "{}", r.show());
    assert!(
        r.errors().iter().all(|e| e["severity"] == "warning"),
        "{}",
        r.show()
    );
    let line = line_of("cxx.cc", "CXX-LEAK");
    let d = r.leaks("definite");
    assert!(
        d.iter().any(|l| l["bytes"] == 24
            && has_frame(
                &l["stack"],
                "shapes::make_widget(long)",
                "cxx.cc",
                Some(line)
            )),
        "{}",
        r.show()
    );
    assert_eq!(r.summary("definite"), (24, 1), "{}", r.show());
}

#[test]
fn scripts_run_under_their_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("hello.sh");
    std::fs::write(&s, "#!/bin/sh\necho \"hi $1\"\nexit 4\n").unwrap();
    std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_under(&["--leak-check=no"], &s, &["there"]);
    assert_eq!(r.stdout(), "hi there\n", "{}", r.show());
    assert_eq!(r.code(), Some(4), "{}", r.show());
    assert!(
        r.process()["exe"].as_str().unwrap().contains("sh"),
        "{}",
        r.show()
    );
}

fn refused(prog: &std::path::Path, code: i32, words: &str) {
    let r = run_cmd(Command::new(memcheck()).arg("run").arg("--").arg(prog));
    assert_eq!(r.code(), Some(code), "{}", r.show());
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "one line expected\n{}", r.show());
    assert!(err.starts_with("memcheck: error: "), "{}", r.show());
    assert!(err.contains(words), "expected '{words}'\n{}", r.show());
}

#[test]
fn programs_the_shim_cannot_reach_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    refused(&dir.path().join("missing"), 127, "not found");
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "plain text\n").unwrap();
    refused(&txt, 126, "not executable");
    std::fs::set_permissions(&txt, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused(&txt, 126, "neither an ELF executable nor a #! script");
    // A 32-bit ELF header.
    let elf32 = dir.path().join("prog32");
    let mut hdr = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
    hdr.resize(52, 0);
    hdr[18] = 3; // EM_386
    std::fs::write(&elf32, &hdr).unwrap();
    std::fs::set_permissions(&elf32, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused(&elf32, 126, "32-bit");
    // setuid copy of a real program.
    let suid = dir.path().join("true-suid");
    std::fs::copy("/bin/true", &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    refused(&suid, 126, "setuid");
    let r = run_cmd(Command::new(memcheck()).args(["run", "--", "no-such-program-here"]));
    assert_eq!(r.code(), Some(127), "{}", r.show());
}

#[test]
fn static_binaries_are_refused() {
    let prog = compile("leaks.c", &["-static"]);
    refused(&prog, 126, "statically linked");
}

#[test]
fn an_output_path_that_cannot_take_a_report_is_a_usage_error() {
    let me = std::process::id().to_string();
    for args in [
        &["run", "--format=json", "--output", "/", "--", "true"][..],
        &["maps", &me, "--output", "/"],
    ] {
        let r = run_cmd(Command::new(memcheck()).args(args));
        assert_eq!(r.code(), Some(2), "{}", r.show());
        assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
        assert!(
            r.stderr().starts_with("memcheck: error: --output / "),
            "{}",
            r.show()
        );
    }
}

#[test]
fn json_without_output_is_a_usage_error() {
    for args in [
        &["run", "--format=json", "--", "true"][..],
        &["run", "--format", "json", "--", "true"],
    ] {
        let r = run_cmd(Command::new(memcheck()).args(args));
        assert_eq!(r.code(), Some(2), "a usage error exits 2\n{}", r.show());
        assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
        assert!(
            r.stderr()
                .starts_with("memcheck: error: --format json needs --output"),
            "{}",
            r.show()
        );
    }
}

#[test]
fn version_shows_cli_and_shim_agree() {
    let r = run_cmd(Command::new(memcheck()).arg("--version"));
    let v = r.stdout();
    let cli = env!("CARGO_PKG_VERSION");
    assert!(
        v.starts_with(&format!(
            "memcheck {cli} (shim {cli}, record format 1, build"
        )),
        "{}",
        r.show()
    );
}

#[test]
fn the_shim_reports_options_it_cannot_read_and_applies_the_rest() {
    // The CLI cannot write a bad MEMCHECK_OPTIONS, so a program it traces sets one for the next
    // image: `env` execs the leaking program with the shim still preloaded.
    let prog = compile("leaks.c", &[]);
    let options = "MEMCHECK_OPTIONS=lek=full,leak=summary,guard=9,depth";
    let prog_arg = prog.to_str().unwrap();
    let r = run_under(
        &["--trace-children"],
        std::path::Path::new("/usr/bin/env"),
        &[options, prog_arg, "37"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let err = r.stderr();
    for line in [
        "memcheck: MEMCHECK_OPTIONS: unknown key `lek`: ignored",
        "memcheck: MEMCHECK_OPTIONS: bad value `9` for `guard` (expected 0 (off), 1 (overflow), 2 (underflow) or 3 (both)): the default is kept",
        "memcheck: MEMCHECK_OPTIONS: `depth` is not key=value: ignored",
    ] {
        assert!(err.lines().any(|l| l == line), "{line}\n{}", r.show());
    }
    // leak=summary was applied: totals, but no leak listed one by one.
    assert!(r.leaks("definite").is_empty(), "{}", r.show());
    let definite: u64 = r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["leak_summary"]["definite"]["bytes"].as_u64())
        .sum();
    assert!(definite >= 37, "{}", r.show());
}

#[test]
fn an_unknown_option_is_refused_as_an_option_not_run_as_the_program() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let prog = compile("marker.c", &[]);
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--bogus", "--"])
            .arg(&prog)
            .arg(&marker),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(r.stderr().contains("--bogus"), "{}", r.show());
    assert!(!marker.exists(), "the program ran\n{}", r.show());
    // After PROG, what looks like an option is the program's.
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "/bin/echo", "-n", "x"])
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "x", "{}", r.show());
}

#[test]
fn a_process_without_a_leak_check_says_so() {
    let prog = compile("selfkill.c", &[]);
    let r = run_under(&[], &prog, &[]);
    assert_eq!(r.code(), Some(128 + 9), "{}", r.show());
    assert!(r.process()["leak_summary"].is_null(), "{}", r.show());
    let notes = r.process()["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("no leak check:")),
        "{}",
        r.show()
    );
    assert!(r.stderr().contains("note: no leak check:"), "{}", r.show());
}

#[test]
fn valgrinds_trace_children_yes_gets_a_hint_not_an_endless_yes() {
    let prog = compile("marker.c", &[]);
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--trace-children", "yes"])
            .arg(&prog),
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(
        r.stderr().contains("write --trace-children=yes"),
        "{}",
        r.show()
    );
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
    // Written with `=`, it runs.
    let r = run_cmd(
        Command::new(memcheck())
            .args(["run", "--trace-children=yes", "--leak-check=no", "--"])
            .arg(&prog)
            .env("NO_COLOR", "1"),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
}

#[test]
fn valgrinds_leak_check_yes_means_full() {
    let prog = compile("leaks.c", &[]);
    let r = run_under(&["--leak-check=yes"], &prog, &["37"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(!r.leaks("definite").is_empty(), "{}", r.show());
}
