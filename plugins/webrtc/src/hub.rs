//! The fan-out: every access unit is cut into RTP payloads once, then queued for each live
//! viewer. One bounded queue per viewer; a full queue makes that viewer skip to the next IDR
//! (counted), and never slows the others or the delivery thread. A GOP cache (the frames
//! since the last IDR) starts a new viewer at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::metrics::{Metrics, Snapshot};
use stackctl_media::h264::{self, Profile};
use stackctl_media::rtp;

/// The most the GOP cache holds; a longer GOP is not cached (new viewers wait for an IDR).
const GOP_CACHE_FRAMES: usize = 300;
/// The most bytes the GOP cache holds.
const GOP_CACHE_BYTES: usize = 16 << 20;

/// A viewer's feed: waiting for its first IDR, fed every frame, or skipping to the next IDR
/// after its queue was full.
const STARTING: u8 = 0;
const FEEDING: u8 = 1;
const SKIPPING: u8 = 2;

/// One access unit, cut into RTP payloads, shared by every viewer.
#[derive(Debug)]
pub struct Packetized {
    /// Capture time, `CLOCK_MONOTONIC` ns.
    pub timestamp_ns: u64,
    /// An IDR (with SPS and PPS in front).
    pub idr: bool,
    /// The payloads, in order; the marker bit goes on the last.
    pub payloads: Vec<Bytes>,
}

impl Packetized {
    /// Cuts an Annex-B access unit, putting `sps` and `pps` in front of an IDR that lacks
    /// them. `None` when there is no NAL unit in it.
    pub fn new(
        annexb: &[u8],
        sps: Option<&[u8]>,
        pps: Option<&[u8]>,
        timestamp_ns: u64,
    ) -> Option<Self> {
        let info = h264::analyse(annexb).ok()?;
        let idr = info.is_idr();
        let units: Vec<&[u8]> = match (idr, sps, pps) {
            (true, Some(sps), Some(pps)) => h264::with_param_bytes(sps, pps, annexb, &info)
                .ok()?
                .nal_units()
                .collect(),
            _ => info
                .nals()
                .iter()
                .filter_map(|nal| nal.get(annexb))
                .collect(),
        };
        if units.is_empty() {
            return None;
        }
        Some(Self {
            timestamp_ns,
            idr,
            payloads: rtp::packetize(&units, rtp::MAX_PAYLOAD),
        })
    }
}

/// A viewer's connection state, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Answer sent, no ICE yet.
    New = 0,
    /// ICE and DTLS under way.
    Connecting = 1,
    /// Media flows.
    Connected = 2,
    /// ICE lost the peer; it may come back before `failed_timeout`.
    Disconnected = 3,
}

impl State {
    const ALL: [State; 4] = [
        State::New,
        State::Connecting,
        State::Connected,
        State::Disconnected,
    ];

    fn name(self) -> &'static str {
        match self {
            State::New => "new",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Disconnected => "disconnected",
        }
    }
}

/// One viewer as the fan-out sees it: its queue and its figures.
#[derive(Debug)]
pub struct Viewer {
    /// Its id, the last segment of its WHEP resource URL.
    pub id: String,
    /// When its offer arrived.
    pub created: Instant,
    tx: mpsc::Sender<Arc<Packetized>>,
    live: AtomicBool,
    feed: AtomicU8,
    state: AtomicU8,
    /// Bytes written (RTP headers included).
    pub bytes_sent: AtomicU64,
    /// Packets written.
    pub packets_sent: AtomicU64,
    /// Frames written.
    pub frames_sent: AtomicU64,
    /// Frames skipped because its queue was full.
    pub frames_dropped: AtomicU64,
    /// PLI and FIR requests it sent.
    pub keyframe_requests: AtomicU64,
    stopped: AtomicBool,
    stop: tokio::sync::Notify,
}

impl Viewer {
    /// Its connection state.
    pub fn state(&self) -> State {
        State::ALL[usize::from(self.state.load(Relaxed)).min(3)]
    }

