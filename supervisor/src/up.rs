//! `stackctl up`, `stackctl config` and `stackctl check`: load the configuration, then run (or
//! show, or check) the stack.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use stackctl_config::{Flags, Loaded, Sources};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::cli::{ConfigArgs, ConfigFlags, SocketArgs};
use crate::http::{self, Routes};
use crate::notify::Notifier;
use crate::plan::{find_executable, plans};
use crate::process::Reaper;
use crate::service::plan::ServicePlan;
use crate::service::stack::{Attachments, Stack};
use crate::status::StackStatus;

/// Exit code for a configuration error: nothing was started.
pub const CONFIG_ERROR: u8 = 2;

/// A configuration problem, reported as is and mapped to exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Loads the configuration from the file, the environment and `flags`.
pub fn load(flags: &ConfigFlags) -> anyhow::Result<Loaded> {
    let mut sources = Sources::new(nix::unistd::geteuid().as_raw());
    sources.file = flags.config.clone();
    // Lossily: a variable that is not UTF-8 must not crash stackctl (none of ours can be one).
    sources.env = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    sources.flags = Flags {
        skip_build: flags.skip_build,
        no_detector: flags.no_detector,
        no_monitor: flags.no_monitor,
        no_streaming: flags.no_streaming,
        monitor_host: flags.monitor_host.clone(),
        monitor_port: flags.monitor_port,
        streaming_port: flags.streaming_port,
        metrics_port: flags.metrics_port,
        pprof_port: flags.pprof_port,
        max_clients: flags.max_clients,
        yolo_model: flags.yolo_model.clone(),
        score_thres: flags.score_thres,
        nms_thres: flags.nms_thres,
        sets: flags.sets.clone(),
    };
    stackctl_config::load(&sources).map_err(|e| ConfigError(e.to_string()).into())
}

/// The directory relative paths in the configuration are resolved against: the file's own, made absolute
/// (a service changes into its `cwd` before its program is looked up, so a path relative to
/// stackctl's working directory would no longer resolve).
fn base_dir(loaded: &Loaded) -> PathBuf {
    let dir = loaded
        .file
        .as_ref()
        .and_then(|f| f.parent().map(Path::to_owned))
        .filter(|d| !d.as_os_str().is_empty())
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).unwrap_or(dir)
}

fn service_plans(loaded: &Loaded) -> anyhow::Result<Vec<ServicePlan>> {
    plans(&loaded.config, &base_dir(loaded)).map_err(|errors| ConfigError(errors.join("\n")).into())
}

/// The control socket a control command talks to.
pub fn socket_path(args: &SocketArgs) -> anyhow::Result<PathBuf> {
    if let Some(socket) = &args.socket {
        return Ok(socket.clone());
    }
    let flags = ConfigFlags {
        config: args.config.clone(),
        ..ConfigFlags::default()
    };
    Ok(load(&flags)?.config.control.socket.clone())
}

/// `stackctl config [--explain]`.
pub fn show(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    if args.explain {
        for item in loaded.explain() {
            println!("{} = {}  # {}", item.key, item.value, item.origin);
        }
    } else {
        print!("{}", loaded.to_toml());
    }
    Ok(ExitCode::SUCCESS)
}

