//! `{dotted.key}` references in service fields.
//!
//! After merging, the strings of `services.*.{command, args, env values, cwd, build, ready and
//! liveness targets, clean_shm}` may contain `{dotted.key}`, replaced by that scalar of the
//! merged configuration (string, integer, float, boolean; `detector.model_path` included).
//! `{{` and `}}` are literal braces. References into `services` are not allowed (a service's
//! fields are templates themselves).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use toml::Value;

use crate::error::{ConfigError, suggest};
use crate::extract::value_text;
use crate::schema::{BuildCommand, Config, ProbeKind, ServiceConfig};
use crate::tree::{KeyPath, Tree, format_key};

/// A template field of a service: its path from the root, and how many of its segments name
/// table keys (the rest index into lists).
pub(crate) struct Field {
    pub(crate) path: KeyPath,
    pub(crate) depth: usize,
}

impl Field {
    /// `services.web.args[1]`.
    pub(crate) fn key(&self) -> String {
        format_key(&self.path, self.depth)
    }
}

/// Calls `f` on every template string of service `name`.
pub(crate) fn visit_templates(
    name: &str,
    s: &mut ServiceConfig,
    f: &mut dyn FnMut(Field, &mut String),
) {
    let field = |keys: &[&str], indices: &[usize]| {
        let mut path: KeyPath = ["services", name]
            .iter()
            .chain(keys)
            .map(|k| (*k).to_owned())
            .collect();
        let depth = path.len();
        path.extend(indices.iter().map(usize::to_string));
        Field { path, depth }
    };
    let path_buf = |p: &mut PathBuf, field: Field, f: &mut dyn FnMut(Field, &mut String)| {
        let mut text = p.to_string_lossy().into_owned();
        f(field, &mut text);
        *p = PathBuf::from(text);
    };
    f(field(&["command"], &[]), &mut s.command);
    for (i, arg) in s.args.iter_mut().enumerate() {
        f(field(&["args"], &[i]), arg);
    }
    for (key, value) in &mut s.env {
        f(field(&["env", key], &[]), value);
    }
    if let Some(cwd) = &mut s.cwd {
        path_buf(cwd, field(&["cwd"], &[]), f);
    }
    for (i, step) in s.build.iter_mut().enumerate() {
        match step {
            BuildCommand::Shell(line) => f(field(&["build"], &[i]), line),
            BuildCommand::Argv(argv) => {
                for (j, arg) in argv.iter_mut().enumerate() {
                    f(field(&["build"], &[i, j]), arg);
                }
            }
        }
    }
    for (probe_key, probe) in [("ready", &mut s.ready), ("liveness", &mut s.liveness)] {
        let Some(probe) = probe else { continue };
        let kind_key = probe.kind.key();
        match &mut probe.kind {
            ProbeKind::Shm(t) | ProbeKind::Tcp(t) | ProbeKind::Http(t) | ProbeKind::Log(t) => {
                f(field(&[probe_key, kind_key], &[]), t);
            }
            ProbeKind::File(p) => path_buf(p, field(&[probe_key, kind_key], &[]), f),
            ProbeKind::Exec(argv) => {
                for (i, arg) in argv.iter_mut().enumerate() {
                    f(field(&[probe_key, kind_key], &[i]), arg);
                }
            }
        }
    }
    for (i, glob) in s.clean_shm.iter_mut().enumerate() {
        f(field(&["clean_shm"], &[i]), glob);
    }
}

/// What a reference can resolve to.
enum Target {
    Scalar(String),
    /// A list or table: its kind.
    Composite(&'static str),
}

/// The referable values of a configuration.
struct Scalars(BTreeMap<String, Target>);

impl Scalars {
    fn of(config: &Config) -> Result<Self, String> {
        let mut table = toml::Table::try_from(config).map_err(|e| e.to_string())?;
        table.remove("services");
        let mut map = BTreeMap::new();
        flatten(&mut map, String::new(), &Value::Table(table));
        let model_path = config.detector.model_path().to_string_lossy().into_owned();
        map.insert("detector.model_path".into(), Target::Scalar(model_path));
        Ok(Self(map))
    }