    /// Records its connection state.
    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Relaxed);
    }

    /// Tells its tasks to end (it was removed).
    pub fn stop(&self) {
        self.stopped.store(true, Relaxed);
        self.stop.notify_waiters();
    }

    /// Whether it was told to end.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// Resolves once it is told to end.
    pub async fn stopped(&self) {
        let notified = self.stop.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the flag is read: a `stop` in between still wakes it.
        notified.as_mut().enable();
        if !self.is_stopped() {
            notified.await;
        }
    }
}

/// Why a viewer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max_clients` viewers already.
    #[error("maximum clients reached ({0})")]
    Full(usize),
    /// No frame (so no SPS) from the camera yet.
    #[error("no video from the camera yet")]
    NoVideo,
}

/// What the camera sends, from its latest SPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    /// Its H.264 profile.
    pub profile: Profile,
    /// Its `profile-level-id`.
    pub profile_level_id: String,
}

/// The viewers and the frames they are fed.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// The sink's counters.
    pub metrics: Arc<Metrics>,
    max_clients: usize,
    queue: usize,
    gop_cache: bool,
}

#[derive(Debug, Default)]
struct Inner {
    gop: Vec<Arc<Packetized>>,
    gop_bytes: usize,
    camera: Option<Camera>,
    last_sps: Vec<u8>,
    viewers: BTreeMap<String, Arc<Viewer>>,
}

