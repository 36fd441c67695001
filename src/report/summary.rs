//! Which processes failed, and why, in one line each: the `failed` and `failure` fields of a
//! process (JSON) and the lines that end the text report of a run with several processes.
use super::{LeakKinds, ProcessReport, Severity};
use memcheck_wire::LeakKind;

/// The note `memcheck run` adds to a process whose leak check did not run.
pub const NOTE_NO_LEAK_CHECK: &str = "no leak check: ";

/// What counts against a run besides heap errors (the `run` flags of the same names).
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    /// `--errors-for-leak-kinds`.
    pub errors_for: LeakKinds,
    /// `--warnings-as-errors`.
    pub warnings_as_errors: bool,
}

impl Default for Gate {
    /// memcheck's defaults: definite and indirect leaks fail, warnings do not.
    fn default() -> Self {
        Gate {
            errors_for: LeakKinds {
                definite: true,
                indirect: true,
                ..LeakKinds::default()
            },
            warnings_as_errors: false,
        }
    }
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Why the process failed, or `None` when it did not: its unsuppressed errors (and warnings with
/// `--warnings-as-errors`), its leaks of the `--errors-for-leak-kinds` kinds (what fails
/// `--error-exitcode`; those a `--baseline` knows left out), death by a signal, an incomplete
/// report. E.g. `2 errors, 48 bytes
/// definitely lost in 3 blocks`, `killed by signal 11 (SIGSEGV)`, `report incomplete`.
pub fn failure(p: &ProcessReport, gate: Gate) -> Option<String> {
    let mut why = findings(p, gate);
    if let Some(super::Exit::Signal(s)) = p.exit {
        why.push(format!("killed by signal {s} ({})", signal_name(s)));
    }
    if p.incomplete || p.truncated {
        why.push("report incomplete".into());
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// The process fails an `--error-exitcode` gate: findings that count (as in [`failure`]), or a
/// report that may miss some. A death by a signal is not the gate's: the run ends with 128+SIG.
pub fn fails_gate(p: &ProcessReport, gate: Gate) -> bool {
    p.incomplete || !findings(p, gate).is_empty()
}

/// The findings that fail the process, one phrase each.
fn findings(p: &ProcessReport, gate: Gate) -> Vec<String> {
    let mut why: Vec<String> = Vec::new();
    // Findings a --baseline knows do not fail the process.
    let new = |severity: Severity| -> u64 {
        p.errors
            .iter()
            .filter(|e| e.severity == severity && !e.known)
            .map(|e| e.count)
            .sum()
    };
    let errors = new(Severity::Error);
    if errors > 0 {
        why.push(plural(errors, "error"));
    }
    let warnings = new(Severity::Warning);
    if warnings > 0 && gate.warnings_as_errors {
        why.push(plural(warnings, "warning"));
    }
    if let Some(s) = p.leak_summary {
        for (kind, a, words) in [
            (LeakKind::Definite, s.definite, "definitely lost"),
            (LeakKind::Indirect, s.indirect, "indirectly lost"),
            (LeakKind::Possible, s.possible, "possibly lost"),
            (LeakKind::Reachable, s.reachable, "still reachable"),
        ] {
            let (known_bytes, known_blocks) = p
                .leaks
                .iter()
                .filter(|l| l.known && l.kind == kind.name())
                .fold((0, 0), |(b, n), l| (b + l.bytes, n + l.blocks));
            let (bytes, blocks) = (
                a.bytes.saturating_sub(known_bytes),
                a.blocks.saturating_sub(known_blocks),
            );
            if gate.errors_for.shows(kind) && blocks > 0 {
                why.push(format!(
                    "{} {words} in {}",
                    plural(bytes, "byte"),
                    plural(blocks, "block")
                ));
            }
        }
    }
    why
}

/// `SIGSEGV` for 11; `?` for a number that names no signal.
pub fn signal_name(s: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(s)
        .map(|s| s.as_str())
        .unwrap_or("?")
}

/// Sets `failed` and `failure` of every process.
pub fn mark(processes: &mut [ProcessReport], gate: Gate) {
    for p in processes {
        p.failure = failure(p, gate);
        p.failed = p.failure.is_some();
    }
}

/// The longest command shown in a failing process's line, in characters.
const COMMAND_WIDTH: usize = 60;

/// A command line shortened for one line: control characters escaped, then whole words up to
/// [`COMMAND_WIDTH`] characters, ` ...` standing for the words left out (the program by its file
/// name alone when its path is longer than that).
pub fn short_command(command: &str) -> String {
    let escaped = command.escape_debug().to_string();
    if escaped.chars().count() <= COMMAND_WIDTH {
        return escaped;
    }
    let mut words = escaped.split(' ');
    let first = words.next().unwrap_or_default();
    let mut out = if first.chars().count() > COMMAND_WIDTH - 4 {
        let name = first.rsplit('/').next().unwrap_or(first);
        name.chars().take(COMMAND_WIDTH - 4).collect()
    } else {
        first.to_string()
    };
    for w in words {
        if out.chars().count() + 1 + w.chars().count() > COMMAND_WIDTH - 4 {
            out.push_str(" ...");
            break;
        }
        out.push(' ');
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Amount, Exit, LeakSummary};

    fn process() -> ProcessReport {
        serde_json::from_str(
            r#"{"pid": 7, "ppid": 1, "command": "./p", "argv": ["./p"], "exe": "/p",
                "exit": {"code": 0}, "errors": [], "leaks": [], "leak_summary": null,
                "truncated": false, "incomplete": false, "notes": []}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_failure_says_what_failed() {
        let mut p = process();
        assert_eq!(failure(&p, Gate::default()), None);
        p.leak_summary = Some(LeakSummary {
            definite: Amount {
                bytes: 48,
                blocks: 3,
            },
            indirect: Amount {
                bytes: 1,
                blocks: 1,
            },
            possible: Amount {
                bytes: 8,
                blocks: 1,
            },
            ..LeakSummary::default()
        });
        assert_eq!(
            failure(&p, Gate::default()).unwrap(),
            "48 bytes definitely lost in 3 blocks, 1 byte indirectly lost in 1 block"
        );
        p.exit = Some(Exit::Signal(11));
        p.incomplete = true;
        let gate = Gate {
            errors_for: LeakKinds {
                possible: true,
                ..LeakKinds::default()
            },
            warnings_as_errors: false,
        };
        assert_eq!(
            failure(&p, gate).unwrap(),
            "8 bytes possibly lost in 1 block, killed by signal 11 (SIGSEGV), report incomplete"
        );
    }

    #[test]
    fn findings_a_baseline_knows_do_not_fail() {
        let mut p = process();
        p.leaks = serde_json::from_str(
            r#"[{"kind": "definite", "bytes": 40, "blocks": 1, "stack": [], "known": true},
                {"kind": "definite", "bytes": 8, "blocks": 2, "stack": []}]"#,
        )
        .unwrap();
        p.leak_summary = Some(LeakSummary {
            definite: Amount {
                bytes: 48,
                blocks: 3,
            },
            ..LeakSummary::default()
        });
        assert_eq!(
            failure(&p, Gate::default()).unwrap(),
            "8 bytes definitely lost in 2 blocks"
        );
        p.leaks.pop();
        p.leak_summary.as_mut().unwrap().definite = Amount {
            bytes: 40,
            blocks: 1,
        };
        assert_eq!(failure(&p, Gate::default()), None);
    }

    #[test]
    fn long_commands_keep_whole_words() {
        assert_eq!(short_command("./p a b"), "./p a b");
        assert_eq!(short_command("./p\tx"), "./p\\tx");
        let long = format!("/usr/bin/cc {}", "-Wall ".repeat(20));
        let s = short_command(&long);
        assert!(s.starts_with("/usr/bin/cc -Wall -Wall"), "{s}");
        assert!(s.ends_with(" -Wall ..."), "{s}");
        assert!(s.chars().count() <= COMMAND_WIDTH, "{s}");
        let deep = format!("/{}/prog arg", "d".repeat(80));
        assert_eq!(short_command(&deep), "prog arg");
    }
}
