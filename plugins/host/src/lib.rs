//! The plugin host: loads the sinks named in `[plugins.NAME]`, starts them with their own
//! configuration, attaches each to the NAL bus through its own delivery thread and queue, routes
//! HTTP requests to them and gathers their metrics.
//!
//! A plugin that fails to load is refused with a message naming it, its ABI and ours; the rest
//! of the stack starts anyway unless the plugin is `required`. A plugin that fails later (a
//! caught panic, an error from `on_frame`) is detached and marked failed; it is never unloaded.

pub mod callbacks;
pub mod loader;
pub mod plugin;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use stackctl_core::bus::Bus;

pub use plugin::Plugin;

/// Keys of a `[plugins.NAME]` table that are the host's, not the plugin's.
const HOST_KEYS: [&str; 5] = ["path", "enabled", "required", "queue", "name"];
/// Default queue length of a plugin, in frames (two seconds at 30 fps).
const DEFAULT_QUEUE: usize = 60;

/// One `[plugins.NAME]` section, split into the host's keys and the plugin's own.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Its name.
    pub name: String,
    /// The configured path or file name.
    pub path: String,
    /// Whether to load it.
    pub enabled: bool,
    /// Whether stackctl refuses to run without it.
    pub required: bool,
    /// Its queue length in frames.
    pub queue: usize,
    /// The plugin's own keys, as TOML text.
    pub own: String,
}

/// The value of a top-level key, as a plugin key.
type LegacyValue = fn(&stackctl_config::Config) -> toml::Value;

/// Keys the legacy script's options set at the top level, handed to the sink that took over
/// from its streaming server: `(plugin, its key, top-level key, the value)`.
const LEGACY_KEYS: [(&str, &str, &str, LegacyValue); 2] = [
    ("streaming", "max_clients", "streaming.max_clients", |c| {
        toml::Value::Integer(c.streaming.max_clients.into())
    }),
    ("recording", "dir", "recording.path", |c| {
        toml::Value::String(c.recording.path.to_string_lossy().into_owned())
    }),
];

/// The plugin's section with the legacy top-level keys filled in: a key the section lacks
/// takes the top-level value; one it has is overridden when an environment variable or a
/// flag (`STREAMING_MAX_CLIENTS`, `--max-clients`, `RECORDING_PATH`) set the top-level one,
/// because those are meant to beat the file.
fn with_legacy_keys(
    loaded: &stackctl_config::Loaded,
    name: &str,
    table: &toml::Table,
) -> toml::Table {
    let mut table = table.clone();
    for (plugin, key, top, value) in LEGACY_KEYS {
        if plugin != name {
            continue;
        }
        let value = value(&loaded.config);
        let overriding = matches!(
            loaded.origin(top),
            Some(stackctl_config::Origin::Env { .. } | stackctl_config::Origin::Flag { .. })
        );
        if overriding || !table.contains_key(key) {
            table.insert(key.to_owned(), value);
        }
    }
    table
}