impl Hub {
    /// A hub for at most `max_clients` viewers with `queue` frames each.
    pub fn new(metrics: Arc<Metrics>, max_clients: usize, queue: usize, gop_cache: bool) -> Self {
        Self {
            inner: Mutex::default(),
            metrics,
            max_clients,
            queue,
            gop_cache,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The camera's profile, once a frame with an SPS has arrived.
    pub fn camera(&self) -> Option<Camera> {
        self.inner().camera.clone()
    }

    /// Takes one access unit: queues it for every live viewer, keeps it in the GOP cache.
    pub fn publish(&self, frame: Packetized, sps: Option<&[u8]>) {
        let frame = Arc::new(frame);
        let payload_bytes: usize = frame.payloads.iter().map(Bytes::len).sum();
        let mut inner = self.inner();
        if let Some(sps) = sps
            && sps != inner.last_sps.as_slice()
        {
            inner.last_sps = sps.to_vec();
            inner.camera = h264::sps_profile(sps).map(|(profile, profile_level_id)| Camera {
                profile,
                profile_level_id,
            });
        }
        if self.gop_cache {
            if frame.idr {
                inner.gop.clear();
                inner.gop_bytes = 0;
            }
            let fits = inner.gop.len() < GOP_CACHE_FRAMES
                && inner.gop_bytes + payload_bytes <= GOP_CACHE_BYTES;
            if (frame.idr || !inner.gop.is_empty()) && fits {
                inner.gop.push(Arc::clone(&frame));
                inner.gop_bytes += payload_bytes;
            } else if !fits {
                // Too long a GOP to cache: a new viewer waits for the next IDR instead.
                inner.gop.clear();
                inner.gop_bytes = 0;
            }
        }
        for viewer in inner.viewers.values() {
            if viewer.live.load(Relaxed) {
                self.offer(viewer, &frame);
            }
        }
    }

    /// Queues `frame` for `viewer`, or counts it dropped.
    fn offer(&self, viewer: &Viewer, frame: &Arc<Packetized>) {
        let feed = viewer.feed.load(Relaxed);
        if feed != FEEDING && !frame.idr {
            // Waiting for its first IDR is not a loss; skipping after a full queue is.
            if feed == SKIPPING {
                self.dropped(viewer);
            }
            return;
        }
        match viewer.tx.try_send(Arc::clone(frame)) {
            Ok(()) => viewer.feed.store(FEEDING, Relaxed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                viewer.feed.store(SKIPPING, Relaxed);
                self.dropped(viewer);
            }
            // Its task ended: it is being removed.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn dropped(&self, viewer: &Viewer) {
        viewer.frames_dropped.fetch_add(1, Relaxed);
        self.metrics.frames_dropped.fetch_add(1, Relaxed);
    }

    /// Admits a viewer (not yet fed), or refuses it when the hub is full or the camera has
    /// sent nothing yet. Returns it and the receiving end of its queue.
    pub fn admit(&self) -> Result<(Arc<Viewer>, mpsc::Receiver<Arc<Packetized>>), Refused> {
        let mut inner = self.inner();
        if inner.camera.is_none() {
            return Err(Refused::NoVideo);
        }
        if inner.viewers.len() >= self.max_clients {
            self.metrics.rejected_full.fetch_add(1, Relaxed);
            return Err(Refused::Full(self.max_clients));
        }
        let (tx, rx) = mpsc::channel(self.queue);
        let viewer = Arc::new(Viewer {
            id: new_id(),
            created: Instant::now(),
            tx,
            live: AtomicBool::new(false),
            feed: AtomicU8::new(STARTING),
            state: AtomicU8::new(State::New as u8),
            bytes_sent: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
        });
        inner.viewers.insert(viewer.id.clone(), Arc::clone(&viewer));
        self.metrics.total_clients.fetch_add(1, Relaxed);
        Ok((viewer, rx))
    }

    /// Starts feeding a connected viewer: the GOP cache first (so its first frame is an IDR
    /// with SPS and PPS, shown at once), else from the next IDR.
    pub fn go_live(&self, viewer: &Viewer) {
        let inner = self.inner();
        if viewer.live.load(Relaxed) || !inner.viewers.contains_key(&viewer.id) {
            return;
        }
        viewer.feed.store(STARTING, Relaxed);
        for frame in &inner.gop {
            self.offer(viewer, frame);
        }
        viewer.live.store(true, Relaxed);
    }

    /// Forgets a viewer and tells its task to end; `true` if it was there.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.inner().viewers.remove(id);
        if let Some(viewer) = &removed {
            viewer.live.store(false, Relaxed);
            viewer.stop();
        }
        removed.is_some()
    }

    /// Every viewer's id.
    pub fn ids(&self) -> Vec<String> {
        self.inner().viewers.keys().cloned().collect()
    }

    /// The live figures for the metrics.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner();
        let mut snapshot = Snapshot {
            states: State::ALL.iter().map(|s| (s.name(), 0)).collect(),
            ..Snapshot::default()
        };
        for viewer in inner.viewers.values() {
            let state = viewer.state();
            snapshot.states[state as usize].1 += 1;
            if state == State::Connected {
                snapshot.active += 1;
            }
            let used = self.queue.saturating_sub(viewer.tx.capacity());
            snapshot.queue_usage_percent = snapshot
                .queue_usage_percent
                .max(used as f64 * 100.0 / self.queue as f64);
            snapshot.viewers.push((
                viewer.id.clone(),
                viewer.bytes_sent.load(Relaxed),
                viewer.packets_sent.load(Relaxed),
                viewer.frames_dropped.load(Relaxed),
                viewer.keyframe_requests.load(Relaxed),
            ));
        }
        snapshot
    }
}

/// A random id: 16 hex digits, unguessable enough that one viewer cannot end another's
/// session by guessing its URL.
fn new_id() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness, the time and a counter still make ids unique.
    if getrandom::getrandom(&mut bytes).is_err() {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (t ^ NEXT.fetch_add(1, Relaxed).rotate_left(48)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn frame(n: u64, idr: bool) -> Packetized {
        let nal = if idr { 0x65 } else { 0x41 };
        Packetized::new(&[0, 0, 0, 1, nal, n as u8 + 1], Some(SPS), Some(PPS), n).unwrap()
    }

    fn hub(queue: usize, gop_cache: bool) -> Hub {
        Hub::new(Arc::default(), 2, queue, gop_cache)
    }

    fn drain(rx: &mut mpsc::Receiver<Arc<Packetized>>) -> Vec<u64> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|f| f.timestamp_ns)
            .collect()
    }

