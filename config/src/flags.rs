//! The command-line layer: the legacy script's flags, then `--set key.path=value`.

use toml::Value;

use crate::error::ConfigError;
use crate::origin::Origin;
use crate::schema::{DETECTOR_SERVICE, MONITOR_SERVICE};
use crate::tree::{KeyPath, MAX_KEY_DEPTH, Tree, split_key};

/// The command-line flags that touch the configuration, as the binary's argument parser
/// filled them. `None`/`false` means "not given".
///
/// With the `clap` feature this is also the flags' declaration: `stackctl` flattens it into
/// the arguments of `up`, `config`, `check` and `plugins`, so each flag is declared once, here,
/// with its help text beside the key it sets.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Flags {
    /// Each `--set key.path=value`, in order; the value is parsed as a TOML value when it
    /// parses (`8082`, `true`, `["a","b"]`), else taken as a string. Applied after the other
    /// flags.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "set",
            value_name = "KEY=VALUE",
            help = "Set any configuration key, e.g. `--set services.web_monitor.enabled=false` (repeatable)"
        )
    )]
    pub sets: Vec<String>,
    /// `--skip-build` → `build.skip = true`.
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Do not run the services' build commands")
    )]
    pub skip_build: bool,
    /// `--no-detector` → `services.yolo_detector_daemon.enabled = false` (a warning if there is
    /// no such service).
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            help = "Do not start the YOLO detector (services.yolo_detector_daemon)"
        )
    )]
    pub no_detector: bool,
    /// `--no-monitor` → `services.web_monitor.enabled = false` (a warning if there is no such
    /// service).
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Do not start the web monitor (services.web_monitor)")
    )]
    pub no_monitor: bool,
    /// `--no-streaming` → `streaming.enabled = false`.
    #[cfg_attr(
        feature = "clap",
        arg(long, help = "Do not stream (streaming.enabled = false)")
    )]
    pub no_streaming: bool,
    /// `--monitor-host` → `monitor.host`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "HOST",
            help = "Web monitor listen address (monitor.host)"
        )
    )]
    pub monitor_host: Option<String>,
    /// `--monitor-port` → `monitor.port`.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "PORT", help = "Web monitor port (monitor.port)")
    )]
    pub monitor_port: Option<u16>,
    /// `--streaming-port` → `http.port`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "PORT",
            help = "stackctl's HTTP port: signalling, recording, health, status (http.port)"
        )
    )]
    pub streaming_port: Option<u16>,
    /// `--metrics-port` → `metrics.port`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "PORT",
            help = "Separate metrics port, 0 for none (metrics.port)"
        )
    )]
    pub metrics_port: Option<u16>,
    /// `--pprof-port` → `profiling.port`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "PORT",
            help = "CPU profiles for `go tool pprof` on 127.0.0.1:PORT, 0 for none (profiling.port)"
        )
    )]
    pub pprof_port: Option<u16>,
    /// `--max-clients` → `streaming.max_clients`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "N",
            help = "Most simultaneous viewers (streaming.max_clients)"
        )
    )]
    pub max_clients: Option<u32>,
    /// `--yolo-model` → `detector.model`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "MODEL",
            help = "YOLO model: v8n, v11n or v13n (detector.model)"
        )
    )]
    pub yolo_model: Option<String>,
    /// `--score-thres` → `detector.score_threshold`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "T",
            help = "Detection score threshold, 0 to 1 (detector.score_threshold)"
        )
    )]
    pub score_thres: Option<f64>,
    /// `--nms-thres` → `detector.nms_threshold`.
    #[cfg_attr(
        feature = "clap",
        arg(
            long,
            value_name = "T",
            help = "Non-maximum suppression threshold, 0 to 1 (detector.nms_threshold)"
        )
    )]
    pub nms_thres: Option<f64>,
}

/// One parsed `--set`.
pub(crate) struct Set {
    path: KeyPath,
    value: String,
    origin: Origin,
}

