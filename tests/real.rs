//! The real-program group: real programs (CPython's own tests, node, java, sqlite3, gcc, git,
//! coreutils) run under memcheck exactly as they run natively, and report no definite leak that
//! Valgrind does not report on the same program (compared live where Valgrind is fast enough).
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines of memcheck's own report (`==PID==` prefixed) removed, leaving the program's stderr.
fn program_stderr(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("=="))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn same_as_native(flags: &[&str], prog: &Path, args: &[&str], stdin: Option<&str>) {
    let with_stdin = |c: &mut Command| -> Run {
        if let Some(input) = stdin {
            use std::io::Write;
            c.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let cmd = format!("{c:?}");
            let mut child = c.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            Run {
                cmd,
                out,
                json: None,
            }
        } else {
            run_cmd(c)
        }
    };
    let native = with_stdin(Command::new(prog).args(args));
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(flags)
        .arg("--")
        .arg(prog)
        .args(args)
        .env("NO_COLOR", "1");
    let under = with_stdin(&mut c);
    assert_eq!(native.code(), Some(0), "{}", native.show());
    assert_eq!(under.code(), Some(0), "{}", under.show());
    assert_eq!(under.stdout(), native.stdout(), "{}", under.show());
    assert_eq!(
        program_stderr(&under.stderr()),
        native.stderr(),
        "{}",
        under.show()
    );
    assert!(
        under.stderr().contains("ERROR SUMMARY: 0 errors"),
        "{}",
        under.show()
    );
}

fn which(name: &str) -> PathBuf {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

const FLAGS: &[&str] = &["--error-exitcode=99", "--leak-check=no"];

#[test]
fn python_runs_unchanged() {
    // The interpreter itself, not a wrapper script such as pyenv's shim.
    let o = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let py = PathBuf::from(String::from_utf8(o.stdout).unwrap().trim());
    for mode in [&[][..], &["--guard"], &["--sample-rate=50"]] {
        let mut flags = FLAGS.to_vec();
        flags.extend_from_slice(mode);
        same_as_native(&flags, &py, &["-c", "import json, re; print(json.dumps({'n': sum(range(1000)), 'm': re.findall('a+', 'caaab')}))"], None);
    }
}

#[test]
fn perl_sort_and_git_run_unchanged() {
    // With FLAGS' --leak-check=no, --sample-rate is production mode (tests/production.rs).
    for mode in [&[][..], &["--guard"], &["--sample-rate=50"]] {
        let mut flags = FLAGS.to_vec();
        flags.extend_from_slice(mode);
        same_as_native(&flags, &which("perl"), &["-e", "my %h = map { $_ => $_ * 2 } 1..100; print join(',', map { $h{$_} } sort { $a <=> $b } keys %h), qq{\n}"], None);
    }
    same_as_native(FLAGS, &which("sort"), &["-n"], Some("10\n9\n100\n1\n"));
    same_as_native(FLAGS, &which("git"), &["--version"], None);
    same_as_native(
        &[FLAGS, &["--sample-rate=50"]].concat(),
        &which("git"),
        &["--version"],
        None,
    );
}

#[test]
fn gcc_compiles_unchanged_with_its_children_traced() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("unit.c");
    std::fs::write(&src, "#include <stdio.h>\nint twice(int x) { return 2 * x; }\nint main(void) { printf(\"%d\\n\", twice(21)); return 0; }\n").unwrap();
    let obj = dir.path().join("unit.o");
    let flags = ["--error-exitcode=99", "--leak-check=no", "--trace-children"];
    same_as_native(
        &flags,
        &which("gcc"),
        &[
            "-O2",
            "-c",
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ],
        None,
    );
    assert!(obj.exists());
    // With children traced, cc1 and as appear in the report as processes of their own.
    let r = run_under(
        &flags,
        &which("gcc"),
        &[
            "-O2",
            "-c",
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ],
    );
    let cmds: Vec<String> = r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["command"].as_str().unwrap().to_string())
        .collect();
    assert!(
        cmds.iter().any(|c| c.contains("cc1")),
        "{cmds:?}\n{}",
        r.show()
    );
    assert!(
        cmds.iter().any(|c| c.starts_with("as ")),
        "{cmds:?}\n{}",
        r.show()
    );
    // Without --trace-children only gcc itself is checked.
    let r = run_under(
        FLAGS,
        &which("gcc"),
        &[
            "-O2",
            "-c",
            src.to_str().unwrap(),
            "-o",
            obj.to_str().unwrap(),
        ],
    );
    assert_eq!(
        r.json()["processes"].as_array().unwrap().len(),
        1,
        "{}",
        r.show()
    );
}

