//! Flame graphs (SVG, drawn by `inferno`): bytes by allocation stack, root at the bottom, for
//! `--flamegraph` of `memcheck run` (leaked bytes at exit), `memcheck leaks` (leaked bytes now)
//! and `memcheck stats --sites` (live bytes). A frame is named `function (file:line)`, else
//! `object+address`.
use crate::symbolize::Frame;
use std::path::Path;

/// A frame's name in a flame graph: its function and source line, else its object and address.
pub fn frame_name(f: &Frame) -> String {
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or(p.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let name = match (&f.function, &f.file, f.line) {
        (Some(func), Some(file), Some(line)) => format!("{func} ({}:{line})", base(file)),
        (Some(func), _, _) => func.clone(),
        _ => match &f.object {
            Some(o) => format!("{}+{:#x}", base(o), f.address),
            None => format!("{:#x}", f.address),
        },
    };
    // `;` separates frames in the folded format.
    name.replace(';', ",")
}

/// The SVG of `stacks` (innermost frame first, each with its bytes) under `title`.
pub fn svg<'a>(
    title: &str,
    stacks: impl Iterator<Item = (&'a [Frame], u64)>,
) -> anyhow::Result<String> {
    let mut lines: Vec<String> = stacks
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(frames, bytes)| {
            let names: Vec<String> = frames.iter().rev().map(frame_name).collect();
            if names.is_empty() {
                format!("(no stack) {bytes}")
            } else {
                format!("{} {bytes}", names.join(";"))
            }
        })
        .collect();
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.to_string();
    opts.count_name = "bytes".into();
    opts.name_type = "Allocated by:".into();
    if lines.is_empty() {
        // inferno draws nothing for no samples: one zero-width frame says so.
        lines.push("(nothing) 1".into());
        opts.subtitle = Some("no bytes to draw".into());
    }
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            address: 0x1234,
            function: function.map(str::to_string),
            file: file.map(str::to_string),
            line,
            object: Some("/usr/lib/libx.so".into()),
            inlined: false,
        }
    }

    #[test]
    fn frames_are_named_by_function_and_line_and_stacks_drawn_root_first() {
        assert_eq!(
            frame_name(&frame(Some("main"), Some("/src/a.c"), Some(7))),
            "main (a.c:7)"
        );
        assert_eq!(frame_name(&frame(Some("f;g"), None, None)), "f,g");
        assert_eq!(frame_name(&frame(None, None, None)), "libx.so+0x1234");
        let stack = [
            frame(Some("leaf"), Some("a.c"), Some(1)),
            frame(Some("main"), Some("a.c"), Some(9)),
        ];
        let drawn = svg("t", [(&stack[..], 64u64)].into_iter()).unwrap();
        assert!(drawn.contains("<svg"), "{drawn}");
        assert!(
            drawn.contains("leaf (a.c:1) (64 bytes, 100.00%)"),
            "{drawn}"
        );
        assert!(svg("t", std::iter::empty())
            .unwrap()
            .contains("no bytes to draw"));
    }
}
