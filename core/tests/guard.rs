//! The torn-read guard against a writer that stalls in the middle of its copy: the case a time
//! window cannot see. `Settled` must still deliver the frame intact, and whatever `Verify`
//! delivers early is audited once the writer has moved on.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use stackctl_core::Frame;
use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{
    CopyMode, ShmSource, ShmWriter, SourceConfig, StartPosition, TornReadGuard,
};
use stackctl_media::clock::monotonic_ns;

/// An IDR access unit whose payload bytes all depend on `seed` and contain no start code.
fn access_unit(seed: u8, len: usize) -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x65];
    au.extend((0..len).map(|i| 0x10 | ((i as u8).wrapping_mul(7) ^ seed) & 0x7f));
    au
}

fn header() -> FrameHeader {
    FrameHeader {
        timestamp: Timespec::from_nanos(monotonic_ns()),
        width: 64,
        height: 64,
        format: PixelFormat::H264.to_raw(),
        ..FrameHeader::default()
    }
}

struct Outcome {
    delivered: Vec<u8>,
    written: Vec<u8>,
    late_tears: u64,
}

/// Publishes frame 0 normally, then frame 1 in 256-byte pieces 40 ms apart while the source
/// reads with `guard`, then frame 2 so the writer has moved on past frame 1.
fn read_a_stalling_writer(guard: TornReadGuard, tag: &str) -> Outcome {
    let name = format!("/stackctl-guard-{tag}-{}", std::process::id());
    let mut writer = ShmWriter::create(&name).expect("create segment");
    writer
        .publish(&header(), &access_unit(1, 4000), CopyMode::WholeSlot)
        .expect("frame 0");

    let mut cfg = SourceConfig::new(&name);
    cfg.guard = guard;
    cfg.start = StartPosition::Next;
    let mut source = ShmSource::new(cfg);
    let stop = AtomicBool::new(false);
    source
        .wait_for_segment(Some(Duration::from_secs(5)), &stop)
        .expect("attach");

    let written = access_unit(2, 4000);
    let frame1 = written.clone();
    let slow = thread::spawn(move || {
        let mode = CopyMode::Slow {
            piece: 256,
            pause: Duration::from_millis(40),
        };
        writer.publish(&header(), &frame1, mode).expect("frame 1");
        writer
    });
    let delivered: Arc<Frame> = source.next_frame(&stop).expect("read").expect("a frame");
    let writer = slow.join().expect("writer thread");

    // Frame 2 moves the writer on; reading it lets the source audit frame 1. (An unguarded
    // reader may have skipped the half-written slot and returned frame 2 already.)
    let mut writer = writer;
    writer
        .publish(&header(), &access_unit(3, 4000), CopyMode::WholeSlot)
        .expect("frame 2");
    if delivered.meta().sequence == 1 {
        let next = source.next_frame(&stop).expect("read").expect("frame 2");
        assert_eq!(next.meta().sequence, 2);
    }
    writer.unlink().expect("unlink");
    Outcome {
        delivered: delivered.data().to_vec(),
        written,
        late_tears: source.stats().late_tears.load(Ordering::Relaxed),
    }
}

#[test]
fn settled_waits_out_a_writer_stalled_mid_copy() {
    let out = read_a_stalling_writer(TornReadGuard::Settled, "settled");
    assert!(
        out.delivered == out.written,
        "the settled guard delivered a torn frame"
    );
    assert_eq!(out.late_tears, 0);
}

#[test]
fn a_frame_delivered_torn_is_always_counted_by_the_audit() {
    let out = read_a_stalling_writer(TornReadGuard::default(), "verify");
    // With 40 ms stalls the 500 µs window usually loses; whichever way it went, the audit must
    // agree with the bytes.
    let torn = out.delivered != out.written;
    assert_eq!(out.late_tears, u64::from(torn), "torn: {torn}");
}

#[test]
fn without_a_guard_the_stalled_copy_is_delivered_torn() {
    let out = read_a_stalling_writer(TornReadGuard::Off, "off");
    assert!(
        out.delivered != out.written,
        "expected the unguarded reader to see a torn frame"
    );
}

#[test]
fn a_header_whose_frame_number_lags_is_not_believed() {
    // glibc's x86-64 memcpy writes `frame_number` last in every other slot, after the rest of
    // the 3 MB: the timestamp is new long before the frame number is.
    let name = format!("/stackctl-guard-headlast-{}", std::process::id());
    let mut writer = ShmWriter::create(&name).expect("create segment");
    let numbered = |n: u64| FrameHeader {
        frame_number: n,
        ..header()
    };
    writer
        .publish(&numbered(7), &access_unit(1, 4000), CopyMode::WholeSlot)
        .expect("frame 0");
    let mut cfg = SourceConfig::new(&name);
    cfg.start = StartPosition::Oldest;
    let mut source = ShmSource::new(cfg);
    let stop = AtomicBool::new(false);
    source
        .wait_for_segment(Some(Duration::from_secs(5)), &stop)
        .expect("attach");
    let first = source.next_frame(&stop).expect("read").expect("frame 0");
    assert_eq!(first.meta().frame_number, 7);

    let slow = thread::spawn(move || {
        let mode = CopyMode::HeadLast {
            pause: Duration::from_millis(60),
        };
        writer
            .publish(&numbered(8), &access_unit(2, 4000), mode)
            .expect("frame 1");
        writer
    });
    let second = source.next_frame(&stop).expect("read").expect("frame 1");
    let writer = slow.join().expect("writer thread");
    writer.unlink().expect("unlink");
    assert_eq!(
        second.meta().frame_number,
        8,
        "a frame was delivered with a half-written header"
    );
}
