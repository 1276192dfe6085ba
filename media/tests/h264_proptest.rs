//! Property tests of the `h264` module: no input panics it, and splitting finds exactly the
//! NAL units an access unit was assembled from.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;

use proptest::prelude::*;
use stackctl_media::h264::{
    NalType, ParamCache, ParameterSets, SpsInfo, analyse, split_annexb, split_annexb_checked,
    with_params,
};

const SPS_BASELINE: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xf6, 0x40];
const SPS_HIGH: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x00, 0x03, 0x00, 0xf2, 0x10,
];
const SPS_BROKEN: &[u8] = &[0x67, 0x42, 0xc0];
const PPS_A: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
const PPS_B: &[u8] = &[0x68, 0xce, 0x38, 0x80];
const IDR: &[u8] = &[0x65, 0x88, 0x80, 0x40];
const P: &[u8] = &[0x41, 0x9a, 0x02];

/// Bytes drawn mostly from the values that matter to a start-code scanner.
fn annexb_ish_bytes(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => Just(0u8),
        2 => Just(1u8),
        1 => Just(3u8),
        1 => prop::sample::select(vec![0x09u8, 0x41, 0x65, 0x67, 0x68, 0xe5]),
        3 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..max_len)
}

/// A valid SPS with a few bytes overwritten and maybe truncated: deep into the SPS parser.
fn mutated_sps() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![SPS_BASELINE, SPS_HIGH]),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(sps, edits, cut)| {
            let mut sps = sps.to_vec();
            for (at, value) in edits {
                let i = at.index(sps.len() - 1) + 1;
                sps[i] = value;
            }
            sps.truncate(cut.index(sps.len()) + 1);
            sps
        })
}

/// A NAL payload free of `00 00 00`..`00 00 03` and not ending in a zero byte.
fn nal_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![2 => Just(0u8), 1 => Just(1u8), 4 => any::<u8>()],
        1..48,
    )
    .prop_map(|raw| {
        let mut nal = Vec::with_capacity(raw.len());
        for b in raw {
            let after_two_zeros = nal.ends_with(&[0, 0]);
            nal.push(if after_two_zeros && b <= 3 {
                b | 0x04
            } else {
                b
            });
        }
        if let Some(last @ 0) = nal.last_mut() {
            *last = 0x80;
        }
        nal
    })
}

/// NAL payloads, each with its start-code length (3 or 4) and its trailing zero bytes.
fn access_unit() -> impl Strategy<Value = (usize, Vec<(Vec<u8>, bool, usize)>)> {
    (
        0..3usize,
        prop::collection::vec((nal_payload(), any::<bool>(), 0..3usize), 1..8),
    )
}

