//! memcheck's version text. Its own module so that `cli` (the clap definition) and `cmd` (which
//! prints `--version`) both use it without `cli` importing `cmd`.

/// Static version text for generated documentation; `--version` prints [`version_line`].
pub const VERSION_LINE: &str = env!("CARGO_PKG_VERSION");

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
