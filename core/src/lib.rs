//! The camera data path of stackctl.
//!
//! ```text
//! camera daemon --(POSIX shm ring)--> shm::Source --> h264 analysis --> bus::Bus --> sinks
//! ```
//!
//! - [`layout`]: the board's segment layout, asserted at compile time;
//! - [`shm`]: the read-only segment reader, its torn-read guard and wake-up pacing;
//! - [`h264`]: Annex-B splitting, NAL classification, SPS parsing, parameter-set caching;
//! - [`bus`]: one immutable [`Frame`] fanned out to bounded per-subscriber queues.
//!
//! No async runtime: the source runs on its own thread and the bus never blocks its publisher.

pub mod bus;
pub mod clock;
pub mod frame;
pub mod h264;
pub mod layout;
pub mod shm;
pub mod warn;

pub use bus::{Bus, Subscription};
pub use frame::{Frame, FrameMeta};
