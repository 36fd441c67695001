//! Trust in the shim on hostile programs (issue "Trust: no false report, no lost report, ..."):
//! records that survive a program's descriptor games, start-up under an address-space limit, no
//! false use-after-free in forked children, no deadlock in signal handlers that allocate, and the
//! program's SIGSEGV handler run with its own mask and flags.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

const MODES: [&[&str]; 3] = [&[], &["--guard"], &["--sample-rate=3"]];

fn with_mode(mode: &[&str], extra: &[&'static str]) -> Vec<String> {
    mode.iter()
        .chain(extra.iter())
        .map(|s| s.to_string())
        .collect()
}

fn run_strs(flags: &[String], prog: &Path, args: &[&str]) -> Run {
    let f: Vec<&str> = flags.iter().map(|s| s.as_str()).collect();
    run_under(&f, prog, args)
}

/// Item 1: a program that closes every descriptor, dups /dev/null over them, or reuses their
/// numbers for its own files keeps its report, and memcheck's records never land in its files.
#[test]
fn records_survive_closed_duped_and_reused_descriptors() {
    let prog = compile("fdclose.c", &[]);
    for mode in MODES {
        for how in ["close", "devnull", "reuse", "exhaust"] {
            let data = tempfile::tempdir().unwrap();
            let flags = with_mode(mode, &["--error-exitcode=9"]);
            let r = run_strs(&flags, &prog, &[how, data.path().to_str().unwrap()]);
            assert_eq!(
                r.code(),
                Some(9),
                "{how} {mode:?}: the gate must fail\n{}",
                r.show()
            );
            let lost = r.leaks("definite");
            assert_eq!(lost.len(), 1, "{how} {mode:?}\n{}", r.show());
            assert_eq!(lost[0]["bytes"], 33, "{how} {mode:?}\n{}", r.show());
            assert_eq!(
                r.summary("reachable"),
                (20, 1),
                "{how} {mode:?}\n{}",
                r.show()
            );
            if how == "reuse" {
                for i in 0..8 {
                    let text = std::fs::read(data.path().join(format!("data{i}"))).unwrap();
                    assert_eq!(text, b"data\n", "{how} {mode:?}: data{i} was written into");
                }
            }
        }
    }
}

/// Runs `memcheck run FLAGS -- prog args` under `ulimit -v KIB` (memcheck and the program both).
fn under_ulimit(kib: u64, flags: &[&str], prog: &Path, args: &[&str]) -> Run {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$@\""))
        .arg("sh")
        .arg(memcheck())
        .arg("run")
        .args(flags)
        .arg("--")
        .arg(prog)
        .args(args)
        .env("NO_COLOR", "1");
    run_cmd(&mut c)
}

fn counts(out: &str) -> (u64, u64) {
    let w: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(w.len(), 4, "unexpected output {out:?}");
    (w[1].parse().unwrap(), w[3].parse().unwrap())
}

/// Item 2: under `ulimit -v` the program starts and runs (the private heap and the guard pool
/// grow in pieces), and under a limit the program sets itself, 1 MiB allocations fail near the
/// limit as they do natively, and freeing gives the address space back.
#[test]
fn an_address_space_limit_is_respected() {
    let prog = compile("asrlimit.c", &[]);
    let native = run_cmd(Command::new(&prog).arg("256"));
    let (na, _) = counts(&native.stdout());
    for mode in MODES {
        let r = under_ulimit(1_000_000, mode, &prog, &["0"]);
        assert_eq!(r.code(), Some(0), "{mode:?}\n{}", r.show());
        assert!(
            r.stderr().contains("ERROR SUMMARY: 0 errors"),
            "{}",
            r.show()
        );
        let (a, b) = counts(&r.stdout());
        assert!(a > 500 && b > 500, "{mode:?}: {a} {b}\n{}", r.show());

        let flags = with_mode(mode, &[]);
        let r = run_strs(&flags, &prog, &["256"]);
        assert_eq!(r.code(), Some(0), "{mode:?}\n{}", r.show());
        let (a, b) = counts(&r.stdout());
        // Natively about 250 succeed; memcheck's own memory takes some of the limit.
        assert!(
            a <= na && a * 2 >= na,
            "{mode:?}: {a} of {na}\n{}",
            r.show()
        );
        assert!(
            b * 10 >= a * 9,
            "{mode:?}: freeing did not give space back: {a} then {b}"
        );
    }
}

/// Item 3: threads freeing 64 KiB blocks while the main thread forks 200 children: no child
/// sees a half-written free fill (a false use-after-free).
#[test]
fn forked_children_report_no_false_use_after_free() {
    let prog = compile("forkfree.c", &[]);
    for mode in [&[][..], &["--sample-rate=3"][..]] {
        let r = run_under(mode, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let procs = r.json()["processes"].as_array().unwrap().len();
        assert_eq!(procs, 201, "{}", r.show());
        assert!(
            r.errors().is_empty(),
            "{mode:?}: false errors\n{}",
            r.show()
        );
    }
}

/// Item 6: a SIGALRM handler that allocates every 100 us while the main thread allocates: the
/// run completes in every mode (it used to spin for ever on a lock the interrupted code held).
#[test]
fn a_signal_handler_that_allocates_never_deadlocks() {
    let prog = compile("sigalloc.c", &[]);
    for (mode, rounds) in [
        (&[][..], "2000000"),
        (&["--guard"][..], "60000"),
        (&["--sample-rate=10"][..], "1000000"),
    ] {
        let mut c = Command::new("timeout");
        c.args(["-s", "KILL", "120"])
            .arg(memcheck())
            .arg("run")
            .args(mode)
            .arg("--")
            .arg(&prog)
            .arg(rounds)
            .env("NO_COLOR", "1");
        let r = run_cmd(&mut c);
        assert_eq!(r.code(), Some(0), "{mode:?}: hung or died\n{}", r.show());
        assert_eq!(r.stdout(), format!("done {rounds}\n"), "{}", r.show());
        assert!(
            r.stderr().contains("ERROR SUMMARY: 0 errors"),
            "{}",
            r.show()
        );
    }
}

/// Item 7: in guard and sampled modes the program's SIGSEGV handler runs with exactly the mask
/// and flags it asked for (SA_NODEFER lets a nested fault in; sa_mask is blocked): its output
/// equals the native run's.
#[test]
fn the_programs_segv_handler_gets_its_own_mask_and_flags() {
    let prog = compile("nodefer.c", &[]);
    let native = run_cmd(&mut Command::new(&prog));
    assert_eq!(native.code(), Some(0), "{}", native.show());
    assert!(
        native.stdout().contains("nodefer depth 2"),
        "{}",
        native.show()
    );
    for mode in MODES {
        let r = run_under(mode, &prog, &[]);
        assert_eq!(r.code(), Some(0), "{mode:?}\n{}", r.show());
        assert_eq!(r.stdout(), native.stdout(), "{mode:?}\n{}", r.show());
    }
}
