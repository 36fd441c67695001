//! JUnit XML for test dashboards (Jenkins, GitLab, GitHub test reporters); the contract is in
//! `docs/report-format.md`.
//!
//! One `<testsuite name="memcheck">` per run inside `<testsuites>`, one `<testcase>` per checked
//! process named by its command line (with ` (pid N)` added when processes of the run share a
//! command line, as a forked child shares its parent's), and a `<failure>` in each process with
//! findings: its message says why it failed, its body is the process's text report without colour.
use super::xml::escape;
use super::{text, ProcessReport, Report};
use crate::style::Painter;
use std::collections::HashMap;
use std::fmt::Write;

/// The process fails its test case when the run marked it failed (its `failed` and `failure`,
/// [`super::summary`]: the errors and leaks that fail `--error-exitcode`, those a `--baseline`
/// knows left out, death by a signal, an incomplete report), so the dashboard and the exit
/// status agree.
pub fn fails(p: &ProcessReport) -> bool {
    p.failed
}

/// The failure's message: the process's `failure` (`1 error, 40 bytes definitely lost in 1
/// block`, `killed by signal 11 (SIGSEGV)`).
fn counts(p: &ProcessReport) -> String {
    p.failure.clone().unwrap_or_else(|| "failed".to_string())
}

/// Renders the run as one JUnit XML document.
pub fn render(r: &Report) -> String {
    let plain = Painter { on: false };
    let listed = r.leak_check == "full";
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in &r.processes {
        *seen.entry(p.command.as_str()).or_default() += 1;
    }
    let tests = r.processes.len();
    let failures = r.processes.iter().filter(|p| fails(p)).count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"memcheck\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"memcheck\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">"
    );
    for p in &r.processes {
        let name = if seen[p.command.as_str()] > 1 {
            format!("{} (pid {})", p.command, p.pid)
        } else {
            p.command.clone()
        };
        let head = format!(
            "    <testcase name=\"{}\" classname=\"memcheck\"",
            escape(&name, true)
        );
        if fails(p) {
            let _ = writeln!(x, "{head}>");
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"memcheck\">{}</failure>",
                escape(&counts(p), true),
                escape(&text::render(p, &plain, listed), false)
            );
            let _ = writeln!(x, "    </testcase>");
        } else {
            let _ = writeln!(x, "{head}/>");
        }
    }
    if !r.notes.is_empty() {
        let notes: String = r.notes.iter().map(|n| format!("memcheck: {n}\n")).collect();
        let _ = writeln!(x, "    <system-err>{}</system-err>", escape(&notes, false));
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
