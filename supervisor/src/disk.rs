//! The space left where plugins write: the file system of each enabled plugin's `dir` (the
//! recorder's recordings), read with `statvfs` at every scrape of `/metrics`:
//!
//! - `stackctl_disk_avail_bytes{plugin,path}`: bytes an unprivileged writer may still use;
//! - `stackctl_disk_size_bytes{plugin,path}`: the file system's size.
//!
//! Named and computed like node_exporter's `node_filesystem_avail_bytes` and `_size_bytes`,
//! so that the shipped alerts (`deploy/prometheus/stackctl.rules.yml`) can predict a full disk
//! on a board that runs no node_exporter. A directory that cannot be read (not created yet) has
//! no sample.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use stackctl_config::PluginSection;

/// `(plugin, dir)` of every enabled plugin with a `dir` key, set once by `up`.
static WATCHED: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();

/// Watches the `dir` of every enabled plugin in `configs` (relative paths are the plugin's:
/// relative to stackctl's working directory).
pub fn watch(configs: &[PluginSection]) {
    let dirs = configs
        .iter()
        .filter(|p| p.enabled)
        .filter_map(|p| Some((p.name.clone(), PathBuf::from(p.own.get("dir")?.as_str()?))))
        .collect();
    let _ = WATCHED.set(dirs);
}

/// Available and total bytes of the file system holding `dir`.
#[allow(clippy::useless_conversion)] // The statvfs fields are u32 or u64 depending on the target.
fn space(dir: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let unit = u64::from(st.fragment_size());
    Some((
        u64::from(st.blocks_available()).saturating_mul(unit),
        u64::from(st.blocks()).saturating_mul(unit),
    ))
}

/// The metrics of the watched directories, as Prometheus text (empty when none is watched).
pub fn metrics() -> String {
    render(WATCHED.get().map(Vec::as_slice).unwrap_or_default()).unwrap_or_else(|e| {
        tracing::warn!("disk metrics: {e}");
        String::new()
    })
}

fn render(dirs: &[(String, PathBuf)]) -> Result<String, prometheus::Error> {
    if dirs.is_empty() {
        return Ok(String::new());
    }
    let labels = ["plugin", "path"];
    let avail = GaugeVec::new(
        Opts::new(
            "stackctl_disk_avail_bytes",
            "Bytes still available on the file system of a plugin's dir",
        ),
        &labels,
    )?;
    let size = GaugeVec::new(
        Opts::new(
            "stackctl_disk_size_bytes",
            "Size of the file system of a plugin's dir",
        ),
        &labels,
    )?;
    for (plugin, dir) in dirs {
        if let Some((free, total)) = space(dir) {
            let path = dir.to_string_lossy();
            let l = [plugin.as_str(), path.as_ref()];
            avail.with_label_values(&l).set(free as f64);
            size.with_label_values(&l).set(total as f64);
        }
    }
    let registry = Registry::new();
    registry.register(Box::new(avail))?;
    registry.register(Box::new(size))?;
    let mut out = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readable_dir_has_both_gauges_and_a_missing_one_none() {
        let dirs = [
            ("recording".to_owned(), PathBuf::from("/")),
            ("ghost".to_owned(), PathBuf::from("/nonexistent/stackctl")),
        ];
        let text = render(&dirs).expect("render");
        let value = |name: &str| -> f64 {
            let prefix = format!("{name}{{path=\"/\",plugin=\"recording\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        };
        let (avail, size) = (
            value("stackctl_disk_avail_bytes"),
            value("stackctl_disk_size_bytes"),
        );
        assert!(size > 0.0 && avail <= size, "{avail} of {size}");
        assert!(!text.contains("ghost"), "{text}");
        assert_eq!(render(&[]).expect("render"), "");
    }
}
