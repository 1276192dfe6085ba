//! The NAL bus: one frame, many consumers, nobody waits for anybody.
//!
//! The source publishes each [`Frame`] once, as an `Arc`; every subscriber has its own bounded
//! queue, and publishing only ever *tries* to push into it. The publisher (the shared-memory
//! reader) therefore never blocks, however slow a consumer is, and the frame's bytes are never
//! copied again.
//!
//! # Lagging
//!
//! When a subscriber's queue is full, the frame is dropped **for that subscriber only** and the
//! subscriber is marked *lagging*. A lagging subscriber is then skipped until the next IDR frame,
//! so what it receives is always a decodable chain: every frame it gets after a gap is an IDR,
//! and every non-IDR frame it gets follows, without a gap, the frame before it. All frames not
//! delivered are counted in [`SubscriberStats::dropped`], and each gap in
//! [`SubscriberStats::gaps`]. Each subscriber's [`IdrGate`] (from `stackctl-media`, the one
//! every sink uses for its own clients too) makes that decision.
//!
//! A subscriber created with [`StartAt::NextIdr`] starts out lagging, which is how a new viewer
//! or a new recording begins cleanly at a keyframe.
//!
//! # Detections
//!
//! The detector's results travel on the same bus ([`Bus::publish_detections`]), never
//! disturbing frame subscribers. Two ways to receive them:
//! - [`Bus::subscribe_detections`]: results only, as soon as they are published (server-sent
//!   events, a latest-result cache);
//! - [`Bus::subscribe_items`]: frames *and* results on one queue ([`BusItem`]), in timestamp
//!   order: a result comes right after the frame it belongs to (the last frame whose camera
//!   timestamp is not later than its own). A result published before that frame is held until
//!   the frame is published, or for at most [`DETECTION_HOLD`] (a result of a frame that never
//!   comes, or a detector on another clock). Frames are never held back for results, so a
//!   result that arrives after later frames follows them. Frames on an item queue obey the IDR
//!   gate as on a frame queue; a result that finds the queue full is dropped and counted
//!   ([`SubscriberStats::detections_dropped`]), without a gap.
//!
//! ```
//! use stackctl_core::bus::{Bus, StartAt, SubscribeOptions};
//!
//! let bus = Bus::new();
//! let sub = bus.subscribe(SubscribeOptions::new("recorder").capacity(64).start(StartAt::NextIdr));
//! assert_eq!(bus.subscriber_count(), 1);
//! drop(sub); // leaving is just dropping the subscription
//! assert_eq!(bus.subscriber_count(), 0);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use stackctl_media::gate::{Admit, IdrGate};

use crate::detections::Detections;
use crate::frame::Frame;
use stackctl_media::clock::monotonic_ns;

mod order;

use order::Held;

/// The longest a result waits on item queues for the frame it belongs to.
pub const DETECTION_HOLD: Duration = Duration::from_millis(500);

/// What an item subscription ([`Bus::subscribe_items`]) receives.
#[derive(Debug, Clone)]
pub enum BusItem {
    /// A frame.
    Frame(Arc<Frame>),
    /// A result of the detector.
    Detections(Arc<Detections>),
}

/// Where a new subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// With the next frame published, whatever it is.
    #[default]
    Next,
    /// With the next IDR frame (frames before it are not counted as drops).
    NextIdr,
}

/// How to subscribe.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    name: String,
    capacity: usize,
    start: StartAt,
}

impl SubscribeOptions {
    /// Options for a subscriber called `name` (used in logs and metrics): a queue of 32 frames
    /// (about one second at 30 fps), starting with the next frame.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            capacity: 32,
            start: StartAt::Next,
        }
    }

    /// Queue length in frames (at least 1).
    pub fn capacity(mut self, frames: usize) -> Self {
        self.capacity = frames.max(1);
        self
    }

    /// Where to start.
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }
}

/// Counters of one subscriber, shared between the bus and the subscription.
#[derive(Debug, Default)]
pub struct SubscriberStats {
    /// Frames queued for this subscriber.
    pub delivered: AtomicU64,
    /// Frames it did not get: its queue was full, or it was skipping to the next IDR after that.
    pub dropped: AtomicU64,
    /// How many times it fell behind (each gap costs the rest of a GOP).
    pub gaps: AtomicU64,
    /// Detector results queued for it (detection and item subscribers).
    pub detections_delivered: AtomicU64,
    /// Detector results it did not get: its queue was full.
    pub detections_dropped: AtomicU64,
}

/// A point-in-time copy of [`SubscriberStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubscriberCounts {
    /// See [`SubscriberStats::delivered`].
    pub delivered: u64,
    /// See [`SubscriberStats::dropped`].
    pub dropped: u64,
    /// See [`SubscriberStats::gaps`].
    pub gaps: u64,
}

