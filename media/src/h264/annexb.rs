//! Splitting an Annex-B byte stream into NAL units, as byte ranges into the caller's buffer.

use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::H264Error;

/// The three bytes every start code ends with; a 4-byte start code has one more `00` in front.
const START_CODE_PREFIX: [u8; 3] = [0, 0, 1];

/// One searcher for the whole process: building a `Finder` costs more than a short search.
static START_CODE_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(&START_CODE_PREFIX));

/// Where the next `00 00 01` begins, at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let rest = data.get(from..)?;
    START_CODE_FINDER.find(rest).map(|at| from + at)
}

/// `end`, moved back over the zero bytes that precede it (but not before `start`): those are
/// `trailing_zero_8bits` or the leading `00` of a 4-byte start code, not NAL payload.
fn trim_trailing_zeros(data: &[u8], start: usize, end: usize) -> usize {
    let payload = data.get(start..end).unwrap_or_default();
    start
        + payload
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1)
}

/// The bytes of one NAL unit inside an access unit: header byte included, start code and
/// trailing zero bytes excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NalRange {
    /// Offset of the NAL header byte.
    pub start: usize,
    /// Offset one past the last payload byte.
    pub end: usize,
}

impl NalRange {
    /// Number of bytes in the NAL unit.
    pub const fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte (never the case for ranges this module yields).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The NAL unit's bytes in `data`, or `None` if `data` is too short for this range.
    pub fn get<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        data.get(self.start..self.end)
    }

    /// The same range as a [`Range`].
    pub const fn range(&self) -> Range<usize> {
        self.start..self.end
    }
}

impl From<NalRange> for Range<usize> {
    fn from(nal: NalRange) -> Self {
        nal.range()
    }
}

/// Splits Annex-B `data` leniently: bytes before the first start code are skipped and empty
/// NAL units are left out. Use [`split_annexb_checked`] to reject malformed data instead.
pub fn split_annexb(data: &[u8]) -> NalIter<'_> {
    NalIter {
        data,
        next: find_start_code(data, 0).map(|at| at + START_CODE_PREFIX.len()),
    }
}

/// Iterator over the NAL units of an Annex-B buffer, made by [`split_annexb`].
#[derive(Debug, Clone)]
pub struct NalIter<'a> {
    data: &'a [u8],
    /// Offset just past the start code of the next NAL unit; `None` once exhausted.
    next: Option<usize>,
}

impl NalIter<'_> {
    /// The next NAL unit, possibly empty.
    fn next_raw(&mut self) -> Option<NalRange> {
        let start = self.next?;
        let (limit, next) = match find_start_code(self.data, start) {
            Some(at) => (at, Some(at + START_CODE_PREFIX.len())),
            None => (self.data.len(), None),
        };
        self.next = next;
        let end = trim_trailing_zeros(self.data, start, limit);
        Some(NalRange { start, end })
    }
}

impl Iterator for NalIter<'_> {
    type Item = NalRange;

    fn next(&mut self) -> Option<NalRange> {
        loop {
            let nal = self.next_raw()?;
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

impl FusedIterator for NalIter<'_> {}

/// The NAL units of Annex-B `data` as byte slices (header byte included, start codes and
/// padding excluded), split as leniently as [`split_annexb`].
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> + Clone + '_ {
    split_annexb(data).filter_map(move |nal| nal.get(data))
}

/// Splits Annex-B `data` strictly: the first item is an error if `data` is empty, all zero
/// ([`H264Error::NoNalUnits`]) or does not begin with a start code; an empty NAL unit yields
/// [`H264Error::EmptyNal`]. The iterator ends after the first error.
pub fn split_annexb_checked(data: &[u8]) -> CheckedNalIter<'_> {
    let first_start = match data.iter().position(|&b| b != 0) {
        _ if data.is_empty() => Err(H264Error::Empty),
        None => Err(H264Error::NoNalUnits),
        Some(one) if one >= 2 && data.get(one) == Some(&1) => Ok(one + 1),
        Some(_) => Err(H264Error::NoStartCode),
    };
    let (inner, failed) = match first_start {
        Ok(start) => (
            NalIter {
                data,
                next: Some(start),
            },
            None,
        ),
        Err(e) => (NalIter { data, next: None }, Some(e)),
    };
    CheckedNalIter { inner, failed }
}

/// Iterator over the NAL units of an Annex-B buffer, made by [`split_annexb_checked`].
#[derive(Debug, Clone)]
pub struct CheckedNalIter<'a> {
    inner: NalIter<'a>,
    /// An error found before iterating, reported as the first item.
    failed: Option<H264Error>,
}

