//! Loading: the layers, merged in order, then typed, interpolated and validated.

use std::path::PathBuf;

use toml::Value;

use crate::env::{self, lookup};
use crate::error::{ConfigError, ConfigErrors};
use crate::file::{self, SEARCH_PATH};
use crate::flags::{self, Flags};
use crate::origin::Origin;
use crate::plugins::PluginSection;
use crate::schema::{Config, ControlConfig};
use crate::tree::Tree;
use crate::{extract, interpolate, plugins, validate};

/// Everything a configuration is made from. Nothing is read from the process: the caller
/// passes the environment and the effective uid.
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// The file given on the command line; it must exist. `None`: the first of `search` that
    /// exists, if any.
    pub file: Option<PathBuf>,
    /// Where to look for a file when `file` is `None`; [`Sources::new`] sets
    /// [`SEARCH_PATH`] (`./stackctl.toml`, then `/etc/stackctl/stackctl.toml`).
    pub search: Vec<PathBuf>,
    /// The environment, as (name, value) pairs (`std::env::vars_os()`, converted).
    pub env: Vec<(String, String)>,
    /// The command-line flags.
    pub flags: Flags,
    /// The effective uid, for the default control socket.
    pub euid: u32,
}

impl Sources {
    /// No file given (search the default places), no environment, no flags.
    pub fn new(euid: u32) -> Self {
        Self {
            file: None,
            search: SEARCH_PATH.iter().map(PathBuf::from).collect(),
            env: Vec::new(),
            flags: Flags::default(),
            euid,
        }
    }
}

/// A loaded configuration and where each of its values came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration: merged, interpolated, validated.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Things worth telling the user that are not errors (e.g. `--no-detector` with no detector
    /// service). Not printed by this crate.
    pub warnings: Vec<String>,
    /// The `[plugins.NAME]` sections, their host keys read and checked, in name order.
    pub plugins: Vec<PluginSection>,
    /// The merged values, before typing, with their origins.
    pub(crate) tree: Tree,
}

/// Loads the configuration: built-in defaults < file < legacy environment variables <
/// `STACKCTL_*` variables < flags < `--set`. On any error, returns all of them.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    let sets = flags::parse_sets(&sources.flags.sets, &mut errors);
    let file = file::locate(sources.file.as_deref(), &sources.search)
        .and_then(|found| found.map(|path| file::read(&path)).transpose());
    let file = match file {
        Ok(file) => file,
        Err(e) => {
            errors.insert(0, e.into());
            return Err(ConfigErrors::new(errors));
        }
    };

    let mut defaults = Config::default();
    let xdg = lookup(&sources.env, "XDG_RUNTIME_DIR");
    defaults.control.socket = ControlConfig::default_socket(sources.euid, xdg);
    let mut tree = match toml::Table::try_from(&defaults) {
        Ok(table) => Tree::new(table),
        Err(e) => {
            return Err(ConfigErrors::new(vec![ConfigError::Internal(
                e.to_string(),
            )]));
        }
    };
    if let Some(file) = &file {
        let origin = |path: &[String]| Origin::File {
            path: file.path.clone(),
            line: file.lines.get(path).copied(),
        };
        tree.merge(&[], Value::Table(file.table.clone()), &origin);
    }
    env::apply(&mut tree, &sources.env, &mut errors);
    let warnings = flags::apply(&mut tree, &sources.flags, &sets);

    let config = extract::extract(&mut tree, &mut errors).map(|mut config| {
        let failed = interpolate::interpolate(&mut config, &tree, &mut errors);
        validate::validate(&config, &tree, &failed, &mut errors);
        let plugins = plugins::sections(&config, &tree, &mut errors);
        (config, plugins)
    });
    match config {
        Some((config, plugins)) if errors.is_empty() => Ok(Loaded {
            config,
            file: file.map(|f| f.path),
            warnings,
            plugins,
            tree,
        }),
        _ => {
            if errors.is_empty() {
                errors.push(ConfigError::Internal(
                    "no configuration and no error".into(),
                ));
            }
            // Stable: errors without a key (file, variables, flags) first, then by key.
            errors.sort_by(|a, b| a.key().cmp(&b.key()));
            Err(ConfigErrors::new(errors))
        }
    }
}
