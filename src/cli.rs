//! The one clap definition of memcheck's command line. Man pages and shell completions are
//! generated from it (see `tests/generated.rs`), so it is the single source of truth.
pub use crate::report::Format as ReportFormat;
pub use crate::report::LeakKinds;
pub use crate::style::ColorChoice;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "memcheck",
    version = crate::version::VERSION_LINE,
    about = "Find heap bugs and leaks in unmodified Linux programs, and see how a live process uses memory",
    long_about = None,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// When to use colour: auto (only on a terminal, never with NO_COLOR), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

// One value per process, parsed once: the size of `run`'s arguments costs nothing to box away.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a program under the checker and report its heap errors and leaks.
    #[command(
        override_usage = "memcheck run [OPTIONS] -- PROG [ARGS]...",
        after_help = "Signals: SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 and SIGALRM sent to memcheck are passed on to the program; signals ignored when memcheck starts stay ignored in the program.\nProcesses of the run that outlive PROG with the memcheck library loaded (a daemon's child) are waited for; Ctrl-C ends that wait.\nExit status: the program's own, or --error-exitcode's N when unsuppressed errors or leaks of --errors-for-leak-kinds (default definite, indirect) were found; 128+SIG if the program was killed by signal SIG; 2 for a bad command line; 125 if memcheck itself failed, 126 if PROG cannot be run, 127 if it was not found."
    )]
    Run(RunArgs),

    /// Show every memory region of a live process: its kind (text, heap, thread stack, malloc
    /// arena, ...), the ELF sections it holds, and its size, RSS, PSS, dirty and swap.
    #[command(
        after_help = "Kinds: text, rodata, data, bss, heap, stack, thread-stack, malloc-arena, anon, file, shm, vdso, vvar, vsyscall, guard, memcheck. Thread stacks are found by the threads' stack pointers, malloc arenas by their 64 MiB alignment and PROT_NONE tail: both are heuristics.\nExit status: 0; 1 if the process does not exist or cannot be read; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Maps(MapsArgs),

    /// Show which pages of files (or of a live process) are in memory, and load, evict or lock
    /// them.
    #[command(
        after_help = "Map legend: each character stands for an equal share of the pages: O all in memory, o some, . none.\nExit status: 0; 1 if a file, directory or process cannot be read or locked (the others are still reported); 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Residency(ResidencyArgs),

    /// Explain the kernel's overcommit policy and commit accounting, and probe whether an
    /// allocation would succeed.
    #[command(
        after_help = "Also shows the memory limits of the cgroup memcheck (and --pid's process) lives in: in a container memory.max, not CommitLimit, decides when the OOM killer acts.\nExit status: 0; 1 if --check finds the allocation would fail (the report says why) or --pid names no readable process; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Overcommit(OvercommitArgs),

    /// Show the heap figures of a live process: memcheck's own counters (read without stopping
    /// it) when it runs under memcheck, glibc's mallinfo2 and malloc_stats (through a brief
    /// ptrace call) for any process, and its footprint from /proc.
    #[command(
        after_help = "Under memcheck the figures come from its statistics page, read without stopping the process; for any other process glibc's are fetched by a ptrace call that stops one thread for a few milliseconds (stopped_ms says how long). Giving the pid of a `memcheck run` CLI names the checked program, its child.\nExit status: 0; 1 if the process does not exist or cannot be read; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Stats(StatsArgs),

    /// Check a process running under `memcheck run` for leaks now, while it goes on: its threads
    /// pause only for the reachability scan (no ptrace, no restart), and the report comes in every
    /// format of the exit report; --since-last shows only what is new or grown since the previous
    /// check.
    #[command(
        after_help = "How: memcheck queues signal 62 (SIGRTMAX-2) to the process; its memcheck library pauses every thread in a signal handler, scans, resumes them and writes the answer into the run directory. A program's own handler for that signal keeps working. Threads blocked in read, write, wait or a futex go on unaware (SA_RESTART); nanosleep, poll, epoll_wait and select return EINTR as with any signal.\nExit status: 0 when the report was made; 1 if the process does not exist, is not running under memcheck, or did not answer in time; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Leaks(LeaksArgs),

    /// Remove the run directories (TMPDIR/memcheck-PID-START-NS-*) that runs of memcheck killed
    /// before they could clean up left behind; every run also does this quietly first.
    #[command(
        after_help = "Only your own directories whose memcheck process is gone are removed: the pid and start time in the name tell a live run from a dead one, even after the pid was reused. Directories without them (made by an older memcheck) or made in another pid namespace are listed, not removed.\nExit status: 0; 1 if a stale directory could not be removed; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Clean(CleanArgs),

    /// Render a saved JSON report (memcheck run --format json) again, in any format, without
    /// running the program; or, with --diff, list the findings that are new or fixed between two.
    #[command(
        override_usage = "memcheck report [OPTIONS] FILE.json\n       memcheck report FILE.json --baseline BASELINE.json\n       memcheck report --diff OLD.json NEW.json [--format text|json]",
        after_help = "Findings are matched by fingerprint (the kind and the function names of its stack, not addresses, files or lines), so moved lines and other addresses do not make a finding new.\nThe output equals, byte for byte, the file memcheck run would have written in that format (with the same --source-root).\nExit status: 0; with --diff 1 when NEW has findings OLD has not; with --baseline 1 when an error or a listed leak is not in the baseline; 1 if a report cannot be read or is not a memcheck JSON report of format version 1; 2 for a bad command line; 125 if memcheck itself failed."
    )]
    Report(ReportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The JSON report to render (- for standard input).
    #[arg(
        value_name = "FILE.json",
        required_unless_present = "diff",
        conflicts_with = "diff"
    )]
    pub file: Option<PathBuf>,

    /// Compare two JSON reports: list the findings of NEW that OLD does not have (new) and those
    /// of OLD that NEW does not have (fixed), matched by fingerprint.
    #[arg(long, num_args = 2, value_names = ["OLD.json", "NEW.json"])]
    pub diff: Option<Vec<PathBuf>>,

    /// Output format: text, json, sarif, junit or xml (Valgrind's XML of one process, see --pid;
    /// with --diff: text or json).
    #[arg(long, default_value = "text", value_name = "FORMAT", value_parser = every_report_format())]
    pub format: ReportFormat,

    /// Write the output to FILE instead of standard output (checked first; a regular file is
    /// replaced atomically, a device, FIFO or symlink written into).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// SARIF's %SRCROOT% (and the root --diff shows files relative to) [default: the working
    /// directory].
    #[arg(long, value_name = "DIR", value_parser = parse_dir)]
    pub source_root: Option<PathBuf>,

    /// With --format xml: the process whose document to write (Valgrind's XML is one document
    /// per process); needed when the report has several.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Mark the findings FILE (written by memcheck run --write-baseline) lists as known, and list
    /// the new ones and the entries no finding had; exit 1 when an error or a listed leak is new.
    #[arg(long, value_name = "FILE", conflicts_with = "diff")]
    pub baseline: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct CleanArgs {}