impl Iterator for CheckedNalIter<'_> {
    type Item = Result<NalRange, H264Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.failed.take() {
            return Some(Err(e));
        }
        let nal = self.inner.next_raw()?;
        if nal.is_empty() {
            self.inner.next = None;
            return Some(Err(H264Error::EmptyNal { offset: nal.start }));
        }
        Some(Ok(nal))
    }
}

impl FusedIterator for CheckedNalIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(data: &[u8]) -> Vec<&[u8]> {
        split_annexb(data).map(|r| &data[r.range()]).collect()
    }

    fn checked(data: &[u8]) -> Result<Vec<&[u8]>, H264Error> {
        split_annexb_checked(data)
            .map(|r| r.map(|r| &data[r.range()]))
            .collect()
    }

    #[test]
    fn three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce,
        ];
        let expected: Vec<&[u8]> = vec![&[0x09, 0xf0], &[0x67, 0x42], &[0x68, 0xce]];
        assert_eq!(payloads(&data), expected);
        assert_eq!(checked(&data).unwrap(), expected);
        let ranges: Vec<_> = split_annexb(&data).collect();
        assert_eq!(ranges[0], NalRange { start: 4, end: 6 });
        assert_eq!(ranges[2].range(), 15..17);
    }

    #[test]
    fn trailing_zeros_are_trimmed() {
        let data = [0, 0, 1, 0x65, 0x88, 0, 0, 0, 0, 0, 1, 0x41, 0x9a, 0, 0];
        let expected: Vec<&[u8]> = vec![&[0x65, 0x88], &[0x41, 0x9a]];
        assert_eq!(checked(&data).unwrap(), expected);
    }

    #[test]
    fn leading_zero_bytes_are_allowed() {
        let data = [0, 0, 0, 0, 0, 1, 0x65, 0x11];
        assert_eq!(checked(&data).unwrap(), vec![&[0x65, 0x11][..]]);
    }

    #[test]
    fn emulation_prevention_and_reserved_triplets_stay_inside_a_nal() {
        let data = [0, 0, 1, 0x65, 0, 0, 3, 1, 0, 0, 2, 0x80];
        assert_eq!(checked(&data).unwrap(), vec![&data[3..]]);
    }

    #[test]
    fn lenient_split_skips_garbage_and_empty_nals() {
        let data = [0xff, 0xee, 0, 0, 1, 0, 0, 1, 0x65, 0x01, 0, 0, 1, 0, 0];
        assert_eq!(payloads(&data), vec![&[0x65, 0x01][..]]);
        assert_eq!(payloads(&[]).len(), 0);
        assert_eq!(payloads(&[0x65, 0x66]).len(), 0);
    }

    #[test]
    fn checked_split_rejects_malformed_data() {
        assert_eq!(checked(&[]), Err(H264Error::Empty));
        assert_eq!(checked(&[0, 0, 0, 0]), Err(H264Error::NoNalUnits));
        assert_eq!(checked(&[0x65, 0, 0, 1, 0x65]), Err(H264Error::NoStartCode));
        assert_eq!(checked(&[0, 1, 0x65]), Err(H264Error::NoStartCode));
        assert_eq!(checked(&[0, 0, 2, 0x65]), Err(H264Error::NoStartCode));
        assert_eq!(checked(&[0, 0, 1]), Err(H264Error::EmptyNal { offset: 3 }));
        assert_eq!(
            checked(&[0, 0, 1, 0, 0]),
            Err(H264Error::EmptyNal { offset: 3 })
        );
        let two_start_codes = [0, 0, 1, 0x67, 0, 0, 1, 0, 0, 0, 1, 0x68];
        assert_eq!(
            checked(&two_start_codes),
            Err(H264Error::EmptyNal { offset: 7 })
        );
    }

    #[test]
    fn checked_split_stops_after_the_first_error() {
        let data = [0, 0, 1, 0x67, 0, 0, 1, 0, 0, 1, 0x68];
        let items: Vec<_> = split_annexb_checked(&data).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(H264Error::EmptyNal { offset: 7 }));
    }

    #[test]
    fn range_accessors() {
        let r = NalRange { start: 2, end: 5 };
        assert_eq!(r.len(), 3);
        assert!(!r.is_empty());
        assert_eq!(r.get(&[0, 1, 2, 3]), None);
        assert_eq!(r.get(&[0, 1, 2, 3, 4]), Some(&[2, 3, 4][..]));
        assert_eq!(Range::from(r), 2..5);
    }
}
