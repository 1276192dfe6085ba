//! The alert rules and the Grafana dashboard name only metrics that exist: the real stackctl,
//! with camsim as its camera and both sinks (streaming and recording) loaded, is scraped and
//! every metric the rules' and the dashboard's expressions reference is looked up in the
//! scrape. `promtool check metrics` lints the same scrape (skipped, loudly, without promtool):
//! its only complaints are about the legacy Go server's names, which the board's dashboards
//! use and which are kept on purpose.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::Value;
use stackctl_tests::plugins::{
    camera_config, http_get, poll, rust_plugin, toml_path, workspace_root,
};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

/// Names the rules may use that no exporter serves: Prometheus's own.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

/// The legacy names `promtool check metrics` complains about (kept for the board's dashboards:
/// `_ms` units, a counter without the `_total` suffix).
const LEGACY_LINT: [&str; 3] = [
    "streaming_frame_latency_ms",
    "streaming_process_latency_ms",
    "streaming_total_clients",
];

/// PromQL's keywords, and its aggregations (which may take `by (...)` before their
/// parenthesis, so they are not always followed by one).
const PROMQL_WORDS: [&str; 18] = [
    "and", "or", "unless", "bool", "offset", "by", "on", "sum", "avg", "min", "max", "count",
    "group", "topk", "bottomk", "quantile", "stddev", "stdvar",
];

#[test]
fn the_rules_and_the_dashboard_reference_only_metrics_that_exist() {
    let shm = unique_shm("ops-metrics");
    let recordings = tempfile::tempdir().expect("tempdir");
    let stack = Stack::new(&format!(
        "{camera}\n\
         [plugins.streaming]\npath = {webrtc}\nbind = [\"127.0.0.1\"]\n\n\
         [plugins.recording]\npath = {recorder}\ndir = {dir}\nformat = \"mp4\"\nmode = \"continuous\"\n",
        camera = camera_config(&shm),
        webrtc = toml_path(&rust_plugin("sink-webrtc")),
        recorder = toml_path(&rust_plugin("sink-recorder")),
        dir = toml_path(recordings.path()),
    ));
    let port = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=streaming"]);
    up.first_line(&["plugin started", "plugin=recording"]);
    up.first_line(&["stack ready"]);

    // Frames flowing and the recording directory made: every family has its samples.
    let scrape = poll("frames read and the disk measured", EVENT_TIMEOUT, || {
        let (code, text) = http_get(port, "/metrics");
        let frames = sample(&text, "stackctl_source_frames_total").unwrap_or(0.0);
        let disk = sample(&text, "stackctl_disk_avail_bytes").unwrap_or(0.0);
        if code == 200 && frames > 0.0 && disk > 0.0 {
            Ok(text)
        } else {
            Err(format!("{code}, frames {frames}, disk {disk}"))
        }
    });
    let exported = exported(&scrape);

    let mut referenced = BTreeSet::new();
    for expr in rule_exprs() {
        referenced.extend(metric_names(&expr).into_iter().map(|m| (m, "rules")));
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("deploy/grafana/stackctl.json"))
            .expect("deploy/grafana/stackctl.json"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 20, "{exprs:#?}");
    for expr in &exprs {
        referenced.extend(metric_names(expr).into_iter().map(|m| (m, "dashboard")));
    }
    assert!(referenced.len() >= 30, "{referenced:#?}");

    let missing: Vec<_> = referenced
        .iter()
        .filter(|(m, _)| !PROMETHEUS_OWN.contains(&m.as_str()) && !exists(m, &exported))
        .collect();
    assert!(
        missing.is_empty(),
        "referenced but not exported: {missing:?}\nexported: {exported:#?}"
    );

    promtool_lints(&scrape);
}

/// The value of the first sample of `name` (any labels).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Every sample name and every `# TYPE` family of a scrape.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if l.starts_with('#') || l.is_empty() => None,
            None => l.split(['{', ' ']).next(),
        })
        .map(str::to_owned)
        .collect()
}

/// Whether `name` is exported, as is or as a series of a histogram or summary family.
fn exists(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| exported.contains(base))
        })
}

/// The `expr:` of every rule (one line, or a `|` block up to the rule's `for:`).
fn rule_exprs() -> Vec<String> {
    let text =
        std::fs::read_to_string(workspace_root().join("deploy/prometheus/stackctl.rules.yml"))
            .expect("the rules");
    let mut exprs = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("expr:") {
            current = Some(rest.trim_start_matches([' ', '|']).to_owned());
        } else if t.starts_with("for:") {
            exprs.extend(current.take());
        } else if let Some(expr) = current.as_mut() {
            expr.push(' ');
            expr.push_str(t);
        }
    }
    assert!(current.is_none(), "an expr without a for:");
    exprs
}

/// Every `"expr"` string in the dashboard.
fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression selects: its identifiers, less label matchers
/// (`{...}`), ranges (`[...]`), label lists (`by (...)`, `on (...)`), strings, Grafana
/// variables (`$x`), function calls (a name before `(`) and keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut depth_braces = 0usize;
    let mut depth_brackets = 0usize;
    let mut in_string = false;
    let mut label_list = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_braces += 1,
            '}' => depth_braces = depth_braces.saturating_sub(1),
            '[' => depth_brackets += 1,
            ']' => depth_brackets = depth_brackets.saturating_sub(1),
            ')' => label_list = false,
            '$' => {
                // A Grafana variable: skip its name.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                continue;
            }
            c if (c.is_ascii_alphabetic() || c == '_' || c == ':')
                && depth_braces == 0
                && depth_brackets == 0 =>
            {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                let call = chars.get(j) == Some(&'(');
                if matches!(
                    word.as_str(),
                    "by" | "on" | "without" | "ignoring" | "group_left" | "group_right"
                ) {
                    label_list = true;
                } else if !call && !label_list && !PROMQL_WORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

/// `promtool check metrics` on the scrape: it parses, and its only complaints are the legacy
/// names'.
fn promtool_lints(scrape: &str) {
    let Some(said) = stackctl_tests::plugins::promtool_check_metrics(scrape) else {
        return;
    };
    eprintln!("promtool check metrics said:\n{said}");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        let metric = line.split_whitespace().next().unwrap_or_default();
        assert!(
            LEGACY_LINT.contains(&metric),
            "promtool check metrics complains about a name that is not a legacy one: {line}"
        );
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    let cases: [(&str, &[&str]); 5] = [
        ("stackctl_ready == 0", &["stackctl_ready"]),
        (
            "histogram_quantile(0.9, sum by (instance, le) (rate(webrtc_time_to_first_frame_seconds_bucket{instance=~\"$instance\"}[15m]))) > 2",
            &["webrtc_time_to_first_frame_seconds_bucket"],
        ),
        (
            "stackctl_service_up == 0 unless on (instance, job, service) stackctl_service_state{state=~\"stopped\"} == 1",
            &["stackctl_service_state", "stackctl_service_up"],
        ),
        (
            "predict_linear(stackctl_disk_avail_bytes[6h], 24 * 3600) < 0 and stackctl_disk_avail_bytes / stackctl_disk_size_bytes * 100 < 15",
            &["stackctl_disk_avail_bytes", "stackctl_disk_size_bytes"],
        ),
        (
            "rate(x_total[$__rate_interval]) or up{job=\"stackctl\"}",
            &["up", "x_total"],
        ),
    ];
    for (expr, want) in cases {
        let got = metric_names(expr);
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(got, want, "{expr}");
    }
}
