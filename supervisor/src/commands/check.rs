//! `stackctl check`: everything `up` would refuse, without starting anything.

use std::path::Path;
use std::process::ExitCode;

use super::{ConfigError, load, service_plans};
use crate::cli::ConfigFlags;
use crate::service::plan::build::find_executable;

/// `stackctl check`: everything `up` would refuse, without starting anything.
pub fn run(flags: &ConfigFlags) -> anyhow::Result<ExitCode> {
    let loaded = load(flags)?;
    let plans = service_plans(&loaded)?;
    let mut problems = Vec::new();
    for plan in plans.iter().filter(|p| p.enabled) {
        let cwd = plan.spec.cwd.as_deref().unwrap_or(Path::new("."));
        if !cwd.is_dir() {
            problems.push(format!(
                "services.{}.cwd: {} is not a directory",
                plan.name,
                cwd.display()
            ));
        } else if let Err(e) = find_executable(&plan.spec.program) {
            problems.push(format!("services.{}.command: {e}", plan.name));
        }
    }
    let dirs = stackctl_plugin_host::loader::search_dirs(&loaded.config.plugin_dirs);
    let mut warnings = Vec::new();
    for p in loaded.plugins.iter().filter(|p| p.enabled) {
        match stackctl_plugin_host::loader::resolve(&p.name, &p.path, &dirs) {
            // Not installed (yet): `up` runs without a plugin that is not `required`, and so
            // does `check`, loudly.
            Err(e) if !p.required => warnings.push(format!(
                "warning: {e} (plugins.{}.required = false: up starts without it)",
                p.name
            )),
            Err(e) => problems.push(e.to_string()),
            // There but unusable (another ABI, not a plugin): a mistake to fix either way.
            Ok(path) => {
                if let Err(e) = stackctl_plugin_host::loader::load(&p.name, &path) {
                    problems.push(e.to_string());
                }
            }
        }
    }
    for warning in &warnings {
        eprintln!("{warning}");
    }
    if !problems.is_empty() {
        return Err(ConfigError(problems.join("\n")).into());
    }
    let enabled = plans.iter().filter(|p| p.enabled).count();
    let file = loaded
        .file
        .as_ref()
        .map_or_else(|| "no file".to_owned(), |f| f.display().to_string());
    println!(
        "configuration ok ({file}): {enabled} of {} services enabled",
        plans.len()
    );
    Ok(ExitCode::SUCCESS)
}
