//! What `stackctl config` prints: the effective configuration, and where each value came from.

use toml::{Table, Value};

use crate::interpolate::escape_templates;
use crate::load::Loaded;
use crate::origin::Origin;
use crate::tree::{KeyPath, format_key, split_key};

/// One value of the effective configuration and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The dotted key: `services.web_monitor.args`.
    pub key: String,
    /// The value in TOML syntax, after interpolation: `["--port=8080"]`.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

const MODEL_PATH: &str = "detector.model_path";

impl Loaded {
    /// The effective configuration as TOML, after interpolation, every default written out.
    /// Loading it as a file (with no environment or flags) gives the same [`crate::Config`];
    /// braces in service fields are doubled for that reason. `detector.model_path` is
    /// read-only and not written.
    pub fn to_toml(&self) -> String {
        let mut config = self.config.clone();
        escape_templates(&mut config);
        toml::to_string(&config)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }

    /// Every value of the effective configuration (lists count as one value, empty tables as
    /// one), in key order, with its origin; `detector.model_path` included.
    pub fn explain(&self) -> Vec<Explained> {
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.explain_table(&self.effective(), &mut path, &mut out);
        out
    }

    /// Where the value at `key` (dotted: `http.port`, `services.web`) came from; `None` if the
    /// effective configuration has no such key.
    pub fn origin(&self, key: &str) -> Option<Origin> {
        if key == MODEL_PATH {
            return Some(model_path_origin());
        }
        let path = split_key(key);
        let mut node = &Value::Table(self.effective());
        for seg in &path {
            node = node.as_table()?.get(seg)?;
        }
        Some(self.origin_of(&path))
    }

    fn effective(&self) -> Table {
        let mut table = Table::try_from(&self.config).unwrap_or_default();
        if let Some(Value::Table(detector)) = table.get_mut("detector") {
            let model_path = self
                .config
                .detector
                .model_path()
                .to_string_lossy()
                .into_owned();
            detector.insert("model_path".into(), Value::String(model_path));
        }
        table
    }

    fn origin_of(&self, path: &[String]) -> Origin {
        self.tree
            .origin_exact(path)
            .cloned()
            .unwrap_or(Origin::Default)
    }

    fn explain_table(&self, table: &Table, path: &mut KeyPath, out: &mut Vec<Explained>) {
        for (key, value) in table {
            path.push(key.clone());
            match value {
                Value::Table(t) if !t.is_empty() => self.explain_table(t, path, out),
                value => {
                    let key = format_key(path, path.len());
                    let origin = match key.as_str() {
                        MODEL_PATH => model_path_origin(),
                        _ => self.origin_of(path),
                    };
                    out.push(Explained {
                        key,
                        value: value.to_string(),
                        origin,
                    });
                }
            }
            path.pop();
        }
    }
}

fn model_path_origin() -> Origin {
    Origin::Derived {
        from: vec!["detector.model_dir".into(), "detector.model".into()],
    }
}