fn valgrind_totals(prog: &Path, args: &[&str]) -> Option<[(u64, u64); 2]> {
    let o = Command::new("valgrind")
        .args(["--leak-check=full"])
        .arg(prog)
        .args(args)
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&o.stderr);
    let grab = |what: &str| -> (u64, u64) {
        let line = err
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no '{what}' in valgrind output:\n{err}"));
        let nums: Vec<u64> = line
            .split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .filter_map(|w| w.replace(',', "").parse().ok())
            .collect();
        (nums[0], nums[1])
    };
    Some([grab("definitely lost:"), grab("indirectly lost:")])
}

#[test]
fn leak_totals_equal_valgrinds() {
    let prog = compile("leaks.c", &[]);
    let perl = which("perl");
    // seq and mawk hold their buffers in main's frame when they call exit(): live, not lost.
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (prog, vec!["12"]),
        (perl, vec!["-e", "print 1"]),
        (which("seq"), vec!["1", "200"]),
        (
            which("mawk"),
            vec!["BEGIN { for (i = 0; i < 50; i++) s = s i; print length(s) }"],
        ),
    ];
    for (p, args) in cases {
        let Some([vd, vi]) = valgrind_totals(&p, &args) else {
            panic!("valgrind is needed for this test (apt-get install valgrind)");
        };
        let r = run_under(&[], &p, &args);
        assert_eq!(
            r.summary("definite"),
            vd,
            "definite vs valgrind\n{}",
            r.show()
        );
        assert_eq!(
            r.summary("indirect"),
            vi,
            "indirect vs valgrind\n{}",
            r.show()
        );
    }
}

/// The JVM and V8 rely on their own SIGSEGV handlers (the JVM turns a fault into a
/// NullPointerException); they keep working in every mode, guard mode included.
#[test]
fn jvm_and_node_run_unchanged_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Hello.java");
    std::fs::write(
        &src,
        "public class Hello { public static void main(String[] a) { Object o = null; \
         try { o.toString(); } catch (NullPointerException e) { System.out.println(\"npe caught\"); } \
         StringBuilder sb = new StringBuilder(); for (int i = 0; i < 100000; i++) sb.append(i % 10); \
         System.out.println(sb.length()); } }",
    )
    .unwrap();
    let javac = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .arg(&src)
        .output()
        .expect("javac is needed (apt-get install default-jdk-headless)");
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let java = std::fs::canonicalize(which("java")).unwrap();
    let node = std::fs::canonicalize(which("node")).unwrap();
    let cp = dir.path().to_str().unwrap();
    for mode in [&[][..], &["--guard"], &["--sample-rate=20"]] {
        let mut flags = vec!["--error-exitcode=99", "--leak-check=no"];
        flags.extend_from_slice(mode);
        same_as_native(&flags, &java, &["-cp", cp, "Hello"], None);
        same_as_native(
            &flags,
            &node,
            &[
                "-e",
                "const a = []; for (let i = 0; i < 1e5; i++) a.push({ i }); console.log(a.length)",
            ],
            None,
        );
    }
}

