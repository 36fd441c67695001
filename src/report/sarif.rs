//! SARIF 2.1.0 for code scanning (GitHub, GitLab, IDE viewers); the contract is in
//! `docs/report-format.md`.
//!
//! One rule per error kind (`ruleId` = the JSON kind name) and per leak kind (`leak-definite`,
//! `leak-indirect`, `leak-possible`, `leak-reachable`), every rule listed whether it was found or
//! not. Each finding is a result located at the innermost frame of the user's own code (below),
//! with its stacks as `codeFlows` and its fingerprint in `partialFingerprints["memcheck/v1"]`.
//! GitHub's upload limits are kept: at most [`MAX_RESULTS`] results a run and [`MAX_LOCATIONS`]
//! thread-flow locations a result (see [`render`]).
use super::{baseline, fingerprint};
use super::{text, ErrorReport, LeakReport, Report, Severity};
use crate::symbolize::Frame;
use serde_json::{json, Map, Value};
use std::path::{Component, Path, PathBuf};

/// GitHub keeps at most this many results of a run.
pub const MAX_RESULTS: usize = 25_000;
/// GitHub keeps at most this many locations of a result (counted over its code flows).
pub const MAX_LOCATIONS: usize = 1_000;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const SRCROOT: &str = "%SRCROOT%";

/// The rules: id, level, short description.
fn rules() -> Vec<(&'static str, &'static str, &'static str)> {
    use memcheck_wire::ErrorKind as K;
    let mut v: Vec<_> = K::ALL
        .iter()
        .map(|&k| {
            let about = match k {
                K::HeapBufferOverflow => "A read or write past the end of a heap block",
                K::HeapBufferUnderflow => "A read or write before the start of a heap block",
                K::UseAfterFree => "A read or write of a heap block after it was freed",
                K::DoubleFree => "A heap block freed twice",
                K::InvalidFree => "free of a pointer the allocator never returned",
                K::AllocDeallocMismatch => {
                    "A block released by a call of another family (malloc/free, new/delete, new[]/delete[])"
                }
                K::InvalidRealloc => "realloc of a freed block or of a pointer the allocator never returned",
                K::CallocOverflow => "calloc whose element count times size overflows size_t",
                K::AllocationSizeTooBig => "An allocation larger than any allocator can serve",
                K::InvalidAlignment => "An aligned allocation with an alignment that is not a power of two",
                K::Crash => "A fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) that ended the program",
                K::ParamOverlap => {
                    "A memory or string function given overlapping source and destination where its contract forbids it (memcpy, strcpy, strcat, ...)"
                }
            };
            (k.name(), if k.is_warning() { "warning" } else { "error" }, about)
        })
        .collect();
    v.extend([
        (
            "leak-definite",
            "error",
            "A heap block no pointer refers to at exit (definitely lost)",
        ),
        (
            "leak-indirect",
            "error",
            "A heap block reachable only from lost blocks at exit (indirectly lost)",
        ),
        (
            "leak-possible",
            "warning",
            "A heap block only pointed into, not at its start, at exit (possibly lost)",
        ),
        (
            "leak-reachable",
            "note",
            "A heap block still referenced at exit (still reachable)",
        ),
    ]);
    v
}

/// The `ruleId` of a leak kind.
pub fn leak_rule(kind: &str) -> String {
    format!("leak-{kind}")
}

/// Where source files are given relative to (`--source-root`).
struct Root {
    /// Absolute, lexically normalized.
    dir: PathBuf,
    /// Its canonical form, when it differs (a symbolic link on the way).
    canonical: Option<PathBuf>,
    /// [`Root::relative`]'s answers by file: every frame asks, and a file outside the root costs
    /// a `canonicalize` (system calls) each time.
    known: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
}

