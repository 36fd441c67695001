//! The kernel's virtual-memory settings (`/proc/sys/vm/*`) and commit accounting
//! (`/proc/meminfo`), and the commit-limit formula of `mm/util.c` recomputed from them.
//! Invariant: values are kept in the kernel's own units (KiB, pages, percent) and the formula
//! uses the kernel's integer page arithmetic, so it reproduces `CommitLimit` exactly.
use super::ProcError;

/// `vm.overcommit_memory` and the settings next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sysctls {
    pub overcommit_memory: u32,
    pub overcommit_ratio: u64,
    pub overcommit_kbytes: u64,
    pub max_map_count: u64,
    pub admin_reserve_kbytes: u64,
    pub user_reserve_kbytes: u64,
}

/// The lines of `/proc/meminfo` that commit accounting depends on, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    pub mem_total_kb: u64,
    pub swap_total_kb: u64,
    /// `Hugetlb`: memory of all huge-page pools, every size (0 on kernels that lack the line).
    pub hugetlb_kb: u64,
    pub commit_limit_kb: u64,
    pub committed_as_kb: u64,
}

fn read_sysctl(name: &str) -> Result<u64, ProcError> {
    let path = format!("/proc/sys/vm/{name}");
    let text = std::fs::read_to_string(&path).map_err(|e| super::io_error(e, 0, &path))?;
    text.trim()
        .parse()
        .map_err(|_| ProcError::Io(path, format!("not a number: {:?}", text.trim())))
}

pub fn sysctls() -> Result<Sysctls, ProcError> {
    Ok(Sysctls {
        overcommit_memory: read_sysctl("overcommit_memory")? as u32,
        overcommit_ratio: read_sysctl("overcommit_ratio")?,
        overcommit_kbytes: read_sysctl("overcommit_kbytes")?,
        max_map_count: read_sysctl("max_map_count")?,
        admin_reserve_kbytes: read_sysctl("admin_reserve_kbytes")?,
        user_reserve_kbytes: read_sysctl("user_reserve_kbytes")?,
    })
}

pub fn meminfo() -> Result<Meminfo, ProcError> {
    use procfs::Current;
    let m = procfs::Meminfo::current().map_err(|e| super::convert(e, 0, "/proc/meminfo"))?;
    let missing = || ProcError::Unsupported("/proc/meminfo".into(), "no CommitLimit line");
    Ok(Meminfo {
        mem_total_kb: m.mem_total / 1024,
        swap_total_kb: m.swap_total / 1024,
        hugetlb_kb: m
            .hugetlb
            .unwrap_or_else(|| m.hugepages_total.unwrap_or(0) * m.hugepagesize.unwrap_or(0))
            / 1024,
        commit_limit_kb: m.commit_limit.ok_or_else(missing)? / 1024,
        committed_as_kb: m.committed_as / 1024,
    })
}

/// What `vm.overcommit_memory` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Heuristic,
    Always,
    Never,
}

impl Mode {
    pub fn from_sysctl(v: u32) -> Option<Mode> {
        match v {
            0 => Some(Mode::Heuristic),
            1 => Some(Mode::Always),
            2 => Some(Mode::Never),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Mode::Heuristic => "heuristic",
            Mode::Always => "always",
            Mode::Never => "never",
        }
    }
    pub fn meaning(self) -> &'static str {
        match self {
            Mode::Heuristic => {
                "heuristic overcommit: an allocation is refused only when it alone is larger than \
                 all RAM plus swap; CommitLimit is not enforced"
            }
            Mode::Always => "always overcommit: no allocation is ever refused for lack of memory; CommitLimit is not enforced",
            Mode::Never => {
                "strict accounting: an allocation is refused when Committed_AS would exceed \
                 CommitLimit (less the root and user reserves)"
            }
        }
    }
}

/// `CommitLimit` in KiB as `vm_commit_limit()` computes it: `overcommit_kbytes` when set, else
/// (RAM - huge pages) * `overcommit_ratio` / 100, in whole pages; plus swap.
pub fn commit_limit_kb(s: &Sysctls, m: &Meminfo, page_kb: u64) -> u64 {
    let allowed_pages = if s.overcommit_kbytes != 0 {
        s.overcommit_kbytes / page_kb
    } else {
        let ram = m.mem_total_kb / page_kb;
        let huge = m.hugetlb_kb / page_kb;
        ram.saturating_sub(huge) * s.overcommit_ratio / 100
    };
    (allowed_pages + m.swap_total_kb / page_kb) * page_kb
}

/// The formula of [`commit_limit_kb`] written out with this machine's numbers.
pub fn commit_limit_formula(s: &Sysctls, m: &Meminfo) -> String {
    if s.overcommit_kbytes != 0 {
        format!(
            "overcommit_kbytes {} + swap {} KiB",
            s.overcommit_kbytes, m.swap_total_kb
        )
    } else {
        format!(
            "(MemTotal {} - Hugetlb {}) KiB * overcommit_ratio {}% + SwapTotal {} KiB",
            m.mem_total_kb, m.hugetlb_kb, s.overcommit_ratio, m.swap_total_kb
        )
    }
}

/// Why an allocation would or would not be granted, as the kernel's `__vm_enough_memory` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
}

/// What the prober knows about itself when it asks for `size` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    /// Its address-space size (`VmSize`) in KiB.
    pub vm_size_kb: u64,
    /// Its `RLIMIT_AS` soft limit in bytes, `None` for unlimited.
    pub rlimit_as: Option<u64>,
    /// Whether it has CAP_SYS_ADMIN (exempt from the admin reserve in strict mode).
    pub cap_sys_admin: bool,
}