/// `stackctl check`: everything `up` would refuse, without starting anything.
pub fn check(flags: &ConfigFlags) -> anyhow::Result<ExitCode> {
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
    let plugin_configs = crate::plugins::configs(&loaded).map_err(|e| ConfigError(e.join("\n")))?;
    let dirs = crate::plugins::loader::search_dirs(&loaded.config.plugin_dirs);
    let mut warnings = Vec::new();
    for p in plugin_configs.iter().filter(|p| p.enabled) {
        match crate::plugins::loader::resolve(&p.name, &p.path, &dirs) {
            // Not installed (yet): `up` runs without a plugin that is not `required`, and so
            // does `check`, loudly.
            Err(e) if !p.required => warnings.push(format!(
                "warning: {e} (plugins.{}.required = false: up starts without it)",
                p.name
            )),
            Err(e) => problems.push(e.to_string()),
            // There but unusable (another ABI, not a plugin): a mistake to fix either way.
            Ok(path) => {
                if let Err(e) = crate::plugins::loader::load(&p.name, &path) {
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

/// `stackctl plugins`: every configured plugin, and every plugin file in the plugin
/// directories, with its ABI, version and routes.
pub fn list_plugins(flags: &ConfigFlags) -> anyhow::Result<ExitCode> {
    use crate::plugins::loader;
    let loaded = load(flags)?;
    let configs = crate::plugins::configs(&loaded).map_err(|e| ConfigError(e.join("\n")))?;
    let dirs = loader::search_dirs(&loaded.config.plugin_dirs);
    let describe = |name: &str, path: &Path| match loader::load(name, path) {
        Ok(lib) => format!(
            "{} {} (ABI {}.{}), routes: {}",
            loader::str_of(lib.table.name),
            loader::str_of(lib.table.version),
            lib.table.abi_major,
            lib.table.abi_minor,
            match loader::routes(lib.table) {
                r if r.is_empty() => "none".to_owned(),
                r => r.join(" "),
            }
        ),
        Err(e) => format!("UNUSABLE: {e}"),
    };
    let mut seen = Vec::new();
    for cfg in &configs {
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

/// `stackctl up`, with the configuration already loaded (logging is set up from it).
pub async fn up(loaded: Loaded) -> anyhow::Result<ExitCode> {
    let config = &loaded.config;
    let plans = service_plans(&loaded)?;
    let notifier = Notifier::from_env(|k| std::env::var(k).ok()).context("NOTIFY_SOCKET")?;
    let reaper = Reaper::start().context("cannot start the process reaper")?;

    let gid = match &config.control.group {
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .with_context(|| format!("control.group = {name:?}: no such group"))?
                .gid
                .as_raw(),
        ),
        None => None,
    };
    let socket = config.control.socket.clone();
    let listener = crate::control::bind(&socket, gid).await?;
    let (calls_tx, calls) = mpsc::channel(16);
    tokio::spawn(crate::control::serve(listener, calls_tx));

    // The data path: the camera's segment onto the bus, the bus into the sink plugins.
    let plugin_configs = crate::plugins::configs(&loaded).map_err(|e| ConfigError(e.join("\n")))?;
    crate::disk::watch(&plugin_configs);
    let (source, plugins) = if plugin_configs.iter().any(|p| p.enabled) {
        let bus = stackctl_core::Bus::new();
        let mut source_cfg = stackctl_core::shm::SourceConfig::new(config.source.shm.clone());
        // A camera started after stackctl has usually written a frame or two by the time the
        // source attaches: start with what is still in the ring, so sinks begin at its very
        // first IDR. (After a restart of stackctl alone this replays at most a second.)
        source_cfg.start = stackctl_core::shm::StartPosition::Oldest;
        source_cfg.guard = match config.source.guard {
            stackctl_config::ShmGuard::Verify => stackctl_core::shm::TornReadGuard::default(),
            stackctl_config::ShmGuard::Settled => stackctl_core::shm::TornReadGuard::Settled,
        };
        let plugins = crate::plugins::PluginHost::start(&plugin_configs, &config.plugin_dirs, &bus)
            .map_err(anyhow::Error::msg)?;
        let source = stackctl_core::shm::SourceHandle::spawn(source_cfg, bus, None)
            .context("cannot start the shared-memory reader")?;
        (Some(source), Some(Arc::new(plugins)))
    } else {
        (None, None)
    };
    let attached = Attachments {
        plugins: plugins.clone(),
        source: source
            .as_ref()
            .map(|s| (config.source.shm.clone(), s.stats().clone())),
    };

    let (status_tx, status_rx) = watch::channel(Arc::new(empty_status()));
    let http_ctx = http::Context {
        status: status_rx,
        plugins: plugins.clone(),
        source: attached.source.clone(),
        cors_origins: Arc::new(config.http.cors_origins.clone()),
    };
    let http_addr = format!("{}:{}", config.http.host, config.http.port);
    let http = bind_tcp(&http_addr, "http.port").await?;
    tokio::spawn(http::serve(http, http_ctx.clone(), Routes::All));
    if config.metrics.port != 0 && config.metrics.port != config.http.port {
        let addr = format!("{}:{}", config.http.host, config.metrics.port);
        let metrics = bind_tcp(&addr, "metrics.port").await?;
        tokio::spawn(http::serve(metrics, http_ctx, Routes::MetricsOnly));
    }
    crate::profiling::listen(&config.profiling).await;
    tracing::info!(
        config = %loaded.file.as_ref().map_or_else(|| "defaults".to_owned(), |f| f.display().to_string()),
        socket = %socket.display(),
        http = %http_addr,
        services = plans.len(),
        "stackctl up"
    );
    if plugins.as_ref().is_some_and(|p| p.route("/").is_some()) {
        // The line a user of the demo (or of the board) clicks.
        let host = match config.http.host.as_str() {
            "0.0.0.0" | "::" | "" => "localhost",
            host => host,
        };
        tracing::info!("viewer page: http://{host}:{}/", config.http.port);
    }
    let stack = Stack::new(
        plans,
        reaper,
        config.build.skip,
        notifier,
        status_tx,
        attached,
    );
    let code = stack.run(calls).await;
    if let Some(plugins) = plugins {
        tokio::task::spawn_blocking(move || plugins.stop())
            .await
            .ok();
    }
    if let Some(source) = source
        && let Err(e) = source.stop()
    {
        tracing::warn!("shared-memory reader: {e}");
    }
    let _ = std::fs::remove_file(&socket);
    Ok(ExitCode::from(code))
}

pub(crate) async fn bind_tcp(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "{key}: {addr} is already in use: another program listens there (find it with `ss -ltnp`), or choose another port"
        ),
        Err(e) => Err(e).with_context(|| format!("{key}: cannot listen on {addr}")),
    }
}

fn empty_status() -> StackStatus {
    StackStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        uptime_secs: 0.0,
        ready: false,
        phase: "starting".to_owned(),
        services: Vec::new(),
        cpu_seconds: 0.0,
        rss_bytes: 0,
        plugins: Vec::new(),
        source: None,
    }
}
