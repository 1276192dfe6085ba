//! The sink's configuration: its `[plugins.NAME]` section, as TOML text, into `Sink::Config`.

use serde::de::DeserializeOwned;

use crate::Error;

/// Parses a sink's configuration section (the TOML text the host passes to `create`) into `C`.
///
/// A wrong value is reported as [`Error::Config`] naming the key (`window: invalid type: string
/// "x", expected u32`); an unknown key as well, when `C` has `#[serde(deny_unknown_fields)]`
/// (recommended: it catches typos). Useful in a sink's own tests.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Config { window: u32 }
///
/// let err = stackctl_sink_sdk::parse_config::<Config>("window = \"x\"").err().unwrap();
/// assert!(err.to_string().starts_with("window: invalid type"));
/// ```
pub fn parse_config<C: DeserializeOwned>(toml_text: &str) -> Result<C, Error> {
    // Syntax first, reported by line and column; then types, reported by key.
    let table: toml::Table = toml::from_str(toml_text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(toml_text, span.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        let message: Vec<&str> = e.message().lines().filter(|l| !l.is_empty()).collect();
        let message = if message.is_empty() {
            "invalid TOML".to_owned()
        } else {
            message.join(": ")
        };
        Error::config("", format!("{at}{message}"))
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().message().trim_end().to_owned();
        // "." is the section itself (a missing key: the message names it).
        Error::config(if key == "." { String::new() } else { key }, message)
    })
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        window: u32,
        #[serde(default)]
        output: Output,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Output {
        #[serde(default)]
        dirs: Vec<String>,
    }

    fn error(text: &str) -> String {
        parse_config::<Config>(text)
            .expect_err("a bad config")
            .to_string()
    }

    #[test]
    fn a_good_section_parses() {
        let c: Config = parse_config("window = 5\noutput.dirs = [\"a\"]").expect("valid");
        assert_eq!(c.window, 5);
        assert_eq!(c.output.dirs, ["a"]);
    }

    #[test]
    fn every_error_names_the_key() {
        assert_eq!(
            error("window = \"x\""),
            "window: invalid type: string \"x\", expected u32"
        );
        assert!(error("window = 1\noutput.dirs = [1]").starts_with("output.dirs[0]: invalid type"));
        assert!(error("window = 1\nwindw = 2").starts_with("windw: unknown field `windw`"));
        assert_eq!(error(""), "missing field `window`");
        assert_eq!(
            error("window = 1\nwindow = "),
            "line 2, column 10: invalid TOML"
        );
        assert_eq!(
            error("[output\n"),
            "line 1, column 8: invalid table header: expected `.`, `]`"
        );
    }

    #[test]
    fn a_config_error_has_the_config_status() {
        let e = parse_config::<Config>("").expect_err("missing key");
        assert_eq!(e.status(), stackctl_plugin_abi::STATUS_ERR_CONFIG);
        assert!(matches!(e, Error::Config { .. }));
    }
}
