//! The alert rules that ship (`deploy/prometheus/stackctl.rules.yml`): Prometheus's own
//! `promtool` checks them and runs their unit tests, every alert (name and severity) has a test
//! that fires it, and each has what an alert needs (`for:`, severity, summary, description).
//! Skipped, loudly, without promtool (Debian's `prometheus` package has it).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use stackctl_tests::plugins::workspace_root;

fn dir() -> PathBuf {
    workspace_root().join("deploy").join("prometheus")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `promtool ARGS` in the rules' directory, or `None` (after a loud SKIPPED) without promtool.
fn promtool(args: &[&str]) -> Option<(bool, String)> {
    match Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
    {
        Ok(out) => Some((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )),
        Err(e) => {
            eprintln!(
                "SKIPPED: promtool {args:?}: promtool is not installed ({e}; apt-get install prometheus)"
            );
            None
        }
    }
}

#[test]
fn promtool_checks_the_rules_and_their_unit_tests_pass() {
    if let Some((ok, out)) = promtool(&["check", "rules", "stackctl.rules.yml"]) {
        assert!(ok, "promtool check rules:\n{out}");
        assert!(out.contains("SUCCESS"), "{out}");
    }
    if let Some((ok, out)) = promtool(&["test", "rules", "stackctl.rules.test.yml"]) {
        assert!(ok, "promtool test rules:\n{out}");
        assert!(out.contains("SUCCESS"), "{out}");
    }
}

/// One rule of the file, as the few fields checked here.
#[derive(Debug)]
struct Rule {
    alert: String,
    severity: String,
    text: String,
}

/// The rules, split at each `- alert:` (the file is written one rule per block).
fn rules() -> Vec<Rule> {
    let text = read("stackctl.rules.yml");
    text.split("\n      - alert: ")
        .skip(1)
        .map(|block| {
            let alert = block.lines().next().unwrap().trim().to_owned();
            let severity =
                value_of(block, "severity:").unwrap_or_else(|| panic!("{alert} has no severity"));
            Rule {
                alert,
                severity,
                text: block.to_owned(),
            }
        })
        .collect()
}

fn value_of(block: &str, key: &str) -> Option<String> {
    block
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim().to_owned())
}

#[test]
fn every_alert_is_complete_and_has_a_test_that_fires_it() {
    let rules = rules();
    assert!(rules.len() >= 15, "{rules:#?}");
    for r in &rules {
        assert!(
            r.alert.starts_with("Stackctl"),
            "{}: component prefix",
            r.alert
        );
        assert!(
            ["warning", "critical"].contains(&r.severity.as_str()),
            "{}: severity {}",
            r.alert,
            r.severity
        );
        let wait = value_of(&r.text, "for:").unwrap_or_else(|| panic!("{}: no for:", r.alert));
        assert!(
            wait.ends_with('m') || wait.ends_with('h'),
            "{}: for: {wait} (minutes or hours, so it does not flap)",
            r.alert
        );
        for key in ["summary:", "description:"] {
            assert!(r.text.contains(key), "{}: no {key}", r.alert);
        }
    }

    // The tests' firing alerts: each `alertname:` with the severities listed under it.
    let tests = read("stackctl.rules.test.yml");
    let mut fired = BTreeSet::new();
    for case in tests.split("alertname: ").skip(1) {
        let name = case.lines().next().unwrap().trim().to_owned();
        let until_next = case.split("- eval_time:").next().unwrap();
        for severity in until_next
            .lines()
            .filter_map(|l| l.trim().strip_prefix("severity: "))
        {
            fired.insert((name.clone(), severity.trim().to_owned()));
        }
    }
    for r in &rules {
        assert!(
            fired.contains(&(r.alert.clone(), r.severity.clone())),
            "{} ({}) has no test that fires it",
            r.alert,
            r.severity
        );
    }
}
