//! `memcheck overcommit`: the kernel's overcommit mode and what it means, the commit limit as the
//! kernel reports it and as recomputed from its formula, the commit charged so far and the
//! headroom; `--check SIZE` probes a real allocation in a throw-away child and explains the
//! answer; `--pid` shows one process's commit, OOM score and limits; `--oom` ranks the processes
//! the OOM killer would pick first. Invariant: every number shown is read from /proc at the time
//! of the run, except the recomputed limit and the prediction, which are labelled as such.
#![deny(unsafe_op_in_unsafe_fn)]

use super::inspect;
use crate::cli::{ColorChoice, Format, OvercommitArgs};
use crate::exit::UsageError;
use crate::proc::cgroup::{self, Cgroup};
use crate::proc::{self, vm, ProcError};
use crate::style::Painter;
use crate::units::{self, kib};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Serialize, Debug)]
pub struct OvercommitReport {
    /// The format version of this JSON.
    pub version: u32,
    /// `vm.overcommit_memory`: 0, 1 or 2.
    pub mode: u32,
    pub mode_name: &'static str,
    pub meaning: &'static str,
    /// `vm.overcommit_ratio`, percent.
    pub ratio: u64,
    /// `vm.overcommit_kbytes` (0: the ratio applies).
    pub kbytes: u64,
    pub commit_limit_kb: u64,
    pub commit_limit_computed_kb: u64,
    pub commit_limit_formula: String,
    pub commit_limit_enforced: bool,
    pub committed_as_kb: u64,
    /// CommitLimit - Committed_AS (negative when overcommitted).
    pub headroom_kb: i64,
    /// The largest single allocation mode 0 grants: RAM + swap.
    pub heuristic_limit_kb: u64,
    pub mem_total_kb: u64,
    pub swap_total_kb: u64,
    pub hugetlb_kb: u64,
    pub admin_reserve_kb: u64,
    pub user_reserve_kb: u64,
    pub max_map_count: u64,
    /// The memory limits of memcheck's own cgroup (the one `--check`'s probe runs in); null when
    /// there is no cgroup with a memory controller.
    pub cgroup: Option<Cgroup>,
    pub check: Option<Check>,
    pub process: Option<ProcessOut>,
    pub oom: Option<Vec<OomOut>>,
}

#[derive(Serialize, Debug)]
pub struct Check {
    pub size_bytes: u64,
    /// What the probe found: the mmap succeeded.
    pub succeeded: bool,
    /// The probe's error, e.g. "ENOMEM: Cannot allocate memory".
    pub error: Option<String>,
    /// What the formula of the current mode predicts.
    pub predicted: bool,
    pub explanation: String,
}

