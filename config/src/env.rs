//! The environment layer: first the legacy launch script's variables, then `STACKCTL_*`.
//!
//! Values are parsed as TOML values when they parse (`8082`, `true`, `["a", "b"]`), else taken
//! as strings; a value that parsed as something else where the schema wants a string is taken
//! as the text it was (`STACKCTL_CONTROL__GROUP=1000` is the group `"1000"`).

use crate::error::ConfigError;
use crate::origin::Origin;
use crate::tree::{MAX_KEY_DEPTH, Tree, split_key};

/// The legacy script's variables and the keys they set, in the order they are applied.
pub const LEGACY_ENV: &[(&str, &str)] = &[
    ("MONITOR_HOST", "monitor.host"),
    ("MONITOR_PORT", "monitor.port"),
    ("STREAMING_HOST", "http.host"),
    ("STREAMING_PORT", "http.port"),
    ("METRICS_PORT", "metrics.port"),
    ("PPROF_PORT", "profiling.port"),
    ("STREAMING_MAX_CLIENTS", "streaming.max_clients"),
    ("STREAMING_SHM", "source.shm"),
    ("RECORDING_PATH", "recording.path"),
    ("YOLO_MODEL", "detector.model"),
    ("YOLO_SCORE_THRESHOLD", "detector.score_threshold"),
    ("YOLO_NMS_THRESHOLD", "detector.nms_threshold"),
    ("UV_BIN", "tools.uv"),
];

/// The prefix of the variables that set any key: `STACKCTL_HTTP__PORT=8082`.
pub const ENV_PREFIX: &str = "STACKCTL_";

/// The separator of nesting levels after [`ENV_PREFIX`].
pub const ENV_SEPARATOR: &str = "__";

/// The value of `var` (the last one if it is there twice).
pub(crate) fn lookup<'a>(env: &'a [(String, String)], var: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v.as_str())
}

/// Merges the legacy variables, then the `STACKCTL_*` ones (sorted by name, so the result does
/// not depend on the environment's order).
pub(crate) fn apply(tree: &mut Tree, env: &[(String, String)], errors: &mut Vec<ConfigError>) {
    for (var, key) in LEGACY_ENV {
        if let Some(value) = lookup(env, var) {
            tree.merge_text(&split_key(key), value, &Origin::env(*var));
        }
    }
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (var, value) in vars {
        match key_of(var) {
            Ok(path) => tree.merge_text(&path, value, &Origin::env(var)),
            Err(message) => errors.push(ConfigError::Source {
                origin: Origin::env(var),
                message,
            }),
        }
    }
}

/// `STACKCTL_SERVICES__WEB_MONITOR__ENABLED` → `["services", "web_monitor", "enabled"]`.
fn key_of(var: &str) -> Result<Vec<String>, String> {
    let rest = var.strip_prefix(ENV_PREFIX).unwrap_or(var);
    let path: Vec<String> = rest.split(ENV_SEPARATOR).map(str::to_lowercase).collect();
    if path.iter().any(String::is_empty) || path.len() > MAX_KEY_DEPTH {
        return Err(format!(
            "not a configuration key (write STACKCTL_SECTION{ENV_SEPARATOR}KEY, e.g. STACKCTL_HTTP{ENV_SEPARATOR}PORT)"
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_variables() {
        let cases: [(&str, Option<&[&str]>); 5] = [
            ("STACKCTL_HTTP__PORT", Some(&["http", "port"])),
            (
                "STACKCTL_SERVICES__WEB_MONITOR__ENABLED",
                Some(&["services", "web_monitor", "enabled"]),
            ),
            ("STACKCTL_PLUGIN_DIRS", Some(&["plugin_dirs"])),
            ("STACKCTL_", None),
            ("STACKCTL_HTTP____PORT", None),
        ];
        let deep = format!("STACKCTL_{}X", "A__".repeat(MAX_KEY_DEPTH));
        assert!(key_of(&deep).is_err());
        for (var, want) in cases {
            let got = key_of(var).ok();
            let want = want.map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want, "{var}");
        }
    }

    #[test]
    fn last_occurrence_wins() {
        let env = vec![
            ("A".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ];
        assert_eq!(lookup(&env, "A"), Some("2"));
        assert_eq!(lookup(&env, "B"), None);
    }
}
