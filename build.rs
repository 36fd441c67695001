//! Builds the preload library (`shim/`) with its own cargo invocation and target directory, so the
//! `memcheck` binary can embed it: `cargo install --path .` alone yields a working installation.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let shim_dir = manifest.join("shim");
    println!("cargo:rerun-if-changed=shim/src");
    println!("cargo:rerun-if-changed=shim/wire/src");
    println!("cargo:rerun-if-changed=shim/Cargo.toml");
    println!("cargo:rerun-if-changed=shim/wire/Cargo.toml");

    let target_dir = out.join("shim-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(shim_dir.join("Cargo.toml"))
        .arg("--profile")
        .arg("shim")
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("-p")
        .arg("memcheck-shim");
    if std::env::var_os("CARGO_NET_OFFLINE").is_some() {
        cmd.arg("--offline");
    }
    // The outer build's settings (its target directory, instrumentation flags of coverage tools,
    // the build script's own variables) must not leak into the library's build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let keep = k == "CARGO_HOME" || k == "CARGO_MAKEFLAGS" || k == "CARGO_NET_OFFLINE";
        if (k.starts_with("CARGO_") && !keep)
            || k == "RUSTFLAGS"
            || k == "RUSTC_WRAPPER"
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k == "DEBUG"
            || k == "OPT_LEVEL"
            || k == "PROFILE"
            || k == "TARGET"
            || k == "HOST"
        {
            cmd.env_remove(&k);
        }
    }
    let status = cmd
        .status()
        .expect("cannot run cargo to build the memcheck shim");
    assert!(status.success(), "building the memcheck shim failed");
    let built = target_dir.join("shim").join("libmemcheck_shim.so");
    let dest = out.join("libmemcheck_shim.so");
    std::fs::copy(&built, &dest).expect("cannot copy the built shim");
    let bytes = std::fs::read(&dest).unwrap();
    // FNV-1a of the library: names the extracted copy so two builds never share a file.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in &bytes {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    println!("cargo:rustc-env=MEMCHECK_SHIM_HASH={h:016x}");
}
