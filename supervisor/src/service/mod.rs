//! The services stackctl supervises, in Horust's shape: decisions are pure functions of state,
//! events and time, tested as tables; the I/O that feeds them and carries them out is beside
//! them, as thin as it can be.
//!
//! - [`machine`]: every service's life and the stack's phase, as a pure state machine (start
//!   here: its module documentation has the diagrams);
//! - [`restart`] (when a service that stopped by itself comes back) and [`gate`] (whether its
//!   dependencies let it start): the machine's pure helpers;
//! - [`driver`]: the async loop around the machine: run reports, back-off timers, control calls
//!   and signals in; runs started and stopped, log lines, status and systemd notifications out;
//! - [`run`]: one run of a service as a task (clean its segments, build, spawn, probe, report),
//!   with [`probe`] (readiness and liveness checks from outside) and [`shm_clean`];
//! - [`plan`]: what a service is, resolved once from the configuration;
//! - [`resources`]: CPU and memory of the services' processes, for the status.

pub mod driver;
pub mod gate;
pub mod machine;
pub mod plan;
pub mod probe;
pub mod resources;
pub mod restart;
pub mod run;
pub mod shm_clean;
