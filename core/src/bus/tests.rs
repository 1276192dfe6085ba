use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::detections::Detections;
use crate::frame::{Frame, FrameMeta};

/// A minimal but real access unit: an IDR slice or a non-IDR slice.
fn frame(sequence: u32, idr: bool) -> Arc<Frame> {
    let data: Vec<u8> = if idr {
        vec![0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]
    } else {
        vec![0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x10]
    };
    let info = stackctl_media::h264::analyse(&data).expect("test AU is valid");
    let meta = FrameMeta {
        frame_number: u64::from(sequence),
        sequence,
        timestamp_ns: u64::from(sequence) * 33_333_333,
        received_ns: 0,
        camera_id: 0,
        width: 640,
        height: 480,
        generation: 0,
    };
    Arc::new(Frame::new(meta, data.into_boxed_slice(), info, None))
}

fn drain(sub: &Subscription) -> Vec<(u32, bool)> {
    std::iter::from_fn(|| sub.try_recv().ok())
        .map(|f| (f.meta().sequence, f.is_idr()))
        .collect()
}

#[test]
fn every_subscriber_gets_every_frame_without_a_copy() {
    let bus = Bus::new();
    let subs: Vec<_> = (0..3)
        .map(|i| bus.subscribe(SubscribeOptions::new(format!("s{i}"))))
        .collect();
    let frames: Vec<_> = (0..10).map(|i| frame(i, i % 5 == 0)).collect();
    for f in &frames {
        let report = bus.publish(f.clone());
        assert_eq!(
            report,
            PublishReport {
                delivered: 3,
                dropped: 0
            }
        );
    }
    for sub in &subs {
        for want in &frames {
            let got = sub.try_recv().expect("frame queued");
            assert!(
                Arc::ptr_eq(&got, want),
                "the subscriber got a copy, not the frame"
            );
        }
        assert_eq!(sub.try_recv().err(), Some(RecvError::Empty));
        assert_eq!(sub.stats().snapshot().delivered, 10);
    }
}

#[test]
fn a_slow_subscriber_drops_only_its_own_frames_and_resumes_at_an_idr() {
    let bus = Bus::new();
    let fast = bus.subscribe(SubscribeOptions::new("fast").capacity(64));
    let slow = bus.subscribe(SubscribeOptions::new("slow").capacity(2));
    for (i, idr) in [true, false, false, false, false].into_iter().enumerate() {
        bus.publish(frame(i as u32, idr));
    }
    assert_eq!(drain(&slow), vec![(0, true), (1, false)]);
    bus.publish(frame(5, false)); // still lagging: skipped although the queue has room
    bus.publish(frame(6, true));
    bus.publish(frame(7, false));
    assert_eq!(drain(&slow), vec![(6, true), (7, false)]);
    assert_eq!(
        slow.stats().snapshot(),
        SubscriberCounts {
            delivered: 4,
            dropped: 4,
            gaps: 1
        }
    );
    assert_eq!(drain(&fast).len(), 8);
    assert_eq!(fast.stats().snapshot().dropped, 0);
}

#[test]
fn a_subscriber_can_start_at_the_next_idr() {
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("late").start(StartAt::NextIdr));
    for (i, idr) in [false, false, true, false].into_iter().enumerate() {
        bus.publish(frame(i as u32, idr));
    }
    assert_eq!(drain(&sub), vec![(2, true), (3, false)]);
    // Frames before its first IDR were never its frames: no drops.
    assert_eq!(sub.stats().snapshot().dropped, 0);
}

#[test]
fn subscribers_leave_by_dropping_and_close_ends_the_stream() {
    let bus = Bus::new();
    let a = bus.subscribe(SubscribeOptions::new("a"));
    let b = bus.subscribe(SubscribeOptions::new("b"));
    drop(a);
    assert_eq!(bus.subscriber_count(), 1);
    assert_eq!(bus.publish(frame(0, true)).delivered, 1);
    bus.close();
    assert_eq!(bus.subscriber_count(), 0);
    assert_eq!(b.try_recv().map(|f| f.meta().sequence), Ok(0));
    assert_eq!(b.recv().err(), Some(RecvError::Closed));
}

