//! Frames reach plugins without a second copy, and may be kept without one.
//!
//! Two instances of the probe plugin (two `[plugins.*]` sections, one library) record
//! `frame->data` for every frame: the host hands both the one buffer the source copied out of
//! shared memory, so the same frame has the same address in both. Each instance retains its
//! last 30 frames, so were there a copy per plugin, both copies would be alive at once and
//! their addresses would differ. A plugin that retains each frame until the next one finds its
//! bytes unchanged when it releases it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::Path;

use stackctl_tests::plugins::{
    camera_config, complete_lines, plugin, probe_frames, probe_plugin, toml_path, wait_lines,
};
use stackctl_tests::unique_shm;
use stackctl_tests::up::Stack;

/// Frames each instance keeps retained.
const RETAIN: usize = 30;

/// The `R sequence ok|CORRUPT` of a probe's release lines, in order.
fn releases(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("R "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sequence = f
                .get(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("probe line R {l}"));
            (sequence, f.get(2).copied().unwrap_or_default().to_owned())
        })
        .collect()
}

/// A probe's output after stop: every retained frame released intact, `S` logged once.
fn assert_released_intact(name: &str, path: &Path, retained_at_stop: usize) -> Vec<String> {
    let lines = complete_lines(path);
    let released = releases(&lines);
    let corrupt: Vec<&(u64, String)> = released.iter().filter(|(_, v)| v != "ok").collect();
    assert!(
        corrupt.is_empty(),
        "{name}: retained frames changed before their release: {corrupt:?}"
    );
    let frames = probe_frames(&lines);
    assert_eq!(
        released.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        frames.iter().map(|f| f.sequence).collect::<Vec<_>>(),
        "{name}: every frame retained is released once, oldest first"
    );
    let stops: Vec<&String> = lines.iter().filter(|l| l.starts_with("S ")).collect();
    assert_eq!(
        stops,
        [&format!("S {retained_at_stop}")],
        "{name}: stop once, holding {retained_at_stop} frames"
    );
    lines
}

#[test]
fn every_plugin_gets_the_one_buffer_the_source_copied() {
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let shm = unique_shm("plugins-frames");
    let dir = tempfile::tempdir().expect("tempdir");
    let (left_out, right_out) = (dir.path().join("left.txt"), dir.path().join("right.txt"));
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.left]
path = {probe}
output = {left_out}
retain = {RETAIN}

[plugins.right]
path = {probe}
output = {right_out}
retain = {RETAIN}
"#,
        camera = camera_config(&shm),
        probe = toml_path(&probe_lib),
        left_out = toml_path(&left_out),
        right_out = toml_path(&right_out),
    ));
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=left"]);
    up.first_line(&["plugin started", "plugin=right"]);
    let is_frame = |l: &str| l.starts_with("F ");
    wait_lines(&left_out, 90, is_frame);
    wait_lines(&right_out, 90, is_frame);
    let st = stack.status();
    for name in ["left", "right"] {
        assert_eq!(plugin(&st, name)["state"], "running", "{st:#}");
    }
    up.terminate();

    let left = probe_frames(&assert_released_intact("left", &left_out, RETAIN));
    let right = probe_frames(&assert_released_intact("right", &right_out, RETAIN));
    let by_sequence = |frames: &[stackctl_tests::plugins::ProbeFrame]| -> BTreeMap<u64, String> {
        frames
            .iter()
            .map(|f| (f.sequence, f.data.clone()))
            .collect()
    };
    let (l, r) = (by_sequence(&left), by_sequence(&right));
    let common: Vec<u64> = l.keys().filter(|s| r.contains_key(s)).copied().collect();
    assert!(common.len() >= 60, "only {} frames in common", common.len());
    let differ: Vec<String> = common
        .iter()
        .filter(|s| l[s] != r[s])
        .map(|s| format!("sequence {s}: {} vs {}", l[s], r[s]))
        .collect();
    assert!(
        differ.is_empty(),
        "the two plugins got the same frame at different addresses ({} of {}): {}",
        differ.len(),
        common.len(),
        differ.join("; ")
    );
    // Frames alive at the same time (each instance holds 30) have buffers of their own.
    for window in left.windows(RETAIN) {
        let addresses: HashSet<&str> = window.iter().map(|f| f.data.as_str()).collect();
        assert_eq!(
            addresses.len(),
            RETAIN,
            "frames retained together share a buffer: {window:?}"
        );
    }
    let distinct: HashSet<&String> = l.values().collect();
    eprintln!(
        "left {} frames, right {} frames, {} in common, all at the same address in both; {} distinct addresses",
        left.len(),
        right.len(),
        common.len(),
        distinct.len()
    );
}

#[test]
fn a_plugin_may_keep_each_frame_until_the_next_one() {
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let shm = unique_shm("plugins-retain");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("keeper.txt");
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.keeper]
path = {probe}
output = {out}
retain = 1
"#,
        camera = camera_config(&shm),
        probe = toml_path(&probe_lib),
        out = toml_path(&out),
    ));
    let mut up = stack.up(&[], &[]);
    up.first_line(&["plugin started", "plugin=keeper"]);
    // A release per frame but the last: wait for 60 of them.
    wait_lines(&out, 60, |l| l.starts_with("R "));
    let st = stack.status();
    assert_eq!(plugin(&st, "keeper")["state"], "running", "{st:#}");
    up.terminate();

    let lines = assert_released_intact("keeper", &out, 1);
    // Each frame is released inside the next one's on_frame (after that one's F line), the
    // last one at stop: `F 0, F 1, R 0, F 2, R 1, ..., S 1, R n`.
    let mut held: VecDeque<u64> = VecDeque::new();
    let mut stopped = false;
    for line in &lines {
        match line.split(' ').next().unwrap_or_default() {
            "F" => {
                assert!(!stopped, "a frame after stop: {line}");
                held.push_back(probe_frames(std::slice::from_ref(line))[0].sequence);
                assert!(held.len() <= 2, "frames not released in turn: {held:?}");
            }
            "R" => {
                let (sequence, _) = releases(std::slice::from_ref(line))[0].clone();
                assert_eq!(
                    held.pop_front(),
                    Some(sequence),
                    "released out of turn: {line}"
                );
                assert_eq!(held.len(), usize::from(!stopped), "after {line}: {held:?}");
            }
            "S" => {
                assert_eq!(held.len(), 1, "held at stop: {held:?}");
                stopped = true;
            }
            // The section's values as the probe read them at create (configuration as data).
            "C" => assert!(held.is_empty() && !stopped, "a C line after frames: {line}"),
            other => panic!("unexpected line {other:?}: {line}"),
        }
    }
    assert!(stopped && held.is_empty(), "{held:?}");
}
