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
        let page = name.strip_prefix("memcheck-").unwrap_or("memcheck");
        out.push((
            root().join("man").join(format!("{name}.1")),
            man_page(c, page),
        ));
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

/// Text for roff: backslashes, hyphens and quotes escaped, no line starting with a control
/// character.
fn roff_text(s: &str) -> String {
    let t = s
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq");
    if t.starts_with('.') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// A man page: clap_mangen's sections (the EXTRA section replaced by NOTES), then EXIT STATUS
/// from the command's "Exit status:" help line, and ENVIRONMENT, FILES and EXAMPLES from
/// `memcheck::cli::man_extra`.
fn man_page(c: clap::Command, page: &str) -> Vec<u8> {
    let man = clap_mangen::Man::new(c.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf).unwrap();
    man.render_name_section(&mut buf).unwrap();
    let mut synopsis = Vec::new();
    man.render_synopsis_section(&mut synopsis).unwrap();
    let mut synopsis = String::from_utf8(synopsis).unwrap();
    if c.get_overridden_usage()
        .is_some_and(|u| u.to_string().contains(" -- "))
    {
        // The program and its arguments follow `--`, as the usage line says.
        synopsis = synopsis.replacen("<\\fIPROG", "\\fB\\-\\-\\fR <\\fIPROG", 1);
    }
    buf.extend_from_slice(synopsis.as_bytes());
    man.render_description_section(&mut buf).unwrap();
    if c.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf).unwrap();
    }
    if c.has_subcommands() {
        man.render_subcommands_section(&mut buf).unwrap();
    }
    let extra = memcheck::cli::man_extra(page);
    let help = c
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut exit = extra.exit_status.map(str::to_string);
    let mut notes = Vec::new();
    for line in help.lines() {
        match line.strip_prefix("Exit status: ") {
            Some(e) => exit = Some(e.to_string()),
            None => notes.push(line),
        }
    }
    let mut roff = String::new();
    if !notes.is_empty() {
        roff.push_str(".SH NOTES\n");
        for n in notes {
            roff.push_str(&format!("{}\n.PP\n", roff_text(n)));
        }
    }
    let exit = exit.unwrap_or_else(|| panic!("{page}: no exit status"));
    let mut chars = exit.chars();
    let exit: String = chars
        .next()
        .into_iter()
        .flat_map(char::to_uppercase)
        .chain(chars)
        .collect();
    roff.push_str(&format!(".SH \"EXIT STATUS\"\n{}\n", roff_text(&exit)));
    let list = |roff: &mut String, title: &str, items: &[(&str, &str)], bold: bool| {
        if items.is_empty() {
            return;
        }
        roff.push_str(&format!(".SH {title}\n"));
        for (k, v) in items {
            let k = roff_text(k);
            let k = if bold {
                format!("\\fB{k}\\fR")
            } else {
                format!("\\fI{k}\\fR")
            };
            roff.push_str(&format!(".TP\n{k}\n{}\n", roff_text(v)));
        }
    };
    list(&mut roff, "ENVIRONMENT", extra.environment, true);
    list(&mut roff, "FILES", extra.files, false);
    if !extra.examples.is_empty() {
        roff.push_str(".SH EXAMPLES\n");
        for (cmd, what) in extra.examples {
            roff.push_str(&format!(
                ".PP\n{}\n.RS 4\n.nf\n\\fB{}\\fR\n.fi\n.RE\n",
                roff_text(what),
                roff_text(cmd)
            ));
        }
    }
    buf.extend_from_slice(roff.as_bytes());
    if c.get_version().is_some() || c.get_long_version().is_some() {
        man.render_version_section(&mut buf).unwrap();
    }
    buf
}

#[test]
fn man_pages_carry_exit_status_environment_files_and_examples() {
    for (path, page) in generated()
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "1"))
    {
        let text = String::from_utf8(page).unwrap();
        for section in [".SH \"EXIT STATUS\"", ".SH ENVIRONMENT", ".SH EXAMPLES"] {
            assert!(text.contains(section), "{path:?} lacks {section}");
        }
        assert!(
            !text.contains(".SH EXTRA"),
            "{path:?}: exit status belongs in EXIT STATUS"
        );
        assert!(
            !text.contains("docs/"),
            "{path:?} points at files an installed user lacks"
        );
        if !path.ends_with("memcheck.1") {
            assert!(text.contains(".SH FILES"), "{path:?} lacks FILES");
        }
    }
    let run = std::fs::read_to_string(root().join("man/memcheck-run.1")).unwrap();
    assert!(
        run.contains("\\fB\\-\\-\\fR <\\fIPROG [ARGS]...\\fR>"),
        "{run}"
    );
}

#[test]
fn help_shows_the_double_dash_and_no_repository_paths() {
    let mut cmd = memcheck::cli::Cli::command();
    let run = cmd
        .find_subcommand_mut("run")
        .unwrap()
        .render_usage()
        .to_string();
    assert!(
        run.contains("memcheck run [OPTIONS] -- PROG [ARGS]..."),
        "{run}"
    );
    for sub in cmd.get_subcommands_mut() {
        let help = sub.render_long_help().to_string();
        assert!(!help.contains("docs/"), "{}: {help}", sub.get_name());
    }
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
