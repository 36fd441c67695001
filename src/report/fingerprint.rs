//! A finding's fingerprint: the same bug keeps the same fingerprint across runs, ASLR, rebuilds
//! and edits that shift lines, so baselines, `memcheck report --diff` and SARIF's
//! `partialFingerprints` can match findings of different runs.
//!
//! It is the 128-bit FNV-1a hash, as 32 lowercase hex digits, of a canonical text:
//!
//! ```text
//! memcheck/v1
//! error heap-buffer-overflow        (or: leak definite)
//! overflow                          (one line per frame kept, innermost first)
//! main
//! ```
//!
//! The frames are those of the access or call stack (errors) or of the allocation stack (leaks).
//! A frame contributes its symbolized function name only: never its address, file or line.
//! Left out: frames of memcheck's own library (an object named `libmemcheck_shim*`), libc's
//! start-up (`_start`, `__libc_start_main`, `__libc_start_main_impl`, `__libc_start_call_main`),
//! and frames without a function name and without an object. A frame without a function name
//! but with an object contributes `in NAME`, the object's file name without its directory
//! (`in libfoo.so.1`), so two unnamed callers in different libraries stay apart.
//!
//! Two findings of the same kind through the same functions (say, two overflows on different
//! lines of one function) share a fingerprint; the stack depth (`--num-callers`) is part of it.
use crate::symbolize::Frame;

/// The prefix of the canonical text and the key of SARIF's `partialFingerprints`.
pub const SCHEME: &str = "memcheck/v1";

/// Start-up functions of libc, outside every program's own code.
const STARTUP: [&str; 4] = [
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
];

/// The file name of an object path (`/usr/lib/x86_64-linux-gnu/libc.so.6` -> `libc.so.6`).
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The frame belongs to memcheck's preload library.
pub fn is_shim(f: &Frame) -> bool {
    f.object
        .as_deref()
        .is_some_and(|o| file_name(o).starts_with("libmemcheck_shim"))
}

/// The canonical line of a frame, or `None` when the frame is left out.
fn frame_key(f: &Frame) -> Option<String> {
    if is_shim(f) {
        return None;
    }
    match (&f.function, &f.object) {
        (Some(func), _) if STARTUP.contains(&func.as_str()) => None,
        (Some(func), _) => Some(func.clone()),
        (None, Some(o)) => Some(format!("in {}", file_name(o))),
        (None, None) => None,
    }
}

/// The canonical text hashed: `class` is `error` or `leak`, `kind` the JSON kind name.
pub fn canonical(class: &str, kind: &str, stack: &[Frame]) -> String {
    let mut s = format!("{SCHEME}\n{class} {kind}\n");
    for line in stack.iter().filter_map(frame_key) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

/// The frame lines of the canonical text, innermost first: the functions a baseline lists for a
/// finding (`in OBJECT` for an unnamed frame).
pub fn functions(stack: &[Frame]) -> Vec<String> {
    stack.iter().filter_map(frame_key).collect()
}

/// The fingerprint of a finding given by `class` (`error` or `leak`), `kind` and the lines
/// [`functions`] gives for its stack: the same as [`of_error`] or [`of_leak`] of that stack.
pub fn of_functions(class: &str, kind: &str, functions: &[String]) -> String {
    let mut s = format!("{SCHEME}\n{class} {kind}\n");
    for line in functions {
        s.push_str(line);
        s.push('\n');
    }
    hash(&s)
}

/// 128-bit FNV-1a.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ b as u128).wrapping_mul(PRIME))
}

fn hash(text: &str) -> String {
    format!("{:032x}", fnv1a_128(text.as_bytes()))
}

/// The fingerprint of an error of `kind` whose access or call stack is `stack`.
pub fn of_error(kind: &str, stack: &[Frame]) -> String {
    hash(&canonical("error", kind, stack))
}

