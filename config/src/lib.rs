//! stackctl's configuration: the schema, layered loading with provenance, interpolation and
//! validation.
//!
//! [`load`] merges, later winning:
//!
//! 1. the built-in defaults;
//! 2. the TOML file: [`Sources::file`], else the first of [`Sources::search`] that exists
//!    (`./stackctl.toml`, `/etc/stackctl/stackctl.toml`), else none;
//! 3. the environment: the legacy launch script's variables ([`LEGACY_ENV`]), then
//!    `STACKCTL_SECTION__KEY` variables;
//! 4. the command-line [`Flags`], then each `--set key.path=value`.
//!
//! It then types the result ([`Config`]), expands `{dotted.key}` references in the services'
//! fields, reads the plugin sections' host keys ([`PluginSection`]) and validates everything,
//! reporting **all** errors at once ([`ConfigErrors`]), each with its key, value and origin. A [`Loaded`] configuration can print itself as TOML
//! ([`Loaded::to_toml`]) and tell where each value came from ([`Loaded::explain`]).
//!
//! It reads nothing but the configuration file: the environment and the uid are inputs.
//!
//! ```
//! use stackctl_config::{load, Origin, Sources};
//!
//! let mut sources = Sources::new(1000);
//! sources.search.clear(); // no file, for this example
//! sources.env = vec![
//!     ("MONITOR_PORT".into(), "8090".into()),
//!     ("STACKCTL_SERVICES__WEB_MONITOR__COMMAND".into(), "{tools.uv}".into()),
//!     ("STACKCTL_SERVICES__WEB_MONITOR__ARGS".into(), r#"["--port={monitor.port}"]"#.into()),
//! ];
//! sources.flags.sets.push("tools.uv=/opt/uv".into());
//!
//! let loaded = load(&sources)?;
//! let monitor = &loaded.config.services["web_monitor"];
//! assert_eq!(monitor.command, "/opt/uv");
//! assert_eq!(monitor.args, ["--port=8090"]);
//! assert_eq!(loaded.origin("monitor.port"), Some(Origin::Env { var: "MONITOR_PORT".into() }));
//! assert_eq!(loaded.config.start_order().unwrap(), ["web_monitor"]);
//!
//! let mut bad = Sources::new(1000);
//! bad.search.clear();
//! bad.flags.sets.push("http.port=70000".into());
//! let errors = load(&bad).unwrap_err();
//! assert_eq!(errors.to_string(), "http.port = 70000: not a port (1..=65535), from flag --set http.port=70000");
//! # Ok::<(), stackctl_config::ConfigErrors>(())
//! ```

pub mod alias;
mod duration;
mod env;
mod error;
mod explain;
mod extract;
mod file;
mod flags;
mod graph;
mod interpolate;
mod load;
mod origin;
mod plugins;
mod port;
mod schema;
mod tree;
mod validate;

pub use env::{ENV_PREFIX, ENV_SEPARATOR, LEGACY_ENV};
pub use error::{ConfigError, ConfigErrors};
pub use explain::Explained;
pub use file::SEARCH_PATH;
pub use flags::Flags;
pub use graph::DependencyCycle;
pub use load::{Loaded, Sources, load};
pub use origin::Origin;
pub use plugins::{DEFAULT_QUEUE, MAX_QUEUE, PluginSection};
pub use schema::{
    Backoff, BuildCommand, BuildConfig, Config, ControlConfig, DETECTOR_SERVICE,
    DependencyCondition, DetectorConfig, HttpConfig, LegacyConfig, LogConfig, LogFormat,
    MONITOR_SERVICE, MetricsConfig, MonitorConfig, OnFailure, Probe, ProbeKind, ProfilingConfig,
    RecordingConfig, RestartPolicy, ServiceConfig, ShmGuard, Signal, SourceConfig, StreamingConfig,
    ToolsConfig, YoloModel,
};
