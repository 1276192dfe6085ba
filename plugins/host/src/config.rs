//! A plugin's section as data (ABI 1.1 `stackctl_host.config`): the TOML text flattened into
//! dotted keys with typed values, owned by the host for the life of the instance.
#![allow(unsafe_code)] // `Send`/`Sync` for the table of raw pointers into owned strings.

use stackctl_plugin_abi as abi;
use toml::Value;

/// Why a section cannot be handed over as data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlatError {
    /// Not TOML (the configuration crate wrote it, so this means a bug upstream).
    #[error("the section is not TOML: {0}")]
    Toml(String),
    /// More values than the header allows.
    #[error(
        "more than {} values (the limit of the sink ABI)",
        abi::CONFIG_MAX_VALUES
    )]
    TooMany,
    /// Nested deeper than the header allows.
    #[error(
        "{key}: nested deeper than {} levels (the limit of the sink ABI)",
        abi::CONFIG_MAX_DEPTH
    )]
    TooDeep {
        /// The key where the limit was crossed.
        key: String,
    },
}

/// One flattened value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum FlatValue {
    /// A string; dates and times as their TOML text.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl std::fmt::Display for FlatValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(s) => write!(f, "{s:?}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A flattened section and the C view of it. The view points into `entries`' strings, which
/// never move once built (the vector is not touched again).
#[derive(Debug)]
pub struct FlatConfig {
    entries: Vec<(String, FlatValue)>,
    view: Vec<abi::ConfigValue>,
}

// SAFETY: `view` only points into `entries`' heap strings, which are immutable after `parse`;
// sharing or sending the whole shares or sends read-only data.
unsafe impl Send for FlatConfig {}
// SAFETY: as above.
unsafe impl Sync for FlatConfig {}

impl FlatConfig {
    /// Flattens `text` (the plugin's own keys as TOML).
    pub fn parse(text: &str) -> Result<Self, FlatError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| FlatError::Toml(e.message().to_owned()))?;
        let mut entries = Vec::new();
        for (key, value) in &table {
            flatten(key.clone(), value, 1, &mut entries)?;
        }
        let view = entries
            .iter()
            .map(|(key, value)| {
                let (value_type, string, integer, number) = match value {
                    FlatValue::String(s) => (abi::value_type::STRING, abi::Str::new(s), 0, 0.0),
                    FlatValue::Integer(i) => {
                        (abi::value_type::INTEGER, abi::Str::EMPTY, *i, *i as f64)
                    }
                    FlatValue::Float(x) => (abi::value_type::FLOAT, abi::Str::EMPTY, 0, *x),
                    FlatValue::Bool(b) => {
                        (abi::value_type::BOOL, abi::Str::EMPTY, i64::from(*b), 0.0)
                    }
                };
                abi::ConfigValue {
                    key: abi::Str::new(key),
                    value_type,
                    reserved: 0,
                    string,
                    integer,
                    number,
                }
            })
            .collect();
        Ok(Self { entries, view })
    }

    /// The entries, in the order handed to the plugin.
    pub fn entries(&self) -> &[(String, FlatValue)] {
        &self.entries
    }

    /// The value of `key`, if the section has it.
    pub fn get(&self, key: &str) -> Option<&FlatValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The C view: a pointer (null when empty) and a count, valid while `self` is.
    pub fn view(&self) -> (*const abi::ConfigValue, usize) {
        if self.view.is_empty() {
            (std::ptr::null(), 0)
        } else {
            (self.view.as_ptr(), self.view.len())
        }
    }
}

