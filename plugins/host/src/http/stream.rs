//! Streamed answers (ABI 1.2): a plugin hands its body over in chunks (`http_respond_chunk`) and
//! the connection takes them as fast as the client reads.
//!
//! Memory is bounded on the host's side: a response holds at most
//! [`HTTP_STREAM_BUFFER`](abi::HTTP_STREAM_BUFFER) bytes taken from the plugin and not yet taken
//! by the connection; beyond that the plugin is told `WOULD_BLOCK`, and `on_http_writable` once
//! the buffer has drained to half. A response that sends nothing to the client for the write
//! time-out is cut ([`watch`]): its connection is closed and the plugin told. A client that goes
//! away drops the body, which closes the stream and tells the plugin too, so it stops reading.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use stackctl_plugin_abi as abi;
use tokio::sync::Notify;

/// The open streams of one plugin instance, by request id.
pub(crate) type Registry = Arc<Mutex<HashMap<u64, Arc<Stream>>>>;

/// How a streamed answer is delivered: set by the server, per request, in its extensions.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// A response that sends nothing to the client for this long is cut.
    pub write_timeout: Duration,
    /// Notified to make the server drop the request's connection (a cut or aborted answer
    /// whose connection is not polling its body, e.g. a client that stopped reading).
    pub close_connection: Option<Arc<Notify>>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_millis(abi::HTTP_WRITE_TIMEOUT_MS),
            close_connection: None,
        }
    }
}

/// Why a streamed answer ended before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The client went away (its connection closed).
    #[error("the client went away")]
    ClientGone,
    /// Nothing reached the client for the write time-out.
    #[error("nothing was sent for {0:?} (write time-out)")]
    TimedOut(Duration),
    /// The plugin aborted it.
    #[error("the plugin aborted the answer")]
    Aborted,
    /// The plugin broke the rules (too large a chunk, more or less than it announced).
    #[error("the plugin broke the stream's rules: {0}")]
    Invalid(String),
}

#[derive(Debug)]
struct State {
    /// Chunks taken from the plugin, not yet by the connection.
    queue: VecDeque<Bytes>,
    /// Their total size, at most `HTTP_STREAM_BUFFER`.
    buffered: usize,
    /// Bytes taken from the plugin in all.
    taken: u64,
    /// The announced length.
    length: Option<u64>,
    /// The plugin ended it.
    ended: bool,
    /// Why it ended early.
    closed: Option<StreamError>,
    /// The plugin was told WOULD_BLOCK and waits for `on_http_writable`.
    want_writable: bool,
    /// The body, waiting for a chunk.
    waker: Option<Waker>,
    /// When the connection last took bytes (or the answer started).
    last_progress: Instant,
    /// Over: delivered whole, closed, or the body dropped.
    finished: bool,
}

