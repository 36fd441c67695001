//! Integration tests of `memcheck maps`, `residency` and `overcommit`: small C programs compiled
//! at test time, the built memcheck run with `--format json`, and every answer checked against the
//! kernel's own files (/proc/PID/smaps, stat, status, limits, oom_score, /proc/meminfo, sysctls).
//! A failing check prints the command, its status, stdout and stderr.
mod common;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;

use common::Run;

fn memcheck_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memcheck"));
    c.args(args).env_remove("NO_COLOR").stdin(Stdio::null());
    c
}

fn output(c: Command) -> Run {
    common::output_retrying(c)
}

fn memcheck(args: &[&str]) -> Run {
    output(memcheck_cmd(args))
}

/// A scratch directory on the target directory's disk (not tmpfs, whose pages cannot be evicted).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// The running target and the addresses it printed.
struct Target {
    child: Child,
    exe: PathBuf,
    pid: i32,
    tid: i32,
    thread_local: u64,
    thread_malloc: u64,
    main_local: u64,
    heap_block: u64,
    data: u64,
    bss: u64,
    mmapped: u64,
    text: u64,
    brk: u64,
    _dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: under memcheck it is passed on to the program and memcheck
        // removes its run directory before it exits.
        // SAFETY: kill takes integers only.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

fn start_target(args: &[&str], under_memcheck: bool) -> Target {
    // A copy per target: the pages of a file only this process maps are private (dirty ones are
    // Private_Dirty), as the kernel comparison below assumes.
    let dir = scratch();
    let exe = dir.path().join("regions");
    std::fs::copy(common::compile("regions.c", &["-O0"]), &exe).unwrap();
    let exe = std::fs::canonicalize(exe).unwrap();
    let mut cmd = if under_memcheck {
        let mut c = Command::new(env!("CARGO_BIN_EXE_memcheck"));
        c.args(["run", "--leak-check=no", "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = |what: &str| -> Vec<String> {
        let l = lines
            .next()
            .unwrap_or_else(|| panic!("the target exited before printing its {what} line"))
            .unwrap();
        l.split_whitespace().map(str::to_string).collect()
    };
    let t = next("thread");
    let m = next("main");
    assert_eq!((t[0].as_str(), m[0].as_str()), ("thread", "main"));
    Target {
        pid: m[1].parse().unwrap(),
        tid: t[1].parse().unwrap(),
        thread_local: hex(&t[2]),
        thread_malloc: hex(&t[3]),
        main_local: hex(&m[2]),
        heap_block: hex(&m[3]),
        data: hex(&m[4]),
        bss: hex(&m[5]),
        mmapped: hex(&m[6]),
        text: hex(&m[7]),
        brk: hex(&m[8]),
        child,
        exe,
        _dir: dir,
    }
}

/// One entry of /proc/PID/smaps as the kernel prints it.
#[derive(Debug)]
struct KernelRegion {
    start: u64,
    end: u64,
    perms: String,
    fields: std::collections::HashMap<String, u64>,
    flags: Vec<String>,
}

fn kernel_smaps(pid: i32) -> Vec<KernelRegion> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut out: Vec<KernelRegion> = Vec::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((s, e)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            out.push(KernelRegion {
                start: hex(s),
                end: hex(e),
                perms: line.split_whitespace().nth(1).unwrap().to_string(),
                fields: Default::default(),
                flags: vec![],
            });
        } else if let Some(rest) = line.strip_prefix("VmFlags:") {
            out.last_mut().unwrap().flags = rest.split_whitespace().map(str::to_string).collect();
        } else if let Some((k, v)) = line.split_once(':') {
            if let Ok(n) = v.trim().trim_end_matches(" kB").trim().parse() {
                out.last_mut().unwrap().fields.insert(k.to_string(), n);
            }
        }
    }
    out
}

fn region_at(report: &Value, addr: u64) -> &Value {
    report["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            hex(r["start"].as_str().unwrap()) <= addr && addr < hex(r["end"].as_str().unwrap())
        })
        .unwrap_or_else(|| panic!("no region holds {addr:#x}"))
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: i32, n: usize) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(n - 3).unwrap().parse().unwrap()
}