#[derive(Serialize, Debug)]
pub struct Limit {
    /// Bytes; null means unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Serialize, Debug)]
pub struct ProcessOut {
    pub pid: i32,
    pub command: String,
    /// Size of the regions charged to the commit limit (VmFlags `ac`); null if smaps is unreadable.
    pub commit_kb: Option<u64>,
    pub vm_size_kb: u64,
    pub vm_rss_kb: u64,
    pub vm_swap_kb: u64,
    pub vm_locked_kb: u64,
    pub oom_score: u16,
    pub oom_score_adj: i16,
    pub rlimit_as: Limit,
    pub rlimit_memlock: Limit,
    /// The memory limits of its cgroup.
    pub cgroup: Option<Cgroup>,
}

#[derive(Serialize, Debug)]
pub struct OomOut {
    pub pid: i32,
    pub command: String,
    pub oom_score: u16,
    pub oom_score_adj: i16,
    pub rss_kb: u64,
    pub swap_kb: u64,
}

pub fn run(a: &OvercommitArgs, color: ColorChoice) -> Result<i32> {
    let report = build(a)?;
    let text = match a.format {
        Format::Json => inspect::json(&report),
        Format::Text => render(&report, &inspect::painter(color, a.output.as_deref())),
    };
    inspect::emit(a.output.as_deref(), &text)?;
    // The answer is in the report; the status tells scripts too.
    Ok(match &report.check {
        Some(c) if !c.succeeded => crate::exit::EXIT_FAILURE,
        _ => 0,
    })
}

/// The text lines of a cgroup's limits, each indented by `indent`, named by the files they come
/// from (v2's, or v1's).
fn cgroup_text(c: &Cgroup, indent: &str) -> String {
    let lim = |v: Option<u64>| {
        v.map(units::bytes)
            .unwrap_or_else(|| "max (no limit)".into())
    };
    let v1 = c.version == 1;
    let mut o = String::new();
    let _ = writeln!(o, "{indent}cgroup v{} {} ({})", c.version, c.path, c.dir);
    let eff = match (c.effective_memory_max, &c.effective_memory_max_from) {
        (Some(v), Some(from)) if c.memory_max != Some(v) => {
            format!(" (effective {} from {from})", units::bytes(v))
        }
        _ => String::new(),
    };
    let (max, current, events) = if v1 {
        (
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "memory.oom_control",
        )
    } else {
        ("memory.max", "memory.current", "memory.events")
    };
    let _ = writeln!(o, "{indent}  {max:<21} {}{eff}", lim(c.memory_max));
    if !v1 {
        let _ = writeln!(o, "{indent}  {:<21} {}", "memory.high", lim(c.memory_high));
        let _ = writeln!(
            o,
            "{indent}  {:<21} {}",
            "memory.swap.max",
            lim(c.memory_swap_max)
        );
    }
    let unknown = || "unknown".to_string();
    let _ = writeln!(
        o,
        "{indent}  {current:<21} {}",
        c.memory_current.map(units::bytes).unwrap_or_else(unknown)
    );
    let _ = writeln!(
        o,
        "{indent}  {:<21} {} ({events}: processes of this cgroup the OOM killer killed)",
        "oom_kill",
        c.oom_kill.map(|n| n.to_string()).unwrap_or_else(unknown)
    );
    o
}

pub fn build(a: &OvercommitArgs) -> Result<OvercommitReport> {
    let s = vm::sysctls()?;
    let m = vm::meminfo()?;
    let page_kb = proc::page_size() / 1024;
    let mode = vm::Mode::from_sysctl(s.overcommit_memory).with_context(|| {
        format!(
            "vm.overcommit_memory is {}, which this kernel documents no meaning for",
            s.overcommit_memory
        )
    })?;
    let check = match a.check {
        Some(0) => {
            return Err(UsageError("--check needs a size above 0 (e.g. --check 4G)".into()).into())
        }
        Some(size) => Some(check(size, mode, &s, &m, page_kb)?),
        None => None,
    };
    let process = a.pid.map(process).transpose()?;
    let oom = a.oom.then(|| oom_ranking(a.top as usize));
    Ok(OvercommitReport {
        version: inspect::JSON_VERSION,
        mode: s.overcommit_memory,
        mode_name: mode.name(),
        meaning: mode.meaning(),
        ratio: s.overcommit_ratio,
        kbytes: s.overcommit_kbytes,
        commit_limit_kb: m.commit_limit_kb,
        commit_limit_computed_kb: vm::commit_limit_kb(&s, &m, page_kb),
        commit_limit_formula: vm::commit_limit_formula(&s, &m),
        commit_limit_enforced: mode == vm::Mode::Never,
        committed_as_kb: m.committed_as_kb,
        headroom_kb: m.commit_limit_kb as i64 - m.committed_as_kb as i64,
        heuristic_limit_kb: m.mem_total_kb / page_kb * page_kb
            + m.swap_total_kb / page_kb * page_kb,
        mem_total_kb: m.mem_total_kb,
        swap_total_kb: m.swap_total_kb,
        hugetlb_kb: m.hugetlb_kb,
        admin_reserve_kb: s.admin_reserve_kbytes,
        user_reserve_kb: s.user_reserve_kbytes,
        max_map_count: s.max_map_count,
        cgroup: cgroup::of(0),
        check,
        process,
        oom,
    })
}

/// The probe's outcome: `Ok` if the mapping was granted, else the errno.
fn probe(size: u64) -> Result<std::result::Result<(), nix::errno::Errno>> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;
    let len =
        usize::try_from(size).context("--check SIZE does not fit this machine's address space")?;
    // SAFETY: the inspection commands never start threads, so the child is a faithful copy; it
    // only calls mmap and _exit, both async-signal-safe, and never returns into Rust code.
    match unsafe { nix::unistd::fork() }.context("cannot fork the probe process")? {
        ForkResult::Child => {
            // SAFETY: a fresh anonymous private mapping chosen by the kernel; it is never touched,
            // and the process exits right after.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            let code = if p == libc::MAP_FAILED {
                nix::errno::Errno::last_raw().clamp(1, 255)
            } else {
                0
            };
            // SAFETY: _exit ends the child without running the parent's atexit handlers or
            // flushing its copied stdio buffers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            match waitpid(child, None).context("cannot wait for the probe process")? {
                WaitStatus::Exited(_, 0) => Ok(Ok(())),
                WaitStatus::Exited(_, code) => Ok(Err(nix::errno::Errno::from_raw(code))),
                other => bail!("the probe process ended unexpectedly: {other:?}"),
            }
        }
    }
}

