//! Helpers for integration tests: compile the C/C++ programs in `tests/programs/` with fixed
//! flags, run them natively or under `memcheck run`, and read the JSON report. A failed
//! expectation prints the command, its status, stdout and stderr.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// The repository's root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn memcheck() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_memcheck"))
}

fn build_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("programs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles `tests/programs/NAME` (C or C++ by extension) with `-g -O1` and extra flags, once per
/// flag set, and returns the binary.
pub fn compile(name: &str, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name);
    let stem = Path::new(name)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let tag: String = extra
        .iter()
        .map(|f| f.replace(['-', '=', '/'], "_"))
        .collect();
    let out = build_dir().join(format!("{stem}{tag}"));
    let cxx = name.ends_with(".cc") || name.ends_with(".cpp");
    // One compile at a time in this test process; across test processes the temporary name
    // (pid) and the atomic rename keep the result whole.
    static COMPILING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _l = COMPILING.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = std::fs::metadata(&out)
        .and_then(|m| m.modified())
        .ok()
        .zip(std::fs::metadata(&src).and_then(|m| m.modified()).ok())
        .is_some_and(|(o, s)| o > s);
    if !fresh {
        let tmp = out.with_extension(format!("tmp{}", std::process::id()));
        let o = Command::new(if cxx { "g++" } else { "gcc" })
            .args([
                "-g",
                "-O1",
                "-fno-omit-frame-pointer",
                "-fno-builtin",
                "-pthread",
                "-o",
            ])
            .arg(&tmp)
            .arg(&src)
            .args(extra)
            .output()
            .expect("a C compiler (gcc/g++) is needed for the tests");
        assert!(
            o.status.success(),
            "compiling {name} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// The result of one command, printable for failure messages.
pub struct Run {
    pub cmd: String,
    pub out: Output,
    pub json: Option<Value>,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// Everything needed to understand a failure.
    pub fn show(&self) -> String {
        format!(
            "command: {}\nstatus: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- json ---\n{}",
            self.cmd,
            self.out.status,
            self.stdout(),
            self.stderr(),
            self.json
                .as_ref()
                .map(|j| serde_json::to_string_pretty(j).unwrap())
                .unwrap_or_default()
        )
    }
    /// Standard output as JSON (an inspection command's report), after checking it exited 0.
    pub fn stdout_json(&self) -> Value {
        assert_eq!(self.code(), Some(0), "memcheck failed\n{}", self.show());
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", self.show()))
    }
    pub fn json(&self) -> &Value {
        self.json
            .as_ref()
            .unwrap_or_else(|| panic!("no JSON report\n{}", self.show()))
    }
    /// The process of the report whose argv[0] ends with `name`, or the first.
    pub fn process(&self) -> &Value {
        &self.json()["processes"][0]
    }
    /// Leak entries of one kind, across processes.
    pub fn leaks(&self, kind: &str) -> Vec<&Value> {
        self.json()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["leaks"].as_array().unwrap())
            .filter(|l| l["kind"] == kind)
            .collect()
    }
    pub fn errors(&self) -> Vec<&Value> {
        self.json()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["errors"].as_array().unwrap())
            .collect()
    }
    pub fn summary(&self, kind: &str) -> (u64, u64) {
        let s = &self.process()["leak_summary"][kind];
        (
            s["bytes"].as_u64().unwrap_or(u64::MAX),
            s["blocks"].as_u64().unwrap_or(u64::MAX),
        )
    }
}

/// Runs `memcheck run [flags] -- prog args` with a JSON report.
pub fn run_under(flags: &[&str], prog: &Path, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(flags)
        .arg("--format=json")
        .arg("--output")
        .arg(&report)
        .arg("--")
        .arg(prog)
        .args(args);
    c.env("NO_COLOR", "1");
    let cmd = format!("{c:?}");
    let out = c.output().unwrap();
    let json = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("valid JSON"));
    Run { cmd, out, json }
}

/// Runs any command (native runs, other subcommands).
pub fn run_cmd(c: &mut Command) -> Run {
    let cmd = format!("{c:?}");
    let out = c.output().unwrap();
    Run {
        cmd,
        out,
        json: None,
    }
}

/// Runs `c` like [`run_cmd`], retrying while its program is briefly "text file busy" (a copy of
/// a binary just written can be, while another test thread's fork still holds the writing
/// descriptor).
pub fn output_retrying(mut c: Command) -> Run {
    let cmd = format!("{c:?}");
    let mut tries = 0;
    let out = loop {
        match c.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap_or_else(|e| panic!("cannot run {cmd}: {e}")),
        }
    };
    Run {
        cmd,
        out,
        json: None,
    }
}

/// A frame of a stack is in function `f` at `file:line` where `file` ends with the given name.
pub fn has_frame(stack: &Value, func: &str, file: &str, line: Option<u64>) -> bool {
    stack.as_array().is_some_and(|fs| {
        fs.iter().any(|f| {
            f["function"].as_str() == Some(func)
                && f["file"].as_str().is_some_and(|p| p.ends_with(file))
                && line.is_none_or(|l| f["line"].as_u64() == Some(l))
        })
    })
}

/// The line number of the first line of `tests/programs/NAME` containing `marker`.
pub fn line_of(name: &str, marker: &str) -> u64 {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/programs")
            .join(name),
    )
    .unwrap();
    src.lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{marker} not in {name}")) as u64
        + 1
}

/// A running test program that announced itself with its first line on stdout: `ready`, or
/// `ready PID` when it runs under `memcheck run` (the spawned child is then the memcheck CLI, and
/// PID the program's own). Killed if the test fails before it finished.
pub struct Ready {
    pub name: String,
    pub child: Child,
    /// The program's pid: the one its ready line names, else the spawned child's.
    pub pid: i32,
    pub out: BufReader<ChildStdout>,
}

/// How a [`Ready`] program ended.
pub struct Finished {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn show(&self) -> String {
        format!(
            "code {:?}, signal {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

impl Ready {
    /// Compiles `tests/programs/NAME` with `extra` flags, starts it with `args` and waits for its
    /// ready line.
    pub fn start(name: &str, extra: &[&str], args: &[&str]) -> Ready {
        let exe = compile(name, extra);
        Ready::spawn(name, Command::new(&exe).args(args))
    }

    /// Spawns `cmd` with piped stdin, stdout and stderr and waits for its ready line.
    pub fn spawn(name: &str, cmd: &mut Command) -> Ready {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let pid = match line.trim_end().strip_prefix("ready") {
            Some("") => child.id() as i32,
            Some(rest) => rest
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: bad ready line {line:?}")),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not start: first line {line:?}")
            }
        };
        Ready {
            name: name.to_string(),
            child,
            pid,
            out,
        }
    }

    /// The program's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `input` on stdin, closes it, and collects the rest of the output and the status.
    pub fn finish(&mut self, input: &str) -> Finished {
        let err = self.child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                s
            })
        });
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        let mut stdout = String::new();
        self.out.read_to_string(&mut stdout).unwrap();
        let status = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        Finished {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr: err.map(|t| t.join().unwrap()).unwrap_or_default(),
        }
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            eprintln!("killing {}", self.name);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
