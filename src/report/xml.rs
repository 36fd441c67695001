//! Escaping text for the XML documents memcheck writes (JUnit, Valgrind's protocol 4).

/// Escapes text for XML 1.0 content or a double-quoted attribute; characters XML cannot hold
/// (control characters other than tab, newline and carriage return) become U+FFFD.
pub fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped_for_xml() {
        assert_eq!(
            escape("a<b & \"c\"\n\u{1}", true),
            "a&lt;b &amp; &quot;c&quot;&#10;\u{fffd}"
        );
        assert_eq!(escape("x > y\n\"", false), "x &gt; y\n\"");
    }
}
