//! The detection source against a writer in the same process (the board's protocol, from
//! `stackctl_core::detections::writer`): what it delivers, skips, counts and follows, and that
//! a writer stalled in the middle of an update never makes it deliver a mixture.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use stackctl_core::detections::{
    Detection, DetectionConfig, DetectionSource, DetectionWriter, Detections, Picture, WriteMode,
};
use stackctl_core::layout::{LatestDetectionResult, Timespec};

/// A segment name of this test process, unlinked when dropped.
struct Name(String);

impl Name {
    fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Self(format!("/stackctl-det-{tag}-{}-{n}", std::process::id()))
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let _ = nix::sys::mman::shm_unlink(self.0.as_str());
    }
}

/// Result `k`: every field derives from `k`, so a mixture of two results is visible.
fn items(k: u64) -> Vec<Detection> {
    (0..4)
        .map(|i| Detection {
            class: format!("c{}", k % 1000),
            confidence: (k % 100) as f32 / 100.0,
            x: (k % 50) as i32,
            y: i,
            w: 10 + (k % 7) as i32,
            h: 10,
        })
        .collect()
}

fn ts(k: u64) -> u64 {
    k * 1_000 + 1
}

fn write(w: &mut DetectionWriter, k: u64, mode: WriteMode) -> u32 {
    w.write(k, ts(k), &items(k), mode).expect("write")
}

/// Whether `d` is exactly result `d.frame_number`.
fn consistent(d: &Detections) -> bool {
    let k = d.frame_number;
    d.timestamp_ns == ts(k) && d.items == items(k)
}

fn source(name: &Name) -> DetectionSource {
    let mut cfg = DetectionConfig::new(&name.0);
    cfg.identity_check = Duration::ZERO;
    DetectionSource::new(cfg)
}

const WAIT: Duration = Duration::from_secs(10);

fn next(source: &mut DetectionSource) -> Arc<Detections> {
    source
        .poll(&AtomicBool::new(false), WAIT)
        .expect("a result in time")
}

#[test]
fn results_after_attaching_are_delivered_once_each_and_history_is_not() {
    let name = Name::new("basic");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    write(&mut w, 1, WriteMode::Whole); // before the reader: history
    let mut s = source(&name);
    let stop = AtomicBool::new(false);
    assert!(
        s.poll(&stop, Duration::from_millis(50)).is_none(),
        "history is not news"
    );
    assert!(s.is_attached());
    let v = write(&mut w, 2, WriteMode::Whole);
    let d = next(&mut s);
    assert_eq!((d.frame_number, d.version), (2, v));
    assert!(consistent(&d), "{d:?}");
    assert!(s.poll(&stop, Duration::from_millis(50)).is_none(), "once");
    // Two results before the reader looks: the first is lost, and counted.
    write(&mut w, 3, WriteMode::Whole);
    write(&mut w, 4, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 4);
    let stats = s.stats();
    assert_eq!(stats.results.load(Ordering::Relaxed), 2);
    assert_eq!(stats.detections.load(Ordering::Relaxed), 8);
    assert_eq!(stats.missed.load(Ordering::Relaxed), 1);
    assert_eq!(stats.malformed.load(Ordering::Relaxed), 0);
}

