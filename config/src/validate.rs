//! Checks the typed, interpolated configuration beyond what its types enforce: ranges, names,
//! probes, back-off, dependencies.

use std::collections::BTreeSet;
use std::time::Duration;

use toml::Value;

use crate::duration;
use crate::error::ConfigError;
use crate::extract::value_text;
use crate::graph::find_cycles;
use crate::schema::{BuildCommand, Config, Probe, ProbeKind, ServiceConfig};
use crate::tree::{KeyPath, Tree, format_key};

/// Collects errors about values of the configuration.
struct Check<'a> {
    tree: &'a Tree,
    errors: &'a mut Vec<ConfigError>,
}

impl Check<'_> {
    /// Reports `value` (the effective value, in TOML syntax) at `path`.
    fn fail(&mut self, path: &[&str], value: String, problem: impl Into<String>) {
        let path: KeyPath = path.iter().map(|s| (*s).to_owned()).collect();
        self.errors.push(ConfigError::Invalid {
            key: format_key(&path, path.len()),
            value,
            problem: problem.into(),
            origin: self.tree.origin_near(&path),
        });
    }

    /// Reports element `index` of the list at `path`.
    fn fail_item(
        &mut self,
        path: &[&str],
        index: usize,
        value: String,
        problem: impl Into<String>,
    ) {
        let mut full: KeyPath = path.iter().map(|s| (*s).to_owned()).collect();
        let depth = full.len();
        full.push(index.to_string());
        self.errors.push(ConfigError::Invalid {
            key: format_key(&full, depth),
            value,
            problem: problem.into(),
            origin: self.tree.origin_near(&full),
        });
    }

    fn not_empty(&mut self, path: &[&str], text: &str) {
        if text.trim().is_empty() {
            self.fail(path, quote(text), "must not be empty");
        }
    }

    fn not_empty_item(&mut self, path: &[&str], index: usize, text: &str) {
        if text.trim().is_empty() {
            self.fail_item(path, index, quote(text), "must not be empty");
        }
    }

    fn fraction(&mut self, path: &[&str], x: f64) {
        if !(0.0..=1.0).contains(&x) {
            self.fail(path, Value::Float(x).to_string(), "must be between 0 and 1");
        }
    }

    fn positive(&mut self, path: &[&str], d: Duration) {
        if d.is_zero() {
            self.fail(path, quote(&duration::format(d)), "must be longer than 0s");
        }
    }

    fn shm_name(&mut self, path: &[&str], name: &str) {
        if let Err(problem) = check_shm_name(name) {
            self.fail(path, quote(name), problem);
        }
    }
}

fn quote(text: &str) -> String {
    value_text(&Value::String(text.to_owned()))
}

/// A POSIX shared-memory name (or glob of names): `/name`, no other slash.
fn check_shm_name(name: &str) -> Result<(), &'static str> {
    match name.strip_prefix('/') {
        Some(rest) if !rest.is_empty() && !rest.contains('/') && name.len() <= 255 => Ok(()),
        _ => Err("not a shared-memory name (\"/name\", one leading slash)"),
    }
}

/// Adds an error to `errors` for every invalid value of `config`. `failed` are the template
/// fields whose interpolation failed (already reported).
pub(crate) fn validate(
    config: &Config,
    tree: &Tree,
    failed: &BTreeSet<KeyPath>,
    errors: &mut Vec<ConfigError>,
) {
    let mut c = Check { tree, errors };
    c.not_empty(&["log", "level"], &config.log.level);
    c.not_empty(
        &["control", "socket"],
        &config.control.socket.to_string_lossy(),
    );
    if let Some(group) = &config.control.group {
        c.not_empty(&["control", "group"], group);
    }
    c.not_empty(&["http", "host"], &config.http.host);
    if config.http.write_timeout < Duration::from_millis(100) {
        let d = quote(&duration::format(config.http.write_timeout));
        c.fail(&["http", "write_timeout"], d, "must be at least 100ms");
    }
    c.not_empty(&["profiling", "host"], &config.profiling.host);
    if config.profiling.max_duration < Duration::from_secs(1) {
        let d = quote(&duration::format(config.profiling.max_duration));
        c.fail(&["profiling", "max_duration"], d, "must be at least 1s");
    }
    c.not_empty(&["monitor", "host"], &config.monitor.host);
    c.fraction(
        &["detector", "score_threshold"],
        config.detector.score_threshold,
    );
    c.fraction(
        &["detector", "nms_threshold"],
        config.detector.nms_threshold,
    );
    c.not_empty(
        &["detector", "model_dir"],
        &config.detector.model_dir.to_string_lossy(),
    );
    if config.streaming.max_clients == 0 {
        c.fail(
            &["streaming", "max_clients"],
            "0".into(),
            "must be at least 1",
        );
    }
    c.not_empty(
        &["recording", "path"],
        &config.recording.path.to_string_lossy(),
    );
    c.not_empty(&["tools", "uv"], &config.tools.uv);
    c.shm_name(&["source", "shm"], &config.source.shm);
    c.positive(&["source", "open_timeout"], config.source.open_timeout);
    // "" switches either off.
    if !config.source.detections.is_empty() {
        c.shm_name(&["source", "detections"], &config.source.detections);
    }
    if !config.source.nv12.is_empty() {
        c.shm_name(&["source", "nv12"], &config.source.nv12);
    }
    for (i, dir) in config.plugin_dirs.iter().enumerate() {
        c.not_empty_item(&["plugin_dirs"], i, &dir.to_string_lossy());
    }
    for (name, service) in &config.services {
        check_service(&mut c, name, service, failed);
        check_dependencies(&mut c, config, name, service);
    }
    for cycle in find_cycles(&config.services) {
        // A cycle names at least one service twice: `a -> a`.
        let [first, second, ..] = cycle.0.as_slice() else {
            continue;
        };
        let path = ["services", first, "depends_on", second].map(String::from);
        c.errors.push(ConfigError::Cycle {
            key: format!("services.{first}.depends_on"),
            origin: tree.origin_near(&path),
            cycle: cycle.0.clone(),
        });
    }
}

