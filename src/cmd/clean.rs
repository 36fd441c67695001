//! `memcheck clean`: removes the user's stale run directories from the temporary directory and
//! says what it removed (the rules are in `rundir.rs`).
use crate::cli::CleanArgs;
use crate::rundir::{self, Found};
use anyhow::Result;

pub fn run(_a: &CleanArgs) -> Result<i32> {
    let tmp = std::env::temp_dir();
    let mut removed = 0;
    let mut failed = 0;
    for f in rundir::scan(&tmp) {
        match f {
            Found::Stale { path, pid } => match rundir::remove(&path) {
                Ok(()) => {
                    println!(
                        "removed {} (its memcheck, pid {pid}, is gone)",
                        path.display()
                    );
                    removed += 1;
                }
                Err(e) => {
                    eprintln!("memcheck: cannot remove {}: {e}", path.display());
                    failed += 1;
                }
            },
            Found::Kept { path, why } => println!(
                "kept {}: {why}; remove it by hand if no run uses it",
                path.display()
            ),
        }
    }
    if removed == 0 && failed == 0 {
        println!("no stale run directories in {}", tmp.display());
    }
    // A directory that could not be removed is the command's "no" answer, as residency's.
    Ok(if failed > 0 {
        crate::exit::EXIT_FAILURE
    } else {
        0
    })
}
