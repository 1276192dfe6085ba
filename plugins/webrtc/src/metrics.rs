//! The sink's counters, and their Prometheus text: the legacy `streaming_*` names (with
//! counters typed as counters) plus per-viewer and connection figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use stackctl_sink_sdk::MetricsText;

/// Upper bounds of the time-to-first-frame and catch-up histograms, in seconds.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0];

/// A histogram of durations over [`BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, m: &mut MetricsText, name: &str, help: &str) {
        let mut cumulative = 0;
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, n)| {
                cumulative += n.load(Relaxed);
                (*le, cumulative)
            })
            .collect();
        m.histogram(
            name,
            help,
            &buckets,
            self.sum_us.load(Relaxed) as f64 / 1e6,
            self.count(),
        );
    }
}

/// Counters shared by the delivery thread, the viewers' tasks and HTTP handlers.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Access units received from stackctl.
    pub frames_read: AtomicU64,
    /// Access units cut into RTP payloads.
    pub frames_processed: AtomicU64,
    /// Access units that could not be used (no NAL unit in them).
    pub read_errors: AtomicU64,
    /// Frames not queued for a viewer because its queue was full, summed over viewers.
    pub frames_dropped: AtomicU64,
    /// Frames written to viewers, summed over viewers.
    pub frames_sent: AtomicU64,
    /// Failed offers, failed writes to a connection.
    pub webrtc_errors: AtomicU64,
    /// Age of the latest frame when it arrived (µs): camera to this sink.
    pub frame_latency_us: AtomicU64,
    /// Time to cut the latest frame into payloads and queue it (µs).
    pub process_latency_us: AtomicU64,
    /// Viewers ever accepted.
    pub total_clients: AtomicU64,
    /// Offers refused (and viewers turned away as they connected) because `max_clients`
    /// viewers were connected.
    pub rejected_full: AtomicU64,
    /// Offers refused because `max_pending` offers were waiting for their viewers.
    pub rejected_busy: AtomicU64,
    /// Viewers answered with a format of another profile than the camera's.
    pub profile_mismatch: AtomicU64,
    /// Frames a worker never got because its queue was full (each of its viewers skips to the
    /// next IDR).
    pub worker_frames_lost: AtomicU64,
    /// Offers refused as malformed (bad SDP, no video, wrong content type, too large).
    pub rejected_invalid: AtomicU64,
    /// PLI and FIR requests from viewers.
    pub keyframe_requests: AtomicU64,
    /// NACKs (RTCP generic NACK messages) from viewers.
    pub nack_requests: AtomicU64,
    /// RTP packets those NACKs asked for.
    pub nack_packets_requested: AtomicU64,
    /// RTP packets sent again in answer (the rest had left the `nack_window` history).
    pub retransmitted_packets: AtomicU64,
    /// Viewers removed, by why.
    pub removed_closed: AtomicU64,
    /// Viewers removed because ICE failed, disconnected too long or never connected.
    pub removed_failed: AtomicU64,
    /// UDP datagrams sent to viewers (RTP, RTCP, DTLS, STUN).
    pub udp_datagrams: AtomicU64,
    /// `sendmsg` calls that sent them: fewer than datagrams when sends are batched.
    pub udp_send_calls: AtomicU64,
    /// Sends the kernel refused (their datagrams are lost).
    pub udp_send_errors: AtomicU64,
    /// Detection results handed to viewers' `detections` channels, summed over viewers.
    pub detections_sent: AtomicU64,
    /// Detection results a viewer missed: its channel full (more than
    /// [`overlay::MAX_BUFFERED`](crate::overlay::MAX_BUFFERED) bytes waiting), its channel
    /// refusing, or its worker's queue full; summed over viewers.
    pub detections_dropped: AtomicU64,
    /// Viewers with a `detections` channel open.
    pub detection_channels: AtomicU64,
    /// From a viewer's offer to its first frame on the wire.
    pub ttff: Histogram,
    /// From a viewer's first frame to live (its GOP replayed, frames going out as they come).
    pub catch_up: Histogram,
}

/// Live figures the hub adds to the counters when metrics are gathered.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Viewers per connection state.
    pub states: Vec<(&'static str, u64)>,
    /// Connected viewers.
    pub active: u64,
    /// Answered offers whose viewers have not connected yet.
    pub pending: u64,
    /// Fullest viewer queue, percent.
    pub queue_usage_percent: f64,
    /// Per viewer: id, bytes sent, packets sent, frames dropped, keyframe requests.
    pub viewers: Vec<(String, u64, u64, u64, u64)>,
}

