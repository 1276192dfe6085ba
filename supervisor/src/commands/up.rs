//! `stackctl up`: the configuration already loaded, start the data path (the camera's segment,
//! the bus, the sink plugins), the HTTP and control listeners, and run the stack until it stops.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use stackctl_config::Loaded;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::service_plans;
use crate::http::{self, Routes};
use crate::notify::Notifier;
use crate::process::Reaper;
use crate::service::driver::{Attachments, Driver};
use crate::status::StackStatus;

/// `stackctl up`, with the configuration already loaded (logging is set up from it).
pub async fn run(loaded: Loaded) -> anyhow::Result<ExitCode> {
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
    let listener = crate::control::server::bind(&socket, gid).await?;
    let (calls_tx, calls) = mpsc::channel(16);
    tokio::spawn(crate::control::server::serve(listener, calls_tx));

    // The data path: the camera's segment onto the bus, the bus into the sink plugins.
    crate::disk::watch(&loaded.plugins);
    let (source, plugins) = if loaded.plugins.iter().any(|p| p.enabled) {
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
        let plugins =
            stackctl_plugin_host::PluginHost::start(&loaded.plugins, &config.plugin_dirs, &bus)?;
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
    let driver = Driver::new(
        plans,
        reaper,
        config.build.skip,
        notifier,
        status_tx,
        attached,
    );
    let code = driver.run(calls).await;
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
