//! H.264 access units: Annex-B splitting, NAL classification, SPS parsing, parameter-set
//! caching. No byte of an access unit is copied: NAL units are byte ranges into its buffer.
//!
//! # The concepts
//!
//! - A **NAL unit** (network abstraction layer unit) is the packet of H.264: one header byte
//!   (`forbidden_zero_bit`, 2-bit `nal_ref_idc`, 5-bit `nal_unit_type`) then its payload.
//! - **Annex-B** framing puts a **start code** `00 00 01` (or `00 00 00 01`) in front of each
//!   NAL unit. The payload can never contain `00 00 00`..`00 00 03`: the encoder inserts an
//!   *emulation-prevention* byte `03` after any `00 00`, so finding `00 00 01` is enough to
//!   split (see [`annexb`]). Zero bytes just before a start code are padding, not payload.
//! - An **access unit** (AU) is all the NAL units of one picture: perhaps an access unit
//!   delimiter, SEI messages, and the slices of the picture. An **IDR** picture resets the
//!   decoder: a consumer can only start decoding at one (see [`access_unit`]).
//! - A decoder also needs the **parameter sets**: the SPS (sequence: profile, level, picture
//!   size; see [`sps`]) and the PPS (picture coding options). Cameras send them in band,
//!   usually in front of each IDR. [`ParamCache`] keeps the latest ones so that
//!   [`with_params()`] can put them in front of an AU for a consumer joining mid-stream.
//!
//! # Example
//!
//! ```
//! use stackctl_media::h264::{ParamCache, analyse, write_annexb_with_params};
//!
//! let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xf6, 0x40];
//! let mut au = vec![0, 0, 0, 1];
//! au.extend_from_slice(&sps);
//! au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x80]);
//!
//! let info = analyse(&au)?;
//! assert!(info.is_idr() && info.has_sps() && info.has_pps());
//!
//! let mut cache = ParamCache::new();
//! cache.update(&au, &info)?;
//! let params = cache.current().expect("SPS and PPS seen");
//! assert_eq!((params.info.width, params.info.height), (640, 480));
//! assert_eq!(params.info.profile_level_id(), "42c01e");
//!
//! let p_frame = [0, 0, 0, 1, 0x41, 0x9a, 0x01];
//! let mut joined = Vec::new();
//! write_annexb_with_params(&mut joined, &params, &p_frame, &analyse(&p_frame)?)?;
//! assert_eq!(analyse(&joined)?.nals().len(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod access_unit;
pub mod annexb;
mod error;
pub mod nal;
pub mod params;
pub mod profile;
pub mod sps;
#[cfg(test)]
mod testdata;
pub mod with_params;

pub use access_unit::{AccessUnitInfo, analyse, analyse_into};
pub use annexb::{
    CheckedNalIter, NalIter, NalRange, nal_units, split_annexb, split_annexb_checked,
};
pub use error::H264Error;
pub use nal::{Nal, NalHeader, NalType};
pub use params::{ParamCache, ParameterSets};
pub use profile::{Profile, sps_profile};
pub use sps::{SpsInfo, SpsTiming};
pub use with_params::{
    NalsWithParams, START_CODE, WithParams, with_param_bytes, with_params, write_annexb_with_params,
};
