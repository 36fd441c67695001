//! Live allocation sites: the answer to a live sites request (`memcheck_wire::live::SITES`)
//! grouped by symbolized allocation stack, for `memcheck stats --sites` and the snapshots of
//! `memcheck run --snapshot-interval`/`--snapshot-signal`: live bytes and blocks per site, and the
//! allocation calls made there (heaptrack's "allocations", freed blocks included).
use super::{source_lines, stack_frames};
use crate::records::ProcessRecords;
use crate::style::Painter;
use crate::symbolize::{Frame, Symbolizer};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// One allocation site.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Site {
    pub bytes: u64,
    pub blocks: u64,
    /// Allocation calls made at this stack since the process started (freed blocks included).
    pub allocs: u64,
    /// Share of the process's live bytes, in percent.
    pub percent_bytes: f64,
    /// The change since the previous refresh of `--watch`, or the previous snapshot (null in
    /// the first).
    #[serde(default)]
    pub growth_bytes: Option<i64>,
    #[serde(default)]
    pub growth_blocks: Option<i64>,
    #[serde(default)]
    pub growth_allocs: Option<i64>,
    /// The function names of the stack, hashed (as a leak's fingerprint, of kind `live`): the
    /// same in another run of the program.
    pub fingerprint: String,
    #[serde(skip)]
    key: String,
    pub stack: Vec<Frame>,
}

/// What sites are ordered by, largest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Bytes,
    Blocks,
    Allocs,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Bytes => "bytes",
            Sort::Blocks => "blocks",
            Sort::Allocs => "allocs",
        }
    }
}

/// The sites of one answer.
#[derive(Debug, Clone)]
pub struct Sites {
    pub live_bytes: u64,
    pub live_blocks: u64,
    /// Every site with live blocks or allocation calls.
    pub sites: Vec<Site>,
}

/// Bytes, blocks and calls per site (by symbolized stack): what growth is counted from.
pub type Sizes = HashMap<String, (u64, u64, u64)>;

/// Groups a sites answer by symbolized stack (two ids of one source line merge).
pub fn from_records(recs: &ProcessRecords, sym: &mut Symbolizer) -> Sites {
    let (live_bytes, live_blocks) = recs.leak_summary.map_or((0, 0), |s| {
        s.kinds[memcheck_wire::LeakKind::Reachable as usize]
    });
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut sites: Vec<Site> = Vec::new();
    let mut site_of = |id: u32, sym: &mut Symbolizer, sites: &mut Vec<Site>| -> usize {
        let stack = stack_frames(recs, sym, id, false);
        let key: String = source_lines(&stack)
            .iter()
            .map(|l| format!("{l:?};"))
            .collect();
        *by_key.entry(key.clone()).or_insert_with(|| {
            sites.push(Site {
                bytes: 0,
                blocks: 0,
                allocs: 0,
                percent_bytes: 0.0,
                growth_bytes: None,
                growth_blocks: None,
                growth_allocs: None,
                fingerprint: super::fingerprint::of_leak("live", &stack),
                key,
                stack,
            });
            sites.len() - 1
        })
    };
    let mut ids: HashMap<u32, usize> = HashMap::new();
    for l in &recs.leaks {
        let i = match ids.get(&l.stack) {
            Some(&i) => i,
            None => {
                let i = site_of(l.stack, sym, &mut sites);
                ids.insert(l.stack, i);
                i
            }
        };
        sites[i].bytes += l.bytes;
        sites[i].blocks += l.blocks;
    }
    for (&id, &n) in &recs.allocs {
        let i = match ids.get(&id) {
            Some(&i) => i,
            None => site_of(id, sym, &mut sites),
        };
        sites[i].allocs += n;
    }
    for s in &mut sites {
        s.percent_bytes = if live_bytes == 0 {
            0.0
        } else {
            (s.bytes as f64 * 1000.0 / live_bytes as f64).round() / 10.0
        };
    }
    Sites {
        live_bytes,
        live_blocks,
        sites,
    }
}

/// Orders `sites` by `by`, largest first (ties by the other figures, then the stack).
pub fn sort(sites: &mut [Site], by: Sort) {
    let k = |s: &Site| match by {
        Sort::Bytes => (s.bytes, s.blocks, s.allocs),
        Sort::Blocks => (s.blocks, s.bytes, s.allocs),
        Sort::Allocs => (s.allocs, s.bytes, s.blocks),
    };
    sites.sort_by(|x, y| k(y).cmp(&k(x)).then_with(|| x.key.cmp(&y.key)));
}

