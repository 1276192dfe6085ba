//! `stackctl check`: everything `up` would refuse, without starting anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use stackctl_plugin_host::loader::{self, LoadError};

use super::{ConfigError, load, service_plans};
use crate::cli::ConfigFlags;
use crate::service::plan::build::{ExecutableError, find_executable};

/// Something `up` would trip over.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// A service's working directory is not there.
    #[error("services.{service}.cwd: {} is not a directory", cwd.display())]
    NoDirectory {
        /// The service.
        service: String,
        /// Its directory.
        cwd: PathBuf,
    },
    /// A service's program cannot be run.
    #[error("services.{service}.command: {error}")]
    Program {
        /// The service.
        service: String,
        /// Why.
        error: ExecutableError,
    },
    /// A plugin is missing (and required) or unusable.
    #[error(transparent)]
    Plugin(#[from] LoadError),
}

/// `stackctl check`: everything `up` would refuse, without starting anything.
pub fn run(flags: &ConfigFlags) -> anyhow::Result<ExitCode> {
    let loaded = load(flags)?;
    let plans = service_plans(&loaded)?;
    let mut problems = Vec::new();
    for plan in plans.iter().filter(|p| p.enabled) {
        let cwd = plan.spec.cwd.as_deref().unwrap_or(Path::new("."));
        if !cwd.is_dir() {
            problems.push(Problem::NoDirectory {
                service: plan.name.clone(),
                cwd: cwd.to_owned(),
            });
        } else if let Err(error) = find_executable(&plan.spec.program) {
            problems.push(Problem::Program {
                service: plan.name.clone(),
                error,
            });
        }
    }
    let dirs = loader::search_dirs(&loaded.config.plugin_dirs);
    let mut warnings = Vec::new();
    for p in loaded.plugins.iter().filter(|p| p.enabled) {
        match loader::resolve(&p.name, &p.path, &dirs) {
            // Not installed (yet): `up` runs without a plugin that is not `required`, and so
            // does `check`, loudly.
            Err(e) if !p.required => warnings.push(format!(
                "warning: {e} (plugins.{}.required = false: up starts without it)",
                p.name
            )),
            Err(e) => problems.push(e.into()),
            // There but unusable (another ABI, not a plugin): a mistake to fix either way.
            Ok(path) => {
                if let Err(e) = loader::load(&p.name, &path) {
                    problems.push(e.into());
                }
            }
        }
    }
    for warning in &warnings {
        eprintln!("{warning}");
    }
    if !problems.is_empty() {
        return Err(ConfigError::Check(problems).into());
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
