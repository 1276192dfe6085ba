//! `[plugins.NAME]`: each section's host keys (`path`, `enabled`, `required`, `queue`,
//! `route_prefix`), read and checked like every other key, and the plugin's own keys, passed to it as
//! TOML.
//!
//! Two options of the legacy launch script reach sinks that took over from its streaming
//! server: `streaming.max_clients` becomes the streaming sink's `max_clients`, `recording.path`
//! the recording sink's `dir`. A section that does not set the key gets the top-level value; one
//! that does is overridden only when an environment variable or a flag set the top-level key
//! (`STREAMING_MAX_CLIENTS`, `--max-clients`, `RECORDING_PATH`), because those beat the file.
//! `--no-streaming` (`streaming.enabled = false`) switches the `streaming` plugin off.

use toml::{Table, Value};

use crate::error::ConfigError;
use crate::extract::value_text;
use crate::origin::Origin;
use crate::schema::Config;
use crate::tree::{Tree, split_key};

/// A plugin's queue length when its section has no `queue`: two seconds at 30 fps.
pub const DEFAULT_QUEUE: usize = 60;
/// The longest queue a section may ask for, in frames.
pub const MAX_QUEUE: usize = 10_000;

/// Keys of a `[plugins.NAME]` table that are the host's, not the plugin's.
const HOST_KEYS: [&str; 6] = [
    "path",
    "enabled",
    "required",
    "queue",
    "name",
    "route_prefix",
];

/// The longest `route_prefix` accepted, in bytes.
const MAX_ROUTE_PREFIX: usize = 64;

/// One `[plugins.NAME]` section, split into the host's keys and the plugin's own.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSection {
    /// Its name: the `NAME` of `[plugins.NAME]`.
    pub name: String,
    /// `path`: the plugin's file, a bare file name (looked up in the plugin directories) or a
    /// path.
    pub path: String,
    /// `enabled` (default true), false under `--no-streaming` for the `streaming` plugin.
    pub enabled: bool,
    /// `required` (default false): `up` refuses to start without it.
    pub required: bool,
    /// `queue`: frames its bus subscription holds ([`DEFAULT_QUEUE`], 1 to [`MAX_QUEUE`]).
    pub queue: usize,
    /// `route_prefix`: a path prefix such as `/clips` put in front of every route the plugin declares,
    /// so that two instances of one library can both serve HTTP (`/clips/events` reaches the
    /// second instance as `/events`). `None`: its routes as declared.
    pub route_prefix: Option<String>,
    /// Every other key, the legacy ones filled in: the plugin's own configuration.
    pub own: Table,
}

impl PluginSection {
    /// The plugin's own keys as TOML text, as the plugin receives them.
    pub fn own_toml(&self) -> String {
        // A table of TOML values always serializes; an empty string would be read as "no keys".
        toml::to_string(&self.own).unwrap_or_default()
    }
}

/// The value of a top-level key, as a plugin key.
type LegacyValue = fn(&Config) -> Value;

/// Keys the legacy script's options set at the top level, handed to the sink that took over
/// from its streaming server: `(plugin, its key, top-level key, the value)`.
const LEGACY_KEYS: [(&str, &str, &str, LegacyValue); 2] = [
    ("streaming", "max_clients", "streaming.max_clients", |c| {
        Value::Integer(c.streaming.max_clients.into())
    }),
    ("recording", "dir", "recording.path", |c| {
        Value::String(c.recording.path.to_string_lossy().into_owned())
    }),
];