/// Predicts whether a private writable mapping of `size` bytes would be granted now.
pub fn predict(
    mode: Mode,
    size: u64,
    s: &Sysctls,
    m: &Meminfo,
    asker: &Asker,
    page_kb: u64,
) -> Verdict {
    let size_kb = size.div_ceil(page_kb * 1024) * page_kb;
    if let Some(limit) = asker.rlimit_as {
        if asker.vm_size_kb * 1024 + size > limit {
            return Verdict {
                ok: false,
                reason: format!(
                    "RLIMIT_AS is {} KiB and the process already spans {} KiB, so {} KiB more exceeds it (ulimit -v)",
                    limit / 1024,
                    asker.vm_size_kb,
                    size_kb
                ),
            };
        }
    }
    match mode {
        Mode::Always => Verdict {
            ok: true,
            reason: "mode 1 (always) grants every allocation; pages are only found when touched, and the OOM killer acts if they are not".into(),
        },
        Mode::Heuristic => {
            let limit = m.mem_total_kb / page_kb * page_kb + m.swap_total_kb / page_kb * page_kb;
            if size_kb > limit {
                Verdict {
                    ok: false,
                    reason: format!(
                        "mode 0 (heuristic) refuses a single allocation larger than RAM + swap ({limit} KiB); this one is {size_kb} KiB"
                    ),
                }
            } else {
                Verdict {
                    ok: true,
                    reason: format!(
                        "mode 0 (heuristic) grants any single allocation up to RAM + swap ({limit} KiB); this one is {size_kb} KiB"
                    ),
                }
            }
        }
        Mode::Never => {
            let mut allowed = commit_limit_kb(s, m, page_kb) as i128;
            let mut parts = format!("CommitLimit {allowed} KiB");
            if !asker.cap_sys_admin {
                allowed -= s.admin_reserve_kbytes as i128;
                parts.push_str(&format!(" - admin reserve {} KiB", s.admin_reserve_kbytes));
            }
            let user = (asker.vm_size_kb / 32).min(s.user_reserve_kbytes);
            allowed -= user as i128;
            parts.push_str(&format!(" - user reserve {user} KiB"));
            let after = m.committed_as_kb as i128 + size_kb as i128;
            // The kernel grants while the new total stays strictly below the allowance.
            let ok = after < allowed;
            Verdict {
                ok,
                reason: format!(
                    "mode 2 (never) {} it: Committed_AS {} KiB + {size_kb} KiB = {after} KiB, {} the allowance {allowed} KiB ({parts})",
                    if ok { "grants" } else { "refuses" },
                    m.committed_as_kb,
                    if ok { "within" } else { "over" },
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (Sysctls, Meminfo) {
        (
            Sysctls {
                overcommit_memory: 0,
                overcommit_ratio: 50,
                overcommit_kbytes: 0,
                max_map_count: 65530,
                admin_reserve_kbytes: 8192,
                user_reserve_kbytes: 131072,
            },
            Meminfo {
                mem_total_kb: 24684084,
                swap_total_kb: 0,
                hugetlb_kb: 0,
                commit_limit_kb: 12342040,
                committed_as_kb: 51856,
            },
        )
    }

    #[test]
    fn formula_uses_whole_pages_like_the_kernel() {
        let (mut s, mut m) = fixture();
        // 24684084 kB is 6171021 pages; half of that, truncated, is 3085510 pages.
        assert_eq!(commit_limit_kb(&s, &m, 4), 12342040);
        m.swap_total_kb = 1 << 20;
        m.hugetlb_kb = 2 << 20;
        assert_eq!(
            commit_limit_kb(&s, &m, 4),
            ((6171021 - 524288) * 50 / 100 + 262144) * 4
        );
        s.overcommit_kbytes = 1_000_002;
        assert_eq!(commit_limit_kb(&s, &m, 4), (250000 + 262144) * 4);
        assert!(commit_limit_formula(&s, &m).starts_with("overcommit_kbytes"));
    }

    #[test]
    fn verdicts_follow_each_mode() {
        let (s, m) = fixture();
        let me = Asker {
            vm_size_kb: 10_000,
            rlimit_as: None,
            cap_sys_admin: false,
        };
        let ram = m.mem_total_kb * 1024;
        assert!(predict(Mode::Heuristic, ram / 2, &s, &m, &me, 4).ok);
        assert!(!predict(Mode::Heuristic, ram + (1 << 30), &s, &m, &me, 4).ok);
        assert!(predict(Mode::Always, ram * 100, &s, &m, &me, 4).ok);
        // Strict: the allowance is CommitLimit - 8192 - min(10000/32, 131072) KiB.
        let allowed = 12342040 - 8192 - 312;
        let fits = (allowed - m.committed_as_kb - 4) * 1024;
        assert!(predict(Mode::Never, fits, &s, &m, &me, 4).ok);
        let v = predict(Mode::Never, fits + 4096, &s, &m, &me, 4);
        assert!(!v.ok && v.reason.contains("refuses"), "{}", v.reason);
        let limited = Asker {
            rlimit_as: Some(64 << 20),
            ..me
        };
        let v = predict(Mode::Always, 60 << 20, &s, &m, &limited, 4);
        assert!(!v.ok && v.reason.contains("RLIMIT_AS"), "{}", v.reason);
    }

    #[test]
    fn this_kernel_agrees_with_the_formula() {
        let s = sysctls().unwrap();
        let m = meminfo().unwrap();
        assert_eq!(
            commit_limit_kb(&s, &m, super::super::page_size() / 1024),
            m.commit_limit_kb
        );
        assert!(Mode::from_sysctl(s.overcommit_memory).is_some());
    }
}