/// The figures of every site, for the growth at the next refresh.
pub fn sizes(sites: &[Site]) -> Sizes {
    let mut m = Sizes::new();
    for s in sites {
        let e = m.entry(s.key.clone()).or_default();
        e.0 += s.bytes;
        e.1 += s.blocks;
        e.2 += s.allocs;
    }
    m
}

/// Sets each site's growth since `before` (a site new since then grew from 0).
pub fn set_growth(sites: &mut [Site], before: &Sizes) {
    for s in sites {
        let (b, n, a) = before.get(&s.key).copied().unwrap_or((0, 0, 0));
        s.growth_bytes = Some(s.bytes as i64 - b as i64);
        s.growth_blocks = Some(s.blocks as i64 - n as i64);
        s.growth_allocs = Some(s.allocs as i64 - a as i64);
    }
}

/// A stack in one line: its first frames, innermost first; `(no stack)` for an empty one (a
/// process run with `--keep-stacktraces=free` or `none` keeps no allocation stacks).
pub fn short_stack(stack: &[Frame]) -> String {
    if stack.is_empty() {
        return "(no stack)".into();
    }
    let mut parts = Vec::new();
    for f in stack.iter().take(4) {
        let name = f.function.as_deref().unwrap_or("???");
        parts.push(match (&f.file, f.line) {
            (Some(file), Some(line)) => {
                let base = Path::new(file)
                    .file_name()
                    .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
                format!("{name} ({base}:{line})")
            }
            _ => name.to_string(),
        });
    }
    if stack.len() > 4 {
        parts.push("...".into());
    }
    parts.join(" < ")
}

/// The table of `sites`, each line after `prefix`: a header, then one line per site (bytes,
/// blocks, allocs, share, the growth when known, the stack).
pub fn table(sites: &[Site], prefix: &str, p: &Painter) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let growth = sites.iter().any(|s| s.growth_bytes.is_some());
    let _ = writeln!(
        o,
        "{prefix}{}",
        p.bold(&format!(
            "{:>11} {:>9} {:>9} {:>6}{}  site",
            "bytes",
            "blocks",
            "allocs",
            "share",
            if growth {
                "                 growth"
            } else {
                ""
            }
        ))
    );
    for s in sites {
        let g = match (s.growth_bytes, s.growth_blocks, s.growth_allocs) {
            (Some(b), Some(n), Some(a)) => format!(" {b:>+9} B {n:>+5} {a:>+7}"),
            _ => String::new(),
        };
        let _ = writeln!(
            o,
            "{prefix}{:>11} {:>9} {:>9} {:>5.1}%{g}  {}",
            crate::units::bytes(s.bytes),
            s.blocks,
            s.allocs,
            s.percent_bytes,
            short_stack(&s.stack)
        );
    }
    o
}

/// A live-sites report of a running process, taken by `memcheck run --snapshot-interval` or
/// `--snapshot-signal` (JSON: the process's `snapshots`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// 1, 2, ... in the run (every process's snapshot taken at one moment has the same number).
    pub number: u32,
    /// What took it: `interval` or `signal`.
    #[serde(deserialize_with = "super::static_str")]
    pub trigger: &'static str,
    /// Seconds since the program started, and Unix time in milliseconds.
    pub elapsed_seconds: f64,
    pub unix_time_ms: u64,
    pub live_bytes: u64,
    pub live_blocks: u64,
    /// How many sites have live blocks (`sites` holds the largest [`SNAPSHOT_TOP`]).
    pub total_sites: usize,
    pub sites: Vec<Site>,
}

/// The sites a snapshot lists, by live bytes.
pub const SNAPSHOT_TOP: usize = 20;

/// The text of a snapshot, each line after `prefix` (`==PID== `).
pub fn snapshot_text(s: &Snapshot, pid: u32, prefix: &str, p: &Painter) -> String {
    let head = format!(
        "Snapshot {} of pid {pid} ({}, {:.1} s): {} live in {} blocks at {} allocation sites{}",
        s.number,
        s.trigger,
        s.elapsed_seconds,
        crate::units::bytes(s.live_bytes),
        s.live_blocks,
        s.total_sites,
        if s.total_sites > s.sites.len() {
            format!(", the {} largest:", s.sites.len())
        } else {
            String::new()
        }
    );
    let mut o = format!("{prefix}{}\n", p.bold(&head));
    if !s.sites.is_empty() {
        o.push_str(&table(&s.sites, prefix, p));
    }
    o.push_str(prefix.trim_end());
    o.push('\n');
    o
}
