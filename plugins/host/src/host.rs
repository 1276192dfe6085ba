//! Every configured plugin: started at once (a `required` one that fails stops the start),
//! found by route, asked for metrics and status, stopped in reverse order.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use stackctl_config::PluginSection;
use stackctl_core::bus::Bus;

use crate::exposition::{Merger, render_rejected};
use crate::plugin::{Plugin, StartError};
use crate::{loader, once};

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

/// `required` plugins could not be started: `up` must not run without them. Every one of
/// them, by name, each with why.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|(_, e)| format!("{e} (required)")).collect::<Vec<_>>().join("\n"))]
pub struct StartFailed(pub Vec<(String, StartError)>);

/// What serves a path.
#[derive(Debug)]
pub enum Routed<'a> {
    /// A running plugin.
    Plugin(&'a Arc<Plugin>),
    /// A plugin that serves it but cannot answer: detached, refused at start, or stopping.
    Unavailable {
        /// Its name in the configuration.
        plugin: String,
        /// Why.
        reason: String,
        /// Whether it may answer again (a stack that stops may be started again; a detached
        /// plugin stays detached until stackctl restarts).
        may_return: bool,
    },
}

/// Every configured plugin.
#[derive(Debug, Default)]
pub struct PluginHost {
    running: Vec<Arc<Plugin>>,
    others: Vec<PluginStatus>,
    /// Metrics lines left out of scrapes so far, per running plugin.
    rejected: Mutex<BTreeMap<String, u64>>,
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
        let mut required_failed = Vec::new();
        let search = loader::search_dirs(dirs);
        for cfg in configs {
            if !cfg.enabled {
                host.others.push(idle(cfg, "disabled", None));
                continue;
            }
            let lib = loader::resolve(&cfg.name, &cfg.path, &search)
                .and_then(|path| loader::load(&cfg.name, &path));
            // Known once the library loaded: a plugin refused later still owns its routes.
            let routes = lib.as_ref().map(|l| l.routes()).unwrap_or_default();
            let routes = crate::plugin::prefixed(cfg.route_prefix.as_deref(), routes);
            let started = lib
                .map_err(StartError::from)
                .and_then(|lib| {
                    Plugin::start_with_prefix(
                        &cfg.name,
                        lib,
                        &cfg.own_toml(),
                        cfg.route_prefix.as_deref(),
                    )
                })
                // After `create` (so a configuration error is reported first), before frames.
                .and_then(
                    |plugin| match host.check_routes(&cfg.name, plugin.routes()) {
                        Ok(()) => Ok(plugin),
                        Err(e) => {
                            plugin.stop();
                            Err(e)
                        }
                    },
                )
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
                // Every required plugin is tried, so that `up` reports them all at once.
                Err(e) if cfg.required => required_failed.push((cfg.name.clone(), e)),
                Err(e) => {
                    tracing::error!(plugin = %cfg.name, "{e}; the stack runs without it");
                    let mut status = idle(cfg, "failed", Some(e.to_string()));
                    status.routes = routes;
                    host.others.push(status);
                }
            }
        }
        if !required_failed.is_empty() {
            host.stop();
            return Err(StartFailed(required_failed));
        }
        Ok(host)
    }

    /// Refuses `routes` of plugin `name` if a running plugin already serves one of them
    /// (compared without a trailing `/`): which of the two would answer would depend on the
    /// order of the configuration's sections.
    fn check_routes(&self, name: &str, routes: &[String]) -> Result<(), StartError> {
        let key = |r: &str| r.trim_end_matches('/').to_owned();
        for route in routes {
            let other = self
                .running
                .iter()
                .find(|p| p.routes().iter().any(|r| key(r) == key(route)));
            if let Some(other) = other {
                return Err(StartError::RouteConflict {
                    name: name.to_owned(),
                    route: route.clone(),
                    other: other.name().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// What serves `path` (the longest matching route prefix): a running plugin, or one that
    /// would serve it but cannot answer (detached, refused at start, stopping).
    pub fn route(&self, path: &str) -> Option<Routed<'_>> {
        enum Owner<'a> {
            Running(&'a Arc<Plugin>),
            Refused(&'a PluginStatus),
        }
        let matches = |route: &String| {
            path == route.as_str()
                || path
                    .strip_prefix(route.as_str())
                    .is_some_and(|rest| rest.starts_with('/') || route.ends_with('/'))
        };
        let running = self
            .running
            .iter()
            .flat_map(|p| p.routes().iter().map(move |r| (r, Owner::Running(p))));
        let refused = self
            .others
            .iter()
            .filter(|s| s.state == "failed")
            .flat_map(|s| s.routes.iter().map(move |r| (r, Owner::Refused(s))));
        // The longest route; of equal ones, a plugin that answers before one that cannot (two
        // instances of a library declare the same routes, and one of them may be refused).
        let rank = |owner: &Owner<'_>| match owner {
            Owner::Running(p) if !p.is_failed() => 2,
            Owner::Running(_) => 1,
            Owner::Refused(_) => 0,
        };
        let (_, owner) = running
            .chain(refused)
            .filter(|(route, _)| matches(route))
            .max_by_key(|(route, owner)| (route.len(), rank(owner)))?;
        Some(match owner {
            Owner::Running(p) => match p.failure() {
                Some(reason) => Routed::Unavailable {
                    plugin: p.name().to_owned(),
                    reason,
                    may_return: false,
                },
                None if p.is_stopping() => Routed::Unavailable {
                    plugin: p.name().to_owned(),
                    reason: "the stack is stopping".to_owned(),
                    may_return: true,
                },
                None => Routed::Plugin(p),
            },
            Owner::Refused(s) => Routed::Unavailable {
                plugin: s.name.clone(),
                reason: s.detail.clone().unwrap_or_else(|| "refused".to_owned()),
                may_return: false,
            },
        })
    }

    /// Every running plugin's metrics, checked and labelled ([`crate::exposition`]), for a
    /// scrape whose host part claims the names `host` ([`crate::exposition::host_names`]);
    /// then `stackctl_plugin_metrics_rejected_total` for every running plugin.
    pub fn metrics(&self, host: &HashSet<String>) -> String {
        let mut merger = Merger::new(host);
        // Asked before the lock is taken: a slow plugin does not hold up another scrape.
        let texts: Vec<String> = self.running.iter().map(|p| p.metrics()).collect();
        let mut rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        for (plugin, text) in self.running.iter().zip(texts) {
            let left_out = merger.add(plugin.name(), &plugin.library(), &text);
            let count = rejected.entry(plugin.name().to_owned()).or_default();
            *count += left_out.len() as u64;
            if let Some(first) = left_out.first()
                && once::first_time(plugin.name(), "metrics")
            {
                tracing::warn!(
                    plugin = %plugin.name(), left_out = left_out.len(), first = %first,
                    "plugin metrics left out of the scrape (said once; counted in {})",
                    crate::exposition::REJECTED_FAMILY
                );
            }
        }
        let counts: Vec<(String, u64)> = rejected.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut text = merger.render();
        text.push_str(&render_rejected(&counts));
        text
    }

    /// Every plugin's metrics as they emit them, concatenated, unchecked: for reading figures
    /// (`/health`), never for serving.
    pub fn raw_metrics(&self) -> String {
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
