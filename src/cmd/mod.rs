//! Subcommand dispatch and the mapping of failures to one-line messages and exit statuses.
pub mod clean;
pub mod inspect;
pub mod maps;
pub mod overcommit;
pub mod residency;
pub mod run;
pub mod stats;

use crate::cli::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};

/// Static version text for generated documentation; `--version` prints [`version_line`].
pub const VERSION_LINE: &str = env!("CARGO_PKG_VERSION");

/// Exit status when memcheck itself fails (as `env` and `timeout` do).
pub const EXIT_INTERNAL: i32 = 125;

/// `X.Y.Z (shim X.Y.Z, record format N, build HASH)`, read from the embedded library, so a
/// CLI and library from different builds show it.
pub fn version_line() -> String {
    let shim = crate::preload::embedded_version().unwrap_or_else(|| "unreadable".into());
    let mut words = shim.split_whitespace().skip(1);
    let (ver, wire) = (words.next().unwrap_or("?"), words.nth(1).unwrap_or("?"));
    let agree = wire == memcheck_wire::VERSION.to_string();
    format!(
        "{} (shim {ver}, record format {wire}{}, build {})",
        env!("CARGO_PKG_VERSION"),
        if agree {
            String::new()
        } else {
            format!(
                " but this CLI reads format {}: reinstall memcheck",
                memcheck_wire::VERSION
            )
        },
        crate::preload::HASH
    )
}

pub fn dispatch(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let version: &'static str = Box::leak(version_line().into_boxed_str());
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
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<crate::target::TargetError>()
                .map(|t| t.exit_code())
                .or_else(|| inspect::exit_code(&e))
                .unwrap_or(EXIT_INTERNAL);
            eprintln!("memcheck: error: {e:#}");
            code
        }
    }
}
