//! `memcheck maps PID`: every region of `/proc/PID/smaps` with its kind, its ELF sections and its
//! memory counters, sorted and filtered, with totals by kind (as `pmap -X`), as text or JSON.
//! Invariant: the counters are the kernel's, untouched; totals are sums over the regions shown.
use super::inspect;
use crate::cli::{ColorChoice, Format, MapsArgs, MapsSort};
use crate::layout::{self, Kind, Region};
use crate::proc::{self, smaps, tasks};
use crate::style::Painter;
use crate::units::{hex, kib};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The JSON document (contract in `docs/inspection.md`).
#[derive(Serialize, Debug)]
pub struct MapsReport {
    /// The format version of this JSON.
    pub version: u32,
    pub pid: i32,
    pub command: String,
    pub page_size: u64,
    pub threads: usize,
    /// The brk area: `start_brk` from /proc/PID/stat and the current break rounded up to a page
    /// (the end of `[heap]`; the kernel does not export the exact break).
    pub heap: Option<Heap>,
    pub regions: Vec<RegionOut>,
    pub totals: BTreeMap<&'static str, Totals>,
    pub total: Totals,
}

#[derive(Serialize, Debug)]
pub struct Heap {
    pub start: String,
    pub brk: String,
    pub size_kb: u64,
}

#[derive(Serialize, Debug)]
pub struct RegionOut {
    pub start: String,
    pub end: String,
    pub perms: String,
    pub offset: String,
    pub dev: String,
    pub inode: u64,
    pub kind: Kind,
    pub path: Option<String>,
    pub name: Option<String>,
    pub sections: Vec<String>,
    pub tid: Option<i32>,
    pub size_kb: u64,
    pub dirty_kb: u64,
    #[serde(flatten)]
    pub counters: smaps::Counters,
    pub accountable: bool,
}

#[derive(Serialize, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub regions: usize,
    pub size_kb: u64,
    pub rss_kb: u64,
    pub pss_kb: u64,
    pub dirty_kb: u64,
    pub swap_kb: u64,
    pub anonymous_kb: u64,
    pub locked_kb: u64,
}

impl Totals {
    fn add(&mut self, r: &Region) {
        let c = &r.mapping.counters;
        self.regions += 1;
        self.size_kb += r.mapping.size_kb();
        self.rss_kb += c.rss_kb;
        self.pss_kb += c.pss_kb;
        self.dirty_kb += c.dirty_kb();
        self.swap_kb += c.swap_kb;
        self.anonymous_kb += c.anonymous_kb;
        self.locked_kb += c.locked_kb;
    }
}

fn heap(pid: i32, regions: &[Region]) -> Option<Heap> {
    let stat = proc::process(pid).ok()?.stat().ok()?;
    let start = stat.start_brk.filter(|&s| s != 0)?;
    let brk = regions
        .iter()
        .find(|r| r.mapping.name == smaps::MapName::Heap)
        .map(|r| r.mapping.end)
        .unwrap_or(start);
    Some(Heap {
        start: hex(start),
        brk: hex(brk),
        size_kb: brk.saturating_sub(start) / 1024,
    })
}

pub fn build(a: &MapsArgs) -> Result<MapsReport> {
    let mut all = layout::regions(a.pid)?;
    let heap = heap(a.pid, &all);
    let threads = tasks::threads(a.pid).len();
    if !a.kinds.is_empty() {
        all.retain(|r| a.kinds.contains(&r.kind));
    }
    match a.sort {
        MapsSort::Start => {}
        MapsSort::Size => all.sort_by_key(|r| std::cmp::Reverse(r.mapping.size())),
        MapsSort::Rss => all.sort_by_key(|r| std::cmp::Reverse(r.mapping.counters.rss_kb)),
        MapsSort::Pss => all.sort_by_key(|r| std::cmp::Reverse(r.mapping.counters.pss_kb)),
        MapsSort::Swap => all.sort_by_key(|r| std::cmp::Reverse(r.mapping.counters.swap_kb)),
        MapsSort::Kind => all.sort_by_key(|r| (r.kind, r.mapping.start)),
    }
    let mut totals = BTreeMap::new();
    let mut total = Totals::default();
    for r in &all {
        totals
            .entry(r.kind.as_str())
            .or_insert_with(Totals::default)
            .add(r);
        total.add(r);
    }
    let regions = all
        .into_iter()
        .map(|r| {
            let m = r.mapping;
            RegionOut {
                start: hex(m.start),
                end: hex(m.end),
                perms: m.perms.clone(),
                offset: hex(m.offset),
                dev: format!("{:02x}:{:02x}", m.dev.0, m.dev.1),
                inode: m.inode,
                kind: r.kind,
                path: r.path,
                name: m.name.shown(),
                sections: r.sections,
                tid: r.tid,
                size_kb: m.size_kb(),
                dirty_kb: m.counters.dirty_kb(),
                counters: m.counters,
                accountable: m.accountable,
            }
        })
        .collect();
    Ok(MapsReport {
        version: inspect::JSON_VERSION,
        pid: a.pid,
        command: proc::comm(a.pid),
        page_size: proc::page_size(),
        threads,
        heap,
        regions,
        totals,
        total,
    })
}

pub fn run(a: &MapsArgs, color: ColorChoice) -> Result<i32> {
    let report = build(a)?;
    let text = match a.format {
        Format::Json => inspect::json(&report),
        Format::Text => render(&report, &inspect::painter(color, a.output.as_deref())),
    };
    inspect::emit(a.output.as_deref(), &text)?;
    Ok(0)
}

fn parse_hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0)
}