/// `path` made absolute (against the working directory) with `.` and `..` resolved lexically.
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl Root {
    fn new(dir: &Path) -> Root {
        let dir = absolute(dir);
        let canonical = std::fs::canonicalize(&dir).ok().filter(|c| *c != dir);
        Root {
            dir,
            canonical,
            known: Default::default(),
        }
    }

    /// The path of `file` relative to the root, if it lies under it (remembered per file).
    fn relative(&self, file: &str) -> Option<String> {
        if let Some(known) = self.known.borrow().get(file) {
            return known.clone();
        }
        let answer = self.find_relative(file);
        self.known
            .borrow_mut()
            .insert(file.to_string(), answer.clone());
        answer
    }

    fn find_relative(&self, file: &str) -> Option<String> {
        let f = Path::new(file);
        if !f.is_absolute() {
            return None;
        }
        let f = absolute(f);
        let under = |root: &Path, f: &Path| {
            f.strip_prefix(root)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .map(|r| r.to_string_lossy().into_owned())
        };
        under(&self.dir, &f)
            .or_else(|| self.canonical.as_deref().and_then(|c| under(c, &f)))
            .or_else(|| {
                let cf = std::fs::canonicalize(&f).ok()?;
                under(&self.dir, &cf)
                    .or_else(|| self.canonical.as_deref().and_then(|c| under(c, &cf)))
            })
    }

    /// `file:///abs/root/` (with the trailing slash SARIF requires of a base).
    fn uri(&self) -> String {
        let mut s = format!("file://{}", encode(&self.dir.to_string_lossy()));
        if !s.ends_with('/') {
            s.push('/');
        }
        s
    }
}

/// Percent-encodes what a URI path cannot hold (RFC 3986: unreserved characters and `/` stay).
fn encode(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The object is part of the system (libc, ld.so, the C++ runtime), not the user's code.
fn system_object(object: &str) -> bool {
    ["/lib/", "/usr/lib/", "/lib64/", "/usr/lib64/"]
        .iter()
        .any(|d| object.starts_with(d))
}

/// The artifact location of an absolute path: relative to `%SRCROOT%` when under it, else an
/// absolute `file://` URI.
fn artifact(file: &str, root: &Root) -> Value {
    match root.relative(file) {
        Some(rel) => json!({ "uri": encode(&rel), "uriBaseId": SRCROOT }),
        None if file.starts_with('/') => json!({ "uri": format!("file://{}", encode(file)) }),
        None => json!({ "uri": encode(file) }),
    }
}

/// A frame's physical location; none for a relative path the debug information did not anchor
/// to a directory (`./csu/libc-start.c` of a distribution's build), which names no file here.
fn physical(f: &Frame, root: &Root) -> Option<Value> {
    let file = f.file.as_deref().filter(|p| p.starts_with('/'))?;
    let mut p = Map::new();
    p.insert("artifactLocation".into(), artifact(file, root));
    if let Some(line) = f.line.filter(|&l| l > 0) {
        p.insert("region".into(), json!({ "startLine": line }));
    }
    Some(Value::Object(p))
}

/// The frame a result is located at: the innermost one whose source file lies under the source
/// root; else the innermost one with a source line in an object of the user's (not under
/// /lib, /usr/lib, /lib64, /usr/lib64, not memcheck's library); else the innermost frame with a
/// source file outside memcheck's library; else any with a source file.
fn primary(stack: &[Frame], root: &Root) -> Option<usize> {
    let has_file = |f: &Frame| f.file.as_deref().is_some_and(|p| p.starts_with('/'));
    let has_line = |f: &Frame| has_file(f) && f.line.is_some_and(|l| l > 0);
    stack
        .iter()
        .position(|f| {
            has_line(f)
                && f.file
                    .as_deref()
                    .is_some_and(|p| root.relative(p).is_some())
        })
        .or_else(|| {
            stack.iter().position(|f| {
                has_line(f)
                    && !fingerprint::is_shim(f)
                    && f.object.as_deref().is_some_and(|o| !system_object(o))
            })
        })
        .or_else(|| {
            stack
                .iter()
                .position(|f| has_file(f) && !fingerprint::is_shim(f))
        })
        .or_else(|| stack.iter().position(has_file))
}

/// The frame a finding is located at (the rule of [`primary`], over its stacks in order) and the
/// file as SARIF's `uri` names it (relative to `source_root` when under it): for `memcheck report
/// --diff`.
pub fn user_frame<'a>(stacks: &[&'a [Frame]], source_root: &Path) -> Option<(&'a Frame, String)> {
    let root = Root::new(source_root);
    let f = stacks
        .iter()
        .find_map(|s| primary(s, &root).map(|i| &s[i]))?;
    let file = f.file.as_deref()?;
    Some((f, root.relative(file).unwrap_or_else(|| file.to_string())))
}

