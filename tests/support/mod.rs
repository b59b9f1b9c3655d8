//! Helpers shared by callsbench's integration tests that run the binaries: the repository root and
//! the `callsref` binary built next to the test's own target directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The callsbench repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The callsref binary next to this test's target directory (where `callsbench run` also looks
/// for it), built if needed.
pub fn callsref() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "callsref", "--bin", "callsref"])
        .current_dir(root())
        .status()
        .expect("cargo build callsref");
    assert!(status.success(), "building callsref failed");
    // target/debug/deps/<this test> → target/debug/callsref
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(Path::parent)
        .unwrap()
        .join("callsref")
}
