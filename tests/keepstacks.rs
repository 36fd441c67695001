//! `memcheck run --keep-stacktraces`: which stacks each of Valgrind's values keeps, in the JSON
//! report, in guard mode, side by side with Valgrind's own run of the same program, and what the
//! live checks answer without allocation stacks.
mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// The program's own functions a stack passes through (main and libc's left out).
const OURS: [&str; 4] = ["make_block", "drop_block", "drop_again", "leak_block"];

fn ours(stack: &Value) -> BTreeSet<String> {
    stack
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str())
        .filter(|f| OURS.contains(f))
        .map(str::to_string)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The one error of `kind` in the report.
fn error<'a>(r: &'a Run, kind: &str) -> &'a Value {
    let es: Vec<&Value> = r
        .errors()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect();
    assert_eq!(es.len(), 1, "one {kind}\n{}", r.show());
    es[0]
}

/// What each value keeps: (allocation stacks, free stacks, free replaces allocation).
const VALUES: [(&str, bool, bool, bool); 6] = [
    ("", true, true, false),
    ("alloc-and-free", true, true, false),
    ("alloc", true, false, false),
    ("free", false, true, false),
    ("alloc-then-free", true, true, true),
    ("none", false, false, false),
];

fn check_value(mode: &[&str], value: &str, alloc: bool, free: bool, replaced: bool) {
    let prog = compile("keepstacks.c", &[]);
    let flag = format!("--keep-stacktraces={value}");
    let mut flags = mode.to_vec();
    if !value.is_empty() {
        flags.push(&flag);
    }
    let r = run_under(&flags, &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let what = format!("{flags:?}\n{}", r.show());
    // A freed block's allocation stack: gone when not kept, or replaced at the free.
    let freed_alloc = if alloc && !replaced {
        set(&["make_block"])
    } else {
        set(&[])
    };
    let freed_free = if free { set(&["drop_block"]) } else { set(&[]) };

    let uaf = error(&r, "use-after-free");
    assert_eq!(uaf["access"], "write", "{what}");
    assert_eq!(uaf["block"]["size"], 32, "{what}");
    assert_eq!(ours(&uaf["alloc_stack"]), freed_alloc, "{what}");
    assert_eq!(ours(&uaf["free_stack"]), freed_free, "{what}");
    if mode.contains(&"--guard") {
        // Caught at the instruction: its own stack is the access, whatever is kept.
        assert!(
            has_frame(
                &uaf["stack"],
                "main",
                "keepstacks.c",
                Some(line_of("keepstacks.c", "TOUCH-HERE"))
            ),
            "{what}"
        );
    }

    // The second free's own stack is walked even when free stacks are not kept.
    let df = error(&r, "double-free");
    assert!(
        has_frame(
            &df["stack"],
            "drop_again",
            "keepstacks.c",
            Some(line_of("keepstacks.c", "AGAIN-HERE"))
        ),
        "{what}"
    );
    assert_eq!(ours(&df["alloc_stack"]), freed_alloc, "{what}");
    assert_eq!(ours(&df["free_stack"]), freed_free, "{what}");
    if free {
        assert!(
            has_frame(
                &df["free_stack"],
                "drop_block",
                "keepstacks.c",
                Some(line_of("keepstacks.c", "DROP-HERE"))
            ),
            "{what}"
        );
    }

    // The leak: still found and of its kind; its stack only with allocation stacks.
    let leaks = r.leaks("definite");
    assert_eq!(leaks.len(), 1, "{what}");
    assert_eq!(leaks[0]["bytes"], 77, "{what}");
    assert_eq!(r.summary("definite"), (77, 1), "{what}");
    if alloc {
        assert!(
            has_frame(
                &leaks[0]["stack"],
                "leak_block",
                "keepstacks.c",
                Some(line_of("keepstacks.c", "LEAK-HERE"))
            ),
            "{what}"
        );
    } else {
        assert_eq!(leaks[0]["stack"], serde_json::json!([]), "{what}");
    }
}

#[test]
fn each_keep_stacktraces_value_keeps_its_stacks() {
    for (value, alloc, free, replaced) in VALUES {
        check_value(&[], value, alloc, free, replaced);
    }
}

#[test]
fn each_keep_stacktraces_value_keeps_its_stacks_in_guard_mode() {
    for (value, alloc, free, replaced) in VALUES {
        check_value(&["--guard"], value, alloc, free, replaced);
    }
}

/// Valgrind's text report of the program under `--keep-stacktraces=VALUE`: for the invalid
/// write, the invalid free and the definite leak, the program's functions its stacks name.
fn valgrind_sets(value: &str) -> [BTreeSet<String>; 3] {
    let prog = compile("keepstacks.c", &[]);
    let o = Command::new("valgrind")
        .args(["-q", "--leak-check=full"])
        .arg(format!("--keep-stacktraces={value}"))
        .arg(&prog)
        .output()
        .expect("valgrind is needed here (.ci/run installs it)");
    let err = String::from_utf8_lossy(&o.stderr);
    let mut blocks: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in err.lines() {
        let body = line.split_once("== ").map_or("", |(_, b)| b);
        if body.trim().is_empty() {
            continue;
        }
        if !body.starts_with(' ') {
            blocks.push((body.to_string(), BTreeSet::new()));
        } else if let Some((_, b)) = blocks.last_mut() {
            for f in OURS {
                if body.contains(&format!(" {f} (")) {
                    b.insert(f.to_string());
                }
            }
        }
    }
    let find = |head: &str| {
        let m: Vec<_> = blocks.iter().filter(|(h, _)| h.starts_with(head)).collect();
        assert_eq!(m.len(), 1, "one '{head}' in valgrind's output:\n{err}");
        m[0].1.clone()
    };
    [
        find("Invalid write"),
        find("Invalid free()"),
        find("77 bytes in 1 blocks are definitely lost"),
    ]
}

#[test]
fn keep_stacktraces_keeps_what_valgrinds_keeps() {
    let prog = compile("keepstacks.c", &[]);
    for value in ["alloc-and-free", "alloc", "free", "alloc-then-free", "none"] {
        let r = run_under(&[&format!("--keep-stacktraces={value}")], &prog, &[]);
        let all = |e: &Value| {
            let mut s = ours(&e["stack"]);
            s.extend(ours(&e["alloc_stack"]));
            s.extend(ours(&e["free_stack"]));
            s
        };
        let mine = [
            all(error(&r, "use-after-free")),
            all(error(&r, "double-free")),
            ours(&r.leaks("definite")[0]["stack"]),
        ];
        assert_eq!(mine, valgrind_sets(value), "{value}\n{}", r.show());
    }
}

#[test]
fn live_checks_answer_without_allocation_stacks() {
    let prog = compile("keepstacks.c", &[]);
    let mut t = Ready::spawn(
        "keepstacks.c",
        Command::new(memcheck())
            .env("NO_COLOR", "1")
            .args(["run", "--keep-stacktraces=free", "--"])
            .arg(&prog)
            .arg("wait"),
    );
    let pid = t.pid().to_string();
    let r = run_cmd(Command::new(memcheck()).args(["leaks", "--format=json", &pid]));
    let v = r.stdout_json();
    let leaks = v["processes"][0]["leaks"].as_array().unwrap();
    let definite: Vec<&Value> = leaks.iter().filter(|l| l["kind"] == "definite").collect();
    assert_eq!(definite.len(), 1, "{}", r.show());
    assert_eq!(definite[0]["bytes"], 77, "{}", r.show());
    assert_eq!(definite[0]["stack"], serde_json::json!([]), "{}", r.show());

    // Every live block at the one site without a stack; no allocation call counted.
    let r = run_cmd(Command::new(memcheck()).args(["stats", "--sites", "--format=json", &pid]));
    let v = r.stdout_json();
    let sites = v["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1, "{}", r.show());
    assert_eq!(sites[0]["stack"], serde_json::json!([]), "{}", r.show());
    assert_eq!(sites[0]["bytes"], v["live_bytes"], "{}", r.show());
    assert_eq!(sites[0]["allocs"], 0, "{}", r.show());
    let r = run_cmd(Command::new(memcheck()).args(["stats", "--sites", &pid]));
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let row = r.stdout().lines().last().unwrap_or_default().to_string();
    assert!(row.ends_with("(no stack)"), "{}", r.show());
    let f = t.finish("\n");
    assert_eq!(f.code, Some(0), "{}", f.show());
}

#[test]
fn errors_found_at_free_keep_their_own_stack_without_free_stacks() {
    let prog = compile("bugs.c", &[]);
    for value in ["alloc", "none"] {
        let flag = format!("--keep-stacktraces={value}");
        // Damaged canaries found by the free: the free call is the error's stack.
        let r = run_under(&[&flag], &prog, &["overflow"]);
        let e = error(&r, "heap-buffer-overflow");
        assert!(
            has_frame(
                &e["stack"],
                "overflow",
                "bugs.c",
                Some(line_of("bugs.c", "OVERFLOW-HERE") + 1)
            ),
            "{value}\n{}",
            r.show()
        );
        assert_eq!(e["free_stack"], serde_json::json!([]), "{}", r.show());
        for (mode, kind, func, marker) in [
            (
                "invalid-free",
                "invalid-free",
                "invalid_free",
                "INVALID-FREE-HERE",
            ),
            (
                "invalid-free-middle",
                "invalid-free",
                "invalid_free_middle",
                "MIDDLE-FREE-HERE",
            ),
        ] {
            let r = run_under(&[&flag], &prog, &[mode]);
            let e = error(&r, kind);
            assert!(
                has_frame(&e["stack"], func, "bugs.c", Some(line_of("bugs.c", marker))),
                "{value} {mode}\n{}",
                r.show()
            );
        }
    }
}
