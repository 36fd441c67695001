//! Who a process is, from `/proc`: whether it still exists, its command line, its children, and
//! whether it is a `memcheck run` CLI (whose child is the checked program).

/// The arguments of `pid` (`/proc/PID/cmdline`), empty if unreadable.
pub fn argv(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The command line of `pid`, arguments joined by spaces; empty if unreadable.
pub fn command_line(pid: i32) -> String {
    argv(pid).join(" ")
}

/// Whether `/proc/PID` exists (the process, or a zombie of it, is still there).
pub fn exists(pid: i32) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The children of `pid`: every thread's `/proc/PID/task/TID/children`, or, where the kernel
/// lacks that file, a scan of `/proc` for processes whose parent is `pid`. Sorted, no duplicates.
pub fn children(pid: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    let mut have_file = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                have_file = true;
                kids.extend(s.split_whitespace().filter_map(|w| w.parse::<i32>().ok()));
            }
        }
    }
    if !have_file {
        if let Ok(all) = procfs::process::all_processes() {
            kids.extend(
                all.flatten()
                    .filter_map(|p| p.stat().ok())
                    .filter(|st| st.ppid == pid)
                    .map(|st| st.pid),
            );
        }
    }
    kids.sort_unstable();
    kids.dedup();
    kids
}

/// Whether `pid` is a `memcheck run` CLI: its executable is this memcheck binary, or its command
/// line is `memcheck run ...`.
pub fn is_memcheck_run(pid: i32) -> bool {
    let args = argv(pid);
    // The first word that is neither an option nor the value of `--color WHEN`.
    let mut words = args.iter().skip(1);
    let mut sub = None;
    while let Some(w) = words.next() {
        if w == "--color" {
            words.next();
        } else if !w.starts_with('-') {
            sub = Some(w);
            break;
        }
    }
    let is_run = sub.is_some_and(|a| a == "run");
    let same_exe = match (
        std::fs::read_link(format!("/proc/{pid}/exe")),
        std::env::current_exe(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let named = args.first().is_some_and(|a| {
        std::path::Path::new(a)
            .file_name()
            .is_some_and(|n| n == "memcheck")
    });
    is_run && (same_exe || named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_command_line_and_is_not_a_memcheck_run() {
        let me = std::process::id() as i32;
        assert!(!argv(me).is_empty());
        assert!(exists(me) && !exists(-1));
        assert!(!is_memcheck_run(me), "a test binary is not `memcheck run`");
    }

    #[test]
    fn a_spawned_child_is_found() {
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let kids = children(std::process::id() as i32);
        let _ = c.kill();
        let _ = c.wait();
        assert!(kids.contains(&(c.id() as i32)), "{kids:?}");
    }
}
