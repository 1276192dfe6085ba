//! `CLOCK_MONOTONIC` as nanoseconds: the clock the camera stamps frames with; and the wall
//! clock, which RTCP sender reports map it to.

use nix::time::{ClockId, clock_gettime};

/// Now on `CLOCK_MONOTONIC`, in nanoseconds (0 if the clock cannot be read, which Linux never
/// does for this clock).
pub fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|ts| {
            let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
            let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
            secs * 1_000_000_000 + nanos
        })
        .unwrap_or(0)
}

/// Now on the wall clock, in nanoseconds since the Unix epoch (0 before 1970).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
