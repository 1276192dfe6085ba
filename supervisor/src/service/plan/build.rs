//! From the validated configuration to what the orchestrator runs: paths resolved, build steps
//! and probes turned into process specs, regexes compiled, dependencies turned into indices.

use std::path::{Path, PathBuf};

use regex::Regex;
use stackctl_config::{
    BuildCommand, Config, DependencyCondition, DependencyCycle, OnFailure, Probe, ProbeKind,
    RestartPolicy, ServiceConfig, Signal as ConfigSignal,
};

use crate::process::ProcessSpec;
use crate::service::gate::Condition;
use crate::service::plan::{self as p, Check, ProbePlan, ServicePlan};
use crate::service::probe::Target;
use crate::service::restart::{Policy, Rules};

/// Why a service's plan cannot be made from a configuration that loaded (what the
/// configuration's own validation does not know: what this binary can run).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Services depend on each other in a circle (validation refuses this first).
    #[error(transparent)]
    Cycle(#[from] DependencyCycle),
    /// A build step with no program.
    #[error("services.{service}.build[{index}] is an empty command")]
    EmptyBuild {
        /// The service.
        service: String,
        /// The step's index.
        index: usize,
    },
    /// An exec probe with no program.
    #[error("{key}.exec is an empty command")]
    EmptyExec {
        /// The probe's key: `services.NAME.ready`.
        key: String,
    },
    /// A log probe's pattern is not a regular expression.
    #[error("{key}.log = {pattern:?}: not a valid regex: {error}")]
    Regex {
        /// The probe's key.
        key: String,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        error: regex::Error,
    },
    /// A kind of probe this binary cannot run.
    #[error("{key}: this stackctl cannot run `{kind}` probes")]
    UnsupportedProbe {
        /// The probe's key.
        key: String,
        /// Its kind.
        kind: &'static str,
    },
}

/// Every [`PlanError`] of a configuration, one a line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PlanErrors(pub Vec<PlanError>);

/// Why a program cannot be run (what `stackctl check` looks for).
#[derive(Debug, thiserror::Error)]
pub enum ExecutableError {
    /// A path that is not an executable file.
    #[error("{} is not an executable file", .0.display())]
    NotExecutable(PathBuf),
    /// A bare name no directory of `PATH` has.
    #[error("{} is not found in PATH", .0.display())]
    NotInPath(PathBuf),
}

