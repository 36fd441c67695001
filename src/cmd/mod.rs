//! Subcommand dispatch. Failures become one line and an exit status in [`crate::exit`].
pub mod clean;
pub mod inspect;
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
    let version: &'static str = Box::leak(crate::version::version_line().into_boxed_str());
    let matches = match Cli::command().version(version).try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
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
        Command::Stats(a) => stats::run(a, cli.color),
        Command::Clean(a) => clean::run(a),
        Command::Report(a) => rerender::run(a, cli.color),
    };
    match result {
        Ok(code) => code,
        Err(e) => crate::exit::report(&e),
    }
}
