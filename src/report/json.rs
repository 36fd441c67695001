//! The JSON report (format in `docs/report-format.md`), written whole to a temporary file and
//! renamed into place, so a reader never sees half a report.
use super::Report;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

pub fn render(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes")
}

/// Writes `text` to `path` atomically, or to stdout for `-`.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write the report next to {}", path.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.write_all(b"\n")?;
    tmp.persist(path)
        .with_context(|| format!("cannot write the report to {}", path.display()))?;
    Ok(())
}