impl Metrics {
    /// The Prometheus text of the counters and of `live`.
    pub fn render(&self, live: &Snapshot) -> String {
        let get = |c: &AtomicU64| c.load(Relaxed);
        let mut m = MetricsText::new();
        m.counter(
            "streaming_frames_read_total",
            "Access units received from the camera.",
            get(&self.frames_read),
        )
        .counter(
            "streaming_frames_processed_total",
            "Access units cut into RTP payloads.",
            get(&self.frames_processed),
        )
        .counter(
            "streaming_frames_dropped_total",
            "Frames a viewer missed because its queue was full (it skips to the next IDR), summed over viewers.",
            get(&self.frames_dropped),
        )
        .counter(
            "streaming_webrtc_frames_sent_total",
            "Frames written to viewers, summed over viewers.",
            get(&self.frames_sent),
        )
        .counter(
            "streaming_webrtc_frames_dropped_total",
            "Same as streaming_frames_dropped_total (the legacy server had both).",
            get(&self.frames_dropped),
        )
        .counter(
            "streaming_read_errors_total",
            "Access units without a NAL unit.",
            get(&self.read_errors),
        )
        .counter(
            "streaming_process_errors_total",
            "Access units that could not be packetized (always 0: kept for the legacy dashboards).",
            0,
        )
        .counter(
            "streaming_webrtc_errors_total",
            "Offers that failed inside WebRTC, and failed writes to a viewer.",
            get(&self.webrtc_errors),
        )
        .gauge(
            "streaming_frame_latency_ms",
            "Age of the latest frame when the sink received it (camera to sink), ms.",
            get(&self.frame_latency_us) as f64 / 1000.0,
        )
        .gauge(
            "streaming_process_latency_ms",
            "Time to packetize and queue the latest frame for every viewer, ms.",
            get(&self.process_latency_us) as f64 / 1000.0,
        )
        .gauge(
            "streaming_webrtc_buffer_usage_percent",
            "Fill of the fullest viewer queue, percent.",
            live.queue_usage_percent,
        )
        .gauge(
            "streaming_active_clients",
            "Viewers connected now.",
            live.active as f64,
        )
        .counter(
            "streaming_total_clients",
            "Viewers accepted since start (a counter, though the legacy name lacks _total).",
            get(&self.total_clients),
        )
        .counters(
            "webrtc_offers_rejected_total",
            "Offers refused, by reason.",
            [
                (&[("reason", "full")][..], get(&self.rejected_full)),
                (&[("reason", "busy")][..], get(&self.rejected_busy)),
                (&[("reason", "invalid")][..], get(&self.rejected_invalid)),
            ],
        )
        .counters(
            "webrtc_viewers_removed_total",
            "Viewers removed, by reason: closed (DELETE, closed by the viewer, stop) or failed (ICE failed or timed out, or never connected within connect_timeout).",
            [
                (&[("reason", "closed")][..], get(&self.removed_closed)),
                (&[("reason", "failed")][..], get(&self.removed_failed)),
            ],
        )
        .counter(
            "webrtc_keyframe_requests_total",
            "PLI and FIR requests from viewers (the camera cannot honour them: counted only).",
            get(&self.keyframe_requests),
        )
        .counter(
            "webrtc_nack_requests_total",
            "NACKs (RTCP generic NACK messages) from viewers.",
            get(&self.nack_requests),
        )
        .counter(
            "webrtc_nack_packets_requested_total",
            "RTP packets viewers' NACKs asked for.",
            get(&self.nack_packets_requested),
        )
        .counter(
            "webrtc_retransmitted_packets_total",
            "RTP packets sent again in answer to NACKs (asked for and still among the last nack_window packets).",
            get(&self.retransmitted_packets),
        )
        .gauge(
            "webrtc_pending_offers",
            "Answered offers whose viewers have not connected yet (they do not count against max_clients).",
            live.pending as f64,
        )
        .counter(
            "webrtc_profile_mismatch_total",
            "Viewers answered with an H.264 format of another profile than the camera's (its stream is sent all the same).",
            get(&self.profile_mismatch),
        )
        .counter(
            "webrtc_worker_frames_lost_total",
            "Frames a worker thread never got because its queue was full (its viewers skip to the next IDR).",
            get(&self.worker_frames_lost),
        )
        .counter(
            "webrtc_udp_datagrams_sent_total",
            "UDP datagrams sent to viewers (RTP, RTCP, DTLS, STUN).",
            get(&self.udp_datagrams),
        )
        .counter(
            "webrtc_udp_send_calls_total",
            "Syscalls that sent them: runs of a viewer's packets go out in one (UDP GSO).",
            get(&self.udp_send_calls),
        )
        .gauge(
            "webrtc_detection_channels",
            "Viewers with a detections data channel open.",
            get(&self.detection_channels) as f64,
        )
        .counter(
            "webrtc_detections_sent_total",
            "Detection results sent on viewers' detections channels, summed over viewers.",
            get(&self.detections_sent),
        )
        .counter(
            "webrtc_detections_dropped_total",
            "Detection results a viewer missed (its channel full or refusing, or its worker behind), summed over viewers.",
            get(&self.detections_dropped),
        )
        .counter(
            "webrtc_udp_send_errors_total",
            "UDP sends the kernel refused (their datagrams are lost).",
            get(&self.udp_send_errors),
        )
        .gauges(
            "webrtc_connections",
            "Viewers per connection state.",
            live.states
                .iter()
                .map(|(state, n)| (std::slice::from_ref(state_label(state)), *n as f64)),
        );
        let ids: Vec<[(&str, &str); 1]> = live
            .viewers
            .iter()
            .map(|v| [("viewer", v.0.as_str())])
            .collect();
        let per = |f: fn(&(String, u64, u64, u64, u64)) -> u64| {
            ids.iter()
                .zip(&live.viewers)
                .map(move |(labels, v)| (&labels[..], f(v)))
        };
        m.counters(
            "webrtc_viewer_bytes_sent_total",
            "RTP payload and header bytes written, per viewer.",
            per(|v| v.1),
        )
        .counters(
            "webrtc_viewer_packets_sent_total",
            "RTP packets written, per viewer.",
            per(|v| v.2),
        )
        .counters(
            "webrtc_viewer_frames_dropped_total",
            "Frames skipped because the viewer's queue was full, per viewer.",
            per(|v| v.3),
        )
        .counters(
            "webrtc_viewer_keyframe_requests_total",
            "PLI and FIR requests, per viewer.",
            per(|v| v.4),
        );
        self.ttff.render(
            &mut m,
            "webrtc_time_to_first_frame_seconds",
            "From a viewer's offer to its first frame on the wire.",
        );
        self.catch_up.render(
            &mut m,
            "webrtc_catch_up_seconds",
            "From a viewer's first frame to live: the frames since the last IDR replayed, each frame then going out as it comes.",
        );
        m.finish()
    }
}

