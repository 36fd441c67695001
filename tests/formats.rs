//! The report formats CI tools read: SARIF 2.1.0 (validated against the schema with Python's
//! `jsonschema`), JUnit XML (read by Python's `junitparser`), several reports of one run, and
//! `memcheck report`, which re-renders a saved JSON report byte for byte and diffs two of them.
mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SARIF 2.1.0 schema (OASIS, errata 01), kept in `tests/data/` so a clean clone has it: the
/// copy of the workplace's `../shared/data/sarif/sarif-schema-2.1.0.json`.
fn schema() -> PathBuf {
    let p = root().join("tests/data/sarif-schema-2.1.0.json");
    assert!(
        p.exists(),
        "the SARIF schema is missing at {}: every SARIF file a test writes is validated against it",
        p.display()
    );
    p
}

/// Runs a Python snippet with arguments; panics with its output when it fails.
fn python(code: &str, args: &[&Path]) -> String {
    let r = run_cmd(Command::new("python3").arg("-c").arg(code).args(args));
    assert_eq!(
        r.code(),
        Some(0),
        "python failed (pip install jsonschema junitparser)\n{}",
        r.show()
    );
    r.stdout()
}

/// Validates a SARIF file against the schema and returns it parsed.
fn valid_sarif(path: &Path) -> Value {
    let out = python(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         doc = json.load(open(sys.argv[2]))\n\
         jsonschema.validators.validator_for(schema)(schema).validate(doc)\n\
         print('valid')",
        &[&schema(), path],
    );
    assert_eq!(out.trim(), "valid");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `memcheck run FLAGS -- PROG ARGS` with colour off; returns the run.
fn run(flags: &[&str], prog: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(flags)
        .arg("--")
        .arg(prog)
        .args(args)
        .env("NO_COLOR", "1");
    run_cmd(&mut c)
}

fn sarif_of(flags: &[&str], prog: &Path, args: &[&str]) -> (Value, Run) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.sarif");
    let mut all = vec!["--format=sarif", "--output", out.to_str().unwrap()];
    let rootdir = root();
    all.extend(["--source-root", rootdir.to_str().unwrap()]);
    all.extend(flags);
    let r = run(&all, prog, args);
    assert!(out.exists(), "no SARIF written\n{}", r.show());
    (valid_sarif(&out), r)
}

fn results<'a>(s: &'a Value, rule: &str) -> Vec<&'a Value> {
    s["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == rule)
        .collect()
}