impl SubscriberStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> SubscriberCounts {
        SubscriberCounts {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
        }
    }
}

/// A subscriber's queue, by what it carries.
enum Tx {
    Frames(Sender<Arc<Frame>>),
    Items(Sender<BusItem>),
    Detections(Sender<Arc<Detections>>),
}

struct Slot {
    id: u64,
    name: Arc<str>,
    tx: Tx,
    /// Joining (from the start with [`StartAt::NextIdr`]), live, or skipping after a drop.
    gate: IdrGate,
    stats: Arc<SubscriberStats>,
}

impl Slot {
    /// Offers a frame (frame and item queues); false once the subscription is gone.
    fn offer_frame(&mut self, frame: &Arc<Frame>, report: &mut PublishReport) -> bool {
        if matches!(self.tx, Tx::Detections(_)) {
            return true;
        }
        if let Admit::Skip { counted } = self.gate.offer(frame.is_idr()) {
            if counted {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                report.dropped += 1;
            }
            return true;
        }
        let sent = match &self.tx {
            Tx::Frames(tx) => tx.try_send(frame.clone()).map_err(|e| e.is_full()),
            Tx::Items(tx) => tx
                .try_send(BusItem::Frame(frame.clone()))
                .map_err(|e| e.is_full()),
            Tx::Detections(_) => return true,
        };
        match sent {
            Ok(()) => {
                self.gate.delivered();
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                report.delivered += 1;
                true
            }
            Err(true) => {
                let lost = self.gate.rejected();
                if lost.new_gap {
                    self.stats.gaps.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(subscriber = %self.name, "queue full: skipping to the next IDR");
                }
                if lost.counted {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    report.dropped += 1;
                }
                true
            }
            // The subscription was dropped between its Drop and our lock: forget it.
            Err(false) => false,
        }
    }

    /// Offers a result to a detection queue (`items` false) or an item queue (`items` true);
    /// false once the subscription is gone.
    fn offer_detections(
        &mut self,
        d: &Arc<Detections>,
        items: bool,
        report: &mut PublishReport,
    ) -> bool {
        let sent = match (&self.tx, items) {
            (Tx::Detections(tx), false) => tx.try_send(d.clone()).map_err(|e| e.is_full()),
            (Tx::Items(tx), true) => tx
                .try_send(BusItem::Detections(d.clone()))
                .map_err(|e| e.is_full()),
            _ => return true,
        };
        match sent {
            Ok(()) => {
                self.stats
                    .detections_delivered
                    .fetch_add(1, Ordering::Relaxed);
                report.delivered += 1;
                true
            }
            Err(true) => {
                self.stats
                    .detections_dropped
                    .fetch_add(1, Ordering::Relaxed);
                report.dropped += 1;
                true
            }
            Err(false) => false,
        }
    }
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    /// Results waiting on item queues for their frame.
    held: Held,
    /// The latest frame timestamp published (ns).
    last_frame_ns: u64,
}

impl State {
    /// Releases what the hold lets go at `now` to the item queues.
    fn release_ready(&mut self, now: u64) {
        let ready = self.held.release(self.last_frame_ns, now);
        self.release(ready);
    }

    /// Offers results released from the hold to the item queues, in order.
    fn release(&mut self, ready: Vec<Arc<Detections>>) {
        for d in ready {
            let mut report = PublishReport::default();
            self.slots
                .retain_mut(|slot| slot.offer_detections(&d, true, &mut report));
        }
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    next_id: AtomicU64,
    published: AtomicU64,
    published_detections: AtomicU64,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        // The lock is only held for pushes that cannot panic; a poisoned lock still holds a
        // consistent list.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The distribution bus. Cheap to clone; all clones are the same bus.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.subscriber_count())
            .field("published", &self.published())
            .finish()
    }
}

