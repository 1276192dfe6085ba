//! `stackctl plugins`: the configured plugins and the plugin files found, with their ABI,
//! version and routes.

use std::path::Path;
use std::process::ExitCode;

use super::load;
use crate::cli::ConfigFlags;

/// `stackctl plugins`: every configured plugin, and every plugin file in the plugin
/// directories, with its ABI, version and routes.
pub fn run(flags: &ConfigFlags) -> anyhow::Result<ExitCode> {
    use stackctl_plugin_host::loader;
    let loaded = load(flags)?;
    let dirs = loader::search_dirs(&loaded.config.plugin_dirs);
    let describe = |name: &str, path: &Path| match loader::load(name, path) {
        Ok(lib) => format!(
            "{} {} (ABI {}.{}), routes: {}",
            lib.name(),
            lib.version(),
            lib.abi().0,
            lib.abi().1,
            match lib.routes() {
                r if r.is_empty() => "none".to_owned(),
                r => r.join(" "),
            }
        ),
        Err(e) => format!("UNUSABLE: {e}"),
    };
    let mut seen = Vec::new();
    for cfg in &loaded.plugins {
        let state = if cfg.enabled { "enabled" } else { "disabled" };
        match loader::resolve(&cfg.name, &cfg.path, &dirs) {
            Ok(path) => {
                println!(
                    "{:<14} {state:<9} {}: {}",
                    cfg.name,
                    path.display(),
                    describe(&cfg.name, &path)
                );
                seen.push(path);
            }
            Err(e) => println!("{:<14} {state:<9} {e}", cfg.name),
        }
    }
    for dir in &dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let is_lib = path.extension().is_some_and(|e| e == "so")
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("lib"));
            if is_lib && !seen.contains(&path) {
                println!(
                    "{:<14} {:<9} {}: {}",
                    "-",
                    "found",
                    path.display(),
                    describe("-", &path)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
