//! Keeping the stream's latest SPS and PPS, to hand to consumers that join mid-stream.

use std::sync::Arc;

use super::{AccessUnitInfo, H264Error, NalType, SpsInfo};

/// One SPS and one PPS (NAL payloads without start code) and what the SPS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterSets {
    /// The SPS NAL unit, header byte included.
    pub sps: Arc<[u8]>,
    /// The PPS NAL unit, header byte included.
    pub pps: Arc<[u8]>,
    /// The parsed SPS.
    pub info: SpsInfo,
}

/// The latest parameter sets seen in the stream.
///
/// [`current`](Self::current) returns the same `Arc` until an SPS or PPS with different bytes
/// arrives, so consumers can detect a change with [`Arc::ptr_eq`].
#[derive(Debug, Clone, Default)]
pub struct ParamCache {
    sps: Option<(Arc<[u8]>, SpsInfo)>,
    pps: Option<Arc<[u8]>>,
    current: Option<Arc<ParameterSets>>,
}

impl ParamCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the SPS and PPS of an analysed access unit (the last of each, if several).
    ///
    /// Returns `Ok(true)` when [`current`](Self::current) now gives a new [`ParameterSets`].
    /// An SPS that fails to parse is an error and leaves the cache as it was: the PPS of the
    /// same access unit is ignored too, since it probably belongs to that SPS.
    pub fn update(&mut self, data: &[u8], info: &AccessUnitInfo) -> Result<bool, H264Error> {
        info.check_data(data)?;
        if !info.has_sps() && !info.has_pps() {
            return Ok(false);
        }
        let sps_bytes = info.last(NalType::Sps).and_then(|nal| nal.get(data));
        let new_sps = match sps_bytes {
            Some(bytes) if !same(self.sps.as_ref().map(|(sps, _)| sps), bytes) => {
                Some((bytes, SpsInfo::parse(bytes)?))
            }
            _ => None,
        };
        let new_pps = info
            .last(NalType::Pps)
            .and_then(|nal| nal.get(data))
            .filter(|bytes| !same(self.pps.as_ref(), bytes));
        if new_sps.is_none() && new_pps.is_none() {
            return Ok(false);
        }
        if let Some((bytes, sps_info)) = new_sps {
            self.sps = Some((Arc::from(bytes), sps_info));
        }
        if let Some(bytes) = new_pps {
            self.pps = Some(Arc::from(bytes));
        }
        self.current = match (&self.sps, &self.pps) {
            (Some((sps, sps_info)), Some(pps)) => Some(Arc::new(ParameterSets {
                sps: Arc::clone(sps),
                pps: Arc::clone(pps),
                info: *sps_info,
            })),
            _ => None,
        };
        Ok(self.current.is_some())
    }

    /// The latest SPS and PPS, once both have been seen.
    pub fn current(&self) -> Option<Arc<ParameterSets>> {
        self.current.clone()
    }

    /// The latest parsed SPS, even before a PPS has been seen.
    pub fn sps_info(&self) -> Option<&SpsInfo> {
        self.sps.as_ref().map(|(_, info)| info)
    }

    /// Forgets everything, e.g. when the camera restarts its stream.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

fn same(cached: Option<&Arc<[u8]>>, bytes: &[u8]) -> bool {
    cached.is_some_and(|cached| **cached == *bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::analyse;
    use crate::h264::testdata::{BASELINE_640X480_SPS, MAIN_720P_SPS, PPS, PPS_2, annexb};

    const IDR: &[u8] = &[0x65, 0x88, 0x80];
    const P: &[u8] = &[0x41, 0x9a, 0x01];

    fn feed(cache: &mut ParamCache, nals: &[&[u8]]) -> Result<bool, H264Error> {
        let data = annexb(nals);
        let info = analyse(&data).unwrap();
        cache.update(&data, &info)
    }

    #[test]
    fn same_arc_until_something_changes() {
        let mut cache = ParamCache::new();
        assert!(cache.current().is_none());
        assert!(feed(&mut cache, &[BASELINE_640X480_SPS, PPS, IDR]).unwrap());
        let first = cache.current().unwrap();
        assert_eq!(&*first.sps, BASELINE_640X480_SPS);
        assert_eq!(&*first.pps, PPS);
        assert_eq!(first.info.width, 640);

        assert!(!feed(&mut cache, &[P]).unwrap());
        assert!(!feed(&mut cache, &[BASELINE_640X480_SPS, PPS, IDR]).unwrap());
        assert!(Arc::ptr_eq(&first, &cache.current().unwrap()));

        assert!(feed(&mut cache, &[BASELINE_640X480_SPS, PPS_2, IDR]).unwrap());
        let second = cache.current().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(
            Arc::ptr_eq(&first.sps, &second.sps),
            "unchanged SPS is shared"
        );
        assert_eq!(&*second.pps, PPS_2);

        assert!(feed(&mut cache, &[MAIN_720P_SPS, PPS_2, IDR]).unwrap());
        let third = cache.current().unwrap();
        assert_eq!((third.info.width, third.info.height), (1280, 720));
        assert!(Arc::ptr_eq(&second.pps, &third.pps));
    }

    #[test]
    fn needs_both_sps_and_pps() {
        let mut cache = ParamCache::new();
        assert!(!feed(&mut cache, &[BASELINE_640X480_SPS, IDR]).unwrap());
        assert!(cache.current().is_none());
        assert_eq!(cache.sps_info().map(|i| i.height), Some(480));
        assert!(feed(&mut cache, &[PPS, IDR]).unwrap());
        assert!(cache.current().is_some());
        cache.clear();
        assert!(cache.current().is_none() && cache.sps_info().is_none());
    }

    #[test]
    fn a_broken_sps_does_not_poison_the_cache() {
        let mut cache = ParamCache::new();
        feed(&mut cache, &[BASELINE_640X480_SPS, PPS, IDR]).unwrap();
        let before = cache.current().unwrap();
        let broken_sps: &[u8] = &[0x67, 0x42, 0xc0];
        let result = feed(&mut cache, &[broken_sps, PPS_2, IDR]);
        assert!(matches!(result, Err(H264Error::InvalidSps { .. })));
        assert!(Arc::ptr_eq(&before, &cache.current().unwrap()));
        assert!(feed(&mut cache, &[MAIN_720P_SPS, PPS_2, IDR]).unwrap());
        assert_eq!(cache.current().unwrap().info.seq_parameter_set_id, 1);
    }

    #[test]
    fn rejects_info_of_other_data() {
        let mut cache = ParamCache::new();
        let data = annexb(&[BASELINE_640X480_SPS, PPS, IDR]);
        let info = analyse(&data).unwrap();
        let result = cache.update(&data[..data.len() - 1], &info);
        assert!(matches!(result, Err(H264Error::InfoMismatch { .. })));
        assert!(cache.current().is_none());
    }
}
