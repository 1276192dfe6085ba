//! Snapshots of an NV12 ring written in the same process with the board's protocol: the JPEG
//! decodes (with `jpeg-decoder`, a decoder this project did not write) to the right size and
//! colours; a hundred concurrent requests for one frame cost one encode; a new frame is a new
//! picture; every "no picture" has its typed reason.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use stackctl_core::layout::{FrameHeader, PixelFormat, Timespec};
use stackctl_core::shm::{CopyMode, ShmWriter};
use stackctl_core::snapshot::{SnapshotError, Snapshotter};

struct Camera {
    writer: ShmWriter,
    n: u64,
}

impl Camera {
    fn new(tag: &str) -> Self {
        let name = format!("/stackctl-snapshot-{tag}-{}", std::process::id());
        Self {
            writer: ShmWriter::create(&name).expect("segment"),
            n: 0,
        }
    }

    fn name(&self) -> &str {
        self.writer.name()
    }

    /// A grey `w`x`h` NV12 picture with a square of BT.601 orange (Y 146, U 53, V 193) at
    /// `(x, y)`, `side` wide.
    fn publish(&mut self, (w, h): (usize, usize), (x, y, side): (usize, usize, usize)) {
        let mut p = vec![126u8; w * h];
        p.extend(std::iter::repeat_n(128u8, w * h / 2));
        for row in y..y + side {
            p[row * w + x..row * w + x + side].fill(146);
        }
        for cy in y / 2..(y + side) / 2 {
            for cx in x / 2..(x + side) / 2 {
                let at = w * h + cy * w + cx * 2;
                p[at] = 53;
                p[at + 1] = 193;
            }
        }
        self.publish_raw(PixelFormat::Nv12, (w as i32, h as i32), &p);
    }

    fn publish_raw(&mut self, format: PixelFormat, (w, h): (i32, i32), data: &[u8]) {
        let header = FrameHeader {
            frame_number: self.n,
            timestamp: Timespec::from_nanos(self.n + 1),
            width: w,
            height: h,
            format: format.to_raw(),
            ..FrameHeader::default()
        };
        self.writer
            .publish(&header, data, CopyMode::WholeSlot)
            .expect("publish");
        self.n += 1;
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.writer.unlink();
    }
}

/// Decodes a JPEG: (width, height, RGB pixels).
fn decode(jpeg: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    let pixels = d.decode().expect("a valid JPEG");
    let info = d.info().expect("info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    (usize::from(info.width), usize::from(info.height), pixels)
}

#[test]
fn a_snapshot_is_a_jpeg_of_the_picture() {
    let mut cam = Camera::new("picture");
    cam.publish((640, 480), (200, 100, 96));
    cam.publish((640, 480), (200, 100, 96));
    let snapshots = Snapshotter::new(cam.name());
    let jpeg = snapshots.jpeg(None).expect("a picture");
    let (w, h, rgb) = decode(&jpeg);
    assert_eq!((w, h), (640, 480));
    let at = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    // BT.601 orange (146, 53, 193) is RGB (250, 121, 35) or so; grey 126 is about 128.
    let (r, g, b) = at(248, 148);
    assert!(
        r > 220 && (90..150).contains(&g) && b < 80,
        "the square is ({r}, {g}, {b})"
    );
    let (r, g, b) = at(50, 400);
    assert!(
        r.abs_diff(128) < 12 && g.abs_diff(128) < 12 && b.abs_diff(128) < 12,
        "grey is ({r}, {g}, {b})"
    );

    let small = snapshots.jpeg(Some(160)).expect("scaled");
    let (w, h, rgb) = decode(&small);
    assert_eq!((w, h), (160, 120));
    let i = (37 * 160 + 62) * 3; // the square's centre, scaled by 1/4
    assert!(rgb[i] > 220 && rgb[i + 2] < 80, "scaled square");
    assert_eq!(
        decode(&snapshots.jpeg(Some(4000)).expect("clamped")).0,
        640,
        "never upscaled"
    );
    assert!(matches!(snapshots.jpeg(Some(0)), Err(SnapshotError::Width)));
}

#[test]
fn a_hundred_concurrent_requests_for_one_frame_cost_one_encode() {
    let mut cam = Camera::new("burst");
    cam.publish((1280, 720), (0, 0, 64));
    cam.publish((1280, 720), (0, 0, 64));
    let snapshots = Arc::new(Snapshotter::new(cam.name()));
    let answers: Vec<Arc<[u8]>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| snapshots.jpeg(None).expect("a picture")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let stats = snapshots.stats();
    assert_eq!(stats.encodes.load(Ordering::Relaxed), 1);
    assert_eq!(stats.served.load(Ordering::Relaxed), 100);
    assert_eq!(stats.cached.load(Ordering::Relaxed), 99);
    assert!(
        answers.iter().all(|a| Arc::ptr_eq(a, &answers[0])),
        "one shared picture"
    );
    // Another width is another encode; a new frame is a new picture.
    snapshots.jpeg(Some(320)).expect("scaled");
    assert_eq!(stats.encodes.load(Ordering::Relaxed), 2);
    cam.publish((1280, 720), (64, 64, 64));
    let newer = snapshots.jpeg(None).expect("the next frame");
    assert!(!Arc::ptr_eq(&newer, &answers[0]));
    assert_eq!(stats.encodes.load(Ordering::Relaxed), 3);
}

#[test]
fn no_picture_has_a_reason() {
    let name = format!("/stackctl-snapshot-none-{}", std::process::id());
    let snapshots = Snapshotter::new(&name);
    let e = snapshots.jpeg(None).expect_err("no segment");
    assert!(matches!(e, SnapshotError::NoSegment { .. }), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(!e.is_client_error());

    let mut writer = ShmWriter::create(&name).expect("segment");
    let mut cam_frames = 0;
    let mut publish = |format: PixelFormat, data: &[u8], size: (i32, i32)| {
        let header = FrameHeader {
            frame_number: cam_frames,
            width: size.0,
            height: size.1,
            format: format.to_raw(),
            ..FrameHeader::default()
        };
        writer
            .publish(&header, data, CopyMode::WholeSlot)
            .expect("publish");
        cam_frames += 1;
    };
    // The segment is checked again after 250 ms at most: wait for it to be seen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let e = loop {
        let e = snapshots.jpeg(None).expect_err("nothing written");
        if !matches!(e, SnapshotError::NoSegment { .. }) || std::time::Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(matches!(e, SnapshotError::NoFrame { .. }), "{e}");
    publish(PixelFormat::H264, &[0, 0, 0, 1, 0x65], (64, 64));
    publish(PixelFormat::H264, &[0, 0, 0, 1, 0x65], (64, 64));
    let e = snapshots.jpeg(None).expect_err("H.264");
    assert!(
        matches!(e, SnapshotError::NotNv12 { format: "h264", .. }),
        "{e}"
    );
    publish(PixelFormat::Nv12, &[0; 100], (64, 64));
    publish(PixelFormat::Nv12, &[0; 100], (64, 64));
    let e = snapshots.jpeg(None).expect_err("too short");
    assert!(matches!(e, SnapshotError::BadFrame { .. }), "{e}");
    assert!(e.to_string().contains("64x64 with 100 bytes"), "{e}");
    assert!(snapshots.stats().errors.load(Ordering::Relaxed) >= 4);
    assert_eq!(snapshots.stats().served.load(Ordering::Relaxed), 0);
    let _ = writer.unlink();
}
