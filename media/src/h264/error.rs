//! The one error type of the module.

/// Why an access unit, a NAL unit or a parameter set was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum H264Error {
    /// The access unit has no bytes at all.
    #[error("the access unit is empty")]
    Empty,
    /// The data does not begin with a start code (`00 00 01`, after optional zero bytes).
    #[error("the access unit does not begin with an Annex-B start code")]
    NoStartCode,
    /// A start code is followed directly by another start code or by the end of the data:
    /// a truncated NAL unit.
    #[error("empty NAL unit after the start code at byte {offset}")]
    EmptyNal {
        /// Offset of the first byte after the offending start code.
        offset: usize,
    },
    /// A NAL unit header has its forbidden_zero_bit set: the data is corrupt.
    #[error("forbidden_zero_bit set in the NAL unit at byte {offset}")]
    ForbiddenBit {
        /// Offset of the NAL unit's header byte.
        offset: usize,
    },
    /// The data holds zero bytes only: padding, not a single NAL unit.
    #[error("the access unit holds no NAL unit")]
    NoNalUnits,
    /// A NAL unit handed to the SPS parser is not an SPS (type 7).
    #[error("NAL unit of type {nal_unit_type} is not a sequence parameter set")]
    NotSps {
        /// The NAL unit's `nal_unit_type`.
        nal_unit_type: u8,
    },
    /// The SPS could not be parsed, or describes an impossible picture.
    #[error("invalid sequence parameter set: {reason}")]
    InvalidSps {
        /// What the parser objected to.
        reason: String,
    },
    /// An [`AccessUnitInfo`](super::AccessUnitInfo) was used with data of another length than
    /// the access unit it was made from.
    #[error("access unit info describes {expected} bytes but the data has {actual}")]
    InfoMismatch {
        /// Length of the analysed access unit.
        expected: usize,
        /// Length of the data given now.
        actual: usize,
    },
}