fn valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
}

fn check_service(c: &mut Check<'_>, name: &str, s: &ServiceConfig, failed: &BTreeSet<KeyPath>) {
    let at = |key: &'static str| ["services", name, key];
    if !valid_service_name(name) {
        let problem = "a service name is made of a-z, 0-9, '_' and '-' \
                       (it appears in STACKCTL_SERVICES__NAME__* variables and --set keys)";
        c.fail(&["services", name], "{…}".into(), problem);
    }
    c.not_empty(&at("command"), &s.command);
    if let Some(cwd) = &s.cwd {
        c.not_empty(&at("cwd"), &cwd.to_string_lossy());
    }
    for (key, value) in &s.env {
        if key.is_empty() || key.contains(['=', '\0']) {
            let problem = "not an environment variable name";
            c.fail(&["services", name, "env", key], quote(value), problem);
        }
    }
    for (i, step) in s.build.iter().enumerate() {
        let (empty, value) = match step {
            BuildCommand::Argv(argv) => (empty_argv(argv), list(argv)),
            BuildCommand::Shell(line) => (line.trim().is_empty(), quote(line)),
        };
        if empty {
            c.fail_item(&at("build"), i, value, "an empty command");
        }
    }
    for (key, probe) in [("ready", &s.ready), ("liveness", &s.liveness)] {
        if let Some(probe) = probe {
            check_probe(c, ["services", name, key], probe, failed);
        }
    }
    let backoff = &s.backoff;
    let initial = ["services", name, "backoff", "initial"];
    c.positive(&initial, backoff.initial);
    if backoff.initial > backoff.max {
        let value = quote(&duration::format(backoff.initial));
        let max = duration::format(backoff.max);
        c.fail(&initial, value, format!("longer than backoff.max ({max})"));
    }
    c.fraction(&["services", name, "backoff", "jitter"], backoff.jitter);
    c.positive(&at("restart_window"), s.restart_window);
    for (i, glob) in s.clean_shm.iter().enumerate() {
        let element = ["services", name, "clean_shm", &i.to_string()].map(str::to_owned);
        if !failed.contains(element.as_slice())
            && let Err(problem) = check_shm_name(glob)
        {
            c.fail_item(&at("clean_shm"), i, quote(glob), problem);
        }
    }
}

fn empty_argv(argv: &[String]) -> bool {
    argv.first().is_none_or(|a| a.trim().is_empty())
}

fn list(items: &[String]) -> String {
    value_text(&Value::Array(
        items.iter().map(|i| Value::String(i.clone())).collect(),
    ))
}

fn check_probe(c: &mut Check<'_>, at: [&str; 3], probe: &Probe, failed: &BTreeSet<KeyPath>) {
    let [services, name, key] = at;
    let target = [services, name, key, probe.kind.key()];
    let problem = match &probe.kind {
        _ if failed.contains(target.map(str::to_owned).as_slice()) => None,
        ProbeKind::Shm(shm) => check_shm_name(shm)
            .err()
            .map(|p| (quote(shm), p.to_owned())),
        ProbeKind::File(p) if p.as_os_str().is_empty() => {
            Some((quote(""), "must not be empty".into()))
        }
        ProbeKind::Tcp(addr) => check_tcp(addr).map(|p| (quote(addr), p)),
        ProbeKind::Http(url) if !is_http_url(url) => {
            Some((quote(url), "not an http:// or https:// URL".into()))
        }
        ProbeKind::Exec(argv) if empty_argv(argv) => Some((list(argv), "an empty command".into())),
        ProbeKind::Log(re) if re.is_empty() => Some((quote(""), "must not be empty".into())),
        _ => None,
    };
    if let Some((value, problem)) = problem {
        c.fail(&target, value, problem);
    }
    c.positive(&[services, name, key, "interval"], probe.interval);
    c.positive(&[services, name, key, "timeout"], probe.timeout);
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
}

/// `host:port` with a port in 1..=65535.
fn check_tcp(addr: &str) -> Option<String> {
    let ok = addr
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    (!ok).then(|| "not host:port (e.g. \"127.0.0.1:8080\")".to_owned())
}

fn check_dependencies(c: &mut Check<'_>, config: &Config, name: &str, s: &ServiceConfig) {
    for (other, condition) in &s.depends_on {
        let path: KeyPath = ["services", name, "depends_on", other]
            .map(str::to_owned)
            .into();
        let problem = match config.services.get(other) {
            None => format!("there is no service {other:?}"),
            Some(dep) if s.enabled && !dep.enabled => {
                let why = c
                    .tree
                    .origin_near(&["services".into(), other.clone(), "enabled".into()]);
                format!(
                    "service {other:?} is disabled (enabled = false, from {why}); disable {name:?} too or drop the dependency"
                )
            }
            Some(_) => continue,
        };
        c.errors.push(ConfigError::Dependency {
            key: format_key(&path, path.len()),
            value: quote(condition.as_str()),
            problem,
            origin: c.tree.origin_near(&path),
        });
    }
}
