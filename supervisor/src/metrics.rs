//! `/metrics`: the stack's status in the Prometheus text format.
//!
//! Built at scrape time from the latest [`StackStatus`] into a fresh registry, so every metric
//! has its proper type (counters are counters) and nothing is kept between scrapes.

use prometheus::{Counter, CounterVec, Encoder, Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::status::StackStatus;

/// Renders `status` as Prometheus text.
pub fn render(status: &StackStatus) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, value: f64| -> Result<(), prometheus::Error> {
        let g = Gauge::with_opts(Opts::new(name, help))?;
        g.set(value);
        registry.register(Box::new(g))
    };
    let counter = |name: &str, help: &str, value: f64| -> Result<(), prometheus::Error> {
        let c = Counter::with_opts(Opts::new(name, help))?;
        c.inc_by(value.max(0.0));
        registry.register(Box::new(c))
    };
    gauge(
        "stackctl_ready",
        "1 once every required service is ready",
        bool_f(status.ready),
    )?;
    gauge(
        "stackctl_uptime_seconds",
        "Seconds since stackctl up started",
        status.uptime_secs,
    )?;
    counter(
        "stackctl_cpu_seconds_total",
        "CPU time used by stackctl itself",
        status.cpu_seconds,
    )?;
    gauge(
        "stackctl_rss_bytes",
        "Resident memory of stackctl itself",
        status.rss_bytes as f64,
    )?;

    let by_service = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), &["service"]);
    let up = by_service(
        "stackctl_service_up",
        "1 while a process of the service runs",
    )?;
    let ready = by_service("stackctl_service_ready", "1 while the service is ready")?;
    let exit = by_service(
        "stackctl_service_last_exit_code",
        "Exit code of the last run (128+N for signal N)",
    )?;
    let rss = by_service(
        "stackctl_service_rss_bytes",
        "Resident memory of the service's main process",
    )?;
    let state = GaugeVec::new(
        Opts::new(
            "stackctl_service_state",
            "1 for the state each service is in",
        ),
        &["service", "state"],
    )?;
    let restarts = CounterVec::new(
        Opts::new("stackctl_service_restarts_total", "Restarts of the service"),
        &["service"],
    )?;
    let cpu = CounterVec::new(
        Opts::new(
            "stackctl_service_cpu_seconds_total",
            "CPU time of the service's current run",
        ),
        &["service"],
    )?;
    for s in &status.services {
        let l = [s.name.as_str()];
        up.with_label_values(&l).set(bool_f(s.state.is_up()));
        ready.with_label_values(&l).set(bool_f(s.ready));
        state
            .with_label_values(&[s.name.as_str(), s.state.name()])
            .set(1.0);
        restarts.with_label_values(&l).inc_by(s.restarts as f64);
        if let Some(code) = s.last_exit_code {
            exit.with_label_values(&l).set(f64::from(code));
        }
        if let Some(bytes) = s.rss_bytes {
            rss.with_label_values(&l).set(bytes as f64);
        }
        if let Some(secs) = s.cpu_seconds {
            cpu.with_label_values(&l).inc_by(secs.max(0.0));
        }
    }
    for collector in [up, ready, exit, rss, state] {
        registry.register(Box::new(collector))?;
    }
    registry.register(Box::new(restarts))?;
    registry.register(Box::new(cpu))?;

    if let Some(src) = &status.source {
        counter(
            "stackctl_source_frames_total",
            "H.264 frames read from the camera's segment",
            src.frames as f64,
        )?;
        counter(
            "stackctl_source_lost_total",
            "Frames lost by falling a ring behind",
            src.lost as f64,
        )?;
        counter(
            "stackctl_source_malformed_total",
            "Malformed frames dropped",
            src.malformed as f64,
        )?;
        counter(
            "stackctl_source_torn_retries_total",
            "Copies retried: the camera was still writing",
            src.torn_retries as f64,
        )?;
        counter(
            "stackctl_source_late_tears_total",
            "Early deliveries found torn afterwards",
            src.late_tears as f64,
        )?;
        counter(
            "stackctl_source_restarts_total",
            "Camera restarts followed",
            src.restarts as f64,
        )?;
    }
    let plugin_up = GaugeVec::new(
        Opts::new("stackctl_plugin_up", "1 while a sink plugin runs"),
        &["plugin"],
    )?;
    let plugin_frames = CounterVec::new(
        Opts::new("stackctl_plugin_frames_total", "Frames handed to a plugin"),
        &["plugin"],
    )?;
    let plugin_dropped = CounterVec::new(
        Opts::new(
            "stackctl_plugin_dropped_total",
            "Frames a plugin missed by being slow (whole GOPs)",
        ),
        &["plugin"],
    )?;
    for p in &status.plugins {
        let l = [p.name.as_str()];
        plugin_up
            .with_label_values(&l)
            .set(bool_f(p.state == "running"));
        plugin_frames.with_label_values(&l).inc_by(p.frames as f64);
        plugin_dropped
            .with_label_values(&l)
            .inc_by(p.dropped as f64);
    }
    registry.register(Box::new(plugin_up))?;
    registry.register(Box::new(plugin_frames))?;
    registry.register(Box::new(plugin_dropped))?;

    let mut out = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn bool_f(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::status::{ServiceState, ServiceStatus};

    pub(crate) fn sample() -> StackStatus {
        let service = |name: &str, state, restarts| ServiceStatus {
            name: name.into(),
            state,
            detail: None,
            required: true,
            ready: state == ServiceState::Ready,
            pid: Some(42),
            uptime_secs: Some(1.0),
            restarts,
            last_exit: None,
            last_exit_code: Some(143),
            cpu_percent: Some(0.5),
            cpu_seconds: Some(1.25),
            rss_bytes: Some(4096),
        };
        StackStatus {
            version: "0.1.0".into(),
            pid: 1,
            uptime_secs: 3.0,
            ready: true,
            phase: "ready".into(),
            services: vec![
                service("camera", ServiceState::Ready, 2),
                service("detector", ServiceState::Backoff, 7),
            ],
            cpu_seconds: 0.5,
            rss_bytes: 8_000_000,
            plugins: Vec::new(),
            source: None,
        }
    }

    #[test]
    fn counters_are_counters_and_every_service_is_labelled() {
        let text = render(&sample()).expect("render");
        assert!(
            text.contains("# TYPE stackctl_service_restarts_total counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE stackctl_service_cpu_seconds_total counter"));
        assert!(text.contains("# TYPE stackctl_service_up gauge"));
        assert!(text.contains("stackctl_service_restarts_total{service=\"detector\"} 7"));
        assert!(text.contains("stackctl_service_ready{service=\"camera\"} 1"));
        assert!(text.contains("stackctl_service_up{service=\"detector\"} 0"));
        assert!(text.contains("stackctl_service_state{service=\"detector\",state=\"backoff\"} 1"));
        assert!(text.contains("stackctl_service_last_exit_code{service=\"camera\"} 143"));
        assert!(text.contains("stackctl_ready 1"));
    }
}
