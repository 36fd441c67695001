//! Valgrind's XML (`--xml=yes --xml-file`) read by real consumers of Valgrind's XML from PyPI
//! (ValgrindCI's parser and valgrind-codequality, `.ci/run` pip-installs them) side by side with
//! Valgrind's own XML of the same program, `memcheck report --format xml`, and `--log-file` with
//! its `%p`/`%q{VAR}` patterns.
mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// `memcheck run FLAGS -- PROG ARGS` in `dir`, colour off unless a flag asks.
fn run_in(dir: &Path, flags: &[&str], prog: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(memcheck());
    c.current_dir(dir)
        .arg("run")
        .args(flags)
        .arg("--")
        .arg(prog)
        .args(args)
        .env("NO_COLOR", "1");
    run_cmd(&mut c)
}

fn python(code: &str, args: &[&str]) -> String {
    let r = run_cmd(Command::new("python3").arg("-c").arg(code).args(args));
    assert_eq!(
        r.code(),
        Some(0),
        "python failed (pip install ValgrindCI valgrind-codequality)\n{}",
        r.show()
    );
    r.stdout()
}

/// What the consumers make of one XML file: ValgrindCI's errors (count, kinds, how many lie in
/// the source directory) and valgrind-codequality's issues (count, lines), after Python's own
/// xml.etree parsed it.
const READ: &str = r#"
import json, sys, xml.etree.ElementTree as et
from ValgrindCI.parse import ValgrindData
import valgrind_codequality as vcq
f, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
root = et.parse(f).getroot()
assert root.tag == 'valgrindoutput', root.tag
d = ValgrindData()
d.parse(f)
d.set_source_dir(src)
n = vcq.convert_file(f, out, [src])
cq = json.load(open(out))
print(json.dumps({
    'errors': len(d.errors),
    'in_source': d.get_num_errors(),
    'kinds': sorted(e.kind for e in d.errors),
    'codequality': n,
    'lines': sorted(i['location']['lines']['begin'] for i in cq),
    'pid': int(root.find('pid').text),
    'protocol': root.find('protocolversion').text,
    'tool': root.find('protocoltool').text,
}))
"#;

fn read(xml: &Path) -> serde_json::Value {
    let src = root().join("tests/programs");
    let out = xml.with_extension("cq.json");
    let s = python(
        READ,
        &[
            xml.to_str().unwrap(),
            src.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    serde_json::from_str(&s).unwrap()
}

#[test]
fn xml_is_read_by_valgrind_consumers_with_the_findings_of_valgrinds_own() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let mine = d.path().join("memcheck.xml");
    let r = run_in(
        d.path(),
        &["--xml=yes", "--xml-file=memcheck.xml", "--leak-check=full"],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    // The text report still goes to stderr, as with every file report.
    assert!(r.stderr().contains("ERROR SUMMARY"), "{}", r.show());
    let theirs = d.path().join("valgrind.xml");
    let v = run_cmd(
        Command::new("valgrind")
            .arg("--xml=yes")
            .arg(format!("--xml-file={}", theirs.display()))
            .arg("--leak-check=full")
            .arg(&prog),
    );
    assert_eq!(v.code(), Some(0), "valgrind is needed here\n{}", v.show());

    let (m, v) = (read(&mine), read(&theirs));
    assert_eq!(m["protocol"], "4");
    assert_eq!(m["tool"], "memcheck");
    assert_eq!(m["errors"], 2, "an overflow and a leak\n{m}");
    assert_eq!(m["errors"], v["errors"], "memcheck {m}\nvalgrind {v}");
    assert_eq!(m["kinds"], v["kinds"], "memcheck {m}\nvalgrind {v}");
    assert_eq!(
        m["kinds"],
        serde_json::json!(["InvalidWrite", "Leak_DefinitelyLost"])
    );
    assert_eq!(m["in_source"], v["in_source"], "memcheck {m}\nvalgrind {v}");
    assert_eq!(
        m["codequality"], v["codequality"],
        "memcheck {m}\nvalgrind {v}"
    );
    // Both put the leak at the allocation in make().
    let alloc = line_of("xmlfork.c", "XML-ALLOC-HERE");
    for x in [&m, &v] {
        assert!(
            x["lines"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(alloc)),
            "{x}"
        );
    }
    // The overflow's stacks: where it was found, and the allocation after an auxwhat.
    let text = std::fs::read_to_string(&mine).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\"?>\n\n<valgrindoutput>\n"));
    assert!(
        text.contains("<auxwhat>Address 0x")
            && text.contains("is 0 bytes after a block of size 13 alloc'd</auxwhat>"),
        "{text}"
    );
    assert!(text.contains("<leakedbytes>40</leakedbytes>"), "{text}");
    // The 7 reachable bytes are not shown by default (--show-leak-kinds), so not written.
    assert!(!text.contains("Leak_StillReachable"), "{text}");
    let r = run_in(
        d.path(),
        &["--xml=yes", "--xml-file=all.xml", "--show-leak-kinds=all"],
        &prog,
        &[],
    );
    let all = std::fs::read_to_string(d.path().join("all.xml")).unwrap();
    assert!(
        all.contains("<kind>Leak_StillReachable</kind>"),
        "{}\n{all}",
        r.show()
    );
}

