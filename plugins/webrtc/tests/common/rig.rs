//! A real worker (its socket on loopback, its hub, its factory) to drive on simulated time,
//! with viewers joining as `Sessions::open` would have them: for `tests/loop_time.rs` and the
//! `fanout` micro-benchmark.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Events;
use sink_webrtc::config::{Config, ProfilePolicy};
use sink_webrtc::feed::FeedConfig;
use sink_webrtc::hub::{Hub, new_id};
use sink_webrtc::peer::Factory;
use sink_webrtc::sdp;
use sink_webrtc::udp::Socket;
use sink_webrtc::worker::{self, Adopt, Command, Group, Settings, Worker};

use crate::rtc_client::Client;

/// A Constrained Baseline SPS: what the rig's camera "sends" (and the client offers).
pub const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];

/// A worker and what it needs.
pub struct Rig {
    pub worker: Worker,
    pub shared: Arc<worker::Shared>,
    pub hub: Arc<Hub>,
    pub group: Arc<Group>,
    pub factory: Factory,
    pub events: Events,
    next_key: u64,
}

impl Rig {
    /// A worker on one loopback socket, with the sink's keys `keys` (TOML lines) and the GOP
    /// cache on or off; its camera sends Constrained Baseline.
    pub fn new(keys: &str, gop_cache: bool) -> Self {
        let config: Config = stackctl_sink_sdk::parse_config(keys).unwrap();
        config.validate().unwrap();
        let hub = Arc::new(Hub::new(
            Arc::default(),
            config.max_clients,
            config.pending_limit(),
            config.viewer_queue,
        ));
        hub.camera_sps(SPS);
        let (poll, shared) = worker::prepare(0).unwrap();
        let socket = Socket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let group = Arc::new(Group::new(
            vec![Arc::new(socket)],
            0,
            &[loopback],
            vec![],
            false,
        ));
        let settings = Settings {
            feed: FeedConfig {
                max_backlog: config.viewer_queue,
                ..FeedConfig::default()
            },
            connect_timeout: config.connect_timeout,
            gop_cache,
            monotonic_timestamps: true,
            detections: config.detections,
        };
        let worker = Worker::new(
            poll,
            Arc::new(vec![Arc::clone(&shared)]),
            0,
            Arc::clone(&group),
            Arc::clone(&hub),
            settings,
        )
        .unwrap();
        Self {
            worker,
            shared,
            hub,
            group,
            factory: Factory::new(&config).unwrap(),
            events: Events::with_capacity(64),
            next_key: 1,
        }
    }

    /// A viewer offers at `now`: answered and handed to the worker, as `Sessions::open` does.
    pub fn join(&mut self, now: Instant) -> (Client, String) {
        self.join_with(now, None)
    }

    /// A viewer that opens data channel `channel` (label, options) offers at `now`.
    pub fn join_with(
        &mut self,
        now: Instant,
        channel: Option<(&str, rtc::data_channel::RTCDataChannelInit)>,
    ) -> (Client, String) {
        let (mut client, offer) = Client::with_channel(now, channel);
        let video = sdp::read_video(&offer).unwrap();
        let camera = self.hub.camera().unwrap();
        let (format, _) =
            sdp::choose_by(&video.formats, camera.profile, ProfilePolicy::Best).unwrap();
        let built = self
            .factory
            .answer(
                now,
                &offer,
                &video,
                format,
                &self.group.candidates(Duration::ZERO),
            )
            .unwrap();
        let id = new_id();
        let key = self.next_key;
        self.next_key += 1;
        let stats = self.hub.admit(&id, 0, key).unwrap();
        worker::register(&self.group, &built.ufrag, 0, key);
        client.answer(now, built.answer.clone());
        self.shared.command(Command::Adopt(Box::new(Adopt {
            id: id.clone(),
            key,
            built,
            stats,
            created: now,
        })));
        (client, id)
    }

    /// One turn of the worker at `now`, whatever arrived by then taken.
    pub fn step(&mut self, now: Instant) {
        self.worker
            .wait(&mut self.events, Some(Duration::ZERO))
            .unwrap();
        self.worker.turn(now);
    }
}
