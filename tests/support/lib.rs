//! Helpers for the end-to-end tests: find the workspace's binaries, name shared-memory segments
//! uniquely, and make sure nothing a test started outlives it.
//!
//! The binaries (`stackctl`, `camsim`) are built by `cargo test --workspace` because their
//! packages have integration tests of their own; these tests run them from the target directory.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod browser;
pub mod media;
pub mod plugins;
pub mod up;
pub mod vision;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Path of a workspace binary in the target directory these tests were built into (or, for a
/// program such as `loadbench`, the directory it runs from).
///
/// # Panics
/// When it is missing, with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>; target/<profile>/<program> too.
    let dir = exe
        .parent()
        .and_then(|dir| {
            if dir.file_name().is_some_and(|n| n == "deps") {
                dir.parent()
            } else {
                Some(dir)
            }
        })
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` (or `cargo build --workspace` first)",
        path.display()
    );
    path
}

/// A segment name no other test or run uses.
pub fn unique_shm(tag: &str) -> ShmName {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    ShmName(format!("/stackctl-test-{tag}-{}-{n}", std::process::id()))
}

/// A segment name that unlinks the segment when dropped.
#[derive(Debug)]
pub struct ShmName(String);

impl ShmName {
    /// The name, with its leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when a segment of this name exists.
    pub fn exists(&self) -> bool {
        std::path::Path::new("/dev/shm")
            .join(self.0.trim_start_matches('/'))
            .exists()
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(
            std::path::Path::new("/dev/shm").join(self.0.trim_start_matches('/')),
        );
    }
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    what: String,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr captured.
    pub fn spawn(mut cmd: Command) -> Self {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Self {
            child: Some(child),
            what,
        }
    }

    /// Waits for it to exit and returns its output.
    pub fn wait(mut self) -> Output {
        let child = self.child.take().expect("not waited yet");
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what))
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Asserts a process exited with status 0, showing its stderr if not.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
