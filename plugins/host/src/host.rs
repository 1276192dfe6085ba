//! Every configured plugin: started at once (a `required` one that fails stops the start),
//! found by route, asked for metrics and status, stopped in reverse order.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stackctl_config::PluginSection;
use stackctl_core::bus::Bus;

use crate::loader;
use crate::plugin::{Plugin, StartError};

/// A plugin's state for `stackctl status` and `/api/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Detector results handed to it (plugins with `on_detections`, ABI 1.1).
    #[serde(default)]
    pub detections: u64,
}

/// A `required` plugin could not be started: `up` must not run without it.
#[derive(Debug, thiserror::Error)]
#[error("{0} (required)")]
pub struct StartFailed(pub StartError);

/// Every configured plugin.
#[derive(Debug, Default)]
pub struct PluginHost {
    running: Vec<Arc<Plugin>>,
    others: Vec<PluginStatus>,
}

impl PluginHost {
    /// Loads, starts and attaches every enabled plugin of `configs`, looking for bare file
    /// names next to the executable, in `/usr/lib/stackctl/plugins`, then in `dirs`. A plugin
    /// that fails is logged and shown as failed; `Err` (with every plugin started so far
    /// stopped again) when it is `required`.
    pub fn start(
        configs: &[PluginSection],
        dirs: &[PathBuf],
        bus: &Bus,
    ) -> Result<Self, StartFailed> {
        let mut host = Self::default();
        let search = loader::search_dirs(dirs);
        for cfg in configs {
            if !cfg.enabled {
                host.others.push(idle(cfg, "disabled", None));
                continue;
            }
            let started = loader::resolve(&cfg.name, &cfg.path, &search)
                .and_then(|path| loader::load(&cfg.name, &path))
                .map_err(StartError::from)
                .and_then(|lib| Plugin::start(&cfg.name, lib, &cfg.own_toml()))
                .and_then(|plugin| {
                    plugin.attach(bus, cfg.queue)?;
                    Ok(plugin)
                });
            match started {
                Ok(plugin) => {
                    tracing::info!(
                        plugin = %cfg.name, version = %plugin.version(), routes = ?plugin.routes(),
                        "plugin started"
                    );
                    host.running.push(plugin);
                }
                Err(e) if cfg.required => {
                    host.stop();
                    return Err(StartFailed(e));
                }
                Err(e) => {
                    tracing::error!(plugin = %cfg.name, "{e}; the stack runs without it");
                    host.others.push(idle(cfg, "failed", Some(e.to_string())));
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
            .flat_map(|p| p.routes().iter().map(move |r| (r, p)))
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
        let running = self.running.iter().map(|p| p.status());
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
        detections: 0,
    }
}
