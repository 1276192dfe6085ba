//! `viewerload`: a WebRTC client for stackctl's streaming sink, and a load and latency tool on
//! top of it.
//!
//! [`Viewer`] is one browser-like viewer: it offers a recvonly H.264 video transceiver,
//! signals it over WHEP (or the legacy JSON offer API), and hands back reassembled Annex-B
//! access units ([`ReceivedFrame`]) with their arrival times. [`load::run`] runs N of them and
//! aggregates a [`Report`].
//!
//! End-to-end latency needs the server to stamp RTP with the camera's clock
//! (`rtp_timestamp_origin = "monotonic"`) and the viewer to run on the same host: see
//! [`ReceivedFrame::latency_ns`].

pub mod depacketize;
mod error;
pub mod frame;
pub mod load;
pub mod reassemble;
pub mod report;
pub mod runtime;
pub mod signalling;
pub mod viewer;

pub use error::Error;
pub use frame::ReceivedFrame;
pub use load::LoadOptions;
pub use report::Report;
pub use signalling::{HttpResponse, post_raw};
pub use viewer::{ConnectionState, Signalling, Viewer, ViewerOptions, ViewerStats};
