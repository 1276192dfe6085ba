//! What recording costs: 10 minutes of a 1920x1080, 30 fps, 8 Mbit/s camera (18,000 access
//! units of realistic sizes, IDR every 30 frames, 30 fps capture timestamps) pushed through
//! the recorder's queue and writer thread into real files, as fast as it goes.
//!
//! Prints, per run and as the median of the runs: CPU time (user + system, the whole process:
//! the producer's retain-and-queue and the writer thread) per frame, the projected share of one
//! core at 30 fps, and the throughput in frames per second (its ratio to 30 fps is the margin
//! before the queue would drop anything).
//!
//! `--mode events` runs events mode instead (defaults: pre-roll 5 s, post-roll 10 s): a
//! detection result every 3rd frame (10 a second, as the detector gives them), a "cat" for 10 s
//! then nothing for 20 s, so the pre-roll ring runs all the time and a clip is written a third
//! of the time; it also prints the ring's largest hold (frames, bytes, media time).
//!
//! `cargo bench -p sink-recorder --bench record [-- --runs N --format mp4|h264 --mode continuous|events --dir DIR]`
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use sink_recorder::config::{Config, Format, Mode};
use sink_recorder::events::{Hit, Observation, RING_SLACK, Ring};
use sink_recorder::status::Shared;
use sink_recorder::unit::AccessUnit;
use sink_recorder::worker::{Command, Worker};

/// A frame whose bytes are shared, so producing one costs what retaining one does.
#[derive(Clone)]
struct BenchUnit {
    data: Arc<Vec<u8>>,
    timestamp_ns: u64,
    idr: bool,
}

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

impl AccessUnit for BenchUnit {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn timestamp_ns(&self) -> u64 {
        self.timestamp_ns
    }
    fn is_idr(&self) -> bool {
        self.idr
    }
    fn sps(&self) -> Option<&[u8]> {
        Some(SPS)
    }
    fn pps(&self) -> Option<&[u8]> {
        Some(PPS)
    }
    fn has_inband_params(&self) -> bool {
        self.idr
    }
    fn generation(&self) -> u32 {
        0
    }
}

/// An access unit of `size` bytes: optional SPS/PPS, one slice NAL of pseudo-random bytes
/// (no accidental start codes: no zero bytes).
fn access_unit(size: usize, idr: bool, seed: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 32);
    if idr {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(SPS);
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(PPS);
    }
    v.extend_from_slice(&[0, 0, 0, 1, if idr { 0x65 } else { 0x41 }]);
    let mut x = seed | 1;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x as u8) | 1);
    }
    v
}

/// CPU time of the whole process so far (user + system), from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // CLK_TCK is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

struct Run {
    cpu_per_frame: Duration,
    fps: f64,
    bytes: u64,
    files: u64,
}

