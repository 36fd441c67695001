//! Real programs run under memcheck exactly as they run natively, and leak totals agree with
//! Valgrind's on the same program.
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
    for mode in [&[][..], &["--guard"]] {
        let mut flags = FLAGS.to_vec();
        flags.extend_from_slice(mode);
        same_as_native(&flags, &which("perl"), &["-e", "my %h = map { $_ => $_ * 2 } 1..100; print join(',', map { $h{$_} } sort { $a <=> $b } keys %h), qq{\n}"], None);
    }
    same_as_native(FLAGS, &which("sort"), &["-n"], Some("10\n9\n100\n1\n"));
    same_as_native(FLAGS, &which("git"), &["--version"], None);
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
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![(prog, vec!["12"]), (perl, vec!["-e", "print 1"])];
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