/// One loss record of Valgrind's: its function names, innermost first, with Valgrind's own
/// allocator frames (in `vgpreload_*`) dropped.
fn valgrind_definite(cmd: &mut Command) -> Vec<Vec<String>> {
    let o = cmd
        .output()
        .expect("valgrind is needed for this test (apt-get install valgrind)");
    let err = String::from_utf8_lossy(&o.stderr);
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    for line in err.lines() {
        let body = line.split_once("== ").map_or(line, |(_, b)| b).trim();
        if body.contains("are definitely lost in loss record") {
            cur = Some(Vec::new());
            continue;
        }
        let Some(stack) = cur.as_mut() else { continue };
        let frame = body
            .strip_prefix("at ")
            .or_else(|| body.strip_prefix("by "))
            .and_then(|f| f.split_once(": "));
        match frame {
            Some((_, rest)) => {
                if rest.contains("vgpreload") {
                    continue;
                }
                let name = rest.rsplit_once(" (").map_or(rest, |(n, _)| n);
                stack.push(name.to_string());
            }
            None => out.extend(cur.take()),
        }
    }
    out.extend(cur);
    out
}

/// The function names of a memcheck stack (`???` for unnamed frames).
fn names(stack: &serde_json::Value) -> Vec<String> {
    stack
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("???").to_string())
        .collect()
}

/// Whether Valgrind has a definite loss record for memcheck's stack `ours`: the first two named
/// frames of ours appear in order among the first frames of Valgrind's (allocation wrappers
/// Valgrind replaces, such as `strdup`, stay in our stacks). `???` and `(below main)` match any
/// name.
fn valgrind_has(vg: &[Vec<String>], ours: &[String]) -> bool {
    let wild = |n: &str| n == "???" || n == "(below main)";
    let same = |a: &str, b: &str| wild(a) || wild(b) || a == b;
    let ours: Vec<&String> = ours.iter().take(3).collect();
    vg.iter().any(|theirs| {
        (0..=1).any(|skip_ours| {
            (0..=1).any(|skip_theirs| {
                let a = &ours[skip_ours.min(ours.len())..];
                let b = theirs.get(skip_theirs..).unwrap_or(&[]);
                let n = a.len().min(b.len()).min(2);
                n > 0 && (0..n).all(|i| same(a[i], &b[i]))
            })
        })
    })
}

/// Every definite leak group memcheck reports in any process of `r` is one Valgrind reports too.
fn assert_no_definite_beyond(r: &Run, vg: &[Vec<String>]) {
    let extra: Vec<Vec<String>> = r
        .leaks("definite")
        .iter()
        .map(|l| names(&l["stack"]))
        .filter(|n| !valgrind_has(vg, n))
        .collect();
    assert!(
        extra.is_empty(),
        "definite leaks Valgrind does not report: {extra:#?}\nValgrind's: {vg:#?}\n{}",
        r.show()
    );
}

#[test]
fn valgrind_loss_records_parse() {
    let text = "==7== 24 bytes in 1 blocks are definitely lost in loss record 3 of 9\n\
                ==7==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)\n\
                ==7==    by 0x4882EF8: JLI_MemAlloc (in /usr/lib/libjli.so)\n\
                ==7==    by 0x5A8FCB8: os::malloc(unsigned long, MEMFLAGS) (in /usr/lib/libjvm.so)\n\
                ==7== \n\
                ==7== 8 bytes in 1 blocks are still reachable in loss record 4 of 9\n\
                ==7==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)\n\
                ==7==    by 0x109109: main (a.c:3)\n\
                ==7== \n\
                ==8== 62 (24 direct, 38 indirect) bytes in 1 blocks are definitely lost in loss record 1 of 1\n\
                ==8==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)\n\
                ==8==    by 0x109109: main (a.c:3)\n";
    let got =
        valgrind_definite(Command::new("sh").args(["-c", &format!("printf '%s' '{text}' >&2")]));
    assert_eq!(
        got,
        vec![
            vec![
                "JLI_MemAlloc".to_string(),
                "os::malloc(unsigned long, MEMFLAGS)".into()
            ],
            vec!["main".to_string()],
        ]
    );
}

#[test]
fn valgrind_stacks_match_by_their_first_named_frames() {
    let vg = vec![vec![
        "JLI_MemAlloc".to_string(),
        "JLI_Launch".into(),
        "???".into(),
    ]];
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(valgrind_has(&vg, &s(&["JLI_MemAlloc", "JLI_Launch"])));
    assert!(valgrind_has(
        &vg,
        &s(&["strdup", "JLI_MemAlloc", "JLI_Launch"])
    ));
    assert!(!valgrind_has(&vg, &s(&["JLI_MemAlloc", "CheckJvmType"])));
    assert!(!valgrind_has(&[], &s(&["main"])));
}