/// Parses the `--set` arguments, reporting the malformed ones.
pub(crate) fn parse_sets(sets: &[String], errors: &mut Vec<ConfigError>) -> Vec<Set> {
    let mut parsed = Vec::new();
    for arg in sets {
        let origin = Origin::flag(format!("--set {arg}"));
        match arg.split_once('=') {
            Some((key, value))
                if key.split('.').all(|s| !s.is_empty())
                    && key.split('.').count() <= MAX_KEY_DEPTH =>
            {
                parsed.push(Set {
                    path: split_key(key),
                    value: value.to_owned(),
                    origin,
                });
            }
            _ => errors.push(ConfigError::Source {
                origin,
                message: "expected key.path=value (e.g. --set http.port=8082)".into(),
            }),
        }
    }
    parsed
}

/// Merges the flags, then the `--set`s. Returns the warnings.
pub(crate) fn apply(tree: &mut Tree, flags: &Flags, sets: &[Set]) -> Vec<String> {
    let mut warnings = Vec::new();
    let int = |n: u16| Value::Integer(n.into());
    if flags.skip_build {
        put(tree, "build.skip", "--skip-build", Value::Boolean(true));
    }
    if flags.no_streaming {
        put(
            tree,
            "streaming.enabled",
            "--no-streaming",
            Value::Boolean(false),
        );
    }
    let scalars = [
        (
            "monitor.host",
            "--monitor-host",
            flags.monitor_host.clone().map(Value::String),
        ),
        (
            "monitor.port",
            "--monitor-port",
            flags.monitor_port.map(int),
        ),
        (
            "http.port",
            "--streaming-port",
            flags.streaming_port.map(int),
        ),
        (
            "metrics.port",
            "--metrics-port",
            flags.metrics_port.map(int),
        ),
        ("profiling.port", "--pprof-port", flags.pprof_port.map(int)),
        (
            "streaming.max_clients",
            "--max-clients",
            flags.max_clients.map(|n| Value::Integer(n.into())),
        ),
        (
            "detector.model",
            "--yolo-model",
            flags.yolo_model.clone().map(Value::String),
        ),
        (
            "detector.score_threshold",
            "--score-thres",
            flags.score_thres.map(Value::Float),
        ),
        (
            "detector.nms_threshold",
            "--nms-thres",
            flags.nms_thres.map(Value::Float),
        ),
    ];
    for (key, flag, value) in scalars {
        if let Some(value) = value {
            put(tree, key, flag, value);
        }
    }
    let disables = [
        (flags.no_detector, "--no-detector", DETECTOR_SERVICE),
        (flags.no_monitor, "--no-monitor", MONITOR_SERVICE),
    ];
    for (given, flag, service) in disables {
        if !given {
            continue;
        }
        let path = vec!["services".to_owned(), service.to_owned()];
        let set_creates_it = sets.iter().any(|s| s.path.starts_with(&path));
        if matches!(tree.get(&path), Some(Value::Table(_))) || set_creates_it {
            put(
                tree,
                &format!("services.{service}.enabled"),
                flag,
                Value::Boolean(false),
            );
        } else {
            warnings.push(format!(
                "{flag}: there is no service \"{service}\" in the configuration; ignored"
            ));
        }
    }
    for set in sets {
        tree.merge_text(&set.path, &set.value, &set.origin);
    }
    warnings
}

fn put(tree: &mut Tree, key: &str, flag: &str, value: Value) {
    let origin = Origin::flag(flag);
    tree.merge(&split_key(key), value, &|_| origin.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_sets_are_errors() {
        let deep = format!("{}x=1", "a.".repeat(MAX_KEY_DEPTH));
        for bad in ["", "novalue", "=1", ".a=1", "a.=1", "a..b=1", deep.as_str()] {
            let mut errors = Vec::new();
            assert!(
                parse_sets(&[bad.to_owned()], &mut errors).is_empty(),
                "{bad}"
            );
            assert_eq!(errors.len(), 1, "{bad}");
        }
        let mut errors = Vec::new();
        let sets = parse_sets(&["a.b=x=y".to_owned(), "a=".to_owned()], &mut errors);
        assert!(errors.is_empty());
        assert_eq!((sets[0].path.len(), sets[0].value.as_str()), (2, "x=y"));
        assert_eq!(sets[1].value, "");
    }
}