#[derive(Args, Debug, Clone)]
pub struct StatsArgs {
    /// The process to inspect.
    #[arg(value_name = "PID")]
    pub pid: i32,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

    /// Refresh every SECONDS: a live view on a terminal, one line per refresh when piped (one JSON
    /// object per line with --format json); ends when the process exits.
    #[arg(long, value_name = "SECONDS")]
    pub watch: Option<f64>,

    /// Also stop a process that runs under memcheck briefly to ask glibc for mallinfo2.
    #[arg(long, conflicts_with = "no_ptrace")]
    pub ptrace: bool,

    /// Never stop the process: no glibc figures for processes outside memcheck.
    #[arg(long)]
    pub no_ptrace: bool,

    /// Instead, the top allocation sites of a process under memcheck: live bytes and blocks per
    /// allocation stack, symbolized (its block table is read under its locks: allocations wait
    /// that long, nothing is paused). With --watch, each site's growth per interval.
    #[arg(long, conflicts_with_all = ["ptrace", "no_ptrace"])]
    pub sites: bool,

    /// With --sites: order by live bytes, live blocks, or allocation calls made at the site
    /// since the process started, freed blocks included (largest first; `allocs` also lists the
    /// sites whose blocks are all freed).
    #[arg(long, value_enum, default_value_t = SitesSort::Bytes, value_name = "KEY", requires = "sites")]
    pub sort: SitesSort,

    /// With --sites: also draw every site as an interactive flame graph (SVG) of live bytes by
    /// allocation stack, written to FILE (again at each --watch refresh).
    #[arg(long, value_name = "FILE.svg", requires = "sites")]
    pub flamegraph: Option<PathBuf>,

    /// With --sites: how many sites to show.
    #[arg(long, default_value_t = 10, value_name = "N", requires = "sites", value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SitesSort {
    Bytes,
    Blocks,
    Allocs,
}

#[derive(Args, Debug, Clone)]
pub struct LeaksArgs {
    /// The process to check (a program started by `memcheck run`, or that CLI's pid).
    #[arg(value_name = "PID")]
    pub pid: i32,

    /// Show only the leaks that are new or grew since the previous check of this process (by
    /// fingerprint: kind and stack functions), with the blocks and bytes added since
    /// (Valgrind's `leak_check full increased`). Every check is remembered for the next.
    #[arg(long)]
    pub since_last: bool,

    /// Leak kinds to list one by one: a comma-separated list of definite, indirect, possible,
    /// reachable, or all / none.
    #[arg(long, default_value = "definite,indirect", value_name = "KINDS", value_parser = parse_leak_kinds)]
    pub show_leak_kinds: LeakKinds,

    /// Format of the report: text, json, sarif, junit (as memcheck run's) or xml (Valgrind's XML,
    /// protocol 4: one document for the process checked, laid out as Valgrind's at exit).
    #[arg(long, default_value = "text", value_name = "FORMAT", value_parser = every_report_format())]
    pub format: ReportFormat,

    /// Write the --format report to FILE instead of standard output (a regular file is replaced
    /// atomically; a device, FIFO or symlink written into).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the report in FORMAT (text, json, sarif, junit or xml) to FILE; repeatable.
    #[arg(long = "report", value_name = "FORMAT=FILE", value_parser = parse_report_of_one)]
    pub reports: Vec<ReportSpec>,

    /// Suppress the findings FILE describes (repeatable; the formats of memcheck run's
    /// --suppressions).
    #[arg(long, value_name = "FILE")]
    pub suppressions: Vec<PathBuf>,

    /// Apply memcheck's built-in suppressions (yes or no).
    #[arg(long, default_value = "yes", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    pub default_suppressions: bool,

    /// SARIF's %SRCROOT% [default: the working directory].
    #[arg(long, value_name = "DIR", value_parser = parse_dir)]
    pub source_root: Option<PathBuf>,