/// `java -version` and a program whose threads catch NullPointerExceptions (raised by the JVM's
/// own SIGSEGV handler) report no definite leak that Valgrind does not; with JIT compilation
/// left out (`-Xint`), so that both runs compile the same methods and allocate the same
/// inline-cache holders.
#[test]
fn java_reports_no_definite_leak_valgrind_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/Threads.java");
    let javac = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .arg(&src)
        .output()
        .expect("javac is needed (apt-get install default-jdk-headless)");
    assert!(
        javac.status.success(),
        "{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let java = std::fs::canonicalize(which("java")).unwrap();
    let cp = dir.path().to_str().unwrap();
    for mode in [&[][..], &["--guard"], &["--sample-rate=20"]] {
        let mut flags = vec!["--error-exitcode=99", "--leak-check=no"];
        flags.extend_from_slice(mode);
        same_as_native(&flags, &java, &["-cp", cp, "Threads"], None);
    }
    for args in [&["-version"][..], &["-Xint", "-cp", cp, "Threads"]] {
        let r = run_under(&[], &java, args);
        assert_eq!(r.code(), Some(0), "{}", r.show());
        let vg = valgrind_definite(
            Command::new("valgrind")
                .arg("--leak-check=full")
                .arg(&java)
                .args(args),
        );
        assert_no_definite_beyond(&r, &vg);
    }
}

/// git init, add and commit, every git process traced (commit runs `git maintenance` in a child).
#[test]
fn git_init_add_commit_under_trace_children_leaks_nothing_valgrind_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let script = "set -e\ngit init -q .\necho hello > a.txt\ngit add a.txt\n\
                  git -c user.name=t -c user.email=t@example.com commit -q -m first\n\
                  git log --oneline | wc -l\n";
    let run_in = |sub: &str| -> PathBuf {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("run.sh"), script).unwrap();
        d
    };
    let native = run_cmd(
        Command::new("sh")
            .arg("run.sh")
            .current_dir(run_in("native"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
    );
    assert_eq!(native.code(), Some(0), "{}", native.show());
    let report = dir.path().join("report.json");
    let mut c = Command::new(memcheck());
    c.args(["run", "--trace-children", "--format=json", "--output"])
        .arg(&report)
        .args(["--", "sh", "run.sh"])
        .current_dir(run_in("memcheck"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    let mut r = run_cmd(&mut c);
    r.json = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), native.stdout(), "{}", r.show());
    let cmds: Vec<String> = r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["command"].as_str().unwrap().to_string())
        .collect();
    for want in ["git init", "git add", "commit"] {
        assert!(cmds.iter().any(|c| c.contains(want)), "{want}: {cmds:?}");
    }
    let vg = valgrind_definite(
        Command::new("valgrind")
            .args(["--leak-check=full", "--trace-children=yes", "sh", "run.sh"])
            .current_dir(run_in("valgrind"))
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
    );
    assert_no_definite_beyond(&r, &vg);
}

/// A few of CPython's own test modules pass under memcheck in every mode, with the same counts.
#[test]
fn cpython_test_modules_pass_in_every_mode() {
    let py = python();
    let args = ["-m", "test", "test_list", "test_dict", "test_bisect"];
    let native = run_cmd(Command::new(&py).args(args));
    assert_eq!(
        native.code(),
        Some(0),
        "CPython's test package is needed (Debian: apt-get install libpython3.X-testsuite)\n{}",
        native.show()
    );
    // The summary lines without timings ("All 3 tests OK.", "Total tests: run=210", "Tests
    // result: SUCCESS"; their wording varies between CPython releases).
    let counts = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| {
                l.contains("tests OK")
                    || l.starts_with("Total tests:")
                    || l.to_ascii_lowercase().contains("result:")
            })
            .map(str::to_string)
            .collect()
    };
    assert!(
        counts(&native.stdout())
            .iter()
            .any(|l| l.contains("SUCCESS")),
        "{}",
        native.show()
    );
    for mode in [&[][..], &["--guard"], &["--sample-rate=20"]] {
        let r = run_under(mode, &py, &args);
        assert_eq!(r.code(), Some(0), "{mode:?}\n{}", r.show());
        assert_eq!(
            counts(&r.stdout()),
            counts(&native.stdout()),
            "{}",
            r.show()
        );
        assert!(r.errors().is_empty(), "{}", r.show());
        // Valgrind reports no definite leak on these modules (checked by hand: it takes a minute).
        assert_eq!(r.summary("definite"), (0, 0), "{mode:?}\n{}", r.show());
    }
}

