//! The unit that travels on the bus: one access unit, copied once out of shared memory.

use std::sync::Arc;

use stackctl_media::h264::{AccessUnitInfo, NalType, ParameterSets};

/// Metadata the camera wrote beside the access unit, plus what the source learned from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// The camera's own frame counter (per camera: it can jump on a day/night switch).
    pub frame_number: u64,
    /// The writer's `write_index` value for this frame: consecutive frames of one writer
    /// incarnation have consecutive sequence numbers, so gaps show lost frames.
    pub sequence: u32,
    /// Capture time on `CLOCK_MONOTONIC`, in nanoseconds. Media time comes from here, never
    /// from an assumed frame rate.
    pub timestamp_ns: u64,
    /// When the source finished copying and checking the frame (`CLOCK_MONOTONIC`, ns).
    pub received_ns: u64,
    /// 0 day camera, 1 night camera.
    pub camera_id: i32,
    /// Width in pixels, as the camera reported it.
    pub width: u32,
    /// Height in pixels, as the camera reported it.
    pub height: u32,
    /// Incremented each time the source follows a writer restart, so consumers can tell a new
    /// stream from a gap.
    pub generation: u32,
}

/// One H.264 access unit with its metadata. Immutable; shared by every consumer via `Arc`.
#[derive(Debug)]
pub struct Frame {
    meta: FrameMeta,
    data: Box<[u8]>,
    info: AccessUnitInfo,
    params: Option<Arc<ParameterSets>>,
}

impl Frame {
    /// Assembles a frame. `info` must describe `data` (it comes from [`stackctl_media::h264::analyse`]).
    pub fn new(
        meta: FrameMeta,
        data: Box<[u8]>,
        info: AccessUnitInfo,
        params: Option<Arc<ParameterSets>>,
    ) -> Self {
        Self {
            meta,
            data,
            info,
            params,
        }
    }

    /// Camera metadata.
    pub fn meta(&self) -> &FrameMeta {
        &self.meta
    }

    /// The access unit exactly as the camera wrote it (Annex-B).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The NAL units of the access unit.
    pub fn info(&self) -> &AccessUnitInfo {
        &self.info
    }

    /// True for an IDR access unit: a decoder can start here (given SPS and PPS).
    pub fn is_idr(&self) -> bool {
        self.info.is_idr()
    }

    /// True when the access unit carries its own SPS and PPS.
    pub fn has_inband_params(&self) -> bool {
        self.info.has_sps() && self.info.has_pps()
    }

    /// The latest SPS/PPS seen on the stream up to and including this frame; `None` before the
    /// first pair. A consumer joining at an IDR without in-band parameter sets writes these first.
    pub fn params(&self) -> Option<&Arc<ParameterSets>> {
        self.params.as_ref()
    }

    /// Iterates the payloads (no start codes) of the NAL units of one type.
    pub fn nals_of(&self, kind: NalType) -> impl Iterator<Item = &[u8]> {
        self.info
            .nals()
            .iter()
            .filter(move |nal| nal.nal_type() == kind)
            .filter_map(|nal| nal.get(&self.data))
    }
}