    fn resolve(&self, reference: &str) -> Result<&str, String> {
        let braced = format!("{{{reference}}}");
        if reference.is_empty() {
            return Err("empty reference {} (write {{}} for literal braces)".into());
        }
        if reference == "services" || reference.starts_with("services.") {
            return Err(format!(
                "{braced}: references into services are not allowed"
            ));
        }
        match self.0.get(reference) {
            Some(Target::Scalar(s)) => Ok(s),
            Some(Target::Composite(kind)) => Err(format!("{braced} is a {kind}, not a scalar")),
            None => Err(
                match suggest(reference, self.0.keys().map(String::as_str)) {
                    Some(near) => format!("unknown reference {braced} (did you mean {{{near}}}?)"),
                    None => format!("unknown reference {braced}"),
                },
            ),
        }
    }
}

fn flatten(map: &mut BTreeMap<String, Target>, key: String, value: &Value) {
    let target = match value {
        Value::Table(t) => {
            for (k, v) in t {
                let child = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                flatten(map, child, v);
            }
            Target::Composite("table")
        }
        Value::Array(_) => Target::Composite("list"),
        Value::String(s) => Target::Scalar(s.clone()),
        other => Target::Scalar(other.to_string()),
    };
    if !key.is_empty() {
        map.insert(key, target);
    }
}

/// Expands `template`; on failure, the problems (each naming its reference).
fn expand(template: &str, scalars: &Scalars) -> Result<String, Vec<(String, String)>> {
    let mut out = String::with_capacity(template.len());
    let mut problems = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
        } else if let Some(after) = tail.strip_prefix('}') {
            problems.push(("}".into(), "a lone } (write }} for a literal brace)".into()));
            rest = after;
        } else {
            let Some(end) = tail.find('}') else {
                problems.push((
                    "{".into(),
                    "an unclosed { (write {{ for a literal brace)".into(),
                ));
                break;
            };
            let reference = &tail[1..end];
            match scalars.resolve(reference) {
                Ok(value) => out.push_str(value),
                Err(problem) => problems.push((reference.to_owned(), problem)),
            }
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Expands every template of every service in place. Returns the fields that failed (left
/// as written), after reporting them.
pub(crate) fn interpolate(
    config: &mut Config,
    tree: &Tree,
    errors: &mut Vec<ConfigError>,
) -> BTreeSet<KeyPath> {
    let mut failed = BTreeSet::new();
    let scalars = match Scalars::of(config) {
        Ok(scalars) => scalars,
        Err(e) => {
            errors.push(ConfigError::Internal(e));
            return failed;
        }
    };
    for (name, service) in &mut config.services {
        visit_templates(
            name,
            service,
            &mut |field, text| match expand(text, &scalars) {
                Ok(expanded) => *text = expanded,
                Err(problems) => {
                    for (reference, problem) in problems {
                        errors.push(ConfigError::Reference {
                            key: field.key(),
                            value: value_text(&Value::String(text.clone())),
                            reference,
                            problem,
                            origin: tree.origin_near(&field.path),
                        });
                    }
                    failed.insert(field.path);
                }
            },
        );
    }
    failed
}

/// Doubles the braces of every template, so that the printed configuration reads back the same.
pub(crate) fn escape_templates(config: &mut Config) {
    for (name, service) in &mut config.services {
        visit_templates(name, service, &mut |_, text| {
            *text = text.replace('{', "{{").replace('}', "}}");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let scalars = Scalars::of(&Config::default()).unwrap();
        let cases = [
            ("--port={monitor.port}", Ok("--port=8080")),
            ("{tools.uv}", Ok("uv")),
            (
                "{detector.score_threshold}/{streaming.enabled}",
                Ok("0.6/true"),
            ),
            (
                "{detector.model_path}",
                Ok("/tmp/yolo_models/yolo11n_detect_bayese_640x640_nv12.bin"),
            ),
            ("{{literal}} }}{{", Ok("{literal} }{")),
            ("no braces", Ok("no braces")),
            (
                "{monitor.prot}",
                Err("unknown reference {monitor.prot} (did you mean {monitor.port}?)"),
            ),
            (
                "{nothing.like.it}",
                Err("unknown reference {nothing.like.it}"),
            ),
            (
                "{http.cors_origins}",
                Err("{http.cors_origins} is a list, not a scalar"),
            ),
            ("{http}", Err("{http} is a table, not a scalar")),
            (
                "{services.a.command}",
                Err("{services.a.command}: references into services are not allowed"),
            ),
            (
                "{}",
                Err("empty reference {} (write {{}} for literal braces)"),
            ),
            ("a } b", Err("a lone } (write }} for a literal brace)")),
            ("a { b", Err("an unclosed { (write {{ for a literal brace)")),
        ];
        for (template, want) in cases {
            let got = expand(template, &scalars).map_err(|p| p[0].1.clone());
            assert_eq!(
                got.as_deref(),
                want.map_err(str::to_owned).as_deref(),
                "{template}"
            );
        }
    }
}
