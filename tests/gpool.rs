//! Issue 14's guard pool: slots recycled after their quarantine period. Blocks in recycled
//! slots keep every guard-page guarantee, calloc's are zero, and a stale pointer into a reused
//! slot is diagnosed against the right block (or, while the slot's new block is live, not at
//! all: the documented limit).
mod common;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

fn gpool() -> PathBuf {
    compile("gpool.c", &[])
}

/// A small quarantine, so the program's flush evicts the old block and its slot is recycled.
fn run(mode: &str) -> Run {
    run_under(
        &["--guard", "--leak-check=no", "--quarantine-size=1048576"],
        &gpool(),
        &[mode],
    )
}

fn only_error<'a>(r: &'a Run, kind: &str) -> &'a Value {
    let errs = r.errors();
    assert_eq!(errs.len(), 1, "expected one error, a {kind}\n{}", r.show());
    assert_eq!(errs[0]["kind"], kind, "{}", r.show());
    errs[0]
}

/// The error names the 3,000-byte block with its own allocation and free stacks.
fn names_the_old_block(r: &Run, e: &Value) {
    assert_eq!(e["block"]["size"], 3000, "{}", r.show());
    assert!(
        has_frame(
            &e["alloc_stack"],
            "make_old",
            "gpool.c",
            Some(line_of("gpool.c", "OLD-ALLOC"))
        ),
        "{}",
        r.show()
    );
    assert!(
        has_frame(
            &e["free_stack"],
            "drop_old",
            "gpool.c",
            Some(line_of("gpool.c", "OLD-FREE"))
        ),
        "{}",
        r.show()
    );
}

#[test]
fn two_hundred_thousand_recycled_blocks_keep_their_bytes_and_an_overflow_is_exact() {
    for flags in [&["--guard"][..], &["--guard=both"]] {
        let mut f = vec!["--leak-check=no"];
        f.extend_from_slice(flags);
        let r = run_under(&f, &gpool(), &["churn"]);
        // The program checks every block's bytes before its free and calloc's zeroes; slots
        // were reused (their pages seen again).
        assert_eq!(r.stdout(), "reused yes\n", "{}", r.show());
        let e = only_error(&r, "heap-buffer-overflow");
        assert_eq!(e["access"], "read", "{}", r.show());
        assert_eq!(e["block"]["size"], 10, "{}", r.show());
        assert_eq!(e["block"]["offset"], 10, "{}", r.show());
        assert_eq!(
            e["stack"][0]["line"],
            line_of("gpool.c", "CHURN-OVERREAD"),
            "{}",
            r.show()
        );
    }
}

#[test]
fn a_stale_pointer_into_a_reused_and_freed_slot_is_its_own_blocks_use_after_free() {
    let r = run("prev-freed");
    assert_eq!(r.stdout(), "reused\nsurvived\n", "{}", r.show());
    let e = only_error(&r, "use-after-free");
    assert_eq!(e["access"], "read", "{}", r.show());
    assert_eq!(
        e["stack"][0]["line"],
        line_of("gpool.c", "STALE-READ"),
        "{}",
        r.show()
    );
    // Not the 16-byte block that lived in the slot after it.
    names_the_old_block(&r, e);
}

#[test]
fn a_second_free_of_a_block_whose_slot_was_reused_is_a_double_free_of_that_block() {
    let r = run("prev-double");
    assert_eq!(r.stdout(), "reused\n", "{}", r.show());
    let e = only_error(&r, "double-free");
    assert_eq!(
        e["stack"][0]["line"],
        line_of("gpool.c", "OLD-DOUBLE"),
        "{}",
        r.show()
    );
    names_the_old_block(&r, e);
}

#[test]
fn a_stale_pointer_into_a_slot_that_holds_a_live_block_is_not_misdiagnosed() {
    // The documented limit (GWP-ASan's too): the read reaches the live 16-byte block's page, so
    // nothing faults and nothing is reported, rather than a wrong block named.
    let r = run("prev-live");
    assert_eq!(r.stdout(), "reused\nundetected\n", "{}", r.show());
    assert_eq!(r.errors().len(), 0, "{}", r.show());
}
