//! Valgrind's `.supp` blocks:
//!
//! ```text
//! {
//!    a name
//!    Memcheck:Leak
//!    match-leak-kinds: definite,indirect
//!    fun:make_*
//!    obj:/usr/lib/libfoo.so*
//!    ...
//!    fun:main
//! }
//! ```
//!
//! Valgrind's kinds map to memcheck's (`KINDS`): `Leak` to the leaks (narrowed by
//! `match-leak-kinds`), `Free` to invalid-free, double-free, alloc-dealloc-mismatch and
//! invalid-realloc, `Addr1`..`Addr32` and `Value1`..`Value32` to heap-buffer-overflow,
//! heap-buffer-underflow and use-after-free, `FishyValue` to calloc-overflow and
//! allocation-size-too-big, `BadSize` to allocation-size-too-big, `BadAlign` to invalid-alignment,
//! `Overlap` to param-overlap. Kinds memcheck does not detect (`Cond`, `Param`, `Jump`, ...) are
//! read and match nothing; blocks of other tools (`Helgrind:Race`) are skipped, as Valgrind does. The frame
//! lines match the stack from its innermost frame: `fun:PATTERN` a function name (a mangled C++
//! name without wildcards is demangled first), `obj:PATTERN` an object path, `src:FILE[:LINE]` a
//! source file, `...` any number of frames, `*` and `?` wildcards; the stack may go on past the
//! last line. Valgrind's stacks start inside the allocator (`fun:malloc`) or its replacement of a
//! memory or string function (`fun:memcpy@@GLIBC_2.14`), memcheck's at its caller, so a first
//! line that names one may match no frame.
use super::pattern::Pattern;
use super::{FrameLine, Kinds, Rule};
use memcheck_wire::LeakKind;

const ACCESS: &[&str] = &[
    "heap-buffer-overflow",
    "heap-buffer-underflow",
    "use-after-free",
];
const FREE: &[&str] = &[
    "invalid-free",
    "double-free",
    "alloc-dealloc-mismatch",
    "invalid-realloc",
];

/// Valgrind's Memcheck kind to memcheck's error kinds (`None`: the leaks).
fn kinds_of(kind: &str) -> Option<Option<&'static [&'static str]>> {
    let sized = |prefix: &str| {
        kind.strip_prefix(prefix)
            .is_some_and(|n| ["1", "2", "4", "8", "16", "32"].contains(&n))
    };
    Some(Some(match kind {
        "Leak" => return Some(None),
        "Free" => FREE,
        _ if sized("Addr") || sized("Value") => ACCESS,
        "FishyValue" => &["calloc-overflow", "allocation-size-too-big"],
        "BadSize" => &["allocation-size-too-big"],
        "BadAlign" => &["invalid-alignment"],
        "Overlap" => &["param-overlap"],
        "Cond" | "Value0" | "Jump" | "ClientCheck" | "ReallocZero" | "SizeMismatch"
        | "AlignMismatch" | "Param" => &[],
        _ => return None,
    }))
}

/// A parsed block: its name and what it suppresses, or `None` for another tool's block.
pub type Block = Option<(String, Kinds, Rule)>;

/// Parses the block whose `{` was just read. `lines` yields (line number, text) and is left
/// after the closing `}`. Errors carry the line they concern.
pub fn parse_block<'a>(
    open: usize,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<Block, (usize, String)> {
    let mut body: Vec<(usize, &str)> = Vec::new();
    let mut closed = false;
    for (n, l) in lines.by_ref() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l == "}" {
            closed = true;
            break;
        }
        if l == "{" {
            return Err((
                n,
                "`{` inside a block: the block above lacks its `}`".into(),
            ));
        }
        body.push((n, l));
    }
    if !closed {
        return Err((open, "this block has no closing `}`".into()));
    }
    let mut it = body.into_iter().peekable();
    let Some((_, name)) = it.next() else {
        return Err((
            open,
            "empty block: a name, Memcheck:KIND and frame lines are needed".into(),
        ));
    };
    let Some((kn, tk)) = it.next() else {
        return Err((
            open,
            "the block has a name only: Memcheck:KIND and frame lines are needed".into(),
        ));
    };
    let Some((tools, kind)) = tk.split_once(':') else {
        return Err((kn, format!("`{tk}` is not TOOL:KIND (e.g. Memcheck:Leak)")));
    };
    let memcheck = tools.split(',').any(|t| t.trim() == "Memcheck");
    let mapped = if memcheck {
        match kinds_of(kind.trim()) {
            Some(m) => Some(m),
            None => {
                return Err((
                    kn,
                    format!(
                        "unknown Memcheck kind `{}`: use Leak, Free, Addr1..Addr32, Value1..Value32, FishyValue, BadSize, BadAlign (or Cond, Param, ... which memcheck never reports)",
                        kind.trim()
                    ),
                ))
            }
        }
    } else {
        None
    };
    if kind.trim() == "Param" {
        // Valgrind's Param blocks name the system call parameter on the next line.
        it.next();
    }
    let mut leaks = [true; 4];
    if let Some(&(n, l)) = it.peek() {
        if let Some(list) = l.strip_prefix("match-leak-kinds:") {
            if mapped != Some(None) {
                return Err((
                    n,
                    "match-leak-kinds is for Memcheck:Leak blocks only".into(),
                ));
            }
            leaks = parse_leak_kinds(list).map_err(|e| (n, e))?;
            it.next();
        }
    }
    let mut frames = Vec::new();
    for (n, l) in it {
        frames.push(parse_frame(l).map_err(|e| (n, e))?);
    }
    if frames.is_empty() {
        return Err((
            open,
            "the block has no frame lines (fun:, obj:, src: or ...)".into(),
        ));
    }
    let Some(mapped) = mapped else {
        return Ok(None);
    };
    let kinds = match mapped {
        None => Kinds {
            errors: Vec::new(),
            leaks,
        },
        Some(errs) => Kinds {
            errors: errs.to_vec(),
            leaks: [false; 4],
        },
    };
    Ok(Some((name.to_string(), kinds, Rule::Frames(frames))))
}

