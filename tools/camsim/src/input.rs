//! An Annex-B H.264 file replayed access unit by access unit, looping forever.

use std::ops::Range;
use std::path::Path;

use anyhow::{Result, bail};
use stackctl_core::layout::SLOT_DATA_CAPACITY;
use stackctl_media::h264::{NalHeader, NalType, SpsInfo, split_annexb};

use crate::au::split_access_units;

/// A whole H.264 file in memory and where its access units are.
#[derive(Debug)]
pub struct InputFile {
    data: Vec<u8>,
    units: Vec<Range<usize>>,
    /// Index of the next unit to hand out.
    next: usize,
}

impl InputFile {
    /// Reads and splits `path`. Fails when it cannot be read, holds no NAL unit, or has an
    /// access unit too large for a slot.
    pub fn open(path: &Path) -> Result<Self> {
        let data = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --input {}: {e}", path.display()))?;
        Self::from_bytes(data).map_err(|e| e.context(format!("--input {}", path.display())))
    }

    /// Splits an in-memory Annex-B stream.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self> {
        let units = split_access_units(&data);
        if units.is_empty() {
            bail!("no H.264 NAL unit found (expected an Annex-B byte stream)");
        }
        if let Some((i, big)) = units
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() > SLOT_DATA_CAPACITY)
        {
            bail!(
                "access unit {i} is {} bytes, more than a slot holds ({SLOT_DATA_CAPACITY})",
                big.len()
            );
        }
        Ok(Self {
            data,
            units,
            next: 0,
        })
    }

    /// Number of access units in the file.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// The next access unit, wrapping to the first after the last.
    pub fn next_unit(&mut self) -> &[u8] {
        let range = self.units[self.next].clone();
        self.next = (self.next + 1) % self.units.len();
        &self.data[range]
    }

    /// Width and height from the stream's first SPS that parses, if any.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        split_annexb(&self.data)
            .filter_map(|nal| nal.get(&self.data))
            .filter(|nal| {
                nal.first()
                    .is_some_and(|&b| NalHeader::new(b).nal_type() == NalType::Sps)
            })
            .find_map(|nal| SpsInfo::parse(nal).ok())
            .map(|sps| (sps.width, sps.height))
    }

    /// Goes back to the first access unit, as a restarted camera would start its stream.
    pub fn rewind(&mut self) {
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_over_its_units_and_rewinds() {
        let idr = [0, 0, 0, 1, 0x65, 0x88];
        let p = [0, 0, 0, 1, 0x41, 0x9a];
        let mut input = InputFile::from_bytes([&idr[..], &p, &p].concat()).unwrap();
        assert_eq!(input.len(), 3);
        assert_eq!(input.next_unit(), idr);
        assert_eq!(input.next_unit(), p);
        assert_eq!(input.next_unit(), p);
        assert_eq!(input.next_unit(), idr);
        input.rewind();
        assert_eq!(input.next_unit(), idr);
    }

    #[test]
    fn rejects_files_without_h264() {
        let err = InputFile::from_bytes(b"hello".to_vec()).unwrap_err();
        assert!(err.to_string().contains("no H.264"), "{err}");
    }
}
