//! The subcommands, one module each (`main` dispatches to them), and what they share: loading
//! the configuration, the directory its relative paths are resolved against, the control socket.

pub mod check;
pub mod config;
pub mod down;
pub mod logs;
pub mod plugins;
pub mod service;
pub mod shm_inspect;
pub mod shm_tap;
pub mod status;
pub mod up;

use std::path::{Path, PathBuf};

use stackctl_config::{Loaded, Sources};

use crate::cli::{ConfigFlags, SocketArgs};
use crate::service::plan::ServicePlan;
use crate::service::plan::build::plans;

/// Exit code for a configuration error: nothing was started.
pub const CONFIG_ERROR: u8 = 2;

/// A configuration problem, reported as is and mapped to exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration from the file, the environment and `flags`.
pub fn load(flags: &ConfigFlags) -> anyhow::Result<Loaded> {
    let mut sources = Sources::new(nix::unistd::geteuid().as_raw());
    sources.file = flags.config.clone();
    // Lossily: a variable that is not UTF-8 must not crash stackctl (none of ours can be one).
    sources.env = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    sources.flags = flags.flags.clone();
    stackctl_config::load(&sources).map_err(|e| ConfigError(e.to_string()).into())
}

/// The directory relative paths in the configuration are resolved against: the file's own, made absolute
/// (a service changes into its `cwd` before its program is looked up, so a path relative to
/// stackctl's working directory would no longer resolve).
pub(crate) fn base_dir(loaded: &Loaded) -> PathBuf {
    let dir = loaded
        .file
        .as_ref()
        .and_then(|f| f.parent().map(Path::to_owned))
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).unwrap_or(dir)
}

pub(crate) fn service_plans(loaded: &Loaded) -> anyhow::Result<Vec<ServicePlan>> {
    plans(&loaded.config, &base_dir(loaded)).map_err(|errors| ConfigError(errors.join("\n")).into())
}

/// The control socket a control command talks to.
pub fn socket_path(args: &SocketArgs) -> anyhow::Result<PathBuf> {
    if let Some(socket) = &args.socket {
        return Ok(socket.clone());
    }
    let flags = ConfigFlags {
        config: args.config.clone(),
        ..ConfigFlags::default()
    };
    Ok(load(&flags)?.config.control.socket.clone())
}