/// The interpreter itself, not a wrapper script such as pyenv's shim.
fn python() -> PathBuf {
    let o = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed");
    PathBuf::from(String::from_utf8(o.stdout).unwrap().trim())
}

/// A node script: same output in every mode, no definite leak (Valgrind reports none either;
/// checked by hand, it is slow on V8).
#[test]
fn node_script_runs_unchanged_and_loses_nothing() {
    let node = std::fs::canonicalize(which("node")).unwrap();
    let script = "const m = new Map(); for (let i = 0; i < 20000; i++) m.set('k' + i, { i, s: String(i).repeat(3) }); \
                  let t = 0; for (const [k, v] of m) t += v.i + k.length; \
                  console.log(t, JSON.stringify([...m.values()].slice(0, 100)).length, [3, 1, 2].sort().join(','));";
    for mode in [&[][..], &["--guard"], &["--sample-rate=20"]] {
        let mut flags = vec!["--error-exitcode=99"];
        flags.extend_from_slice(mode);
        same_as_native(&flags, &node, &["-e", script], None);
        let r = run_under(mode, &node, &["-e", script]);
        assert_eq!(r.summary("definite"), (0, 0), "{mode:?}\n{}", r.show());
    }
}

const SQL: &str = "create table t(a int, b text);\n\
    with recursive c(x) as (select 1 union all select x+1 from c where x<2000) \
    insert into t select x, printf('v%d', x) from c;\n\
    select count(*), sum(a), max(b) from t;\n\
    create index ti on t(b);\n\
    select a from t where b = 'v1234';\n";

#[test]
fn sqlite3_runs_unchanged_and_leaks_nothing_valgrind_does_not() {
    let sqlite = which("sqlite3");
    assert!(
        sqlite.exists(),
        "sqlite3 is needed (apt-get install sqlite3)"
    );
    for mode in [&[][..], &["--guard"], &["--sample-rate=20"]] {
        let mut flags = vec!["--error-exitcode=99"];
        flags.extend_from_slice(mode);
        same_as_native(&flags, &sqlite, &[":memory:"], Some(SQL));
    }
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("q.sql");
    std::fs::write(&sql, SQL).unwrap();
    let init = format!(".read {}", sql.display());
    let r = run_under(&[], &sqlite, &[":memory:", &init]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(r.stdout().contains("2000|2001000|v999"), "{}", r.show());
    let vg = valgrind_definite(
        Command::new("valgrind")
            .arg("--leak-check=full")
            .arg(&sqlite)
            .args([":memory:", &init]),
    );
    assert_no_definite_beyond(&r, &vg);
}

/// gcc with its children (cc1, as) traced: no definite leak that Valgrind does not report.
#[test]
fn gcc_and_its_children_leak_nothing_valgrind_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("unit.c");
    std::fs::write(&src, "int twice(int x) { return 2 * x; }\n").unwrap();
    let obj = dir.path().join("unit.o");
    let args = [
        "-O2",
        "-c",
        src.to_str().unwrap(),
        "-o",
        obj.to_str().unwrap(),
    ];
    let r = run_under(&["--trace-children"], &which("gcc"), &args);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let vg = valgrind_definite(
        Command::new("valgrind")
            .args(["--leak-check=full", "--trace-children=yes"])
            .arg(which("gcc"))
            .args(args),
    );
    assert_no_definite_beyond(&r, &vg);
}