/// Reads the host's keys of every plugin section; errors name the key.
pub fn configs(loaded: &stackctl_config::Loaded) -> Result<Vec<PluginConfig>, Vec<String>> {
    let config = &loaded.config;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, table) in &config.plugins {
        let table = &with_legacy_keys(loaded, name, table);
        let key = |k: &str| format!("plugins.{name}.{k}");
        let boolean = |k: &str, default: bool, errors: &mut Vec<String>| match table.get(k) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                errors.push(format!("{} = {other}: expected true or false", key(k)));
                default
            }
        };
        let path = match table.get("path") {
            Some(toml::Value::String(p)) if !p.is_empty() => p.clone(),
            Some(other) => {
                errors.push(format!(
                    "{} = {other}: expected the plugin's file name or path",
                    key("path")
                ));
                continue;
            }
            None => {
                errors.push(format!(
                    "{}: missing (the plugin's file, e.g. \"libsink_{name}.so\")",
                    key("path")
                ));
                continue;
            }
        };
        let queue = match table.get("queue") {
            None => DEFAULT_QUEUE,
            Some(toml::Value::Integer(n)) if (1..=10_000).contains(n) => *n as usize,
            Some(other) => {
                errors.push(format!(
                    "{} = {other}: expected a number of frames, 1 to 10000",
                    key("queue")
                ));
                DEFAULT_QUEUE
            }
        };
        let mut enabled = boolean("enabled", true, &mut errors);
        // `--no-streaming` (streaming.enabled = false) switches the streaming sink off.
        if name == "streaming" && !config.streaming.enabled {
            enabled = false;
        }
        let required = boolean("required", false, &mut errors);
        let own: toml::Table = table
            .iter()
            .filter(|(k, _)| !HOST_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(PluginConfig {
            name: name.clone(),
            path,
            enabled,
            required,
            queue,
            own: toml::to_string(&own).unwrap_or_default(),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A plugin's state for `stackctl status` and `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct PluginStatus {
    /// Its name in the configuration.
    pub name: String,
    /// `running`, `failed` or `disabled`.
    pub state: String,
    /// Why it failed.
    pub detail: Option<String>,
    /// Its own version.
    pub version: Option<String>,
    /// The sink ABI it was built for, e.g. `1.0`.
    pub abi: Option<String>,
    /// Paths it serves.
    pub routes: Vec<String>,
    /// Frames handed to it.
    pub frames: u64,
    /// Frames it missed because it was too slow (whole GOPs).
    pub dropped: u64,
}

/// Every configured plugin.
#[derive(Debug, Default)]
pub struct PluginHost {
    running: Vec<Arc<Plugin>>,
    others: Vec<PluginStatus>,
}

impl PluginHost {
    /// Loads, starts and attaches every enabled plugin. `Err` when a `required` one fails.
    pub fn start(configs: &[PluginConfig], dirs: &[PathBuf], bus: &Bus) -> Result<Self, String> {
        let mut host = Self::default();
        let search = loader::search_dirs(dirs);
        for cfg in configs {
            if !cfg.enabled {
                host.others.push(idle(cfg, "disabled", None));
                continue;
            }
            let started = loader::resolve(&cfg.name, &cfg.path, &search)
                .and_then(|path| loader::load(&cfg.name, &path))
                .map_err(|e| e.to_string())
                .and_then(|lib| Plugin::start(&cfg.name, lib, &cfg.own))
                .and_then(|plugin| {
                    plugin
                        .attach(bus, cfg.queue)
                        .map_err(|e| format!("plugin {}: {e}", cfg.name))?;
                    Ok(plugin)
                });
            match started {
                Ok(plugin) => {
                    tracing::info!(
                        plugin = %cfg.name, version = %plugin.version, routes = ?plugin.routes,
                        "plugin started"
                    );
                    host.running.push(plugin);
                }
                Err(e) if cfg.required => {
                    host.stop();
                    return Err(format!("{e} (required)"));
                }
                Err(e) => {
                    tracing::error!(plugin = %cfg.name, "{e}; the stack runs without it");
                    host.others.push(idle(cfg, "failed", Some(e)));
                }
            }
        }
        Ok(host)
    }

    /// The running plugin serving `path` (the longest matching route prefix).
    pub fn route(&self, path: &str) -> Option<&Arc<Plugin>> {
        self.running
            .iter()
            .filter(|p| !p.is_failed())
            .flat_map(|p| p.routes.iter().map(move |r| (r, p)))
            .filter(|(route, _)| {
                path == route.as_str()
                    || path
                        .strip_prefix(route.as_str())
                        .is_some_and(|rest| rest.starts_with('/') || route.ends_with('/'))
            })
            .max_by_key(|(route, _)| route.len())
            .map(|(_, p)| p)
    }

    /// Every plugin's metrics, concatenated.
    pub fn metrics(&self) -> String {
        self.running
            .iter()
            .map(|p| p.metrics())
            .filter(|m| !m.is_empty())
            .fold(String::new(), |mut all, m| {
                all.push_str(&m);
                if !m.ends_with('\n') {
                    all.push('\n');
                }
                all
            })
    }

    /// The state of every configured plugin.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let running = self.running.iter().map(|p| {
            let dropped = p
                .queue
                .lock()
                .ok()
                .and_then(|q| q.as_ref().map(|s| s.snapshot().dropped))
                .unwrap_or(0);
            let failure = p.failure();
            PluginStatus {
                name: p.name.clone(),
                state: if failure.is_some() {
                    "failed"
                } else {
                    "running"
                }
                .to_owned(),
                detail: failure,
                version: Some(p.version.clone()),
                abi: Some(format!("{}.{}", p.abi.0, p.abi.1)),
                routes: p.routes.clone(),
                frames: p.delivered.load(std::sync::atomic::Ordering::Relaxed),
                dropped,
            }
        });
        running.chain(self.others.iter().cloned()).collect()
    }

    /// Stops every plugin, the last started first.
    pub fn stop(&self) {
        for plugin in self.running.iter().rev() {
            plugin.stop();
        }
    }
}

