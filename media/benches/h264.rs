//! Throughput of the `h264` module on a synthetic 1080p, ~8 Mbit/s stream: an IDR access unit
//! of ~150 KB (SPS + PPS + SEI + IDR slice) and P access units of ~30 KB.
//!
//! Run with `cargo bench -p stackctl-media --bench h264`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stackctl_media::h264::{
    AccessUnitInfo, ParamCache, SpsInfo, analyse, analyse_into, split_annexb, with_params,
};

/// High, level 4.0, 1920x1080, VUI timing: a typical camera SPS.
const SPS_HIGH: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x00, 0x03, 0x00, 0xf2, 0x10,
];
/// Constrained Baseline, level 3.0, 640x480, no VUI.
const SPS_BASELINE: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xf6, 0x40];
const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0xb0];

/// xorshift64*: deterministic bytes without another dependency.
struct Rng(u64);

impl Rng {
    fn next_byte(&mut self) -> u8 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes()[0]
    }
}

/// A NAL unit of `len` bytes: the header, then random bytes with emulation prevention applied
/// as an encoder would (so `00 00 03` occurs, `00 00 01` does not), ending in a stop bit.
fn nal(rng: &mut Rng, header: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + len / 256);
    out.push(header);
    while out.len() < len - 1 {
        let b = rng.next_byte();
        if out.ends_with(&[0, 0]) && b <= 3 {
            out.push(3);
        }
        out.push(b);
    }
    out.push(0x80);
    out
}

fn access_unit(nals: &[&[u8]]) -> Vec<u8> {
    let mut au = Vec::new();
    for nal in nals {
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
    }
    au
}

fn idr_au(rng: &mut Rng) -> Vec<u8> {
    let sei = nal(rng, 0x06, 40);
    let idr = nal(rng, 0x65, 150_000);
    access_unit(&[&[0x09, 0x10], SPS_HIGH, PPS, &sei, &idr])
}

fn p_au(rng: &mut Rng) -> Vec<u8> {
    access_unit(&[&[0x09, 0x30], &nal(rng, 0x41, 30_000)])
}

fn split_and_analyse(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let units = [("idr_150k", idr_au(&mut rng)), ("p_30k", p_au(&mut rng))];
    for (name, au) in &units {
        let mut group = c.benchmark_group(format!("h264/{name}"));
        group.throughput(Throughput::Bytes(au.len() as u64));
        group.bench_function("split_annexb", |b| {
            b.iter(|| split_annexb(black_box(au)).count());
        });
        group.bench_function("analyse", |b| b.iter(|| analyse(black_box(au))));
        let mut info = AccessUnitInfo::default();
        group.bench_function("analyse_into", |b| {
            b.iter(|| analyse_into(black_box(au), &mut info));
        });
        group.finish();
    }
}

fn parameter_sets(c: &mut Criterion) {
    let mut group = c.benchmark_group("h264/sps");
    group.bench_function("parse_high_1080p", |b| {
        b.iter(|| SpsInfo::parse(black_box(SPS_HIGH)));
    });
    group.bench_function("parse_baseline_480p", |b| {
        b.iter(|| SpsInfo::parse(black_box(SPS_BASELINE)));
    });
    group.finish();

    let au = idr_au(&mut Rng(7));
    let info = analyse(&au).unwrap_or_default();
    let mut cache = ParamCache::new();
    let _ = cache.update(&au, &info);
    let Some(params) = cache.current() else {
        return;
    };
    let mut group = c.benchmark_group("h264/params");
    group.bench_function("cache_update_unchanged", |b| {
        b.iter(|| cache.update(black_box(&au), &info));
    });
    group.finish();
    let mut group = c.benchmark_group("h264/idr_150k");
    group.throughput(Throughput::Bytes(au.len() as u64));
    let mut out = Vec::with_capacity(au.len() + 64);
    group.bench_function("write_with_params", |b| {
        b.iter(|| {
            out.clear();
            if let Ok(pieces) = with_params(&params, black_box(&au), &info) {
                pieces.for_each(|piece| out.extend_from_slice(piece));
            }
            out.len()
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = split_and_analyse, parameter_sets
}
criterion_main!(benches);
