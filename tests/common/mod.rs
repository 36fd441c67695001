//! Helpers for integration tests: compile the C/C++ programs in `tests/programs/` with fixed
//! flags, run them natively or under `memcheck run`, and read the JSON report. A failed
//! expectation prints the command, its status, stdout and stderr.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
