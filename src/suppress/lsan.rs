//! LeakSanitizer's suppression lines, `KIND:PATTERN`: `leak:PATTERN` as LeakSanitizer reads
//! it, and memcheck's extension to every error kind of the JSON contract
//! (`heap-buffer-overflow:PATTERN`, `alloc-dealloc-mismatch:PATTERN`, ...). The pattern (`*`
//! wildcards, `^`/`$` anchors, else found anywhere) matches when any frame's function name,
//! source file or object path matches it.
use super::pattern::Pattern;
use super::{Kinds, Rule};
use memcheck_wire::ErrorKind;

/// The kinds an LSan line may name, for the error message.
pub fn kind_names() -> String {
    let mut names = vec!["leak"];
    names.extend(ErrorKind::ALL.iter().map(|k| k.name()));
    names.join(", ")
}

/// Parses one line (not blank, not a comment) into what it applies to and its rule.
pub fn parse_line(line: &str) -> Result<(Kinds, Rule), String> {
    let Some((kind, pattern)) = line.split_once(':') else {
        return Err(format!(
            "`{line}` is not a suppression: write KIND:PATTERN (e.g. leak:my_function), or a Valgrind {{ ... }} block"
        ));
    };
    let kind = kind.trim();
    let pattern = pattern.trim();
    let kinds = if kind == "leak" {
        Kinds::leaks_all()
    } else if let Some(k) = ErrorKind::ALL.iter().find(|k| k.name() == kind) {
        Kinds::error(k.name())
    } else {
        return Err(format!(
            "unknown kind `{kind}`: use one of {}",
            kind_names()
        ));
    };
    if pattern.is_empty() || pattern == "^" || pattern == "$" || pattern == "^$" {
        return Err(format!(
            "`{kind}:` has no pattern: name a function, file or object"
        ));
    }
    Ok((kinds, Rule::AnyFrame(Pattern::lsan(pattern))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_or_say_why_not() {
        let (k, _) = parse_line("leak:make_greeting").unwrap();
        assert!(k.leaks.iter().all(|&b| b));
        let (k, _) = parse_line("heap-buffer-overflow: ^write_past$").unwrap();
        assert_eq!(k.errors, ["heap-buffer-overflow"]);
        let e = parse_line("leek:x").unwrap_err();
        assert!(
            e.contains("unknown kind `leek`") && e.contains("use-after-free"),
            "{e}"
        );
        assert!(parse_line("leak:").unwrap_err().contains("no pattern"));
        assert!(parse_line("make_greeting")
            .unwrap_err()
            .contains("KIND:PATTERN"));
    }
}