#[test]
fn no_segment_no_results_and_one_that_appears_is_read_from_its_first_result() {
    let name = Name::new("absent");
    let mut s = source(&name);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    assert!(s.poll(&stop, Duration::from_millis(100)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert!(!s.is_attached());
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    write(&mut w, 7, WriteMode::Whole);
    let d = next(&mut s);
    assert_eq!(
        d.frame_number, 7,
        "written before the reader attached, but new to it"
    );
    assert_eq!(d.generation, 0);
}

#[test]
fn a_restarted_detector_is_followed() {
    let name = Name::new("restart");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    let mut s = source(&name);
    write(&mut w, 1, WriteMode::Whole);
    s.poll(&AtomicBool::new(false), Duration::from_millis(20));
    write(&mut w, 2, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 2);
    // Unlinked and created again: a new inode, version from 0.
    w.unlink().expect("unlink");
    let mut w = DetectionWriter::create(&name.0).expect("new segment");
    write(&mut w, 50, WriteMode::Whole);
    let d = next(&mut s);
    assert_eq!((d.frame_number, d.version, d.generation), (50, 1, 1));
    // A writer that reopens the same segment and counts from 1 again.
    write(&mut w, 51, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 51);
    let mut raw = LatestDetectionResult {
        frame_number: 60,
        timestamp: Timespec::from_nanos(ts(60)),
        version: 1,
        ..Default::default()
    };
    raw.num_detections = 0;
    w.write_raw(&raw);
    let d = next(&mut s);
    assert_eq!((d.frame_number, d.generation), (60, 2));
    assert_eq!(s.stats().restarts.load(Ordering::Relaxed), 2);
}

#[test]
fn malformed_results_are_counted_and_dropped() {
    let name = Name::new("malformed");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    let mut cfg = DetectionConfig::new(&name.0).picture(Picture::Fixed {
        width: 64,
        height: 48,
    });
    cfg.identity_check = Duration::ZERO;
    let mut s = DetectionSource::new(cfg);
    let stop = AtomicBool::new(false);
    s.poll(&stop, Duration::from_millis(20));
    let good = Detection {
        class: "cat".into(),
        confidence: 0.5,
        x: 0,
        y: 0,
        w: 64,
        h: 48,
    };
    // Each bad result is followed by a good one, which must come out.
    let mut version = w.version();
    let mut bad: Vec<LatestDetectionResult> = Vec::new();
    let mut base = LatestDetectionResult {
        frame_number: 1,
        num_detections: 1,
        ..Default::default()
    };
    base.detections[0].class_name[..3].copy_from_slice(b"cat");
    base.detections[0].confidence = 0.5;
    base.detections[0].bbox.w = 10;
    base.detections[0].bbox.h = 10;
    let mut r = base;
    r.num_detections = 11;
    bad.push(r);
    let mut r = base;
    r.detections[0].class_name[..3].copy_from_slice(&[0xc3, 0x28, 0x41]);
    bad.push(r);
    let mut r = base;
    r.detections[0].confidence = 1.5;
    bad.push(r);
    let mut r = base;
    r.detections[0].bbox.x = 60; // 60 + 10 > 64
    bad.push(r);
    for (i, mut r) in bad.into_iter().enumerate() {
        version += 1;
        r.version = version;
        w.write_raw(&r);
        assert!(
            s.poll(&stop, Duration::from_millis(100)).is_none(),
            "bad result {i} delivered"
        );
        let k = 100 + i as u64;
        version = w
            .write(k, ts(k), std::slice::from_ref(&good), WriteMode::Whole)
            .expect("write");
        let d = next(&mut s);
        assert_eq!(d.frame_number, k, "the bad result {i} was not delivered");
    }
    assert_eq!(s.stats().malformed.load(Ordering::Relaxed), 4);
    assert_eq!(s.stats().results.load(Ordering::Relaxed), 4);
}

#[test]
fn a_segment_of_the_wrong_size_is_refused_until_replaced() {
    let name = Name::new("size");
    {
        use nix::fcntl::OFlag;
        use nix::sys::stat::Mode;
        let fd = nix::sys::mman::shm_open(
            name.0.as_str(),
            OFlag::O_CREAT | OFlag::O_RDWR,
            Mode::from_bits_truncate(0o600),
        )
        .expect("shm_open");
        nix::unistd::ftruncate(&fd, 584).expect("ftruncate"); // the later layout with a semaphore
    }
    let mut s = source(&name);
    let stop = AtomicBool::new(false);
    assert!(s.poll(&stop, Duration::from_millis(50)).is_none());
    assert!(!s.is_attached());
    assert_eq!(s.stats().refused.load(Ordering::Relaxed), 1, "counted once");
    nix::sys::mman::shm_unlink(name.0.as_str()).expect("unlink");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    write(&mut w, 9, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 9);
}

/// Runs `write_with` for result `k` on a thread, stopping after the header and two of the
/// four detections until the returned sender says go; the receiver says when it stopped.
fn stalled_writer(
    mut w: DetectionWriter,
    k: u64,
) -> (
    thread::JoinHandle<DetectionWriter>,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (stalled_tx, stalled_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        w.write_with(k, ts(k), &items(k), 2, || {
            stalled_tx.send(()).expect("report the stall");
            go_rx.recv_timeout(WAIT).expect("go");
        })
        .expect("write");
        w
    });
    (handle, stalled_rx, go_tx)
}

/// A writer stopped in the middle of an update (header and half the detections written, the
/// version not yet moved) while the reader polls: nothing is delivered until the update is
/// complete, and then the whole result. Also for a reader that first attaches mid-update.
#[test]
fn a_writer_stalled_mid_update_is_never_read() {
    let name = Name::new("stalled");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    let mut s = source(&name);
    let stop = AtomicBool::new(false);
    s.poll(&stop, Duration::from_millis(10));
    write(&mut w, 1, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 1);

    let (writer, stalled, go) = stalled_writer(w, 2);
    stalled.recv_timeout(WAIT).expect("the writer stalls");
    assert!(
        s.poll(&stop, Duration::from_millis(200)).is_none(),
        "the half-written update was read"
    );
    // A reader that attaches now, having waited for the segment, sees nothing new either.
    let mut fresh = source(&name);
    assert!(fresh.poll(&stop, Duration::from_millis(100)).is_none());
    go.send(()).expect("go");
    let w = writer.join().expect("writer");
    let d = next(&mut s);
    assert_eq!(d.frame_number, 2);
    assert!(consistent(&d), "{d:?}");
    assert_eq!(s.stats().late_tears.load(Ordering::Relaxed), 0);
    drop(w);
}

/// The guard's documented blind spot, made to happen: the reader is late by a whole update and
/// copies result 2 while the writer, having published it, is stopped in the middle of result 3.
/// The mixture is delivered (nothing in the protocol can tell), and counted as a late tear once
/// result 3 is read.
#[test]
fn a_result_read_during_the_next_update_is_counted_as_a_late_tear() {
    let name = Name::new("late");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    let mut s = source(&name);
    let stop = AtomicBool::new(false);
    s.poll(&stop, Duration::from_millis(10));
    write(&mut w, 1, WriteMode::Whole);
    assert_eq!(next(&mut s).frame_number, 1);
    write(&mut w, 2, WriteMode::Whole);
    let (writer, stalled, go) = stalled_writer(w, 3);
    stalled.recv_timeout(WAIT).expect("the writer stalls");
    let mixed = next(&mut s);
    assert_eq!(mixed.version, 2);
    assert!(
        !consistent(&mixed),
        "expected the documented mixture: {mixed:?}"
    );
    assert_eq!(s.stats().late_tears.load(Ordering::Relaxed), 0);
    go.send(()).expect("go");
    let _w = writer.join().expect("writer");
    let d = next(&mut s);
    assert_eq!((d.frame_number, d.version), (3, 3));
    assert!(consistent(&d));
    assert_eq!(s.stats().late_tears.load(Ordering::Relaxed), 1);
}

/// A writer rewriting the record as fast as it can: copies that change under the reader are
/// thrown away and counted, and a result whose successor was read is whole or audited.
#[test]
fn a_busy_writer_makes_the_reader_retry() {
    let name = Name::new("busy");
    let mut w = DetectionWriter::create(&name.0).expect("segment");
    let mut s = source(&name);
    s.poll(&AtomicBool::new(false), Duration::from_millis(10));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        thread::spawn(move || {
            let start = Instant::now();
            let mut k = 1;
            while start.elapsed() < Duration::from_millis(300) {
                write(&mut w, k, WriteMode::Whole);
                k += 1;
            }
            done.store(true, Ordering::Relaxed);
            w
        })
    };
    let stop = AtomicBool::new(false);
    let mut got = Vec::new();
    while !done.load(Ordering::Relaxed) {
        if let Some(d) = s.poll(&stop, Duration::from_millis(20)) {
            got.push(d);
        }
    }
    let _w = writer.join().expect("writer");
    let stats = s.stats();
    assert!(
        stats.torn_retries.load(Ordering::Relaxed) + stats.unstable.load(Ordering::Relaxed) > 0,
        "the writer was never caught at work in 300 ms of rewriting"
    );
    let auditable = got
        .windows(2)
        .filter(|p| !consistent(&p[0]) && p[1].version == p[0].version.wrapping_add(1))
        .count() as u64;
    assert!(auditable <= stats.late_tears.load(Ordering::Relaxed));
}