fn idle(cfg: &PluginConfig, state: &str, detail: Option<String>) -> PluginStatus {
    PluginStatus {
        name: cfg.name.clone(),
        state: state.to_owned(),
        detail,
        version: None,
        abi: None,
        routes: Vec::new(),
        frames: 0,
        dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(
        file: &str,
        env: &[(&str, &str)],
        max_clients_flag: Option<u32>,
    ) -> stackctl_config::Loaded {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stackctl.toml");
        std::fs::write(&path, file).expect("write the config");
        let mut sources = stackctl_config::Sources::new(0);
        sources.file = Some(path);
        sources.env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        sources.flags.max_clients = max_clients_flag;
        stackctl_config::load(&sources).expect("a valid configuration")
    }

    fn own(loaded: &stackctl_config::Loaded, name: &str) -> toml::Table {
        let config = configs(loaded).expect("valid plugin sections");
        let plugin = config.iter().find(|p| p.name == name).expect("the plugin");
        toml::from_str(&plugin.own).expect("its own keys as TOML")
    }

    const SINKS: &str = "[plugins.streaming]\npath = \"libsink_webrtc.so\"\n\
                         [plugins.recording]\npath = \"libsink_recorder.so\"\n";

    #[test]
    fn legacy_options_reach_the_sinks_that_replaced_the_streaming_server() {
        // Absent from the sections: the top-level values (defaults here).
        let l = loaded(SINKS, &[], None);
        assert_eq!(own(&l, "streaming")["max_clients"].as_integer(), Some(10));
        assert_eq!(
            own(&l, "recording")["dir"].as_str(),
            l.config.recording.path.to_str()
        );
        // The file's top-level keys, when the sections do not set theirs.
        let l = loaded(
            &format!("[streaming]\nmax_clients = 4\n[recording]\npath = \"/rec\"\n{SINKS}"),
            &[],
            None,
        );
        assert_eq!(own(&l, "streaming")["max_clients"].as_integer(), Some(4));
        assert_eq!(own(&l, "recording")["dir"].as_str(), Some("/rec"));
        // The section's own value beats the file's top level...
        let file = "[streaming]\nmax_clients = 4\n\
                    [plugins.streaming]\npath = \"libsink_webrtc.so\"\nmax_clients = 7\n\
                    [plugins.recording]\npath = \"libsink_recorder.so\"\ndir = \"/mine\"\n";
        let l = loaded(file, &[], None);
        assert_eq!(own(&l, "streaming")["max_clients"].as_integer(), Some(7));
        assert_eq!(own(&l, "recording")["dir"].as_str(), Some("/mine"));
        // ...but the script's variables and flags beat the file, as they always did.
        let l = loaded(
            file,
            &[("STREAMING_MAX_CLIENTS", "3"), ("RECORDING_PATH", "/env")],
            None,
        );
        assert_eq!(own(&l, "streaming")["max_clients"].as_integer(), Some(3));
        assert_eq!(own(&l, "recording")["dir"].as_str(), Some("/env"));
        let l = loaded(file, &[("STREAMING_MAX_CLIENTS", "3")], Some(2));
        assert_eq!(own(&l, "streaming")["max_clients"].as_integer(), Some(2));
    }
}