fn flatten(
    key: String,
    value: &Value,
    depth: usize,
    out: &mut Vec<(String, FlatValue)>,
) -> Result<(), FlatError> {
    if depth > abi::CONFIG_MAX_DEPTH {
        return Err(FlatError::TooDeep { key });
    }
    let leaf = match value {
        Value::String(s) => FlatValue::String(s.clone()),
        Value::Integer(i) => FlatValue::Integer(*i),
        Value::Float(x) => FlatValue::Float(*x),
        Value::Boolean(b) => FlatValue::Bool(*b),
        Value::Datetime(d) => FlatValue::String(d.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{key}.{i}"), item, depth + 1, out)?;
            }
            return Ok(());
        }
        Value::Table(table) => {
            for (k, item) in table {
                flatten(format!("{key}.{k}"), item, depth + 1, out)?;
            }
            return Ok(());
        }
    };
    if out.len() == abi::CONFIG_MAX_VALUES {
        return Err(FlatError::TooMany);
    }
    out.push((key, leaf));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> Vec<(String, FlatValue)> {
        let mut e = FlatConfig::parse(text)
            .expect("flattens")
            .entries()
            .to_vec();
        e.sort_by(|a, b| a.0.cmp(&b.0));
        e
    }

    #[test]
    fn tables_and_arrays_become_dotted_keys_with_typed_values() {
        let text = r#"
output = "/tmp/x"
window = 3
ratio = 0.5
on = true
when = 1979-05-27T07:32:00Z
bind = ["a", "b"]
empty = []
limits = { max = 10, nested = { deep = false } }
[[cams]]
name = "day"
[[cams]]
name = "night"
"#;
        let s = |v: &str| FlatValue::String(v.into());
        let want = vec![
            ("bind.0".into(), s("a")),
            ("bind.1".into(), s("b")),
            ("cams.0.name".into(), s("day")),
            ("cams.1.name".into(), s("night")),
            ("limits.max".into(), FlatValue::Integer(10)),
            ("limits.nested.deep".into(), FlatValue::Bool(false)),
            ("on".into(), FlatValue::Bool(true)),
            ("output".into(), s("/tmp/x")),
            ("ratio".into(), FlatValue::Float(0.5)),
            ("when".into(), s("1979-05-27T07:32:00Z")),
            ("window".into(), FlatValue::Integer(3)),
        ];
        assert_eq!(flat(text), want);
    }

    #[test]
    fn the_c_view_matches_the_entries() {
        let config = FlatConfig::parse("a = 7\nb = \"x\"\nc = 1.5\nd = true\n").unwrap();
        let (ptr, len) = config.view();
        assert_eq!(len, 4);
        // SAFETY: `len` entries at `ptr`, alive with `config`.
        let view = unsafe { std::slice::from_raw_parts(ptr, len) };
        for v in view {
            // SAFETY: keys point into `config`'s strings.
            let key = unsafe { std::slice::from_raw_parts(v.key.ptr, v.key.len) };
            match key {
                b"a" => {
                    assert_eq!(v.value_type, abi::value_type::INTEGER);
                    assert_eq!((v.integer, v.number), (7, 7.0));
                }
                b"b" => {
                    assert_eq!(v.value_type, abi::value_type::STRING);
                    // SAFETY: as above.
                    let s = unsafe { std::slice::from_raw_parts(v.string.ptr, v.string.len) };
                    assert_eq!(s, b"x");
                }
                b"c" => assert_eq!((v.value_type, v.number), (abi::value_type::FLOAT, 1.5)),
                b"d" => assert_eq!((v.value_type, v.integer), (abi::value_type::BOOL, 1)),
                other => panic!("unexpected key {other:?}"),
            }
        }
        assert_eq!(FlatConfig::parse("").unwrap().view(), (std::ptr::null(), 0));
    }

    #[test]
    fn sections_beyond_the_limits_are_refused() {
        let many: String = (0..=abi::CONFIG_MAX_VALUES)
            .map(|i| format!("k{i} = {i}\n"))
            .collect();
        assert_eq!(FlatConfig::parse(&many).err(), Some(FlatError::TooMany));
        let deep = format!("a = {}1{}", "[".repeat(20), "]".repeat(20));
        assert!(matches!(
            FlatConfig::parse(&deep),
            Err(FlatError::TooDeep { .. })
        ));
        assert!(matches!(FlatConfig::parse("a = "), Err(FlatError::Toml(_))));
    }
}
