//! What ships to the board: `deploy/stackctl.service` is a unit systemd accepts, consistent
//! with what stackctl does (sd_notify, its ordered stop's duration, its command line), and
//! `config/stackctl.toml` passes `stackctl check` once the checkout it names exists.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stackctl_tests::bin;

/// The workspace's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

fn unit_text() -> String {
    std::fs::read_to_string(root().join("deploy/stackctl.service")).expect("read the unit")
}

/// The unit's settings in `section`, in order: `(key, value)`, comments and blank lines left
/// out (the unit has no continuation lines).
fn settings(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        if current == section {
            let (key, value) = line.split_once('=').expect("key=value");
            out.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

/// The one value of `key` in `[Service]`.
fn service_setting(key: &str) -> Option<String> {
    let all: Vec<_> = settings(&unit_text(), "Service")
        .into_iter()
        .filter(|(k, _)| k == key)
        .collect();
    assert!(all.len() <= 1, "{key} is set {} times", all.len());
    all.into_iter().next().map(|(_, v)| v)
}

/// A duration as systemd and stackctl write them: `90s`, `5min`, `2m`, `1m 30s`, `500ms`.
fn duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    for part in text.trim_matches('"').split_whitespace() {
        let split = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        let (number, unit) = part.split_at(split);
        let n: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("duration {text:?}"));
        total += match unit {
            "ms" => Duration::from_millis(n),
            "" | "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(60 * n),
            "h" => Duration::from_secs(3600 * n),
            other => panic!("unit {other:?} in {text:?}"),
        };
    }
    total
}

