//! One viewer: its `Rtc`, the video m-line it receives on, and where it is in the stream.

use std::collections::VecDeque;
use std::time::Instant;

use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::Transmit;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use crate::media::Media;

/// Why a viewer is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// `DELETE /whep/<id>`.
    Deleted,
    /// ICE disconnected, or str0m failed on its input.
    Failed,
    /// Not connected within [`crate::CONNECT_TIMEOUT`] of its answer.
    NeverConnected,
    /// The sink is stopping.
    Stopping,
}

/// A WHEP session.
pub struct Viewer {
    /// The session id (`/whep/<id>`).
    pub id: String,
    rtc: Rtc,
    /// The video m-line it receives on.
    mid: Mid,
    /// The H.264 format frames are written with, chosen at the first frame.
    pt: Option<Pt>,
    /// DTLS is up: media written now goes out.
    connected: bool,
    /// Frames are written from an IDR on.
    started: bool,
    /// When the answer went out.
    pub created: Instant,
    /// When str0m next wants [`Input::Timeout`].
    pub next_timeout: Instant,
    /// Set once the viewer is to be removed.
    pub gone: Option<Gone>,
    /// Frames written.
    pub frames: u64,
    /// PLI/FIR received (the camera cannot be asked for an IDR: counted only).
    pub keyframe_requests: u64,
}

impl Viewer {
    /// A viewer around an `Rtc` that has answered its offer, sending on `mid` (see
    /// [`video_mid`]).
    pub fn new(id: String, rtc: Rtc, mid: Mid, now: Instant) -> Self {
        Self {
            id,
            rtc,
            mid,
            pt: None,
            connected: false,
            started: false,
            created: now,
            next_timeout: now,
            gone: None,
            frames: 0,
            keyframe_requests: 0,
        }
    }

    /// True when this viewer's `Rtc` takes `input` (the shared socket's demultiplexing).
    pub fn accepts(&self, input: &Input<'_>) -> bool {
        self.gone.is_none() && self.rtc.accepts(input)
    }

    /// True once DTLS is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, input: Input<'_>) {
        if self.gone.is_some() {
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::warn!(viewer = %self.id, error = %e, "str0m refused an input");
            self.remove(Gone::Failed);
        }
    }

    /// Writes one access unit, if the viewer is connected and has reached an IDR.
    pub fn write(&mut self, media: &Media) {
        if self.gone.is_some() || !self.connected {
            return;
        }
        if !self.started {
            if !media.starts_stream {
                return;
            }
            self.started = true;
        }
        let Some(writer) = self.rtc.writer(self.mid) else {
            return;
        };
        let pt = match self.pt {
            Some(pt) => pt,
            None => {
                let Some(pt) = choose_format(&writer, media.profile_idc) else {
                    tracing::warn!(viewer = %self.id, "no H.264 format with packetization-mode 1 was negotiated");
                    self.remove(Gone::Failed);
                    return;
                };
                tracing::debug!(viewer = %self.id, ?pt, "H.264 format");
                self.pt = Some(pt);
                pt
            }
        };
        match writer.write(pt, media.wallclock, media.rtp_time, media.data.clone()) {
            Ok(()) => self.frames += 1,
            Err(e) => {
                tracing::warn!(viewer = %self.id, error = %e, "write failed");
                self.remove(Gone::Failed);
            }
        }
    }

    /// Polls str0m until it wants to wait: datagrams go to `out`, events are handled, and
    /// `next_timeout` is set. A timeout already due is fed in at once (a write, for one, only
    /// turns into packets on the next `Input::Timeout`), a few times at most per call.
    pub fn drive(&mut self, out: &mut VecDeque<Transmit>) {
        const MAX_FEEDS: u32 = 4;
        let mut feeds = 0;
        while self.gone.is_none() {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => out.push_back(t),
                Ok(Output::Event(e)) => self.on_event(e),
                Ok(Output::Timeout(t)) => {
                    let now = Instant::now();
                    if t <= now && feeds < MAX_FEEDS {
                        feeds += 1;
                        self.handle_input(Input::Timeout(now));
                        continue;
                    }
                    // Still due after that: the loop comes back at once.
                    self.next_timeout = t;
                    return;
                }
                Err(e) => {
                    tracing::warn!(viewer = %self.id, error = %e, "str0m failed");
                    self.remove(Gone::Failed);
                }
            }
        }
    }

    /// Marks the viewer for removal; the `Rtc` goes inert.
    pub fn remove(&mut self, why: Gone) {
        if self.gone.is_none() {
            self.gone = Some(why);
            self.rtc.disconnect();
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                tracing::info!(viewer = %self.id, "viewer connected");
                self.connected = true;
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                tracing::info!(viewer = %self.id, "ICE disconnected");
                self.remove(Gone::Failed);
            }
            Event::KeyframeRequest(_) => {
                self.keyframe_requests += 1;
                tracing::debug!(viewer = %self.id, "keyframe request (not honoured: the camera cannot be asked)");
            }
            other => tracing::trace!(viewer = %self.id, event = ?other, "event"),
        }
    }
}

/// The first video m-line of `answer` on which `rtc` sends, if it has an H.264 format in
/// packetization mode 1. (str0m reports `Event::MediaAdded` only once DTLS is up: too late to
/// refuse the offer.)
pub fn video_mid(rtc: &mut Rtc, answer: &SdpAnswer) -> Option<Mid> {
    let mid = answer
        .media_lines
        .iter()
        .map(|line| line.mid())
        .find(|&mid| {
            rtc.media(mid).is_some_and(|m| {
                m.kind() == MediaKind::Video
                    && matches!(m.direction(), Direction::SendOnly | Direction::SendRecv)
            })
        })?;
    let writer = rtc.writer(mid)?;
    choose_format(&writer, None).map(|_| mid)
}

/// The negotiated H.264 format (packetization mode 1) to send with: the camera's profile if the
/// viewer accepted it, else the first one.
fn choose_format(writer: &str0m::media::Writer<'_>, profile_idc: Option<u8>) -> Option<Pt> {
    let mode1: Vec<(Pt, Option<u32>)> = writer
        .payload_params()
        .filter(|p| {
            let spec = p.spec();
            spec.codec == Codec::H264 && spec.format.packetization_mode == Some(1)
        })
        .map(|p| (p.pt(), p.spec().format.profile_level_id))
        .collect();
    let same_profile = mode1.iter().find(|(_, plid)| {
        plid.zip(profile_idc)
            .is_some_and(|(plid, idc)| (plid >> 16) as u8 == idc)
    });
    same_profile.or(mode1.first()).map(|(pt, _)| *pt)
}
