//! `stackctl up`: the configuration already loaded, start the data path (the camera's segment,
//! the bus, the sink plugins), the HTTP and control listeners, and run the stack until it stops.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use stackctl_config::Loaded;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::check::Problem;
use super::{ConfigError, service_plans};
use crate::http::{self, Routes};
use crate::notify::Notifier;
use crate::process::Reaper;
use crate::service::driver::{Attachments, Driver};
use crate::status::StackStatus;

/// First thing `up` does, before it reads its configuration: a SIGHUP or SIGUSR1 from then on
/// cannot kill it (the service driver, which handles them, runs only once the plugins are
/// loaded and the ports bound).
pub fn survive_signals() -> anyhow::Result<()> {
    crate::signals::survive_hangup().context("cannot install the SIGHUP and SIGUSR1 handlers")
}

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
    // Whatever stops `up` from here on (a refused plugin, a port in use) leaves no socket.
    let _socket_file = RemoveOnDrop(socket.clone());
    let (calls_tx, calls) = mpsc::channel(16);
    tokio::spawn(crate::control::server::serve(listener, calls_tx));

    // The data path: the camera's segment onto the bus, the bus into the sink plugins.
    crate::disk::watch(&loaded.plugins);
    let bus = stackctl_core::Bus::new();
    let (source, plugins) = if loaded.plugins.iter().any(|p| p.enabled) {
        let mut source_cfg = stackctl_core::shm::SourceConfig::new(config.source.shm.clone());
        // A camera started after stackctl has usually written a frame or two by the time the
        // source attaches: start with what is still in the ring, so sinks begin at its very
        // first IDR. (After a restart of stackctl alone this replays at most a second.)
        source_cfg.start = stackctl_core::shm::StartPosition::Oldest;
        source_cfg.guard = match config.source.guard {
            stackctl_config::ShmGuard::Verify => stackctl_core::shm::TornReadGuard::default(),
            stackctl_config::ShmGuard::Settled => stackctl_core::shm::TornReadGuard::Settled,
        };
        // A refused `required` plugin is a configuration error (exit 2: systemd does not
        // restart it in a loop), every one at once, each with where its key came from.
        let plugins =
            stackctl_plugin_host::PluginHost::start(&loaded.plugins, &config.plugin_dirs, &bus)
                .map_err(|failed| {
                    let problems = failed
                        .0
                        .into_iter()
                        .map(|(name, e)| Problem::refused(&loaded, &name, e, true))
                        .collect();
                    ConfigError::Check(problems)
                })?;
        let source = stackctl_core::shm::SourceHandle::spawn(source_cfg, bus.clone(), None)
            .context("cannot start the shared-memory reader")?;
        (Some(source), Some(Arc::new(plugins)))
    } else {
        (None, None)
    };
    // What the camera sees: the detector's results (optional: until its segment exists there
    // are none, and nothing else changes) and snapshots of the NV12 ring (mapped on request).
    let vision = start_vision(&config.source, &bus)?;
    let attached = Attachments {
        plugins: plugins.clone(),
        source: source
            .as_ref()
            .map(|s| (config.source.shm.clone(), s.stats().clone())),
        detections: vision.detections.as_ref().map(|(handle, feed)| {
            (
                config.source.detections.clone(),
                handle.stats().clone(),
                Some(feed.stats().clone()),
            )
        }),
        snapshots: vision
            .routes
            .snapshots
            .as_ref()
            .map(|s| (config.source.nv12.clone(), s.stats().clone())),
    };

    let (status_tx, status_rx) = watch::channel(Arc::new(empty_status()));
    let http_ctx = http::Context {
        status: status_rx,
        plugins: plugins.clone(),
        source: attached.source.clone(),
        cors_origins: Arc::new(config.http.cors_origins.clone()),
        vision: vision.routes.clone(),
        write_timeout: config.http.write_timeout,
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
    if plugins
        .as_ref()
        .is_some_and(|p| matches!(p.route("/"), Some(stackctl_plugin_host::Routed::Plugin(_))))
    {
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
    if let Some((handle, feed)) = vision.detections {
        handle.stop();
        feed.stop();
    }
    Ok(ExitCode::from(code))
}

/// Removes the control socket when `up` returns, however it returns.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The detection source and its HTTP feed, and the snapshotter, as configured.
struct VisionParts {
    detections: Option<(
        stackctl_core::detections::DetectionHandle,
        crate::http::detections::Feed,
    )>,
    routes: http::vision::Vision,
}

fn start_vision(
    source: &stackctl_config::SourceConfig,
    bus: &stackctl_core::Bus,
) -> anyhow::Result<VisionParts> {
    use stackctl_core::detections::{DetectionConfig, DetectionHandle, Picture};
    let mut routes = http::vision::Vision::default();
    let detections = if source.detections.is_empty() {
        None
    } else {
        // Boxes are checked against the picture the detector reads.
        let picture = if source.nv12.is_empty() {
            Picture::Unknown
        } else {
            Picture::Ring(source.nv12.clone())
        };
        let feed = http::detections::Feed::start(bus)
            .context("cannot start the detection stream thread")?;
        let handle = DetectionHandle::spawn(
            DetectionConfig::new(source.detections.clone()).picture(picture),
            bus.clone(),
        )
        .context("cannot start the detection reader")?;
        routes.detections = Some(feed.clone());
        Some((handle, feed))
    };
    if !source.nv12.is_empty() {
        routes.snapshots = Some(Arc::new(stackctl_core::snapshot::Snapshotter::new(
            source.nv12.clone(),
        )));
    }
    Ok(VisionParts { detections, routes })
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
        detections: None,
        snapshots: None,
    }
}
