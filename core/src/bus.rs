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

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use stackctl_media::gate::{Admit, IdrGate};

use crate::frame::Frame;

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

struct Slot {
    id: u64,
    name: Arc<str>,
    tx: Sender<Arc<Frame>>,
    /// Joining (from the start with [`StartAt::NextIdr`]), live, or skipping after a drop.
    gate: IdrGate,
    stats: Arc<SubscriberStats>,
}

#[derive(Default)]
struct Inner {
    slots: Mutex<Vec<Slot>>,
    next_id: AtomicU64,
    published: AtomicU64,
}

impl Inner {
    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // The lock is only held for pushes that cannot panic; a poisoned lock still holds a
        // consistent list.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
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
        let (tx, rx) = crossbeam_channel::bounded(opts.capacity);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(SubscriberStats::default());
        let name: Arc<str> = opts.name.into();
        let gate = match opts.start {
            StartAt::Next => IdrGate::live(),
            StartAt::NextIdr => IdrGate::joining(),
        };
        self.inner.slots().push(Slot {
            id,
            name: name.clone(),
            tx,
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

    /// Offers `frame` to every subscriber without ever blocking.
    pub fn publish(&self, frame: Arc<Frame>) -> PublishReport {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let mut report = PublishReport::default();
        let idr = frame.is_idr();
        self.inner.slots().retain_mut(|slot| {
            if let Admit::Skip { counted } = slot.gate.offer(idr) {
                if counted {
                    slot.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    report.dropped += 1;
                }
                return true;
            }
            match slot.tx.try_send(frame.clone()) {
                Ok(()) => {
                    slot.gate.delivered();
                    slot.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    report.delivered += 1;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    let lost = slot.gate.rejected();
                    if lost.new_gap {
                        slot.stats.gaps.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(subscriber = %slot.name, "queue full: skipping to the next IDR");
                    }
                    if lost.counted {
                        slot.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        report.dropped += 1;
                    }
                    true
                }
                // The subscription was dropped between its Drop and our lock: forget it.
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        report
    }

    /// Number of live subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.inner.slots().len()
    }

    /// Frames published so far.
    pub fn published(&self) -> u64 {
        self.inner.published.load(Ordering::Relaxed)
    }

    /// Disconnects every subscriber: each receives what is already queued, then
    /// [`RecvError::Closed`].
    pub fn close(&self) {
        self.inner.slots().clear();
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

/// One consumer's end of the bus. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    name: Arc<str>,
    rx: Receiver<Arc<Frame>>,
    stats: Arc<SubscriberStats>,
    bus: Weak<Inner>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("queued", &self.rx.len())
            .field("stats", &self.stats.snapshot())
            .finish()
    }
}

impl Subscription {
    /// The name given at subscribe time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Blocks until a frame arrives or the bus closes.
    pub fn recv(&self) -> Result<Arc<Frame>, RecvError> {
        self.rx.recv().map_err(|_| RecvError::Closed)
    }

    /// Blocks at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Arc<Frame>, RecvError> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => RecvError::Empty,
            RecvTimeoutError::Disconnected => RecvError::Closed,
        })
    }

    /// Returns a queued frame, if any, without blocking.
    pub fn try_recv(&self) -> Result<Arc<Frame>, RecvError> {
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

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.bus.upgrade() {
            inner.slots().retain(|slot| slot.id != self.id);
        }
    }
}

#[cfg(test)]
mod tests;
