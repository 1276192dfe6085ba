//! The sink's counters and their Prometheus text (every name starts with `rtsp_`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use stackctl_sink_sdk::MetricsText;

/// Why a session ended, as `rtsp_sessions_closed_total{reason}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseReason {
    /// TEARDOWN.
    Teardown,
    /// No request and no RTCP for `session_timeout`.
    Timeout,
    /// Its TCP connection closed (interleaved sessions end with it).
    Disconnect,
    /// Its TCP connection took no data for too long (a stalled or vanished client).
    Stalled,
    /// The sink stopped.
    Stopped,
}

impl CloseReason {
    const ALL: [CloseReason; 5] = [
        CloseReason::Teardown,
        CloseReason::Timeout,
        CloseReason::Disconnect,
        CloseReason::Stalled,
        CloseReason::Stopped,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Teardown => "teardown",
            CloseReason::Timeout => "timeout",
            CloseReason::Disconnect => "disconnect",
            CloseReason::Stalled => "stalled",
            CloseReason::Stopped => "stopped",
        }
    }
}

/// Counters shared by the delivery thread, the connections and the metrics reader.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Access units received from stackctl.
    pub frames_received: AtomicU64,
    /// Access units that could not be used (no NAL unit in them).
    pub frames_invalid: AtomicU64,
    /// RTSP connections accepted.
    pub connections_total: AtomicU64,
    /// Connections closed at once because too many were open.
    pub connections_refused: AtomicU64,
    /// Sessions set up over TCP (interleaved).
    pub sessions_tcp_total: AtomicU64,
    /// Sessions set up over UDP.
    pub sessions_udp_total: AtomicU64,
    closed: [AtomicU64; 5],
    /// Requests refused for bad credentials (or none where they were needed, after a try).
    pub auth_failures: AtomicU64,
    /// RTP packets sent, all clients.
    pub packets_sent: AtomicU64,
    /// Bytes sent (RTP and RTCP), all clients.
    pub bytes_sent: AtomicU64,
    /// Frames sent, all clients.
    pub frames_sent: AtomicU64,
    /// RTCP sender reports sent.
    pub sender_reports: AtomicU64,
    /// RTCP packets received from clients.
    pub rtcp_received: AtomicU64,
    /// UDP sends the kernel refused (their datagrams are lost).
    pub udp_send_errors: AtomicU64,
    responses: Mutex<BTreeMap<u16, u64>>,
}

/// One client's labels (session, transport) and its bytes, packets and drops.
type ClientSample<'a> = ([(&'a str, &'a str); 2], u64, u64, u64);

/// What the live sessions add to the counters when metrics are read.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Open RTSP connections.
    pub connections: usize,
    /// Sessions by (transport, state).
    pub sessions: BTreeMap<(&'static str, &'static str), u64>,
    /// Frames skipped for slow clients, all clients.
    pub frames_dropped: u64,
    /// The fullest client queue, percent.
    pub queue_usage_percent: f64,
    /// Per session: id, transport, bytes sent, packets sent, frames dropped.
    pub clients: Vec<(String, &'static str, u64, u64, u64)>,
}