/// `stackctl config --explain` of the shipped configuration: `(key, value)`.
fn shipped_config() -> Vec<(String, String)> {
    let out = Command::new(bin("stackctl"))
        .args(["config", "--explain", "--config"])
        .arg(root().join("config/stackctl.toml"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run stackctl config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(" = ")?;
            let value = rest.rsplit_once("  # ").map_or(rest, |(v, _)| v);
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// True (after printing a loud `SKIPPED`) when `program` is not installed.
fn missing(program: &str, package: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        eprintln!("\n***\n*** SKIPPED: {program} not found (apt-get install {package})\n***\n");
    }
    !found
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if missing("systemd-analyze", "systemd") {
        return;
    }
    // `verify` insists that ExecStart's program exists: a copy that runs the stackctl just
    // built, with the same name (verify derives the unit's type from it).
    let dir = tempfile::tempdir().expect("tempdir");
    let text = unit_text();
    assert!(text.contains("\nExecStart=/usr/bin/stackctl "));
    let copy = dir.path().join("stackctl.service");
    let exec = format!("\nExecStart={} ", bin("stackctl").display());
    std::fs::write(&copy, text.replace("\nExecStart=/usr/bin/stackctl ", &exec)).expect("write");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("run systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    // An unknown key or a value systemd cannot parse is only a warning ("..., ignoring"),
    // with exit status 0: any output at all is a failure.
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify said:\n{said}"
    );
}

#[test]
fn the_unit_matches_what_stackctl_does() {
    // sd_notify from the main process only: READY=1, WATCHDOG=1, STOPPING=1 (notify.rs).
    assert_eq!(service_setting("Type").as_deref(), Some("notify"));
    assert_eq!(service_setting("NotifyAccess").as_deref(), Some("main"));
    let watchdog = duration(&service_setting("WatchdogSec").expect("WatchdogSec"));
    assert!(watchdog >= Duration::from_secs(10), "{watchdog:?}");
    // stackctl stops its services itself; systemd only SIGKILLs what is left.
    assert_eq!(service_setting("KillMode").as_deref(), Some("mixed"));
    assert_eq!(service_setting("Restart").as_deref(), Some("on-failure"));
    // Exit 2 is a configuration error (up::CONFIG_ERROR): restarting cannot fix it.
    assert_eq!(
        service_setting("RestartPreventExitStatus").as_deref(),
        Some("2")
    );
    // stackctl has no reload.
    assert_eq!(service_setting("ExecReload"), None);
    // No device allow-list, no private /tmp or /dev/shm: the camera and the models need them.
    for key in [
        "PrivateDevices",
        "DeviceAllow",
        "ProtectClock",
        "PrivateTmp",
        "PrivateIPC",
    ] {
        assert_eq!(
            service_setting(key),
            None,
            "{key} would break the camera stack"
        );
    }

    // ExecStart's command line is one stackctl accepts, and reads the file install.sh writes.
    let exec = service_setting("ExecStart").expect("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[..2], ["/usr/bin/stackctl", "up"]);
    assert_eq!(words[2..], ["--config", "/etc/stackctl/stackctl.toml"]);
    let out = Command::new(bin("stackctl"))
        .args(&words[1..])
        .arg("--help")
        .output()
        .expect("run stackctl");
    assert!(
        out.status.success(),
        "stackctl rejects ExecStart's arguments:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn timeout_stop_covers_the_ordered_stop_of_the_shipped_configuration() {
    // stackctl's worst case, per service: its stop_timeout, then 5 s for the SIGKILLed group's
    // leader to be reaped and 1 s for stragglers (process/child.rs KILL_WAIT, STRAGGLER_WAIT);
    // the services one after the other. Then each plugin: 5 s for one stuck in on_frame
    // (plugins/instance.rs STOP_WAIT).
    let config = shipped_config();
    let stops: Vec<Duration> = config
        .iter()
        .filter(|(k, _)| k.starts_with("services.") && k.ends_with(".stop_timeout"))
        .map(|(_, v)| duration(v))
        .collect();
    let plugins = config
        .iter()
        .filter(|(k, _)| k.starts_with("plugins.") && k.ends_with(".path"))
        .count();
    assert_eq!((stops.len(), plugins), (3, 3), "{config:?}");
    let worst = stops
        .iter()
        .map(|t| *t + Duration::from_secs(6))
        .sum::<Duration>()
        + Duration::from_secs(5) * plugins as u32;
    let timeout = duration(&service_setting("TimeoutStopSec").expect("TimeoutStopSec"));
    assert!(
        timeout >= worst + Duration::from_secs(10),
        "TimeoutStopSec={timeout:?} leaves no margin over the worst ordered stop, {worst:?}"
    );

    // READY=1 waits for every required service's readiness, one after the other at worst.
    let required_ready: Duration = config
        .iter()
        .filter(|(k, _)| k.starts_with("services.") && k.ends_with(".ready.timeout"))
        .filter(|(k, _)| {
            let service = k.trim_end_matches(".ready.timeout");
            config
                .iter()
                .any(|(k2, v)| *k2 == format!("{service}.required") && v == "true")
        })
        .map(|(_, v)| duration(v))
        .sum();
    let start = duration(&service_setting("TimeoutStartSec").expect("TimeoutStartSec"));
    assert!(
        start >= required_ready + Duration::from_secs(60),
        "TimeoutStartSec={start:?} leaves under a minute for the builds after {required_ready:?} of readiness"
    );
}

/// A checkout the shipped configuration can point at: the camera switcher's binary where its
/// `command` says, the directories, and a `uv` that does nothing.
fn fake_checkout(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let checkout = dir.join("checkout");
    std::fs::create_dir_all(checkout.join("src/capture")).unwrap();
    std::fs::create_dir_all(checkout.join("build")).unwrap();
    let exe = |path: &Path| {
        std::fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    exe(&checkout.join("build/camera_switcher_daemon"));
    let uv = dir.join("uv");
    exe(&uv);
    let text = std::fs::read_to_string(root().join("config/stackctl.toml")).unwrap();
    assert!(text.contains("/opt/rdk-x5_smart-pet-camera"));
    let config = dir.join("stackctl.toml");
    std::fs::write(
        &config,
        text.replace(
            "/opt/rdk-x5_smart-pet-camera",
            &checkout.display().to_string(),
        ),
    )
    .unwrap();
    (config, uv)
}

fn check(config: &Path, uv: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(bin("stackctl"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(extra)
        .env("UV_BIN", uv)
        .env_remove("RUST_LOG")
        .output()
        .expect("run stackctl check")
}

#[test]
fn stackctl_check_passes_the_shipped_configuration_on_a_checkout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, uv) = fake_checkout(dir.path());

    // The sink plugins may not be built or installed here: `check` loads every enabled plugin
    // and, as they are not `required`, passes with a warning naming each missing file and
    // where it looked.
    let out = check(&config, &uv, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for line in err.lines() {
        assert!(
            line.starts_with("warning: plugin ") && line.contains("/usr/lib/stackctl/plugins"),
            "{line}"
        );
    }
    // Each sink is either found (built beside stackctl) or named in a warning.
    for file in [
        "libsink_webrtc.so",
        "libsink_recorder.so",
        "libsink_rtsp.so",
    ] {
        let beside = bin("stackctl").with_file_name(file).exists();
        let warned = err
            .lines()
            .any(|l| l.starts_with("warning: plugin ") && l.contains(file));
        assert!(
            beside || warned,
            "{file}: neither found nor warned of:\n{err}"
        );
    }
    // Nothing else is wrong with it.
    assert!(!err.contains("services."), "{err}");

    let out = check(
        &config,
        &uv,
        &[
            "--set",
            "plugins.streaming.enabled=false",
            "--set",
            "plugins.recording.enabled=false",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("3 of 3 services enabled"), "{said}");

    // With the checkout missing, `check` names each service's directory.
    std::fs::remove_dir_all(dir.path().join("checkout")).unwrap();
    let out = check(
        &config,
        &uv,
        &["--no-streaming", "--set", "plugins.recording.enabled=false"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for service in [
        "camera_switcher_daemon",
        "yolo_detector_daemon",
        "web_monitor",
    ] {
        assert!(err.contains(&format!("services.{service}.cwd")), "{err}");
    }
}
