//! Baselines: `memcheck run --write-baseline FILE` records the run's findings by fingerprint
//! (their kind and the function names of their stack, see [`super::fingerprint`]), and
//! `--baseline FILE` (of `run` and `report`) marks the findings it lists as known: they are still
//! shown, but only the others fail the run. The file (contract in `docs/ci.md`) is JSON, one
//! entry per fingerprint, sorted, so a change of it reads well in a diff:
//!
//! ```json
//! {
//!   "format": "memcheck-baseline",
//!   "version": 1,
//!   "findings": [
//!     { "kind": "leak-definite", "count": 1, "fingerprint": "…", "functions": ["f", "main"] }
//!   ]
//! }
//! ```
//!
//! A finding is known when its fingerprint is in the file; `count` (how many findings had it when
//! the file was written) is for the reader and is not compared.
use super::fingerprint;
use crate::symbolize::Frame;
use memcheck_wire::{ErrorKind, LeakKind};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The `format` field of a baseline file.
pub const FORMAT: &str = "memcheck-baseline";
/// The version of the baseline format this memcheck reads and writes.
pub const VERSION: u32 = 1;

/// One finding of a baseline: a fingerprint with what it was computed from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The error kind (`heap-buffer-overflow`, ...), or `leak-KIND` for a leak (`leak-definite`):
    /// the SARIF rule id.
    pub kind: String,
    /// How many findings of the run that wrote the file had this fingerprint.
    #[serde(default)]
    pub count: u64,
    /// [`fingerprint`] of the kind and functions; computed when left out.
    #[serde(default)]
    pub fingerprint: String,
    /// The frames the fingerprint hashes, innermost first: function names (`in OBJECT` for an
    /// unnamed frame), without memcheck's and libc's start-up frames.
    pub functions: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    version: u32,
    findings: Vec<Entry>,
}

/// What a run (or `memcheck report`) made of its `--baseline`: in the report's `baseline`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Use {
    /// The baseline file as given.
    pub file: String,
    /// Findings of this run that the baseline has (each counted once per process).
    pub known: u64,
    /// Findings that are not in the baseline and fail the run.
    pub new: Vec<Entry>,
    /// Entries of the baseline that no finding of this run has.
    pub disappeared: Vec<Entry>,
}

/// The fingerprint's class and kind of a baseline kind (`leak-definite` -> `leak`, `definite`),
/// or `None` for an unknown kind.
fn class_of(kind: &str) -> Option<(&'static str, &str)> {
    match kind.strip_prefix("leak-") {
        Some(k) => LeakKind::ALL
            .iter()
            .any(|l| l.name() == k)
            .then_some(("leak", k)),
        None => ErrorKind::ALL
            .iter()
            .any(|e| e.name() == kind)
            .then_some(("error", kind)),
    }
}

/// A loaded baseline file.
#[derive(Debug, Clone)]
pub struct Baseline {
    file: String,
    entries: Vec<Entry>,
}

impl Baseline {
    /// Reads and checks a baseline file; the error is one line naming the file (for `flag`,
    /// `--baseline`) and what to do.
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "--baseline {shown}: no such file: write it first with --write-baseline {shown}"
            ),
            _ => format!("--baseline {shown}: cannot be read: {e}"),
        })?;
        Self::parse(&text)
            .map_err(|e| format!("--baseline {shown}: {e}"))
            .map(|entries| Baseline {
                file: shown,
                entries,
            })
    }

    fn parse(text: &str) -> Result<Vec<Entry>, String> {
        let remedy = "write one with --write-baseline FILE";
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("not a memcheck baseline ({e}): {remedy}"))?;
        if value.get("processes").is_some() {
            return Err(format!(
                "this is a memcheck JSON report, not a baseline: {remedy}"
            ));
        }
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format!(
                "not a memcheck baseline (no \"format\": \"{FORMAT}\"): {remedy}"
            ));
        }
        if let Some(v) = value.get("version").and_then(|v| v.as_u64()) {
            if v != VERSION as u64 {
                return Err(format!(
                    "a baseline of format version {v}: this memcheck reads version {VERSION}"
                ));
            }
        }
        let file = File::deserialize(value)
            .map_err(|e| format!("not a memcheck baseline ({e}): {remedy}"))?;
        let mut entries = file.findings;
        for (i, e) in entries.iter_mut().enumerate() {
            let Some((class, kind)) = class_of(&e.kind) else {
                return Err(format!(
                    "finding {}: unknown kind \"{}\": use an error kind (heap-buffer-overflow, ...) or leak-definite, leak-indirect, leak-possible, leak-reachable",
                    i + 1,
                    e.kind
                ));
            };
            let fp = fingerprint::of_functions(class, kind, &e.functions);
            if e.fingerprint.is_empty() {
                e.fingerprint = fp;
            } else if e.fingerprint != fp {
                return Err(format!(
                    "finding {} ({}): its fingerprint does not match its kind and functions: correct them, or delete the fingerprint to have it computed",
                    i + 1,
                    e.kind
                ));
            }
        }
        Ok(entries)
    }
}

/// What the run saw of one fingerprint.
struct Seen {
    entry: Entry,
    known: bool,
    /// Some finding with it fails the run (an error, a leak of --errors-for-leak-kinds).
    counts: bool,
}

/// Matches the findings of a run against a baseline (when given) and collects them (for
/// `--write-baseline`). Kept in a `RefCell` across the processes of a run, as the suppressions'
/// hit counts.
pub struct Matcher {
    baseline: Option<Baseline>,
    known: HashSet<String>,
    seen: RefCell<BTreeMap<(String, Vec<String>), Seen>>,
}

