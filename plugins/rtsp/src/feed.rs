//! The fan-out: every access unit is cut into RTP payloads once and queued for each playing
//! client. One bounded queue per client and one [`IdrGate`] per client: a full queue makes
//! that client skip to the next IDR (counted), never slows the others nor the delivery
//! thread. A GOP cache (the frames since the last IDR) starts a new client at once, on an IDR.
//!
//! Sequence numbers are given here, as a frame is queued: a frame that is skipped takes none,
//! so a client sees consecutive numbers across a skip (and a timestamp jump to an IDR).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use stackctl_media::gate::{Admit, IdrGate};
use stackctl_media::h264;
use stackctl_media::rtp::RtpAccessUnit;
use tokio::sync::{mpsc, watch};

/// The most frames the GOP cache holds; a longer GOP is not cached (new clients wait).
const GOP_CACHE_FRAMES: usize = 300;
/// The most payload bytes the GOP cache holds.
const GOP_CACHE_BYTES: usize = 16 << 20;

/// A frame queued for one client, with the sequence number of its first packet.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The shared payloads.
    pub au: Arc<RtpAccessUnit>,
    /// Sequence number of its first packet; the others follow.
    pub seq: u16,
}

/// What the camera sends, from its latest SPS and PPS: what DESCRIBE's SDP says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraParams {
    /// The SPS NAL unit (no start code).
    pub sps: Vec<u8>,
    /// The PPS NAL unit.
    pub pps: Vec<u8>,
    /// `profile-level-id`: the SPS's bytes 1 to 3 in hex.
    pub profile_level_id: String,
    /// Picture size, when the SPS parses.
    pub size: Option<(u32, u32)>,
}

/// Where a client starts: what PLAY's `RTP-Info` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    /// Sequence number of the first packet it will get.
    pub seq: u16,
    /// Capture time of the first frame it will get, if one is queued already.
    pub timestamp_ns: Option<u64>,
}

/// Per-client counters, shared with its sender and the metrics.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Frames queued for it.
    pub frames_queued: AtomicU64,
    /// Frames skipped after its queue was full (until the next IDR).
    pub frames_dropped: AtomicU64,
    /// RTP packets sent.
    pub packets_sent: AtomicU64,
    /// Bytes sent: RTP and RTCP, with interleaving headers.
    pub bytes_sent: AtomicU64,
    /// RTP payload bytes sent (RTCP's octet count).
    pub payload_bytes_sent: AtomicU64,
}

/// Feed-wide counters.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Frames skipped for some client, summed over clients.
    pub frames_dropped: AtomicU64,
}

struct Subscriber {
    gate: IdrGate,
    tx: mpsc::Sender<Queued>,
    next_seq: u16,
    stats: Arc<ClientStats>,
}

#[derive(Default)]
struct Inner {
    gop: Vec<Arc<RtpAccessUnit>>,
    gop_bytes: usize,
    last_sps: Vec<u8>,
    last_pps: Vec<u8>,
    subscribers: HashMap<u64, Subscriber>,
}

/// The frames and the clients they are fed to.
pub struct Feed {
    inner: Mutex<Inner>,
    params: watch::Sender<Option<CameraParams>>,
    queue: usize,
    gop_cache: bool,
    /// Feed-wide counters.
    pub stats: FeedStats,
}