/// The fingerprint of a leak of `kind` (`definite`, ...) allocated at `stack`.
pub fn of_leak(kind: &str, stack: &[Frame]) -> String {
    hash(&canonical("leak", kind, stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(addr: u64, func: Option<&str>, file: &str, line: u32, obj: &str) -> Frame {
        Frame {
            address: addr,
            function: func.map(str::to_string),
            file: Some(file.to_string()),
            line: Some(line),
            object: Some(obj.to_string()),
            inlined: false,
        }
    }

    fn stack(base: u64, line: u32, dir: &str) -> Vec<Frame> {
        vec![
            frame(
                0x7f00_0000_1000 + base,
                Some("malloc"),
                "x",
                1,
                "/tmp/c/libmemcheck_shim-abc.so",
            ),
            frame(
                0x5555_0000_1000 + base,
                Some("overflow"),
                &format!("{dir}/bugs.c"),
                line,
                &format!("{dir}/bugs"),
            ),
            frame(
                0x5555_0000_2000 + base,
                None,
                "y",
                3,
                "/usr/lib/libplugin.so.1",
            ),
            frame(
                0x5555_0000_3000 + base,
                Some("main"),
                &format!("{dir}/bugs.c"),
                line + 40,
                &format!("{dir}/bugs"),
            ),
            frame(
                0x7f00_0000_4000 + base,
                Some("__libc_start_call_main"),
                "z",
                0,
                "/lib/libc.so.6",
            ),
            frame(
                0x7f00_0000_5000 + base,
                Some("__libc_start_main"),
                "z",
                0,
                "/lib/libc.so.6",
            ),
            frame(
                0x5555_0000_0100 + base,
                Some("_start"),
                "z",
                0,
                &format!("{dir}/bugs"),
            ),
        ]
    }

    #[test]
    fn addresses_lines_files_and_startup_do_not_count() {
        let a = of_error("heap-buffer-overflow", &stack(0, 17, "/home/a/src"));
        let b = of_error(
            "heap-buffer-overflow",
            &stack(0x3a_b000, 29, "/build/other"),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // Fewer start-up frames (another libc) and no shim frame: still the same.
        let mut c = stack(0x10, 3, "/x");
        c.retain(|f| !STARTUP.contains(&f.function.as_deref().unwrap_or("")) && !is_shim(f));
        assert_eq!(of_error("heap-buffer-overflow", &c), a);
        assert_eq!(
            canonical("error", "heap-buffer-overflow", &c),
            "memcheck/v1\nerror heap-buffer-overflow\noverflow\nin libplugin.so.1\nmain\n"
        );
    }

    #[test]
    fn another_function_or_kind_is_another_fingerprint() {
        let a = of_error("heap-buffer-overflow", &stack(0, 17, "/s"));
        let mut other = stack(0, 17, "/s");
        other[1].function = Some("underflow".into());
        assert_ne!(of_error("heap-buffer-overflow", &other), a);
        assert_ne!(of_error("use-after-free", &stack(0, 17, "/s")), a);
        assert_ne!(of_leak("definite", &stack(0, 17, "/s")), a);
        assert_ne!(
            of_leak("definite", &stack(0, 17, "/s")),
            of_leak("indirect", &stack(0, 17, "/s"))
        );
        // An unnamed frame in another library is another caller.
        let mut lib = stack(0, 17, "/s");
        lib[2].object = Some("/usr/lib/libother.so.2".into());
        assert_ne!(of_error("heap-buffer-overflow", &lib), a);
    }

    #[test]
    fn functions_give_the_same_fingerprint() {
        let s = stack(0, 17, "/s");
        let f = functions(&s);
        assert_eq!(f, ["overflow", "in libplugin.so.1", "main"]);
        assert_eq!(
            of_functions("leak", "definite", &f),
            of_leak("definite", &s)
        );
        assert_eq!(
            of_functions("error", "double-free", &f),
            of_error("double-free", &s)
        );
    }

    #[test]
    fn fnv_matches_the_reference_values() {
        // FNV-1a 128 of "" is the offset basis; of "a" the published test vector.
        assert_eq!(
            format!("{:032x}", fnv1a_128(b"")),
            "6c62272e07bb014262b821756295c58d"
        );
        assert_eq!(
            format!("{:032x}", fnv1a_128(b"a")),
            "d228cb696f1a8caf78912b704e4a8964"
        );
    }
}