/// One streamed answer, shared by the plugin's callbacks, the body the server writes, and the
/// watchdog.
pub struct Stream {
    id: u64,
    state: Mutex<State>,
    /// Wakes the watchdog when the stream is over.
    finished: Notify,
    /// Tells the plugin (`on_http_writable`); set once the answer reached the server.
    notify: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Drops the connection; set once the answer reached the server.
    close_connection: OnceLock<Arc<Notify>>,
    registry: Weak<Mutex<HashMap<u64, Arc<Stream>>>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// A stream for request `id`, of `length` bytes if announced, registered in `registry`.
    pub(crate) fn open(id: u64, length: Option<u64>, registry: &Registry) -> Arc<Self> {
        let stream = Arc::new(Self {
            id,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                buffered: 0,
                taken: 0,
                length,
                ended: false,
                closed: None,
                want_writable: false,
                waker: None,
                last_progress: Instant::now(),
                finished: false,
            }),
            finished: Notify::new(),
            notify: OnceLock::new(),
            close_connection: OnceLock::new(),
            registry: Arc::downgrade(registry),
        });
        registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, stream.clone());
        stream
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The request it answers.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The announced length.
    pub fn length(&self) -> Option<u64> {
        self.lock().length
    }

    /// How to tell the plugin that it may write again, or that the stream closed.
    pub(crate) fn set_notify(&self, notify: Box<dyn Fn() + Send + Sync>) {
        let _ = self.notify.set(notify);
    }

    /// How to drop the connection.
    pub(crate) fn set_close_connection(&self, close: Arc<Notify>) {
        let _ = self.close_connection.set(close);
    }

    /// `http_respond_chunk`: takes `data` whole or not at all (a `stackctl_stream_status`).
    pub(crate) fn chunk(&self, data: &[u8]) -> i32 {
        let mut st = self.lock();
        if st.closed.is_some() || st.ended {
            return abi::stream::CLOSED;
        }
        if data.len() > abi::HTTP_STREAM_BUFFER {
            drop(st);
            self.close(StreamError::Invalid(format!(
                "a chunk of {} bytes, more than STACKCTL_HTTP_STREAM_BUFFER",
                data.len()
            )));
            return abi::stream::INVALID;
        }
        if let Some(length) = st.length
            && st.taken + data.len() as u64 > length
        {
            drop(st);
            self.close(StreamError::Invalid(format!(
                "more than the {length} bytes it announced"
            )));
            return abi::stream::INVALID;
        }
        if data.is_empty() {
            return abi::stream::OK;
        }
        if st.buffered + data.len() > abi::HTTP_STREAM_BUFFER {
            st.want_writable = true;
            return abi::stream::WOULD_BLOCK;
        }
        st.buffered += data.len();
        st.taken += data.len() as u64;
        st.queue.push_back(Bytes::copy_from_slice(data));
        if let Some(waker) = st.waker.take() {
            waker.wake();
        }
        abi::stream::OK
    }

    /// `http_respond_end`: the body is complete (or, short of its announced length, aborted).
    pub(crate) fn end(&self) {
        let mut st = self.lock();
        if st.closed.is_some() || st.ended {
            return;
        }
        if let Some(length) = st.length
            && st.taken != length
        {
            let taken = st.taken;
            drop(st);
            self.close(StreamError::Invalid(format!(
                "ended after {taken} of the {length} bytes it announced"
            )));
            return;
        }
        st.ended = true;
        if let Some(waker) = st.waker.take() {
            waker.wake();
        }
        drop(st);
        self.unregister();
    }

    /// Ends it early: the body fails (the server closes the connection mid-message), the
    /// connection is dropped if it is not polling, and the plugin is told unless it asked.
    pub(crate) fn close(&self, why: StreamError) {
        let mut st = self.lock();
        if st.closed.is_some() || st.finished {
            return;
        }
        let by_plugin = matches!(why, StreamError::Aborted | StreamError::Invalid(_));
        let cut = !matches!(why, StreamError::ClientGone);
        st.closed = Some(why);
        st.queue.clear();
        st.buffered = 0;
        if let Some(waker) = st.waker.take() {
            waker.wake();
        }
        drop(st);
        self.unregister();
        if cut && let Some(close) = self.close_connection.get() {
            close.notify_one();
        }
        if !by_plugin {
            self.tell_plugin();
        }
    }

    fn tell_plugin(&self) {
        if let Some(notify) = self.notify.get() {
            notify();
        }
    }

    fn unregister(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
        }
    }

    fn finish(&self) {
        self.lock().finished = true;
        self.finished.notify_waiters();
    }

    fn is_finished(&self) -> bool {
        self.lock().finished
    }
}

/// A streamed answer on its way to the server: closed (as if the client went away) if it is
/// dropped before it became a [`StreamBody`], e.g. when the request's waiter gave up between
/// the plugin's start and the answer being read, so no stream is left open with nobody to
/// write it.
#[derive(Debug)]
pub struct PendingStream(Option<Arc<Stream>>);

