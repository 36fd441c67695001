//! The JSON report (format in `docs/report-format.md`); `crate::output` writes it.
use super::Report;

pub fn render(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes")
}
