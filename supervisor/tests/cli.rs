//! The command line as a user meets it: help that explains, and usage errors with exit code 2.
//! (Also what makes `cargo test --workspace` build the `stackctl` binary the end-to-end tests in
//! `tests/` run.)
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

fn stackctl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stackctl"))
        .args(args)
        .output()
        .expect("run stackctl")
}

#[test]
fn help_lists_every_command() {
    let out = stackctl(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for command in [
        "up", "status", "restart", "stop", "start", "logs", "down", "config", "check", "shm",
    ] {
        assert!(
            help.contains(command),
            "--help does not mention {command}:\n{help}"
        );
    }
}

#[test]
fn up_accepts_every_option_of_the_launch_script() {
    let out = stackctl(&["up", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--skip-build",
        "--no-detector",
        "--no-monitor",
        "--no-streaming",
        "--monitor-host",
        "--monitor-port",
        "--streaming-port",
        "--metrics-port",
        "--pprof-port",
        "--max-clients",
        "--yolo-model",
        "--score-thres",
        "--nms-thres",
        "--set",
        "--config",
    ] {
        assert!(help.contains(flag), "`up --help` does not mention {flag}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["up", "--monitor-port", "not-a-port"],
        &["logs"],
    ] {
        let out = stackctl(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
