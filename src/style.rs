//! Colour decisions: only on a terminal, never with `NO_COLOR`, and as `--color` says.
use std::io::IsTerminal;

/// When to colour (`--color`; its command-line names are given in `cli.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    /// Only on a terminal, and never with `NO_COLOR` or `TERM=dumb`.
    Auto,
    Always,
    Never,
}

/// Whether output to stderr should be coloured.
pub fn stderr_color(choice: ColorChoice) -> bool {
    decide(choice, std::io::stderr().is_terminal())
}

/// Whether output to stdout should be coloured.
pub fn stdout_color(choice: ColorChoice) -> bool {
    decide(choice, std::io::stdout().is_terminal())
}

/// Whether a progress bar may be drawn on stderr: it is a terminal (not a pipe or a file), the
/// terminal is not `TERM=dumb` and no `CI` variable says the terminal is a CI runner's. Colour
/// settings (`--color`, `NO_COLOR`) do not matter: a bar is not colour.
pub fn progress() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        && std::env::var_os("CI").is_none_or(|v| v.is_empty())
}

fn decide(choice: ColorChoice, tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// Applies a style only when colour is on.
pub struct Painter {
    pub on: bool,
}

impl Painter {
    pub fn red(&self, s: &str) -> String {
        self.paint(s, owo_colors::Style::new().red().bold())
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint(s, owo_colors::Style::new().yellow().bold())
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint(s, owo_colors::Style::new().bold())
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint(s, owo_colors::Style::new().dimmed())
    }
    pub fn green(&self, s: &str) -> String {
        self.paint(s, owo_colors::Style::new().green())
    }
    fn paint(&self, s: &str, style: owo_colors::Style) -> String {
        use owo_colors::OwoColorize;
        if self.on {
            s.style(style).to_string()
        } else {
            s.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_colours_off_a_terminal_or_when_told() {
        assert!(!decide(ColorChoice::Auto, false));
        assert!(!decide(ColorChoice::Never, true));
        assert!(decide(ColorChoice::Always, false));
        assert_eq!(Painter { on: false }.red("x"), "x");
        assert_ne!(Painter { on: true }.red("x"), "x");
    }
}
