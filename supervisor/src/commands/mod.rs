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
use crate::service::plan::build::{PlanErrors, plans};

/// Exit code for a configuration error: nothing was started.
pub const CONFIG_ERROR: u8 = 2;

/// A configuration problem: reported as is, mapped to exit code 2, and nothing is started.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration does not load: every error, with its key, value and origin.
    #[error(transparent)]
    Load(#[from] stackctl_config::ConfigErrors),
    /// It loads, but a service cannot be run as configured.
    #[error(transparent)]
    Plans(#[from] PlanErrors),
    /// `RUST_LOG` or `log.level` is not a log filter.
    #[error(transparent)]
    Log(#[from] crate::logging::FilterError),
    /// What `stackctl check` found: a directory, a program or a plugin that is not there or
    /// not usable.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Check(Vec<check::Problem>),
}

/// Loads the configuration from the file, the environment and `flags`.
pub fn load(flags: &ConfigFlags) -> Result<Loaded, ConfigError> {
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
    Ok(stackctl_config::load(&sources)?)
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

/// The plans of every service of `loaded`, in start order.
pub(crate) fn service_plans(loaded: &Loaded) -> Result<Vec<ServicePlan>, ConfigError> {
    Ok(plans(&loaded.config, &base_dir(loaded))?)
}

/// The control socket a control command talks to.
pub fn socket_path(args: &SocketArgs) -> Result<PathBuf, ConfigError> {
    if let Some(socket) = &args.socket {
        return Ok(socket.clone());
    }
    let flags = ConfigFlags {
        config: args.config.clone(),
        ..ConfigFlags::default()
    };
    Ok(load(&flags)?.config.control.socket.clone())
}