    /// Seconds to wait for the process's answer.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Also draw the listed leaks as an interactive flame graph (SVG) of leaked bytes by
    /// allocation stack, written to FILE.
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct MapsArgs {
    /// The process to inspect.
    #[arg(value_name = "PID")]
    pub pid: i32,

    /// Order of the regions: by start address, by size, RSS, PSS or swap (largest first), or by
    /// kind.
    #[arg(long, value_enum, default_value_t = MapsSort::Start, value_name = "KEY")]
    pub sort: MapsSort,

    /// Show only regions of this kind (repeatable, or comma-separated). Totals then cover the
    /// shown regions.
    #[arg(long = "kind", value_enum, value_delimiter = ',', value_name = "KIND")]
    pub kinds: Vec<crate::layout::Kind>,

    /// Format of the output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

    /// Write the output to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapsSort {
    Start,
    Size,
    Rss,
    Pss,
    Swap,
    Kind,
}

#[derive(Args, Debug, Clone)]
#[command(group = clap::ArgGroup::new("action").args(["touch", "evict", "lock"]))]
pub struct ResidencyArgs {
    /// Files and directories (searched recursively; symbolic links inside them are not followed).
    #[arg(
        value_name = "PATH",
        required_unless_present = "pid",
        conflicts_with = "pid"
    )]
    pub paths: Vec<PathBuf>,

    /// Show the residency of each region of this live process instead (from /proc/PID/pagemap):
    /// resident, swapped out, not present.
    #[arg(long, value_name = "PID", conflicts_with = "action")]
    pub pid: Option<i32>,

    /// Read the files' pages into the page cache first.
    #[arg(long)]
    pub touch: bool,

    /// Drop the files' pages from the page cache first (dirty pages are written back first).
    #[arg(long)]
    pub evict: bool,

    /// Load the files' pages and hold them in memory with mlock until interrupted (SIGINT or
    /// SIGTERM).
    #[arg(long)]
    pub lock: bool,

    /// Format of the output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

    /// Write the output to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct OvercommitArgs {
    /// Probe whether an allocation of SIZE bytes would succeed now (suffixes K, M, G, T), with a
    /// real mmap in a throw-away child that never touches it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub check: Option<u64>,

    /// Also show this process's commit, OOM score and memory limits.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,

    /// Also list the processes the OOM killer would pick first.
    #[arg(long)]
    pub oom: bool,

    /// How many processes --oom lists.
    #[arg(long, default_value_t = 10, value_name = "N", requires = "oom", value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,

    /// Format of the output: text or json.
    #[arg(long, value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    pub format: Format,

    /// Write the output to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Leak check at exit: no, summary (totals only) or full (each leak with its stack). With
    /// --sample-rate, no is production mode (see --sample-rate).
    #[arg(long, value_enum, default_value_t = LeakCheck::Full, value_name = "MODE")]
    pub leak_check: LeakCheck,

    /// Leak kinds to list one by one: a comma-separated list of definite, indirect, possible,
    /// reachable, or all / none.
    #[arg(long, default_value = "definite,indirect", value_name = "KINDS", value_parser = parse_leak_kinds)]
    pub show_leak_kinds: LeakKinds,

    /// Exit with N when any error or any leak of a kind --errors-for-leak-kinds names was found
    /// (Valgrind's meaning); suppressed findings and those of --baseline do not count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..))]
    pub error_exitcode: Option<u8>,

    /// Leak kinds that count as errors, for --error-exitcode and the ERROR SUMMARY: a
    /// comma-separated list of definite, indirect, possible, reachable, or all / none. The
    /// default differs from Valgrind's (definite,possible): an indirect block is lost for sure,
    /// while a possible one is often a live block reached through an interior pointer.
    #[arg(long, default_value = "definite,indirect", value_name = "KINDS", value_parser = parse_leak_kinds)]
    pub errors_for_leak_kinds: LeakKinds,

    /// Report alloc-dealloc-mismatch (a block released by a function of another family, e.g.
    /// malloc'd and deleted): yes or no; with no they are neither reported nor counted.
    #[arg(long, default_value = "yes", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    pub show_mismatched_frees: bool,

    /// Suppress the findings FILE describes (repeatable): LeakSanitizer lines (leak:PATTERN, or
    /// KIND:PATTERN for an error kind such as heap-buffer-overflow) and Valgrind blocks ({ name,
    /// Memcheck:Leak, fun:..., obj:..., ... }), mixed as you like. Read before the program runs:
    /// a malformed file is refused with FILE:LINE.
    #[arg(long, value_name = "FILE")]
    pub suppressions: Vec<PathBuf>,

    /// Apply memcheck's built-in suppressions (yes or no): one-time allocations that libstdc++,
    /// the Rust runtime, GCC and binutils keep until exit on purpose, and rust-lld's deliberate
    /// frees of malloc'd buffers with operator delete.
    #[arg(long, default_value = "yes", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    pub default_suppressions: bool,

    /// Print a ready suppression under each reported finding: no, yes or all (both print every
    /// one; memcheck does not ask as Valgrind's yes does). Its frames are function names up to
    /// main, so it survives a rebuild.
    #[arg(long, value_enum, default_value_t = GenSuppressions::No, value_name = "WHEN")]
    pub gen_suppressions: GenSuppressions,

    /// Format of --gen-suppressions' entries: valgrind (a { ... } block of the stack's
    /// functions) or lsan (KIND:^FUNCTION$ of the program's innermost frame).
    #[arg(long, value_enum, default_value_t = SuppressionFormat::Valgrind, value_name = "FORMAT")]
    pub gen_suppressions_format: SuppressionFormat,

    /// Quiet (Valgrind's -q): the text report on stderr holds only findings: errors, leak records,
    /// warnings that a report is incomplete, the ERROR SUMMARY of a process with errors and the
    /// failing processes; no first line per process, LEAK SUMMARY, clean ERROR SUMMARY,
    /// suppressions table or progress bar. The file reports (--output, --report) are complete.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// At the end, also list the suppressions of --suppressions files that matched nothing.
    #[arg(long)]
    pub list_unused_suppressions: bool,

    /// Findings FILE (written by --write-baseline) lists are known: still shown, marked known,
    /// but they do not fail --error-exitcode; the end of the report names the new ones and the
    /// entries no finding had (disappeared). Matched by fingerprint (kind and function names),
    /// so rebuilds and moved lines keep matching. Read before the program runs.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// Write every finding of this run to FILE as a baseline (JSON, one entry per fingerprint
    /// with its kind, functions and count, sorted). Checked before the program runs; may
    /// be the --baseline file, to update it.
    #[arg(long, value_name = "FILE")]
    pub write_baseline: Option<PathBuf>,

    /// Count warnings (calloc-overflow, allocation-size-too-big, invalid-alignment) as errors.
    #[arg(long)]
    pub warnings_as_errors: bool,

    /// What happens after an error is reported: continue (as Valgrind) or abort (as ASan).
    #[arg(long, value_enum, default_value_t = OnError::Continue, value_name = "ACTION")]
    pub on_error: OnError,

    /// Format of the report: text (on stderr, or to --output), json, sarif (SARIF 2.1.0, for code
    /// scanning) or junit (JUnit XML, one test case per process); json, sarif and junit need
    /// --output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text, value_name = "FORMAT")]
    pub format: ReportFormat,

    /// Where to write the --format report; - for standard output. Checked before the program
    /// runs. A regular file is replaced atomically; a device, FIFO or symlink is written into. With
    /// json, sarif or junit the text report is still printed on stderr; with text it goes to FILE
    /// only, without colour.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Also write the report in FORMAT (text, json, sarif or junit) to FILE; repeatable, in
    /// addition to --format/--output (e.g. --report sarif=r.sarif --report junit=r.xml). Each
    /// FILE is checked before the program runs and written like --output's; text to a file has
    /// no colour, and the text report still goes to stderr.
    #[arg(long = "report", value_name = "FORMAT=FILE", value_parser = parse_report)]
    pub reports: Vec<ReportSpec>,

    /// SARIF's %SRCROOT%: source files under DIR are given relative to it, and a finding is
    /// located at its innermost frame in a file under DIR [default: the working directory].
    #[arg(long, value_name = "DIR", value_parser = parse_dir)]
    pub source_root: Option<PathBuf>,

    /// Also write Valgrind's XML (protocol 4, one document per process) for the tools that read
    /// Valgrind's (ValgrindCI, valgrind-codequality, Jenkins' plugin): yes or no; needs
    /// --xml-file.
    #[arg(long, default_value = "no", value_name = "yes|no", action = clap::ArgAction::Set, value_parser = parse_yes_no)]
    pub xml: bool,

    /// Where --xml=yes writes: %p is the pid of the process the document is for (one file per
    /// process), %q{VAR} the value of the environment variable VAR, %% a %. Checked before the
    /// program runs. Without %p, a run of several processes writes the first one's document to
    /// FILE and each other's to FILE.PID.
    #[arg(long, value_name = "FILE")]
    pub xml_file: Option<String>,

    /// Write the text report to FILE instead of stderr, without colour (Valgrind's option; %p, %q{VAR}
    /// and %% as in --xml-file). With %p, one file per process; without, one file with every
    /// process, each under its own ==PID== header. Checked before the program runs; - is refused
    /// (it would mix with the program's standard output).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<String>,

    /// Also draw the leaks listed at exit (--show-leak-kinds) as an interactive flame graph (SVG)
    /// of leaked bytes by allocation stack, written to FILE (checked before the program runs).
    #[arg(long, value_name = "FILE.svg")]
    pub flamegraph: Option<PathBuf>,

    /// Take a snapshot of the running program's live allocation sites (bytes, blocks and
    /// allocation calls per stack, as `memcheck stats --sites`) each time memcheck itself gets
    /// signal SIG (`kill -USR1 MEMCHECK_PID`; a name as USR1 or SIGUSR2, RTMIN+N, or a number).
    /// The signal is memcheck's, not passed on to the program. A snapshot goes where the text
    /// report goes (stderr, or --log-file), into the JSON report's `snapshots`, and with
    /// --flamegraph FILE.svg to FILE.snapshot-N.svg. Signals that end, stop or crash processes,
    /// SIGCHLD, SIGPIPE and memcheck's own 62 are refused.
    #[arg(long, value_name = "SIG", value_parser = parse_snapshot_signal)]
    pub snapshot_signal: Option<i32>,

    /// Take a snapshot (as --snapshot-signal) every SECS seconds while the program runs.
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub snapshot_interval: Option<f64>,

    /// Frames recorded per allocation (1-128).
    #[arg(long, visible_alias = "depth", default_value_t = 16, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=128))]
    pub num_callers: u32,

    /// Which stacks a heap block keeps, as Valgrind's option (values below). A stack not kept is
    /// an empty stack in every report; an error's own stack (where it was found) is always
    /// walked.
    #[arg(long, value_enum, default_value_t = KeepStacktraces::AllocAndFree, value_name = "WHICH")]
    pub keep_stacktraces: KeepStacktraces,

    /// Bytes of freed memory held back from reuse, to catch double frees and late accesses
    /// (suffixes K, M, G, T).
    #[arg(long, default_value = "8M", value_name = "BYTES", value_parser = parse_size)]
    pub quarantine_size: u64,

    /// Bytes of canary redzone before each block (16-4096, rounded up to 16).
    #[arg(long, default_value_t = 16, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub redzone_size: u32,

    /// Guard mode: every block on pages of its own between PROT_NONE pages, its end flush with
    /// the page after it (overflow, the default) or its start right after the page before it
    /// (underflow), or each allocation site alternating the two (both); freed blocks become
    /// inaccessible (until their slot is reused after the quarantine), so bad reads and writes
    /// fault at the instruction. A block is aligned to the
    /// largest power of two dividing its size, at most 16, so even a 1-byte overflow faults (see
    /// --guard-align).
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "overflow", value_name = "SIDE")]
    pub guard: Option<GuardSide>,

    /// Guard mode (implies --guard): align every guarded block to N bytes (a power of two up to 4096) instead of
    /// its size's own alignment, for programs that assume more of malloc than the C standard
    /// gives (16: glibc's alignment, for SSE code that uses aligned loads on small blocks); an
    /// overflow within the padding is then found at free, by its canary.
    #[arg(long, value_name = "N", value_parser = parse_guard_align)]
    pub guard_align: Option<u32>,

    /// Report requests larger than SIZE bytes as allocation-size-too-big (ASan's limit by
    /// default; suffixes K, M, G, T); the call still returns what glibc returns.
    #[arg(long, default_value = "1T", value_name = "SIZE", value_parser = parse_size)]
    pub max_allocation_size: u64,

    /// Guard 1 block in N (GWP-ASan style sampling) and serve the rest in the default mode;
    /// implies --guard. With --leak-check=no and N above 1 (and neither --malloc-fill nor
    /// --free-fill), production mode: the other blocks are glibc's own, with nothing recorded
    /// (no stack, redzone, fill or quarantine), so they cost what they cost natively, and their
    /// double or invalid frees are left to glibc.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_rate: Option<u64>,

    /// Byte written into new blocks (not calloc's), 0-255 or none [default: 0xbe, or as
    /// MALLOC_PERTURB_ says].
    #[arg(long, value_name = "BYTE", value_parser = parse_fill)]
    pub malloc_fill: Option<Fill>,

    /// Byte written into freed blocks and checked when they leave the quarantine, catching
    /// writes after free; 0-255 or none [default: 0xfd, or as MALLOC_PERTURB_ says].
    #[arg(long, value_name = "BYTE", value_parser = parse_fill)]
    pub free_fill: Option<Fill>,

    /// Check the ranges the memory and string functions (memcpy, memset, strlen, strcpy, strcat,
    /// puts, ... and their _FORTIFY_SOURCE _chk variants) read and write against the heap block
    /// they fall in, and overlapping source and destination (param-overlap), before glibc does
    /// the work (yes or no). Calls the compiler inlines are not seen. [default: yes, except in
    /// production mode (--leak-check=no --sample-rate=N): no there unless given, as GWP-ASan,
    /// which gives up param-overlap and the sampled blocks' range checks]
    #[arg(long, value_name = "yes|no", num_args = 0..=1, require_equals = true, default_missing_value = "yes", value_parser = parse_yes_no)]
    pub check_mem_functions: Option<bool>,

    /// Also check the programs that PROG executes (yes or no).
    #[arg(long, value_name = "yes|no", num_args = 0..=1, require_equals = true, default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub trace_children: bool,

    /// With --trace-children: programs exec'd at a path matching one of these comma-separated
    /// glob patterns (* and ? match any characters, / included) run without memcheck
    /// (Valgrind's --trace-children-skip).
    #[arg(long, value_name = "PATTERNS")]
    pub trace_children_skip: Option<String>,

    /// With --trace-children: programs exec'd with an argument (argv[0] included) matching one
    /// of these comma-separated glob patterns run without memcheck (Valgrind's
    /// --trace-children-skip-by-arg).
    #[arg(long, value_name = "PATTERNS")]
    pub trace_children_skip_by_arg: Option<String>,

    /// Forked children write no report until they exec another program (yes or no; Valgrind's
    /// option).
    #[arg(long, value_name = "yes|no", num_args = 0..=1, require_equals = true, default_value = "no", default_missing_value = "yes", value_parser = parse_yes_no)]
    pub child_silent_after_fork: bool,

    /// The program to run, then its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "PROG [ARGS]..."
    )]
    pub command: Vec<OsString>,
}