fn frame_text(f: &Frame) -> String {
    let func = f.function.as_deref().unwrap_or("???");
    match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{func} ({file}:{line})"),
        _ => match &f.object {
            Some(o) => format!("{func} (in {o})"),
            None => func.to_string(),
        },
    }
}

/// One finding before it becomes a result.
struct Finding<'a> {
    rule: String,
    level: &'static str,
    message: String,
    fingerprint: &'a str,
    /// Where it is located: the stacks tried in order.
    anchor: Vec<&'a [Frame]>,
    /// The code flows: a title and a stack (innermost first).
    flows: Vec<(String, &'a [Frame])>,
    pid: u32,
    command: &'a str,
    /// The process's executable: the location of a finding without any frame (a stack
    /// `--keep-stacktraces` did not keep), as GitHub wants a location on every result.
    exe: &'a str,
    /// Findings grouped into this one beyond [`MAX_RESULTS`].
    grouped: usize,
    /// With `--baseline`: SARIF's `baselineState` (`unchanged` for a finding the baseline has,
    /// `new` for one it has not).
    baseline_state: Option<&'static str>,
}

/// SARIF's `baselineState` of a finding, when the report was matched against a baseline.
fn state(r: &Report, known: bool) -> Option<&'static str> {
    r.baseline
        .as_ref()
        .map(|_| if known { "unchanged" } else { "new" })
}

fn of_error<'a>(
    e: &'a ErrorReport,
    pid: u32,
    command: &'a str,
    baseline_state: Option<&'static str>,
) -> Finding<'a> {
    let mut message = text::error_first_line(e);
    if !e.description.is_empty() {
        message.push('\n');
        message.push_str(&e.description);
    }
    let mut flows = Vec::new();
    if let Some(b) = &e.block {
        flows.push((
            format!("block of {} bytes allocated by {}", b.size, b.allocated_by),
            e.alloc_stack.as_slice(),
        ));
    }
    flows.push(("freed".to_string(), e.free_stack.as_slice()));
    flows.push((
        match e.access {
            Some(a) => format!("the bad {a}"),
            None => format!("the {} call", e.kind),
        },
        e.stack.as_slice(),
    ));
    Finding {
        rule: e.kind.to_string(),
        level: match e.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        message,
        fingerprint: &e.fingerprint,
        anchor: vec![&e.stack, &e.alloc_stack, &e.free_stack],
        flows,
        pid,
        command,
        exe: "",
        grouped: 1,
        baseline_state,
    }
}

fn of_leak<'a>(
    l: &'a LeakReport,
    pid: u32,
    command: &'a str,
    baseline_state: Option<&'static str>,
) -> Finding<'a> {
    Finding {
        rule: leak_rule(l.kind),
        level: match l.kind {
            "definite" | "indirect" => "error",
            "possible" => "warning",
            _ => "note",
        },
        message: text::leak_first_line(l),
        fingerprint: &l.fingerprint,
        anchor: vec![&l.stack],
        flows: vec![("allocated".to_string(), l.stack.as_slice())],
        pid,
        command,
        exe: "",
        grouped: 1,
        baseline_state,
    }
}

