//! The threads of a process and where their stack pointers are, to tell thread stacks from other
//! anonymous memory. Heuristic, and honest about it: a stack pointer is known only for a thread
//! blocked in the kernel (`/proc/PID/task/TID/syscall`, second field from the end) or, failing
//! that, from `kstkesp` in `/proc/PID/task/TID/stat`, which most kernels leave at 0. A thread
//! running on a CPU at the moment of reading has no known stack pointer.

/// One thread and its stack pointer, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thread {
    pub tid: i32,
    pub stack_pointer: Option<u64>,
}

/// The threads of `pid` (the main thread included). Unreadable entries (threads that exited,
/// files hidden by ptrace access rules) simply have no stack pointer.
pub fn threads(pid: i32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out: Vec<Thread> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(|tid| {
            let base = format!("/proc/{pid}/task/{tid}");
            let sp = std::fs::read_to_string(format!("{base}/syscall"))
                .ok()
                .and_then(|s| syscall_stack_pointer(&s))
                .or_else(|| {
                    std::fs::read_to_string(format!("{base}/stat"))
                        .ok()
                        .and_then(|s| stat_kstkesp(&s))
                });
            Thread {
                tid,
                stack_pointer: sp,
            }
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

/// The stack pointer in a `/proc/PID/task/TID/syscall` line: the second field from the end, in
/// hex. `running` (no registers to show) gives `None`, as does a zero pointer.
pub fn syscall_stack_pointer(line: &str) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 3 {
        return None;
    }
    let sp = fields[fields.len() - 2];
    let sp = u64::from_str_radix(sp.trim_start_matches("0x"), 16).ok()?;
    (sp != 0).then_some(sp)
}

/// Field 29 (`kstkesp`) of a stat line, when it is not 0. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its closing parenthesis.
pub fn stat_kstkesp(line: &str) -> Option<u64> {
    let rest = &line[line.rfind(')')? + 1..];
    // After ")" come fields 3, 4, ...; field 29 is the 27th of them.
    let v: u64 = rest.split_whitespace().nth(26)?.parse().ok()?;
    (v != 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines_give_the_stack_pointer() {
        // Blocked in read(2): number, six arguments, stack pointer, program counter.
        let blocked = "0 0x0 0x7ffd5f1b2a47 0x1 0x0 0x0 0x0 0x7ffd5f1b2a28 0x7f3b1c11a9a1\n";
        assert_eq!(syscall_stack_pointer(blocked), Some(0x7ffd5f1b2a28));
        // Blocked outside a system call: -1, stack pointer, program counter.
        assert_eq!(
            syscall_stack_pointer("-1 0x7ffc00001000 0x401000"),
            Some(0x7ffc00001000)
        );
        assert_eq!(syscall_stack_pointer("running\n"), None);
        assert_eq!(syscall_stack_pointer(""), None);
    }

    #[test]
    fn kstkesp_is_counted_past_a_strange_command_name() {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[29 - 3] = "140737488346112".into();
        let line = format!("123 (a) b (c)) {}", fields.join(" "));
        assert_eq!(stat_kstkesp(&line), Some(140737488346112));
        fields[29 - 3] = "0".into();
        let line = format!("123 (x) {}", fields.join(" "));
        assert_eq!(stat_kstkesp(&line), None);
    }

    #[test]
    fn our_own_threads_are_listed() {
        let me = std::process::id() as i32;
        let ts = threads(me);
        assert!(ts.iter().any(|t| t.tid == me), "{ts:?}");
    }
}
