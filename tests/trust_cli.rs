//! Trust on the CLI side (issue 9): the preload cache loads only what memcheck made itself, the
//! program starts with the signal dispositions it would have had without memcheck and gets the
//! signals sent to memcheck, processes that outlive the program are waited for, and run
//! directories left by a killed memcheck are removed.
mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// `memcheck run --format=json` with extra environment variables.
fn run_env(env: &[(&str, &Path)], flags: &[&str], prog: &Path, args: &[&str]) -> Run {
    let dir = scratch();
    let report = dir.path().join("report.json");
    let mut c = Command::new(memcheck());
    c.arg("run")
        .args(flags)
        .arg("--format=json")
        .arg("--output")
        .arg(&report)
        .arg("--")
        .arg(prog)
        .args(args)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let cmd = format!("{c:?}");
    let out = c.output().unwrap();
    let json = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("valid JSON"));
    Run { cmd, out, json }
}

/// The one library file a run wrote into `cache/memcheck`.
fn cached_library(cache: &Path) -> PathBuf {
    let libs: Vec<PathBuf> = std::fs::read_dir(cache.join("memcheck"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "so"))
        .collect();
    assert_eq!(libs.len(), 1, "{libs:?}");
    libs[0].clone()
}

// ---- item 9: the preload cache and the run directory ------------------------------------------

