//! Man pages (`man/`) and shell completions (`completions/`) are generated from the clap
//! definition; this test fails when the committed files drift from it. Regenerate with
//! `UPDATE_GENERATED=1 cargo test --test generated`.
mod common;
use clap::CommandFactory;
use common::root;
use std::path::{Path, PathBuf};

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let cmd = memcheck::cli::Cli::command();
    let mut pages = vec![(String::from("memcheck"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("memcheck-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, c) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(c).render(&mut buf).unwrap();
        out.push((root().join("man").join(format!("{name}.1")), buf));
    }
    use clap_complete::Shell;
    for (shell, file) in [
        (Shell::Bash, "memcheck.bash"),
        (Shell::Zsh, "_memcheck"),
        (Shell::Fish, "memcheck.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(
            shell,
            &mut memcheck::cli::Cli::command(),
            "memcheck",
            &mut buf,
        );
        out.push((root().join("completions").join(file), buf));
    }
    out
}

#[test]
fn man_pages_and_completions_match_the_cli() {
    let update = std::env::var_os("UPDATE_GENERATED").is_some();
    let mut stale = Vec::new();
    for (path, want) in generated() {
        let have = std::fs::read(&path).unwrap_or_default();
        if have != want {
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else {
                stale.push(
                    path.strip_prefix(root())
                        .unwrap_or(Path::new("?"))
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are out of date: {stale:?}; run UPDATE_GENERATED=1 cargo test --test generated and commit them"
    );
}
