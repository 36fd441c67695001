//! The file-name patterns of `--log-file` and `--xml-file`, with Valgrind's expansions: `%p` is
//! the pid of the process the report is for, `%q{VAR}` the value of the environment variable VAR
//! (memcheck's environment, which the program inherits), `%%` a literal `%`. Any other `%` escape
//! and an unset VAR are refused when the flag is read, before the program runs, as Valgrind
//! refuses them.
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Pid,
}

/// A parsed pattern: `%q{VAR}` and `%%` are already expanded, `%p` waits for a pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// As the user wrote it (for messages).
    pub raw: String,
    parts: Vec<Part>,
    /// Each `%q{VAR}` with the value it expanded to, in order (Valgrind's `<logfilequalifier>`).
    pub qualifiers: Vec<(String, String)>,
}

impl Pattern {
    /// Parses `s`, the value of `flag` (named in the errors). `var` looks up an environment
    /// variable (`std::env::var_os` outside tests).
    pub fn parse(
        flag: &str,
        s: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Pattern, String> {
        let bad = |why: String| format!("{flag}={s}: {why}");
        let mut parts = Vec::new();
        let mut qualifiers = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                text.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => text.push('%'),
                Some('p') => {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                    parts.push(Part::Pid);
                }
                Some('q') => {
                    if chars.next() != Some('{') {
                        return Err(bad("expected '{' after %q: write %q{VAR}".into()));
                    }
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(bad(format!(
                                    "expected '}}' after %q{{{name}: write %q{{VAR}}"
                                )))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(bad("%q{} names no variable: write %q{VAR}".into()));
                    }
                    let value = var(&name).ok_or_else(|| {
                        bad(format!(
                            "the environment variable {name} is not set (%q{{{name}}} needs it)"
                        ))
                    })?;
                    text.push_str(&value);
                    qualifiers.push((name, value));
                }
                Some(c) => {
                    return Err(bad(format!(
                        "unknown escape %{c}: use %p (pid), %q{{VAR}} (environment variable) or %% (a %)"
                    )))
                }
                None => {
                    return Err(bad(
                        "a % ends the pattern: use %p, %q{VAR}, or %% for a %".into()
                    ))
                }
            }
        }
        parts.push(Part::Text(text));
        parts.retain(|p| *p != Part::Text(String::new()));
        if parts.is_empty() {
            return Err(bad("names no file".into()));
        }
        Ok(Pattern {
            raw: s.to_string(),
            parts,
            qualifiers,
        })
    }

    /// Parses with the process environment.
    pub fn from_env(flag: &str, s: &str) -> Result<Pattern, String> {
        Pattern::parse(flag, s, |v| {
            std::env::var_os(v).map(|x| x.to_string_lossy().into_owned())
        })
    }

    /// The pattern holds `%p`: one file per process.
    pub fn per_process(&self) -> bool {
        self.parts.contains(&Part::Pid)
    }

    /// The path for the process `pid`.
    pub fn expand(&self, pid: u32) -> PathBuf {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => s.push_str(t),
                Part::Pid => s.push_str(&pid.to_string()),
            }
        }
        PathBuf::from(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &str) -> Option<String> {
        (v == "JOB").then(|| "build-7".to_string())
    }

    #[test]
    fn escapes_expand_as_valgrind_does() {
        let p = Pattern::parse("--log-file", "log.%p", env).unwrap();
        assert!(p.per_process());
        assert_eq!(p.expand(42), PathBuf::from("log.42"));
        let p = Pattern::parse("--log-file", "out/%q{JOB}-100%%.%p.txt", env).unwrap();
        assert_eq!(p.expand(7), PathBuf::from("out/build-7-100%.7.txt"));
        assert_eq!(p.qualifiers, vec![("JOB".into(), "build-7".into())]);
        let p = Pattern::parse("--xml-file", "x.xml", env).unwrap();
        assert!(!p.per_process());
        assert_eq!(p.expand(1), PathBuf::from("x.xml"));
    }

    #[test]
    fn bad_patterns_are_refused_in_one_line() {
        for (s, want) in [
            ("a%zb", "unknown escape %z"),
            ("a%", "a % ends the pattern"),
            ("a%q{NOPE}", "NOPE is not set"),
            ("a%qJOB", "expected '{' after %q"),
            ("a%q{JOB", "expected '}'"),
            ("a%q{}", "names no variable"),
            ("", "names no file"),
        ] {
            let e = Pattern::parse("--log-file", s, env).unwrap_err();
            assert!(e.starts_with(&format!("--log-file={s}: ")), "{e}");
            assert!(e.contains(want), "{s}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
