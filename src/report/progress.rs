//! A progress bar on stderr for the work after a run (symbolizing and grouping the findings of
//! every process), shown only where a person watches: stderr is a terminal ([`style::progress`]),
//! never on a pipe, in a file or in CI logs, never with `-q`, and only once the work has taken
//! longer than [`DELAY`], so a short report never flickers. It draws on one line (`\r`) and
//! erases itself when done, before the report is printed.
use crate::style;
use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, Instant};

/// How long the work runs before the bar appears.
pub const DELAY: Duration = Duration::from_millis(500);
/// The least time between two redraws.
const TICK: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

pub struct Progress {
    inner: Option<RefCell<Bar>>,
}

struct Bar {
    out: Box<dyn Write>,
    what: &'static str,
    total: u64,
    done: u64,
    start: Instant,
    delay: Duration,
    last: Option<Instant>,
    /// Characters of the last line drawn (to erase it).
    drawn: usize,
}

impl Progress {
    /// A bar for `total` steps of `what` on stderr, when stderr is a terminal and not `quiet`;
    /// otherwise one that draws nothing.
    pub fn stderr(what: &'static str, total: u64, quiet: bool) -> Progress {
        if quiet || !style::progress() {
            return Progress { inner: None };
        }
        Progress::to(Box::new(std::io::stderr()), what, total, DELAY)
    }

    /// A bar drawn into `out` once `delay` has passed.
    pub fn to(out: Box<dyn Write>, what: &'static str, total: u64, delay: Duration) -> Progress {
        Progress {
            inner: Some(RefCell::new(Bar {
                out,
                what,
                total,
                done: 0,
                start: Instant::now(),
                delay,
                last: None,
                drawn: 0,
            })),
        }
    }

    /// A bar that draws nothing.
    pub fn none() -> Progress {
        Progress { inner: None }
    }

    /// `n` more steps done.
    pub fn add(&self, n: u64) {
        let Some(bar) = &self.inner else { return };
        let mut b = bar.borrow_mut();
        b.done = (b.done + n).min(b.total);
        let now = Instant::now();
        if now.duration_since(b.start) < b.delay || b.last.is_some_and(|t| now - t < TICK) {
            return;
        }
        b.last = Some(now);
        b.draw();
    }

    /// Erases the bar, if it was drawn.
    pub fn finish(&self) {
        let Some(bar) = &self.inner else { return };
        let mut b = bar.borrow_mut();
        if b.drawn > 0 {
            let blank = format!("\r{}\r", " ".repeat(b.drawn));
            let _ = b.out.write_all(blank.as_bytes());
            let _ = b.out.flush();
            b.drawn = 0;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Bar {
    fn draw(&mut self) {
        let filled = if self.total == 0 {
            WIDTH
        } else {
            (self.done as u128 * WIDTH as u128 / self.total as u128) as usize
        };
        let line = format!(
            "memcheck: {} [{}{}] {}/{}",
            self.what,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.done,
            self.total
        );
        let pad = self.drawn.saturating_sub(line.len());
        let _ = write!(self.out, "\r{line}{}", " ".repeat(pad));
        let _ = self.out.flush();
        self.drawn = line.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn draws_on_one_line_and_erases_itself() {
        let out = Shared::default();
        let p = Progress::to(Box::new(out.clone()), "symbolizing", 10, Duration::ZERO);
        p.add(5);
        let shown = String::from_utf8(out.0.borrow().clone()).unwrap();
        assert_eq!(
            shown,
            format!(
                "\rmemcheck: symbolizing [{}{}] 5/10",
                "#".repeat(15),
                "-".repeat(15)
            )
        );
        p.finish();
        let all = String::from_utf8(out.0.borrow().clone()).unwrap();
        let erase = format!("\r{}\r", " ".repeat(shown.len() - 1));
        assert!(all.ends_with(&erase), "{all:?}");
        assert!(!all.contains('\n'));
    }

    #[test]
    fn nothing_before_the_delay_or_when_off() {
        let out = Shared::default();
        let p = Progress::to(Box::new(out.clone()), "x", 10, Duration::from_secs(3600));
        p.add(10);
        p.finish();
        assert!(out.0.borrow().is_empty());
        let off = Progress::none();
        off.add(1);
        off.finish();
    }
}
