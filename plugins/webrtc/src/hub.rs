//! What every thread of the sink shares: the camera's profile (for answering offers), who holds
//! a viewer slot ([`Admission`]), each viewer's worker and figures, and the counters.
//!
//! The frames themselves never pass through here: the delivery thread hands each one to every
//! worker, and each worker feeds its own viewers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use stackctl_media::h264::{self, Profile};

use crate::admission::{Admission, Refused, Slot};
use crate::metrics::{Metrics, Snapshot};

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
    /// Every state, in the order of their numbers.
    pub const ALL: [State; 4] = [
        State::New,
        State::Connecting,
        State::Connected,
        State::Disconnected,
    ];

    /// Its name in the metrics.
    pub fn name(self) -> &'static str {
        match self {
            State::New => "new",
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::Disconnected => "disconnected",
        }
    }
}

/// One viewer's figures, written by its worker, read by the metrics.
#[derive(Debug, Default)]
pub struct ViewerStats {
    state: AtomicU8,
    /// Bytes written (RTP headers included).
    pub bytes_sent: AtomicU64,
    /// Packets written.
    pub packets_sent: AtomicU64,
    /// Frames written.
    pub frames_sent: AtomicU64,
    /// Frames skipped after it joined (it could not keep up, or frames were lost on the way).
    pub frames_dropped: AtomicU64,
    /// PLI and FIR requests it sent.
    pub keyframe_requests: AtomicU64,
    /// Frames waiting in its backlog.
    pub backlog: AtomicU64,
}

impl ViewerStats {
    /// Its connection state.
    pub fn state(&self) -> State {
        State::ALL[usize::from(self.state.load(Relaxed)).min(3)]
    }

    /// Records its connection state.
    pub fn set_state(&self, state: State) {
        self.state.store(state as u8, Relaxed);
    }
}

/// Why a viewer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// DELETE, closed by the viewer, or the sink stopping.
    Closed,
    /// ICE failed, or it never connected.
    Failed,
}

/// What the camera sends, from its latest SPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Camera {
    /// Its H.264 profile.
    pub profile: Profile,
    /// Its `profile-level-id`.
    pub profile_level_id: String,
}

/// Where a viewer lives and what it holds.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its worker.
    pub worker: usize,
    /// Its key on that worker.
    pub key: u64,
    /// Its figures.
    pub stats: Arc<ViewerStats>,
    /// Its slot in the count.
    pub slot: Slot,
}

/// The shared state. See the [module docs](self).
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// The sink's counters.
    pub metrics: Arc<Metrics>,
    /// Frames a viewer may have waiting, for the queue gauge.
    queue: usize,
}

#[derive(Debug)]
struct Inner {
    camera: Option<Camera>,
    last_sps: Vec<u8>,
    admission: Admission,
    viewers: BTreeMap<String, Entry>,
}

