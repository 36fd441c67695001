//! What the inspection commands (`maps`, `residency`, `overcommit`, `stats`) share: where output
//! goes (stdout, or a file through `crate::output`), the JSON format version, percentages. Sizes and
//! addresses for people are `crate::units`'. Invariant: JSON addresses are `"0x..."` strings, and
//! sizes carry their unit in the field name (`_kb` or `_bytes`).
use crate::cli::ColorChoice;
use crate::style::{self, Painter};
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// The format version of the inspection commands' JSON (`maps`, `residency`, `overcommit`,
/// `stats`), its `version` field; bumped on incompatible changes.
pub const JSON_VERSION: u32 = 1;

/// The painter for output going to `output` (never colour into a file).
pub fn painter(color: ColorChoice, output: Option<&Path>) -> Painter {
    Painter {
        on: output.is_none() && style::stdout_color(color),
    }
}

/// Writes `text` to standard output, or to `output` as `crate::output` does (a regular file
/// replaced atomically, a device, FIFO or symlink written into). A reader that went away
/// (`memcheck maps 1 | head`) is not an error.
pub fn emit(output: Option<&Path>, text: &str) -> Result<()> {
    if let Some(path) = output.filter(|p| *p != Path::new("-")) {
        let sink = crate::output::check(path).map_err(crate::exit::usage)?;
        return crate::output::write(&sink, text);
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Pretty JSON with a final newline.
pub fn json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("inspection reports serialize");
    s.push('\n');
    s
}

/// Percentage with one decimal, 0 for an empty whole.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_have_one_decimal() {
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(0, 0), 0.0);
    }
}