#[test]
fn memcheck_report_writes_the_xml_again_byte_for_byte() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let r = run_in(
        d.path(),
        &["--xml=yes", "--xml-file=x.%p.xml", "--report=json=run.json"],
        &prog,
        &["fork"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("run.json")).unwrap()).unwrap();
    let pids: Vec<u64> = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{}", r.show());
    for pid in &pids {
        let file = p(&format!("x.{pid}.xml"));
        let again = p(&format!("again.{pid}.xml"));
        let mut c = Command::new(memcheck());
        c.args(["report", &p("run.json"), "--format=xml", "--pid"])
            .arg(pid.to_string())
            .args(["--output", &again]);
        let rr = run_cmd(&mut c);
        assert_eq!(rr.code(), Some(0), "{}", rr.show());
        let (a, b) = (
            std::fs::read(&file).unwrap(),
            std::fs::read(&again).unwrap(),
        );
        assert!(
            a == b,
            "--pid {pid}: memcheck report --format xml differs\n--- run ---\n{}\n--- report ---\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
        assert!(String::from_utf8_lossy(&a).contains(&format!("<pid>{pid}</pid>")));
    }
    // Several processes and no --pid, an unknown pid, --pid without xml: one-line refusals.
    for (args, want) in [
        (vec!["--format=xml"], "choose one with --pid"),
        (vec!["--format=xml", "--pid=1"], "no such process"),
        (vec!["--pid=1"], "--pid chooses the process of --format xml"),
    ] {
        let mut c = Command::new(memcheck());
        c.arg("report").arg(p("run.json")).args(&args);
        let rr = run_cmd(&mut c);
        assert_eq!(rr.code(), Some(2), "{}", rr.show());
        assert!(rr.stderr().contains(want), "{}", rr.show());
        assert_eq!(rr.stderr().lines().count(), 1, "{}", rr.show());
    }
}

#[test]
fn log_file_with_pid_writes_one_file_per_process_without_colour() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let mut c = Command::new(memcheck());
    c.current_dir(d.path())
        .args([
            "--color=always",
            "run",
            "--log-file=log.%p",
            "--report=json=r.json",
        ])
        .arg("--")
        .arg(&prog)
        .arg("fork")
        .env_remove("NO_COLOR");
    let r = run_cmd(&mut c);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    // The report is in the files, not on stderr.
    assert!(!r.stderr().contains("LEAK SUMMARY"), "{}", r.show());
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("r.json")).unwrap()).unwrap();
    let procs = json["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 2, "{}", r.show());
    let mut logs: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("log."))
        .collect();
    logs.sort();
    let mut want: Vec<String> = procs.iter().map(|p| format!("log.{}", p["pid"])).collect();
    want.sort();
    assert_eq!(logs, want, "{}", r.show());
    for p in procs {
        let text = std::fs::read_to_string(d.path().join(format!("log.{}", p["pid"]))).unwrap();
        assert!(!text.contains('\x1b'), "colour in a log file:\n{text}");
        let lost = p["leak_summary"]["definite"]["bytes"].as_u64().unwrap();
        assert!(
            text.contains(&format!("=={}== memcheck: ", p["pid"]))
                && text.contains(&format!(
                    "=={}==    definitely lost: {lost} bytes",
                    p["pid"]
                )),
            "{text}"
        );
        // Only this process's lines.
        for q in procs.iter().filter(|q| q["pid"] != p["pid"]) {
            assert!(!text.contains(&format!("=={}==", q["pid"])), "{text}");
        }
    }
    let mut lost: Vec<u64> = procs
        .iter()
        .map(|p| p["leak_summary"]["definite"]["bytes"].as_u64().unwrap())
        .collect();
    lost.sort();
    // The parent's 40 bytes, the forked child's own 100 (its copy of the parent's block is the
    // parent's finding).
    assert_eq!(lost, vec![40, 100], "{}", r.show());
}