fn assemble(leading_zeros: usize, nals: &[(Vec<u8>, bool, usize)]) -> Vec<u8> {
    let mut au = vec![0; leading_zeros];
    for (payload, four_bytes, trailing_zeros) in nals {
        au.extend_from_slice(if *four_bytes {
            &[0, 0, 0, 1]
        } else {
            &[0, 0, 1]
        });
        au.extend_from_slice(payload);
        au.resize(au.len() + trailing_zeros, 0);
    }
    au
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(data in annexb_ish_bytes(256)) {
        let mut previous_end = 0;
        for nal in split_annexb(&data) {
            prop_assert!(nal.start >= previous_end + 3 && nal.start < nal.end);
            prop_assert_eq!(&data[nal.start - 3..nal.start], &[0, 0, 1]);
            prop_assert_ne!(data[nal.end - 1], 0);
            previous_end = nal.end;
        }
        let checked: Result<Vec<_>, _> = split_annexb_checked(&data).collect();
        if let Ok(info) = analyse(&data) {
            prop_assert_eq!(checked.ok().map(|c| c.len()), Some(info.nals().len()));
            let mut cache = ParamCache::new();
            let _ = cache.update(&data, &info);
            if let Some(params) = cache.current() {
                prop_assert!(with_params(&params, &data, &info).is_ok());
            }
        }
        let _ = SpsInfo::parse(&data);
    }

    #[test]
    fn mutated_sps_never_panics(sps in mutated_sps()) {
        if let Ok(info) = SpsInfo::parse(&sps) {
            prop_assert!(info.width > 0 && info.height > 0);
            prop_assert_eq!(info.profile_level_id().len(), 6);
        }
    }

    #[test]
    fn split_returns_exactly_the_assembled_payloads((leading, nals) in access_unit()) {
        let au = assemble(leading, &nals);
        let expected: Vec<&[u8]> = nals.iter().map(|(p, _, _)| p.as_slice()).collect();
        let lenient: Vec<&[u8]> = split_annexb(&au).map(|r| &au[r.range()]).collect();
        prop_assert_eq!(&lenient, &expected);
        let checked: Vec<&[u8]> = split_annexb_checked(&au)
            .map(|r| r.map(|r| &au[r.range()]))
            .collect::<Result<_, _>>()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&checked, &expected);
    }

    #[test]
    fn analyse_classifies_every_assembled_nal((leading, mut nals) in access_unit()) {
        for (payload, _, _) in &mut nals {
            // Clear the forbidden bit; a zero header byte would read as trailing padding.
            payload[0] = match payload[0] & 0x7f {
                0 => 0x06,
                header => header,
            };
        }
        let au = assemble(leading, &nals);
        let info = analyse(&au).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(info.nals().len(), nals.len());
        for (nal, (payload, _, _)) in info.nals().iter().zip(&nals) {
            prop_assert_eq!(nal.nal_type(), NalType::from_nal_unit_type(payload[0]));
        }
        prop_assert_eq!(info.is_idr(), nals.iter().any(|(p, _, _)| p[0] & 0x1f == 5));
    }
}

/// A stream of access units built from known NAL units, some SPS broken.
fn nal_stream() -> impl Strategy<Value = Vec<Vec<&'static [u8]>>> {
    let nal = prop::sample::select(vec![SPS_BASELINE, SPS_HIGH, SPS_BROKEN, PPS_A, PPS_B, P]);
    let au = prop::collection::vec(nal, 0..4).prop_map(|mut nals| {
        nals.push(IDR);
        nals
    });
    prop::collection::vec(au, 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn cache_follows_a_model_of_the_latest_parameter_sets(stream in nal_stream()) {
        let mut cache = ParamCache::new();
        let mut model: (Option<&[u8]>, Option<&[u8]>) = (None, None);
        let mut previous: Option<Arc<ParameterSets>> = None;
        for nals in stream {
            let au = assemble(0, &nals.iter().map(|n| (n.to_vec(), true, 0)).collect::<Vec<_>>());
            let info = analyse(&au).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let last = |ty: u8| nals.iter().rev().copied().find(|n| n[0] & 0x1f == ty);
            let result = cache.update(&au, &info);
            match last(7) {
                Some(sps) if Some(sps) != model.0 && sps == SPS_BROKEN => {
                    prop_assert!(result.is_err());
                }
                sps => {
                    prop_assert!(result.is_ok());
                    model = (sps.or(model.0), last(8).or(model.1));
                }
            }
            let current = cache.current();
            match (&current, model) {
                (Some(params), (Some(sps), Some(pps))) => {
                    prop_assert_eq!(&*params.sps, sps);
                    prop_assert_eq!(&*params.pps, pps);
                }
                (None, (_, None) | (None, _)) => {}
                (got, want) => prop_assert!(false, "cache {:?}, model {:?}", got, want),
            }
            if let (Some(before), Some(now)) = (&previous, &current) {
                let unchanged = **before == **now;
                prop_assert_eq!(Arc::ptr_eq(before, now), unchanged);
            }
            previous = current;
        }
    }
}
