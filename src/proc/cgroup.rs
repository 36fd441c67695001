//! The memory limits of the cgroup a process lives in. In a container (or a systemd unit) these,
//! not `CommitLimit`, decide when the OOM killer acts: `memory.max` (the hard limit: over it the
//! cgroup's own OOM killer runs), `memory.high` (over it the cgroup is throttled and reclaimed),
//! `memory.swap.max`, and `memory.events`' `oom_kill` count.
//!
//! The cgroup comes from `/proc/PID/cgroup` (the `0::PATH` line of cgroup v2), its directory
//! from the `cgroup2` mount in `/proc/self/mountinfo` (normally `/sys/fs/cgroup`, or
//! `/sys/fs/cgroup/unified` on a hybrid system). On a system whose memory controller is still on
//! cgroup v1, the v1 `memory` hierarchy is read instead (`memory.limit_in_bytes`,
//! `memory.usage_in_bytes`, `memory.oom_control`), reported with `version: 1`; v1 has no
//! `memory.high` or swap-only limit, so those are null there.
//! Invariant: a limit is `None` exactly when there is none (the file says `max`, the cgroup is
//! the root, or v1 shows its "unlimited" value); a missing counter is `None`, never 0.
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The memory limits and counters of one cgroup.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Cgroup {
    /// 2, or 1 when the memory controller is on a cgroup v1 hierarchy.
    pub version: u8,
    /// The cgroup as `/proc/PID/cgroup` names it, e.g. `/user.slice/user-1000.slice`.
    pub path: String,
    /// Its directory, e.g. `/sys/fs/cgroup/user.slice/user-1000.slice`.
    pub dir: String,
    /// `memory.max` in bytes (v1: `memory.limit_in_bytes`); null: no limit.
    pub memory_max: Option<u64>,
    /// `memory.high` in bytes; null: no limit (always null on v1).
    pub memory_high: Option<u64>,
    /// `memory.swap.max` in bytes; null: no limit (always null on v1).
    pub memory_swap_max: Option<u64>,
    /// `memory.current` in bytes (v1: `memory.usage_in_bytes`); null if unreadable.
    pub memory_current: Option<u64>,
    /// `oom_kill` of `memory.events` (v1: `memory.oom_control`): processes of this cgroup the OOM
    /// killer has killed; null if unreadable.
    pub oom_kill: Option<u64>,
    /// The tightest `memory.max` of this cgroup and its ancestors (a parent's limit holds its
    /// children too); null: none of them has a limit.
    pub effective_memory_max: Option<u64>,
    /// The cgroup whose limit is [`Self::effective_memory_max`].
    pub effective_memory_max_from: Option<String>,
}