/// `--color WHEN`: the type is [`crate::style`]'s (which knows nothing of clap), its names are
/// given here.
impl ValueEnum for ColorChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[ColorChoice::Auto, ColorChoice::Always, ColorChoice::Never]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }))
    }
}

/// `--format FORMAT` of `run` and `report`: the type is [`crate::report`]'s, its names are given
/// here.
impl ValueEnum for ReportFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &ReportFormat::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        // xml (Valgrind's, one document per process) is `memcheck report`'s only: a run writes
        // it with --xml=yes --xml-file, and refuses it elsewhere with that hint.
        Some(clap::builder::PossibleValue::new(self.name()).hide(*self == ReportFormat::Xml))
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenSuppressions {
    No,
    Yes,
    All,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuppressionFormat {
    Valgrind,
    Lsan,
}

/// `--keep-stacktraces WHICH`: Valgrind's names.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepStacktraces {
    /// The allocation stack only: no stack walked at free, a cheaper free; errors on a freed
    /// block say nothing of where it was freed.
    Alloc,
    /// The free stack only: errors and leaks carry no allocation stack (leaks still found and
    /// classified, grouped by kind alone; `stats --sites` shows one site without a stack).
    Free,
    /// Both (the default).
    AllocAndFree,
    /// The allocation stack until the free, then the free stack instead of it: errors on a freed
    /// block show only where it was freed.
    AllocThenFree,
    /// No stacks: the cheapest.
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardSide {
    Overflow,
    Underflow,
    Both,
}

/// `--kind KIND`: the type is [`crate::layout`]'s, its names and help are given here.
impl ValueEnum for crate::layout::Kind {
    fn value_variants<'a>() -> &'a [Self] {
        &crate::layout::Kind::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()).help(self.about()))
    }
}

