//! Finding and reading the configuration file, keeping the line of every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::ConfigError;
use crate::tree::KeyPath;

/// Where the file is looked for when none is given, in order.
pub const SEARCH_PATH: [&str; 2] = ["stackctl.toml", "/etc/stackctl/stackctl.toml"];

/// The file's values, and the 1-based line of each key.
#[derive(Debug)]
pub(crate) struct FileLayer {
    pub(crate) path: PathBuf,
    pub(crate) table: Table,
    pub(crate) lines: BTreeMap<KeyPath, usize>,
}

/// A file that cannot be found, read or parsed (small, unlike [`ConfigError`]).
#[derive(Debug)]
pub(crate) struct FileError {
    path: PathBuf,
    message: String,
}

impl From<FileError> for ConfigError {
    fn from(e: FileError) -> Self {
        Self::File {
            path: e.path,
            message: e.message,
        }
    }
}

/// The file to read: `explicit` (which must exist), else the first of `search` that exists,
/// else none.
pub(crate) fn locate(
    explicit: Option<&Path>,
    search: &[PathBuf],
) -> Result<Option<PathBuf>, FileError> {
    let error = |path: &Path, message: String| FileError {
        path: path.to_owned(),
        message,
    };
    if let Some(path) = explicit {
        return match path.try_exists() {
            Ok(true) => Ok(Some(path.to_owned())),
            Ok(false) => Err(error(path, "no such configuration file".into())),
            Err(e) => Err(error(path, e.to_string())),
        };
    }
    for path in search {
        match path.try_exists() {
            Ok(true) => return Ok(Some(path.clone())),
            Ok(false) => {}
            Err(e) => return Err(error(path, e.to_string())),
        }
    }
    Ok(None)
}

/// Reads and parses the file.
pub(crate) fn read(path: &Path) -> Result<FileLayer, FileError> {
    let error = |message: String| FileError {
        path: path.to_owned(),
        message,
    };
    let text = read_bounded(path).map_err(error)?;
    let (table, lines) = parse(&text).map_err(error)?;
    Ok(FileLayer {
        path: path.to_owned(),
        table,
        lines,
    })
}

/// Largest configuration file read: the board's is about 10 kB, and a name like `/dev/zero`
/// must end in an error, not in reading until memory runs out.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads at most [`MAX_FILE_BYTES`] (+1, to tell a file of exactly that size from a larger
/// one) as UTF-8.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err("larger than 1 MiB, the limit for a configuration file".into());
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// Parses TOML text into a table and the line of each key (a syntax error names its line and
/// column).
pub(crate) fn parse(text: &str) -> Result<(Table, BTreeMap<KeyPath, usize>), String> {
    let lines = LineIndex::new(text);
    let doc = toml_edit::ImDocument::parse(text).map_err(|e| {
        let at = e.span().map(|s| lines.line_col(s.start));
        let message = e.message().trim().replace('\n', "; ");
        match at {
            Some((line, col)) => format!("line {line} column {col}: {message}"),
            None => message,
        }
    })?;
    let mut walker = Walker {
        lines,
        found: BTreeMap::new(),
    };
    let table = walker.table(doc.as_table(), &mut Vec::new());
    Ok((table, walker.found))
}

/// Byte offset → line and column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    /// 1-based line and (byte) column.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        (line, offset.saturating_sub(start) + 1)
    }
}

/// Converts `toml_edit` items to `toml` values, noting the line of every key on the way.
struct Walker {
    lines: LineIndex,
    found: BTreeMap<KeyPath, usize>,
}

impl Walker {
    fn table(&mut self, t: &toml_edit::Table, path: &mut KeyPath) -> Table {
        let entries = t
            .iter()
            .map(|(k, item)| (k, t.key(k).and_then(|k| k.span()), item));
        let mut out = Table::new();
        for (key, key_span, item) in entries {
            path.push(key.to_owned());
            let value = self.item(item, path);
            self.note(path, key_span.or_else(|| item.span()));
            if let Some(value) = value {
                out.insert(key.to_owned(), value);
            }
            path.pop();
        }
        out
    }