#[test]
fn what_any_subscriber_receives_is_always_a_decodable_chain() {
    // A deterministic pseudo-random schedule of publishes (GOP of 5) and reads of random sizes.
    let bus = Bus::new();
    let sub = bus.subscribe(
        SubscribeOptions::new("random")
            .capacity(3)
            .start(StartAt::NextIdr),
    );
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut received = Vec::new();
    for seq in 0..5_000u32 {
        bus.publish(frame(seq, seq % 5 == 0));
        for _ in 0..next() % 3 {
            if let Ok(f) = sub.try_recv() {
                received.push((f.meta().sequence, f.is_idr()));
            }
        }
    }
    received.extend(drain(&sub));
    assert!(received[0].1, "the first frame must be an IDR");
    for pair in received.windows(2) {
        let ((prev, _), (seq, idr)) = (pair[0], pair[1]);
        assert!(
            idr || seq == prev + 1,
            "frame {seq} follows {prev} without an IDR"
        );
    }
    let counts = sub.stats().snapshot();
    assert!(
        counts.gaps > 0,
        "the schedule should have made the subscriber lag"
    );
    assert_eq!(counts.delivered as usize, received.len());
    assert_eq!(counts.delivered + counts.dropped, 5_000);
}

fn result(frame_number: u64) -> Arc<Detections> {
    Arc::new(Detections {
        frame_number,
        timestamp_ns: frame_number * 33_333_333,
        version: frame_number as u32 + 1,
        received_ns: 0,
        generation: 0,
        items: Vec::new(),
    })
}

/// Item queues as (kind, frame number) pairs: 'F' a frame, 'D' a result.
fn drain_items(sub: &Subscription<BusItem>) -> Vec<(char, u64)> {
    std::iter::from_fn(|| sub.try_recv().ok())
        .map(|item| match item {
            BusItem::Frame(f) => ('F', f.meta().frame_number),
            BusItem::Detections(d) => ('D', d.frame_number),
        })
        .collect()
}

#[test]
fn frame_subscribers_never_see_results_and_result_subscribers_never_see_frames() {
    let bus = Bus::new();
    let frames = bus.subscribe(SubscribeOptions::new("frames"));
    let results = bus.subscribe_detections(SubscribeOptions::new("results"));
    bus.publish(frame(0, true));
    let r = result(0);
    let report = bus.publish_detections(r.clone());
    assert_eq!(report.delivered, 1);
    bus.publish(frame(1, false));
    assert_eq!(drain(&frames), vec![(0, true), (1, false)]);
    let got = results.try_recv().expect("a result");
    assert!(Arc::ptr_eq(&got, &r), "shared, not copied");
    assert_eq!(results.try_recv().err(), Some(RecvError::Empty));
    assert_eq!(bus.published(), 2);
    assert_eq!(bus.published_detections(), 1);
    assert_eq!(
        results.stats().detections_delivered.load(Ordering::Relaxed),
        1
    );
}

#[test]
fn item_queues_carry_results_right_after_their_frame() {
    let bus = Bus::new();
    let items = bus.subscribe_items(SubscribeOptions::new("items").capacity(64));
    bus.publish(frame(0, true));
    // The detector is quicker than the encoder: the result of frame 1 comes before frame 1.
    bus.publish_detections(result(1));
    bus.publish(frame(1, false));
    // ... and slower for frame 2: its result comes after frame 3.
    bus.publish(frame(2, false));
    bus.publish(frame(3, false));
    bus.publish_detections(result(2));
    bus.publish_detections(result(3));
    bus.publish(frame(4, false));
    assert_eq!(
        drain_items(&items),
        [
            ('F', 0),
            ('F', 1),
            ('D', 1),
            ('F', 2),
            ('F', 3),
            ('D', 2),
            ('D', 3),
            ('F', 4)
        ]
    );
}

#[test]
fn a_result_whose_frame_never_comes_is_released_after_the_hold() {
    let bus = Bus::new();
    let items = bus.subscribe_items(SubscribeOptions::new("items"));
    let mut late = (*result(0)).clone();
    // A detector whose clock is an hour ahead of the camera's.
    late.timestamp_ns = monotonic_ns() + 3_600_000_000_000;
    bus.publish_detections(Arc::new(late));
    bus.release_detections();
    assert!(drain_items(&items).is_empty(), "held for its frame");
    std::thread::sleep(DETECTION_HOLD);
    bus.release_detections();
    assert_eq!(drain_items(&items), [('D', 0)]);
}

#[test]
fn a_full_item_queue_drops_results_without_a_gap_in_frames() {
    let bus = Bus::new();
    let items = bus.subscribe_items(SubscribeOptions::new("items").capacity(2));
    bus.publish(frame(0, true));
    bus.publish(frame(1, false));
    bus.publish_detections(result(0));
    assert_eq!(items.stats().detections_dropped.load(Ordering::Relaxed), 1);
    assert_eq!(items.stats().snapshot().gaps, 0);
    assert_eq!(drain_items(&items), [('F', 0), ('F', 1)]);
    bus.publish(frame(2, false));
    assert_eq!(
        drain_items(&items),
        [('F', 2)],
        "frames go on without a gap"
    );
}
