//! The camera data path of stackctl.
//!
//! ```text
//! camera daemon --(POSIX shm ring)--> shm::Source --> H.264 analysis (stackctl-media) --> bus::Bus --> sinks
//! YOLO detector --(shm record)--> detections::DetectionSource ------------------------------> bus::Bus
//! camera daemon --(shm NV12 ring)--> snapshot::Snapshotter --> JPEG
//! ```
//!
//! - [`layout`]: the board's segment layouts, asserted at compile time;
//! - [`shm`]: the read-only segment reader, its torn-read guard and wake-up pacing;
//! - [`detections`]: the detector's results, read consistently and validated;
//! - [`bus`]: one immutable [`Frame`] (and each [`Detections`]) fanned out to bounded
//!   per-subscriber queues;
//! - [`snapshot`]: the newest NV12 picture as a JPEG, encoded once per frame.
//!
//! No async runtime: the sources run on their own threads and the bus never blocks its
//! publishers.

pub mod bus;
pub mod detections;
pub mod frame;
pub mod layout;
pub mod shm;
pub mod snapshot;
pub mod warn;

pub use bus::{Bus, BusItem, Subscription};
pub use detections::Detections;
pub use frame::{Frame, FrameMeta};
