//! Imports point one way: the graph of `crate::` (and `super::`) paths between the modules of
//! each crate has no cycle. The nodes are the shim's modules (`shim/src/*.rs`) and, for the CLI,
//! its top-level modules (`src/*.rs`, `src/*/` as one node each) with the subcommands of
//! `src/cmd/` as nodes of their own (`cmd` is `cmd/mod.rs`). An edge `a -> b` means that code in
//! `a` (tests included) names a path into `b`: `use crate::b::..`, `crate::b::f()`,
//! `use crate::{b, ..}`, `super::b` from a sibling, or `b::` from the `mod.rs` that declares `b`.
//! Comments and string literals are skipped.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// One source file: its module path inside the crate (`["cmd", "run"]`) and its text.
struct File {
    module: Vec<String>,
    text: String,
}

/// The source text with comments and the contents of string and char literals blanked out (so
/// braces and paths inside them do not count); lengths and line breaks are kept.
fn code_only(text: &str) -> Vec<char> {
    let c: Vec<char> = text.chars().collect();
    let mut out = c.clone();
    let mut i = 0;
    let blank = |out: &mut Vec<char>, a: usize, b: usize| {
        for ch in &mut out[a..b.min(c.len())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            let mut j = i;
            while j < c.len() {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0
                || !is_ident(c[i - 1])
                || (c[i - 1] == 'b' && (i == 1 || !is_ident(c[i - 2]))))
        {
            // A raw string r"..", r#".."#, br"..".
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if c[i] == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let end = (i + 3..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len());
                blank(&mut out, i, end + 1);
                i = end + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                blank(&mut out, i, i + 3);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn skip_ws(c: &[char], i: &mut usize) {
    while *i < c.len() && c[*i].is_whitespace() {
        *i += 1;
    }
}

fn ident(c: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < c.len() && (is_ident(c[*i]) || c[*i] == '*') {
        *i += 1;
    }
    c[start..*i].iter().collect()
}

/// The paths of a use tree or an expression path starting at `i` (`a::b`, `{a, b::{c, d}}`),
/// each as its segments.
fn paths(c: &[char], i: &mut usize) -> Vec<Vec<String>> {
    skip_ws(c, i);
    if c.get(*i) == Some(&'{') {
        *i += 1;
        let mut all = Vec::new();
        loop {
            skip_ws(c, i);
            match c.get(*i) {
                None => break,
                Some('}') => {
                    *i += 1;
                    break;
                }
                Some(',') => *i += 1,
                _ => {
                    let before = *i;
                    all.extend(paths(c, i));
                    // `a as b` and anything else the tree walk does not read.
                    while *i < c.len() && !matches!(c[*i], ',' | '}' | '{') {
                        *i += 1;
                    }
                    if *i == before {
                        *i += 1;
                    }
                }
            }
        }
        return all;
    }
    let first = ident(c, i);
    if first.is_empty() {
        return vec![Vec::new()];
    }
    if c.get(*i) == Some(&':') && c.get(*i + 1) == Some(&':') {
        *i += 2;
        return paths(c, i)
            .into_iter()
            .map(|mut p| {
                p.insert(0, first.clone());
                p
            })
            .collect();
    }
    vec![vec![first]]
}

/// The module paths every `crate::`/`super::`/`self::` path of a file leads to, resolved against
/// the module path at that point (inline `mod x { .. }` blocks, such as `mod tests`, count); a
/// `mod x;` it declares (a child file) appears as `["\0mod", .., "x"]`.
fn references(file: &File) -> Vec<Vec<String>> {
    let c = code_only(&file.text);
    let mut out = Vec::new();
    // (module path, brace depth at which it closes)
    let mut stack: Vec<(Vec<String>, usize)> = vec![(file.module.clone(), usize::MAX)];
    let mut depth = 0usize;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if ch == '}' {
            depth = depth.saturating_sub(1);
            if stack.len() > 1 && stack.last().unwrap().1 == depth {
                stack.pop();
            }
            i += 1;
            continue;
        }
        if !is_ident(ch) && ch != '$' || (i > 0 && (is_ident(c[i - 1]) || c[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let here = stack.last().unwrap().0.clone();
        let mut j = i;
        if ch == '$' {
            j += 1;
        }
        let word = ident(&c, &mut j);
        if word.is_empty() {
            i += 1;
            continue;
        }
        if word == "mod" {
            let mut k = j;
            skip_ws(&c, &mut k);
            let name = ident(&c, &mut k);
            skip_ws(&c, &mut k);
            match c.get(k) {
                Some('{') => {
                    let mut inner = here.clone();
                    inner.push(name);
                    stack.push((inner, depth));
                    depth += 1;
                    i = k + 1;
                }
                Some(';') => {
                    let mut child = here.clone();
                    child.push(name);
                    out.push(vec!["\0mod".to_string()].into_iter().chain(child).collect());
                    i = k + 1;
                }
                _ => i = j,
            }
            continue;
        }
        let is_path = c.get(j) == Some(&':') && c.get(j + 1) == Some(&':');
        let base = match word.as_str() {
            "crate" if is_path => Some(Vec::new()),
            "super" | "self" if is_path => Some(here.clone()),
            _ => None,
        };
        let Some(mut base) = base else {
            i = j;
            continue;
        };
        let mut k = j + 2;
        if word == "super" {
            base.pop();
            // super::super::..
            loop {
                let mut m = k;
                let w = ident(&c, &mut m);
                if w == "super" && c.get(m) == Some(&':') && c.get(m + 1) == Some(&':') {
                    base.pop();
                    k = m + 2;
                } else {
                    break;
                }
            }
        }
        for p in paths(&c, &mut k) {
            let mut abs = base.clone();
            abs.extend(p);
            out.push(abs);
        }
        i = k.max(j);
    }
    out
}

/// The import graph of a crate: `node` maps a module path to its node (or none: the crate root).
fn graph(files: &[File], node: impl Fn(&[String]) -> Option<String>) -> Graph {
    let mut g = Graph::new();
    for f in files {
        let Some(from) = node(&f.module) else {
            continue;
        };
        g.entry(from.clone()).or_default();
        let refs = references(f);
        let mut children = BTreeSet::new();
        for r in &refs {
            if r.first().map(String::as_str) == Some("\0mod") {
                children.insert(r[1..].to_vec());
            }
        }
        let code: String = code_only(&f.text).into_iter().collect();
        for r in refs {
            if r.first().map(String::as_str) == Some("\0mod") {
                continue;
            }
            if let Some(to) = node(&r) {
                if to != from {
                    g.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        // A mod.rs that names a child it declares (`run::run(..)`) depends on it.
        for child in children {
            let name = child.last().unwrap();
            let named = code.match_indices(&format!("{name}::")).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                !before.is_some_and(|b| is_ident(b) || b == ':')
            });
            if let (true, Some(to)) = (named, node(&child)) {
                if to != from {
                    g.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    g
}

/// A cycle of the graph, as its nodes with the first repeated at the end.
fn cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap();
                let mut c = path[at..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

fn show(g: &Graph) -> String {
    g.iter()
        .map(|(a, bs)| {
            let bs: Vec<&str> = bs.iter().map(String::as_str).collect();
            format!("  {a} -> {}\n", bs.join(" "))
        })
        .collect()
}

fn assert_acyclic(what: &str, g: &Graph) {
    if let Some(c) = cycle(g) {
        panic!(
            "the imports of {what} go round in a circle: {}\nthe whole graph:\n{}",
            c.join(" -> "),
            show(g)
        );
    }
}

/// Every `.rs` file under `dir`, with its module path relative to the crate root `dir`.
fn crate_files(dir: &Path) -> Vec<File> {
    fn walk(dir: &Path, module: &[String], out: &mut Vec<File>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if p.is_dir() {
                let mut m = module.to_vec();
                m.push(name);
                walk(&p, &m, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut m = module.to_vec();
                if !matches!(stem, "mod" | "lib" | "main") {
                    m.push(stem.to_string());
                } else if stem != "mod" && !module.is_empty() {
                    continue;
                }
                out.push(File {
                    module: m,
                    text: std::fs::read_to_string(&p).unwrap(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &[], &mut out);
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shim's graph: one node per file of `shim/src` (its crate root, lib.rs, is not one).
fn shim_graph() -> Graph {
    let files = crate_files(&root().join("shim/src"));
    let mods: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    graph(&files, |m| m.first().filter(|n| mods.contains(*n)).cloned())
}

/// The CLI's graph: top-level modules, and `cmd::NAME` for each file of `src/cmd`.
fn cli_graph() -> Graph {
    let mut files = crate_files(&root().join("src"));
    // main.rs is the binary crate's root (it names the library as `memcheck::`).
    files.retain(|f| !f.module.is_empty());
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .collect();
    let cmds: BTreeSet<String> = files
        .iter()
        .filter(|f| f.module.len() == 2 && f.module[0] == "cmd")
        .map(|f| f.module[1].clone())
        .collect();
    graph(&files, |m| match m {
        [c, sub, ..] if c == "cmd" && cmds.contains(sub) => Some(format!("cmd::{sub}")),
        [top, ..] if tops.contains(top) => Some(top.clone()),
        _ => None,
    })
}

#[test]
fn shim_imports_point_one_way() {
    let g = shim_graph();
    // The reader sees the edges that exist (it is not blind, so an empty graph cannot pass).
    for (a, b) in [("alloc", "quarantine"), ("alloc", "init"), ("exit", "scan")] {
        assert!(
            g.get(a).is_some_and(|s| s.contains(b)),
            "{a} -> {b} not found in\n{}",
            show(&g)
        );
    }
    // Nothing below the entry points imports them back: only `exports` may import `alloc`, and
    // only `exports`, `alloc` and the exit-path modules that are called by `init` may use `init`.
    for (module, deps) in &g {
        let m = module.as_str();
        assert!(
            m == "exports" || !deps.contains("alloc"),
            "{m} imports alloc:\n{}",
            show(&g)
        );
        assert!(
            m == "exports" || m == "alloc" || !deps.contains("init"),
            "{m} imports init:\n{}",
            show(&g)
        );
    }
    assert_acyclic("shim/src", &g);
}

#[test]
fn cli_imports_point_one_way() {
    let g = cli_graph();
    assert!(
        g.get("cmd").is_some_and(|s| s.contains("cmd::run")),
        "{}",
        show(&g)
    );
    assert_acyclic("src", &g);
    // The clap definition imports no command.
    assert!(
        !g["cli"]
            .iter()
            .any(|d| d == "cmd" || d.starts_with("cmd::")),
        "cli imports cmd:\n{}",
        show(&g)
    );
    // The subcommands share helpers through cmd/inspect.rs, never through each other.
    for (a, deps) in g.iter().filter(|(a, _)| a.starts_with("cmd::")) {
        for d in deps.iter().filter(|d| d.starts_with("cmd::")) {
            assert_eq!(
                d, "cmd::inspect",
                "{a} imports {d}: move what they share to cmd/inspect.rs"
            );
        }
    }
    // The report model, the layout model and the colour decisions know nothing of clap (cli.rs
    // gives their types their command-line names).
    for model in ["report", "layout", "style"] {
        assert!(
            !g[model].contains("cli"),
            "{model} imports cli:\n{}",
            show(&g)
        );
        for f in crate_files(&root().join("src"))
            .iter()
            .filter(|f| f.module.first().map(String::as_str) == Some(model))
        {
            let code: String = code_only(&f.text).into_iter().collect();
            assert!(!code.contains("clap"), "{model} ({:?}) uses clap", f.module);
        }
    }
}

fn files(list: &[(&str, &str)]) -> Vec<File> {
    list.iter()
        .map(|(m, t)| File {
            module: m
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            text: t.to_string(),
        })
        .collect()
}

fn by_first(m: &[String]) -> Option<String> {
    m.first().cloned()
}

#[test]
fn the_reader_finds_every_kind_of_path_and_skips_comments_and_strings() {
    let g = graph(
        &files(&[
            (
                "a",
                "use crate::{b, c::{X, Y as Z}};\nfn f() { crate::d::g(); }",
            ),
            (
                "b",
                "// use crate::a;\n/* crate::a */ const S: &str = \"crate::a\"; \
                 const R: &str = r#\"crate::a\"#; fn h<'x>(c: char) -> bool { c == '{' }",
            ),
            ("c", "mod tests { use super::*; use crate::e::f; }"),
            ("d", "macro_rules! m { () => { $crate::e::x() } }"),
            ("e", ""),
        ]),
        by_first,
    );
    let want = |a: &str, bs: &[&str]| {
        assert_eq!(
            g[a],
            bs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
            "{a}:\n{}",
            show(&g)
        )
    };
    want("a", &["b", "c", "d"]);
    want("b", &[]);
    want("c", &["e"]);
    want("d", &["e"]);
    assert_eq!(cycle(&g), None);
}

#[test]
fn a_cycle_is_found_and_named() {
    let g = graph(
        &files(&[
            ("a", "use crate::b::f;"),
            ("b", "fn g() { crate::c::h() }"),
            ("c", "use crate::{a, d};"),
            ("d", ""),
        ]),
        by_first,
    );
    let c = cycle(&g).expect("a -> b -> c -> a");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4, "{c:?}");
}

#[test]
fn super_and_child_modules_are_resolved() {
    // cmd/mod.rs calls its child run; cmd/maps.rs uses its sibling inspect through super.
    let g = graph(
        &files(&[
            (
                "cmd",
                "pub mod inspect;\npub mod maps;\npub mod run;\nfn d() { run::run() }",
            ),
            (
                "cmd::maps",
                "use super::inspect::{self, hex};\nmod tests { use super::*; }",
            ),
            ("cmd::inspect", ""),
            ("cmd::run", "use super::super::cli;"),
            ("cli", ""),
        ]),
        |m: &[String]| match m {
            [c, sub, ..] if c == "cmd" => Some(format!("cmd::{sub}")),
            [top, ..] => Some(top.clone()),
            [] => None,
        },
    );
    assert_eq!(g["cmd"], BTreeSet::from(["cmd::run".to_string()]));
    assert_eq!(g["cmd::maps"], BTreeSet::from(["cmd::inspect".to_string()]));
    assert_eq!(g["cmd::run"], BTreeSet::from(["cli".to_string()]));
}