impl Metrics {
    /// Counts a session's end.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Relaxed);
    }

    /// Counts an answer by its status code.
    pub fn responded(&self, status: u16) {
        *self
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// Answers given with `status` so far.
    pub fn responses(&self, status: u16) -> u64 {
        self.responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text of the counters and of `live`.
    pub fn render(&self, live: &Snapshot) -> String {
        let get = |c: &AtomicU64| c.load(Relaxed);
        let clients: u64 = live.sessions.values().sum();
        let mut m = MetricsText::new();
        m.gauge(
            "rtsp_clients",
            "RTSP sessions set up (playing or paused), all transports.",
            clients as f64,
        );
        let sessions: Vec<(Vec<(&str, &str)>, f64)> = ["tcp", "udp"]
            .iter()
            .flat_map(|t| ["ready", "playing"].map(|s| (*t, s)))
            .map(|(t, s)| {
                let n = live.sessions.get(&(t, s)).copied().unwrap_or(0);
                (vec![("transport", t), ("state", s)], n as f64)
            })
            .collect();
        m.gauges(
            "rtsp_sessions",
            "RTSP sessions by transport and state.",
            sessions.iter().map(|(l, v)| (&l[..], *v)),
        );
        m.counters(
            "rtsp_sessions_total",
            "RTSP sessions set up, by transport.",
            [
                (&[("transport", "tcp")][..], get(&self.sessions_tcp_total)),
                (&[("transport", "udp")][..], get(&self.sessions_udp_total)),
            ],
        );
        let closed: Vec<([(&str, &str); 1], u64)> = CloseReason::ALL
            .iter()
            .map(|r| ([("reason", r.name())], get(&self.closed[*r as usize])))
            .collect();
        m.counters(
            "rtsp_sessions_closed_total",
            "RTSP sessions ended, by reason.",
            closed.iter().map(|(l, v)| (&l[..], *v)),
        );
        m.gauge(
            "rtsp_connections",
            "Open RTSP connections.",
            live.connections as f64,
        );
        m.counter(
            "rtsp_connections_total",
            "RTSP connections accepted.",
            get(&self.connections_total),
        );
        m.counter(
            "rtsp_connections_refused_total",
            "RTSP connections closed at once: too many open.",
            get(&self.connections_refused),
        );
        let responses: Vec<(String, u64)> = self
            .responses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        let labels: Vec<[(&str, &str); 1]> = responses
            .iter()
            .map(|(s, _)| [("status", s.as_str())])
            .collect();
        m.counters(
            "rtsp_responses_total",
            "RTSP answers, by status code.",
            labels
                .iter()
                .zip(&responses)
                .map(|(l, (_, n))| (&l[..], *n)),
        );
        m.counter(
            "rtsp_auth_failures_total",
            "Requests refused for wrong or missing credentials after a try.",
            get(&self.auth_failures),
        );
        m.counter(
            "rtsp_frames_received_total",
            "Access units received from the camera.",
            get(&self.frames_received),
        );
        m.counter(
            "rtsp_frames_invalid_total",
            "Access units that could not be sent (no NAL unit in them).",
            get(&self.frames_invalid),
        );
        m.counter(
            "rtsp_frames_sent_total",
            "Frames sent, summed over clients.",
            get(&self.frames_sent),
        );
        m.counter(
            "rtsp_frames_dropped_total",
            "Frames skipped for slow clients (until their next IDR), summed over clients.",
            live.frames_dropped,
        );
        m.counter(
            "rtsp_packets_sent_total",
            "RTP packets sent, summed over clients.",
            get(&self.packets_sent),
        );
        m.counter(
            "rtsp_bytes_sent_total",
            "Bytes sent (RTP and RTCP, with interleaving headers), summed over clients.",
            get(&self.bytes_sent),
        );
        m.counter(
            "rtsp_sender_reports_total",
            "RTCP sender reports sent.",
            get(&self.sender_reports),
        );
        m.counter(
            "rtsp_rtcp_received_total",
            "RTCP packets received from clients (over UDP or interleaved).",
            get(&self.rtcp_received),
        );
        m.counter(
            "rtsp_udp_send_errors_total",
            "UDP sends the kernel refused.",
            get(&self.udp_send_errors),
        );
        m.gauge(
            "rtsp_queue_usage_percent",
            "The fullest client queue, percent of client_queue.",
            live.queue_usage_percent,
        );
        let per: Vec<ClientSample<'_>> = live
            .clients
            .iter()
            .map(|(id, t, b, p, d)| ([("session", id.as_str()), ("transport", *t)], *b, *p, *d))
            .collect();
        m.counters(
            "rtsp_client_bytes_sent_total",
            "Bytes sent to one client.",
            per.iter().map(|(l, b, _, _)| (&l[..], *b)),
        );
        m.counters(
            "rtsp_client_packets_sent_total",
            "RTP packets sent to one client.",
            per.iter().map(|(l, _, p, _)| (&l[..], *p)),
        );
        m.counters(
            "rtsp_client_frames_dropped_total",
            "Frames skipped for one client.",
            per.iter().map(|(l, _, _, d)| (&l[..], *d)),
        );
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_labels() {
        let m = Metrics::default();
        m.closed(CloseReason::Timeout);
        m.responded(200);
        m.responded(200);
        m.responded(454);
        let mut live = Snapshot {
            connections: 2,
            ..Snapshot::default()
        };
        live.sessions.insert(("tcp", "playing"), 2);
        live.sessions.insert(("udp", "ready"), 1);
        live.clients.push(("AB".into(), "tcp", 10, 2, 1));
        let text = m.render(&live);
        for line in [
            "rtsp_clients 3\n",
            "rtsp_sessions{transport=\"tcp\",state=\"playing\"} 2\n",
            "rtsp_sessions{transport=\"udp\",state=\"ready\"} 1\n",
            "rtsp_sessions{transport=\"udp\",state=\"playing\"} 0\n",
            "rtsp_sessions_closed_total{reason=\"timeout\"} 1\n",
            "rtsp_responses_total{status=\"200\"} 2\n",
            "rtsp_responses_total{status=\"454\"} 1\n",
            "rtsp_connections 2\n",
            "rtsp_client_bytes_sent_total{session=\"AB\",transport=\"tcp\"} 10\n",
            "rtsp_client_frames_dropped_total{session=\"AB\",transport=\"tcp\"} 1\n",
        ] {
            assert!(text.contains(line), "{line}in:\n{text}");
        }
        assert_eq!(m.responses(454), 1);
    }
}
