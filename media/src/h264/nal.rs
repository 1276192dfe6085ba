//! The one-byte NAL unit header and the NAL unit types this crate cares about.

use super::NalRange;

/// What a NAL unit carries, from the 5-bit `nal_unit_type` of its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NalType {
    /// Sequence parameter set (type 7).
    Sps,
    /// Picture parameter set (type 8).
    Pps,
    /// Slice of an IDR picture (type 5): decoding can start here.
    Idr,
    /// Slice of a non-IDR picture (type 1).
    NonIdr,
    /// Supplemental enhancement information (type 6).
    Sei,
    /// Access unit delimiter (type 9).
    Aud,
    /// Any other `nal_unit_type` (0..=31, none of the above).
    Other(u8),
}

impl NalType {
    /// The type named by the low 5 bits of `nal_unit_type`.
    pub const fn from_nal_unit_type(nal_unit_type: u8) -> Self {
        match nal_unit_type & 0x1f {
            1 => Self::NonIdr,
            5 => Self::Idr,
            6 => Self::Sei,
            7 => Self::Sps,
            8 => Self::Pps,
            9 => Self::Aud,
            other => Self::Other(other),
        }
    }

    /// The numeric `nal_unit_type`.
    pub const fn nal_unit_type(self) -> u8 {
        match self {
            Self::NonIdr => 1,
            Self::Idr => 5,
            Self::Sei => 6,
            Self::Sps => 7,
            Self::Pps => 8,
            Self::Aud => 9,
            Self::Other(other) => other,
        }
    }

    /// Whether this is an SPS or a PPS.
    pub const fn is_parameter_set(self) -> bool {
        matches!(self, Self::Sps | Self::Pps)
    }

    /// Whether this NAL unit carries coded picture data (types 1 to 5).
    pub const fn is_vcl(self) -> bool {
        matches!(self.nal_unit_type(), 1..=5)
    }
}

/// The first byte of a NAL unit: `forbidden_zero_bit` (1 bit), `nal_ref_idc` (2 bits),
/// `nal_unit_type` (5 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NalHeader(u8);

impl NalHeader {
    /// Wraps a header byte.
    pub const fn new(byte: u8) -> Self {
        Self(byte)
    }

    /// The raw header byte.
    pub const fn byte(self) -> u8 {
        self.0
    }

    /// Whether the forbidden_zero_bit is set, which marks a corrupt NAL unit.
    pub const fn forbidden_zero_bit(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// `nal_ref_idc` (0..=3): 0 means no other picture references this one.
    pub const fn nal_ref_idc(self) -> u8 {
        (self.0 >> 5) & 0x03
    }

    /// The numeric `nal_unit_type` (0..=31).
    pub const fn nal_unit_type(self) -> u8 {
        self.0 & 0x1f
    }

    /// The classified `nal_unit_type`.
    pub const fn nal_type(self) -> NalType {
        NalType::from_nal_unit_type(self.0)
    }
}

/// One NAL unit of an analysed access unit: where it is and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nal {
    /// Its bytes in the access unit (header included, start code excluded).
    pub range: NalRange,
    /// Its header byte.
    pub header: NalHeader,
}

impl Nal {
    /// The classified type, short for `self.header.nal_type()`.
    pub const fn nal_type(&self) -> NalType {
        self.header.nal_type()
    }

    /// Its bytes in `data`, or `None` if `data` is not the access unit it came from.
    pub fn get<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        self.range.get(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_common_types() {
        let cases = [
            (0x67, NalType::Sps, 3),
            (0x68, NalType::Pps, 3),
            (0x65, NalType::Idr, 3),
            (0x41, NalType::NonIdr, 2),
            (0x01, NalType::NonIdr, 0),
            (0x06, NalType::Sei, 0),
            (0x09, NalType::Aud, 0),
            (0x0c, NalType::Other(12), 0),
        ];
        for (byte, ty, ref_idc) in cases {
            let header = NalHeader::new(byte);
            assert_eq!(header.nal_type(), ty, "{byte:#04x}");
            assert_eq!(header.nal_ref_idc(), ref_idc, "{byte:#04x}");
            assert!(!header.forbidden_zero_bit());
            assert_eq!(ty.nal_unit_type(), byte & 0x1f);
            assert_eq!(header.byte(), byte);
        }
    }

    #[test]
    fn forbidden_bit_and_categories() {
        assert!(NalHeader::new(0xe5).forbidden_zero_bit());
        assert_eq!(NalHeader::new(0xe5).nal_type(), NalType::Idr);
        assert!(NalType::Sps.is_parameter_set() && NalType::Pps.is_parameter_set());
        assert!(!NalType::Sei.is_parameter_set());
        assert!(NalType::Idr.is_vcl() && NalType::NonIdr.is_vcl() && NalType::Other(2).is_vcl());
        assert!(!NalType::Aud.is_vcl() && !NalType::Other(20).is_vcl());
    }

    #[test]
    fn round_trips_every_type() {
        for t in 0..32u8 {
            assert_eq!(NalType::from_nal_unit_type(t).nal_unit_type(), t);
        }
    }
}
