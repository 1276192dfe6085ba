//! The source against a writer in the same process: what it delivers, skips, counts and follows.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{CopyMode, ShmSource, ShmWriter, SourceConfig, StartPosition};
use stackctl_media::clock::monotonic_ns;

struct Fixture {
    name: String,
    writer: ShmWriter,
    source: ShmSource,
    stop: AtomicBool,
    next_number: u64,
}

impl Fixture {
    fn new(tag: &str) -> Self {
        Self::checking_every(tag, Duration::ZERO)
    }

    /// A fixture whose source checks the name's identity every `identity_check` while the
    /// writer writes.
    fn checking_every(tag: &str, identity_check: Duration) -> Self {
        let name = format!("/stackctl-source-{tag}-{}", std::process::id());
        let writer = ShmWriter::create(&name).expect("create segment");
        let mut cfg = SourceConfig::new(&name);
        cfg.start = StartPosition::Next;
        cfg.identity_check = identity_check;
        let mut source = ShmSource::new(cfg);
        let stop = AtomicBool::new(false);
        source
            .wait_for_segment(Some(Duration::from_secs(5)), &stop)
            .expect("attach");
        Self {
            name,
            writer,
            source,
            stop,
            next_number: 0,
        }
    }

    fn publish(&mut self, format: PixelFormat) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        let header = FrameHeader {
            frame_number: number,
            timestamp: Timespec::from_nanos(monotonic_ns()),
            width: 64,
            height: 64,
            format: format.to_raw(),
            ..FrameHeader::default()
        };
        let mut au = vec![
            0,
            0,
            0,
            1,
            if number.is_multiple_of(10) {
                0x65
            } else {
                0x41
            },
        ];
        au.extend((0..1000).map(|i| 0x20 | (i as u8 ^ number as u8) & 0x5f));
        self.writer
            .publish(&header, &au, CopyMode::WholeSlot)
            .expect("publish");
        number
    }

    fn next(&mut self) -> u64 {
        let frame = self
            .source
            .next_frame(&self.stop)
            .expect("read")
            .expect("a frame");
        frame.meta().frame_number
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.writer.unlink();
    }
}

#[test]
fn frames_of_other_formats_are_skipped_and_counted() {
    let mut f = Fixture::new("formats");
    let a = f.publish(PixelFormat::H264);
    f.publish(PixelFormat::Nv12);
    f.publish(PixelFormat::Jpeg);
    let b = f.publish(PixelFormat::H264);
    f.publish(PixelFormat::H264); // moves the writer past `b`
    assert_eq!(f.next(), a);
    assert_eq!(f.next(), b);
    assert_eq!(f.source.stats().other_format.load(Ordering::Relaxed), 2);
}

#[test]
fn falling_more_than_a_ring_behind_counts_the_lost_frames() {
    let mut f = Fixture::new("lost");
    let first = f.publish(PixelFormat::H264);
    assert_eq!(f.next(), first);
    // 40 frames while the reader looks away: only the last 29 complete ones are still there.
    for _ in 0..40 {
        f.publish(PixelFormat::H264);
    }
    let resumed = f.next();
    assert_eq!(
        resumed,
        40 - 29 + 1,
        "resumes at the oldest frame still in the ring"
    );
    assert_eq!(f.source.stats().lost.load(Ordering::Relaxed), 11);
    for want in resumed + 1..=40 {
        assert_eq!(f.next(), want, "then every frame in order");
    }
}

#[test]
fn an_index_that_goes_back_is_a_new_stream() {
    let mut f = Fixture::new("backwards");
    for _ in 0..5 {
        f.publish(PixelFormat::H264);
    }
    for want in 0..5 {
        assert_eq!(f.next(), want);
    }
    f.writer.reset_index();
    let restarted = f.publish(PixelFormat::H264);
    f.publish(PixelFormat::H264);
    let frame = f
        .source
        .next_frame(&f.stop)
        .expect("read")
        .expect("a frame");
    assert_eq!(frame.meta().frame_number, restarted);
    assert_eq!(
        frame.meta().sequence,
        0,
        "the new stream starts at write index 0"
    );
    assert_eq!(frame.meta().generation, 1);
    assert_eq!(f.source.stats().restarts.load(Ordering::Relaxed), 1);
}

