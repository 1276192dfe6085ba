//! Configuration errors: each class makes `stackctl check` and `stackctl up` exit 2, before
//! anything starts, with a message naming the key, the bad value and where it came from (the
//! file and line, the environment variable, or the flag).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::up::{Stack, assert_fails_with};

/// A valid service `ok` whose script leaves a mark if it ever runs, followed by `extra`.
fn stack_with(extra: &str) -> Stack {
    let stack = Stack::new(&format!(
        r#"
[services.ok]
command = "./ok.sh"
{extra}
"#
    ));
    stack.script("ok.sh", "touch ok.ran\nexec sleep 1000");
    stack
}

/// The 1-based line of the configuration file holding `text`.
fn line_of(stack: &Stack, text: &str) -> usize {
    let config = std::fs::read_to_string(stack.config_file()).expect("config");
    config
        .lines()
        .position(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text:?} is not in the configuration:\n{config}"))
        + 1
}

/// Runs `check` then `up` with `args` and `env`; both must exit 2 with every one of `needles`
/// in their message, and no service may have started.
fn assert_rejected(stack: &Stack, args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let mut check_args = vec!["check"];
    check_args.extend_from_slice(args);
    let out = stack.stackctl_with(&check_args, env);
    let message = assert_fails_with(&out, 2, needles, "stackctl check");
    eprintln!("check: {message}");

    let mut up = stack.up(args, env);
    let code = up.wait_exit();
    let log = up.log();
    assert_eq!(
        code,
        Some(2),
        "stackctl up should refuse with exit code 2:\n{log}"
    );
    for needle in needles {
        assert!(
            log.contains(needle),
            "up's message should contain {needle:?}:\n{log}"
        );
    }
    assert!(!log.contains(": starting"), "{log}");
    assert!(
        !stack.path().join("ok.ran").exists(),
        "a service ran despite the error"
    );
}

#[test]
fn an_unknown_key_is_reported_with_its_file_and_line() {
    let stack = stack_with("restart_windw = \"60s\"");
    let line = format!("line {}", line_of(&stack, "restart_windw"));
    let file = stack.config_file().display().to_string();
    assert_rejected(
        &stack,
        &[],
        &[],
        &["services.ok.restart_windw", "unknown key", &file, &line],
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_with_its_line() {
    let stack = stack_with("max_restarts = \"five\"");
    let line = format!("line {}", line_of(&stack, "max_restarts"));
    assert_rejected(
        &stack,
        &[],
        &[],
        &["services.ok.max_restarts", "five", &line],
    );
}

#[test]
fn a_bad_duration_is_reported_with_its_line() {
    let stack = stack_with("stop_timeout = \"ten seconds\"");
    let line = format!("line {}", line_of(&stack, "stop_timeout"));
    assert_rejected(
        &stack,
        &[],
        &[],
        &["services.ok.stop_timeout", "ten seconds", "duration", &line],
    );
}

#[test]
fn a_port_out_of_range_from_the_environment_names_the_variable() {
    let stack = stack_with("");
    assert_rejected(
        &stack,
        &[],
        &[("MONITOR_PORT", "99999")],
        &["monitor.port", "99999", "MONITOR_PORT"],
    );
}

#[test]
fn a_port_out_of_range_from_set_names_the_flag() {
    let stack = stack_with("");
    assert_rejected(
        &stack,
        &["--set", "http.port=70000"],
        &[],
        &["http.port", "70000", "--set http.port=70000"],
    );
}

#[test]
fn an_unknown_dependency_is_reported_with_its_line() {
    let stack = stack_with("depends_on = { ghost = \"ready\" }");
    let line = format!("line {}", line_of(&stack, "ghost"));
    assert_rejected(
        &stack,
        &[],
        &[],
        &["services.ok.depends_on.ghost", "ghost", &line],
    );
}

#[test]
fn a_dependency_cycle_is_reported() {
    let stack = stack_with(
        r#"depends_on = { other = "started" }

[services.other]
command = "./ok.sh"
depends_on = { ok = "ready" }"#,
    );
    let out = stack.stackctl(&["check"]);
    let message = assert_fails_with(&out, 2, &["cycle"], "stackctl check");
    assert!(
        message.contains("ok -> other -> ok") || message.contains("other -> ok -> other"),
        "the cycle should be spelled out: {message}"
    );
    assert_rejected(&stack, &[], &[], &["cycle", "services."]);
}

#[test]
fn explain_names_where_each_value_came_from() {
    let stack = stack_with("stop_timeout = \"3s\"");
    let line = line_of(&stack, "stop_timeout");
    let out = stack.stackctl_with(
        &["config", "--explain", "--set", "services.ok.max_restarts=7"],
        &[("MONITOR_PORT", "8099")],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let find = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
            .to_owned()
    };
    assert!(
        find("services.ok.stop_timeout").contains(&format!("line {line}")),
        "{text}"
    );
    assert!(find("monitor.port").contains("env MONITOR_PORT"), "{text}");
    assert!(
        find("services.ok.max_restarts").contains("flag --set services.ok.max_restarts=7"),
        "{text}"
    );
    assert!(find("services.ok.restart").contains("default"), "{text}");
}
