//! What `/proc/PID/status` and `smaps_rollup` say about a process's memory, for `memcheck
//! stats`. Invariant: a field the kernel does not show is `None`,
//! never 0.
use serde::Serialize;

/// The memory footprint of a process in KiB, as `/proc` shows it.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessMem {
    pub rss_kb: Option<u64>,
    pub rss_anon_kb: Option<u64>,
    pub rss_file_kb: Option<u64>,
    pub hwm_kb: Option<u64>,
    pub data_kb: Option<u64>,
    pub vsize_kb: Option<u64>,
    pub swap_kb: Option<u64>,
    pub pss_kb: Option<u64>,
    pub private_dirty_kb: Option<u64>,
    pub threads: Option<u64>,
}

/// The footprint of `pid`; all `None` if the process is gone or unreadable.
pub fn footprint(pid: i32) -> ProcessMem {
    let mut m = ProcessMem::default();
    if let Ok(p) = procfs::process::Process::new(pid) {
        if let Ok(st) = p.status() {
            m.rss_kb = st.vmrss;
            m.rss_anon_kb = st.rssanon;
            m.rss_file_kb = st.rssfile;
            m.hwm_kb = st.vmhwm;
            m.data_kb = st.vmdata;
            m.vsize_kb = st.vmsize;
            m.swap_kb = st.vmswap;
            m.threads = Some(st.threads);
        }
        if let Ok(r) = p.smaps_rollup() {
            if let Some(map) = r.memory_map_rollup.iter().next() {
                let get = |k: &str| map.extension.map.get(k).map(|b| b / 1024);
                m.pss_kb = get("Pss");
                m.private_dirty_kb = get("Private_Dirty");
                if m.swap_kb.is_none() {
                    m.swap_kb = get("Swap");
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_footprint() {
        let m = footprint(std::process::id() as i32);
        assert!(m.rss_kb.unwrap() > 0);
        assert!(m.threads.unwrap() >= 1);
    }
}
