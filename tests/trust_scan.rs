//! The leak check's roots (issue 9, items 4 and 5) and symbols after `dlclose` (item 11), in every
//! mode: where the only pointer to a block lives decides its kind exactly as it does for Valgrind.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODES: [&[&str]; 3] = [&[], &["--guard"], &["--sample-rate=3"]];

/// The kind of the leak group of exactly `bytes` bytes in one block, if listed.
fn kind_of(r: &Run, bytes: u64) -> Option<String> {
    let p = r.process();
    p["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["bytes"] == bytes && l["blocks"] == 1)
        .map(|l| l["kind"].as_str().unwrap().to_string())
}

/// The kind Valgrind gives the block of `bytes` bytes, as a report's kind name.
fn valgrind_kind(prog: &Path, args: &[&str], bytes: u64) -> Option<String> {
    let o = Command::new("valgrind")
        .args(["--leak-check=full", "--show-leak-kinds=all"])
        .arg(prog)
        .args(args)
        .output()
        .expect("valgrind is needed for this test (apt-get install valgrind)");
    let err = String::from_utf8_lossy(&o.stderr);
    let head = format!(" {bytes} bytes in 1 blocks are ");
    let line = err.lines().find(|l| l.contains(&head))?;
    let what = line.split(&head).nth(1)?;
    Some(
        [
            ("definitely lost", "definite"),
            ("indirectly lost", "indirect"),
            ("possibly lost", "possible"),
            ("still reachable", "reachable"),
        ]
        .iter()
        .find(|(v, _)| what.starts_with(v))?
        .1
        .to_string(),
    )
}

fn check_roots(cases: &[(&str, &[(u64, &str)])]) {
    let prog = compile("scan_roots.c", &[]);
    for mode in MODES {
        let mut flags = vec!["--show-leak-kinds=all"];
        flags.extend_from_slice(mode);
        for &(arg, blocks) in cases {
            let r = run_under(&flags, &prog, &[arg]);
            assert_eq!(r.code(), Some(0), "{}", r.show());
            for &(bytes, want) in blocks {
                assert_eq!(
                    kind_of(&r, bytes).as_deref(),
                    Some(want),
                    "{arg} {mode:?}: the {bytes}-byte block\n{}",
                    r.show()
                );
            }
        }
    }
}

/// Item 4: the exiting thread's frames from its call into `exit()` up are live, and so is a
/// worker's TLS; frames that returned before (and main's, once it returned) are dead.
#[test]
fn frames_above_the_call_to_exit_and_an_exiting_workers_tls_are_roots() {
    check_roots(&[
        ("exit-local", &[(111, "reachable")]),
        (
            "worker-exit",
            &[(114, "reachable"), (115, "reachable"), (118, "reachable")],
        ),
        ("main-tls", &[(116, "reachable")]),
    ]);
}

#[test]
fn returned_frames_stay_dead_at_exit_and_after_main_returns() {
    check_roots(&[
        ("exit-stale", &[(113, "definite")]),
        ("return-local", &[(112, "definite")]),
    ]);
}

/// Item 5: every readable and writable mapping is a root, whatever backs it; read-only anonymous
/// memory is not (Valgrind's rule), and a mapping that is gone holds nothing.
#[test]
fn every_writable_mapping_the_program_made_is_a_root() {
    check_roots(&[
        ("private-file", &[(121, "reachable")]),
        ("shared-file", &[(122, "reachable")]),
        ("shared-anon", &[(123, "reachable")]),
        ("memfd", &[(124, "reachable")]),
        ("sysv-shm", &[(125, "reachable")]),
        ("readonly-anon", &[(126, "definite")]),
        ("unmapped", &[(127, "definite")]),
    ]);
}

/// The expectations above are Valgrind's.
#[test]
fn root_kinds_equal_valgrinds() {
    let prog = compile("scan_roots.c", &[]);
    let cases: &[(&str, u64)] = &[
        ("exit-local", 111),
        ("return-local", 112),
        ("exit-stale", 113),
        ("worker-exit", 114),
        ("worker-exit", 115),
        ("worker-exit", 118),
        ("main-tls", 116),
        ("thread-leak", 117),
        ("private-file", 121),
        ("shared-file", 122),
        ("shared-anon", 123),
        ("memfd", 124),
        ("sysv-shm", 125),
        ("readonly-anon", 126),
        ("unmapped", 127),
    ];
    for &(arg, bytes) in cases {
        let want = valgrind_kind(&prog, &[arg], bytes);
        let r = run_under(&["--show-leak-kinds=all"], &prog, &[arg]);
        assert_eq!(
            kind_of(&r, bytes),
            want,
            "{arg}: the {bytes}-byte block vs valgrind\n{}",
            r.show()
        );
    }
}

/// Item 11: a thread's outermost frames, libc's `start_thread` and `clone3` (local symbols, found
/// only in the separate debug file's symbol table), are named as Valgrind names them.
#[test]
fn thread_start_frames_are_named() {
    let prog = compile("scan_roots.c", &[]);
    for mode in MODES {
        let r = run_under(mode, &prog, &["thread-leak"]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let leaks = r.leaks("definite");
        let g = leaks
            .iter()
            .find(|l| l["bytes"] == 117)
            .unwrap_or_else(|| panic!("no 117-byte definite leak {mode:?}\n{}", r.show()));
        let names: Vec<&str> = g["stack"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap_or("???"))
            .collect();
        let libc_frames: Vec<&Value> = g["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["object"].as_str().is_some_and(|o| o.contains("libc.so")))
            .collect();
        assert!(!libc_frames.is_empty(), "{names:?}\n{}", r.show());
        assert!(
            libc_frames.iter().all(|f| f["function"].is_string()),
            "{names:?}\n{}",
            r.show()
        );
        assert!(names.contains(&"start_thread"), "{names:?}\n{}", r.show());
        assert!(
            names.iter().any(|n| *n == "clone3" || *n == "clone"),
            "{names:?}\n{}",
            r.show()
        );
    }
}

/// Builds `tests/programs/plugin.c` as a shared library under `name`.
fn plugin(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/plugin.c");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let o = Command::new("gcc")
        .args([
            "-g",
            "-O1",
            "-shared",
            "-fPIC",
            "-fno-omit-frame-pointer",
            "-o",
        ])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("gcc is needed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

fn definite_groups(r: &Run) -> Vec<&Value> {
    r.leaks("definite")
}

/// Item 11: frames in a library unloaded before exit keep their names, and stacks that differ
/// only inside it stay two groups; another library loaded later at the same addresses does not
/// take them over.
#[test]
fn frames_of_an_unloaded_library_keep_their_names() {
    let prog = compile("dlclose.c", &["-ldl"]);
    let lib = plugin("libmcplugin.so");
    let other = plugin("libmcother.so");
    let a = line_of("plugin.c", "PLUGIN-A");
    let b = line_of("plugin.c", "PLUGIN-B");
    for mode in MODES {
        for args in [
            vec![lib.to_str().unwrap()],
            vec![lib.to_str().unwrap(), other.to_str().unwrap()],
        ] {
            let r = run_under(mode, &prog, &args);
            assert_eq!(r.code(), Some(0), "{}", r.show());
            let groups = definite_groups(&r);
            assert_eq!(
                groups.len(),
                2,
                "two definite groups {mode:?}\n{}",
                r.show()
            );
            for (bytes, func, line) in [(300, "plugin_make_a", a), (301, "plugin_make_b", b)] {
                let g = groups
                    .iter()
                    .find(|g| g["bytes"] == bytes)
                    .unwrap_or_else(|| panic!("no {bytes}-byte group {mode:?}\n{}", r.show()));
                assert!(
                    has_frame(&g["stack"], func, "plugin.c", Some(line)),
                    "{func} at plugin.c:{line} {mode:?} {args:?}\n{}",
                    r.show()
                );
                let obj = g["stack"][0]["object"].as_str().unwrap_or_default();
                assert_eq!(obj, lib.to_str().unwrap(), "{}", r.show());
            }
        }
    }
}
