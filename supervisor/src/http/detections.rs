//! `GET /api/detections/stream` (server-sent events) and `GET /api/detections/latest`: the
//! detector's results in the board web monitor's format,
//! `{"frame_number":N,"timestamp":S,"detections":[{"class_name":..,"confidence":..,"bbox":{"x":..,"y":..,"w":..,"h":..}}]}`
//! (`timestamp`: the frame's capture time, `CLOCK_MONOTONIC` seconds, as the detector wrote it).
//!
//! One thread (`sse`) takes results off the bus, encodes each once and offers it to every
//! client's bounded queue with `try_send`: a client whose queue is full (it reads slower than
//! the detector writes) is disconnected and counted, and never holds up the bus, the thread or
//! the other clients. At most [`MAX_CLIENTS`] clients at once (503 beyond); a comment line
//! every [`KEEP_ALIVE`] keeps proxies from closing an idle stream.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use stackctl_core::Bus;
use stackctl_core::bus::{RecvError, SubscribeOptions};
use stackctl_core::detections::Detections;
use tokio::sync::mpsc;

use super::Body;

/// Most stream clients at once (the web monitor opens one per browser tab).
pub const MAX_CLIENTS: usize = 32;
/// Events queued per client before it counts as too slow and is disconnected (about 3 s of
/// the board's detector at 10 results a second).
pub const CLIENT_QUEUE: usize = 32;
/// How often an idle stream gets a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Results queued between the bus and the `sse` thread.
const BUS_QUEUE: usize = 64;
/// How often the thread looks at its stop flag while no result comes.
const TICK: Duration = Duration::from_millis(200);

/// Counters of the detection routes.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Stream clients connected now.
    pub clients: AtomicU64,
    /// Stream clients accepted since start.
    pub clients_total: AtomicU64,
    /// Events sent to clients (one per client per result).
    pub events: AtomicU64,
    /// Clients disconnected because their queue was full.
    pub dropped_slow: AtomicU64,
    /// Clients refused at [`MAX_CLIENTS`].
    pub refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Shared {
    /// The latest result's JSON.
    latest: Mutex<Option<Bytes>>,
    clients: Mutex<Vec<mpsc::Sender<Bytes>>>,
    stats: Arc<FeedStats>,
    stop: AtomicBool,
}

/// The results fanned out to the HTTP clients. Cheap to clone; its thread runs until
/// [`Feed::stop`] or until the bus closes.
#[derive(Debug, Clone)]
pub struct Feed {
    shared: Arc<Shared>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Feed {
    /// Subscribes to the detections on `bus` and starts the `sse` thread.
    pub fn start(bus: &Bus) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let subscription =
            bus.subscribe_detections(SubscribeOptions::new("sse").capacity(BUS_QUEUE));
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sse".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    match subscription.recv_timeout(TICK) {
                        Ok(result) => s.publish(&result),
                        Err(RecvError::Empty) => {}
                        Err(RecvError::Closed) => break,
                    }
                }
            })?;
        Ok(Self {
            shared,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<FeedStats> {
        &self.shared.stats
    }

    /// Stops the thread (open streams end) and waits for it.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the detection stream thread panicked");
        }
        self.shared.lock_clients().clear();
    }

    /// `GET /api/detections/latest`: 200 with the latest result, 404 (JSON) before the first.
    pub fn latest(&self) -> Response<Body> {
        let latest = self
            .shared
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match latest {
            Some(json) => {
                let mut response = Response::new(super::full(json));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                no_store(response)
            }
            None => super::json_error(
                StatusCode::NOT_FOUND,
                "no detection result yet (the detector has not written one since stackctl started)",
            )
            .map(super::boxed),
        }
    }

    /// `GET /api/detections/stream`: an event stream starting with the latest result, if any.
    pub fn stream(&self) -> Response<Body> {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let first = {
            let mut clients = self.shared.lock_clients();
            clients.retain(|c| !c.is_closed());
            if clients.len() >= MAX_CLIENTS {
                self.shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                let mut r = super::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("too many detection streams open (at most {MAX_CLIENTS})"),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return r.map(super::boxed);
            }
            clients.push(tx);
            self.shared
                .stats
                .clients
                .store(clients.len() as u64, Ordering::Relaxed);
            self.shared
                .stats
                .clients_total
                .fetch_add(1, Ordering::Relaxed);
            let latest = self
                .shared
                .latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            // `retry` tells EventSource how soon to reconnect; the comment gets the headers and
            // a first byte out at once.
            let mut first = b"retry: 2000\n: stackctl detections\n\n".to_vec();
            if let Some(json) = latest {
                first.extend_from_slice(&event(&json));
            }
            Bytes::from(first)
        };
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let body = EventStream {
            first: Some(first),
            rx,
            keep_alive,
        };
        let mut response = Response::new(super::never_fails(body));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        // Tells nginx-style proxies not to buffer the stream.
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        no_store(response)
    }
}

