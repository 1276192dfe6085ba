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
        counter(
            "stackctl_source_bytes_total",
            "Bytes of H.264 read from the camera's segment",
            src.bytes as f64,
        )?;
        counter(
            "stackctl_source_other_format_total",
            "Frames of other formats skipped",
            src.other_format as f64,
        )?;
        counter(
            "stackctl_source_late_windows_total",
            "Two-second windows in which the camera delivered below 85 % of its announced rate",
            src.late_windows as f64,
        )?;
        gauge(
            "stackctl_source_late_fps",
            "Frame rate measured in the last late window (0 before any)",
            src.late_fps.unwrap_or(0.0),
        )?;
        gauge(
            "stackctl_source_has_params",
            "1 once SPS and PPS have been seen",
            bool_f(src.has_params),
        )?;
        if let Some(age) = src.last_frame_age_ms {
            gauge(
                "stackctl_source_last_frame_age_seconds",
                "Seconds since the last frame",
                age / 1000.0,
            )?;
        }
    }
    if let Some(d) = &status.detections {
        detection_metrics(&registry, d)?;
    }
    if let Some(s) = &status.snapshots {
        counter(
            "stackctl_snapshot_encodes_total",
            "JPEG encodes for /snapshot.jpg (at most one per frame and width)",
            s.encodes as f64,
        )?;
        let requests = CounterVec::new(
            Opts::new(
                "stackctl_snapshot_requests_total",
                "/snapshot.jpg requests by result: encoded, cached, error (503 or 400)",
            ),
            &["result"],
        )?;
        requests
            .with_label_values(&["encoded"])
            .inc_by(s.served.saturating_sub(s.cached) as f64);
        requests
            .with_label_values(&["cached"])
            .inc_by(s.cached as f64);
        requests
            .with_label_values(&["error"])
            .inc_by(s.errors as f64);
        registry.register(Box::new(requests))?;
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

fn detection_metrics(
    registry: &Registry,
    d: &crate::status::DetectionStatus,
) -> Result<(), prometheus::Error> {
    let counter = |name: &str, help: &str, value: u64| -> Result<(), prometheus::Error> {
        let c = Counter::with_opts(Opts::new(name, help))?;
        c.inc_by(value as f64);
        registry.register(Box::new(c))
    };
    let gauge = |name: &str, help: &str, value: f64| -> Result<(), prometheus::Error> {
        let g = Gauge::with_opts(Opts::new(name, help))?;
        g.set(value);
        registry.register(Box::new(g))
    };
    gauge(
        "stackctl_detections_attached",
        "1 while the detector's segment is mapped",
        bool_f(d.attached),
    )?;
    counter(
        "stackctl_detection_results_total",
        "Detector results read",
        d.results,
    )?;
    counter(
        "stackctl_detections_total",
        "Detections in the results read",
        d.detections,
    )?;
    let rejected = CounterVec::new(
        Opts::new(
            "stackctl_detections_rejected_total",
            "Detector results not delivered: malformed, missed (overwritten unread), unstable (never held still), late_tear",
        ),
        &["reason"],
    )?;
    for (reason, n) in [
        ("malformed", d.malformed),
        ("missed", d.missed),
        ("unstable", d.unstable),
        ("late_tear", d.late_tears),
    ] {
        rejected.with_label_values(&[reason]).inc_by(n as f64);
    }
    registry.register(Box::new(rejected))?;
    counter(
        "stackctl_detections_torn_retries_total",
        "Copies retried because the detector was writing",
        d.torn_retries,
    )?;
    counter(
        "stackctl_detections_segments_refused_total",
        "Detection segments refused for their size",
        d.refused,
    )?;
    counter(
        "stackctl_detections_restarts_total",
        "Detector restarts followed",
        d.restarts,
    )?;
    if let Some(age) = d.last_result_age_ms {
        gauge(
            "stackctl_detections_last_result_age_seconds",
            "Seconds since the last result",
            age / 1000.0,
        )?;
    }
    gauge(
        "stackctl_detection_stream_clients",
        "/api/detections/stream clients connected",
        d.stream_clients as f64,
    )?;
    counter(
        "stackctl_detection_stream_events_total",
        "Events sent to stream clients",
        d.stream_events,
    )?;
    let dropped = CounterVec::new(
        Opts::new(
            "stackctl_detection_stream_clients_dropped_total",
            "Stream clients disconnected for reading too slowly (slow) or refused at the cap (cap)",
        ),
        &["reason"],
    )?;
    dropped
        .with_label_values(&["slow"])
        .inc_by(d.stream_dropped_slow as f64);
    dropped
        .with_label_values(&["cap"])
        .inc_by(d.stream_refused as f64);
    registry.register(Box::new(dropped))
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
            source: Some(crate::status::SourceStatus {
                shm: "/cam".into(),
                frames: 10,
                lost: 1,
                malformed: 2,
                torn_retries: 3,
                late_tears: 4,
                restarts: 5,
                last_frame_age_ms: Some(20.0),
                bytes: 1000,
                other_format: 6,
                late_windows: 7,
                late_fps: Some(14.5),
                has_params: true,
            }),
            detections: Some(crate::status::DetectionStatus {
                shm: "/det".into(),
                attached: true,
                results: 30,
                detections: 12,
                malformed: 1,
                missed: 2,
                unstable: 3,
                stream_clients: 2,
                stream_dropped_slow: 1,
                ..Default::default()
            }),
            snapshots: Some(crate::status::SnapshotStatus {
                shm: "/nv12".into(),
                served: 100,
                cached: 99,
                encodes: 1,
                errors: 4,
            }),
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

    /// Every counter of the source, the detections and the snapshots is exported (issue: the
    /// source's other_format and late windows were not).
    #[test]
    fn source_detection_and_snapshot_counters() {
        let text = render(&sample()).expect("render");
        for line in [
            "stackctl_source_other_format_total 6",
            "stackctl_source_late_windows_total 7",
            "stackctl_source_late_fps 14.5",
            "stackctl_source_bytes_total 1000",
            "stackctl_source_lost_total 1",
            "stackctl_source_has_params 1",
            "stackctl_detection_results_total 30",
            "stackctl_detections_total 12",
            "stackctl_detections_rejected_total{reason=\"malformed\"} 1",
            "stackctl_detections_rejected_total{reason=\"unstable\"} 3",
            "stackctl_detection_stream_clients 2",
            "stackctl_detection_stream_clients_dropped_total{reason=\"slow\"} 1",
            "stackctl_snapshot_encodes_total 1",
            "stackctl_snapshot_requests_total{result=\"cached\"} 99",
            "stackctl_snapshot_requests_total{result=\"encoded\"} 1",
            "stackctl_snapshot_requests_total{result=\"error\"} 4",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.contains("# TYPE stackctl_source_other_format_total counter"));
    }
}