impl Matcher {
    pub fn new(baseline: Option<Baseline>) -> Matcher {
        let known = baseline
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| e.fingerprint.clone()))
            .collect();
        Matcher {
            baseline,
            known,
            seen: RefCell::new(BTreeMap::new()),
        }
    }

    /// Notes a finding of `kind` (an error kind, or `leak-KIND`) with this stack and fingerprint;
    /// `counts` says whether it fails the run unless known. Returns whether the baseline has it.
    pub fn saw(&self, kind: &str, stack: &[Frame], fp: &str, counts: bool) -> bool {
        let known = self.known.contains(fp);
        let functions = fingerprint::functions(stack);
        let mut seen = self.seen.borrow_mut();
        let s = seen
            .entry((kind.to_string(), functions.clone()))
            .or_insert_with(|| Seen {
                entry: Entry {
                    kind: kind.to_string(),
                    count: 0,
                    fingerprint: fp.to_string(),
                    functions,
                },
                known,
                counts: false,
            });
        s.entry.count += 1;
        s.counts |= counts;
        known
    }

    /// The baseline file of every finding seen, sorted by kind and functions.
    pub fn write(&self) -> String {
        let file = File {
            format: FORMAT.to_string(),
            version: VERSION,
            findings: self
                .seen
                .borrow()
                .values()
                .map(|s| s.entry.clone())
                .collect(),
        };
        let mut s = serde_json::to_string_pretty(&file).expect("a baseline serializes");
        s.push('\n');
        s
    }

    /// The result of matching, when a baseline was given.
    pub fn result(&self) -> Option<Use> {
        let b = self.baseline.as_ref()?;
        let seen = self.seen.borrow();
        let found: HashSet<&str> = seen
            .values()
            .map(|s| s.entry.fingerprint.as_str())
            .collect();
        Some(Use {
            file: b.file.clone(),
            known: seen
                .values()
                .filter(|s| s.known)
                .map(|s| s.entry.count)
                .sum(),
            new: seen
                .values()
                .filter(|s| !s.known && s.counts)
                .map(|s| s.entry.clone())
                .collect(),
            disappeared: b
                .entries
                .iter()
                .filter(|e| !found.contains(e.fingerprint.as_str()))
                .cloned()
                .collect(),
        })
    }
}

/// `memcheck report FILE.json --baseline FILE`: marks the saved report's findings the baseline
/// has and gives it the result. A finding that is an error (not a warning) or a listed leak
/// counts as failing when new; the processes' ERROR SUMMARY stays as the run counted it.
pub fn apply(r: &mut super::Report, m: &Matcher) {
    for p in &mut r.processes {
        for e in &mut p.errors {
            let counts = e.severity == super::Severity::Error;
            e.known = m.saw(e.kind, &e.stack, &e.fingerprint, counts);
        }
        for l in &mut p.leaks {
            l.known = m.saw(
                &super::sarif::leak_rule(l.kind),
                &l.stack,
                &l.fingerprint,
                true,
            );
        }
    }
    r.baseline = m.result();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(func: &str, line: u32) -> Frame {
        Frame {
            address: 0x1000 + line as u64,
            function: Some(func.to_string()),
            file: Some("/src/a.c".into()),
            line: Some(line),
            object: Some("/src/a".into()),
            inlined: false,
        }
    }

    #[test]
    fn a_written_baseline_reads_back_and_matches_across_line_shifts() {
        let m = Matcher::new(None);
        let old = [frame("old_leak", 10), frame("main", 20)];
        let fp = fingerprint::of_leak("definite", &old);
        assert!(!m.saw("leak-definite", &old, &fp, true));
        let text = m.write();
        assert!(text.contains("\"format\": \"memcheck-baseline\""));
        assert!(text.contains("\"old_leak\""));
        let b = Baseline {
            file: "b.json".into(),
            entries: Baseline::parse(&text).unwrap(),
        };
        let m = Matcher::new(Some(b));
        let moved = [frame("old_leak", 14), frame("main", 31)];
        let fp2 = fingerprint::of_leak("definite", &moved);
        assert!(m.saw("leak-definite", &moved, &fp2, true));
        let new = [frame("new_leak", 3), frame("main", 9)];
        let fp3 = fingerprint::of_leak("definite", &new);
        assert!(!m.saw("leak-definite", &new, &fp3, true));
        let u = m.result().unwrap();
        assert_eq!(u.known, 1);
        assert_eq!(u.new.len(), 1);
        assert_eq!(u.new[0].functions, ["new_leak", "main"]);
        assert!(u.disappeared.is_empty());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = |t: &str| Baseline::parse(t).unwrap_err();
        assert!(err("{").contains("not a memcheck baseline"));
        assert!(err(r#"{"version": 1, "processes": []}"#).contains("JSON report"));
        assert!(
            err(r#"{"format": "memcheck-baseline", "version": 2, "findings": []}"#)
                .contains("version 2")
        );
        assert!(err(r#"{"format": "memcheck-baseline", "version": 1,
            "findings": [{"kind": "leak-lost", "functions": []}]}"#)
        .contains("unknown kind \"leak-lost\""));
        assert!(err(r#"{"format": "memcheck-baseline", "version": 1,
            "findings": [{"kind": "leak-definite", "fingerprint": "00", "functions": ["f"]}]}"#)
        .contains("does not match"));
        assert!(err(r#"{"format": "memcheck-baseline", "version": 1,
            "findings": [{"kind": "leak-definite", "functions": ["f"], "extra": 1}]}"#)
        .contains("unknown field"));
        // A hand-written entry without a fingerprint gets it computed.
        let e = Baseline::parse(
            r#"{"format": "memcheck-baseline", "version": 1,
            "findings": [{"kind": "double-free", "functions": ["f", "main"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            e[0].fingerprint,
            fingerprint::of_error("double-free", &[frame("f", 1), frame("main", 2)])
        );
    }
}
