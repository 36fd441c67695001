//! `--output` never destroys what is at the path and never loses the report: checked before the
//! program runs, devices/FIFOs/symlinks written into, regular files replaced atomically, and a
//! closed stderr does not cost the file report.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileTypeExt;
use std::process::{Command, Stdio};

fn memcheck_run(out: &str, extra: &[&str], marker: &std::path::Path) -> Command {
    let prog = compile("marker.c", &[]);
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(extra)
        .arg("--output")
        .arg(out)
        .arg("--")
        .arg(prog)
        .arg(marker)
        .env("NO_COLOR", "1");
    c
}

fn leaks_24(json: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(json).expect("a whole JSON report");
    v["processes"][0]["leaks"]
        .as_array()
        .is_some_and(|l| l.iter().any(|l| l["bytes"] == 24))
}

#[test]
fn a_missing_directory_is_refused_before_the_program_runs() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let r = run_cmd(&mut memcheck_run(
        "/missing/dir/r.json",
        &["--format=json"],
        &marker,
    ));
    assert_ne!(r.code(), Some(0), "{}", r.show());
    assert!(!marker.exists(), "the program ran\n{}", r.show());
    let err = r.stderr();
    assert_eq!(err.lines().count(), 1, "one line\n{}", r.show());
    assert!(
        err.contains("/missing/dir/r.json") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains(".tmp"), "no temporary names: {err}");
}

#[test]
fn a_symlink_is_written_through_and_a_regular_file_replaced() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("target.json");
    std::fs::write(&target, "old").unwrap();
    let link = d.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let marker = d.path().join("ran");
    let r = run_cmd(&mut memcheck_run(
        link.to_str().unwrap(),
        &["--format=json"],
        &marker,
    ));
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(leaks_24(&std::fs::read_to_string(&target).unwrap()));
    let plain = d.path().join("plain.json");
    std::fs::write(&plain, "old").unwrap();
    let r = run_cmd(&mut memcheck_run(
        plain.to_str().unwrap(),
        &["--format=json"],
        &marker,
    ));
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(leaks_24(&std::fs::read_to_string(&plain).unwrap()));
}

#[test]
fn dev_stdout_keeps_the_programs_output_and_gets_the_report() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let out = d.path().join("stdout.txt");
    let f = std::fs::File::create(&out).unwrap();
    let mut c = memcheck_run("/dev/stdout", &["--format=json"], &marker);
    let st = c.stdout(f).status().unwrap();
    assert_eq!(st.code(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    let (first, json) = text.split_once('\n').unwrap();
    assert_eq!(first, "program output", "{text}");
    assert!(leaks_24(json), "{text}");
}

#[test]
fn a_fifo_with_a_reader_gets_the_report_and_stays_a_fifo() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::fs::File::open(path)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    });
    let marker = d.path().join("ran");
    let r = run_cmd(&mut memcheck_run(
        fifo.to_str().unwrap(),
        &["--format=json"],
        &marker,
    ));
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(leaks_24(&reader.join().unwrap()));
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn dev_full_reports_enospc_and_stays_a_device() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let r = run_cmd(&mut memcheck_run("/dev/full", &["--format=json"], &marker));
    assert_ne!(r.code(), Some(0), "{}", r.show());
    assert!(
        r.stderr().contains("No space left on device"),
        "{}",
        r.show()
    );
    assert!(std::fs::symlink_metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_closed_stderr_does_not_cost_the_json_report() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let report = d.path().join("r.json");
    let mut c = memcheck_run(report.to_str().unwrap(), &["--format=json"], &marker);
    let mut child = c
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // `| head -1`: read one line of stderr, then close the pipe.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    drop(err);
    let st = child.wait().unwrap();
    assert!(st.code().is_some(), "memcheck died: {st:?}");
    assert!(leaks_24(&std::fs::read_to_string(&report).unwrap()));
}

#[test]
fn text_with_output_goes_to_the_file_without_colour() {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let report = d.path().join("r.txt");
    let mut c = memcheck_run(report.to_str().unwrap(), &["--format=text"], &marker);
    c.env_remove("NO_COLOR").arg("--color=always");
    let r = run_cmd(&mut c);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains("24 bytes in 1 blocks are definitely lost"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "colour in a file: {text:?}");
    assert!(!r.stderr().contains("LEAK SUMMARY"), "{}", r.show());
}