/// `definite,indirect,possible,reachable`, `all` or `none`, indexed by `LeakKind`.
fn parse_leak_kinds(list: &str) -> Result<[bool; 4], String> {
    let mut k = [false; 4];
    for part in list.split(',').map(str::trim) {
        match part {
            "all" => k = [true; 4],
            "none" => k = [false; 4],
            "definite" => k[LeakKind::Definite as usize] = true,
            "indirect" => k[LeakKind::Indirect as usize] = true,
            "possible" => k[LeakKind::Possible as usize] = true,
            "reachable" => k[LeakKind::Reachable as usize] = true,
            other => {
                return Err(format!(
                    "unknown leak kind `{other}` in match-leak-kinds: use definite, indirect, possible, reachable, all or none"
                ))
            }
        }
    }
    Ok(k)
}

fn parse_frame(l: &str) -> Result<FrameLine, String> {
    if l == "..." {
        return Ok(FrameLine::Any);
    }
    if let Some(p) = l.strip_prefix("fun:") {
        let demangled = (!p.contains(['*', '?']) && (p.starts_with("_Z") || p.starts_with("_R")))
            .then(|| addr2line::demangle_auto(p.into(), None).into_owned())
            .filter(|d| d != p)
            .map(|d| Pattern::valgrind(&d));
        return Ok(FrameLine::Fun(Pattern::valgrind(p), demangled));
    }
    if let Some(p) = l.strip_prefix("obj:") {
        return Ok(FrameLine::Obj(Pattern::valgrind(p)));
    }
    if let Some(p) = l.strip_prefix("src:") {
        let (file, line) = match p.rsplit_once(':') {
            Some((f, n)) if n.parse::<u32>().is_ok() => (f, n.parse().ok()),
            _ => (p, None),
        };
        return Ok(FrameLine::Src(Pattern::valgrind(file), line));
    }
    Err(format!(
        "`{l}` is not a frame line: write fun:FUNCTION, obj:OBJECT, src:FILE[:LINE] or ..."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Block, (usize, String)> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let (n, first) = lines.next().unwrap();
        assert_eq!(first.trim(), "{");
        parse_block(n, &mut lines)
    }

    #[test]
    fn a_leak_block_parses() {
        let b = parse("{\n  mine\n  Memcheck:Leak\n  match-leak-kinds: definite,possible\n  fun:malloc\n  fun:make_*\n  ...\n}\n")
            .unwrap()
            .unwrap();
        assert_eq!(b.0, "mine");
        assert_eq!(b.1.leaks, [true, false, true, false]);
        let Rule::Frames(f) = b.2 else { panic!() };
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn kinds_map_and_bad_blocks_say_where() {
        let b = parse("{\n n\n Memcheck:Addr8\n fun:f\n}").unwrap().unwrap();
        assert_eq!(b.1.errors, ACCESS);
        let b = parse("{\n n\n Memcheck:Free\n fun:f\n}").unwrap().unwrap();
        assert!(b.1.errors.contains(&"alloc-dealloc-mismatch"));
        assert!(parse("{\n n\n Helgrind:Race\n fun:f\n}").unwrap().is_none());
        let e = parse("{\n n\n Memcheck:Lek\n fun:f\n}").unwrap_err();
        assert_eq!(e.0, 3);
        assert!(e.1.contains("unknown Memcheck kind `Lek`"), "{}", e.1);
        let e = parse("{\n n\n Memcheck:Leak\n fn:f\n}").unwrap_err();
        assert_eq!(e.0, 4);
        let e = parse("{\n n\n Memcheck:Leak\n fun:f\n").unwrap_err();
        assert_eq!(e.0, 1);
        let e = parse("{\n n\n Memcheck:Addr4\n match-leak-kinds: all\n fun:f\n}").unwrap_err();
        assert_eq!(e.0, 4);
        let e = parse("{\n n\n Memcheck:Leak\n match-leak-kinds: lost\n fun:f\n}").unwrap_err();
        assert!(e.1.contains("`lost`"));
        assert!(parse("{\n n\n Memcheck:Leak\n}").is_err());
    }
}