/// `--source-root DIR`: an existing directory.
fn parse_dir(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.is_dir() {
        Ok(p)
    } else {
        Err(format!(
            "'{s}' is not a directory: give the root of the source tree (a repository's top)"
        ))
    }
}

/// `--report FORMAT=FILE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSpec {
    pub format: ReportFormat,
    pub path: PathBuf,
}

/// `memcheck report --format`: every format, xml included (which the shared list hides, as a run
/// refuses it).
fn every_report_format() -> impl clap::builder::TypedValueParser<Value = ReportFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ReportFormat::ALL.map(|f| f.name())).map(|s| {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .expect("a listed name")
    })
}

/// Why `--report xml=FILE` and `--format xml` are refused by a run.
pub const XML_HINT: &str = "Valgrind's XML is one document per process: write --xml=yes --xml-file=FILE (with %p in FILE for one file per process)";

/// `--report FORMAT=FILE` of a run, which may hold several processes: not xml.
fn parse_report(s: &str) -> Result<ReportSpec, String> {
    parse_report_spec(s, false)
}

/// `--report FORMAT=FILE` of `memcheck leaks`, whose report is one process's: xml too.
fn parse_report_of_one(s: &str) -> Result<ReportSpec, String> {
    parse_report_spec(s, true)
}

fn parse_report_spec(s: &str, xml: bool) -> Result<ReportSpec, String> {
    let names = || {
        ReportFormat::ALL
            .iter()
            .filter(|f| xml || **f != ReportFormat::Xml)
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some((format, path)) = s.split_once('=') else {
        return Err(format!(
            "'{s}' is not FORMAT=FILE: write e.g. sarif=report.sarif (FORMAT: {})",
            names()
        ));
    };
    let format = ReportFormat::ALL
        .into_iter()
        .find(|f| f.name() == format)
        .ok_or_else(|| format!("unknown report format '{format}': use {}", names()))?;
    if format == ReportFormat::Xml && !xml {
        return Err(XML_HINT.to_string());
    }
    if path.is_empty() {
        return Err(format!("'{s}' names no file: write {}=FILE", format.name()));
    }
    Ok(ReportSpec {
        format,
        path: PathBuf::from(path),
    })
}

/// A fill byte, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    Byte(u8),
    None,
}

