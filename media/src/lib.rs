//! H.264 and RTP for stackctl: everything the data path and the sinks need to know of the
//! video they carry, in one place, with no runtime and no unsafe code.
//!
//! - [`h264`]: Annex-B splitting, NAL classification, SPS parsing, the parameter-set cache,
//!   "IDR with parameter sets in front" (zero-copy), and the profiles SDP names;
//! - [`gate`]: the one IDR gate (joining, live, skipping) that keeps every consumer on a
//!   decodable chain: the bus uses it for each subscriber, each sink for each of its clients;
//! - [`rtp`]: the RTP packetizer (STAP-A, FU-A) and the 90 kHz clock;
//! - [`clock`]: `CLOCK_MONOTONIC`, the clock the camera stamps frames with, and the wall clock.

#![forbid(unsafe_code)]

pub mod clock;
pub mod gate;
pub mod h264;
pub mod rtp;

pub use clock::{monotonic_ns, unix_now_ns};
pub use gate::{Admit, IdrGate, Rejected};
