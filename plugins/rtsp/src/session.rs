//! A live RTSP session: its transport, its RTP identity, its state machine, and the switch
//! its sender checks before every frame.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, mpsc, watch};

use crate::feed::{ClientStats, Queued};
use crate::machine::Machine;
use crate::rtp_out::RtpIdentity;

/// How a session's RTP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Interleaved on the RTSP connection: RTP on `rtp`, RTCP on `rtcp`.
    Tcp {
        /// RTP's channel.
        rtp: u8,
        /// RTCP's channel.
        rtcp: u8,
    },
    /// UDP datagrams between the client's ports and a pair of the server's.
    Udp {
        /// The client's RTP address.
        client_rtp: SocketAddr,
        /// The client's RTCP address.
        client_rtcp: SocketAddr,
        /// The server's RTP port (RTCP is the next one).
        server_port: u16,
    },
}

impl Transport {
    /// `tcp` or `udp`, as the metrics label it.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Tcp { .. } => "tcp",
            Transport::Udp { .. } => "udp",
        }
    }
}

/// What a session's sender (the connection's writer, or the session's UDP task) is told.
#[derive(Debug)]
pub enum Cmd {
    /// Bytes of an RTSP answer (the connection's writer only).
    Reply(Vec<u8>),
    /// Write what came before, then close (the connection's writer only).
    Close,
    /// Send the frames of `rx` while the session's generation is still `generation`.
    Play {
        /// The session.
        session: Arc<Session>,
        /// Its frames.
        rx: mpsc::Receiver<Queued>,
        /// The generation this play belongs to.
        generation: u64,
    },
}

/// One session.
#[derive(Debug)]
pub struct Session {
    /// The id in `Session:` headers.
    pub id: String,
    /// Its key in the feed.
    pub key: u64,
    /// The connection that set it up.
    pub conn: u64,
    /// How its RTP travels.
    pub transport: Transport,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// Its SSRC and timestamp origin.
    pub rtp: RtpIdentity,
    /// Its counters.
    pub stats: Arc<ClientStats>,
    /// Where its `Play` goes: the connection's writer (TCP) or its UDP task.
    pub sender: mpsc::Sender<Cmd>,
    /// Closes its connection (TCP: the session cannot outlive it, nor it the session's
    /// time-out).
    pub conn_closer: watch::Sender<bool>,
    /// When it was set up.
    pub created: Instant,
    machine: Mutex<Machine>,
    next_seq: Mutex<u16>,
    /// Bumped by every PAUSE and the end: a sender drops frames of an older generation.
    generation: AtomicU64,
    ended: AtomicBool,
    /// Woken at the end (the UDP task waits on it).
    pub end_notify: Notify,
}

impl Session {
    /// A new session in state Ready.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        key: u64,
        conn: u64,
        transport: Transport,
        user: Option<String>,
        sender: mpsc::Sender<Cmd>,
        conn_closer: watch::Sender<bool>,
        machine: Machine,
    ) -> Self {
        Self {
            id,
            key,
            conn,
            transport,
            user,
            rtp: RtpIdentity {
                ssrc: crate::random::u32(),
                ts_origin: crate::random::u32(),
            },
            stats: Arc::default(),
            sender,
            conn_closer,
            created: Instant::now(),
            machine: Mutex::new(machine),
            next_seq: Mutex::new(crate::random::u32() as u16),
            generation: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            end_notify: Notify::new(),
        }
    }

    /// Its state machine.
    pub fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sequence number its next packet takes (while it is not playing).
    pub fn next_seq(&self) -> MutexGuard<'_, u16> {
        self.next_seq.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// Starts a new generation: frames queued for the old one are not sent.
    pub fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Relaxed) + 1
    }

    /// Whether frames of `generation` may still be sent.
    pub fn sends(&self, generation: u64) -> bool {
        !self.is_ended() && self.generation() == generation
    }

    /// Marks it ended and wakes its UDP task; `false` if it already was.
    pub fn end(&self) -> bool {
        if self.ended.swap(true, Relaxed) {
            return false;
        }
        self.next_generation();
        self.end_notify.notify_waiters();
        true
    }

    /// Whether it ended.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Relaxed)
    }

    /// Resolves once it ended.
    pub async fn ended(&self) {
        let notified = self.end_notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the flag is read: an `end` in between still wakes it.
        notified.as_mut().enable();
        if !self.is_ended() {
            notified.await;
        }
    }
}