#[test]
fn log_file_without_pid_holds_every_process_and_q_expands_a_variable() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let mut c = Command::new(memcheck());
    c.current_dir(d.path())
        .args([
            "run",
            "--log-file=log-%q{MEMCHECK_TEST_JOB}-100%%.txt",
            "--report=text=copy.txt",
            "--xml=yes",
            "--xml-file=one.xml",
        ])
        .arg("--")
        .arg(&prog)
        .arg("fork")
        .env("MEMCHECK_TEST_JOB", "job7");
    let r = run_cmd(&mut c);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let log = std::fs::read_to_string(d.path().join("log-job7-100%.txt")).unwrap();
    // Two processes, each under its own header: the same text as the text report.
    assert_eq!(log.matches("memcheck: ").count(), 2, "{log}");
    assert_eq!(log.matches("LEAK SUMMARY").count(), 2, "{log}");
    assert_eq!(
        log,
        std::fs::read_to_string(d.path().join("copy.txt")).unwrap()
    );
    // XML without %p: the first process's document in the file, the other's beside it, said.
    let first = std::fs::read_to_string(d.path().join("one.xml")).unwrap();
    let pid: String = first
        .split("<pid>")
        .nth(1)
        .and_then(|s| s.split("</pid>").next())
        .unwrap()
        .to_string();
    let others: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("one.xml."))
        .collect();
    assert_eq!(others.len(), 1, "{others:?}");
    assert_ne!(others[0], format!("one.xml.{pid}"));
    assert!(r.stderr().contains(&others[0]), "{}", r.show());
    for f in ["one.xml".to_string(), others[0].clone()] {
        let v = read(&d.path().join(&f));
        assert_eq!(
            v["kinds"].as_array().unwrap().len(),
            if f == "one.xml" { 2 } else { 1 },
            "{f}: {v}"
        );
    }
}