#[test]
fn a_replaced_segment_is_read_to_its_end_before_the_new_writer() {
    let mut f = Fixture::new("replaced");
    let first = f.publish(PixelFormat::H264);
    assert_eq!(f.next(), first);
    // The writer publishes twice more, then a new writer takes the name at once: the two
    // frames the reader has not read yet are still delivered, then the new stream.
    let tail = [f.publish(PixelFormat::H264), f.publish(PixelFormat::H264)];
    f.writer.unlink().expect("the old writer leaves");
    let old = std::mem::replace(
        &mut f.writer,
        ShmWriter::create(&f.name).expect("the new writer's segment"),
    );
    let new = [
        f.publish(PixelFormat::H264),
        f.publish(PixelFormat::H264),
        f.publish(PixelFormat::H264),
    ];
    assert_eq!([f.next(), f.next()], tail, "the old segment's last frames");
    assert_eq!([f.next(), f.next()], new[..2], "then the new writer's");
    assert_eq!(f.source.stats().restarts.load(Ordering::Relaxed), 1);
    drop(old);
}

/// A camera restarted just before it stops: the new writer publishes a few frames and unlinks
/// its segment long before the routine identity check (an hour here) comes round. The old
/// writer going quiet is what makes the source look at the name again, within a few frame
/// intervals, so the new writer's frames are read before its segment goes.
#[test]
fn a_writer_that_comes_and_goes_between_routine_checks_is_read() {
    let mut f = Fixture::checking_every("brief", Duration::from_secs(3600));
    // A 30 fps camera, so the source knows when a frame is overdue.
    for _ in 0..6 {
        let n = f.publish(PixelFormat::H264);
        assert_eq!(f.next(), n);
        std::thread::sleep(Duration::from_millis(33));
    }
    f.writer.unlink().expect("the old writer leaves");
    let old = std::mem::replace(
        &mut f.writer,
        ShmWriter::create(&f.name).expect("the new writer's segment"),
    );
    f.next_number = 0;
    let brief = [f.publish(PixelFormat::H264), f.publish(PixelFormat::H264)];
    // The new writer lives two seconds, 60 frame intervals: plenty for a source that looks
    // once the old writer is two frames overdue, nothing for one that waits the hour. Then it
    // unlinks its segment and the reader is stopped: what was not read by then is lost.
    let name = f.name.clone();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let reader = std::thread::current();
    let leaver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        let _ = nix::sys::mman::shm_unlink(name.as_str());
        std::thread::sleep(Duration::from_secs(1));
        flag.store(true, Ordering::Relaxed);
        reader.unpark();
    });
    let mut got = Vec::new();
    while got.len() < brief.len() {
        match f.source.next_frame(&stop).expect("read") {
            Some(frame) => got.push(frame.meta().frame_number),
            None => break,
        }
    }
    assert_eq!(got, brief, "the brief writer's frames");
    assert_eq!(f.source.stats().restarts.load(Ordering::Relaxed), 1);
    stop.store(true, Ordering::Relaxed);
    leaver.join().expect("the leaver thread");
    drop(old);
}

/// Issue 14, item 7: a reader that was waiting for the segment, and attaches after the writer
/// has published its first frame (write_index 1), must deliver that frame (the IDR), not start
/// at the second one.
#[test]
fn a_reader_that_waited_reads_a_new_segment_from_its_first_frame() {
    let name = format!("/stackctl-source-waited-{}", std::process::id());
    let mut cfg = SourceConfig::new(&name);
    cfg.start = StartPosition::Next;
    let mut source = ShmSource::new(cfg);
    let stop = AtomicBool::new(false);
    let waited = source.wait_for_segment(Some(Duration::from_millis(20)), &stop);
    assert!(waited.is_err(), "no segment yet: {waited:?}");

    let writer = ShmWriter::create(&name).expect("create segment");
    let mut f = Fixture {
        name,
        writer,
        source,
        stop,
        next_number: 0,
    };
    let first = f.publish(PixelFormat::H264);
    assert_eq!(f.writer.write_index(), 1);
    f.source
        .wait_for_segment(Some(Duration::from_secs(5)), &f.stop)
        .expect("attach");
    f.publish(PixelFormat::H264);
    assert_eq!(f.next(), first, "the first frame of the new segment");
    assert_eq!(f.next(), first + 1);
    assert_eq!(f.source.stats().lost.load(Ordering::Relaxed), 0);
    assert_eq!(f.source.stats().restarts.load(Ordering::Relaxed), 0);
}

/// A reader that finds the segment already there starts with the next frame, as configured:
/// the frames written before it attached are history, not news.
#[test]
fn a_reader_that_finds_the_segment_starts_with_the_next_frame() {
    let mut f = Fixture::new("present");
    // Fixture::new attached before anything was written; a second reader attaches now.
    f.publish(PixelFormat::H264);
    let mut late = ShmSource::new(SourceConfig::new(&f.name));
    late.wait_for_segment(Some(Duration::from_secs(5)), &f.stop)
        .expect("attach");
    let next = f.publish(PixelFormat::H264);
    f.publish(PixelFormat::H264);
    let frame = late.next_frame(&f.stop).expect("read").expect("a frame");
    assert_eq!(frame.meta().frame_number, next);
}
