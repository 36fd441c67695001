//! Wildcard patterns of both suppression formats: `*` matches any run of characters (none
//! included), `?` any one character (Valgrind's only); LeakSanitizer's `^` and `$` anchor a
//! pattern at the start or end of the name, which it otherwise matches anywhere inside.

/// A compiled pattern: a glob matched against the whole name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    glob: Vec<char>,
    /// `?` is a wildcard (Valgrind), or a literal (LeakSanitizer).
    question: bool,
}

impl Pattern {
    /// Valgrind's rule: `*` and `?` wildcards, the pattern covers the whole name.
    pub fn valgrind(p: &str) -> Pattern {
        Pattern {
            glob: p.chars().collect(),
            question: true,
        }
    }

    /// LeakSanitizer's rule: `*` wildcards; found anywhere in the name unless anchored by a
    /// leading `^` or a trailing `$`.
    pub fn lsan(p: &str) -> Pattern {
        let (start, p) = match p.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let (end, p) = match p.strip_suffix('$') {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        let mut glob = Vec::new();
        if !start {
            glob.push('*');
        }
        glob.extend(p.chars());
        if !end {
            glob.push('*');
        }
        Pattern {
            glob,
            question: false,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let s: Vec<char> = name.chars().collect();
        glob(&self.glob, &s, self.question)
    }
}

/// Iterative glob matching with one backtrack point (linear in practice, no recursion).
fn glob(p: &[char], s: &[char], question: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == s[si] || (question && p[pi] == '?')) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valgrind_patterns_cover_the_whole_name() {
        assert!(Pattern::valgrind("make_*").matches("make_greeting"));
        assert!(!Pattern::valgrind("make").matches("make_greeting"));
        assert!(Pattern::valgrind("x?alloc").matches("xcalloc"));
        assert!(Pattern::valgrind("x?alloc").matches("xmalloc"));
        assert!(!Pattern::valgrind("x??alloc").matches("xcalloc"));
        assert!(Pattern::valgrind("x*alloc").matches("xrealloc"));
        assert!(Pattern::valgrind("*").matches(""));
        assert!(Pattern::valgrind("*/libc.so*").matches("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!Pattern::valgrind("*/libc.so*").matches("/lib/libcrypt.so.1"));
    }

    #[test]
    fn lsan_patterns_match_inside_unless_anchored() {
        assert!(Pattern::lsan("greeting").matches("make_greeting"));
        assert!(Pattern::lsan("^make").matches("make_greeting"));
        assert!(!Pattern::lsan("^greeting").matches("make_greeting"));
        assert!(Pattern::lsan("greeting$").matches("make_greeting"));
        assert!(!Pattern::lsan("make$").matches("make_greeting"));
        assert!(Pattern::lsan("^make_greeting$").matches("make_greeting"));
        assert!(!Pattern::lsan("^make_greeting$").matches("make_greeting2"));
        assert!(Pattern::lsan("m*g").matches("make_greeting"));
        assert!(!Pattern::lsan("x?z").matches("xyz"), "? is literal in LSan");
        assert!(Pattern::lsan("libfontconfig").matches("/usr/lib/libfontconfig.so.1"));
    }
}