/// The cgroup of `pid` (0: memcheck itself), or `None` when it has no readable cgroup with a
/// memory controller.
pub fn of(pid: i32) -> Option<Cgroup> {
    let who = if pid == 0 {
        "self".to_string()
    } else {
        pid.to_string()
    };
    let cgroup = std::fs::read_to_string(format!("/proc/{who}/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    from_parts(&cgroup, &mountinfo, Path::new("/"))
}

/// A mount of a cgroup hierarchy: its root inside the hierarchy and where it is mounted.
struct Mount {
    root: String,
    point: PathBuf,
}

/// The cgroup2 mount (`v1 == false`) or the v1 mount of the memory controller.
fn mount(mountinfo: &str, v1: bool, fs_root: &Path) -> Option<Mount> {
    mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let f: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        let ok = match (v1, r.first()) {
            (false, Some(&"cgroup2")) => true,
            (true, Some(&"cgroup")) => r
                .get(2)
                .is_some_and(|o| o.split(',').any(|x| x == "memory")),
            _ => false,
        };
        (ok && f.len() > 4).then(|| Mount {
            root: unescape(f[3]),
            point: fs_root.join(unescape(f[4]).trim_start_matches('/')),
        })
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The directory of cgroup `path` under mount `m`, if the mount shows it.
fn dir_of(m: &Mount, path: &str) -> Option<PathBuf> {
    let rest = if m.root == "/" {
        path
    } else {
        path.strip_prefix(m.root.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))?
    };
    Some(m.point.join(rest.trim_start_matches('/')))
}

/// Reads a limit file: `max` (v2) or v1's "unlimited" (a value near `i64::MAX`) is `None`.
fn limit(dir: &Path, file: &str) -> Option<u64> {
    let s = std::fs::read_to_string(dir.join(file)).ok()?;
    let s = s.trim();
    if s == "max" {
        return None;
    }
    s.parse::<u64>().ok().filter(|&v| v < 1 << 62)
}

fn number(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The value of `key` in a flat keyed file (`memory.events`, `memory.oom_control`).
fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The cgroup described by a `/proc/PID/cgroup` text and a mountinfo text, with every mount
/// point taken under `fs_root` (`/`, or a test's directory).
pub fn from_parts(proc_cgroup: &str, mountinfo: &str, fs_root: &Path) -> Option<Cgroup> {
    let line_path = |pred: &dyn Fn(&str, &str) -> bool| {
        proc_cgroup.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (id, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            pred(id, ctrls).then(|| path.to_string())
        })
    };
    // cgroup v2, when the memory controller is enabled there.
    if let (Some(path), Some(m)) = (
        line_path(&|id, c| id == "0" && c.is_empty()),
        mount(mountinfo, false, fs_root),
    ) {
        let controllers = std::fs::read_to_string(m.point.join("cgroup.controllers"));
        if controllers.is_ok_and(|c| c.split_whitespace().any(|x| x == "memory")) {
            let dir = dir_of(&m, &path)?;
            let (eff, from) = effective(&m, &path, "memory.max");
            return Some(Cgroup {
                version: 2,
                dir: dir.display().to_string(),
                memory_max: limit(&dir, "memory.max"),
                memory_high: limit(&dir, "memory.high"),
                memory_swap_max: limit(&dir, "memory.swap.max"),
                memory_current: number(&dir, "memory.current"),
                oom_kill: keyed(&dir, "memory.events", "oom_kill"),
                effective_memory_max: eff,
                effective_memory_max_from: from,
                path,
            });
        }
    }
    // The v1 memory controller.
    let path = line_path(&|_, c| c.split(',').any(|x| x == "memory"))?;
    let m = mount(mountinfo, true, fs_root)?;
    let dir = dir_of(&m, &path)?;
    if !dir.is_dir() {
        return None;
    }
    let (eff, from) = effective(&m, &path, "memory.limit_in_bytes");
    Some(Cgroup {
        version: 1,
        dir: dir.display().to_string(),
        memory_max: limit(&dir, "memory.limit_in_bytes"),
        memory_high: None,
        memory_swap_max: None,
        memory_current: number(&dir, "memory.usage_in_bytes"),
        oom_kill: keyed(&dir, "memory.oom_control", "oom_kill"),
        effective_memory_max: eff,
        effective_memory_max_from: from,
        path,
    })
}

/// The smallest `file` limit of cgroup `path` and its ancestors that the mount shows.
fn effective(m: &Mount, path: &str, file: &str) -> (Option<u64>, Option<String>) {
    let mut best: Option<(u64, String)> = None;
    let mut p = path.to_string();
    loop {
        if let Some(v) = dir_of(m, &p).and_then(|d| limit(&d, file)) {
            if best.as_ref().is_none_or(|(b, _)| v < *b) {
                best = Some((v, p.clone()));
            }
        }
        if p == "/" || p.is_empty() {
            break;
        }
        p = match p.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => p[..i].to_string(),
        };
    }
    match best {
        Some((v, p)) => (Some(v), Some(p)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    const V2_MOUNT: &str =
        "31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw\n";

    #[test]
    fn v2_limits_events_and_the_tightest_ancestor() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("sys/fs/cgroup");
        write(&root, &[("cgroup.controllers", "cpu io memory pids\n")]);
        write(&root.join("app"), &[("memory.max", "1073741824\n")]);
        let leaf = root.join("app/job");
        write(
            &leaf,
            &[
                ("memory.max", "max\n"),
                ("memory.high", "536870912\n"),
                ("memory.swap.max", "0\n"),
                ("memory.current", "12345\n"),
                (
                    "memory.events",
                    "low 0\nhigh 4\nmax 2\noom 1\noom_kill 3\noom_group_kill 0\n",
                ),
            ],
        );
        let c = from_parts("0::/app/job\n", V2_MOUNT, t.path()).unwrap();
        assert_eq!(c.version, 2);
        assert_eq!(c.path, "/app/job");
        assert_eq!(c.dir, leaf.display().to_string());
        assert_eq!(c.memory_max, None, "max is no limit");
        assert_eq!(c.memory_high, Some(512 << 20));
        assert_eq!(c.memory_swap_max, Some(0));
        assert_eq!(c.memory_current, Some(12345));
        assert_eq!(c.oom_kill, Some(3), "oom_kill, not oom or oom_group_kill");
        assert_eq!(c.effective_memory_max, Some(1 << 30));
        assert_eq!(c.effective_memory_max_from.as_deref(), Some("/app"));
    }

    #[test]
    fn the_v1_memory_controller_when_v2_has_none() {
        let t = tempfile::tempdir().unwrap();
        write(
            &t.path().join("sys/fs/cgroup/unified"),
            &[("cgroup.controllers", "\n")],
        );
        let dir = t.path().join("sys/fs/cgroup/memory/ctr");
        write(
            &dir,
            &[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.usage_in_bytes", "774987776\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
                ),
            ],
        );
        let mountinfo = "\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
        let c = from_parts("4:memory:/ctr\n0::/\n", mountinfo, t.path()).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.memory_max, None, "v1's unlimited value");
        assert_eq!((c.memory_high, c.memory_swap_max), (None, None));
        assert_eq!(c.memory_current, Some(774987776));
        assert_eq!(c.oom_kill, Some(5));
        std::fs::write(dir.join("memory.limit_in_bytes"), "268435456\n").unwrap();
        let c = from_parts("4:memory:/ctr\n0::/\n", mountinfo, t.path()).unwrap();
        assert_eq!(c.memory_max, Some(256 << 20));
        assert_eq!(c.effective_memory_max_from.as_deref(), Some("/ctr"));
    }

    #[test]
    fn no_cgroup_no_answer_and_mount_roots_are_honoured() {
        assert_eq!(from_parts("", V2_MOUNT, Path::new("/nonexistent")), None);
        let m = Mount {
            root: "/ctr".into(),
            point: PathBuf::from("/sys/fs/cgroup"),
        };
        assert_eq!(
            dir_of(&m, "/ctr/a"),
            Some(PathBuf::from("/sys/fs/cgroup/a"))
        );
        assert_eq!(dir_of(&m, "/other"), None);
        assert_eq!(dir_of(&m, "/ctrl"), None);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