fn result(f: &Finding, rule_index: &std::collections::HashMap<&str, usize>, root: &Root) -> Value {
    let mut message = f.message.clone();
    if f.grouped > 1 {
        message.push_str(&format!(
            "\n({} findings with this fingerprint are grouped into this result: a run keeps at most {MAX_RESULTS} results)",
            f.grouped
        ));
    }
    // Thread-flow locations, outermost first (the order of execution), cut to MAX_LOCATIONS
    // over all flows by dropping the outermost frames.
    let mut budget = MAX_LOCATIONS;
    let mut cut = 0usize;
    let mut flows = Vec::new();
    for (title, stack) in &f.flows {
        if stack.is_empty() {
            continue;
        }
        let keep = stack.len().min(budget);
        if keep == 0 {
            cut += stack.len();
            continue;
        }
        cut += stack.len() - keep;
        budget -= keep;
        let locations: Vec<Value> = stack[..keep]
            .iter()
            .rev()
            .map(|fr| {
                let mut loc = Map::new();
                if let Some(p) = physical(fr, root) {
                    loc.insert("physicalLocation".into(), p);
                }
                loc.insert("message".into(), json!({ "text": frame_text(fr) }));
                let mut tfl = Map::new();
                tfl.insert("location".into(), Value::Object(loc));
                if let Some(o) = &fr.object {
                    tfl.insert("module".into(), json!(o));
                }
                Value::Object(tfl)
            })
            .collect();
        flows.push(json!({
            "message": { "text": title },
            "threadFlows": [ { "locations": locations } ]
        }));
    }
    if cut > 0 {
        message.push_str(&format!(
            "\n({cut} outermost frames are left out: a result keeps at most {MAX_LOCATIONS} locations)"
        ));
    }
    let located = f
        .anchor
        .iter()
        .find_map(|s| primary(s, root).map(|i| &s[i]));
    let location = match located {
        Some(fr) => {
            let mut loc = Map::new();
            loc.insert(
                "physicalLocation".into(),
                physical(fr, root).unwrap_or(Value::Null),
            );
            if let Some(func) = &fr.function {
                loc.insert(
                    "logicalLocations".into(),
                    json!([{ "fullyQualifiedName": func, "kind": "function" }]),
                );
            }
            Some(Value::Object(loc))
        }
        // No frame with a source file: the executable's own file, without a region.
        None => f
            .anchor
            .iter()
            .flat_map(|s| s.iter())
            .find_map(|fr| fr.object.as_deref())
            .or((!f.exe.is_empty()).then_some(f.exe))
            .map(|o| json!({ "physicalLocation": { "artifactLocation": artifact(o, root) } })),
    };
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(f.rule));
    if let Some(&i) = rule_index.get(f.rule.as_str()) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(f.level));
    r.insert("message".into(), json!({ "text": message }));
    if let Some(b) = f.baseline_state {
        r.insert("baselineState".into(), json!(b));
    }
    if let Some(l) = location {
        r.insert("locations".into(), json!([l]));
    }
    if !flows.is_empty() {
        r.insert("codeFlows".into(), Value::Array(flows));
    }
    r.insert(
        "partialFingerprints".into(),
        json!({ fingerprint::SCHEME: f.fingerprint }),
    );
    r.insert(
        "properties".into(),
        json!({ "pid": f.pid, "command": f.command }),
    );
    Value::Object(r)
}

/// Renders the run as one SARIF log. `source_root` is `%SRCROOT%`. Beyond [`MAX_RESULTS`]
/// findings, those of one rule and fingerprint are grouped into their first (its message says
/// how many); if that is still too many, the results past the limit are left out, errors kept
/// first, and the run's invocation says how many.
pub fn render(r: &Report, source_root: &Path) -> String {
    let root = Root::new(source_root);
    let rules = rules();
    let rule_index: std::collections::HashMap<&str, usize> =
        rules.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
    let mut findings: Vec<Finding> = Vec::new();
    for p in &r.processes {
        for e in &p.errors {
            let exe = &p.exe;
            findings.push(Finding {
                exe,
                ..of_error(e, p.pid, &p.command, state(r, e.known))
            });
        }
        for l in &p.leaks {
            let exe = &p.exe;
            findings.push(Finding {
                exe,
                ..of_leak(l, p.pid, &p.command, state(r, l.known))
            });
        }
    }
    let mut notes: Vec<String> = r.notes.clone();
    if findings.len() > MAX_RESULTS {
        findings = group(findings);
    }
    if findings.len() > MAX_RESULTS {
        let rank = |l: &str| match l {
            "error" => 0,
            "warning" => 1,
            _ => 2,
        };
        findings.sort_by_key(|f| rank(f.level));
        let left = findings.len() - MAX_RESULTS;
        findings.truncate(MAX_RESULTS);
        notes.push(format!(
            "{left} results are left out: a run keeps at most {MAX_RESULTS}"
        ));
    }
    // With --baseline, an absent result per entry the run no longer found, after the findings.
    let absent: Vec<Value> = r
        .baseline
        .iter()
        .flat_map(|b| b.disappeared.iter().map(|d| absent(d, &rule_index)))
        .collect();
    let rules: Vec<Value> = rules
        .iter()
        .map(|(id, level, about)| {
            json!({
                "id": id,
                "shortDescription": { "text": about },
                "defaultConfiguration": { "level": level }
            })
        })
        .collect();
    let invocations = (!notes.is_empty()).then(|| {
        let n: Vec<Value> = notes
            .iter()
            .map(|t| json!({ "level": "warning", "message": { "text": t } }))
            .collect();
        json!([{ "executionSuccessful": true, "toolExecutionNotifications": n }])
    });
    // Each result is built and written in turn (tens of thousands of them as `Value` trees at
    // once cost gigabytes); the keys are in the order a `Value` map would write them (sorted),
    // so the bytes are those of one `Value` of the whole log.
    #[derive(serde::Serialize)]
    struct Log<'a> {
        #[serde(rename = "$schema")]
        schema: &'static str,
        runs: [Run<'a>; 1],
        version: &'static str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Run<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        invocations: Option<Value>,
        original_uri_base_ids: Value,
        results: Results<'a>,
        tool: Value,
    }
    struct Results<'a> {
        findings: &'a [Finding<'a>],
        absent: &'a [Value],
        rule_index: &'a std::collections::HashMap<&'a str, usize>,
        root: &'a Root,
    }
    impl serde::Serialize for Results<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let mut seq = s.serialize_seq(Some(self.findings.len() + self.absent.len()))?;
            for f in self.findings {
                seq.serialize_element(&result(f, self.rule_index, self.root))?;
            }
            for a in self.absent {
                seq.serialize_element(a)?;
            }
            seq.end()
        }
    }
    let log = Log {
        schema: SCHEMA,
        runs: [Run {
            invocations,
            original_uri_base_ids: json!({ SRCROOT: { "uri": root.uri() } }),
            results: Results {
                findings: &findings,
                absent: &absent,
                rule_index: &rule_index,
                root: &root,
            },
            tool: json!({ "driver": {
                "name": r.tool.name,
                "version": r.tool.version,
                "rules": rules
            }}),
        }],
        version: "2.1.0",
    };
    serde_json::to_string_pretty(&log).expect("the SARIF log serializes")
}

