//! What the inspection commands (`maps`, `residency`, `overcommit`) share: where output goes
//! (stdout, or a file written atomically), sizes and addresses for people. Invariant: JSON addresses are `"0x..."` strings, sizes are KiB numbers.
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

/// Writes `text` to standard output, or atomically to `output`. A reader that went away
/// (`memcheck maps 1 | head`) is not an error.
pub fn emit(output: Option<&Path>, text: &str) -> Result<()> {
    if let Some(path) = output.filter(|p| *p != Path::new("-")) {
        return crate::report::json::write_atomically(path, text.trim_end_matches('\n'));
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

/// An address as JSON shows it.
pub fn hex(v: u64) -> String {
    format!("0x{v:x}")
}

/// KiB for people: `812K`, `4.5M`, `1.2G`.
pub fn human_kb(kb: u64) -> String {
    const M: u64 = 1024;
    const G: u64 = 1024 * 1024;
    const T: u64 = 1024 * 1024 * 1024;
    match kb {
        k if k < M => format!("{k}K"),
        k if k < G => format!("{:.1}M", k as f64 / M as f64),
        k if k < T => format!("{:.1}G", k as f64 / G as f64),
        k => format!("{:.1}T", k as f64 / T as f64),
    }
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
    fn sizes_read_naturally() {
        assert_eq!(human_kb(0), "0K");
        assert_eq!(human_kb(1023), "1023K");
        assert_eq!(human_kb(1536), "1.5M");
        assert_eq!(human_kb(3 << 20), "3.0G");
        assert_eq!(human_kb(5 << 30), "5.0T");
        assert_eq!(hex(0x7fff_0000), "0x7fff0000");
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(0, 0), 0.0);
    }
}