/// Builds the plans of every service, in start order. Relative paths (`cwd`, a `command` with a
/// slash, `file` probes) are resolved against `base`, the configuration file's directory.
pub fn plans(config: &Config, base: &Path) -> Result<Vec<ServicePlan>, PlanErrors> {
    // Validation already refused cycles, so this cannot fail; say so rather than panic.
    let order: Vec<String> = match config.start_order() {
        Ok(order) => order.into_iter().map(str::to_owned).collect(),
        Err(cycle) => return Err(PlanErrors(vec![cycle.into()])),
    };
    let mut errors = Vec::new();
    let mut plans = Vec::new();
    for name in &order {
        let Some(service) = config.services.get(name.as_str()) else {
            continue;
        };
        match plan(name, service, &order, base) {
            Ok(plan) => plans.push(plan),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(PlanErrors(errors))
    }
}

fn plan(
    name: &str,
    s: &ServiceConfig,
    order: &[String],
    base: &Path,
) -> Result<ServicePlan, PlanError> {
    let cwd = s
        .cwd
        .as_ref()
        .map_or_else(|| base.to_owned(), |c| base.join(c));
    let spec = ProcessSpec {
        name: name.to_owned(),
        program: program(&s.command, &cwd),
        args: s.args.clone(),
        env: s.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        cwd: Some(cwd.clone()),
    };
    let build = s
        .build
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (program, args) = match step {
                BuildCommand::Argv(argv) => match argv.split_first() {
                    Some((first, rest)) => (first.clone(), rest.to_vec()),
                    None => {
                        return Err(PlanError::EmptyBuild {
                            service: name.to_owned(),
                            index: i,
                        });
                    }
                },
                BuildCommand::Shell(line) => ("sh".to_owned(), vec!["-c".to_owned(), line.clone()]),
            };
            Ok(ProcessSpec {
                name: format!("{name}/build{}", i + 1),
                program: self::program(&program, &cwd),
                args,
                env: spec.env.clone(),
                cwd: Some(cwd.clone()),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deps = s
        .depends_on
        .iter()
        .filter_map(|(dep, cond)| {
            let index = order.iter().position(|o| o == dep)?;
            let cond = match cond {
                DependencyCondition::Started => Condition::Started,
                DependencyCondition::Ready => Condition::Ready,
                DependencyCondition::Completed => Condition::Completed,
            };
            Some((index, cond))
        })
        .collect();
    let probe = |field: &str, probe: &Option<Probe>| -> Result<Option<ProbePlan>, PlanError> {
        probe
            .as_ref()
            .map(|probe| probe_plan(&format!("services.{name}.{field}"), probe, &spec, &cwd))
            .transpose()
    };
    Ok(ServicePlan {
        name: name.to_owned(),
        enabled: s.enabled,
        required: s.required,
        build,
        deps,
        ready: probe("ready", &s.ready)?,
        liveness: probe("liveness", &s.liveness)?,
        rules: Rules {
            policy: match s.restart {
                RestartPolicy::No => Policy::No,
                RestartPolicy::OnFailure => Policy::OnFailure,
                RestartPolicy::Always => Policy::Always,
            },
            initial: s.backoff.initial,
            max: s.backoff.max,
            jitter: s.backoff.jitter,
            min_uptime: s.min_uptime,
            max_restarts: s.max_restarts,
            window: s.restart_window,
        },
        on_failure: match s.on_failure {
            OnFailure::Ignore => p::OnFailure::Ignore,
            OnFailure::StopStack => p::OnFailure::StopStack,
            OnFailure::Exit => p::OnFailure::Exit,
        },
        stop_signal: signal(s.stop_signal),
        stop_timeout: s.stop_timeout,
        clean_shm: s.clean_shm.clone(),
        restart_dependents: s.restart_dependents,
        spec,
    })
}

fn probe_plan(
    key: &str,
    probe: &Probe,
    service: &ProcessSpec,
    cwd: &Path,
) -> Result<ProbePlan, PlanError> {
    let check = match &probe.kind {
        ProbeKind::Shm(name) => Check::Target(Target::Shm(name.clone())),
        ProbeKind::File(path) => Check::Target(Target::File(cwd.join(path))),
        ProbeKind::Tcp(addr) => Check::Target(Target::Tcp(addr.clone())),
        ProbeKind::Http(url) => Check::Target(Target::Http(url.clone())),
        ProbeKind::Exec(argv) => {
            let (first, rest) = argv.split_first().ok_or_else(|| PlanError::EmptyExec {
                key: key.to_owned(),
            })?;
            Check::Exec(ProcessSpec {
                name: format!("{}/probe", service.name),
                program: program(first, cwd),
                args: rest.to_vec(),
                env: service.env.clone(),
                cwd: Some(cwd.to_owned()),
            })
        }
        ProbeKind::Log(pattern) => {
            Check::Log(Regex::new(pattern).map_err(|error| PlanError::Regex {
                key: key.to_owned(),
                pattern: pattern.clone(),
                error,
            })?)
        }
        other => {
            return Err(PlanError::UnsupportedProbe {
                key: key.to_owned(),
                kind: other.key(),
            });
        }
    };
    Ok(ProbePlan {
        check,
        interval: probe.interval,
        timeout: probe.timeout,
        retries: probe.retries,
    })
}

/// A command with a slash is a path (relative ones from the service's directory); a bare name
/// is looked up in `PATH` when spawned.
fn program(command: &str, cwd: &Path) -> PathBuf {
    if command.contains('/') {
        cwd.join(command)
    } else {
        PathBuf::from(command)
    }
}

fn signal(s: ConfigSignal) -> nix::sys::signal::Signal {
    use nix::sys::signal::Signal as N;
    match s {
        ConfigSignal::Hup => N::SIGHUP,
        ConfigSignal::Int => N::SIGINT,
        ConfigSignal::Quit => N::SIGQUIT,
        ConfigSignal::Kill => N::SIGKILL,
        ConfigSignal::Usr1 => N::SIGUSR1,
        ConfigSignal::Usr2 => N::SIGUSR2,
        ConfigSignal::Term => N::SIGTERM,
    }
}

/// Looks a bare command up in `PATH`, or checks a path: `Err` says what is wrong.
pub fn find_executable(program: &Path) -> Result<PathBuf, ExecutableError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        return if executable(program) {
            Ok(program.to_owned())
        } else {
            Err(ExecutableError::NotExecutable(program.to_owned()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| ExecutableError::NotInPath(program.to_owned()))
}
