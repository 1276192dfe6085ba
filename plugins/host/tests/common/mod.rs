//! Building a small C sink from source for the host's tests and benchmark: a plugin as a
//! foreign compiler builds it, loaded through the real loader.
#![allow(clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Compiles `source` (C99, including `stackctl_sink.h`) into `lib{name}.so` in a directory of
/// its own and returns the library; `None`, after printing `SKIPPED: ...`, without a C compiler.
///
/// # Panics
/// When the compiler refuses the source.
pub fn c_sink(name: &str, source: &str) -> Option<PathBuf> {
    let cc = std::env::var("CC")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cc".to_owned());
    let runs = Command::new(&cc)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        eprintln!("SKIPPED: no C compiler (`cc` or $CC) to build the test sink {name}");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("stackctl-host-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write the sink");
    let out = dir.join(format!("lib{name}.so"));
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../abi/include");
    let result = Command::new(&cc)
        .args([
            "-std=c99", "-Wall", "-O2", "-shared", "-fPIC", "-I", include, "-o",
        ])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run the C compiler");
    assert!(
        result.status.success(),
        "the sink {name} did not compile:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    Some(out)
}
