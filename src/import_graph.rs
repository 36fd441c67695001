//! A test of the import direction of `src/`: the graph of `crate::MODULE` references between
//! top-level modules has no cycle, and no subcommand of `cmd/` reaches into another one's module
//! (what they share lives in `cmd/inspect.rs`).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (a doc comment naming `crate::x` is no import).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `code`: `crate::proc::x` gives `proc`, and each name of a
/// braced list `crate::{a, b::c}` too.
fn referenced(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect::<String>()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices(prefix) {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + prefix.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Top-level module -> the top-level modules it references.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = code(&std::fs::read_to_string(&f).unwrap());
        let deps = g.entry(top.clone()).or_default();
        deps.extend(
            referenced(&text, "crate::")
                .into_iter()
                .filter(|d| *d != top),
        );
    }
    g
}

/// A cycle of `g` as a path `a -> b -> ... -> a`, if there is one.
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut c = path[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

#[test]
fn the_checker_finds_cycles_and_braced_imports() {
    let refs = referenced(
        "use crate::{cli::X, style};\nlet a = crate::proc::f(); notcrate::x",
        "crate::",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["cli", "proc", "style"]
    );
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::new());
    assert_eq!(cycle(&g), None);
    g.get_mut("c").unwrap().insert("a".to_string());
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn top_level_modules_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.contains_key("cli") && g.contains_key("cmd"), "{g:?}");
    assert_eq!(cycle(&g), None, "the imports of src/ form a cycle: {g:#?}");
    assert!(!g["cli"].contains("cmd"), "cli.rs must not import cmd/");
    for model in ["report", "style", "layout"] {
        let text: String = {
            let mut files = Vec::new();
            let p = src.join(model);
            if p.is_dir() {
                rust_files(&p, &mut files);
            } else {
                files.push(src.join(format!("{model}.rs")));
            }
            files
                .iter()
                .map(|f| code(&std::fs::read_to_string(f).unwrap()))
                .collect()
        };
        assert!(!text.contains("clap"), "{model} must not use clap types");
        assert!(!g[model].contains("cli"), "{model} must not import cli.rs");
    }
}

#[test]
fn subcommands_share_helpers_only_through_inspect() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    let commands = ["maps", "residency", "overcommit", "stats", "run"];
    for c in commands {
        let text = code(&std::fs::read_to_string(dir.join(format!("{c}.rs"))).unwrap());
        let mut used = referenced(&text, "super::");
        used.extend(referenced(&text, "crate::cmd::"));
        for other in commands.iter().filter(|o| **o != c) {
            assert!(
                !used.contains(*other),
                "cmd/{c}.rs imports cmd/{other}.rs: move what they share to cmd/inspect.rs"
            );
        }
    }
}
