//! A segment that is not the board's layout, or not there at all, is refused with a clear error.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

use stackctl_core::shm::ShmWriter;
use stackctl_tests::{bin, unique_shm};

#[test]
fn a_segment_of_the_wrong_size_is_refused() {
    let shm = unique_shm("wrongsize");
    let _writer = ShmWriter::create_sized(shm.as_str(), 1 << 20).expect("create segment");
    for args in [
        vec!["shm", "tap", shm.as_str(), "--wait", "5"],
        vec!["shm", "inspect", shm.as_str()],
    ] {
        let out = Command::new(bin("stackctl"))
            .args(&args)
            .output()
            .expect("run stackctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted a 1 MiB segment");
        assert!(
            stderr.contains("1048576 bytes") && stderr.contains("93313448"),
            "{args:?}: the error should give both sizes: {stderr}"
        );
    }
}

#[test]
fn a_missing_segment_is_waited_for_then_reported() {
    let shm = unique_shm("missing");
    let out = Command::new(bin("stackctl"))
        .args(["shm", "tap", shm.as_str(), "--wait", "0.3"])
        .output()
        .expect("run stackctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("did not appear"), "{stderr}");

    let out = Command::new(bin("stackctl"))
        .args(["shm", "inspect", shm.as_str()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}
