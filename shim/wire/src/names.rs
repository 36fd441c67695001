//! Names both sides must spell the same: the environment variables the CLI sets for the shim,
//! the record file's suffix, and the name the shim gives its own memory in `/proc/PID/maps`.
use core::ffi::CStr;

/// The run directory the shim writes its record files (and statistics page) into; the shim
/// writes records only when it is set.
pub const ENV_DIR: &str = "MEMCHECK_DIR";
/// The shim's settings, [`crate::ShimOptions`] encoded as `key=value,...`.
pub const ENV_OPTIONS: &str = "MEMCHECK_OPTIONS";
/// `--trace-children-skip`'s patterns as given (comma-separated globs, `*` and `?`): a program
/// exec'd at a path one of them matches runs without the shim. Set only when given.
pub const ENV_TRACE_SKIP: &str = "MEMCHECK_TRACE_SKIP";
/// `--trace-children-skip-by-arg`'s patterns as given (the same globs): a program exec'd with an
/// argument (argv[0] included) one of them matches runs without the shim. Set only when given.
pub const ENV_TRACE_SKIP_BY_ARG: &str = "MEMCHECK_TRACE_SKIP_BY_ARG";
/// Every variable above, which the shim removes from the environment of programs it does not
/// follow into.
pub const ENV_ALL: [&str; 4] = [ENV_DIR, ENV_OPTIONS, ENV_TRACE_SKIP, ENV_TRACE_SKIP_BY_ARG];

/// File name suffix of a record file (`MEMCHECK_DIR/PID-STARTNS.mcr`).
pub const RECORD_SUFFIX: &str = ".mcr";

/// The words a NOTE record carries when some of the process's records could not be written: the
/// CLI then marks the process's report incomplete and fails an `--error-exitcode` gate.
pub const NOTE_RECORDS_LOST: &str = "records could not be written";

/// The NOTE record of a process that died by a signal's default action after the shim ran its
/// exit checks in its handler: this prefix, then the signal number in decimal.
pub const NOTE_SIGNAL: &str = "ended by signal ";
/// The NOTE record written just before an exec that the shim does not follow (no
/// `--trace-children`): this prefix, then the program's path as the exec call named it.
pub const NOTE_EXEC_UNCHECKED: &str = "exec without memcheck: ";
/// The NOTE record written when that exec failed (the process goes on): this prefix, then the
/// same path. The CLI then forgets the [`NOTE_EXEC_UNCHECKED`] note before it.
pub const NOTE_EXEC_FAILED: &str = "exec failed: ";

/// The name of the shim's private memory, shown as `[anon:memcheck]` in `/proc/PID/maps`.
pub const MAPPING_NAME_C: &CStr = c"memcheck";
/// [`MAPPING_NAME_C`] as a string.
pub const MAPPING_NAME: &str = match MAPPING_NAME_C.to_str() {
    Ok(s) => s,
    Err(_) => panic!("the mapping name is ASCII"),
};

/// Whether a mapping's name in `/proc/PID/maps` (`[anon:memcheck]`, or a longer name starting
/// so) is the shim's memory.
pub fn is_shim_mapping(maps_name: &[u8]) -> bool {
    maps_name
        .strip_prefix(b"[anon:")
        .is_some_and(|n| n.starts_with(MAPPING_NAME.as_bytes()))
}

/// The value of `NAME=value` if `var` (one entry of an environment) is the variable `name`.
pub fn env_value<'a>(var: &'a [u8], name: &str) -> Option<&'a [u8]> {
    var.strip_prefix(name.as_bytes())?.strip_prefix(b"=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_match_the_whole_name() {
        assert_eq!(
            env_value(b"MEMCHECK_DIR=/tmp/x", ENV_DIR),
            Some(&b"/tmp/x"[..])
        );
        assert_eq!(env_value(b"MEMCHECK_DIR=", ENV_DIR), Some(&b""[..]));
        assert_eq!(env_value(b"MEMCHECK_DIRX=/tmp", ENV_DIR), None);
        assert_eq!(env_value(b"MEMCHECK_DI", ENV_DIR), None);
        assert_eq!(MAPPING_NAME, "memcheck");
        assert!(is_shim_mapping(b"[anon:memcheck]"));
        assert!(!is_shim_mapping(b"[anon:glibc malloc]"));
        assert!(!is_shim_mapping(b"/usr/lib/memcheck"));
    }
}