/// The sections column: all of them for short lists, the first five and a count otherwise.
fn sections_column(s: &[String]) -> String {
    const SHOWN: usize = 5;
    if s.len() <= SHOWN + 1 {
        s.join(" ")
    } else {
        format!("{} +{} more", s[..SHOWN].join(" "), s.len() - SHOWN)
    }
}

pub fn render(r: &MapsReport, p: &Painter) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} pid {} ({}): {} region{}, {} thread{}",
        p.bold("memcheck maps:"),
        r.pid,
        r.command,
        r.regions.len(),
        if r.regions.len() == 1 { "" } else { "s" },
        r.threads,
        if r.threads == 1 { "" } else { "s" }
    );
    if let Some(h) = &r.heap {
        let _ = writeln!(
            out,
            "heap (brk area): start {}, break {} (page-rounded), {}",
            h.start,
            h.brk,
            kib(h.size_kb)
        );
    }
    if r.regions.is_empty() && r.heap.is_none() {
        let _ = writeln!(
            out,
            "no user-space memory: a kernel thread, or a process that is exiting"
        );
    }
    let w = r
        .regions
        .iter()
        .map(|x| x.end.len() - 2)
        .max()
        .unwrap_or(12)
        .max(5);
    let _ = writeln!(
        out,
        "\n{}",
        p.bold(&format!(
            "{:>w$} {:>w$} {:<5} {:>10} {:>10} {:>10} {:>10} {:>10}  {:<12}  PATH / SECTIONS",
            "START", "END", "PERMS", "SIZE", "RSS", "PSS", "DIRTY", "SWAP", "KIND"
        ))
    );
    for x in &r.regions {
        let mut what = match (&x.path, &x.name) {
            (Some(path), _) => path.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => String::new(),
        };
        if let Some(t) = x.tid {
            what = format!("{what}[tid {t}]").trim_start().to_string();
        }
        if !x.sections.is_empty() {
            what = format!("{what}  {}", p.dim(&sections_column(&x.sections)));
        }
        let kind = format!("{:<12}", x.kind.as_str());
        let kind = match x.kind {
            Kind::Heap | Kind::MallocArena => p.yellow(&kind),
            Kind::Stack | Kind::ThreadStack => p.green(&kind),
            Kind::Guard => p.dim(&kind),
            Kind::Memcheck => p.red(&kind),
            _ => kind,
        };
        let _ = writeln!(
            out,
            "{:>w$x} {:>w$x} {:<5} {:>10} {:>10} {:>10} {:>10} {:>10}  {}  {}",
            parse_hex(&x.start),
            parse_hex(&x.end),
            x.perms,
            kib(x.size_kb),
            kib(x.counters.rss_kb),
            kib(x.counters.pss_kb),
            kib(x.dirty_kb),
            kib(x.counters.swap_kb),
            kind,
            what
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        p.bold(&format!(
            "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "KIND", "REGIONS", "SIZE", "RSS", "PSS", "DIRTY", "SWAP", "ANON"
        ))
    );
    let mut kinds: Vec<(&&str, &Totals)> = r.totals.iter().collect();
    kinds.sort_by_key(|(_, t)| std::cmp::Reverse(t.rss_kb));
    let row = |name: &str, t: &Totals| {
        format!(
            "{:<12} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            name,
            t.regions,
            kib(t.size_kb),
            kib(t.rss_kb),
            kib(t.pss_kb),
            kib(t.dirty_kb),
            kib(t.swap_kb),
            kib(t.anonymous_kb)
        )
    };
    for (k, t) in kinds {
        let _ = writeln!(out, "{}", row(k, t));
    }
    let _ = writeln!(out, "{}", p.bold(&row("total", &r.total)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_has_text_heap_and_stack() {
        // Make sure the brk heap exists and holds something.
        let keep: Vec<Box<[u8; 64]>> = (0..64).map(|_| Box::new([1u8; 64])).collect();
        let a = MapsArgs {
            pid: std::process::id() as i32,
            sort: MapsSort::Start,
            kinds: vec![],
            format: Format::Json,
            output: None,
        };
        let r = build(&a).unwrap();
        let kinds: Vec<Kind> = r.regions.iter().map(|x| x.kind).collect();
        for k in [
            Kind::Text,
            Kind::Rodata,
            Kind::Data,
            Kind::Stack,
            Kind::Vdso,
        ] {
            assert!(kinds.contains(&k), "{k:?} missing: {kinds:?}");
        }
        let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
        let exe = exe.to_str().unwrap();
        assert!(r.regions.iter().any(|x| x.kind == Kind::Text
            && x.path.as_deref() == Some(exe)
            && x.sections.iter().any(|s| s == ".text")));
        let sum: u64 = r.totals.values().map(|t| t.rss_kb).sum();
        assert_eq!(sum, r.total.rss_kb);
        assert_eq!(r.total.regions, r.regions.len());
        let text = render(&r, &Painter { on: false });
        assert!(text.contains("total"), "{text}");
        std::hint::black_box(keep);

        let only = MapsArgs {
            kinds: vec![Kind::Stack],
            sort: MapsSort::Size,
            ..a
        };
        let r = build(&only).unwrap();
        assert!(r.regions.iter().all(|x| x.kind == Kind::Stack));
        assert_eq!(r.totals.keys().copied().collect::<Vec<_>>(), ["stack"]);
    }

    #[test]
    fn long_section_lists_are_shortened() {
        let s: Vec<String> = (0..9).map(|i| format!(".s{i}")).collect();
        assert_eq!(sections_column(&s), ".s0 .s1 .s2 .s3 .s4 +4 more");
        assert_eq!(sections_column(&s[..3]), ".s0 .s1 .s2");
    }
}
