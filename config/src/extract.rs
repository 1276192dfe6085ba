//! From the merged tree to the typed [`Config`], collecting every error.
//!
//! serde stops at the first error, so the tree is deserialized again and again, with figment's
//! deserializer (it reports the key path of an error): each time, the error is recorded and
//! the bad value removed, so that its default applies, until the rest deserializes. A value
//! parsed from an environment variable or `--set` that has the wrong type gets one more chance
//! as the text it was written as.

use figment::error::Kind;
use toml::Value;

use crate::error::{ConfigError, suggest};
use crate::schema::{Config, quoted_list};
use crate::tree::{Tree, format_key};

/// More rounds than any real file has errors; a bound on the work, whatever the input.
const MAX_ROUNDS: usize = 1000;

/// The typed configuration, or `None` when not even the defaults can be had (see `errors`).
pub(crate) fn extract(tree: &mut Tree, errors: &mut Vec<ConfigError>) -> Option<Config> {
    for _ in 0..MAX_ROUNDS {
        let value = match figment::value::Value::serialize(tree.root()) {
            Ok(value) => value,
            Err(e) => {
                errors.push(ConfigError::Internal(e.to_string()));
                return None;
            }
        };
        let error = match value.deserialize::<Config>() {
            Ok(config) => return Some(config),
            Err(error) => error,
        };
        for e in error {
            let depth = tree.table_depth(&e.path);
            let node = &e.path[..depth];
            let whole = depth == e.path.len();
            if whole && matches!(e.kind, Kind::InvalidType(..)) && tree.fall_back_to_text(node) {
                continue;
            }
            if whole || is_list(node) {
                errors.push(describe(tree, &e.path, depth, &e.kind));
            } else {
                // serde takes a list for a struct (its fields in order); say what was meant.
                let table = Kind::InvalidType(figment::error::Actual::Seq, "a map".into());
                errors.push(describe(tree, node, depth, &table));
            }
            if !tree.remove(node) {
                return None;
            }
        }
    }
    errors.push(ConfigError::Internal("too many errors".into()));
    None
}

/// Whether the schema has a list at `path` (anything goes under `plugins`).
fn is_list(path: &[String]) -> bool {
    const LISTS: [&str; 6] = [
        "plugin_dirs",
        "cors_origins",
        "args",
        "build",
        "clean_shm",
        "exec",
    ];
    path.first().is_some_and(|k| k == "plugins")
        || path.last().is_some_and(|k| LISTS.contains(&k.as_str()))
}

/// The error for the value at `path` (through tables for `depth` segments).
fn describe(tree: &Tree, path: &[String], depth: usize, kind: &Kind) -> ConfigError {
    let key = format_key(path, depth);
    let value = tree
        .get(path)
        .map_or_else(|| "(missing)".to_owned(), value_text);
    let origin = tree.origin_near(path);
    match kind {
        Kind::UnknownField(field, expected) => {
            let hint = if key == "detector.model_path" {
                "; it is read-only, derived from detector.model_dir and detector.model".to_owned()
            } else {
                suggest(field, expected.iter().copied())
                    .map(|s| format!("; did you mean {s:?}?"))
                    .unwrap_or_default()
            };
            ConfigError::UnknownKey {
                key,
                value,
                hint,
                origin,
            }
        }
        kind => ConfigError::Invalid {
            key,
            value,
            problem: problem(kind),
            origin,
        },
    }
}

/// A value in TOML syntax, shortened if long.
pub(crate) fn value_text(value: &Value) -> String {
    const MAX: usize = 80;
    let text = match value {
        Value::Datetime(d) => d.to_string(),
        value => value.to_string(),
    };
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn problem(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(_, expected) => format!("expected {}", expected_text(expected)),
        Kind::InvalidLength(_, expected) => format!("expected {}", expected_text(expected)),
        Kind::InvalidValue(_, expected) => {
            format!("out of range, expected {}", expected_text(expected))
        }
        Kind::UnknownVariant(_, names) => format!("expected one of {}", quoted_list(names)),
        Kind::Message(message) => message.clone(),
        kind => kind.to_string(),
    }
}

/// serde's name for what was expected, in the configuration's words.
fn expected_text(expected: &str) -> String {
    let text = match expected {
        "u8" => "an integer in 0..=255",
        "u16" => "an integer in 0..=65535",
        "u32" => "an integer in 0..=4294967295",
        "u64" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "a sequence" => "a list",
        "a map" => "a table",
        "a boolean" => "true or false",
        e if e.starts_with("struct ") => "a table",
        e => e,
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::Origin;
    use crate::tree::split_key;

    fn extract_from(text: &str) -> (Option<Config>, Vec<String>) {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut tree = Tree::new(toml::Table::new());
        tree.merge(&[], Value::Table(table), &|_| Origin::Default);
        let mut errors = Vec::new();
        let config = extract(&mut tree, &mut errors);
        (config, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn collects_every_error_and_keeps_the_rest() {
        let (config, errors) = extract_from(
            r#"
            plugin_dirs = "x"
            [http]
            port = 0
            prot = 1
            [services.a]
            command = "a"
            args = ["ok", 3]
            stop_timeout = "soon"
            "#,
        );
        let config = config.unwrap();
        assert_eq!(config.services["a"].command, "a");
        assert_eq!(config.http.port, 8081);
        let mut errors = errors;
        errors.sort();
        assert_eq!(
            errors,
            [
                "http.port = 0: not a port (1..=65535), from default",
                r#"http.prot = 1: unknown key; did you mean "port"?, from default"#,
                r#"plugin_dirs = "x": expected a list, from default"#,
                r#"services.a.args[1] = 3: expected a string, from default"#,
                r#"services.a.stop_timeout = "soon": not a duration (e.g. "500ms", "10s"), from default"#,
            ]
        );
    }

    #[test]
    fn text_values_fall_back_to_strings() {
        let mut tree = Tree::new(toml::Table::new());
        tree.merge_text(&split_key("control.group"), "1000", &Origin::env("G"));
        tree.merge_text(&split_key("http.port"), "x", &Origin::env("P"));
        let mut errors = Vec::new();
        let config = extract(&mut tree, &mut errors).unwrap();
        assert_eq!(config.control.group.as_deref(), Some("1000"));
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            r#"http.port = "x": expected an integer, from env P"#
        );
    }
}