fn run(format: Format, mode: Mode, dir: &std::path::Path, frames: u64) -> Run {
    // 8 Mbit/s at 30 fps: 33,333 bytes a frame on average; an IDR (1 in 30) is 4x a P-frame.
    let p_size = (8_000_000 / 8 / 30) * 30 / 33;
    let idr_size = p_size * 4;
    let pool: Vec<Arc<Vec<u8>>> = (0..30)
        .map(|i| {
            Arc::new(access_unit(
                if i == 0 { idr_size } else { p_size },
                i == 0,
                i + 7,
            ))
        })
        .collect();
    let config = Config {
        dir: dir.to_owned(),
        format,
        mode,
        ..Config::default()
    };
    let shared = Arc::new(Shared::new(format, mode));
    let armed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::bounded(config.buffer_frames);
    let (ctl, ctl_rx) = crossbeam_channel::unbounded();
    let (det_tx, det_rx) = crossbeam_channel::bounded(100);
    let worker = Worker::<BenchUnit>::new(config, shared.clone(), armed).with_detections(det_rx);
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let thread = std::thread::spawn(move || worker.run(rx, ctl_rx));
    for n in 0..frames {
        let i = (n % 30) as usize;
        let timestamp_ns = 1_000_000_000 + n * 1_000_000_000 / 30;
        tx.send(BenchUnit {
            data: pool[i].clone(),
            timestamp_ns,
            idr: i == 0,
        })
        .expect("the worker runs");
        if mode == Mode::Events && n % 3 == 0 {
            // The cat shows 10 s out of every 30.
            let visible = (n / 30) % 30 < 10;
            let hits = if visible {
                vec![Hit {
                    ts_ns: timestamp_ns,
                    class: "cat".to_owned(),
                    confidence: 0.8,
                    bbox: [100, 100, 200, 200],
                }]
            } else {
                Vec::new()
            };
            det_tx
                .send(Observation {
                    ts_ns: timestamp_ns,
                    hits,
                })
                .expect("the worker runs");
        }
    }
    ctl.send(Command::Shutdown).expect("the worker runs");
    thread.join().expect("the worker ends");
    let wall = t0.elapsed();
    let cpu = process_cpu() - cpu0;
    let status = shared.snapshot();
    if mode != Mode::Events {
        assert_eq!(
            status.frame_count, frames,
            "every frame recorded: {status:?}"
        );
    }
    assert!(status.error.is_none(), "{status:?}");
    let c = &shared.counters;
    let files = c.segments.load(std::sync::atomic::Ordering::Relaxed);
    if mode == Mode::Events {
        // 10 s shown of every 30: a clip of 5 + 10 + 10 s (pre-roll, shown, post-roll) each.
        let expected = frames / (30 * 30);
        assert!(
            files.abs_diff(expected) <= 1,
            "{files} clips, {expected} expected"
        );
    }
    Run {
        cpu_per_frame: cpu / u32::try_from(frames).unwrap(),
        fps: frames as f64 / wall.as_secs_f64(),
        bytes: c.bytes_written.load(std::sync::atomic::Ordering::Relaxed),
        files,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = arg("--runs").and_then(|r| r.parse().ok()).unwrap_or(5);
    let frames: u64 = arg("--frames")
        .and_then(|r| r.parse().ok())
        .unwrap_or(18_000);
    let formats = match arg("--format").as_deref() {
        Some("h264") => vec![Format::H264],
        Some("mp4") => vec![Format::Mp4],
        _ => vec![Format::Mp4, Format::H264],
    };
    let mode = match arg("--mode").as_deref() {
        Some("events") => Mode::Events,
        _ => Mode::Continuous,
    };
    let base = arg("--dir").map(std::path::PathBuf::from);
    if mode == Mode::Events {
        ring_hold(frames);
        thumbnail_cost();
    }
    for format in formats {
        let mut results = Vec::new();
        for i in 0..runs {
            let dir = match &base {
                Some(b) => tempfile::tempdir_in(b).expect("tempdir"),
                None => tempfile::tempdir().expect("tempdir"),
            };
            let r = run(format, mode, dir.path(), frames);
            println!(
                "{:?} {mode:?} run {}: {frames} frames, {} files, {:.0} MB, CPU {:.1} us/frame = {:.3} % of one core at 30 fps, {:.0} fps ({:.0}x real time)",
                format,
                i + 1,
                r.files,
                r.bytes as f64 / 1e6,
                r.cpu_per_frame.as_secs_f64() * 1e6,
                r.cpu_per_frame.as_secs_f64() * 30.0 * 100.0,
                r.fps,
                r.fps / 30.0
            );
            results.push(r);
        }
        results.sort_by_key(|r| r.cpu_per_frame);
        let cpu = results[results.len() / 2].cpu_per_frame;
        let mut fps: Vec<f64> = results.iter().map(|r| r.fps).collect();
        fps.sort_by(f64::total_cmp);
        println!(
            "{format:?} {mode:?} median of {runs}: CPU {:.1} us/frame = {:.3} % of one core at 30 fps; {:.0} fps ({:.0}x real time), every frame recorded",
            cpu.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 30.0 * 100.0,
            fps[fps.len() / 2],
            fps[fps.len() / 2] / 30.0
        );
    }
}

/// The pre-roll ring alone at the defaults (5 s pre-roll, 64 MiB cap) on the 8 Mbit/s stream:
/// its largest hold, and the cost of a push.
fn ring_hold(frames: u64) {
    let p_size = (8_000_000 / 8 / 30) * 30 / 33;
    let pool: Vec<Arc<Vec<u8>>> = (0..30)
        .map(|i| {
            Arc::new(access_unit(
                if i == 0 { p_size * 4 } else { p_size },
                i == 0,
                i + 7,
            ))
        })
        .collect();
    let config = Config::default();
    let keep = u64::try_from((config.pre_roll + RING_SLACK).as_nanos()).unwrap();
    let mut ring = Ring::new(keep, config.pre_roll_max_bytes);
    let (mut max_frames, mut max_bytes, mut max_span) = (0, 0, 0);
    let t0 = Instant::now();
    for n in 0..frames {
        let i = (n % 30) as usize;
        ring.push(BenchUnit {
            data: pool[i].clone(),
            timestamp_ns: 1_000_000_000 + n * 1_000_000_000 / 30,
            idr: i == 0,
        });
        max_frames = max_frames.max(ring.len());
        max_bytes = max_bytes.max(ring.bytes());
        max_span = max_span.max(ring.span_ns());
    }
    let per_push = t0.elapsed() / u32::try_from(frames).unwrap();
    println!(
        "pre-roll ring (pre_roll {:?} + slack {:?}): at most {max_frames} frames, {:.1} MB, {:.2} s of media held; {:.2} us a push",
        config.pre_roll,
        RING_SLACK,
        max_bytes as f64 / 1e6,
        max_span as f64 / 1e9,
        per_push.as_secs_f64() * 1e6
    );
}

/// A thumbnail's cost at 1080p: one GOP (an IDR and 29 P-frames of OpenH264, 8 Mbit/s) decoded
/// to its last frame and encoded as a 640-wide JPEG, as a clip's close does once.
fn thumbnail_cost() {
    use openh264::encoder::{
        BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode,
    };
    use openh264::formats::YUVSlices;
    use sink_recorder::events::thumb;
    use sink_recorder::unit::OwnedUnit;
    let (w, h) = (1920usize, 1080usize);
    let config = EncoderConfig::new()
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(8_000_000))
        .max_frame_rate(FrameRate::from_hz(30.0))
        .intra_frame_period(IntraFramePeriod::from_num_frames(30))
        .skip_frames(false);
    let mut enc =
        Encoder::with_api_config(openh264::OpenH264API::from_source(), config).expect("encoder");
    let u = vec![128u8; w * h / 4];
    let mut y = vec![0u8; w * h];
    let gop: Vec<OwnedUnit> = (0..30u64)
        .map(|n| {
            for (i, p) in y.iter_mut().enumerate() {
                *p = (((i % w) + (i / w) + n as usize * 4) % 200) as u8 + 16;
            }
            let src = YUVSlices::new((&y, &u, &u), (w, h), (w, w / 2, w / 2));
            let data = enc
                .encode_at(&src, openh264::Timestamp::from_millis(n * 33))
                .expect("encode")
                .to_vec();
            OwnedUnit {
                data,
                timestamp_ns: n * 33_333_333,
                idr: n == 0,
                sps: None,
                pps: None,
                inband: n == 0,
                generation: 0,
            }
        })
        .collect();
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let cpu0 = process_cpu();
            let jpeg = thumb::jpeg(&gop, [800, 400, 300, 200]).expect("thumbnail");
            assert!(jpeg.starts_with(&[0xff, 0xd8]));
            process_cpu() - cpu0
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "thumbnail at 1080p (a whole GOP decoded, 640-wide JPEG): median {:.0} ms of CPU per clip, {:.3} % of one core for a clip every 30 s",
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() / 30.0 * 100.0
    );
}
