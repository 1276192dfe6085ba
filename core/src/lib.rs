//! The camera data path of stackctl.
//!
//! ```text
//! camera daemon --(POSIX shm ring)--> shm::Source --> H.264 analysis (stackctl-media) --> bus::Bus --> sinks
//! ```
//!
//! - [`layout`]: the board's segment layout, asserted at compile time;
//! - [`shm`]: the read-only segment reader, its torn-read guard and wake-up pacing;
//! - [`bus`]: one immutable [`Frame`] fanned out to bounded per-subscriber queues.
//!
//! No async runtime: the source runs on its own thread and the bus never blocks its publisher.

pub mod bus;
pub mod detections;
pub mod frame;
pub mod layout;
pub mod shm;
pub mod snapshot;
pub mod warn;

pub use bus::{Bus, Subscription};
pub use frame::{Frame, FrameMeta};
