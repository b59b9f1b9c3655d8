//! `callsbench media inspect`: the binary prints a file's manifest fields as TOML, and fails with a
//! clear message and exit code 2 on a file it cannot read.

use std::process::Command;

use callsbench::media::{FileEntry, Manifest, builtin_dir};

fn inspect(path: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callsbench"))
        .args(["media", "inspect"])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn inspect_prints_the_manifest_fields() {
    let manifest = Manifest::load(&builtin_dir().join("MANIFEST.toml")).unwrap();
    for name in ["speech-97.ogg", "screen_l.ivf"] {
        let out = inspect(&builtin_dir().join(name));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        #[derive(serde::Deserialize)]
        struct Printed {
            file: Vec<FileEntry>,
        }
        let printed: Printed = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let got = &printed.file[0];
        let want = manifest.file.iter().find(|e| e.name == name).unwrap();
        assert_eq!(got.sha256, want.sha256, "{name}");
        assert_eq!(got.resolution, want.resolution, "{name}");
        assert_eq!(got.frames, want.frames, "{name}");
        assert!(
            (got.mean_kbps - want.mean_kbps).abs() <= want.mean_kbps * 0.02,
            "{name}"
        );
        assert!(got.command.is_none(), "a measurement has no command");
    }
}

#[test]
fn inspect_refuses_what_it_cannot_read() {
    let out = inspect(&builtin_dir().join("MANIFEST.toml"));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not an Ogg or IVF file"), "{err}");
    let out = inspect(std::path::Path::new("/nonexistent/sample.ivf"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/sample.ivf"));
}