/// What memcheck itself looks like to the kernel (the probe is a copy of it).
fn asker() -> Result<vm::Asker> {
    let me = procfs::process::Process::myself().context("cannot read /proc/self")?;
    let st = me.status().context("cannot read /proc/self/status")?;
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS)?;
    Ok(vm::Asker {
        vm_size_kb: st.vmsize.unwrap_or(0),
        rlimit_as: (soft != libc::RLIM_INFINITY).then_some(soft),
        cap_sys_admin: st.capeff & (1 << 21) != 0,
    })
}

fn check(
    size: u64,
    mode: vm::Mode,
    s: &vm::Sysctls,
    m: &vm::Meminfo,
    page_kb: u64,
) -> Result<Check> {
    let verdict = vm::predict(mode, size, s, m, &asker()?, page_kb);
    let outcome = probe(size)?;
    let succeeded = outcome.is_ok();
    let mut explanation = verdict.reason;
    if succeeded != verdict.ok {
        explanation.push_str(&format!(
            "; but the kernel {} the probe, so the formula missed something (Committed_AS is approximate, \
             and other processes allocate meanwhile)",
            if succeeded { "granted" } else { "refused" }
        ));
    }
    Ok(Check {
        size_bytes: size,
        succeeded,
        error: outcome.err().map(|e| e.to_string()),
        predicted: verdict.ok,
        explanation,
    })
}

fn limit(l: &procfs::process::Limit) -> Limit {
    use procfs::process::LimitValue;
    let v = |x: &LimitValue| match x {
        LimitValue::Unlimited => None,
        LimitValue::Value(n) => Some(*n),
    };
    Limit {
        soft: v(&l.soft_limit),
        hard: v(&l.hard_limit),
    }
}

fn process(pid: i32) -> Result<ProcessOut, ProcError> {
    let p = proc::process(pid)?;
    let conv = |what: &str| {
        let path = format!("/proc/{pid}/{what}");
        move |e| proc::convert(e, pid, &path)
    };
    let status = p.status().map_err(conv("status"))?;
    let limits = p.limits().map_err(conv("limits"))?;
    let commit_kb = proc::smaps::read(pid).ok().map(|maps| {
        maps.iter()
            .filter(|m| m.accountable)
            .map(|m| m.size_kb())
            .sum()
    });
    Ok(ProcessOut {
        pid,
        command: status.name.clone(),
        commit_kb,
        vm_size_kb: status.vmsize.unwrap_or(0),
        vm_rss_kb: status.vmrss.unwrap_or(0),
        vm_swap_kb: status.vmswap.unwrap_or(0),
        vm_locked_kb: status.vmlck.unwrap_or(0),
        oom_score: p.oom_score().map_err(conv("oom_score"))?,
        oom_score_adj: p.oom_score_adj().map_err(conv("oom_score_adj"))?,
        rlimit_as: limit(&limits.max_address_space),
        rlimit_memlock: limit(&limits.max_locked_memory),
        cgroup: cgroup::of(pid),
    })
}