fn parse_fill(s: &str) -> Result<Fill, String> {
    let t = s.trim();
    if t == "none" || t == "off" {
        return Ok(Fill::None);
    }
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16),
        None => t.parse::<u8>(),
    };
    v.map(Fill::Byte)
        .map_err(|_| format!("'{s}' is not a byte: write 0-255, 0x00-0xff, or none"))
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeakCheck {
    No,
    Summary,
    /// Valgrind's `--leak-check=yes` means the same.
    #[value(alias = "yes")]
    Full,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Continue,
    Abort,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

fn parse_leak_kinds(s: &str) -> Result<LeakKinds, String> {
    let mut k = LeakKinds::default();
    for part in s.split(',').map(str::trim) {
        match part {
            "all" => k = LeakKinds::ALL,
            "none" => k = LeakKinds::default(),
            "definite" => k.definite = true,
            "indirect" => k.indirect = true,
            "possible" => k.possible = true,
            "reachable" => k.reachable = true,
            other => {
                return Err(format!(
                    "unknown leak kind '{other}': use definite, indirect, possible, reachable, all or none"
                ))
            }
        }
    }
    Ok(k)
}

/// Parses `123`, `64K`, `8M`, `1G`, `2T` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("'{s}': the size suffix must be K, M, G or T")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| {
            format!("'{s}' is not a size: write a number of bytes, optionally with K, M, G or T")
        })
}

/// `--guard-align`: a power of two from 1 to 4096.
fn parse_guard_align(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n <= 4096 => Ok(n),
        _ => Err(format!(
            "'{s}' is not a guard alignment: write a power of two from 1 to 4096, e.g. 16"
        )),
    }
}

/// `--snapshot-interval`: seconds, at least 0.1.
fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=1e9).contains(&v) => Ok(v),
        _ => Err("give a number of seconds of at least 0.1, e.g. 1 or 2.5".into()),
    }
}

/// `--snapshot-signal`: a signal name (`USR1`, `SIGUSR1`, `RTMIN+2`, `RTMAX-3`) or number that
/// memcheck can take for itself without changing what the program or memcheck do.
pub fn parse_snapshot_signal(s: &str) -> Result<i32, String> {
    let t = s.trim();
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let (rtmin, rtmax) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        if rest.is_empty() {
            return Some(base);
        }
        let n: i32 = rest
            .strip_prefix(if sign > 0 { '+' } else { '-' })?
            .parse()
            .ok()?;
        Some(base + sign * n)
    };
    let sig = if let Ok(n) = t.parse::<i32>() {
        Some(n)
    } else if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(rtmin, rest, 1)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(rtmax, rest, -1)
    } else {
        (1..32).find(|&n| crate::report::summary::signal_name(n) == format!("SIG{name}"))
    };
    let Some(sig) = sig.filter(|&n| (1..=rtmax).contains(&n)) else {
        return Err(format!(
            "not a signal: give a name (USR1, USR2, HUP, ALRM, RTMIN+N) or a number from 1 to {rtmax}"
        ));
    };
    let refused = match sig {
        libc::SIGKILL | libc::SIGSTOP => Some("cannot be caught"),
        libc::SIGINT | libc::SIGTERM | libc::SIGQUIT => {
            Some("ends the run (memcheck passes it on to the program)")
        }
        libc::SIGSEGV
        | libc::SIGBUS
        | libc::SIGFPE
        | libc::SIGILL
        | libc::SIGTRAP
        | libc::SIGABRT
        | libc::SIGSYS => Some("reports a crash"),
        libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU | libc::SIGCONT => Some("is job control"),
        libc::SIGCHLD => Some("tells memcheck that its program ended"),
        libc::SIGPIPE => Some("tells memcheck that its output is closed"),
        n if n == memcheck_wire::live::SIGNAL => Some("is memcheck's live-check signal"),
        n if n > 31 && n < rtmin => Some("is reserved by glibc"),
        _ => None,
    };
    match refused {
        Some(why) => Err(format!(
            "signal {sig} ({}) {why}: use USR1, USR2, HUP, ALRM or RTMIN+N",
            if sig >= rtmin {
                format!("SIGRTMIN+{}", sig - rtmin)
            } else {
                crate::report::summary::signal_name(sig).to_string()
            }
        )),
        None => Ok(sig),
    }
}

fn parse_yes_no(s: &str) -> Result<bool, String> {
    match s {
        "yes" | "true" | "1" => Ok(true),
        "no" | "false" | "0" => Ok(false),
        _ => Err(format!("'{s}': expected yes or no")),
    }
}

/// What a man page says beyond the clap definition (rendered by `tests/generated.rs`): its exit
/// status when no "Exit status:" help line gives it, environment, files and examples.
pub struct ManExtra {
    pub exit_status: Option<&'static str>,
    pub environment: &'static [(&'static str, &'static str)],
    pub files: &'static [(&'static str, &'static str)],
    pub examples: &'static [(&'static str, &'static str)],
}

const COLOUR_ENV: [(&str, &str); 2] = [
    (
        "NO_COLOR",
        "when set and not empty, no colour with --color=auto (the default)",
    ),
    ("TERM", "dumb: no colour with --color=auto"),
];

