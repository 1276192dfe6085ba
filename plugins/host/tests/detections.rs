//! Detections across the plugin boundary (ABI 1.1) with the real parts: camsim draws the orange
//! square into its frames and NV12 picture, detector-sim finds it and writes results into shared
//! memory, the core's sources read both onto one bus, and the host feeds three real plugins
//! loaded by the real loader:
//! - the C probe (`tests/plugins/probe_sink.c`, built against the current header) and the Rust
//!   probe (`tests/plugins/probe-rs`, through the SDK), which record every `on_frame` and
//!   `on_detections` call in order;
//! - the same C probe built against the ABI 1.0 header (`c/stackctl_sink_1_0.h`): a 1.0 table
//!   without `on_detections`, which must still load and get its frames.
//!
//! Checked: results arrive (with the cat while it shows, empty while it hides), each after the
//! frame it was computed on and never before a frame with an earlier or equal timestamp; both
//! 1.1 probes see the same results; the 1.0 probe gets an unbroken chain of frames and no
//! results, and reports ABI 1.0.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use stackctl_core::bus::Bus;
use stackctl_plugin_host::{Plugin, loader};
use stackctl_tests::Proc;
use stackctl_tests::plugins::{probe_plugin, rust_plugin, toml_path};
use stackctl_tests::vision::VisionRig;

/// One line of a probe's output, as both probes write them.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    /// `on_frame`: frame number, timestamp.
    Frame(u64, u64),
    /// `on_detections`: frame number, timestamp, classes.
    Detections(u64, u64, Vec<String>),
}

/// Parses the C probe's (`F n seq ptr len idr received ts`, `D n ts received count ...`) or the
/// Rust probe's (`F n ts idr`, `D n ts count ...`) lines.
fn lines(path: &Path, c: bool) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Only complete lines: the probes may be writing the last one.
    text.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let num = |i: usize| f[i].parse::<u64>().unwrap_or_else(|e| panic!("{l:?}: {e}"));
            match (f[0], c) {
                ("F", true) => Some(Line::Frame(num(1), num(7))),
                ("F", false) => Some(Line::Frame(num(1), num(2))),
                ("D", _) => {
                    let (count_at, first) = if c { (4, 5) } else { (3, 4) };
                    let count = num(count_at) as usize;
                    let classes: Vec<String> =
                        (0..count).map(|i| f[first + 6 * i].into()).collect();
                    assert_eq!(f.len(), first + 6 * count, "{l:?}");
                    Some(Line::Detections(num(1), num(2), classes))
                }
                _ => None,
            }
        })
        .collect()
}

/// The order the header promises: every result comes after the frame it belongs to, and no
/// frame with an earlier or equal timestamp comes after it. Results of frames from before the
/// plugin's first frame (it starts at an IDR) are exempt from the first rule. Returns the
/// results seen.
fn check_order(what: &str, lines: &[Line]) -> Vec<(u64, Vec<String>)> {
    let first_ts = lines
        .iter()
        .find_map(|l| match l {
            Line::Frame(_, ts) => Some(*ts),
            Line::Detections(..) => None,
        })
        .unwrap_or_else(|| panic!("{what}: no frame at all"));
    let mut results = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Line::Detections(number, ts, classes) = line else {
            continue;
        };
        if *ts >= first_ts {
            let own = lines[..at]
                .iter()
                .any(|l| matches!(l, Line::Frame(n, t) if n == number && t == ts));
            assert!(
                own,
                "{what}: result of frame {number} before the frame itself"
            );
        }
        let later = lines[at..]
            .iter()
            .find(|l| matches!(l, Line::Frame(_, t) if t <= ts));
        assert!(
            later.is_none(),
            "{what}: result of frame {number} ({ts} ns) before {later:?}"
        );
        results.push((*number, classes.clone()));
    }
    results
}

#[test]
fn detections_reach_c_and_rust_sinks_in_order_and_a_1_0_sink_still_gets_frames() {
    let Some(c_probe) = probe_plugin("probe_detections", &[]) else {
        return;
    };
    let Some(c_probe_1_0) = probe_plugin("probe_abi_1_0", &["PROBE_ABI_1_0"]) else {
        return;
    };
    let rust_probe = rust_plugin("sink-probe-rs");

    let rig = VisionRig::new("abi-det");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| dir.path().join(name);

    let bus = Bus::new();
    let mut plugins = Vec::new();
    for (name, lib, file) in [
        ("c", &c_probe, "c.txt"),
        ("rust", &rust_probe, "rust.txt"),
        ("old", &c_probe_1_0, "old.txt"),
    ] {
        let library = loader::load(name, lib).expect("load");
        assert_eq!(library.wants_detections(), name != "old", "{name}");
        let plugin = Plugin::start(
            name,
            library,
            &format!("output = {}\n", toml_path(&out(file))),
        )
        .expect("start");
        plugin.attach(&bus, 256).expect("attach");
        plugins.push(plugin);
    }

    let (frames, detections) = rig.sources(&bus);
    let camsim = Proc::spawn(rig.camsim("320x240", "1s:1s"));
    let detector = Proc::spawn(rig.detector("50ms"));

    // Until the C probe has seen the cat come and go a few times.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = lines(&out("c.txt"), true);
        let (cats, empty) = seen.iter().fold((0, 0), |(c, e), l| match l {
            Line::Detections(_, _, classes) if classes.is_empty() => (c, e + 1),
            Line::Detections(..) => (c + 1, e),
            Line::Frame(..) => (c, e),
        });
        if cats >= 20 && empty >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "in 60 s the C probe saw {cats} results with objects and {empty} without"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(detector);
    drop(camsim);
    let statuses: Vec<_> = plugins.iter().map(|p| p.status()).collect();
    for plugin in &plugins {
        plugin.stop();
    }
    detections.stop();
    frames.stop().expect("frame source");

    for s in &statuses {
        assert_eq!(s.state, "running", "{s:?}");
        assert_eq!(s.dropped, 0, "{s:?}");
    }
    assert_eq!(statuses[0].abi.as_deref(), Some("1.2"));
    assert_eq!(statuses[2].abi.as_deref(), Some("1.0"));
    assert!(statuses[0].detections >= 40, "{:?}", statuses[0]);
    assert!(statuses[1].detections > 0, "{:?}", statuses[1]);
    assert_eq!(statuses[2].detections, 0, "a 1.0 sink gets no results");

    let c = check_order("C probe", &lines(&out("c.txt"), true));
    let rust = check_order("Rust probe", &lines(&out("rust.txt"), false));
    for (number, classes) in &c {
        assert!(
            classes.is_empty() || classes == &["cat"],
            "frame {number}: {classes:?}"
        );
    }
    // Both saw the same results, up to where the shorter record ends.
    let common = c.len().min(rust.len());
    assert!(common >= 40, "{} and {} results", c.len(), rust.len());
    assert_eq!(
        c[..common],
        rust[..common],
        "the C and Rust probes disagree"
    );

    // The 1.0 sink: frames from an IDR on, without a gap, and nothing else.
    let old = lines(&out("old.txt"), true);
    assert!(old.len() > 60, "the 1.0 probe got {} frames", old.len());
    for pair in old.windows(2) {
        match pair {
            [Line::Frame(a, _), Line::Frame(b, _)] => {
                assert_eq!(*b, a + 1, "a gap in the 1.0 probe's frames")
            }
            other => panic!("the 1.0 probe recorded {other:?}"),
        }
    }
}
