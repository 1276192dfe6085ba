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
use stackctl_config::PluginSection;
use stackctl_core::bus::Bus;

pub use plugin::Plugin;

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
    pub fn start(configs: &[PluginSection], dirs: &[PathBuf], bus: &Bus) -> Result<Self, String> {
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
                .and_then(|lib| Plugin::start(&cfg.name, lib, &cfg.own_toml()))
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

fn idle(cfg: &PluginSection, state: &str, detail: Option<String>) -> PluginStatus {
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