impl PendingStream {
    pub(crate) fn new(stream: Arc<Stream>) -> Self {
        Self(Some(stream))
    }

    /// The stream, now someone takes it over.
    pub(crate) fn take(mut self) -> Option<Arc<Stream>> {
        self.0.take()
    }
}

impl Drop for PendingStream {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
            stream.close(StreamError::ClientGone);
            stream.finish();
        }
    }
}

/// The body of a streamed answer, as the server writes it.
#[derive(Debug)]
pub struct StreamBody {
    stream: Arc<Stream>,
    done: bool,
}

impl StreamBody {
    pub(crate) fn new(stream: Arc<Stream>) -> Self {
        Self {
            stream,
            done: false,
        }
    }
}

impl Body for StreamBody {
    type Data = Bytes;
    type Error = StreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut st = self.stream.lock();
        if let Some(why) = st.closed.clone() {
            drop(st);
            self.done = true;
            self.stream.finish();
            return Poll::Ready(Some(Err(why)));
        }
        if let Some(chunk) = st.queue.pop_front() {
            st.buffered -= chunk.len();
            st.last_progress = Instant::now();
            let writable = st.want_writable
                && (st.buffered <= abi::HTTP_STREAM_BUFFER / 2 || st.queue.is_empty());
            if writable {
                st.want_writable = false;
            }
            drop(st);
            if writable {
                self.stream.tell_plugin();
            }
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if st.ended {
            drop(st);
            self.done = true;
            self.stream.finish();
            return Poll::Ready(None);
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        match self.stream.length() {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        if !self.done {
            // The connection went away before the body was over.
            self.stream.close(StreamError::ClientGone);
        }
        self.stream.finish();
    }
}

/// Cuts `stream` once nothing has reached the client for `timeout`: the plugin stopped
/// producing without ending, or the client stopped reading (the server then no longer polls
/// the body, so the connection itself is dropped). Returns when the stream is over.
pub(crate) async fn watch(stream: Arc<Stream>, timeout: Duration) {
    loop {
        let finished = stream.finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        if stream.is_finished() {
            return;
        }
        let last = stream.lock().last_progress;
        tokio::select! {
            () = &mut finished => return,
            () = tokio::time::sleep_until(last + timeout) => {}
        }
        let stalled = {
            let st = stream.lock();
            !st.finished && st.last_progress.elapsed() >= timeout
        };
        if stalled {
            tracing::warn!(
                request = stream.id,
                "streamed answer cut: nothing sent for {timeout:?} (write time-out)"
            );
            stream.close(StreamError::TimedOut(timeout));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn poll(body: &mut StreamBody) -> Poll<Option<Result<Frame<Bytes>, StreamError>>> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        Pin::new(body).poll_frame(&mut cx)
    }

    fn data(p: Poll<Option<Result<Frame<Bytes>, StreamError>>>) -> Vec<u8> {
        match p {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().expect("data").to_vec(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn the_buffer_is_bounded_and_drains_to_half_before_the_plugin_is_told() {
        let registry = Registry::default();
        let stream = Stream::open(7, None, &registry);
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        stream.set_notify(Box::new(move || {
            t.fetch_add(1, Ordering::SeqCst);
        }));
        let mut body = StreamBody::new(stream.clone());
        let quarter = vec![1u8; abi::HTTP_STREAM_BUFFER / 4];
        for _ in 0..4 {
            assert_eq!(stream.chunk(&quarter), abi::stream::OK);
        }
        assert_eq!(stream.chunk(&[2]), abi::stream::WOULD_BLOCK);
        assert_eq!(
            stream.chunk(&vec![0; abi::HTTP_STREAM_BUFFER + 1]),
            abi::stream::INVALID,
            "a chunk larger than the buffer aborts"
        );
        assert!(matches!(
            poll(&mut body),
            Poll::Ready(Some(Err(StreamError::Invalid(_))))
        ));
        assert_eq!(told.load(Ordering::SeqCst), 0, "the plugin asked for it");
        assert!(registry.lock().unwrap().is_empty());

        let stream = Stream::open(8, None, &registry);
        let t = told.clone();
        stream.set_notify(Box::new(move || {
            t.fetch_add(1, Ordering::SeqCst);
        }));
        let mut body = StreamBody::new(stream.clone());
        for _ in 0..4 {
            assert_eq!(stream.chunk(&quarter), abi::stream::OK);
        }
        assert_eq!(stream.chunk(&[2]), abi::stream::WOULD_BLOCK);
        assert_eq!(data(poll(&mut body)).len(), quarter.len());
        assert_eq!(told.load(Ordering::SeqCst), 0, "three quarters still full");
        assert_eq!(data(poll(&mut body)).len(), quarter.len());
        assert_eq!(told.load(Ordering::SeqCst), 1, "half: writable");
        assert_eq!(stream.chunk(&[2]), abi::stream::OK);
        stream.end();
        assert_eq!(stream.chunk(&[3]), abi::stream::CLOSED);
        assert_eq!(data(poll(&mut body)).len(), quarter.len());
        assert_eq!(data(poll(&mut body)).len(), quarter.len());
        assert_eq!(data(poll(&mut body)), [2]);
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
        drop(body);
        assert_eq!(
            told.load(Ordering::SeqCst),
            1,
            "a whole answer is not a closure"
        );
    }

    #[test]
    fn an_announced_length_is_held_to_and_a_gone_client_is_told() {
        let registry = Registry::default();
        let stream = Stream::open(1, Some(3), &registry);
        let mut body = StreamBody::new(stream.clone());
        assert_eq!(body.size_hint().exact(), Some(3));
        assert_eq!(stream.chunk(b"ab"), abi::stream::OK);
        assert_eq!(stream.chunk(b"cd"), abi::stream::INVALID);
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Err(_)))));

        let stream = Stream::open(2, Some(3), &registry);
        let mut body = StreamBody::new(stream.clone());
        assert_eq!(stream.chunk(b"ab"), abi::stream::OK);
        stream.end(); // short: aborted
        assert!(matches!(
            poll(&mut body),
            Poll::Ready(Some(Err(StreamError::Invalid(_))))
        ));

        let stream = Stream::open(3, None, &registry);
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        stream.set_notify(Box::new(move || {
            t.fetch_add(1, Ordering::SeqCst);
        }));
        let mut body = StreamBody::new(stream.clone());
        assert!(poll(&mut body).is_pending());
        drop(body);
        assert_eq!(told.load(Ordering::SeqCst), 1, "told the client went away");
        assert_eq!(stream.chunk(b"x"), abi::stream::CLOSED);
        assert!(registry.lock().unwrap().is_empty());

        // Started, but nobody took the answer: closed, not left open.
        let stream = Stream::open(4, None, &registry);
        drop(PendingStream::new(stream.clone()));
        assert_eq!(stream.chunk(b"x"), abi::stream::CLOSED);
        assert!(registry.lock().unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_answer_is_cut_and_its_connection_dropped() {
        let registry = Registry::default();
        let stream = Stream::open(1, None, &registry);
        let close = Arc::new(Notify::new());
        stream.set_close_connection(close.clone());
        let mut body = StreamBody::new(stream.clone());
        let watchdog = tokio::spawn(watch(stream.clone(), Duration::from_secs(5)));
        assert_eq!(stream.chunk(b"x"), abi::stream::OK);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(data(poll(&mut body)), b"x", "progress at 3 s");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!watchdog.is_finished(), "4 s after the last progress");
        close.notified().await;
        watchdog.await.expect("watchdog");
        assert!(matches!(
            poll(&mut body),
            Poll::Ready(Some(Err(StreamError::TimedOut(_))))
        ));
        assert_eq!(stream.chunk(b"y"), abi::stream::CLOSED);
    }
}
