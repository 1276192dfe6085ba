//! A plugin that blocks in `on_frame` for seconds delays nobody else: each plugin has its own
//! delivery thread and queue. The blocker loses whole GOPs (counted in `dropped`, and what it
//! does get resumes at an IDR); the other plugin, an instance of the same probe library, gets
//! every frame, on time, while the blocker sleeps.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use stackctl_tests::plugins::{
    ProbeFrame, complete_lines, plugin, plugin_counter, poll, probe_frames, probe_plugin,
    two_probes,
};
use stackctl_tests::unique_shm;

/// How long the blocker sleeps on every 10th frame.
const BLOCK_MS: u64 = 3000;

/// The blocker's blocks so far: (start, end) in CLOCK_MONOTONIC ns, from its `B` and `U`
/// lines (a block still running has no end yet and is left out).
fn blocks(lines: &[String]) -> Vec<(u64, u64)> {
    let time = |l: &str| -> u64 {
        l.rsplit(' ')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no time in {l:?}"))
    };
    let starts = lines
        .iter()
        .filter(|l| l.starts_with("B "))
        .map(|l| time(l));
    let ends = lines
        .iter()
        .filter(|l| l.starts_with("U "))
        .map(|l| time(l));
    starts.zip(ends).collect()
}

fn unblocked(path: &Path) -> usize {
    complete_lines(path)
        .iter()
        .filter(|l| l.starts_with("U "))
        .count()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[test]
fn a_plugin_stuck_in_on_frame_delays_no_other_plugin() {
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let shm = unique_shm("plugins-slow");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = format!("block_every = 10\nblock_ms = {BLOCK_MS}\nqueue = 15");
    let (stack, blocker_out, other_out) =
        two_probes(&shm, &probe_lib, dir.path(), "blocker", &keys);
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);

    // After its first block (3 s of 30 fps video into a queue of 15), the blocker has lost
    // frames. Then a whole block later, it has lost more.
    let long = Duration::from_millis(BLOCK_MS * 4);
    poll(
        "the blocker's first block ending",
        long,
        || match unblocked(&blocker_out) {
            0 => Err("no U line".to_owned()),
            n => Ok(n),
        },
    );
    let dropped_before = plugin_counter(&stack, "blocker", "dropped");
    let done = unblocked(&blocker_out);
    // Block done + 1 may have begun before the counter was read; block done + 2 cannot have.
    poll("two more blocks of the blocker", long * 2, || {
        let n = unblocked(&blocker_out);
        if n >= done + 2 {
            Ok(n)
        } else {
            Err(format!("{n} U lines, waiting for {}", done + 2))
        }
    });
    let st = stack.status();
    up.terminate();

    let blocker = plugin(&st, "blocker");
    let other = plugin(&st, "other");
    eprintln!(
        "blocker: {blocker}\nother:   {other}\nsource:  {}",
        st["source"]
    );
    let dropped_after = blocker["dropped"].as_u64().expect("dropped");
    assert!(
        dropped_before > 0,
        "a 3 s block with a 15-frame queue dropped nothing: {st:#}"
    );
    assert!(
        dropped_after > dropped_before,
        "the blocker's dropped count did not grow over a whole block ({dropped_before} -> {dropped_after})"
    );
    assert_eq!(other["dropped"], 0, "the other plugin lost frames: {st:#}");
    assert_eq!(blocker["state"], "running", "{st:#}");
    assert_eq!(other["state"], "running", "{st:#}");

    // What the blocker got: after every gap, an IDR (whole GOPs lost, never half of one).
    let blocker_lines = complete_lines(&blocker_out);
    let got = probe_frames(&blocker_lines);
    let mut gaps = 0;
    for pair in got.windows(2) {
        if pair[1].sequence != pair[0].sequence + 1 {
            gaps += 1;
            assert!(
                pair[1].idr,
                "the blocker resumed mid-GOP after a gap: {:?} then {:?}",
                pair[0], pair[1]
            );
        }
    }
    assert!(
        got[0].idr,
        "the blocker did not start at an IDR: {:?}",
        got[0]
    );
    assert!(gaps > 0, "no gap in the blocker's frames");

    // What the other plugin got: every frame from its first IDR, none missing.
    let others: Vec<ProbeFrame> = probe_frames(&complete_lines(&other_out));
    assert!(others[0].idr, "{:?}", others[0]);
    for pair in others.windows(2) {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence + 1,
            "the other plugin missed frames: {:?} then {:?}",
            pair[0],
            pair[1]
        );
    }

    // And it got them while the blocker was stuck. Measurements, printed: the other plugin's
    // frame intervals and delivery latency (on_frame entry minus capture time) inside each
    // block.
    // (Only blocks that ended while the other plugin ran: the last one may end at shutdown.)
    let last = others.last().expect("frames").received_ns;
    let windows: Vec<(u64, u64)> = blocks(&blocker_lines)
        .into_iter()
        .filter(|&(_, end)| end < last)
        .collect();
    assert!(windows.len() >= 2, "{windows:?}");
    for (i, &(start, end)) in windows.iter().enumerate() {
        let inside: Vec<&ProbeFrame> = others
            .iter()
            .filter(|f| f.received_ns > start && f.received_ns < end)
            .collect();
        assert!(
            !inside.is_empty(),
            "the other plugin got no frame during the blocker's block {i} ({:.0} ms)",
            ms(end - start)
        );
        let intervals: Vec<u64> = inside
            .windows(2)
            .map(|p| p[1].received_ns - p[0].received_ns)
            .collect();
        let mut latencies: Vec<u64> = inside
            .iter()
            .map(|f| f.received_ns.saturating_sub(f.timestamp_ns))
            .collect();
        latencies.sort_unstable();
        eprintln!(
            "block {i}: {:.0} ms; other plugin: {} frames, interval max {:.1} ms, latency median {:.2} ms / max {:.2} ms",
            ms(end - start),
            inside.len(),
            ms(intervals.iter().copied().max().unwrap_or(0)),
            ms(latencies[latencies.len() / 2]),
            ms(latencies[latencies.len() - 1]),
        );
    }
    eprintln!(
        "blocker: {} frames received, {gaps} gaps, dropped {dropped_before} after block 1, {dropped_after} at the end; other: {} frames, none missing",
        got.len(),
        others.len()
    );
}