/// (uri, uriBaseId, startLine) of a result's location.
fn located(r: &Value) -> (String, String, u64) {
    let p = &r["locations"][0]["physicalLocation"];
    (
        p["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        p["artifactLocation"]["uriBaseId"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        p["region"]["startLine"].as_u64().unwrap_or(0),
    )
}

#[test]
fn sarif_of_a_leaking_program_validates_and_points_at_the_allocation() {
    let prog = compile("leaks.c", &[]);
    let (s, r) = sarif_of(&[], &prog, &[]);
    let text = s.to_string();
    assert_eq!(s["version"], "2.1.0");
    let run0 = &s["runs"][0];
    let base = run0["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        base.starts_with("file:///") && base.ends_with('/'),
        "{base}"
    );
    let rules: Vec<&str> = run0["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for id in [
        "heap-buffer-overflow",
        "use-after-free",
        "leak-definite",
        "leak-indirect",
    ] {
        assert!(rules.contains(&id), "rule {id} missing: {rules:?}");
    }
    let definite = results(&s, "leak-definite");
    let leak = definite
        .iter()
        .find(|r| {
            r["message"]["text"]
                .as_str()
                .unwrap()
                .starts_with("37 bytes in 1 blocks")
        })
        .unwrap_or_else(|| panic!("no 37-byte definite leak\n{text}\n{}", r.show()));
    assert_eq!(
        located(leak),
        (
            "tests/programs/leaks.c".to_string(),
            "%SRCROOT%".to_string(),
            line_of("leaks.c", "LEAK-HERE")
        ),
        "{text}"
    );
    assert_eq!(leak["level"], "error");
    assert_eq!(
        rules[leak["ruleIndex"].as_u64().unwrap() as usize],
        "leak-definite"
    );
    let fp = leak["partialFingerprints"]["memcheck/v1"].as_str().unwrap();
    assert_eq!(fp.len(), 32, "{fp}");
    // The same fingerprint as the JSON report's (of another run: fingerprints survive ASLR).
    let j = run_under(&[], &prog, &[]);
    assert!(
        j.leaks("definite")
            .iter()
            .any(|l| l["bytes"] == 37 && l["fingerprint"] == fp),
        "{}",
        j.show()
    );
    // The allocation stack as a code flow, outermost first.
    let flow = leak["codeFlows"][0]["threadFlows"][0]["locations"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = flow
        .iter()
        .map(|l| l["location"]["message"]["text"].as_str().unwrap())
        .collect();
    let at = names.iter().position(|n| n.starts_with("leak_bytes ("));
    let main = names.iter().position(|n| n.starts_with("main ("));
    assert!(
        matches!((main, at), (Some(m), Some(a)) if m < a),
        "main before leak_bytes: {names:?}"
    );
    // The indirect leaks of the lost list are located at their malloc.
    let indirect = results(&s, "leak-indirect");
    assert!(!indirect.is_empty(), "{text}");
    assert_eq!(located(indirect[0]).2, line_of("leaks.c", "LIST-HERE"));
    // Reachable and possible leaks are not listed by default.
    assert!(results(&s, "leak-reachable").is_empty());
    // The text report still goes to stderr.
    assert!(r.stderr().contains("definitely lost"), "{}", r.show());
}

#[test]
fn sarif_of_an_overflow_points_at_the_bad_write_and_carries_its_stacks() {
    let prog = compile("bugs.c", &[]);
    let (s, r) = sarif_of(&["--guard"], &prog, &["overflow-to-guard"]);
    let text = s.to_string();
    let found = results(&s, "heap-buffer-overflow");
    assert_eq!(found.len(), 1, "{text}\n{}", r.show());
    let e = found[0];
    assert_eq!(
        located(e),
        (
            "tests/programs/bugs.c".to_string(),
            "%SRCROOT%".to_string(),
            line_of("bugs.c", "GUARD-OVERFLOW-HERE")
        ),
        "{text}"
    );
    assert_eq!(e["level"], "error");
    assert!(
        e["message"]["text"]
            .as_str()
            .unwrap()
            .starts_with("error: heap-buffer-overflow write"),
        "{text}"
    );
    assert_eq!(
        e["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "overflow_to_guard"
    );
    // The allocation stack and the access stack are code flows; the allocation's passes
    // through make() at ALLOC-HERE.
    let flows = e["codeFlows"].as_array().unwrap();
    assert!(flows.len() >= 2, "{text}");
    let alloc = line_of("bugs.c", "ALLOC-HERE");
    assert!(
        flows[0]["threadFlows"][0]["locations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| {
                let p = &l["location"]["physicalLocation"];
                p["artifactLocation"]["uri"] == "tests/programs/bugs.c"
                    && p["region"]["startLine"] == alloc
            }),
        "{text}"
    );
    assert_eq!(
        e["partialFingerprints"]["memcheck/v1"]
            .as_str()
            .unwrap()
            .len(),
        32
    );
}

#[test]
fn sarif_with_a_baseline_marks_each_result_new_unchanged_or_absent() {
    let prog = compile("baseline.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("base.json");
    let bs = b.to_str().unwrap();
    let w = run(&["--write-baseline", bs], &prog, &["old"]);
    assert!(b.exists(), "{}", w.show());
    // "new" has the old findings and one more leak; the baseline also gets an entry no run has.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    v["findings"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "leak-definite", "functions": ["gone_function", "main"]
        }));
    std::fs::write(&b, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (s, r) = sarif_of(&["--baseline", bs], &prog, &["new"]);
    let all = s["runs"][0]["results"].as_array().unwrap();
    let state_of = |func: &str| -> Vec<&str> {
        all.iter()
            .filter(|x| {
                x["message"]["text"].as_str().unwrap_or("").contains(func)
                    || x["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == func
            })
            .map(|x| x["baselineState"].as_str().unwrap_or("(none)"))
            .collect()
    };
    assert_eq!(state_of("old_leak_a"), ["unchanged"], "{s:#}\n{}", r.show());
    assert_eq!(state_of("old_overflow"), ["unchanged"], "{s:#}");
    let new: Vec<&Value> = all.iter().filter(|x| x["baselineState"] == "new").collect();
    assert_eq!(new.len(), 1, "{s:#}");
    assert_eq!(new[0]["ruleId"], "leak-definite", "{s:#}");
    let absent: Vec<&Value> = all
        .iter()
        .filter(|x| x["baselineState"] == "absent")
        .collect();
    assert_eq!(absent.len(), 1, "{s:#}");
    assert_eq!(absent[0]["level"], "none", "{s:#}");
    assert_eq!(
        absent[0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"], "gone_function",
        "{s:#}"
    );
    // Without a baseline, no result carries a state.
    let (plain, _) = sarif_of(&[], &prog, &["new"]);
    assert!(
        plain["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("baselineState").is_none()),
        "{plain:#}"
    );
}

#[test]
fn sarif_without_output_is_a_usage_error() {
    let prog = compile("leaks.c", &[]);
    let r = run(&["--format=sarif"], &prog, &[]);
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(
        r.stderr().contains("--format sarif needs --output"),
        "{}",
        r.show()
    );
    assert!(
        !r.stdout().contains("done"),
        "the program must not run\n{}",
        r.show()
    );
}

/// Reads a JUnit file with junitparser: the suites with their counts, and each case's name and
/// failure (message and body), as JSON.
fn junit_cases(path: &Path) -> Value {
    let out = python(
        "import json, sys\n\
         from junitparser import JUnitXml, TestSuite, Failure\n\
         xml = JUnitXml.fromfile(sys.argv[1])\n\
         suites = [xml] if isinstance(xml, TestSuite) else list(xml)\n\
         out = []\n\
         for s in suites:\n\
         \x20   cases = []\n\
         \x20   for c in s:\n\
         \x20       f = [r for r in c.result if isinstance(r, Failure)]\n\
         \x20       cases.append({'name': c.name, 'failed': bool(f),\n\
         \x20                     'message': f[0].message if f else None,\n\
         \x20                     'text': f[0].text if f else None})\n\
         \x20   out.append({'name': s.name, 'tests': s.tests, 'failures': s.failures, 'cases': cases})\n\
         print(json.dumps(out))",
        &[path],
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn junit_with_a_baseline_fails_only_a_process_with_a_new_finding() {
    let prog = compile("baseline.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let b = d.path().join("base.json");
    let bs = b.to_str().unwrap();
    let w = run(&["--write-baseline", bs], &prog, &["old"]);
    assert!(b.exists(), "{}", w.show());
    let out = d.path().join("r.xml");
    let os = out.to_str().unwrap();
    for (arg, failures) in [("old", 0), ("new", 1)] {
        let r = run(
            &["--baseline", bs, "--format=junit", "--output", os],
            &prog,
            &[arg],
        );
        let suites = junit_cases(&out);
        let xml = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            suites[0]["failures"],
            failures,
            "{arg}: {xml}\n{}",
            r.show()
        );
    }
}

#[test]
fn junit_with_a_failing_and_a_clean_child_names_the_failing_one() {
    let prog = compile("forkjunit.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r.xml");
    let r = run(
        &[
            "--trace-children=yes",
            "--format=junit",
            "--output",
            out.to_str().unwrap(),
        ],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let suites = junit_cases(&out);
    let xml = std::fs::read_to_string(&out).unwrap();
    assert_eq!(suites.as_array().unwrap().len(), 1, "{xml}");
    let s = &suites[0];
    assert_eq!(s["name"], "memcheck");
    let cases = s["cases"].as_array().unwrap();
    assert_eq!(s["tests"].as_u64(), Some(cases.len() as u64), "{xml}");
    assert!(cases.len() >= 3, "the parent and two children\n{xml}");
    assert_eq!(s["failures"], 1, "{xml}");
    let failed: Vec<&Value> = cases.iter().filter(|c| c["failed"] == true).collect();
    assert_eq!(failed.len(), 1, "{xml}");
    let p = prog.to_str().unwrap();
    assert_eq!(failed[0]["name"], format!("{p} leak"), "{xml}");
    assert_eq!(failed[0]["message"], "40 bytes definitely lost in 1 block");
    let body = failed[0]["text"].as_str().unwrap();
    assert!(
        body.contains("40 bytes in 1 blocks are definitely lost")
            && body.contains(&format!(
                "forkjunit.c:{}",
                line_of("forkjunit.c", "JUNIT-LEAK-HERE")
            )),
        "{body}"
    );
    assert!(!body.contains('\u{1b}'), "no colour in the body: {body:?}");
    let clean = cases
        .iter()
        .find(|c| c["name"] == format!("{p} clean"))
        .unwrap_or_else(|| panic!("no test case for the clean child\n{xml}"));
    assert_eq!(clean["failed"], false);
    // Every name is unique (the forked children share their parent's command line until exec).
    let mut names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "{xml}");
}

/// The fingerprints of a JSON report, sorted.
fn json_fingerprints(j: &Value) -> Vec<String> {
    let mut v: Vec<String> = j["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .chain(p["leaks"].as_array().unwrap())
        })
        .map(|f| f["fingerprint"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn one_run_writes_every_format_at_once() {
    let prog = compile("leaks.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let (json, sarif, junit, text) = (p("r.json"), p("r.sarif"), p("r.xml"), p("r.txt"));
    let r = run(
        &[
            "--format=json",
            "--output",
            &json,
            "--report",
            &format!("sarif={sarif}"),
            "--report",
            &format!("junit={junit}"),
            &format!("--report=text={text}"),
        ],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = valid_sarif(Path::new(&sarif));
    let mut sarif_fps: Vec<String> = s["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["partialFingerprints"]["memcheck/v1"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sarif_fps.sort();
    assert!(!sarif_fps.is_empty());
    assert_eq!(sarif_fps, json_fingerprints(&j), "one finding, one result");
    let suites = junit_cases(Path::new(&junit));
    assert_eq!(
        suites[0]["tests"].as_u64(),
        Some(j["processes"].as_array().unwrap().len() as u64)
    );
    assert_eq!(suites[0]["failures"], 1);
    // The text file is the text report stderr got (colour is off on both).
    let t = std::fs::read_to_string(&text).unwrap();
    assert!(t.contains("definitely lost"), "{t}");
    assert_eq!(t, r.stderr(), "{}", r.show());
}

#[test]
fn a_report_path_is_checked_before_the_program_runs() {
    let prog = compile("leaks.c", &[]);
    let d = tempfile::tempdir().unwrap();
    let ok = d.path().join("r.json");
    let r = run(
        &["--report", "sarif=/missing/dir/r.sarif", "--report"],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(2), "--report needs a value\n{}", r.show());
    let r = run(
        &[
            "--report",
            &format!("json={}", ok.display()),
            "--report",
            "sarif=/missing/dir/r.sarif",
        ],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(r.stdout().is_empty(), "the program ran\n{}", r.show());
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/missing/dir/r.sarif") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!ok.exists());
    // Two reports to one file, or an unknown format, are refused too.
    let same = format!("junit={}", ok.display());
    let r = run(
        &[
            "--format=json",
            "--output",
            ok.to_str().unwrap(),
            "--report",
            &same,
        ],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(
        r.stderr().contains("write to the same place"),
        "{}",
        r.show()
    );
    let r = run(&["--report", "xls=r.xml"], &prog, &[]);
    assert_eq!(r.code(), Some(2), "{}", r.show());
    assert!(
        r.stderr().contains("unknown report format 'xls'"),
        "{}",
        r.show()
    );
    assert!(r.stdout().is_empty(), "{}", r.show());
}

/// `memcheck report ARGS`.
fn report_cmd(args: &[&str]) -> Run {
    let mut c = Command::new(memcheck());
    c.arg("report").args(args).env("NO_COLOR", "1");
    run_cmd(&mut c)
}

#[test]
fn memcheck_report_reproduces_every_format_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let rootdir = root();
    let rootdir = rootdir.to_str().unwrap();
    // A run with errors and leaks in several processes (forkjunit's children leak), and one with
    // an overflow and its stacks.
    for (name, flags, args) in [
        ("forkjunit.c", vec!["--trace-children=yes"], vec![]),
        ("bugs.c", vec!["--guard"], vec!["overflow-to-guard"]),
        ("leaks.c", vec!["--show-leak-kinds=all"], vec![]),
    ] {
        let prog = compile(name, &[]);
        let mut all: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
        for f in ["json", "text", "sarif", "junit"] {
            all.push(format!("--report={f}={}", p(&format!("run.{f}"))));
        }
        all.extend(["--source-root".into(), rootdir.into()]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let r = run(&all, &prog, &args);
        assert!(Path::new(&p("run.json")).exists(), "{}", r.show());
        for f in ["json", "text", "sarif", "junit"] {
            let again = p(&format!("again.{f}"));
            let rr = report_cmd(&[
                &p("run.json"),
                "--format",
                f,
                "--output",
                &again,
                "--source-root",
                rootdir,
            ]);
            assert_eq!(rr.code(), Some(0), "{}", rr.show());
            let (a, b) = (
                std::fs::read(p(&format!("run.{f}"))).unwrap(),
                std::fs::read(&again).unwrap(),
            );
            if f == "sarif" {
                // Every SARIF file a test writes is validated (the second is the same bytes
                // when the assertion below holds, but is checked on its own).
                valid_sarif(Path::new(&p("run.sarif")));
                valid_sarif(Path::new(&again));
            }
            assert!(
                a == b,
                "{name}: memcheck report --format {f} differs from the run's file\n--- run ---\n{}\n--- report ---\n{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
        // To standard output (colour off: NO_COLOR) the same bytes; `-` reads standard input.
        let rr = report_cmd(&[&p("run.text")]);
        assert_eq!(rr.code(), Some(1), "not JSON: {}", rr.show());
        let rr = report_cmd(&[&p("run.json"), "--format=text"]);
        assert_eq!(rr.stdout(), std::fs::read_to_string(p("run.text")).unwrap());
        let mut c = Command::new(memcheck());
        c.args(["report", "-", "--format=junit"])
            .stdin(std::fs::File::open(p("run.json")).unwrap());
        let rr = run_cmd(&mut c);
        assert_eq!(
            rr.stdout(),
            std::fs::read_to_string(p("run.junit")).unwrap()
        );
    }
}

#[test]
fn memcheck_report_diff_lists_new_and_fixed_findings_by_fingerprint() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let leaks = compile("leaks.c", &[]);
    let bugs = compile("bugs.c", &[]);
    let json = |file: &str, prog: &Path, flags: &[&str], args: &[&str]| {
        let out = format!("--report=json={}", p(file));
        let mut f = vec![out.as_str()];
        f.extend(flags);
        let r = run(&f, prog, args);
        assert!(Path::new(&p(file)).exists(), "{}", r.show());
    };
    json("a.json", &leaks, &[], &["37"]);
    // Another size, other addresses: the same findings.
    json("b.json", &leaks, &[], &["50"]);
    json("c.json", &bugs, &["--guard"], &["overflow-to-guard"]);
    let same = report_cmd(&["--diff", &p("a.json"), &p("b.json")]);
    assert_eq!(same.code(), Some(0), "{}", same.show());
    assert_eq!(same.stdout(), "0 new, 0 fixed\n", "{}", same.show());
    let r = report_cmd(&["--diff", &p("a.json"), &p("c.json")]);
    assert_eq!(r.code(), Some(1), "new findings: exit 1\n{}", r.show());
    let out = r.stdout();
    let new: Vec<&str> = out.lines().filter(|l| l.starts_with("new ")).collect();
    assert_eq!(new.len(), 1, "{out}");
    assert!(new[0].contains("heap-buffer-overflow"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("fixed leak-definite")),
        "{out}"
    );
    // Fixed only: exit 0.
    let r = report_cmd(&["--diff", &p("c.json"), &p("c.json")]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let r = report_cmd(&["--diff", &p("c.json"), &p("a.json"), "--format=json"]);
    assert_eq!(r.code(), Some(1), "{}", r.show());
    let v: Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["new"].as_array().unwrap().len(), 3, "{v:#}");
    let fixed = &v["fixed"][0];
    assert_eq!(fixed["rule"], "heap-buffer-overflow");
    assert_eq!(
        fixed["location"]["line"],
        line_of("bugs.c", "GUARD-OVERFLOW-HERE")
    );
    let c: Value = serde_json::from_str(&std::fs::read_to_string(p("c.json")).unwrap()).unwrap();
    assert_eq!(
        fixed["fingerprint"],
        c["processes"][0]["errors"][0]["fingerprint"]
    );
    assert_eq!(v["new"][0]["location"]["file"], "tests/programs/leaks.c");
}

#[test]
fn memcheck_report_refuses_what_it_cannot_read() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.json");
    let r = report_cmd(&[missing.to_str().unwrap()]);
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert_eq!(r.stderr().lines().count(), 1, "{}", r.show());
    assert!(r.stderr().contains("no such file"), "{}", r.show());
    let v2 = d.path().join("v2.json");
    std::fs::write(&v2, r#"{"version": 2, "processes": []}"#).unwrap();
    let r = report_cmd(&[v2.to_str().unwrap()]);
    assert_eq!(r.code(), Some(1), "{}", r.show());
    assert!(
        r.stderr()
            .contains("format version 2: this memcheck reads version 1"),
        "{}",
        r.show()
    );
    let r = report_cmd(&[
        "--diff",
        v2.to_str().unwrap(),
        v2.to_str().unwrap(),
        "--format=sarif",
    ]);
    assert_eq!(r.code(), Some(2), "{}", r.show());
    let r = report_cmd(&[]);
    assert_eq!(r.code(), Some(2), "FILE or --diff is needed\n{}", r.show());
}
