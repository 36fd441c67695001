//! Exit statuses and the wording of memcheck's own errors, decided in one place (as ripgrep's
//! `main` and hyperfine's `run` do). Each layer has its error type and its status:
//!
//! | error | layer | status |
//! | --- | --- | --- |
//! | [`UsageError`] | a flag combination clap cannot check (`cmd/`) | 2 (as clap's own) |
//! | [`crate::target::TargetError`] | PROG cannot be run | 126, or 127 if it was not found |
//! | [`crate::proc::ProcError`], [`crate::proc::remote::RemoteError`] | a process that is gone or unreadable | 1 |
//! | [`crate::proc::live::LiveError`] | `memcheck leaks`: a process not under memcheck, or no answer | 1 |
//! | [`crate::pagecache::FileError`] | a file that cannot be read or locked | 1 |
//! | anything else | memcheck itself failed | 125 (as `env` and `timeout`) |
//!
//! [`classify`] walks the error chain and picks the first typed error; the message is always the
//! whole chain on one line. A command whose answer is "no" (`residency` with unreadable files,
//! `overcommit --check` refused, `clean` unable to remove a directory) prints its report and
//! returns `Ok(EXIT_FAILURE)` instead.

/// Bad input: a process, file or answer the command refuses.
pub const EXIT_FAILURE: i32 = 1;
/// A wrong command line (clap's own errors exit 2 too).
pub const EXIT_USAGE: i32 = 2;
/// memcheck itself failed (as `env` and `timeout` do).
pub const EXIT_INTERNAL: i32 = 125;

/// A command line clap accepted but memcheck cannot act on (e.g. `--format json` without
/// `--output`). The message names the flag and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Makes `e` a usage error (exit 2), keeping its message: for a flag's value refused after
/// parsing, such as an `--output` path that cannot take a report.
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    UsageError(format!("{e:#}")).into()
}

/// The exit status and the one-line message for an error that ended a command.
pub fn classify(e: &anyhow::Error) -> (i32, String) {
    let message = format!("{e:#}").replace('\n', " ");
    (status(e), message)
}

fn status(e: &anyhow::Error) -> i32 {
    for cause in e.chain() {
        if cause.is::<UsageError>() {
            return EXIT_USAGE;
        }
        if let Some(t) = cause.downcast_ref::<crate::target::TargetError>() {
            return t.exit_code();
        }
        if cause.is::<crate::proc::ProcError>()
            || cause.is::<crate::proc::remote::RemoteError>()
            || cause.is::<crate::proc::live::LiveError>()
            || cause.is::<crate::pagecache::FileError>()
        {
            return EXIT_FAILURE;
        }
    }
    EXIT_INTERNAL
}

/// Prints `memcheck: error: MESSAGE` on stderr and returns the exit status for `e`.
pub fn report(e: &anyhow::Error) -> i32 {
    let (code, message) = classify(e);
    eprintln!("memcheck: error: {message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_layer_has_its_status() {
        let bad = anyhow::Error::from(UsageError("--format json needs --output".into()));
        assert_eq!(classify(&bad).0, EXIT_USAGE);
        let gone = anyhow::Error::from(crate::proc::ProcError::NoSuchProcess(7));
        assert_eq!(classify(&gone).0, EXIT_FAILURE);
        let remote = anyhow::Error::from(crate::proc::remote::RemoteError::NoSuchProcess(7));
        assert_eq!(classify(&remote).0, EXIT_FAILURE);
        let missing = anyhow::Error::from(crate::target::TargetError::NotFound("x".into()));
        assert_eq!(classify(&missing).0, 127);
        let file = anyhow::Error::from(crate::pagecache::FileError::NotFound("f".into()));
        assert_eq!(classify(&file).0, EXIT_FAILURE);
        assert_eq!(classify(&anyhow::anyhow!("bug")).0, EXIT_INTERNAL);
        let refused = usage(anyhow::anyhow!(
            "--output / is a directory; name a file in it"
        ));
        assert_eq!(
            classify(&refused),
            (
                EXIT_USAGE,
                "--output / is a directory; name a file in it".into()
            )
        );
    }

    #[test]
    fn the_chain_is_walked_and_shown_on_one_line() {
        let e = Err::<(), _>(crate::proc::ProcError::NoSuchProcess(7))
            .context("reading the maps")
            .unwrap_err();
        let (code, message) = classify(&e);
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(
            message,
            format!("reading the maps: {}", crate::proc::no_such_process(7))
        );
        assert!(!message.contains('\n'));
    }

    #[test]
    fn no_such_process_has_one_wording() {
        let a = crate::proc::ProcError::NoSuchProcess(42).to_string();
        let b = crate::proc::remote::RemoteError::NoSuchProcess(42).to_string();
        assert_eq!(a, b);
        assert_eq!(a, crate::proc::no_such_process(42));
    }
}