/// What one [`Bus::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Subscribers the frame was queued for.
    pub delivered: usize,
    /// Subscribers that did not get it (full queue or skipping to an IDR).
    pub dropped: usize,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscriber. It receives frames published from now on, per `opts`.
    pub fn subscribe(&self, opts: SubscribeOptions) -> Subscription {
        self.add(opts, Tx::Frames)
    }

    /// Adds a subscriber to the detector's results only: each result as soon as it is
    /// published. `opts.start` does not apply.
    pub fn subscribe_detections(&self, opts: SubscribeOptions) -> Subscription<Arc<Detections>> {
        self.add(opts, Tx::Detections)
    }

    /// Adds a subscriber to frames and results on one queue, in timestamp order (see the
    /// module docs); frames as for [`Bus::subscribe`].
    pub fn subscribe_items(&self, opts: SubscribeOptions) -> Subscription<BusItem> {
        self.add(opts, Tx::Items)
    }

    fn add<T>(&self, opts: SubscribeOptions, tx: impl FnOnce(Sender<T>) -> Tx) -> Subscription<T> {
        let (sender, rx) = crossbeam_channel::bounded(opts.capacity);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(SubscriberStats::default());
        let name: Arc<str> = opts.name.into();
        let gate = match opts.start {
            StartAt::Next => IdrGate::live(),
            StartAt::NextIdr => IdrGate::joining(),
        };
        self.inner.state().slots.push(Slot {
            id,
            name: name.clone(),
            tx: tx(sender),
            gate,
            stats: stats.clone(),
        });
        Subscription {
            id,
            name,
            rx,
            stats,
            bus: Arc::downgrade(&self.inner),
        }
    }

    /// Offers `frame` to every subscriber without ever blocking; then releases the results
    /// held for it to the item queues.
    pub fn publish(&self, frame: Arc<Frame>) -> PublishReport {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let mut report = PublishReport::default();
        let mut state = self.inner.state();
        state
            .slots
            .retain_mut(|slot| slot.offer_frame(&frame, &mut report));
        let ts = frame.meta().timestamp_ns;
        state.last_frame_ns = state.last_frame_ns.max(ts);
        if !state.held.is_empty() {
            state.release_ready(monotonic_ns());
        }
        report
    }

    /// Offers a result of the detector to every detection subscriber at once, and to every
    /// item subscriber after the frame it belongs to (see the module docs). Never blocks.
    /// The report counts detection subscribers only (item subscribers may get it later).
    pub fn publish_detections(&self, detections: Arc<Detections>) -> PublishReport {
        self.inner
            .published_detections
            .fetch_add(1, Ordering::Relaxed);
        let mut report = PublishReport::default();
        let mut state = self.inner.state();
        state
            .slots
            .retain_mut(|slot| slot.offer_detections(&detections, false, &mut report));
        if !state.slots.iter().any(|s| matches!(s.tx, Tx::Items(_))) {
            return report;
        }
        if detections.timestamp_ns <= state.last_frame_ns && state.held.is_empty() {
            state.release(vec![detections]);
        } else {
            let now = monotonic_ns();
            state.held.push(detections, now);
            state.release_ready(now);
        }
        report
    }

    /// Releases results held longer than [`DETECTION_HOLD`] to the item queues. The detection
    /// source's thread calls it between results, so a result whose frame never comes is not
    /// held forever on a bus without frames.
    pub fn release_detections(&self) {
        let mut state = self.inner.state();
        if !state.held.is_empty() {
            state.release_ready(monotonic_ns());
        }
    }

    /// Number of live subscribers (of every kind).
    pub fn subscriber_count(&self) -> usize {
        self.inner.state().slots.len()
    }

    /// Frames published so far.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Detector results published so far.
    pub fn published_detections(&self) -> u64 {
        self.inner.published_detections.load(Ordering::Relaxed)
    }

    /// Disconnects every subscriber: each receives what is already queued, then
    /// [`RecvError::Closed`].
    pub fn close(&self) {
        let mut state = self.inner.state();
        state.slots.clear();
        state.held = Held::default();
    }
}

/// Why a receive returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// Nothing arrived in time (or nothing is queued, for `try_recv`).
    #[error("no frame available")]
    Empty,
    /// The bus was closed and the queue is drained.
    #[error("the bus is closed")]
    Closed,
}

/// One consumer's end of the bus: frames by default, or `Arc<Detections>`
/// ([`Bus::subscribe_detections`]) or [`BusItem`]s ([`Bus::subscribe_items`]). Dropping it
/// unsubscribes.
pub struct Subscription<T = Arc<Frame>> {
    id: u64,
    name: Arc<str>,
    rx: Receiver<T>,
    stats: Arc<SubscriberStats>,
    bus: Weak<Inner>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("queued", &self.rx.len())
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl<T> Subscription<T> {
    /// The name given at subscribe time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Blocks until a frame (or item) arrives or the bus closes.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.rx.recv().map_err(|_| RecvError::Closed)
    }

    /// Blocks at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => RecvError::Empty,
            RecvTimeoutError::Disconnected => RecvError::Closed,
        })
    }

    /// Returns a queued frame, if any, without blocking.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        self.rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => RecvError::Empty,
            TryRecvError::Disconnected => RecvError::Closed,
        })
    }

    /// Frames waiting in this subscriber's queue.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }

    /// This subscriber's counters (shared: they keep counting).
    pub fn stats(&self) -> &Arc<SubscriberStats> {
        &self.stats
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            inner.state().slots.retain(|slot| slot.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests;
