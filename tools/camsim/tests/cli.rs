//! End-to-end tests of the `camsim` binary: real processes, real shared memory, real H.264.
//!
//! Every test uses segment and file names that include the test process's pid, waits for camsim
//! to exit (or for its start-up line) rather than sleeping, and removes what it created.
// A failed expectation is the test failing.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use nix::sys::mman::shm_unlink;
use nix::sys::signal::{Signal, kill};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;
use stackctl_core::layout::{FrameHeader, PixelFormat, slot_of};
use stackctl_core::shm::{Segment, ShmError};
use stackctl_media::h264::{NalHeader, NalType, split_annexb};

const CAMSIM: &str = env!("CARGO_BIN_EXE_camsim");

/// A segment name unique to this test process; unlinked when dropped.
struct Shm(String);

impl Shm {
    fn new(tag: &str) -> Self {
        Self(format!("/camsim_test_{}_{tag}", std::process::id()))
    }

    fn open(&self) -> Segment {
        Segment::open(&self.0).unwrap_or_else(|e| panic!("cannot open {}: {e}", self.0))
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        let _ = shm_unlink(self.0.as_str());
    }
}

/// A file path unique to this test process; removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        let name = format!("camsim_test_{}_{tag}.h264", std::process::id());
        Self(std::env::temp_dir().join(name))
    }

    fn arg(&self) -> &str {
        let path = &self.0;
        path.to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
    }

    fn read(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap_or_else(|e| panic!("cannot read {}: {e}", self.0.display()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs camsim to completion.
fn camsim(args: &[&str]) -> Output {
    Command::new(CAMSIM)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {CAMSIM}: {e}"))
}

/// Runs camsim to completion and insists it succeeded.
fn camsim_ok(args: &[&str]) -> Output {
    let out = camsim(args);
    assert!(
        out.status.success(),
        "camsim {args:?} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn nal_type(data: &[u8], start: usize) -> NalType {
    NalHeader::new(data[start]).nal_type()
}

/// The access units of an Annex-B stream (written independently of camsim's splitter): a new
/// unit starts at an AUD/SPS/PPS/SEI after a slice, or at a slice with first_mb_in_slice == 0
/// after a slice. Each unit begins at its first start code, so they tile the stream.
fn access_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = vec![0];
    let (mut prev_end, mut seen_slice) = (0, false);
    for nal in split_annexb(data) {
        let ty = nal_type(data, nal.start);
        let first_slice = ty.is_vcl() && data[nal.start + 1] & 0x80 != 0;
        let non_vcl_opener = matches!(
            ty,
            NalType::Aud | NalType::Sps | NalType::Pps | NalType::Sei
        );
        if seen_slice && (first_slice || non_vcl_opener) {
            starts.push(prev_end);
            seen_slice = false;
        }
        seen_slice |= ty.is_vcl();
        prev_end = nal.end;
    }
    starts.push(data.len());
    starts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

fn nal_types(au: &[u8]) -> Vec<NalType> {
    split_annexb(au)
        .map(|nal| nal_type(au, nal.start))
        .collect()
}

fn count(stream: &[u8], ty: NalType) -> usize {
    nal_types(stream).into_iter().filter(|t| *t == ty).count()
}

fn slot_payload(segment: &Segment, slot: usize, header: &FrameHeader) -> Vec<u8> {
    let mut data = Vec::new();
    segment.copy_data(slot, header.data_size as usize, &mut data);
    data
}

#[test]
fn publishes_ten_frames_with_headers_matching_the_dump() {
    let shm = Shm::new("ten");
    let dump = TempFile::new("ten");
    let args = [
        "--shm", &shm.0, "--frames", "10", "--size", "320x240", "--keep",
    ];
    let out = camsim_ok(&[&args[..], &["--dump", dump.arg()]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("publishing H.264 320x240@30 into /camsim_test_"),
        "{stderr}"
    );

    let stream = dump.read();
    let units = access_units(&stream);
    assert_eq!(units.len(), 10);
    assert_eq!(
        nal_types(units[0]),
        [NalType::Sps, NalType::Pps, NalType::Idr]
    );
    assert!(
        units[1..]
            .iter()
            .all(|au| nal_types(au) == [NalType::NonIdr])
    );

    let segment = shm.open();
    assert_eq!(segment.write_index(), 10);
    assert_eq!(segment.frame_interval_ms(), 0);
    let last = segment.read_header(slot_of(9));
    assert_eq!(last.frame_number, 9);
    assert_eq!(last.camera_id, 0);
    assert_eq!(PixelFormat::from_raw(last.format), PixelFormat::H264);
    assert_eq!((last.width, last.height), (320, 240));
    assert_eq!(last.data_size, units[9].len() as u64);
    assert_eq!(slot_payload(&segment, slot_of(9), &last), units[9]);

    // Timestamps are CLOCK_MONOTONIC publish times: increasing, paced at about 30 fps, and
    // from the recent past.
    let first = segment.read_header(0).timestamp.as_nanos();
    let span = last.timestamp.as_nanos() - first;
    assert!(
        (250_000_000..2_000_000_000).contains(&span),
        "9 intervals took {span} ns"
    );
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
    let now = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
    assert!(now - last.timestamp.as_nanos() < 60_000_000_000);
}

#[test]
fn dump_decodes_with_ffprobe() {
    if Command::new("ffprobe").arg("-version").output().is_err() {
        eprintln!("SKIPPED: ffprobe not installed");
        return;
    }
    let shm = Shm::new("ffprobe");
    let dump = TempFile::new("ffprobe");
    camsim_ok(&[
        "--shm",
        &shm.0,
        "--frames",
        "10",
        "--size",
        "320x240",
        "--dump",
        dump.arg(),
    ]);
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&dump.0)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "320,240,10");
}

#[test]
fn params_every_idr_or_only_the_first() {
    let every = TempFile::new("params_every");
    let first = TempFile::new("params_first");
    for (mode, dump) in [("every-idr", &every), ("first", &first)] {
        let shm = Shm::new(&format!("params_{mode}"));
        let args = [
            "--shm", &shm.0, "--frames", "10", "--gop", "3", "--size", "320x240",
        ];
        camsim_ok(&[&args[..], &["--params", mode, "--dump", dump.arg()]].concat());
        // The segment is unlinked on exit without --keep.
        assert!(matches!(Segment::open(&shm.0), Err(ShmError::NotFound(_))));
    }
    let (every, first) = (every.read(), first.read());
    // IDRs at frames 0, 3, 6 and 9 either way.
    assert_eq!(count(&every, NalType::Idr), 4);
    assert_eq!(count(&first, NalType::Idr), 4);
    assert_eq!(
        (count(&every, NalType::Sps), count(&every, NalType::Pps)),
        (4, 4)
    );
    assert_eq!(
        (count(&first, NalType::Sps), count(&first, NalType::Pps)),
        (1, 1)
    );
    let units = access_units(&first);
    assert_eq!(units.len(), 10);
    assert_eq!(nal_types(units[3]), [NalType::Idr]);
}

#[test]
fn input_replays_a_dump_in_order_and_loops() {
    let original = TempFile::new("input_original");
    let shm = Shm::new("input_source");
    let args = [
        "--shm", &shm.0, "--frames", "10", "--size", "320x240", "--gop", "4",
    ];
    camsim_ok(&[&args[..], &["--dump", original.arg()]].concat());
    let stream = original.read();
    let units = access_units(&stream);
    assert_eq!(units.len(), 10);

    let replay = TempFile::new("input_replay");
    let shm = Shm::new("input_replay");
    // No --size: the headers must take 320x240 from the file's SPS.
    let args = [
        "--shm",
        &shm.0,
        "--input",
        original.arg(),
        "--frames",
        "13",
        "--keep",
    ];
    camsim_ok(&[&args[..], &["--dump", replay.arg()]].concat());
    let expected = [&stream[..], &units[..3].concat()].concat();
    assert!(
        replay.read() == expected,
        "the replay differs from the input"
    );

    let segment = shm.open();
    assert_eq!(segment.write_index(), 13);
    for n in 0..13 {
        let header = segment.read_header(slot_of(n));
        assert_eq!(header.frame_number, u64::from(n));
        assert_eq!((header.width, header.height, header.format), (320, 240, 3));
        let au = units[n as usize % 10];
        assert!(
            slot_payload(&segment, slot_of(n), &header) == au,
            "slot of frame {n}"
        );
    }
}

#[test]
fn nv12_segment_and_slow_copy() {
    let shm = Shm::new("nv12_h264");
    let nv12 = Shm::new("nv12_raw");
    let args = [
        "--shm",
        &shm.0,
        "--nv12-shm",
        &nv12.0,
        "--slow-copy",
        "--keep",
    ];
    camsim_ok(&[&args[..], &["--frames", "3", "--size", "320x240"]].concat());
    let raw = nv12.open();
    assert_eq!(raw.write_index(), 3);
    let header = raw.read_header(2);
    assert_eq!(header.frame_number, 2);
    assert_eq!(PixelFormat::from_raw(header.format), PixelFormat::Nv12);
    assert_eq!((header.width, header.height), (320, 240));
    assert_eq!(header.data_size, 320 * 240 * 3 / 2);
    // Top-left is the caption's black band: luma 16 give or take the noise, neutral chroma.
    let picture = slot_payload(&raw, 2, &header);
    assert!((12..=19).contains(&picture[0]), "luma {}", picture[0]);
    assert_eq!((picture[320 * 240], picture[320 * 240 + 1]), (128, 128));
    assert_eq!(shm.open().write_index(), 3);
}

#[test]
fn restarts_recreate_the_segment_and_resend_parameter_sets() {
    let shm = Shm::new("restart");
    let dump = TempFile::new("restart");
    // 20 frames at 30 fps take at least 0.63 s, so a restart at 0.3 s always happens.
    let args = [
        "--shm", &shm.0, "--frames", "20", "--size", "320x240", "--params", "first",
    ];
    camsim_ok(
        &[
            &args[..],
            &["--restart-every", "0.3", "--keep", "--dump", dump.arg()],
        ]
        .concat(),
    );
    let stream = dump.read();
    let units = access_units(&stream);
    assert_eq!(units.len(), 20);
    let restarts: Vec<usize> = (1..20)
        .filter(|&i| nal_types(units[i])[0] == NalType::Sps)
        .collect();
    assert!(!restarts.is_empty(), "no restart in the dump");
    for &i in &restarts {
        assert_eq!(
            nal_types(units[i]),
            [NalType::Sps, NalType::Pps, NalType::Idr]
        );
    }
    // The segment holds only the last incarnation's frames.
    let since_restart = 20 - restarts[restarts.len() - 1];
    let segment = shm.open();
    assert_eq!(segment.write_index() as usize, since_restart);
    let last = segment.read_header(since_restart - 1);
    assert_eq!(last.frame_number as usize, since_restart - 1);
    assert_eq!(slot_payload(&segment, since_restart - 1, &last), units[19]);
}

#[test]
fn interval_switch_slows_to_two_frames_per_second() {
    let shm = Shm::new("interval");
    let args = [
        "--shm", &shm.0, "--frames", "12", "--size", "320x240", "--keep",
    ];
    camsim_ok(&[&args[..], &["--interval-switch", "0.2"]].concat());
    let segment = shm.open();
    let stamps: Vec<u64> = (0..12)
        .map(|n| segment.read_header(n).timestamp.as_nanos())
        .collect();
    let gaps: Vec<u64> = stamps.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().any(|&g| g >= 450_000_000),
        "no slow interval in {gaps:?}"
    );
    assert!(
        gaps.iter().any(|&g| g < 100_000_000),
        "no fast interval in {gaps:?}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_unlinks() {
    let shm = Shm::new("sigterm");
    let dump = TempFile::new("sigterm");
    let mut child = Command::new(CAMSIM)
        .args(["--shm", &shm.0, "--size", "320x240", "--dump", dump.arg()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("camsim starts");
    // The start-up line comes once the segment exists.
    let mut stderr = BufReader::new(child.stderr.take().expect("piped"));
    let mut line = String::new();
    stderr
        .read_line(&mut line)
        .expect("camsim writes a start-up line");
    assert!(line.contains("publishing"), "{line}");
    assert!(shm.open().write_index() < 1000);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal sent");
    let status = child.wait().expect("camsim exits");
    assert!(status.success(), "{status:?}");
    assert!(matches!(Segment::open(&shm.0), Err(ShmError::NotFound(_))));
    // Whatever got out was flushed whole: the dump is a sequence of complete units.
    let stream = dump.read();
    if !stream.is_empty() {
        assert_eq!(
            nal_types(access_units(&stream)[0]),
            [NalType::Sps, NalType::Pps, NalType::Idr]
        );
    }
}

#[test]
fn bad_command_lines_exit_2_with_a_message_naming_the_option() {
    let shm = Shm::new("bad");
    for size in ["321x240", "0x0", "1920x1088", "big"] {
        let out = camsim(&["--shm", &shm.0, "--size", size, "--frames", "1"]);
        assert_eq!(out.status.code(), Some(2), "--size {size}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--size"), "--size {size}: {stderr}");
    }
    let out = camsim(&[
        "--shm",
        &shm.0,
        "--input",
        "/nonexistent/camsim.h264",
        "--frames",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--input"));
    let out = camsim(&["--shm", &shm.0, "--nv12-shm", &shm.0]);
    assert_eq!(out.status.code(), Some(2));
    assert!(matches!(Segment::open(&shm.0), Err(ShmError::NotFound(_))));
}

/// `--encode loop`: a pre-encoded loop of whole GOPs (30 frames at 30 fps, GOP 10), published
/// with fresh frame numbers; with `--object-schedule` the square's variant changes only at an
/// IDR, and `--dump-objects` tells the truth of every frame: the square's position repeats
/// with the loop, its visibility follows the schedule one GOP at most late.
#[test]
fn encode_loop_replays_whole_gops_and_dumps_the_truth() {
    let shm = Shm::new("loop");
    let dump = TempFile::new("loop");
    let objects = TempFile::new("loop_objects");
    let out = camsim_ok(&[
        "--shm",
        &shm.0,
        "--frames",
        "100",
        "--size",
        "320x240",
        "--gop",
        "10",
        "--fps",
        "60",
        "--encode",
        "loop",
        "--object-schedule",
        "0.5s:0.5s",
        "--dump",
        dump.arg(),
        "--dump-objects",
        objects.arg(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a pre-encoded loop of 60 frames"),
        "{stderr}"
    );
    let stream = dump.read();
    let units = access_units(&stream);
    assert_eq!(units.len(), 100);
    for (n, au) in units.iter().enumerate() {
        assert_eq!(
            nal_types(au).contains(&NalType::Idr),
            n % 10 == 0,
            "frame {n}"
        );
    }
    let lines: Vec<Vec<u64>> = std::fs::read_to_string(&objects.0)
        .expect("objects")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').map(|n| n.parse().expect("number")).collect())
        .collect();
    assert_eq!(lines.len(), 100);
    for (n, l) in lines.iter().enumerate() {
        assert_eq!(l[0], n as u64, "fresh frame numbers");
        // Same position as one loop earlier.
        if n >= 60 {
            assert_eq!(l[2..5], lines[n - 60][2..5], "frame {n}");
        }
        // Visibility changes only at an IDR.
        if n % 10 != 0 {
            assert_eq!(l[6], lines[n - 1][6], "frame {n}");
        }
    }
    let shown = lines.iter().filter(|l| l[6] == 1).count();
    assert!(
        (30..=70).contains(&shown),
        "{shown} of 100 frames with the square"
    );
    // Timestamps are fresh and increasing.
    assert!(lines.windows(2).all(|p| p[1][1] > p[0][1]));
    if Command::new("ffprobe").arg("-version").output().is_ok() {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&dump.0)
            .args(["-f", "null", "-"])
            .output()
            .expect("ffmpeg");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "the loop decodes cleanly: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("SKIPPED: the decode check of the loop: ffmpeg not installed");
    }
}
