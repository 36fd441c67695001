//! memcheck's entry point: hands the arguments to `memcheck::main_with_args` and exits with its
//! status; records the inherited SIGPIPE disposition from `.init_array`.
fn main() {
    std::process::exit(memcheck::main_with_args(std::env::args_os()));
}

/// Runs from `.init_array`, before Rust's runtime sets SIGPIPE to SIG_IGN: `memcheck run` hands
/// the program the SIGPIPE disposition memcheck itself was started with.
extern "C" fn record_inherited_sigpipe() {
    memcheck::child::record_inherited_sigpipe();
}

#[used]
#[link_section = ".init_array"]
static RECORD_INHERITED_SIGPIPE: extern "C" fn() = record_inherited_sigpipe;