fn status_kb(pid: i32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn maps_finds_and_attributes_every_kind_of_region() {
    let t = start_target(&[], false);
    let run = memcheck(&["maps", &t.pid.to_string(), "--format", "json"]);
    let r = run.stdout_json();
    let ctx = run.show();
    let exe = t.exe.to_str().unwrap();

    // The same regions as the kernel's smaps, with the same counters.
    let kernel = kernel_smaps(t.pid);
    let regions = r["regions"].as_array().unwrap();
    assert_eq!(regions.len(), kernel.len(), "{ctx}");
    for (ours, k) in regions.iter().zip(&kernel) {
        assert_eq!(hex(ours["start"].as_str().unwrap()), k.start, "{ctx}");
        assert_eq!(hex(ours["end"].as_str().unwrap()), k.end);
        assert_eq!(ours["perms"], k.perms.as_str());
        assert_eq!(ours["size_kb"], k.fields["Size"]);
        for (field, key) in [
            ("rss_kb", "Rss"),
            ("swap_kb", "Swap"),
            ("anonymous_kb", "Anonymous"),
            ("private_dirty_kb", "Private_Dirty"),
        ] {
            assert_eq!(ours[field], k.fields[key], "{field} of {ours}");
        }
        // PSS of shared pages moves whenever another process maps the same file (memcheck
        // itself maps libc), so it is compared only where nothing is shared.
        if k.fields["Shared_Clean"] + k.fields["Shared_Dirty"] == 0 {
            assert_eq!(ours["pss_kb"], k.fields["Pss"], "pss_kb of {ours}");
        }
        let dirty = k.fields["Shared_Dirty"] + k.fields["Private_Dirty"];
        assert_eq!(ours["dirty_kb"], dirty);
        assert_eq!(ours["accountable"], k.flags.iter().any(|f| f == "ac"));
    }

    // Heap: start_brk is field 47 of stat; the break is the program's sbrk(0), page-rounded.
    assert_eq!(
        hex(r["heap"]["start"].as_str().unwrap()),
        stat_field(t.pid, 47),
        "{ctx}"
    );
    assert_eq!(
        hex(r["heap"]["brk"].as_str().unwrap()),
        t.brk.div_ceil(PAGE) * PAGE
    );
    let heap = region_at(&r, t.heap_block);
    assert_eq!(
        (heap["kind"].as_str(), heap["name"].as_str()),
        (Some("heap"), Some("[heap]"))
    );

    assert_eq!(region_at(&r, t.main_local)["kind"], "stack");

    let text = region_at(&r, t.text);
    assert_eq!(text["kind"], "text", "{text}");
    assert_eq!(text["path"], exe);
    assert!(strs(&text["sections"]).contains(&".text"), "{text}");

    let data = region_at(&r, t.data);
    assert_eq!(data["kind"], "data", "{data}");
    assert!(strs(&data["sections"]).contains(&".data"), "{data}");

    let bss = region_at(&r, t.bss);
    assert_eq!(bss["kind"], "bss", "{bss}");
    assert_eq!(strs(&bss["sections"]), [".bss"]);
    assert_eq!(bss["path"], exe);
    assert_eq!(
        bss["name"],
        Value::Null,
        "the kernel shows the bss tail as anonymous"
    );

    let tstack = region_at(&r, t.thread_local);
    assert_eq!(tstack["kind"], "thread-stack", "{tstack}");
    assert_eq!(tstack["tid"], t.tid);
    let below = region_at(&r, hex(tstack["start"].as_str().unwrap()) - 1);
    assert_eq!(
        (below["kind"].as_str(), below["perms"].as_str()),
        (Some("guard"), Some("---p"))
    );

    let arena = region_at(&r, t.thread_malloc);
    assert_eq!(arena["kind"], "malloc-arena", "{arena}");
    assert_eq!(hex(arena["start"].as_str().unwrap()) % (64 << 20), 0);

    let anon = region_at(&r, t.mmapped);
    assert_eq!(
        (anon["kind"].as_str(), anon["size_kb"].as_u64()),
        (Some("anon"), Some(8192))
    );
    assert_eq!(anon["rss_kb"], 4096);

    // Shared libraries are attributed too.
    assert!(regions.iter().any(|x| x["kind"] == "text"
        && x["path"].as_str().is_some_and(|p| p.contains("libc.so"))
        && strs(&x["sections"]).contains(&".text")));
    assert!(regions.iter().any(|x| x["kind"] == "vdso"));

    // Totals by kind add up to the regions, and the whole to the kernel's smaps_rollup.
    let mut by_kind = std::collections::HashMap::<String, u64>::new();
    for x in regions {
        *by_kind
            .entry(x["kind"].as_str().unwrap().into())
            .or_default() += x["rss_kb"].as_u64().unwrap();
    }
    let totals = r["totals"].as_object().unwrap();
    assert_eq!(totals.len(), by_kind.len());
    for (k, rss) in &by_kind {
        assert_eq!(totals[k]["rss_kb"], *rss, "totals of {k}");
    }
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", t.pid)).unwrap();
    let rss: u64 = rollup
        .lines()
        .find(|l| l.starts_with("Rss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r["total"]["rss_kb"], rss, "{ctx}");
    assert_eq!(r["total"]["regions"], regions.len());
    assert_eq!(r["threads"], 2);
}

#[test]
fn maps_sorts_filters_and_writes_text_or_files() {
    let t = start_target(&[], false);
    let pid = t.pid.to_string();
    let run = memcheck(&[
        "maps",
        &pid,
        "--format",
        "json",
        "--kind",
        "heap,thread-stack",
        "--kind",
        "bss",
        "--sort",
        "size",
    ]);
    let r = run.stdout_json();
    let regions = r["regions"].as_array().unwrap();
    let kinds: std::collections::BTreeSet<&str> = regions
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["bss", "heap", "thread-stack"],
        "{}",
        run.show()
    );
    let sizes: Vec<u64> = regions
        .iter()
        .map(|x| x["size_kb"].as_u64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    let keys: Vec<&String> = r["totals"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["bss", "heap", "thread-stack"]);

    let r = memcheck(&["maps", &pid, "--format", "json", "--sort", "rss"]).stdout_json();
    let rss: Vec<u64> = r["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["rss_kb"].as_u64().unwrap())
        .collect();
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "{rss:?}");

    // Text on a pipe: no colour, one line per region plus headers and totals.
    let run = memcheck(&["maps", &pid]);
    assert_eq!(run.code(), Some(0), "{}", run.show());
    assert!(!run.stdout().contains('\x1b'), "{}", run.show());
    assert!(
        run.stdout().contains("thread-stack") && run.stdout().contains("malloc-arena"),
        "{}",
        run.show()
    );
    assert!(
        run.stdout().lines().any(|l| l.starts_with("total ")),
        "{}",
        run.show()
    );

    let dir = scratch();
    let file = dir.path().join("maps.json");
    let run = memcheck(&[
        "maps",
        &pid,
        "--format",
        "json",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        (run.code(), run.stdout().as_str()),
        (Some(0), ""),
        "{}",
        run.show()
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(r["pid"], t.pid);
}

#[test]
fn maps_shows_memchecks_own_regions_in_a_checked_program() {
    let t = start_target(&[], true);
    let r = memcheck(&[
        "maps",
        &t.pid.to_string(),
        "--format",
        "json",
        "--kind",
        "memcheck",
    ])
    .stdout_json();
    let regions = r["regions"].as_array().unwrap();
    let kernel = std::fs::read_to_string(format!("/proc/{}/maps", t.pid)).unwrap();
    let named = kernel
        .lines()
        .filter(|l| l.ends_with("[anon:memcheck]"))
        .count();
    // Naming anonymous memory needs a kernel built with CONFIG_ANON_VMA_NAME (5.17+); without it
    // the shim's regions are plain anonymous memory and none may be reported as memcheck's.
    if kernel_names_anonymous_memory() {
        assert!(
            named > 0,
            "the shim names its memory [anon:memcheck]:\n{kernel}"
        );
    }
    assert_eq!(regions.len(), named, "{r}");
    assert!(regions.iter().all(|x| x["name"] == "[anon:memcheck]"));
}

/// Whether this kernel lets a process name its anonymous memory (PR_SET_VMA_ANON_NAME).
fn kernel_names_anonymous_memory() -> bool {
    let probe = common::compile("vma_name.c", &["-O0"]);
    Command::new(probe).status().unwrap().success()
}

/// memcheck running as user and group `nobody`, when we are root (`None` otherwise). It runs from
/// a copy in a world-readable directory, since the build directory may sit under a private home.
fn memcheck_as_nobody() -> Option<(Command, tempfile::TempDir)> {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("memcheck");
    std::fs::copy(env!("CARGO_BIN_EXE_memcheck"), &exe).unwrap();
    let mut c = Command::new(&exe);
    c.env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .current_dir(dir.path());
    // SAFETY: between fork and exec the closure only calls setgroups, setgid and setuid, which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Some((c, dir))
}

fn one_error_line(run: &Run, want: &str) {
    assert_eq!(run.code(), Some(1), "{}", run.show());
    let stderr = run.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.show());
    assert!(lines[0].starts_with("memcheck: error: "), "{}", run.show());
    assert!(lines[0].contains(want), "want {want:?}\n{}", run.show());
}

fn gone_pid() -> String {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid.to_string()
}

#[test]
fn missing_pids_and_permission_errors_give_one_line() {
    let pid = gone_pid();
    for args in [
        vec!["maps", &pid],
        vec!["residency", "--pid", &pid],
        vec!["overcommit", "--pid", &pid],
    ] {
        one_error_line(&memcheck(&args), &format!("no process with pid {pid}"));
    }

    // Another user's process: ours when we are root (memcheck then runs as nobody), else init.
    let t = start_target(&[], false);
    for args in [["maps", ""], ["residency", "--pid"]] {
        let (c, _copy) = match memcheck_as_nobody() {
            Some((mut c, copy)) => {
                c.args(args.iter().filter(|a| !a.is_empty()))
                    .arg(t.pid.to_string());
                (c, Some(copy))
            }
            None => {
                let mut c = memcheck_cmd(&args[..1]);
                c.args(args[1..].iter().filter(|a| !a.is_empty())).arg("1");
                (c, None)
            }
        };
        one_error_line(&output(c), "permission denied");
    }
}

fn write_file(path: &Path, len: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&vec![0x5a; len]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_file_read_into_the_cache_is_resident_and_evict_drops_it() {
    let dir = scratch();
    let path = dir.path().join("data.bin");
    let len = (1 << 20) + 100;
    write_file(&path, len);
    std::fs::read(&path).unwrap();
    let p = path.to_str().unwrap();
    let pages = (len as u64).div_ceil(PAGE);

    let r = memcheck(&["residency", p, "--format", "json"]).stdout_json();
    let f = &r["files"][0];
    assert_eq!(f["path"], p);
    assert_eq!(
        (f["size_bytes"].as_u64(), f["pages"].as_u64()),
        (Some(len as u64), Some(pages))
    );
    assert_eq!(f["resident_pages"], pages, "{r}");
    assert_eq!(f["resident_percent"], 100.0);
    assert_eq!(f["map"].as_str().unwrap().len(), 60);
    assert!(f["map"].as_str().unwrap().chars().all(|c| c == 'O'));

    let r = memcheck(&["residency", "--evict", p, "--format", "json"]).stdout_json();
    assert_eq!(r["action"], "evict");
    assert_eq!(r["files"][0]["resident_pages_before"], pages);
    assert_eq!(r["files"][0]["resident_pages"], 0, "{r}");
    // A second look without acting agrees: the pages are really gone.
    let r = memcheck(&["residency", p, "--format", "json"]).stdout_json();
    assert_eq!(r["files"][0]["resident_pages"], 0, "{r}");

    let r = memcheck(&["residency", "--touch", p, "--format", "json"]).stdout_json();
    assert_eq!(r["files"][0]["resident_pages_before"], 0);
    assert_eq!(r["files"][0]["resident_pages"], pages, "{r}");
    assert_eq!(r["total"]["resident_pages"], pages);

    let run = memcheck(&["residency", p]);
    assert!(
        run.stdout().contains("100.0%") && run.stdout().contains(p),
        "{}",
        run.show()
    );
}

#[test]
fn directories_are_walked_once_per_file() {
    let dir = scratch();
    let d = dir.path();
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    write_file(&d.join("one"), 10_000);
    write_file(&d.join("a/two"), 3 * PAGE as usize);
    write_file(&d.join("a/b/three"), 1);
    std::fs::hard_link(d.join("one"), d.join("a/one-again")).unwrap();
    std::os::unix::fs::symlink("/usr/lib", d.join("a/lib")).unwrap();
    std::fs::write(d.join("empty"), "").unwrap();
    let r = memcheck(&["residency", d.to_str().unwrap(), "--format", "json"]).stdout_json();
    let mut names: Vec<String> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .strip_prefix(d.to_str().unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    // Depth first in name order, so the hard link under a/ is met first and "one" is skipped.
    assert_eq!(
        names,
        ["/a/b/three", "/a/one-again", "/a/two", "/empty"],
        "{r}"
    );
    assert_eq!(r["total"]["files"], 4);
    assert_eq!(r["total"]["pages"], 3 + 3 + 1);
}

#[test]
fn unreadable_and_missing_files_give_one_line_each() {
    let dir = scratch();
    let secret = dir.path().join("secret");
    write_file(&secret, 100);
    let s = secret.to_str().unwrap();
    use std::os::unix::fs::PermissionsExt;
    // As root, memcheck runs as nobody and the file is root's alone; otherwise the file is mode 0.
    let (mut c, _copy) = match memcheck_as_nobody() {
        Some((c, copy)) => {
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
            (c, Some(copy))
        }
        None => {
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
            (memcheck_cmd(&[]), None)
        }
    };
    c.args(["residency", s]);
    one_error_line(&output(c), &format!("{s}: permission denied"));

    let missing = dir.path().join("missing");
    let m = missing.to_str().unwrap();
    let readable = dir.path().join("readable");
    write_file(&readable, 100);
    let run = memcheck(&[
        "residency",
        m,
        readable.to_str().unwrap(),
        "--format",
        "json",
    ]);
    one_error_line(&run, &format!("{m}: no such file or directory"));
    let r: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        r["files"].as_array().unwrap().len(),
        1,
        "the readable file is still reported"
    );
    assert_eq!(r["errors"][0]["path"], m);
}

#[test]
fn residency_of_a_process_matches_its_smaps() {
    let t = start_target(&[], false);
    let run = memcheck(&["residency", "--pid", &t.pid.to_string(), "--format", "json"]);
    let r = run.stdout_json();
    let m = region_at(&r, t.mmapped);
    assert_eq!(m["pages"], 2048, "{}", run.show());
    assert_eq!(m["resident_pages"], 1024);
    assert_eq!(m["not_present_pages"], 1024);
    assert_eq!(m["swapped_pages"], 0);
    let map = m["map"].as_str().unwrap();
    assert_eq!(map, format!("{}{}", "O".repeat(30), ".".repeat(30)));
    // Every region: present pages are what the kernel counts as Rss.
    let kernel = kernel_smaps(t.pid);
    let regions = r["regions"].as_array().unwrap();
    assert_eq!(regions.len(), kernel.len());
    for (ours, k) in regions.iter().zip(&kernel) {
        assert_eq!(hex(ours["start"].as_str().unwrap()), k.start);
        assert_eq!(
            ours["resident_pages"].as_u64().unwrap() * PAGE / 1024,
            k.fields["Rss"],
            "{ours}"
        );
        assert_eq!(
            ours["swapped_pages"].as_u64().unwrap() * PAGE / 1024,
            k.fields["Swap"],
            "{ours}"
        );
        assert_eq!(ours["pages"].as_u64().unwrap() * PAGE, k.end - k.start);
    }
}

/// Sends SIGTERM to `pid`.
fn terminate(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
}

#[test]
fn lock_holds_the_pages_until_interrupted() {
    let dir = scratch();
    let path = dir.path().join("locked.bin");
    let len = 2 << 20;
    write_file(&path, len);
    let mut c = memcheck_cmd(&[
        "residency",
        "--lock",
        path.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let cmd = format!("{c:?}");
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let locked = loop {
        let l = status_kb(child.id() as i32, "VmLck:");
        if l >= (len / 1024) as u64 || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    terminate(child.id());
    let out = child.wait_with_output().unwrap();
    let run = Run {
        cmd,
        out,
        json: None,
    };
    assert_eq!(
        locked,
        (len / 1024) as u64,
        "VmLck while holding\n{}",
        run.show()
    );
    let r = run.stdout_json();
    assert_eq!(r["action"], "lock");
    assert_eq!(r["total"]["locked_bytes"], len);
    assert_eq!(r["files"][0]["resident_pages"], len as u64 / PAGE);
}

#[test]
fn a_refused_lock_explains_the_limit_and_the_capability() {
    let dir = scratch();
    let path = dir.path().join("big.bin");
    write_file(&path, 1 << 20);
    let mut c = memcheck_cmd(&["residency", "--lock", path.to_str().unwrap()]);
    // SAFETY: between fork and exec only prctl and setrlimit run; both are async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            // Without CAP_IPC_LOCK (dropped from the bounding set, so exec does not grant it to
            // root) and with RLIMIT_MEMLOCK at 0, mlock must fail. Non-root has no such cap.
            const CAP_IPC_LOCK: libc::c_ulong = 14;
            libc::prctl(libc::PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0);
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = output(c);
    one_error_line(&run, "cannot lock");
    assert!(
        run.stderr().contains("RLIMIT_MEMLOCK") && run.stderr().contains("CAP_IPC_LOCK"),
        "{}",
        run.show()
    );
    assert!(
        run.stderr().contains("soft 0 B, hard 0 B"),
        "{}",
        run.show()
    );
}

fn sysctl(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/vm/{name}"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn meminfo_kb(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn overcommit_fields_equal_the_kernels() {
    // Committed_AS moves with every process on the machine: the value memcheck reports must lie
    // between the kernel's just before and just after (give or take memcheck itself, 64 MiB).
    // A process that starts and exits in between can swing it, so a few tries are allowed.
    let mut tries = 0;
    let (run, before, after) = loop {
        let before = meminfo_kb("Committed_AS");
        let run = memcheck(&["overcommit", "--format", "json"]);
        let after = meminfo_kb("Committed_AS");
        let got = run.stdout_json()["committed_as_kb"].as_u64().unwrap();
        let inside = got + (64 << 10) >= before.min(after) && got <= before.max(after) + (64 << 10);
        tries += 1;
        if inside || tries == 5 {
            break (run, before, after);
        }
    };
    let r = run.stdout_json();
    let ctx = run.show();
    assert_eq!(r["mode"], sysctl("overcommit_memory"), "{ctx}");
    assert_eq!(r["ratio"], sysctl("overcommit_ratio"));
    assert_eq!(r["kbytes"], sysctl("overcommit_kbytes"));
    assert_eq!(r["max_map_count"], sysctl("max_map_count"));
    assert_eq!(r["admin_reserve_kb"], sysctl("admin_reserve_kbytes"));
    assert_eq!(r["commit_limit_kb"], meminfo_kb("CommitLimit"));
    assert_eq!(r["mem_total_kb"], meminfo_kb("MemTotal"));
    assert_eq!(r["swap_total_kb"], meminfo_kb("SwapTotal"));
    // The formula reproduces the kernel's CommitLimit exactly.
    assert_eq!(r["commit_limit_computed_kb"], r["commit_limit_kb"], "{ctx}");
    let got = r["committed_as_kb"].as_u64().unwrap();
    let (lo, hi) = (before.min(after), before.max(after));
    assert!(
        got + (64 << 10) >= lo && got <= hi + (64 << 10),
        "{got} vs {before}..{after}\n{ctx}"
    );
    assert_eq!(
        r["headroom_kb"],
        r["commit_limit_kb"].as_i64().unwrap() - got as i64
    );
    let name = ["heuristic", "always", "never"][sysctl("overcommit_memory") as usize];
    assert_eq!(r["mode_name"], name);
    assert_eq!(r["check"], Value::Null);

    let run = memcheck(&["overcommit"]);
    assert!(
        run.stdout().contains("vm.overcommit_memory") && run.stdout().contains("CommitLimit"),
        "{}",
        run.show()
    );
}

/// The JSON of `overcommit --check`, after checking its status: 0 if the allocation would
/// succeed, 1 if not.
fn check_json(run: &Run, succeeds: bool) -> Value {
    assert_eq!(
        run.code(),
        Some(if succeeds { 0 } else { 1 }),
        "{}",
        run.show()
    );
    let v: Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("bad JSON ({e})\n{}", run.show()));
    assert_eq!(v["check"]["succeeded"], succeeds, "{}", run.show());
    v
}

#[test]
fn check_agrees_with_a_real_allocation() {
    let alloc = common::compile("alloc.c", &["-O0"]);
    let ram = meminfo_kb("MemTotal") * 1024;
    let swap = meminfo_kb("SwapTotal") * 1024;
    for size in [64 << 20, ram / 2, ram + swap + (1 << 30), 2 * (ram + swap)] {
        let s = size.to_string();
        let run = memcheck(&["overcommit", "--check", &s, "--format", "json"]);
        let real = Command::new(&alloc).arg(&s).output().unwrap();
        let real_ok = real.status.success();
        // The status says what the report says: 1 when the allocation would fail.
        let r = check_json(&run, real_ok);
        assert_eq!(
            String::from_utf8_lossy(&real.stdout),
            format!(
                "malloc({size}): {}\n",
                if real_ok {
                    "returned a block"
                } else {
                    "returned NULL"
                }
            ),
            "alloc.c's line agrees with its status"
        );
        let c = &r["check"];
        assert_eq!(c["size_bytes"], size);
        assert_eq!(
            c["succeeded"],
            real_ok,
            "size {size}: malloc said {:?}\n{}",
            real.status,
            run.show()
        );
        assert_eq!(
            c["predicted"],
            real_ok,
            "the formula of mode {} for {size}\n{}",
            r["mode"],
            run.show()
        );
        assert_eq!(c["error"].is_null(), real_ok);
        assert!(!c["explanation"].as_str().unwrap().is_empty());
    }
    // Suffixes, and a size no 47-bit address space holds.
    let r = check_json(
        &memcheck(&["overcommit", "--check", "1024T", "--format", "json"]),
        false,
    );
    assert_eq!(r["check"]["size_bytes"], 1u64 << 50);
    assert_eq!(r["check"]["succeeded"], false);
    assert!(
        r["check"]["error"].as_str().unwrap().starts_with("ENOMEM"),
        "{r}"
    );
    let run = memcheck(&["overcommit", "--check", "12Q"]);
    assert_eq!(run.code(), Some(2), "{}", run.show());
}

/// Sets RLIMIT_AS to `bytes` in the child before it runs.
fn limit_address_space(c: &mut Command, bytes: u64) {
    // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            let l = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn check_agrees_with_a_real_allocation_under_rlimit_as() {
    let alloc = common::compile("alloc.c", &["-O0"]);
    // 1 GiB of address space: 256 MiB fits beside memcheck or the C program, 2 GiB does not,
    // whatever the overcommit mode.
    for (size, fits) in [(256u64 << 20, true), (2 << 30, false)] {
        let s = size.to_string();
        let mut c = memcheck_cmd(&["overcommit", "--check", &s, "--format", "json"]);
        limit_address_space(&mut c, 1 << 30);
        let run = output(c);
        let r = check_json(&run, fits);
        let mut real = Command::new(&alloc);
        real.arg(&s);
        limit_address_space(&mut real, 1 << 30);
        let real_ok = real.status().unwrap().success();
        assert_eq!(real_ok, fits, "malloc({size}) under a 1 GiB RLIMIT_AS");
        let c = &r["check"];
        assert_eq!(c["succeeded"], real_ok, "{}", run.show());
        assert_eq!(c["predicted"], real_ok, "{}", run.show());
        if !fits {
            assert!(
                c["explanation"].as_str().unwrap().contains("RLIMIT_AS"),
                "{}",
                run.show()
            );
        }
    }
}

fn limits_line(pid: i32, name: &str) -> (Value, Value) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = s.lines().find(|l| l.starts_with(name)).unwrap();
    let f: Vec<&str> = line[name.len()..].split_whitespace().collect();
    let v = |x: &str| {
        if x == "unlimited" {
            Value::Null
        } else {
            Value::from(x.parse::<u64>().unwrap())
        }
    };
    (v(f[0]), v(f[1]))
}

#[test]
fn pid_and_oom_views_match_proc() {
    let t = start_target(&["oom"], false);
    let run = memcheck(&[
        "overcommit",
        "--pid",
        &t.pid.to_string(),
        "--oom",
        "--top",
        "5",
        "--format",
        "json",
    ]);
    let r = run.stdout_json();
    let ctx = run.show();
    let p = &r["process"];
    let file = |f: &str| -> i64 {
        std::fs::read_to_string(format!("/proc/{}/{f}", t.pid))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(p["pid"], t.pid);
    assert_eq!(p["oom_score_adj"], 1000, "{ctx}");
    assert_eq!(p["oom_score"], file("oom_score"));
    assert_eq!(p["vm_size_kb"], status_kb(t.pid, "VmSize:"));
    assert_eq!(p["vm_rss_kb"], status_kb(t.pid, "VmRSS:"));
    let commit: u64 = kernel_smaps(t.pid)
        .iter()
        .filter(|k| k.flags.iter().any(|f| f == "ac"))
        .map(|k| k.fields["Size"])
        .sum();
    assert_eq!(p["commit_kb"], commit, "{ctx}");
    let (soft, hard) = limits_line(t.pid, "Max address space");
    assert_eq!(
        (&p["rlimit_as"]["soft"], &p["rlimit_as"]["hard"]),
        (&soft, &hard)
    );
    let (soft, hard) = limits_line(t.pid, "Max locked memory");
    assert_eq!(
        (&p["rlimit_memlock"]["soft"], &p["rlimit_memlock"]["hard"]),
        (&soft, &hard)
    );

    // The OOM list: highest score first, and our adj-1000 program scores above everything normal.
    let oom = r["oom"].as_array().unwrap();
    assert!(!oom.is_empty() && oom.len() <= 5, "{ctx}");
    let scores: Vec<u64> = oom
        .iter()
        .map(|o| o["oom_score"].as_u64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let ours = oom
        .iter()
        .find(|o| o["pid"] == t.pid)
        .unwrap_or_else(|| panic!("target not listed\n{ctx}"));
    assert_eq!(ours["oom_score"], file("oom_score"));
    assert_eq!(oom[0]["oom_score"], ours["oom_score"]);
    assert!(oom
        .iter()
        .all(|o| o["oom_score_adj"] != -1000 && o["pid"] != 1));
}

#[test]
fn a_check_of_zero_bytes_is_a_usage_error() {
    let run = memcheck(&["overcommit", "--check", "0"]);
    assert_eq!(run.code(), Some(2), "{}", run.show());
    assert!(
        run.stderr()
            .starts_with("memcheck: error: --check needs a size above 0"),
        "{}",
        run.show()
    );
}

/// A limit file as memcheck reports it: `max` (v2) or v1's unlimited value is null.
fn limit_value(text: &str) -> Value {
    let t = text.trim();
    match t.parse::<u64>() {
        Ok(v) if v < 1 << 62 => Value::from(v),
        Ok(_) => Value::Null,
        Err(_) => {
            assert_eq!(t, "max");
            Value::Null
        }
    }
}

fn keyed_value(text: &str, key: &str) -> Value {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(' ')?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(Value::from)
        .unwrap_or(Value::Null)
}

#[test]
fn overcommit_shows_the_cgroup_limits_the_kernel_has() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    let run = memcheck(&["overcommit", "--pid", &pid.to_string(), "--format", "json"]);
    let text = memcheck(&["overcommit", "--pid", &pid.to_string()]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let in_dir = |dir: &Path| {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .any(|l| l == pid.to_string())
    };
    let r = run.stdout_json();
    let c = &r["process"]["cgroup"];
    let holds = c["dir"].as_str().map(|d| in_dir(Path::new(d)));
    let _ = child.kill();
    let _ = child.wait();
    let memory_line = own.lines().find(|l| {
        l.split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|x| x == "memory"))
    });
    if c.is_null() {
        // No memory controller: none on v1, and none enabled at the cgroup2 root.
        assert!(memory_line.is_none(), "{own}\n{}", run.show());
        let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        assert!(
            !v2.split_whitespace().any(|x| x == "memory"),
            "{}",
            run.show()
        );
        return;
    }
    // The same cgroup as /proc/PID/cgroup names, and the directory holds the process.
    let version = c["version"].as_u64().unwrap();
    let want_path = match version {
        2 => own.lines().find_map(|l| l.strip_prefix("0::")),
        1 => memory_line.and_then(|l| l.splitn(3, ':').nth(2)),
        v => panic!("version {v}"),
    };
    assert_eq!(c["path"].as_str(), want_path, "{own}\n{}", run.show());
    let dir = Path::new(c["dir"].as_str().unwrap());
    assert_eq!(
        holds,
        Some(true),
        "{dir:?}/cgroup.procs lists the process\n{}",
        run.show()
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    if version == 2 {
        assert_eq!(
            c["memory_max"],
            limit_value(&read("memory.max")),
            "{}",
            run.show()
        );
        assert_eq!(
            c["memory_high"],
            limit_value(&read("memory.high")),
            "{}",
            run.show()
        );
        assert_eq!(
            c["memory_swap_max"],
            limit_value(&read("memory.swap.max")),
            "{}",
            run.show()
        );
        assert_eq!(
            c["oom_kill"],
            keyed_value(&read("memory.events"), "oom_kill")
        );
    } else {
        assert_eq!(
            c["memory_max"],
            limit_value(&read("memory.limit_in_bytes")),
            "{}",
            run.show()
        );
        assert!(c["memory_high"].is_null() && c["memory_swap_max"].is_null());
        assert_eq!(
            c["oom_kill"],
            keyed_value(&read("memory.oom_control"), "oom_kill")
        );
    }
    // memory.current changes all the time: it is there exactly when the file is (not at the root).
    let current = if version == 2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    };
    assert_eq!(
        c["memory_current"].is_u64(),
        dir.join(current).exists(),
        "{}",
        run.show()
    );
    // memcheck's own cgroup is the one it was started in: the test's, as sleep's.
    assert_eq!(r["cgroup"]["path"], c["path"], "{}", run.show());
    assert_eq!(r["version"], 1);
    assert!(
        text.stdout()
            .contains(&format!("cgroup v{version} {}", want_path.unwrap())),
        "{}",
        text.show()
    );
}

#[test]
fn every_inspection_json_carries_its_version() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id().to_string();
    let file = env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml";
    let runs = [
        memcheck(&["maps", &pid, "--format", "json"]),
        memcheck(&["residency", &file, "--format", "json"]),
        memcheck(&["residency", "--pid", &pid, "--format", "json"]),
        memcheck(&["overcommit", "--format", "json"]),
        memcheck(&["stats", "--no-ptrace", &pid, "--format", "json"]),
    ];
    let _ = child.kill();
    let _ = child.wait();
    for run in &runs {
        assert_eq!(run.stdout_json()["version"], 1, "{}", run.show());
    }
    // Both forms of residency list their errors, empty here.
    for run in &runs[1..3] {
        assert_eq!(
            run.stdout_json()["errors"],
            Value::Array(vec![]),
            "{}",
            run.show()
        );
    }
}