/// PF_KTHREAD in the stat flags: kernel threads own no memory and are never chosen.
const PF_KTHREAD: u32 = 0x0020_0000;

/// The processes the OOM killer would pick first: highest `oom_score` first (ties, common since
/// the score is per mille of all memory, by RSS + swap, which is what the score counts), leaving
/// out what it never kills (kernel threads, init, and `oom_score_adj` -1000) and memcheck itself.
/// Processes that exit or cannot be read during the scan are left out.
fn oom_ranking(top: usize) -> Vec<OomOut> {
    let me = std::process::id() as i32;
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut out: Vec<OomOut> = all
        .filter_map(|p| {
            let p = p.ok()?;
            let stat = p.stat().ok()?;
            if stat.flags & PF_KTHREAD != 0 || p.pid() == 1 || p.pid() == me {
                return None;
            }
            let adj = p.oom_score_adj().ok()?;
            if adj == -1000 {
                return None;
            }
            let status = p.status().ok()?;
            Some(OomOut {
                pid: p.pid(),
                command: stat.comm,
                oom_score: p.oom_score().ok()?,
                oom_score_adj: adj,
                rss_kb: status.vmrss.unwrap_or(0),
                swap_kb: status.vmswap.unwrap_or(0),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.oom_score
            .cmp(&a.oom_score)
            .then((b.rss_kb + b.swap_kb).cmp(&(a.rss_kb + a.swap_kb)))
    });
    out.truncate(top);
    out
}

fn limit_text(l: &Limit) -> String {
    let v = |x: Option<u64>| x.map(units::bytes).unwrap_or_else(|| "unlimited".into());
    format!("soft {}, hard {}", v(l.soft), v(l.hard))
}

pub fn render(r: &OvercommitReport, p: &Painter) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} vm.overcommit_memory = {} ({}): {}",
        p.bold("overcommit:"),
        r.mode,
        r.mode_name,
        r.meaning
    );
    let _ = writeln!(
        out,
        "  vm.overcommit_ratio   {}%{}",
        r.ratio,
        if r.kbytes != 0 {
            " (not used: overcommit_kbytes is set)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  vm.overcommit_kbytes  {}{}",
        r.kbytes,
        if r.kbytes == 0 {
            " (unset: the ratio applies)"
        } else {
            ""
        }
    );
    let agree = if r.commit_limit_computed_kb == r.commit_limit_kb {
        p.green("matches")
    } else {
        p.yellow("differs")
    };
    let _ = writeln!(
        out,
        "  CommitLimit           {:>10}  ({} KiB; recomputed {} KiB = {}: {})",
        kib(r.commit_limit_kb),
        r.commit_limit_kb,
        r.commit_limit_computed_kb,
        r.commit_limit_formula,
        agree
    );
    let _ = writeln!(
        out,
        "  Committed_AS          {:>10}  ({} KiB)",
        kib(r.committed_as_kb),
        r.committed_as_kb
    );
    let head = if r.headroom_kb >= 0 {
        kib(r.headroom_kb as u64)
    } else {
        format!("-{}", kib(r.headroom_kb.unsigned_abs()))
    };
    let _ = writeln!(
        out,
        "  headroom              {:>10}  (CommitLimit - Committed_AS; {})",
        head,
        if r.commit_limit_enforced {
            "allocations beyond it fail now"
        } else {
            "not enforced in this mode"
        }
    );
    if r.mode == 0 {
        let _ = writeln!(
            out,
            "  largest allocation    {:>10}  (RAM + swap: mode 0 refuses any single allocation above it)",
            kib(r.heuristic_limit_kb)
        );
    }
    let _ = writeln!(
        out,
        "  reserves              admin {} KiB, user {} KiB (subtracted in mode 2)",
        r.admin_reserve_kb, r.user_reserve_kb
    );
    let _ = writeln!(
        out,
        "  vm.max_map_count      {} regions per process",
        r.max_map_count
    );
    match &r.cgroup {
        Some(c) => {
            let _ = write!(
                out,
                "\n{} (memcheck's own; in a container these, not CommitLimit, decide when the OOM killer acts)\n{}",
                p.bold("cgroup:"),
                cgroup_text(c, "")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "\n{} no cgroup with a memory controller",
                p.bold("cgroup:")
            );
        }
    }
    if let Some(c) = &r.check {
        let verdict = if c.succeeded {
            p.green("would succeed")
        } else {
            p.red("would fail")
        };
        let _ = writeln!(
            out,
            "\n{} {} ({} bytes) {}: a real mmap in a child {}",
            p.bold("check:"),
            units::bytes(c.size_bytes),
            c.size_bytes,
            verdict,
            match &c.error {
                None => "was granted".to_string(),
                Some(e) => format!("failed with {e}"),
            }
        );
        let _ = writeln!(out, "  {}", c.explanation);
    }
    if let Some(x) = &r.process {
        let _ = writeln!(
            out,
            "\n{} pid {} ({})",
            p.bold("process:"),
            x.pid,
            x.command
        );
        let commit = x
            .commit_kb
            .map(kib)
            .unwrap_or_else(|| "unknown (its smaps is not readable)".into());
        let _ = writeln!(
            out,
            "  commit {commit}, VmSize {}, RSS {}, swap {}, locked {}",
            kib(x.vm_size_kb),
            kib(x.vm_rss_kb),
            kib(x.vm_swap_kb),
            kib(x.vm_locked_kb)
        );
        let _ = writeln!(
            out,
            "  oom_score {}, oom_score_adj {}",
            x.oom_score, x.oom_score_adj
        );
        let _ = writeln!(out, "  RLIMIT_AS {}", limit_text(&x.rlimit_as));
        let _ = writeln!(out, "  RLIMIT_MEMLOCK {}", limit_text(&x.rlimit_memlock));
        if let Some(c) = &x.cgroup {
            out.push_str(&cgroup_text(c, "  "));
        }
    }
    if let Some(list) = &r.oom {
        let _ = writeln!(
            out,
            "\n{}",
            p.bold("OOM killer's first picks (highest oom_score first):")
        );
        let _ = writeln!(
            out,
            "{}",
            p.bold(&format!(
                "{:>8} {:>6} {:>6} {:>10} {:>10}  COMMAND",
                "PID", "SCORE", "ADJ", "RSS", "SWAP"
            ))
        );
        for o in list {
            let _ = writeln!(
                out,
                "{:>8} {:>6} {:>6} {:>10} {:>10}  {}",
                o.pid,
                o.oom_score,
                o.oom_score_adj,
                kib(o.rss_kb),
                kib(o.swap_kb),
                o.command
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_probe_succeeds_and_an_absurd_one_fails() {
        assert_eq!(probe(1 << 20).unwrap(), Ok(()));
        // Larger than the 47-bit user address space: refused in every mode.
        assert!(probe(1 << 50).unwrap().is_err());
    }

    #[test]
    fn our_own_process_is_described() {
        let me = std::process::id() as i32;
        let x = process(me).unwrap();
        assert_eq!(x.pid, me);
        assert!(x.commit_kb.unwrap() > 0);
        let adj: i16 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(x.oom_score_adj, adj);
    }
}
