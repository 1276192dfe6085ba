//! [`AccessUnit`]: what the writer needs from a frame, so it runs on the host's retained frames
//! in the plugin and on owned buffers in tests and benchmarks.

use stackctl_sink_sdk::RetainedFrame;

/// One H.264 access unit with its capture time.
pub trait AccessUnit {
    /// The access unit, Annex-B.
    fn data(&self) -> &[u8];
    /// Capture time, CLOCK_MONOTONIC nanoseconds.
    fn timestamp_ns(&self) -> u64;
    /// Whether a decoder can start here.
    fn is_idr(&self) -> bool;
    /// The stream's latest SPS (no start code), if known.
    fn sps(&self) -> Option<&[u8]>;
    /// The stream's latest PPS (no start code), if known.
    fn pps(&self) -> Option<&[u8]>;
    /// Whether the unit carries its own SPS and PPS.
    fn has_inband_params(&self) -> bool;
    /// The camera's incarnation: timestamps of two generations are unrelated.
    fn generation(&self) -> u32;
}

impl AccessUnit for RetainedFrame {
    fn data(&self) -> &[u8] {
        RetainedFrame::data(self)
    }
    fn timestamp_ns(&self) -> u64 {
        RetainedFrame::timestamp_ns(self)
    }
    fn is_idr(&self) -> bool {
        RetainedFrame::is_idr(self)
    }
    fn sps(&self) -> Option<&[u8]> {
        RetainedFrame::sps(self)
    }
    fn pps(&self) -> Option<&[u8]> {
        RetainedFrame::pps(self)
    }
    fn has_inband_params(&self) -> bool {
        RetainedFrame::has_inband_params(self)
    }
    fn generation(&self) -> u32 {
        RetainedFrame::generation(self)
    }
}

/// An access unit in owned memory (tests, benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedUnit {
    /// Annex-B bytes.
    pub data: Vec<u8>,
    /// Capture time, ns.
    pub timestamp_ns: u64,
    /// IDR or not.
    pub idr: bool,
    /// SPS, no start code.
    pub sps: Option<Vec<u8>>,
    /// PPS, no start code.
    pub pps: Option<Vec<u8>>,
    /// Whether `data` holds SPS and PPS.
    pub inband: bool,
    /// Camera generation.
    pub generation: u32,
}

impl AccessUnit for OwnedUnit {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    fn is_idr(&self) -> bool {
        self.idr
    }
    fn sps(&self) -> Option<&[u8]> {
        self.sps.as_deref()
    }
    fn pps(&self) -> Option<&[u8]> {
        self.pps.as_deref()
    }
    fn has_inband_params(&self) -> bool {
        self.inband
    }
    fn generation(&self) -> u32 {
        self.generation
    }
}

/// A shared frame (events mode holds one frame in its pre-roll ring and in a clip at once).
impl<T: AccessUnit> AccessUnit for std::sync::Arc<T> {
    fn data(&self) -> &[u8] {
        T::data(self)
    }
    fn timestamp_ns(&self) -> u64 {
        T::timestamp_ns(self)
    }
    fn is_idr(&self) -> bool {
        T::is_idr(self)
    }
    fn sps(&self) -> Option<&[u8]> {
        T::sps(self)
    }
    fn pps(&self) -> Option<&[u8]> {
        T::pps(self)
    }
    fn has_inband_params(&self) -> bool {
        T::has_inband_params(self)
    }
    fn generation(&self) -> u32 {
        T::generation(self)
    }
}