    #[test]
    fn refuses_before_video_and_when_full() {
        let hub = hub(4, false);
        assert_eq!(hub.admit().unwrap_err(), Refused::NoVideo);
        hub.publish(frame(0, true), Some(SPS));
        let _a = hub.admit().unwrap();
        let (b, _rx) = hub.admit().unwrap();
        assert_eq!(hub.admit().unwrap_err(), Refused::Full(2));
        assert!(hub.remove(&b.id));
        assert!(!hub.remove(&b.id));
        assert!(hub.admit().is_ok());
        assert_eq!(
            hub.camera().unwrap().profile_level_id,
            "42c01f",
            "profile from the SPS"
        );
    }

    #[test]
    fn a_new_viewer_starts_with_the_gop_cache_or_the_next_idr() {
        for cache in [true, false] {
            let hub = hub(16, cache);
            hub.publish(frame(0, false), Some(SPS)); // before any IDR: never cached
            hub.publish(frame(1, true), Some(SPS));
            hub.publish(frame(2, false), Some(SPS));
            let (viewer, mut rx) = hub.admit().unwrap();
            hub.publish(frame(3, false), Some(SPS)); // not live yet: not queued
            hub.go_live(&viewer);
            hub.publish(frame(4, false), Some(SPS));
            hub.publish(frame(5, true), Some(SPS));
            hub.publish(frame(6, false), Some(SPS));
            let got = drain(&mut rx);
            if cache {
                assert_eq!(got, [1, 2, 3, 4, 5, 6]);
            } else {
                assert_eq!(got, [5, 6]);
            }
            assert!(
                rx.try_recv().is_err(),
                "nothing more, and the first frame was an IDR"
            );
        }
    }

    #[tokio::test]
    async fn removing_a_viewer_tells_its_task_to_end() {
        let hub = hub(4, false);
        hub.publish(frame(0, true), Some(SPS));
        let (viewer, _rx) = hub.admit().unwrap();
        assert!(!viewer.is_stopped());
        // Its sender and its connect deadline both wait.
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let viewer = Arc::clone(&viewer);
                tokio::spawn(async move { viewer.stopped().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(hub.remove(&viewer.id));
        for task in waiting {
            tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .expect("every waiter is told")
                .unwrap();
        }
        // Told before it waits: it does not wait.
        viewer.stopped().await;
        assert!(viewer.is_stopped());
    }

    #[test]
    fn a_slow_viewer_skips_to_the_next_idr_and_does_not_hold_back_the_others() {
        let hub = hub(3, false);
        hub.publish(frame(0, true), Some(SPS));
        let (slow, mut slow_rx) = hub.admit().unwrap();
        let (fast, mut fast_rx) = hub.admit().unwrap();
        hub.go_live(&slow);
        hub.go_live(&fast);
        let mut fast_got = Vec::new();
        for n in 1..=10 {
            hub.publish(frame(n, n % 5 == 0), Some(SPS));
            fast_got.extend(drain(&mut fast_rx));
        }
        assert_eq!(fast_got, [5, 6, 7, 8, 9, 10]);
        // The slow one queued 5, 6, 7, then was full: 8 and 9 dropped, 10 is an IDR but
        // there is still no room.
        assert_eq!(drain(&mut slow_rx), [5, 6, 7]);
        assert_eq!(slow.frames_dropped.load(Relaxed), 3);
        hub.publish(frame(11, false), Some(SPS)); // skipping until an IDR
        hub.publish(frame(15, true), Some(SPS));
        hub.publish(frame(16, false), Some(SPS));
        assert_eq!(drain(&mut slow_rx), [15, 16]);
        assert_eq!(fast.frames_dropped.load(Relaxed), 0);
        assert_eq!(hub.metrics.frames_dropped.load(Relaxed), 4);
    }
}