/// A baseline entry that no finding of the run has: a result with `baselineState` `absent`
/// (level `none`), located at its innermost function, so a viewer can show what was fixed.
fn absent(d: &baseline::Entry, rule_index: &std::collections::HashMap<&str, usize>) -> Value {
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(d.kind));
    if let Some(&i) = rule_index.get(d.kind.as_str()) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!("none"));
    r.insert(
        "message".into(),
        json!({ "text": format!("{} in {}: in the baseline, not found by this run", d.kind, d.functions.join(" <- ")) }),
    );
    if let Some(func) = d.functions.first() {
        r.insert(
            "locations".into(),
            json!([{ "logicalLocations": [{ "fullyQualifiedName": func, "kind": "function" }] }]),
        );
    }
    r.insert("baselineState".into(), json!("absent"));
    r.insert(
        "partialFingerprints".into(),
        json!({ fingerprint::SCHEME: d.fingerprint }),
    );
    Value::Object(r)
}

/// Groups findings of one rule and fingerprint into the first of them.
fn group(findings: Vec<Finding>) -> Vec<Finding> {
    let mut at: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        let key = (f.rule.clone(), f.fingerprint.to_string());
        match at.get(&key) {
            Some(&i) => out[i].grouped += 1,
            None => {
                at.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_root_are_relative_and_encoded() {
        let root = Root::new(Path::new("/src/proj"));
        assert_eq!(root.uri(), "file:///src/proj/");
        assert_eq!(root.relative("/src/proj/a/b.c").as_deref(), Some("a/b.c"));
        assert_eq!(root.relative("/src/proj/../other/b.c"), None);
        assert_eq!(root.relative("/src/project/b.c"), None);
        assert_eq!(encode("dir with space/ü.c"), "dir%20with%20space/%C3%BC.c");
        assert_eq!(
            artifact("/usr/include/x.h", &root),
            json!({ "uri": "file:///usr/include/x.h" })
        );
    }

    fn frame(func: &str, file: Option<&str>, obj: &str) -> Frame {
        Frame {
            address: 0x1000,
            function: Some(func.into()),
            file: file.map(str::to_string),
            line: file.map(|_| 7),
            object: Some(obj.into()),
            inlined: false,
        }
    }

    #[test]
    fn the_location_is_the_innermost_frame_of_the_users_code() {
        let root = Root::new(Path::new("/src/proj"));
        let stack = vec![
            frame("malloc", Some("/x/shim.rs"), "/c/libmemcheck_shim-1.so"),
            frame(
                "memcpy",
                Some("/build/glibc/string.c"),
                "/lib/x86_64-linux-gnu/libc.so.6",
            ),
            frame("helper", Some("/opt/dep/h.c"), "/opt/dep/libdep.so"),
            frame("work", Some("/src/proj/w.c"), "/src/proj/prog"),
            frame("main", Some("/src/proj/m.c"), "/src/proj/prog"),
        ];
        assert_eq!(primary(&stack, &root), Some(3));
        let elsewhere = Root::new(Path::new("/elsewhere"));
        assert_eq!(
            primary(&stack, &elsewhere),
            Some(2),
            "not the shim, not libc"
        );
        assert_eq!(primary(&stack[..2], &elsewhere), Some(1));
        assert_eq!(primary(&[frame("f", None, "/p")], &elsewhere), None);
    }

    fn leak(n: usize, stack: Vec<Frame>, fp: String) -> crate::report::LeakReport {
        crate::report::LeakReport {
            kind: "definite",
            bytes: n as u64,
            blocks: 1,
            stack,
            fingerprint: fp,
            suppression: None,
            known: false,
        }
    }

    fn report(leaks: Vec<crate::report::LeakReport>) -> Report {
        Report {
            version: 1,
            tool: crate::report::Tool {
                name: "memcheck",
                version: "0",
            },
            leak_check: "full",
            processes: vec![crate::report::ProcessReport {
                pid: 7,
                ppid: 1,
                command: "./p".into(),
                argv: vec!["./p".into()],
                exe: "/src/proj/p".into(),
                exit: None,
                errors: vec![],
                leaks,
                leak_summary: None,
                truncated: false,
                incomplete: false,
                notes: vec![],
                error_summary: Default::default(),
                failed: false,
                failure: None,
                snapshots: Vec::new(),
            }],
            notes: vec![],
            suppressions_used: vec![],
            suppressions_unused: None,
            baseline: None,
        }
    }

    fn parse(r: &Report) -> Value {
        serde_json::from_str(&render(r, Path::new("/src/proj"))).unwrap()
    }

    #[test]
    fn githubs_limits_are_kept_by_grouping_then_cutting() {
        let one = || vec![frame("work", Some("/src/proj/w.c"), "/src/proj/p")];
        // Beyond 25,000 findings, those of one fingerprint become one result.
        let same: Vec<_> = (0..MAX_RESULTS + 1)
            .map(|i| leak(i, one(), "ab".into()))
            .collect();
        let s = parse(&report(same));
        let res = s["runs"][0]["results"].as_array().unwrap();
        assert_eq!(res.len(), 1);
        assert!(res[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("(25001 findings with this fingerprint are grouped"));
        // Distinct fingerprints past the limit are cut, and the run says so.
        let distinct: Vec<_> = (0..MAX_RESULTS + 2)
            .map(|i| leak(i, one(), format!("{i:x}")))
            .collect();
        let s = parse(&report(distinct));
        assert_eq!(
            s["runs"][0]["results"].as_array().unwrap().len(),
            MAX_RESULTS
        );
        assert_eq!(
            s["runs"][0]["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"],
            "2 results are left out: a run keeps at most 25000"
        );
    }

    #[test]
    fn a_result_keeps_at_most_1000_locations() {
        let deep: Vec<Frame> = (0..MAX_LOCATIONS + 200)
            .map(|i| frame(&format!("f{i}"), Some("/src/proj/w.c"), "/src/proj/p"))
            .collect();
        let s = parse(&report(vec![leak(1, deep, "ab".into())]));
        let r = &s["runs"][0]["results"][0];
        let locs = r["codeFlows"][0]["threadFlows"][0]["locations"]
            .as_array()
            .unwrap();
        assert_eq!(locs.len(), MAX_LOCATIONS);
        // The innermost frames are kept (the flow ends at f0, the allocation).
        assert_eq!(
            locs.last().unwrap()["location"]["message"]["text"],
            "f0 (/src/proj/w.c:7)"
        );
        assert!(r["message"]["text"]
            .as_str()
            .unwrap()
            .contains("(200 outermost frames are left out"));
    }
}
