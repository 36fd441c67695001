//! Readers of live processes: what `/proc` and ptrace tell about a process memcheck did not start.
pub mod remote;