#[test]
fn bad_patterns_and_destinations_are_refused_before_the_program_runs() {
    let d = tempfile::tempdir().unwrap();
    let touch = Path::new("/usr/bin/touch");
    let marker = d.path().join("ran");
    let missing = d.path().join("missing/log.%p");
    let missing = missing.to_str().unwrap();
    for (flags, want) in [
        (vec!["--log-file=a%zb"], "unknown escape %z"),
        (vec!["--log-file=a%"], "a % ends the pattern"),
        (
            vec!["--log-file=x.%q{MEMCHECK_TEST_UNSET}"],
            "MEMCHECK_TEST_UNSET is not set",
        ),
        (
            vec!["--log-file=-"],
            "would mix the report into the program's standard output",
        ),
        (vec!["--log-file", missing], "does not exist"),
        (vec!["--xml=yes", "--xml-file", missing], "does not exist"),
        (vec!["--xml=yes"], "--xml=yes needs a destination"),
        (vec!["--xml-file=x.xml"], "only with --xml=yes"),
        (vec!["--xml=yes", "--xml-file=-"], "--xml-file=- would mix"),
        (vec!["--xml=yes", "--xml-file=x%q{"], "expected '}'"),
        (vec!["--report=xml=x.xml"], "--xml=yes --xml-file=FILE"),
        (
            vec!["--format=xml", "--output=x.xml"],
            "--xml=yes --xml-file=FILE",
        ),
        (
            vec!["--xml=yes", "--xml-file=same", "--log-file=same"],
            "the same place",
        ),
        (
            vec!["--log-file=t", "--format=text", "--output=u"],
            "both take the text report",
        ),
    ] {
        let mut c = Command::new(memcheck());
        c.current_dir(d.path())
            .arg("run")
            .args(&flags)
            .arg("--")
            .arg(touch)
            .arg(&marker)
            .env_remove("MEMCHECK_TEST_UNSET");
        let r = run_cmd(&mut c);
        assert_eq!(r.code(), Some(2), "{flags:?}\n{}", r.show());
        assert!(r.stderr().contains(want), "{flags:?}: {}", r.show());
        assert_eq!(r.stderr().lines().count(), 1, "{flags:?}: {}", r.show());
        assert!(!marker.exists(), "{flags:?}: the program ran");
    }
    // A good pattern runs the program.
    let r = run_in(
        d.path(),
        &["--log-file=ok.%p"],
        touch,
        &[marker.to_str().unwrap()],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(marker.exists());
}

#[test]
fn each_kind_is_one_error_of_a_kind_valgrind_readers_know() {
    let bugs = compile("bugs.c", &["-Wno-free-nonheap-object"]);
    let mismatch = compile("mismatch.cc", &[]);
    let endings = compile("endings.c", &[]);
    let d = tempfile::tempdir().unwrap();
    for (prog, args, kinds) in [
        (&bugs, vec!["double-free"], vec!["InvalidFree"]),
        (&bugs, vec!["invalid-free"], vec!["InvalidFree"]),
        (&bugs, vec!["invalid-realloc"], vec!["InvalidFree"]),
        (&bugs, vec!["underflow"], vec!["InvalidWrite"]),
        (&mismatch, vec!["new-free"], vec!["MismatchedFree"]),
        // A null dereference: the read, then Valgrind's <fatal_signal>; the leak of 31 bytes.
        (
            &endings,
            vec!["segv"],
            vec!["InvalidRead", "Leak_DefinitelyLost"],
        ),
    ] {
        let xml = d.path().join(format!("{}.xml", args[0]));
        let r = run_in(
            d.path(),
            &[
                "--xml=yes",
                &format!("--xml-file={}", xml.display()),
                "--gen-suppressions=all",
            ],
            prog,
            &args,
        );
        assert!(xml.exists(), "{}", r.show());
        let v = read(&xml);
        assert_eq!(
            v["kinds"],
            serde_json::json!(kinds),
            "{args:?}: {v}\n{}",
            r.show()
        );
        let text = std::fs::read_to_string(&xml).unwrap();
        assert_eq!(
            text.matches("<suppression>").count(),
            kinds.len(),
            "{args:?}: each finding carries its suppression\n{text}"
        );
        if args[0] == "segv" {
            assert!(
                text.contains("<signo>11</signo>\n  <signame>SIGSEGV</signame>"),
                "{text}"
            );
            assert!(
                text.contains("Address 0x0 is not stack'd, malloc'd or (recently) free'd"),
                "{text}"
            );
        }
    }
}

#[test]
fn findings_a_baseline_knows_are_left_out_of_the_xml() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let r = run_in(d.path(), &["--write-baseline=b.json"], &prog, &[]);
    assert!(d.path().join("b.json").exists(), "{}", r.show());
    let r = run_in(
        d.path(),
        &[
            "--baseline=b.json",
            "--xml=yes",
            "--xml-file=known.xml",
            "--report=json=known.json",
        ],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let v = read(&d.path().join("known.xml"));
    assert_eq!(v["errors"], 0, "{v}");
    let text = std::fs::read_to_string(d.path().join("known.xml")).unwrap();
    assert!(
        text.contains("<line>note: 2 findings the baseline knows are left out</line>"),
        "{text}"
    );
    // memcheck report writes the same document from the JSON, which keeps them marked known.
    let mut c = Command::new(memcheck());
    c.current_dir(d.path())
        .args(["report", "known.json", "--format=xml"]);
    let rr = run_cmd(&mut c);
    assert_eq!(rr.stdout(), text, "{}", rr.show());
}

#[test]
fn quiet_applies_to_the_log_file_as_to_stderr() {
    let prog = compile("xmlfork.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let r = run_in(
        d.path(),
        &["-q", "--log-file=q.log", "--report=text=full.txt"],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let log = std::fs::read_to_string(d.path().join("q.log")).unwrap();
    assert!(
        log.contains("40 bytes in 1 blocks are definitely lost"),
        "{log}"
    );
    assert!(!log.contains("LEAK SUMMARY"), "{log}");
    let full = std::fs::read_to_string(d.path().join("full.txt")).unwrap();
    assert!(full.contains("LEAK SUMMARY"), "{full}");
    assert!(!r.stderr().contains("definitely lost"), "{}", r.show());
}
