//! The services stackctl supervises: their life cycle and restart rules.
//!
//! The rules are pure functions of time and events (tested as tables); the orchestration that
//! applies them to real processes lives beside them.

pub mod driver;
pub mod gate;
pub mod machine;
pub mod plan;
pub mod probe;
pub mod resources;
pub mod restart;
pub mod run;
pub mod shm_clean;
