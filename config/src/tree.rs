//! The merged configuration tree, with the origin of every value.
//!
//! Each layer (defaults, file, environment, flags) is merged into one `toml` table: tables merge
//! key by key, anything else (scalars, arrays) is replaced whole. The tree remembers which layer
//! set each node last, and, for values parsed from text (environment variables, `--set`), the
//! text itself, so a value that parsed as a number where the schema wants a string can fall
//! back to the text.

use std::collections::BTreeMap;

use toml::{Table, Value};

use crate::alias;
use crate::origin::Origin;

/// A path of keys from the root: `["services", "web", "args"]`.
pub(crate) type KeyPath = Vec<String>;

/// The most levels a key given by name (environment variable, `--set`) may have; a bound on
/// the nesting built from one argument, far above the schema's four.
pub(crate) const MAX_KEY_DEPTH: usize = 32;

/// The merged tree with provenance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    root: Table,
    /// The origin of every node set by a layer other than the defaults.
    origins: BTreeMap<KeyPath, Origin>,
    /// The text a value was parsed from (environment and `--set` values).
    raw: BTreeMap<KeyPath, String>,
}

impl Tree {
    /// A tree holding the built-in defaults.
    pub(crate) fn new(defaults: Table) -> Self {
        Self {
            root: defaults,
            ..Self::default()
        }
    }

    /// The merged values.
    pub(crate) fn root(&self) -> &Table {
        &self.root
    }

