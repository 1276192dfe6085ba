//! Signals a running `stackctl up` may receive by accident or habit: SIGHUP (a closed
//! terminal, a logrotate reflex) and SIGUSR1 must not kill the stack (their default action
//! would, without an ordered stop, leaving the camera's segment behind); SIGUSR1 logs the
//! status; SIGQUIT stops in order like SIGTERM and SIGINT. And a configuration that is not a
//! file of sane size (`--config /dev/zero`) is refused with exit code 2.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::plugins::{camera_config, camera_config_with, toml_path};
use std::os::unix::fs::OpenOptionsExt;

use stackctl_tests::up::Stack;
use stackctl_tests::{bin, unique_shm};

const SIGHUP: i32 = 1;
const SIGQUIT: i32 = 3;
const SIGUSR1: i32 = 10;
/// `O_NONBLOCK` (Linux).
const O_NONBLOCK: i32 = 0o4000;

#[test]
fn hup_and_usr1_leave_up_running_and_ready_and_quit_stops_in_order() {
    let shm = unique_shm("signals");
    let stack = Stack::new(&format!(
        "{}ready = {{ shm = \"{}\", timeout = \"20s\" }}\n",
        camera_config(&shm),
        shm.as_str()
    ));
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);
    let camera_pid = stack.status()["services"][0]["pid"]
        .as_u64()
        .expect("a pid");

    up.signal(SIGHUP);
    up.wait_line(&["SIGHUP", "ignored"]);
    up.signal(SIGUSR1);
    let line = up.wait_line(&["SIGUSR1: status", "1/1 services ready"]);
    assert!(line.contains("INFO"), "{line}");
    up.wait_line(&["SIGUSR1: service", "service=camera", "state=\"ready\""]);

    // Still the same stack: ready, the same camera process, its segment in place.
    let status = stack.status();
    assert_eq!(status["phase"], "ready", "{status}");
    assert_eq!(status["services"][0]["pid"].as_u64(), Some(camera_pid));
    assert!(shm.exists(), "the camera's segment is gone");

    up.signal(SIGQUIT);
    let code = up.wait_exit();
    assert_eq!(code, Some(0), "after SIGQUIT:\n{}", up.log());
    let log = up.log();
    assert!(log.contains("SIGQUIT"), "{log}");
    assert!(
        up.position("camera", ": stopped").is_some(),
        "the camera was not stopped in order:\n{log}"
    );
}

#[test]
fn an_endless_configuration_file_is_refused_with_exit_code_2() {
    let stack = Stack::new(&camera_config_with(&unique_shm("zero"), &[]));
    for command in ["config", "check", "up"] {
        let args = [command, "--config", "/dev/zero"];
        let out = std::process::Command::new(bin("stackctl"))
            .args(args)
            .current_dir(stack.path())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run stackctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("/dev/zero") && stderr.contains("larger than 1 MiB"),
            "{args:?}: {stderr}"
        );
    }
}

/// A SIGHUP (and a SIGUSR1) in `up`'s first moments, while a plugin's `start` still holds it
/// before the service driver runs, leaves it running to "stack ready": it ignores them from its
/// very start. The probe plugin's `start_gate` (a FIFO) holds `up` there until the test has sent
/// the signals, so they arrive in that window every time.
#[test]
fn hup_before_the_driver_runs_does_not_kill_up() {
    let Some(probe) = stackctl_tests::plugins::probe_plugin("sink_probe_gate", &[]) else {
        return;
    };
    let shm = unique_shm("early-hup");
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = dir.path().join("gate");
    let output = dir.path().join("probe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&gate)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", gate.display());
    let stack = Stack::new(&format!(
        "{}\n[plugins.probe]\npath = {}\noutput = {}\nstart_gate = {}\n",
        camera_config(&shm),
        toml_path(&probe),
        toml_path(&output),
        toml_path(&gate),
    ));
    let mut up = stack.up(&[], &[]);
    // The plugin's `start` runs: up is past its configuration, before its driver.
    stackctl_tests::plugins::wait_lines(&output, 1, |l| l == "W");
    up.signal(SIGHUP);
    up.signal(SIGUSR1);
    // Open the gate: the plugin's `start` holds the FIFO's other end, unless up died (ENXIO).
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(&gate);
    assert!(opened.is_ok(), "{opened:?}: up died:\n{}", up.log());
    drop(opened);
    up.wait_line(&["stack ready"]);
    assert!(
        stackctl_tests::up::pid_exists(up.pid()),
        "up died:\n{}",
        up.log()
    );
    up.signal(SIGQUIT);
    assert_eq!(up.wait_exit(), Some(0), "{}", up.log());
}