/// The extra sections of the page of `page`: `memcheck`, or a subcommand's name.
pub fn man_extra(page: &str) -> ManExtra {
    const NONE: &[(&str, &str)] = &[];
    match page {
        "run" => ManExtra {
            exit_status: None,
            environment: &[
                COLOUR_ENV[0],
                COLOUR_ENV[1],
                ("PATH", "searched for PROG when it has no slash, as execvp does"),
                ("LD_PRELOAD", "kept: the program gets memcheck's library first, then these"),
                ("MALLOC_PERTURB_", "the fill bytes when --malloc-fill and --free-fill are not given, as glibc uses it"),
                ("TMPDIR", "where the run directory (the record files) is made"),
                ("XDG_CACHE_HOME, HOME", "where the library is written out: $XDG_CACHE_HOME/memcheck, else ~/.cache/memcheck"),
                ("MEMCHECK_SHIM", "the path of a library to preload instead of the built-in one"),
                ("MEMCHECK_DIR, MEMCHECK_OPTIONS", "set by memcheck for the program: the run directory and the library's settings"),
            ],
            files: &[
                ("~/.cache/memcheck/", "the library, written out on first use, named by its content hash"),
                ("$TMPDIR/memcheck-PID-START-NS-XXXXXX/", "the run directory: one record file per process (PID-STARTNS.mcr) and the statistics pages memcheck stats reads; removed after the report (memcheck clean removes those of killed runs)"),
            ],
            examples: &[
                ("memcheck run -- ./prog arg", "check ./prog, report on stderr; exit with the program's status"),
                ("memcheck run --error-exitcode=99 -- ./prog", "exit 99 when an error or a definite or indirect leak was found (not counting suppressed ones)"),
                ("memcheck run --format=json --output=report.json -- ./prog", "also write the report as JSON"),
                ("memcheck run --error-exitcode=1 --suppressions=known.supp --gen-suppressions=all -- ./prog", "fail only on findings known.supp does not describe, and print a ready entry under each"),
                ("memcheck run --guard --trace-children=yes -- make check", "guard pages around every block, in every program make runs"),
                ("memcheck run --trace-children=yes --write-baseline memcheck-baseline.json -- make check", "record today's findings of every program make runs as a baseline"),
                ("memcheck run --trace-children=yes --error-exitcode=1 --baseline memcheck-baseline.json -- make check", "fail only on findings the baseline does not have"),
            ],
        },
        "maps" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[
                ("/proc/PID/smaps", "the regions and their counters"),
                ("/proc/PID/task/*/stat", "the threads' stack pointers"),
                ("/proc/PID/map_files/, /proc/PID/root/", "the mapped objects, whose ELF headers give the sections"),
            ],
            examples: &[
                ("memcheck maps 1234", "every region of process 1234, then totals by kind"),
                ("memcheck maps --sort rss --kind heap,malloc-arena 1234", "only the heap regions, largest RSS first"),
                ("memcheck maps --format json -o maps.json 1234", "the same as JSON in a file"),
            ],
        },
        "residency" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[("/proc/PID/pagemap", "with --pid: which pages are present or swapped")],
            examples: &[
                ("memcheck residency /var/lib/db", "how much of each file under /var/lib/db is in the page cache"),
                ("memcheck residency --evict big.dat", "drop a file's pages from the cache, then show it"),
                ("memcheck residency --lock index.bin", "hold a file's pages in memory until interrupted"),
                ("memcheck residency --pid 1234", "which pages of each region of process 1234 are resident"),
            ],
        },
        "overcommit" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[
                ("/proc/sys/vm/overcommit_memory, overcommit_ratio, overcommit_kbytes", "the policy"),
                ("/proc/meminfo", "CommitLimit, Committed_AS, MemTotal, SwapTotal"),
                ("/proc/PID/cgroup, /proc/self/mountinfo", "the cgroup and where its hierarchy is mounted"),
                ("/sys/fs/cgroup/CGROUP/memory.max, memory.high, memory.swap.max, memory.current, memory.events", "the cgroup's limits (v1: memory.limit_in_bytes, memory.usage_in_bytes, memory.oom_control)"),
            ],
            examples: &[
                ("memcheck overcommit", "the policy, the commit accounting and the cgroup limits"),
                ("memcheck overcommit --check 64G || echo no", "whether a 64 GiB allocation would succeed now"),
                ("memcheck overcommit --pid 1234 --oom", "a process's commit and limits, and the OOM killer's first choices"),
            ],
        },
        "stats" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[
                ("/proc/PID/maps", "finds the statistics page of a process under memcheck"),
                ("/proc/PID/status, /proc/PID/smaps_rollup", "the footprint"),
                ("/proc/PID/task/*/children", "the checked program of a memcheck run CLI"),
            ],
            examples: &[
                ("memcheck run -- ./server & memcheck stats $!", "the heap of a program under memcheck (given the CLI's pid, it names the program's)"),
                ("memcheck stats --watch 1 1234", "refresh every second until the process exits"),
                ("memcheck stats --format json --no-ptrace 1234", "as JSON, never stopping the process"),
            ],
        },
        "leaks" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[
                ("/proc/PID/maps", "finds the run directory through the statistics page the process maps"),
                ("RUNDIR/PID-STARTNS.mclive.ID", "the answer the process writes to request ID (removed once read)"),
                ("RUNDIR/PID-STARTNS.mclast", "the previous check's leaks, for --since-last"),
            ],
            examples: &[
                ("memcheck run -- ./server & memcheck leaks $!", "the leaks of a running server (the CLI's pid names its program)"),
                ("memcheck leaks --since-last 1234", "only what leaked since the previous check of process 1234"),
                ("memcheck leaks --format json -o leaks.json 1234", "the report as JSON"),
            ],
        },
        "report" => ManExtra {
            exit_status: None,
            environment: &COLOUR_ENV,
            files: &[("FILE.json", "a report of memcheck run --format json --output FILE.json (or --report json=FILE.json), format version 1")],
            examples: &[
                ("memcheck report r.json --format sarif -o r.sarif --source-root .", "the SARIF log of a saved run"),
                ("memcheck report r.json", "its text report again"),
                ("memcheck report --diff main.json branch.json", "the findings the branch adds and fixes; exit 1 when it adds any"),
                ("memcheck report r.json --baseline memcheck-baseline.json", "the saved run's findings, those of the baseline marked known; exit 1 when one is new"),
            ],
        },
        "clean" => ManExtra {
            exit_status: None,
            environment: &[("TMPDIR", "the directory searched (/tmp when unset), as memcheck run makes its run directories there")],
            files: &[("$TMPDIR/memcheck-PID-START-NS-XXXXXX/", "run directories: removed when yours and their memcheck (pid PID, started at START, in pid namespace NS) is gone")],
            examples: &[("memcheck clean", "remove what killed runs left behind, and list what is kept")],
        },
        _ => ManExtra {
            exit_status: Some("0 on success; 1 for bad input (a process or file that is gone or unreadable, an allocation --check finds would fail); 2 for a bad command line; 125 if memcheck itself failed; memcheck run passes the program's status through (see memcheck-run(1))."),
            environment: &COLOUR_ENV,
            files: NONE,
            examples: &[
                ("memcheck run -- ./prog", "check a program's heap"),
                ("memcheck maps $(pidof prog)", "see a live process's memory"),
                ("memcheck stats $(pidof prog)", "its heap figures"),
            ],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kind_names_match_the_command_line() {
        use crate::layout::Kind;
        for k in Kind::value_variants() {
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.as_str());
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(Kind::value_variants().len(), Kind::ALL.len());
    }

    #[test]
    fn sizes_and_kinds_parse() {
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("8X").is_err());
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("99999999T").is_err());
        assert!(parse_size("").is_err());
        let k = parse_leak_kinds("definite,possible").unwrap();
        assert!(k.definite && k.possible && !k.indirect && !k.reachable);
        assert!(parse_leak_kinds("all").unwrap().reachable);
        assert!(parse_leak_kinds("lost").is_err());
        assert_eq!(
            parse_report("sarif=out/r.sarif"),
            Ok(ReportSpec {
                format: ReportFormat::Sarif,
                path: "out/r.sarif".into()
            })
        );
        assert_eq!(
            parse_report("junit=a=b.xml").unwrap().path,
            PathBuf::from("a=b.xml")
        );
        assert!(parse_report("sarif").unwrap_err().contains("FORMAT=FILE"));
        assert!(parse_report("xml=r.xml")
            .unwrap_err()
            .contains("--xml=yes --xml-file=FILE"));
        assert!(parse_report("xls=r.xml")
            .unwrap_err()
            .contains("unknown report format 'xls'"));
        assert!(parse_report("json=").is_err());
        // memcheck leaks reports one process: Valgrind's XML is one document there.
        assert_eq!(
            parse_report_of_one("xml=r.xml").map(|r| r.format),
            Ok(ReportFormat::Xml)
        );
        assert_eq!(parse_dir("/"), Ok(PathBuf::from("/")));
        assert!(parse_dir("/no/such/dir")
            .unwrap_err()
            .contains("not a directory"));
        assert_eq!(parse_fill("0xfd"), Ok(Fill::Byte(0xfd)));
        assert_eq!(parse_fill("7"), Ok(Fill::Byte(7)));
        assert_eq!(parse_fill("none"), Ok(Fill::None));
        assert!(parse_fill("300").is_err());
    }

    #[test]
    fn keep_stacktraces_takes_valgrinds_values_and_defaults_to_both() {
        let run = |args: &[&str]| {
            let mut v = vec!["memcheck", "run"];
            v.extend_from_slice(args);
            v.push("prog");
            match Cli::try_parse_from(v).map(|c| c.command) {
                Ok(Command::Run(r)) => Ok(r.keep_stacktraces),
                Ok(_) => panic!("not run"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(run(&[]), Ok(KeepStacktraces::AllocAndFree));
        for (v, k) in [
            ("alloc", KeepStacktraces::Alloc),
            ("free", KeepStacktraces::Free),
            ("alloc-and-free", KeepStacktraces::AllocAndFree),
            ("alloc-then-free", KeepStacktraces::AllocThenFree),
            ("none", KeepStacktraces::None),
        ] {
            assert_eq!(run(&[&format!("--keep-stacktraces={v}")]), Ok(k));
        }
        assert_eq!(
            run(&["--keep-stacktraces=both"]),
            Err(clap::error::ErrorKind::InvalidValue)
        );
    }

    #[test]
    fn run_takes_the_program_and_its_flags_verbatim() {
        let cli = Cli::try_parse_from([
            "memcheck",
            "run",
            "--error-exitcode=3",
            "--",
            "ls",
            "-l",
            "--color",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.error_exitcode, Some(3));
        assert_eq!(r.command, ["ls", "-l", "--color"]);
        let cli = Cli::try_parse_from(["memcheck", "run", "--trace-children", "--guard", "prog"])
            .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert!(r.trace_children);
        assert_eq!(r.guard, Some(GuardSide::Overflow));
        assert_eq!(r.command, ["prog"]);
        assert_eq!(r.max_allocation_size, 1 << 40);
        assert_eq!(r.guard_align, None);
        let cli = Cli::try_parse_from([
            "memcheck",
            "run",
            "--guard=both",
            "--guard-align=16",
            "--max-allocation-size=1M",
            "prog",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.guard, Some(GuardSide::Both));
        assert_eq!(r.guard_align, Some(16));
        assert_eq!(r.max_allocation_size, 1 << 20);
        for bad in ["0", "3", "8192", "x"] {
            assert!(parse_guard_align(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_guard_align("4096"), Ok(4096));
    }

    #[test]
    fn inspection_commands_parse_their_flags() {
        use crate::layout::Kind;
        let cli = Cli::try_parse_from([
            "memcheck",
            "maps",
            "42",
            "--kind",
            "heap",
            "--kind=thread-stack,bss",
            "--sort",
            "rss",
        ])
        .unwrap();
        let Command::Maps(m) = cli.command else {
            panic!("not maps")
        };
        assert_eq!((m.pid, m.sort), (42, MapsSort::Rss));
        assert_eq!(m.kinds, [Kind::Heap, Kind::ThreadStack, Kind::Bss]);
        assert!(
            Cli::try_parse_from(["memcheck", "residency"]).is_err(),
            "a path or --pid is needed"
        );
        assert!(Cli::try_parse_from(["memcheck", "residency", "--touch", "--evict", "f"]).is_err());
        assert!(Cli::try_parse_from(["memcheck", "residency", "--pid", "1", "f"]).is_err());
        let cli = Cli::try_parse_from([
            "memcheck",
            "overcommit",
            "--check",
            "3T",
            "--format",
            "json",
        ])
        .unwrap();
        let Command::Overcommit(o) = cli.command else {
            panic!("not overcommit")
        };
        assert_eq!((o.check, o.format), (Some(3 << 40), Format::Json));
        assert!(
            Cli::try_parse_from(["memcheck", "overcommit", "--top", "3"]).is_err(),
            "--top needs --oom"
        );
    }
}
