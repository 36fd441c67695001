//! The contract between the shim (writer) and the CLI (reader), in one crate both build.
//!
//! - [`codec`]: a record file starts with a header (magic, format version, pointer width) and
//!   continues with records `tag: u32, len: u32, payload[len]`, all little-endian. A reader
//!   refuses a file of another version with [`DecodeError::Version`], never guessing at a layout
//!   it does not know.
//! - [`records`]: the records and the enums their fields carry.
//! - [`stats`]: the live statistics page's fixed layout.
//! - [`options`]: [`ShimOptions`], which the CLI encodes into `MEMCHECK_OPTIONS` and the shim
//!   parses.
//! - [`live`]: how `memcheck leaks PID` asks a running process for a leak check.
//! - [`names`]: the environment variables, the record file suffix and the shim's mapping name.
//!
//! Nothing here allocates: encoding writes into a caller-provided buffer (or a `fmt::Write`), so
//! the shim can use it on any path.
#![forbid(unsafe_code)]
#![no_std]

#[cfg(test)]
extern crate std;

pub mod codec;
pub mod live;
pub mod names;
pub mod options;
pub mod records;
pub mod stats;

pub use codec::{
    check_header, encode_header, tag, Dec, DecodeError, Enc, HEADER_LEN, MAGIC, RECORD_PREFIX,
    VERSION,
};
pub use names::{
    env_value, is_shim_mapping, ENV_ALL, ENV_DIR, ENV_OPTIONS, ENV_TRACE_SKIP,
    ENV_TRACE_SKIP_BY_ARG, MAPPING_NAME, MAPPING_NAME_C, NOTE_EXEC_FAILED, NOTE_EXEC_UNCHECKED,
    NOTE_RECORDS_LOST, NOTE_SIGNAL, RECORD_SUFFIX,
};
pub use options::{Fill, GuardMode, KeepStacks, Key, LeakCheck, OptionError, ShimOptions};
pub use records::{
    Access, Allocs, ErrorKind, ErrorRec, Exit, Family, FoundAt, Leak, LeakKind, LeakSummary, MemFn,
    Module, Note, Process, Record, Records, Stack, MAX_FRAMES,
};
