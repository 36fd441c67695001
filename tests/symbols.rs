//! Symbolization: Rust names (legacy and v0 mangling) demangled, debug information found in a
//! separate file through `.gnu_debuglink` and through `/usr/lib/debug/.build-id`.
mod common;
use common::*;
use std::process::Command;

fn rust_program(dir: &std::path::Path, mangling: &str) -> std::path::PathBuf {
    let src = dir.join("leaky.rs");
    std::fs::write(
        &src,
        "#[inline(never)]\nfn make_leak(n: usize) {\n    let v = vec![7u8; n];\n    std::mem::forget(v);\n}\nfn main() {\n    make_leak(100);\n    println!(\"done\");\n}\n",
    )
    .unwrap();
    let bin = dir.join(format!("leaky_{mangling}"));
    let mut c = Command::new("rustc");
    c.args(["-g", "-C", "opt-level=0"]);
    // Legacy is rustc's default (and naming it needs -Z unstable-options).
    if mangling != "legacy" {
        c.arg("-C")
            .arg(format!("symbol-mangling-version={mangling}"));
    }
    let o = c.arg("-o").arg(&bin).arg(&src).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    bin
}

#[test]
fn rust_names_are_demangled_in_both_manglings() {
    let dir = tempfile::tempdir().unwrap();
    for mangling in ["legacy", "v0"] {
        let bin = rust_program(dir.path(), mangling);
        let r = run_under(&[], &bin, &[]);
        assert_eq!(r.stdout(), "done\n", "{}", r.show());
        let d = r.leaks("definite");
        assert!(
            d.iter().any(|l| l["bytes"] == 100
                && has_frame(&l["stack"], "leaky::make_leak", "leaky.rs", Some(3))),
            "{mangling}\n{}",
            r.show()
        );
    }
}

#[test]
fn a_stripped_program_is_symbolized_from_its_debuglink_file() {
    let prog = compile("leaks.c", &[]);
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("leaks");
    let debug = dir.path().join("leaks.debug");
    let run = |args: &[&std::ffi::OsStr]| {
        let o = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(&[
        "objcopy".as_ref(),
        "--only-keep-debug".as_ref(),
        prog.as_os_str(),
        debug.as_os_str(),
    ]);
    run(&[
        "objcopy".as_ref(),
        "--strip-debug".as_ref(),
        prog.as_os_str(),
        stripped.as_os_str(),
    ]);
    let link = format!("--add-gnu-debuglink={}", debug.display());
    run(&["objcopy".as_ref(), link.as_ref(), stripped.as_os_str()]);
    // The stripped binary alone has no line information.
    let r = run_under(&[], &stripped, &["21"]);
    let line = line_of("leaks.c", "LEAK-HERE");
    assert!(
        r.leaks("definite").iter().any(
            |l| l["bytes"] == 21 && has_frame(&l["stack"], "leak_bytes", "leaks.c", Some(line))
        ),
        "{}",
        r.show()
    );
    // Without the debug file only the symbol table is left: the function, no line.
    std::fs::remove_file(&debug).unwrap();
    let r = run_under(&[], &stripped, &["21"]);
    let l = r
        .leaks("definite")
        .into_iter()
        .find(|l| l["bytes"] == 21)
        .unwrap()
        .clone();
    let f = l["stack"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "leak_bytes")
        .unwrap_or_else(|| panic!("{}", r.show()))
        .clone();
    assert!(f["line"].is_null(), "{}", r.show());
}

#[test]
fn libc_frames_get_lines_from_the_build_id_debug_file() {
    // libc6-dbg installs /usr/lib/debug/.build-id/xx/yyyy.debug for libc.so.6 (CI installs it).
    assert!(
        std::path::Path::new("/usr/lib/debug/.build-id").is_dir(),
        "libc6-dbg is needed for this test (apt-get install libc6-dbg)"
    );
    // A block allocated inside libc (strdup): its first frame is libc's, with a line.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("dup.c");
    std::fs::write(
        &src,
        "#include <string.h>\nchar *volatile p;\nint main(void) { p = strdup(\"leak\"); p = 0; return 0; }\n",
    )
    .unwrap();
    let bin = dir.path().join("dup");
    assert!(Command::new("gcc")
        .args(["-g", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let r = run_under(&[], &bin, &[]);
    let l = r
        .leaks("definite")
        .into_iter()
        .find(|l| l["bytes"] == 5)
        .unwrap_or_else(|| panic!("{}", r.show()))
        .clone();
    let first = &l["stack"][0];
    assert!(
        first["function"].as_str().unwrap().contains("strdup"),
        "{}",
        r.show()
    );
    assert!(
        first["object"].as_str().unwrap().contains("libc.so.6"),
        "{}",
        r.show()
    );
    assert!(
        first["file"].is_string() && first["line"].is_u64(),
        "{first}\n{}",
        r.show()
    );
    assert!(
        has_frame(&l["stack"], "main", "dup.c", Some(3)),
        "{}",
        r.show()
    );
}
