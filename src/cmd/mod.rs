//! Subcommand dispatch. Failures become one line and an exit status in [`crate::exit`].
pub mod clean;
pub mod inspect;
pub mod leaks;
pub mod maps;
pub mod overcommit;
pub mod rerender;
pub mod residency;
pub mod run;
pub mod stats;

use crate::cli::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};

/// Parses the command line, runs the subcommand and returns the exit status. Clap's own errors
/// exit 2 (`--help` and `--version` 0); every other failure is mapped by [`crate::exit`].
pub fn dispatch(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    if let Some(hint) = value_taken_as_program(&args) {
        return crate::exit::report(&crate::exit::UsageError(hint).into());
    }
    let version: &'static str = Box::leak(crate::version::version_line().into_boxed_str());
    let matches = match Cli::command().version(version).try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) if e.use_stderr() => {
            eprintln!("memcheck: {}", one_line(&e.render().to_string()));
            return 2;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    let result = match &cli.command {
        Command::Run(a) => run::run(a, cli.color),
        Command::Maps(a) => maps::run(a, cli.color),
        Command::Residency(a) => residency::run(a, cli.color),
        Command::Overcommit(a) => overcommit::run(a, cli.color),
        Command::Stats(a) if a.sites => leaks::sites(a, cli.color),
        Command::Stats(a) => stats::run(a, cli.color),
        Command::Leaks(a) => leaks::run(a, cli.color),
        Command::Clean(a) => clean::run(a),
        Command::Report(a) => rerender::run(a, cli.color),
    };
    match result {
        Ok(code) => code,
        Err(e) => crate::exit::report(&e),
    }
}

/// Valgrind's habit `--trace-children yes ./prog`: memcheck's optional values need `=`, so `yes`
/// would be run as the program (an endless `yes`). Such a word right after a `run` flag whose
/// value is optional and one of that flag's values is refused with the spelling to use.
fn value_taken_as_program(args: &[std::ffi::OsString]) -> Option<String> {
    let run_at = args.iter().position(|a| a == "run")?;
    let cmd = Cli::command();
    let run = cmd.find_subcommand("run")?;
    let optional: Vec<(String, Vec<String>)> = run
        .get_arguments()
        .filter(|a| a.is_require_equals_set())
        .filter_map(|a| {
            let long = a.get_long()?;
            let mut values: Vec<String> = a
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect();
            if values.is_empty() {
                values = vec!["yes".into(), "no".into()];
            }
            Some((format!("--{long}"), values))
        })
        .collect();
    for w in args[run_at + 1..].windows(2) {
        let (flag, next) = (w[0].to_str()?, w[1].to_str()?);
        if flag == "--" || !flag.starts_with('-') {
            return None;
        }
        if let Some((_, values)) = optional.iter().find(|(f, _)| f == flag) {
            if values.iter().any(|v| v == next) {
                return Some(format!(
                    "`{flag} {next}` would run a program named `{next}`: write {flag}={next} (the value of {flag} needs `=`), and put -- before the program"
                ));
            }
        }
    }
    None
}

/// clap's error as one line: the error itself, its tip, and where the usage is.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines
        .next()
        .unwrap_or("error: bad command line")
        .to_string();
    let tips: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("tip: "))
        .collect();
    let usage = rendered
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("For more information, try "))
        .map(|t| t.trim_end_matches('.').to_string());
    let mut out = first;
    for t in tips {
        out.push_str(&format!("; {t}"));
    }
    if let Some(u) = usage {
        out.push_str(&format!(" (more: {u})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_line_with_their_tip() {
        let e = Cli::command()
            .try_get_matches_from(["memcheck", "run", "--bogus", "--", "x"])
            .unwrap_err();
        let line = one_line(&e.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("error: unexpected argument '--bogus'"),
            "{line}"
        );
        assert!(line.contains("'--help'"), "{line}");
    }
}