/// `("state", name)` as a static label pair.
fn state_label(state: &&'static str) -> &'static (&'static str, &'static str) {
    match *state {
        "new" => &("state", "new"),
        "connecting" => &("state", "connecting"),
        "connected" => &("state", "connected"),
        "disconnected" => &("state", "disconnected"),
        _ => &("state", "other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_are_typed_and_the_histogram_is_cumulative() {
        let m = Metrics::default();
        m.frames_read.fetch_add(3, Relaxed);
        m.ttff.observe(Duration::from_millis(80));
        m.ttff.observe(Duration::from_millis(400));
        m.ttff.observe(Duration::from_secs(30));
        let live = Snapshot {
            states: vec![("connected", 2), ("connecting", 1)],
            active: 2,
            viewers: vec![("a".into(), 10, 1, 0, 0), ("b".into(), 20, 2, 1, 0)],
            ..Snapshot::default()
        };
        let text = m.render(&live);
        assert!(text.contains(
            "# TYPE streaming_frames_read_total counter\nstreaming_frames_read_total 3\n"
        ));
        assert!(
            text.contains("# TYPE streaming_active_clients gauge\nstreaming_active_clients 2\n")
        );
        assert!(text.contains("# TYPE streaming_total_clients counter\n"));
        assert!(text.contains("webrtc_connections{state=\"connecting\"} 1\n"));
        assert!(text.contains("webrtc_viewer_bytes_sent_total{viewer=\"b\"} 20\n"));
        assert!(text.contains("webrtc_time_to_first_frame_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("webrtc_time_to_first_frame_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(text.contains("webrtc_time_to_first_frame_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("webrtc_time_to_first_frame_seconds_count 3\n"));
    }
}