    /// The value at `path`; segments may index into arrays.
    pub(crate) fn get(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut node = self.root.get(first)?;
        for seg in rest {
            node = match node {
                Value::Table(t) => t.get(seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// How many leading segments of `path` go through tables (the rest index into an array).
    pub(crate) fn table_depth(&self, path: &[String]) -> usize {
        let mut table = &self.root;
        for (i, seg) in path.iter().enumerate() {
            match table.get(seg) {
                Some(Value::Table(t)) => table = t,
                Some(_) => return i + 1,
                None => return path.len(),
            }
        }
        path.len()
    }

    /// Merges `value` at `path`: tables key by key, anything else replaces what was there.
    /// `origin` gives the origin of each node set.
    pub(crate) fn merge(
        &mut self,
        path: &[String],
        value: Value,
        origin: &dyn Fn(&[String]) -> Origin,
    ) {
        if let Some(new) = alias::target(path) {
            let at = origin(path);
            return self.merge(&new, value, &|_| at.clone());
        }
        match value {
            Value::Table(src)
                if path.is_empty()
                    || matches!(self.get(path), Some(Value::Table(_)))
                    || alias::is_parent(path) =>
            {
                // Old names first, so that the new name wins within one layer.
                let (old, new): (Vec<_>, Vec<_>) = src.into_iter().partition(|(key, _)| {
                    let mut p = path.to_vec();
                    p.push(key.clone());
                    alias::target(&p).is_some() || alias::is_parent(&p)
                });
                for (key, child) in old.into_iter().chain(new) {
                    let mut child_path = path.to_vec();
                    child_path.push(key);
                    self.merge(&child_path, child, origin);
                }
            }
            value => self.replace(path, value, origin),
        }
    }

    /// Merges the value written as `text` (parsed as a TOML value when it parses, else taken
    /// as a string) at `path`, with one origin.
    pub(crate) fn merge_text(&mut self, path: &[String], text: &str, origin: &Origin) {
        let path = &alias::target(path).unwrap_or_else(|| path.to_vec());
        let value = parse_value(text);
        let parsed = !value.is_str();
        self.merge(path, value, &|_| origin.clone());
        if parsed {
            self.raw.insert(path.to_vec(), text.to_owned());
        }
    }

    /// If the value at `path` was parsed from text that is not a string, makes it that text.
    /// Returns whether it did.
    pub(crate) fn fall_back_to_text(&mut self, path: &[String]) -> bool {
        let Some(text) = self.raw.remove(path) else {
            return false;
        };
        let origin = self.origin_near(path);
        self.replace(path, Value::String(text), &|_| origin.clone());
        true
    }

    fn replace(&mut self, path: &[String], value: Value, origin: &dyn Fn(&[String]) -> Origin) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let Self { root, origins, raw } = self;
        let mut table = root;
        for (i, seg) in parents.iter().enumerate() {
            if !matches!(table.get(seg), Some(Value::Table(_))) {
                let here = &path[..=i];
                forget(origins, raw, here);
                origins.insert(here.to_vec(), origin(here));
                table.insert(seg.clone(), Value::Table(Table::new()));
            }
            table = match table.get_mut(seg) {
                Some(Value::Table(t)) => t,
                _ => return,
            };
        }
        forget(origins, raw, path);
        record(origins, &mut path.to_vec(), &value, origin);
        table.insert(last.clone(), value);
    }

    /// Removes the node at `path` (through tables only). Returns whether there was one.
    pub(crate) fn remove(&mut self, path: &[String]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut table = &mut self.root;
        for seg in parents {
            table = match table.get_mut(seg) {
                Some(Value::Table(t)) => t,
                _ => return false,
            };
        }
        let removed = table.remove(last).is_some();
        forget(&mut self.origins, &mut self.raw, path);
        removed
    }

    /// The origin recorded for exactly `path`, if a layer other than the defaults set it.
    pub(crate) fn origin_exact(&self, path: &[String]) -> Option<&Origin> {
        self.origins.get(path)
    }

    /// The origin of `path` or of its nearest ancestor with one; `Default` if none has.
    pub(crate) fn origin_near(&self, path: &[String]) -> Origin {
        (0..=path.len())
            .rev()
            .find_map(|n| self.origins.get(&path[..n]))
            .cloned()
            .unwrap_or(Origin::Default)
    }
}

/// Forgets the origins and texts of `path` and everything under it.
fn forget(
    origins: &mut BTreeMap<KeyPath, Origin>,
    raw: &mut BTreeMap<KeyPath, String>,
    path: &[String],
) {
    origins.retain(|k, _| !k.starts_with(path));
    raw.retain(|k, _| !k.starts_with(path));
}

/// Records the origin of the node at `path` and of every table key under it.
fn record(
    origins: &mut BTreeMap<KeyPath, Origin>,
    path: &mut KeyPath,
    value: &Value,
    origin: &dyn Fn(&[String]) -> Origin,
) {
    origins.insert(path.clone(), origin(path));
    if let Value::Table(t) = value {
        for (key, child) in t {
            path.push(key.clone());
            record(origins, path, child, origin);
            path.pop();
        }
    }
}

/// Parses `text` as a TOML value (`8082`, `true`, `["a", "b"]`, `"quoted"`), or, when it is
/// not one, takes it as a string.
pub(crate) fn parse_value(text: &str) -> Value {
    match toml::from_str::<Table>(&format!("v = {text}")) {
        Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or_else(|| Value::String(text.into())),
        _ => Value::String(text.into()),
    }
}

/// Formats a key path for people: `services.web.args[1]`, quoting keys that are not bare.
pub(crate) fn format_key(path: &[String], table_depth: usize) -> String {
    let mut out = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i >= table_depth {
            out.push_str(&format!("[{seg}]"));
            continue;
        }
        if i > 0 {
            out.push('.');
        }
        let bare = !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if bare {
            out.push_str(seg);
        } else {
            out.push_str(&Value::String(seg.clone()).to_string());
        }
    }
    out
}

/// Splits a dotted key (`services.web.enabled`) into a path.
pub(crate) fn split_key(key: &str) -> KeyPath {
    key.split('.').map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(key: &str) -> KeyPath {
        split_key(key)
    }

    #[test]
    fn parse_value_table() {
        let cases = [
            ("8082", Value::Integer(8082)),
            ("0.5", Value::Float(0.5)),
            ("true", Value::Boolean(true)),
            ("v11n", Value::String("v11n".into())),
            ("0.0.0.0", Value::String("0.0.0.0".into())),
            (
                "/pet_camera_stream",
                Value::String("/pet_camera_stream".into()),
            ),
            ("\"quoted\"", Value::String("quoted".into())),
            ("", Value::String(String::new())),
            ("1\nx = 2", Value::String("1\nx = 2".into())),
            ("[\"a\", \"b\"]", Value::Array(vec!["a".into(), "b".into()])),
        ];
        for (text, want) in cases {
            assert_eq!(parse_value(text), want, "{text:?}");
        }
    }

    #[test]
    fn merge_records_origins_and_replaces_subtrees() {
        let defaults: Table = toml::from_str("[http]\nport = 8081\nhost = \"0.0.0.0\"").unwrap();
        let mut tree = Tree::new(defaults);
        assert_eq!(tree.origin_exact(&path("http.port")), None);
        tree.merge_text(&path("http.port"), "8082", &Origin::env("STREAMING_PORT"));
        assert_eq!(tree.get(&path("http.port")), Some(&Value::Integer(8082)));
        assert_eq!(
            tree.origin_near(&path("http.port")),
            Origin::env("STREAMING_PORT")
        );
        assert_eq!(tree.origin_near(&path("http.host")), Origin::Default);

        let file: Table = toml::from_str("[services.web]\ncommand = \"x\"").unwrap();
        tree.merge(&[], Value::Table(file), &|p| Origin::File {
            path: "f.toml".into(),
            line: Some(p.len()),
        });
        assert_eq!(
            tree.origin_exact(&path("services.web.command")),
            Some(&Origin::File {
                path: "f.toml".into(),
                line: Some(3)
            })
        );
        // A scalar replaces a table and forgets the origins under it.
        tree.merge_text(&path("services.web"), "1", &Origin::flag("--set"));
        assert_eq!(tree.origin_exact(&path("services.web.command")), None);
        assert!(tree.fall_back_to_text(&path("services.web")));
        assert_eq!(
            tree.get(&path("services.web")),
            Some(&Value::String("1".into()))
        );
        assert!(tree.remove(&path("services.web")));
        assert!(!tree.remove(&path("services.web")));
    }

    #[test]
    fn keys_are_formatted_for_people() {
        let p = vec!["services".into(), "a.b".into(), "args".into(), "1".into()];
        assert_eq!(format_key(&p, 3), "services.\"a.b\".args[1]");
        assert_eq!(format_key(&path("http.port"), 2), "http.port");
    }
}