impl Shared {
    fn lock_clients(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<Bytes>>> {
        // Held only for pushes and `try_send`s, which cannot panic.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encodes `result` once and offers it to every client; a full queue disconnects its
    /// client.
    fn publish(&self, result: &Detections) {
        let json = Bytes::from(to_json(result).to_string());
        let message = Bytes::from(event(&json));
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(json);
        let mut clients = self.lock_clients();
        clients.retain(|client| match client.try_send(message.clone()) {
            Ok(()) => {
                self.stats.events.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "a detection stream client fell {CLIENT_QUEUE} events behind: disconnected"
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        self.stats
            .clients
            .store(clients.len() as u64, Ordering::Relaxed);
    }
}

/// One `data:` event (JSON has no raw newline, so one line).
fn event(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    out
}

/// A result in the web monitor's format.
pub fn to_json(result: &Detections) -> serde_json::Value {
    let detections: Vec<_> = result
        .items
        .iter()
        .map(|d| {
            serde_json::json!({
                "class_name": d.class,
                "confidence": d.confidence,
                "bbox": { "x": d.x, "y": d.y, "w": d.w, "h": d.h },
            })
        })
        .collect();
    serde_json::json!({
        "frame_number": result.frame_number,
        "timestamp": result.timestamp_ns as f64 / 1e9,
        "detections": detections,
    })
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The body of one stream: the first bytes, then events as they come, a comment when idle;
/// it ends when the feed disconnects the client.
struct EventStream {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    keep_alive: tokio::time::Interval,
}

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(message)) => {
                self.keep_alive.reset();
                Poll::Ready(Some(Ok(Frame::data(message))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.keep_alive.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    b": keep-alive\n\n",
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use stackctl_core::detections::Detection;

    use super::*;

    #[test]
    fn the_web_monitors_format() {
        let result = Detections {
            frame_number: 42,
            timestamp_ns: 1_500_000_000,
            version: 7,
            received_ns: 0,
            generation: 0,
            items: vec![Detection {
                class: "cat".into(),
                confidence: 0.5,
                x: 1,
                y: 2,
                w: 3,
                h: 4,
            }],
        };
        assert_eq!(
            to_json(&result),
            serde_json::json!({
                "frame_number": 42,
                "timestamp": 1.5,
                "detections": [{"class_name": "cat", "confidence": 0.5,
                                "bbox": {"x": 1, "y": 2, "w": 3, "h": 4}}],
            })
        );
        assert_eq!(event(b"{}"), b"data: {}\n\n");
    }

    /// A client that reads nothing is disconnected once its queue is full; the others get
    /// every event and publishing never waits.
    #[test]
    fn a_slow_client_is_dropped_not_waited_for() {
        let shared = Shared::default();
        let (slow, _slow_rx) = mpsc::channel(CLIENT_QUEUE);
        let (fast, mut fast_rx) = mpsc::channel(CLIENT_QUEUE);
        shared.lock_clients().extend([slow, fast]);
        let result = Detections {
            frame_number: 1,
            timestamp_ns: 0,
            version: 1,
            received_ns: 0,
            generation: 0,
            items: Vec::new(),
        };
        let mut received = 0;
        for _ in 0..=CLIENT_QUEUE {
            shared.publish(&result);
            while fast_rx.try_recv().is_ok() {
                received += 1;
            }
        }
        assert_eq!(received, CLIENT_QUEUE + 1);
        assert_eq!(shared.stats.dropped_slow.load(Ordering::Relaxed), 1);
        assert_eq!(shared.lock_clients().len(), 1);
    }
}