#[test]
fn a_planted_library_of_the_same_size_in_the_cache_is_not_loaded() {
    let plain = compile("dispositions.c", &[]);
    let prog = &plain;
    let planted = compile("planted.c", &["-shared", "-fPIC"]);
    let dir = scratch();

    // The genuine library, as a run writes it to a fresh cache.
    let fresh = dir.path().join("fresh");
    let r = run_env(&[("XDG_CACHE_HOME", &fresh)], &[], &plain, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let genuine_path = cached_library(&fresh);
    let genuine = std::fs::read(&genuine_path).unwrap();

    // The same name and size with other content, in a cache directory of the right owner and
    // mode: what another user with access to a shared cache path would plant.
    let mut fake = std::fs::read(&planted).unwrap();
    assert!(fake.len() < genuine.len());
    fake.resize(genuine.len(), 0);
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(shared.join("memcheck")).unwrap();
    std::fs::set_permissions(
        shared.join("memcheck"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let target = shared
        .join("memcheck")
        .join(genuine_path.file_name().unwrap());
    std::fs::write(&target, &fake).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The planted library does act when it is loaded.
    let probe = dir.path().join("probe-marker");
    let o = Command::new(&plain)
        .env("LD_PRELOAD", &target)
        .env("PLANTED_MARKER", &probe)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        probe.exists(),
        "the planted library's constructor did not run"
    );

    let marker = dir.path().join("marker");
    let r = run_env(
        &[("XDG_CACHE_HOME", &shared), ("PLANTED_MARKER", &marker)],
        &[],
        prog,
        &[],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert!(
        !marker.exists(),
        "the planted library was loaded\n{}",
        r.show()
    );
    assert_eq!(
        r.process()["exit"],
        serde_json::json!({"code": 0}),
        "{}",
        r.show()
    );
    assert!(
        std::fs::read(&target).unwrap() == genuine,
        "the planted file was not replaced by the genuine library"
    );
}

#[test]
fn a_symlinked_cache_directory_is_not_followed() {
    let prog = compile("dispositions.c", &[]);
    let dir = scratch();
    // A directory the cache path points into by a symbolic link (another user's, say).
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::symlink(&elsewhere, cache.join("memcheck")).unwrap();

    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(
        r.process()["exit"],
        serde_json::json!({"code": 0}),
        "{}",
        r.show()
    );
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "memcheck wrote through the symbolic link\n{}",
        r.show()
    );
    assert!(
        std::fs::symlink_metadata(cache.join("memcheck"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
    assert!(
        r.stderr().contains("is not used") && r.stderr().contains("symbolic link"),
        "{}",
        r.show()
    );
}

#[test]
fn a_symlinked_or_loose_library_file_is_replaced_not_followed() {
    let prog = compile("dispositions.c", &[]);
    let dir = scratch();
    let cache = dir.path().join("cache");
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let lib = cached_library(&cache);
    let genuine = std::fs::read(&lib).unwrap();

    // The library's name is a link to a file elsewhere holding the genuine bytes.
    let elsewhere = dir.path().join("elsewhere.so");
    std::fs::write(&elsewhere, &genuine).unwrap();
    std::fs::remove_file(&lib).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &lib).unwrap();
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    let m = std::fs::symlink_metadata(&lib).unwrap();
    assert!(m.file_type().is_file(), "the link is still there");
    assert_eq!(std::fs::read(&lib).unwrap(), genuine);
    assert_eq!(
        std::fs::read(&elsewhere).unwrap(),
        genuine,
        "the target was touched"
    );

    // The genuine bytes in a file others may write to are not trusted either.
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(mode(&lib), 0o755);
}

#[test]
fn a_cache_below_a_directory_others_can_change_is_not_used() {
    let prog = compile("dispositions.c", &[]);
    let dir = scratch();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cache = open.join("cache");
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(
        r.process()["exit"],
        serde_json::json!({"code": 0}),
        "{}",
        r.show()
    );
    assert!(!cache.join("memcheck").exists(), "{}", r.show());
    assert!(
        r.stderr().contains("writable by other users"),
        "{}",
        r.show()
    );
    // Sticky, as /tmp is, it is fine: others cannot rename or remove what is ours in it.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    cached_library(&cache);
    assert!(!r.stderr().contains("is not used"), "{}", r.show());
}

#[test]
fn without_a_cache_the_library_is_not_written_below_a_directory_others_can_change() {
    let prog = compile("dispositions.c", &[]);
    let dir = scratch();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::symlink(dir.path(), cache.join("memcheck")).unwrap();
    let r = run_env(
        &[("XDG_CACHE_HOME", &cache), ("TMPDIR", &open)],
        &[],
        &prog,
        &[],
    );
    assert_eq!(r.code(), Some(125), "{}", r.show());
    assert!(r.stdout().is_empty(), "the program ran\n{}", r.show());
    let stderr = r.stderr();
    let err: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("memcheck: error:"))
        .collect();
    assert_eq!(err.len(), 1, "{}", r.show());
    assert!(err[0].contains("set TMPDIR"), "{}", r.show());
    assert!(
        std::fs::read_dir(&open).unwrap().next().is_none(),
        "{}",
        r.show()
    );
}

#[test]
fn the_cache_and_run_directories_are_made_0700() {
    let prog = compile("dispositions.c", &[]);
    let dir = scratch();
    let cache = dir.path().join("new").join("cache");
    let r = run_env(
        &[("XDG_CACHE_HOME", &cache)],
        &["--trace-children"],
        &prog,
        &["rundir"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&cache.join("memcheck")), 0o700);
    assert!(r.stdout().contains("rundir mode 700"), "{}", r.show());
    // A cache directory of ours with a looser mode (as memcheck made it before) is tightened.
    std::fs::set_permissions(
        cache.join("memcheck"),
        std::fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    let r = run_env(&[("XDG_CACHE_HOME", &cache)], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(mode(&cache.join("memcheck")), 0o700);
}

// ---- item 8: signal dispositions --------------------------------------------------------------

/// Starts `c` with SIGHUP, SIGINT and SIGPIPE ignored and SIGUSR1 blocked, as `nohup`, a shell's
/// background job or a supervisor would.
fn with_inherited_dispositions(c: &mut Command) -> &mut Command {
    // SAFETY: signal and sigprocmask are async-signal-safe; nothing is allocated.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

#[test]
fn the_program_starts_with_the_dispositions_it_inherits_natively() {
    let prog = compile("dispositions.c", &[]);
    let native = run_cmd(with_inherited_dispositions(&mut Command::new(&prog)));
    assert!(native.stdout().contains("1:ign\n"), "{}", native.show());
    assert!(native.stdout().contains("2:ign\n"), "{}", native.show());
    assert!(native.stdout().contains("13:ign\n"), "{}", native.show());
    assert!(
        native.stdout().contains("10:dfl,blocked\n"),
        "{}",
        native.show()
    );
    let under = run_cmd(with_inherited_dispositions(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "--"])
            .arg(&prog),
    ));
    assert_eq!(under.code(), Some(0), "{}", under.show());
    assert_eq!(under.stdout(), native.stdout(), "{}", under.show());
    // And with nothing inherited, nothing is ignored or blocked.
    let plain = run_cmd(
        Command::new(memcheck())
            .args(["run", "--leak-check=no", "--"])
            .arg(&prog),
    );
    assert_eq!(plain.stdout(), run_cmd(&mut Command::new(&prog)).stdout());
}

#[test]
fn sigint_sent_to_memcheck_alone_reaches_the_program() {
    let prog = compile("sigint.c", &[]);
    let dir = scratch();
    let report = dir.path().join("report.json");
    let mut child = Command::new(memcheck())
        .args(["run", "--format=json", "--output"])
        .arg(&report)
        .arg("--")
        .arg(&prog)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: kill takes integers only.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(rest, "got SIGINT\n", "{err}");
    assert_eq!(o.status.code(), Some(3), "{err}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        json["processes"][0]["exit"],
        serde_json::json!({"code": 3}),
        "{json}"
    );
}

#[test]
fn terminating_signals_sent_to_memcheck_reach_the_program_and_the_report_is_written() {
    let prog = compile("sigint.c", &[]);
    for sig in [libc::SIGUSR1, libc::SIGTERM, libc::SIGALRM] {
        let dir = scratch();
        let report = dir.path().join("report.json");
        let mut child = Command::new(memcheck())
            .args(["run", "--format=json", "--output"])
            .arg(&report)
            .arg("--")
            .arg(&prog)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        // SAFETY: kill takes integers only.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // The program died of the signal's default action; memcheck lived to report it.
        assert_eq!(o.status.code(), Some(128 + sig), "signal {sig}: {err}");
        assert!(
            err.contains(&format!("killed by signal {sig}")),
            "signal {sig}: {err}"
        );
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(
            json["processes"][0]["exit"],
            serde_json::json!({ "signal": sig }),
            "{json}"
        );
    }
}

#[test]
fn ctrl_c_on_a_terminal_reaches_the_program_once() {
    use std::io::Write;
    let prog = compile("sigint.c", &[]);
    // script(1) runs memcheck on a pseudo-terminal; a ^C written to it makes the terminal signal
    // its foreground process group, memcheck and the program both. script runs the command with
    // $SHELL -c (or /bin/sh when SHELL is unset); `exec` keeps a shell that does not exec by
    // itself (dash) out of that group, where ^C would kill it and script would report 130.
    let cmd = format!(
        "exec {} run --leak-check=no -- {} count",
        memcheck().display(),
        prog.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is needed for this test");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        assert_ne!(out.read_line(&mut l).unwrap(), 0, "no ready line: {seen}");
        seen.push_str(&l);
        if l.contains("ready") {
            break;
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    std::io::Read::read_to_string(&mut out, &mut seen).unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(seen.contains("got 1 SIGINT"), "{seen}");
    assert_eq!(status.code(), Some(3), "{seen}");
}

#[test]
fn a_signal_the_program_sends_its_parent_is_not_bounced_back_to_it() {
    let prog = compile("sigint.c", &[]);
    let r = run_under(&[], &prog, &["parent"]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_eq!(r.stdout(), "still here\n", "{}", r.show());
    assert_eq!(
        r.process()["exit"],
        serde_json::json!({"code": 0}),
        "{}",
        r.show()
    );
}

// ---- item 10: processes that outlive the program ----------------------------------------------

/// Kills a daemon left by a test when the test ends, passed or not.
struct Reap(i32);
impl Drop for Reap {
    fn drop(&mut self) {
        // SAFETY: kill takes integers only.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn daemon_pid(stdout: &str) -> i32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("daemon "))
        .unwrap_or_else(|| panic!("no daemon line in {stdout:?}"))
        .parse()
        .unwrap()
}

#[test]
fn a_daemons_late_leak_is_in_the_report() {
    let prog = compile("daemon.c", &[]);
    let r = run_under(&["--error-exitcode=9"], &prog, &["leak"]);
    let daemon = daemon_pid(&r.stdout());
    let _reap = Reap(daemon);
    let leaks: Vec<&Value> = r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"] == daemon)
        .flat_map(|p| p["leaks"].as_array().unwrap())
        .filter(|l| l["kind"] == "definite")
        .collect();
    assert_eq!(leaks.len(), 1, "{}", r.show());
    assert_eq!(leaks[0]["bytes"], 33, "{}", r.show());
    assert!(
        has_frame(
            &leaks[0]["stack"],
            "leak33",
            "daemon.c",
            Some(line_of("daemon.c", "DAEMON-LEAK"))
        ),
        "{}",
        r.show()
    );
    // The late process's leak counts for --error-exitcode.
    assert_eq!(r.code(), Some(9), "{}", r.show());
}

#[test]
fn a_program_execd_without_the_library_is_not_waited_for() {
    let prog = compile("daemon.c", &[]);
    let r = run_under(&[], &prog, &["exec"]);
    let daemon = daemon_pid(&r.stdout());
    let _reap = Reap(daemon);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    // memcheck has finished while the daemon (now plain `sleep 30`) still runs.
    let cmdline = std::fs::read(format!("/proc/{daemon}/cmdline")).unwrap_or_default();
    assert!(
        cmdline.starts_with(b"sleep\x0030"),
        "{:?}\n{}",
        String::from_utf8_lossy(&cmdline),
        r.show()
    );
    assert!(!r.stderr().contains("waiting for"), "{}", r.show());
}

#[test]
fn ctrl_c_stops_the_wait_and_the_report_names_the_missing_process() {
    let prog = compile("daemon.c", &[]);
    let dir = scratch();
    let report = dir.path().join("report.json");
    let mut child = Command::new(memcheck())
        .args(["run", "--format=json", "--output"])
        .arg(&report)
        .arg("--")
        .arg(&prog)
        .arg("hang")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // memcheck keeps its stdout open while it waits: read the one line, not to the end.
    let mut out = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    let daemon = daemon_pid(&out);
    let _reap = Reap(daemon);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            panic!("memcheck ended without waiting for the daemon:\n{seen}");
        }
        seen.push_str(&l);
        if l.contains("waiting for pid") {
            assert!(
                l.contains(&daemon.to_string()) && l.contains("Ctrl-C"),
                "{l}"
            );
            break;
        }
    }
    // SAFETY: kill takes integers only.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    std::io::Read::read_to_string(&mut err, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    let note = format!("pid {daemon} was still running: its report is missing");
    assert!(seen.contains(&note), "{seen}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let p = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == daemon)
        .unwrap_or_else(|| panic!("{json}"));
    assert!(
        p["notes"].as_array().unwrap().iter().any(|n| n == &note),
        "{json}"
    );
    assert_eq!(p["incomplete"], true, "{json}");
    // The daemon itself was left running, not killed.
    assert!(Path::new(&format!("/proc/{daemon}")).exists());
}

// ---- item 12: run directories left behind -----------------------------------------------------

/// Field 22 of /proc/PID/stat.
fn start_time(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// The inode of /proc/self/ns/pid.
fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").unwrap().ino()
}

/// A pid that no process has now.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

struct Dirs {
    stale: PathBuf,
    reused: PathBuf,
    live: PathBuf,
    legacy: PathBuf,
    foreign: PathBuf,
    link: PathBuf,
    linked: PathBuf,
}

/// A temporary directory holding: a run directory whose memcheck is dead, one whose pid is alive
/// but started at another time (a reused pid), a live one (this test process), one without a
/// creator, one made in another pid namespace, and a symbolic link named like a dead run's
/// directory.
fn plant_run_dirs(tmp: &Path) -> Dirs {
    let me = std::process::id();
    let dead = dead_pid();
    let ns = pid_namespace();
    let mk = |name: String| {
        let p = tmp.join(name);
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("1-2.mcr"), b"x").unwrap();
        p
    };
    let linked = tmp.join("not-a-run");
    std::fs::create_dir(&linked).unwrap();
    std::fs::write(linked.join("keep"), b"x").unwrap();
    let link = tmp.join(format!("memcheck-{dead}-1-{ns}-link00"));
    std::os::unix::fs::symlink(&linked, &link).unwrap();
    Dirs {
        stale: mk(format!("memcheck-{dead}-1-{ns}-abcdef")),
        reused: mk(format!("memcheck-{me}-{}-{ns}-abcdef", start_time(me) + 1)),
        live: mk(format!("memcheck-{me}-{}-{ns}-abcdef", start_time(me))),
        legacy: mk("memcheck-Xy12Zq".into()),
        foreign: mk(format!("memcheck-{dead}-1-{}-abcdef", ns + 1)),
        link,
        linked,
    }
}

fn assert_only_live_kept(d: &Dirs, log: &str) {
    assert!(!d.stale.exists(), "{log}");
    assert!(!d.reused.exists(), "{log}");
    assert!(d.live.join("1-2.mcr").exists(), "{log}");
    assert!(d.legacy.exists(), "{log}");
    assert!(d.foreign.exists(), "{log}");
    assert!(d.link.symlink_metadata().is_ok(), "{log}");
    assert!(d.linked.join("keep").exists(), "{log}");
}

#[test]
fn the_next_run_removes_stale_run_directories_and_keeps_live_ones() {
    let prog = compile("dispositions.c", &[]);
    let tmp = scratch();
    let d = plant_run_dirs(tmp.path());
    let r = run_env(&[("TMPDIR", tmp.path())], &[], &prog, &[]);
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_only_live_kept(&d, &r.show());
    // The run's own directory is gone too.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 5, "{left:?}");
}

#[test]
fn memcheck_clean_removes_stale_run_directories_and_says_so() {
    let tmp = scratch();
    let d = plant_run_dirs(tmp.path());
    let r = run_cmd(
        Command::new(memcheck())
            .arg("clean")
            .env("TMPDIR", tmp.path()),
    );
    assert_eq!(r.code(), Some(0), "{}", r.show());
    assert_only_live_kept(&d, &r.show());
    let out = r.stdout();
    assert!(
        out.contains(&format!("removed {}", d.stale.display())),
        "{}",
        r.show()
    );
    assert!(
        out.contains(&format!("removed {}", d.reused.display())),
        "{}",
        r.show()
    );
    assert!(
        out.contains(&format!("kept {}", d.legacy.display())),
        "{}",
        r.show()
    );
    assert!(
        out.contains(&format!(
            "kept {}: made in another pid namespace",
            d.foreign.display()
        )),
        "{}",
        r.show()
    );
    assert!(!out.contains(&d.live.display().to_string()), "{}", r.show());
    let r = run_cmd(
        Command::new(memcheck())
            .arg("clean")
            .env("TMPDIR", tmp.path()),
    );
    assert!(
        r.stdout().contains("no stale run directories"),
        "{}",
        r.show()
    );
}