impl Feed {
    /// A feed with `queue` frames per client, with or without the GOP cache.
    pub fn new(queue: usize, gop_cache: bool) -> Self {
        Self {
            inner: Mutex::default(),
            params: watch::Sender::new(None),
            queue,
            gop_cache,
            stats: FeedStats::default(),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The camera's parameter sets, once a frame carried them.
    pub fn params(&self) -> Option<CameraParams> {
        self.params.borrow().clone()
    }

    /// The camera's parameter sets, waiting up to `timeout` for the first.
    pub async fn wait_params(&self, timeout: Duration) -> Option<CameraParams> {
        let mut rx = self.params.subscribe();
        let got = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
        got.ok()?.ok()?.clone()
    }

    /// Takes one access unit (on the delivery thread): keeps the parameter sets it was sent
    /// with, keeps it in the GOP cache, queues it for every client.
    pub fn publish(&self, au: RtpAccessUnit, sps: Option<&[u8]>, pps: Option<&[u8]>) {
        if au.payloads.is_empty() {
            return;
        }
        let au = Arc::new(au);
        let mut inner = self.inner();
        if let (Some(sps), Some(pps)) = (sps, pps)
            && (sps != inner.last_sps.as_slice() || pps != inner.last_pps.as_slice())
        {
            inner.last_sps = sps.to_vec();
            inner.last_pps = pps.to_vec();
            let params = h264::sps_profile(sps)
                .map(|(_, id)| id)
                .or_else(|| (sps.len() >= 4).then(|| hex3(&sps[1..4])))
                .map(|profile_level_id| CameraParams {
                    sps: sps.to_vec(),
                    pps: pps.to_vec(),
                    profile_level_id,
                    size: h264::SpsInfo::parse(sps).ok().map(|i| (i.width, i.height)),
                });
            self.params.send_replace(params);
        }
        if self.gop_cache {
            let bytes = au.payload_bytes();
            if au.idr {
                inner.gop.clear();
                inner.gop_bytes = 0;
            }
            let fits =
                inner.gop.len() < GOP_CACHE_FRAMES && inner.gop_bytes + bytes <= GOP_CACHE_BYTES;
            if fits && (au.idr || !inner.gop.is_empty()) {
                inner.gop.push(Arc::clone(&au));
                inner.gop_bytes += bytes;
            } else if !fits {
                inner.gop.clear();
                inner.gop_bytes = 0;
            }
        }
        let dropped = &self.stats.frames_dropped;
        inner.subscribers.retain(|_, sub| offer(sub, &au, dropped));
    }

    /// Starts feeding the client `key` (its first RTP sequence number `next_seq`): the GOP
    /// cache first, so it starts at once on an IDR, then every frame. Replaces a feed of the
    /// same key.
    pub fn subscribe(
        &self,
        key: u64,
        next_seq: u16,
        stats: Arc<ClientStats>,
    ) -> (mpsc::Receiver<Queued>, Start) {
        let (tx, rx) = mpsc::channel(self.queue);
        let mut sub = Subscriber {
            gate: IdrGate::joining(),
            tx,
            next_seq,
            stats,
        };
        let mut inner = self.inner();
        let mut first = None;
        for au in &inner.gop {
            offer(&mut sub, au, &self.stats.frames_dropped);
            if first.is_none() && sub.gate.joined() {
                first = Some(au.timestamp_ns);
            }
        }
        inner.subscribers.insert(key, sub);
        (
            rx,
            Start {
                seq: next_seq,
                timestamp_ns: first,
            },
        )
    }

    /// Stops feeding `key`; returns the sequence number its next packet would have had.
    pub fn unsubscribe(&self, key: u64) -> Option<u16> {
        self.inner().subscribers.remove(&key).map(|s| s.next_seq)
    }

    /// Clients fed, and the fullest queue in percent.
    pub fn load(&self) -> (usize, f64) {
        let inner = self.inner();
        let fullest = inner
            .subscribers
            .values()
            .map(|s| (self.queue - s.tx.capacity()) as f64 * 100.0 / self.queue as f64)
            .fold(0.0, f64::max);
        (inner.subscribers.len(), fullest)
    }
}

/// Offers `au` to one client through its gate; `false` when its receiver is gone.
fn offer(sub: &mut Subscriber, au: &Arc<RtpAccessUnit>, dropped: &AtomicU64) -> bool {
    let count_drop = |sub: &Subscriber| {
        sub.stats.frames_dropped.fetch_add(1, Relaxed);
        dropped.fetch_add(1, Relaxed);
    };
    match sub.gate.offer(au.idr) {
        Admit::Skip { counted } => {
            if counted {
                count_drop(sub);
            }
        }
        Admit::Deliver => {
            let queued = Queued {
                au: Arc::clone(au),
                seq: sub.next_seq,
            };
            match sub.tx.try_send(queued) {
                Ok(()) => {
                    sub.gate.delivered();
                    // A frame has far fewer than 65,536 packets; the count wraps like RTP's.
                    sub.next_seq = sub.next_seq.wrapping_add(au.payloads.len() as u16);
                    sub.stats.frames_queued.fetch_add(1, Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if sub.gate.rejected().counted {
                        count_drop(sub);
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return false,
            }
        }
    }
    true
}

fn hex3(b: &[u8]) -> String {
    format!("{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_media::rtp::MAX_PAYLOAD;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    /// Frame `n`: an IDR or a P-frame whose payload is big enough for `packets` packets.
    fn au(n: u64, idr: bool, packets: usize) -> RtpAccessUnit {
        let nal = if idr { 0x65 } else { 0x41 };
        let mut data = vec![0, 0, 0, 1, nal];
        // One FU-A fragment carries MAX_PAYLOAD - 2 bytes of the NAL unit's body.
        let nal_len = match packets {
            1 => 2,
            k => 1 + (k - 1) * (MAX_PAYLOAD - 2) + 2,
        };
        data.resize(4 + nal_len, n as u8 + 1);
        RtpAccessUnit::new(&data, Some(SPS), Some(PPS), n, MAX_PAYLOAD).unwrap()
    }

    fn publish(feed: &Feed, n: u64, idr: bool) {
        feed.publish(au(n, idr, 1), Some(SPS), Some(PPS));
    }

    fn drain(rx: &mut mpsc::Receiver<Queued>) -> Vec<(u64, u16)> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|q| (q.au.timestamp_ns, q.seq))
            .collect()
    }

    #[test]
    fn a_new_client_starts_from_the_gop_cache_or_the_next_idr() {
        for cache in [true, false] {
            let feed = Feed::new(16, cache);
            publish(&feed, 0, false); // before any IDR: never cached
            publish(&feed, 1, true);
            publish(&feed, 2, false);
            let (mut rx, start) = feed.subscribe(7, 100, Arc::default());
            publish(&feed, 3, false);
            publish(&feed, 4, true);
            let got: Vec<u64> = drain(&mut rx).into_iter().map(|(t, _)| t).collect();
            if cache {
                assert_eq!(got, [1, 2, 3, 4]);
                assert_eq!(
                    start,
                    Start {
                        seq: 100,
                        timestamp_ns: Some(1)
                    }
                );
            } else {
                assert_eq!(got, [4]);
                assert_eq!(
                    start,
                    Start {
                        seq: 100,
                        timestamp_ns: None
                    }
                );
            }
        }
    }

    #[test]
    fn sequence_numbers_follow_the_packets_and_wrap() {
        let feed = Feed::new(16, false);
        let (mut rx, _) = feed.subscribe(1, 65_534, Arc::default());
        feed.publish(au(1, true, 3), Some(SPS), Some(PPS));
        feed.publish(au(2, false, 2), Some(SPS), Some(PPS));
        let got = drain(&mut rx);
        // The IDR: one STAP-A (SPS, PPS) and 3 FU-A fragments, 4 packets; the P-frame 2.
        assert_eq!(got, [(1, 65_534), (2, 2)]);
        assert_eq!(feed.unsubscribe(1), Some(4));
        assert_eq!(feed.unsubscribe(1), None);
    }

    #[test]
    fn a_slow_client_skips_to_the_next_idr_and_does_not_hold_back_the_others() {
        let feed = Feed::new(3, false);
        publish(&feed, 0, true);
        let slow_stats = Arc::new(ClientStats::default());
        let (mut slow, _) = feed.subscribe(1, 0, Arc::clone(&slow_stats));
        let (mut fast, _) = feed.subscribe(2, 0, Arc::default());
        let mut fast_got = Vec::new();
        for n in 1..=10 {
            publish(&feed, n, n % 5 == 0);
            fast_got.extend(drain(&mut fast).into_iter().map(|(t, _)| t));
        }
        assert_eq!(fast_got, [5, 6, 7, 8, 9, 10]);
        // The slow one queued 5, 6, 7, then was full: 8, 9 and 10 (an IDR, still no room)
        // dropped; then it skips until an IDR finds room.
        assert_eq!(drain(&mut slow), [(5, 0), (6, 1), (7, 2)]);
        assert_eq!(slow_stats.frames_dropped.load(Relaxed), 3);
        publish(&feed, 11, false);
        publish(&feed, 15, true);
        publish(&feed, 16, false);
        assert_eq!(
            drain(&mut slow),
            [(15, 3), (16, 4)],
            "numbers go on without a gap"
        );
        assert_eq!(slow_stats.frames_dropped.load(Relaxed), 4);
        assert_eq!(feed.stats.frames_dropped.load(Relaxed), 4);
    }

    #[test]
    fn a_gone_receiver_is_forgotten_and_parameters_are_kept() {
        let feed = Feed::new(3, true);
        assert!(feed.params().is_none());
        let (rx, _) = feed.subscribe(1, 0, Arc::default());
        drop(rx);
        publish(&feed, 0, true);
        assert_eq!(feed.load().0, 0);
        let params = feed.params().unwrap();
        assert_eq!(params.profile_level_id, "42c01f");
        assert_eq!((params.sps.as_slice(), params.pps.as_slice()), (SPS, PPS));
    }
}
