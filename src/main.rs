//! memcheck's entry point: parse, run, map the outcome to an exit status.
fn main() {
    std::process::exit(memcheck::main_with_args(std::env::args_os()));
}
