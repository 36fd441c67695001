//! Why ptrace was refused: the facts that decide it (tracer, uids, capabilities, Yama) and the
//! error naming the likeliest cause and its fix.
use super::RemoteError;
use procfs::process::Process;

/// What decides why ptrace was refused.
#[derive(Debug, Clone, Default)]
pub(super) struct Access {
    /// `TracerPid` of the thread (0: none).
    pub tracer: i32,
    pub tracer_name: String,
    /// Real, effective, saved and filesystem uid of the process.
    pub uids: [u32; 4],
    /// Owner of `/proc/PID/status`: root for a process that made itself non-dumpable.
    pub proc_owner: Option<u32>,
    /// memcheck's effective uid.
    pub me: u32,
    /// memcheck has CAP_SYS_PTRACE.
    pub cap_sys_ptrace: bool,
    /// `kernel.yama.ptrace_scope`, when Yama is built in.
    pub yama: Option<u32>,
}

/// Turns a refusal into the error that names the likeliest cause and what to do.
pub(super) fn explain_denial(pid: i32, a: &Access) -> RemoteError {
    if a.tracer != 0 {
        return RemoteError::AlreadyTraced {
            pid,
            tracer: a.tracer,
            tracer_name: a.tracer_name.clone(),
        };
    }
    let reason = if !a.cap_sys_ptrace && a.uids.iter().any(|&u| u != a.me) {
        let owner = if a.uids[0] == a.uids[1] {
            a.uids[0]
        } else {
            a.uids[1]
        };
        if a.uids.iter().all(|&u| u == owner) {
            format!("it runs as uid {owner} and memcheck as uid {}; run memcheck as that user, or as root", a.me)
        } else {
            format!(
                "it has changed uids ({:?}, a set-id program?); run memcheck as root, or with CAP_SYS_PTRACE",
                a.uids
            )
        }
    } else if a.yama == Some(3) {
        "ptrace is disabled on this system (kernel.yama.ptrace_scope=3) until the next reboot"
            .to_string()
    } else if a.yama == Some(2) && !a.cap_sys_ptrace {
        "only processes with CAP_SYS_PTRACE may trace (kernel.yama.ptrace_scope=2); run memcheck as root".to_string()
    } else if a.yama == Some(1) && !a.cap_sys_ptrace {
        "only a parent may trace its children (kernel.yama.ptrace_scope=1); run `sysctl \
         kernel.yama.ptrace_scope=0`, or run memcheck as root or with CAP_SYS_PTRACE"
            .to_string()
    } else if !a.cap_sys_ptrace && a.proc_owner == Some(0) && a.uids[0] != 0 {
        "it made itself non-dumpable (prctl PR_SET_DUMPABLE, or a set-id program); run memcheck as root".to_string()
    } else if !a.cap_sys_ptrace {
        "ptrace was refused (a security module, or a container without CAP_SYS_PTRACE); in a container \
         add --cap-add=SYS_PTRACE, or run memcheck as root"
            .to_string()
    } else {
        "ptrace was refused although memcheck has CAP_SYS_PTRACE (a security module such as SELinux or \
         AppArmor, or a container's seccomp profile); allow ptrace for memcheck"
            .to_string()
    };
    RemoteError::PermissionDenied { pid, reason }
}

pub(super) fn gather_access(pid: i32, tid: i32) -> Access {
    const CAP_SYS_PTRACE: u64 = 19;
    let status = Process::new(pid)
        .and_then(|p| p.task_from_tid(tid))
        .and_then(|t| t.status())
        .ok();
    let tracer = status.as_ref().map_or(0, |s| s.tracerpid);
    let me = Process::myself().and_then(|p| p.status()).ok();
    Access {
        tracer,
        tracer_name: std::fs::read_to_string(format!("/proc/{tracer}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
        uids: status
            .as_ref()
            .map_or([0; 4], |s| [s.ruid, s.euid, s.suid, s.fuid]),
        proc_owner: std::fs::metadata(format!("/proc/{pid}/status"))
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m)),
        me: nix::unistd::geteuid().as_raw(),
        cap_sys_ptrace: me.is_some_and(|s| s.capeff & (1 << CAP_SYS_PTRACE) != 0),
        yama: std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_the_cause_and_the_fix() {
        let base = Access {
            uids: [1000; 4],
            me: 1000,
            proc_owner: Some(1000),
            ..Access::default()
        };
        let msg = |a: &Access| explain_denial(7, a).to_string();
        let traced = Access {
            tracer: 42,
            tracer_name: "gdb".into(),
            ..base.clone()
        };
        assert!(matches!(
            explain_denial(7, &traced),
            RemoteError::AlreadyTraced { tracer: 42, .. }
        ));
        assert!(msg(&traced).contains("gdb"));
        let other = Access {
            uids: [0; 4],
            ..base.clone()
        };
        assert!(
            msg(&other).contains("runs as uid 0 and memcheck as uid 1000"),
            "{}",
            msg(&other)
        );
        let setid = Access {
            uids: [1000, 0, 0, 0],
            ..base.clone()
        };
        assert!(msg(&setid).contains("set-id"));
        assert!(msg(&Access {
            yama: Some(1),
            ..base.clone()
        })
        .contains("ptrace_scope=0"));
        assert!(msg(&Access {
            yama: Some(2),
            ..base.clone()
        })
        .contains("CAP_SYS_PTRACE"));
        assert!(msg(&Access {
            yama: Some(3),
            ..base.clone()
        })
        .contains("reboot"));
        assert!(msg(&Access {
            proc_owner: Some(0),
            ..base.clone()
        })
        .contains("non-dumpable"));
        assert!(msg(&base).contains("--cap-add=SYS_PTRACE"));
        // With CAP_SYS_PTRACE, uid and Yama 1/2 do not explain it.
        let cap = Access {
            cap_sys_ptrace: true,
            uids: [0; 4],
            yama: Some(1),
            ..base
        };
        assert!(msg(&cap).contains("security module"));
        for a in [&traced, &other, &setid] {
            assert!(!msg(a).contains('\n'));
        }
    }
}