    /// Notes the line of `span`, or, for a key without one (an implicit table such as
    /// `services` in `[services.web]`), the first line of what it holds.
    fn note(&mut self, path: &KeyPath, span: Option<std::ops::Range<usize>>) {
        let line = match span {
            Some(span) => Some(self.lines.line_col(span.start).0),
            None => self
                .found
                .range(path.clone()..)
                .take_while(|(k, _)| k.starts_with(path))
                .map(|(_, line)| *line)
                .min(),
        };
        if let Some(line) = line {
            self.found.insert(path.clone(), line);
        }
    }

    fn item(&mut self, item: &toml_edit::Item, path: &mut KeyPath) -> Option<Value> {
        match item {
            toml_edit::Item::None => None,
            toml_edit::Item::Value(v) => Some(self.value(v, path)),
            toml_edit::Item::Table(t) => Some(Value::Table(self.table(t, path))),
            toml_edit::Item::ArrayOfTables(a) => {
                // Lines are noted for keys reached through tables only.
                let mut scratch = Vec::new();
                Some(Value::Array(
                    a.iter()
                        .map(|t| Value::Table(self.table(t, &mut scratch)))
                        .collect(),
                ))
            }
        }
    }

    fn value(&mut self, v: &toml_edit::Value, path: &mut KeyPath) -> Value {
        use toml_edit::Value as V;
        match v {
            V::String(s) => Value::String(s.value().clone()),
            V::Integer(i) => Value::Integer(*i.value()),
            V::Float(f) => Value::Float(*f.value()),
            V::Boolean(b) => Value::Boolean(*b.value()),
            V::Datetime(d) => Value::Datetime(*d.value()),
            V::Array(a) => Value::Array(a.iter().map(|v| self.value(v, &mut Vec::new())).collect()),
            V::InlineTable(t) => {
                let mut out = Table::new();
                for (key, value) in t.iter() {
                    path.push(key.to_owned());
                    let converted = self.value(value, path);
                    let span = t.key(key).and_then(|k| k.span()).or_else(|| value.span());
                    self.note(path, span);
                    out.insert(key.to_owned(), converted);
                    path.pop();
                }
                Value::Table(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::split_key;

    #[test]
    fn lines_of_keys() {
        let text = r#"plugin_dirs = []

[http]
port = 8082
cors_origins = [
  "a",
]

[services.web]
command = "x"
backoff = { initial = "1s", max = "2s" }

ready.tcp = "h:1"

[services.web.env]
A = "b"
"#;
        let (table, lines) = parse(text).unwrap();
        assert_eq!(table["http"]["port"].as_integer(), Some(8082));
        let cases = [
            ("plugin_dirs", 1),
            ("http", 3),
            ("http.port", 4),
            ("http.cors_origins", 5),
            ("services", 9),
            ("services.web", 9),
            ("services.web.command", 10),
            ("services.web.backoff", 11),
            ("services.web.backoff.initial", 11),
            ("services.web.backoff.max", 11),
            ("services.web.ready", 13),
            ("services.web.ready.tcp", 13),
            ("services.web.env", 15),
            ("services.web.env.A", 16),
        ];
        for (key, line) in cases {
            assert_eq!(lines.get(&split_key(key)), Some(&line), "{key}");
        }
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse("a = 1\nb = \n").unwrap_err();
        assert!(err.starts_with("line 2 column 5: "), "{err}");
        let err = parse("a = 1\na = 2\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn locate_prefers_explicit_then_search_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&b, "").unwrap();
        assert_eq!(
            locate(None, &[a.clone(), b.clone()]).unwrap(),
            Some(b.clone())
        );
        assert_eq!(locate(None, std::slice::from_ref(&a)).unwrap(), None);
        assert_eq!(locate(Some(&b), &[]).unwrap(), Some(b));
        let err = ConfigError::from(locate(Some(&a), &[]).unwrap_err()).to_string();
        assert!(err.contains("a.toml: no such configuration file"), "{err}");
    }
}