impl Hub {
    /// A hub admitting `max_clients` connected viewers and `max_pending` answered offers, for
    /// viewers with backlogs of `queue` frames.
    pub fn new(
        metrics: Arc<Metrics>,
        max_clients: usize,
        max_pending: usize,
        queue: usize,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                camera: None,
                last_sps: Vec::new(),
                admission: Admission::new(max_clients, max_pending),
                viewers: BTreeMap::new(),
            }),
            metrics,
            queue: queue.max(1),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes note of the camera's SPS (from each frame that has one).
    pub fn camera_sps(&self, sps: &[u8]) {
        let mut inner = self.inner();
        if sps != inner.last_sps.as_slice() {
            inner.last_sps = sps.to_vec();
            inner.camera = h264::sps_profile(sps).map(|(profile, profile_level_id)| Camera {
                profile,
                profile_level_id,
            });
        }
    }

    /// The camera's profile, once a frame with an SPS has arrived.
    pub fn camera(&self) -> Option<Camera> {
        self.inner().camera.clone()
    }

    /// Checks an offer can be taken (video flows, room for one more) without taking a slot.
    pub fn check(&self) -> Result<Camera, Refused> {
        let inner = self.inner();
        let camera = inner.camera.clone().ok_or(Refused::NoVideo)?;
        inner.admission.clone().offer()?;
        Ok(camera)
    }

    /// Admits a viewer whose offer is answered: it takes a pending slot, or is refused (and
    /// counted).
    pub fn admit(&self, id: &str, worker: usize, key: u64) -> Result<Arc<ViewerStats>, Refused> {
        let mut inner = self.inner();
        if inner.camera.is_none() {
            return Err(Refused::NoVideo);
        }
        let slot = inner
            .admission
            .offer()
            .inspect_err(|e| self.count_refused(e))?;
        let stats = Arc::new(ViewerStats::default());
        inner.viewers.insert(
            id.to_owned(),
            Entry {
                worker,
                key,
                stats: Arc::clone(&stats),
                slot,
            },
        );
        self.metrics.total_clients.fetch_add(1, Relaxed);
        Ok(stats)
    }

    /// Counts a refusal.
    pub fn count_refused(&self, refused: &Refused) {
        match refused {
            Refused::Full(_) => self.metrics.rejected_full.fetch_add(1, Relaxed),
            Refused::Busy(_) => self.metrics.rejected_busy.fetch_add(1, Relaxed),
            Refused::NoVideo | Refused::Gone => 0,
        };
    }

    /// A viewer connected: it takes one of `max_clients`, or is refused (the board filled up
    /// while it was connecting; counted), or it is gone already (its session was ended).
    pub fn connect(&self, id: &str) -> Result<(), Refused> {
        let mut inner = self.inner();
        let Inner {
            admission, viewers, ..
        } = &mut *inner;
        let Some(entry) = viewers.get_mut(id) else {
            return Err(Refused::Gone);
        };
        if entry.slot == Slot::Connected {
            return Ok(());
        }
        match admission.connect() {
            Ok(slot) => {
                entry.slot = slot;
                Ok(())
            }
            Err(e) => {
                // Its pending slot is gone with the refusal.
                viewers.remove(id);
                self.count_refused(&e);
                Err(e)
            }
        }
    }

    /// Forgets a viewer, freeing its slot; its entry if it was there (whoever gets it does the
    /// counting and the logging, once).
    pub fn remove(&self, id: &str) -> Option<Entry> {
        let mut inner = self.inner();
        let entry = inner.viewers.remove(id)?;
        inner.admission.leave(entry.slot);
        Some(entry)
    }

    /// Counts and logs a removal (by whoever got the viewer's entry from [`Hub::remove`]).
    pub fn removed(&self, id: &str, entry: &Entry, why: Removal) {
        match why {
            Removal::Closed => &self.metrics.removed_closed,
            Removal::Failed => &self.metrics.removed_failed,
        }
        .fetch_add(1, Relaxed);
        tracing::info!(
            viewer = %id,
            reason = ?why,
            frames = entry.stats.frames_sent.load(Relaxed),
            dropped = entry.stats.frames_dropped.load(Relaxed),
            "viewer removed"
        );
    }

    /// Where a viewer lives.
    pub fn find(&self, id: &str) -> Option<Entry> {
        self.inner().viewers.get(id).cloned()
    }

    /// Every viewer's id.
    pub fn ids(&self) -> Vec<String> {
        self.inner().viewers.keys().cloned().collect()
    }

    /// Viewers on each of `workers` workers, for placing the next one.
    pub fn load(&self, workers: usize) -> Vec<usize> {
        let mut load = vec![0; workers];
        for entry in self.inner().viewers.values() {
            if let Some(n) = load.get_mut(entry.worker) {
                *n += 1;
            }
        }
        load
    }

    /// The live figures for the metrics.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner();
        let mut snapshot = Snapshot {
            states: State::ALL.iter().map(|s| (s.name(), 0)).collect(),
            active: inner.admission.connected() as u64,
            pending: inner.admission.pending() as u64,
            ..Snapshot::default()
        };
        for (id, entry) in &inner.viewers {
            let stats = &entry.stats;
            snapshot.states[stats.state() as usize].1 += 1;
            let used = stats.backlog.load(Relaxed);
            snapshot.queue_usage_percent = snapshot
                .queue_usage_percent
                .max((used as f64 * 100.0 / self.queue as f64).min(100.0));
            snapshot.viewers.push((
                id.clone(),
                stats.bytes_sent.load(Relaxed),
                stats.packets_sent.load(Relaxed),
                stats.frames_dropped.load(Relaxed),
                stats.keyframe_requests.load(Relaxed),
            ));
        }
        snapshot
    }
}

/// A random id: 16 hex digits, unguessable enough that one viewer cannot end another's
/// session by guessing its URL.
pub fn new_id() -> String {
    random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `N` random bytes; without the system's randomness, the time and a counter (still unique).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if getrandom::getrandom(&mut bytes).is_err() {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mixed = (t ^ NEXT.fetch_add(1, Relaxed).rotate_left(48)).to_be_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = mixed[i % 8];
        }
    }
    bytes
}

/// A random `u32` (SSRCs, sequence numbers, timestamp origins).
pub fn random_u32() -> u32 {
    u32::from_be_bytes(random_bytes::<4>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];

    #[test]
    fn refuses_before_video_counts_pending_and_connected_apart() {
        let hub = Hub::new(Arc::default(), 1, 2, 90);
        assert_eq!(hub.check().unwrap_err(), Refused::NoVideo);
        assert_eq!(hub.admit("a", 0, 1).unwrap_err(), Refused::NoVideo);
        hub.camera_sps(SPS);
        assert_eq!(hub.camera().unwrap().profile_level_id, "42c01f");
        hub.admit("a", 0, 1).unwrap();
        hub.admit("b", 1, 2).unwrap();
        assert_eq!(hub.check().unwrap_err(), Refused::Busy(2));
        assert_eq!(hub.admit("c", 0, 3).unwrap_err(), Refused::Busy(2));
        assert_eq!(hub.load(2), [1, 1]);
        hub.connect("a").unwrap();
        hub.connect("a").unwrap();
        assert_eq!(hub.snapshot().active, 1);
        // Full now: b connecting is turned away and forgotten.
        assert_eq!(hub.connect("b").unwrap_err(), Refused::Full(1));
        assert!(hub.find("b").is_none());
        assert_eq!(hub.check().unwrap_err(), Refused::Full(1));
        assert_eq!(hub.metrics.rejected_full.load(Relaxed), 1);
        assert_eq!(hub.metrics.rejected_busy.load(Relaxed), 1);
        let entry = hub.remove("a").unwrap();
        assert_eq!((entry.worker, entry.key), (0, 1));
        assert!(hub.remove("a").is_none(), "removed once");
        assert!(hub.check().is_ok());
        assert_eq!(hub.metrics.total_clients.load(Relaxed), 2);
    }

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