/// Reads every plugin section of `config`, adding an error to `errors` for each bad host key
/// (with its origin in `tree`). A section whose `path` is bad is left out.
pub(crate) fn sections(
    config: &Config,
    tree: &Tree,
    errors: &mut Vec<ConfigError>,
) -> Vec<PluginSection> {
    let mut out = Vec::new();
    for (name, table) in &config.plugins {
        let table = with_legacy_keys(config, tree, name, table);
        let mut key = Key { name, tree, errors };
        let path = match table.get("path") {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            Some(other) => {
                key.invalid("path", other, "expected the plugin's file name or path");
                continue;
            }
            None => {
                key.missing(
                    "path",
                    &format!("the plugin's file, e.g. \"libsink_{name}.so\""),
                );
                continue;
            }
        };
        let queue = match table.get("queue") {
            None => DEFAULT_QUEUE,
            Some(Value::Integer(n)) if (1..=MAX_QUEUE as i64).contains(n) => *n as usize,
            Some(other) => {
                let problem = format!("expected a number of frames, 1 to {MAX_QUEUE}");
                key.invalid("queue", other, &problem);
                DEFAULT_QUEUE
            }
        };
        let enabled = key.boolean(&table, "enabled", true);
        // `--no-streaming` (streaming.enabled = false) switches the streaming sink off.
        let enabled = enabled && (name != "streaming" || config.streaming.enabled);
        let required = key.boolean(&table, "required", false);
        let route_prefix = match table.get("route_prefix") {
            None => None,
            Some(Value::String(m)) if prefix_problem(m).is_none() => Some(m.clone()),
            Some(other) => {
                let problem = match other {
                    Value::String(m) => prefix_problem(m).unwrap_or_default(),
                    _ => "expected a path prefix such as \"/clips\"".to_owned(),
                };
                key.invalid("route_prefix", other, &problem);
                None
            }
        };
        let own = table
            .iter()
            .filter(|(k, _)| !HOST_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.push(PluginSection {
            name: name.clone(),
            path,
            enabled,
            required,
            queue,
            route_prefix,
            own,
        });
    }
    out
}

/// Why `route_prefix` cannot be a route prefix, if it cannot: it must be `/` followed by one or more
/// segments of letters, digits, `-`, `_`, `.` and `~` (no `.` or `..` segment), without a
/// trailing `/`.
fn prefix_problem(prefix: &str) -> Option<String> {
    let expected = "expected a path prefix such as \"/clips\": `/` and segments of letters, \
                    digits, `-`, `_`, `.`, `~`, without a trailing `/`";
    let Some(rest) = prefix.strip_prefix('/') else {
        return Some(expected.to_owned());
    };
    if prefix.len() > MAX_ROUTE_PREFIX {
        return Some(format!("at most {MAX_ROUTE_PREFIX} bytes"));
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    };
    (!rest.split('/').all(segment_ok)).then(|| expected.to_owned())
}

/// The section with the legacy top-level keys filled in (see the module documentation).
fn with_legacy_keys(config: &Config, tree: &Tree, name: &str, table: &Table) -> Table {
    let mut table = table.clone();
    for (plugin, key, top, value) in LEGACY_KEYS {
        if plugin != name {
            continue;
        }
        let overriding = matches!(
            tree.origin_exact(&split_key(top)),
            Some(Origin::Env { .. } | Origin::Flag { .. })
        );
        if overriding || !table.contains_key(key) {
            table.insert(key.to_owned(), value(config));
        }
    }
    table
}

/// Reports errors about the host keys of one section.
struct Key<'a> {
    name: &'a str,
    tree: &'a Tree,
    errors: &'a mut Vec<ConfigError>,
}

impl Key<'_> {
    fn path(&self, key: &str) -> Vec<String> {
        vec!["plugins".into(), self.name.into(), key.into()]
    }

    fn key(&self, key: &str) -> String {
        crate::tree::format_key(&self.path(key), 3)
    }

    fn invalid(&mut self, key: &str, value: &Value, problem: &str) {
        self.errors.push(ConfigError::Invalid {
            key: self.key(key),
            value: value_text(value),
            problem: problem.to_owned(),
            origin: self.tree.origin_near(&self.path(key)),
        });
    }

    fn missing(&mut self, key: &str, what: &str) {
        self.errors.push(ConfigError::Missing {
            key: self.key(key),
            what: what.to_owned(),
            origin: self.tree.origin_near(&self.path(key)),
        });
    }

    fn boolean(&mut self, table: &Table, key: &str, default: bool) -> bool {
        match table.get(key) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.invalid(key, other, "expected true or false");
                default
            }
        }
    }
}
