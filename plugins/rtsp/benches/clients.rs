//! What an RTSP client costs, on the real `stackctl up` (release build) with camsim replaying
//! a 1920×1080 30 fps ~8 Mbit/s H.264 file, and TCP clients on loopback; a WebRTC viewer's
//! cost measured side by side in the same run, on the same stack.
//!
//! One stack runs both sinks (RTSP and WebRTC) through every scenario, in this order:
//! `idle` (no client), `rtsp-1`, `rtsp-10`, `rtsp-50` (all 50 joining at once),
//! `webrtc-10` (10 viewers from the `viewerload` binary, another process), `idle` again. For
//! each: a warm-up, then stackctl's CPU (its threads' `schedstat`) sampled every second over
//! the window (median and p90 of the samples, % of one core), its `RssAnon` at the end, each
//! client's frame rate and time to first frame, and frames dropped. A client's cost is its
//! scenario's median CPU minus the lower of the two idle medians, divided by the clients.
//!
//! The RTSP clients are threads of this process (DESCRIBE, SETUP over TCP, PLAY, then read
//! and count), so their CPU is not stackctl's.
//!
//! ```sh
//! cargo build --release -p stackctl -p camsim -p sink-rtsp -p sink-webrtc -p viewerload
//! cargo bench -p sink-rtsp --bench clients [-- --quick]
//! ```
//!
//! `--quick`: 5 s windows (1 s warm-up) instead of 20 s (3 s). The input file is made once with
//! ffmpeg (libx264) into `target/bench-inputs/` (the streaming bench's file, if it is there).
//! Without ffmpeg the bench prints `SKIPPED: ...`; without the release binaries it says which
//! are missing and fails.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BUILD: &str =
    "cargo build --release -p stackctl -p camsim -p sink-rtsp -p sink-webrtc -p viewerload";

struct Bins {
    target: PathBuf,
    stackctl: PathBuf,
    camsim: PathBuf,
    rtsp: PathBuf,
    webrtc: PathBuf,
    viewerload: PathBuf,
}

impl Bins {
    fn find() -> Result<Self, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let release = target.join("release");
        let bins = Self {
            stackctl: release.join("stackctl"),
            camsim: release.join("camsim"),
            rtsp: release.join("libsink_rtsp.so"),
            webrtc: release.join("libsink_webrtc.so"),
            viewerload: release.join("viewerload"),
            target,
        };
        let missing: Vec<String> = [
            &bins.stackctl,
            &bins.camsim,
            &bins.rtsp,
            &bins.webrtc,
            &bins.viewerload,
        ]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
        if missing.is_empty() {
            Ok(bins)
        } else {
            Err(missing.join(", "))
        }
    }
}

/// The input: the streaming bench's file when it is there, else made the same way.
fn input(bins: &Bins) -> Result<PathBuf, String> {
    let dir = bins.target.join("bench-inputs");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("streaming-1080p30-8M.h264");
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("streaming-1080p30-8M.{}.tmp", std::process::id()));
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30",
        ])
        .args([
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-b:v", "8M", "-maxrate", "8M", "-bufsize", "8M", "-g", "30", "-bf", "0",
        ])
        .args(["-x264-params", "repeat-headers=1", "-f", "h264"])
        .arg(&tmp)
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg (libx264): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::write(
        dir.join("streaming-1080p30-8M.txt"),
        "ffmpeg libx264 veryfast zerolatency, 8 Mbit/s, GOP 30, no B-frames, testsrc2, 20 s",
    )
    .ok();
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    Ok(path)
}

struct Stack {
    child: Child,
    _dir: tempfile::TempDir,
    http: u16,
    rtsp: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    fn start(bins: &Bins, input: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (http, rtsp) = (free_port(), free_port());
        let shm = format!("/stackctl-bench-rtsp-{}", std::process::id());
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let config = format!(
            r#"[source]
shm = "{shm}"

[services.camera]
command = {camsim}
args = ["--shm", "{shm}", "--input", {input}, "--fps", "30", "--size", "1920x1080"]

[plugins.rtsp]
path = {rtsp_lib}
port = {rtsp}
bind = "127.0.0.1"
max_clients = 50
udp_ports = []

[plugins.streaming]
path = {webrtc_lib}
bind = ["127.0.0.1"]
max_clients = 10

[control]
socket = {socket}

[http]
host = "127.0.0.1"
port = {http}

[metrics]
port = 0
"#,
            camsim = q(&bins.camsim),
            input = q(input),
            rtsp_lib = q(&bins.rtsp),
            webrtc_lib = q(&bins.webrtc),
            socket = q(&dir.path().join("stackctl.sock")),
        );
        let config_path = dir.path().join("stackctl.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("stackctl.log")).unwrap();
        let child = Command::new(&bins.stackctl)
            .args(["up", "--config"])
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start stackctl");
        let stack = Self {
            child,
            _dir: dir,
            http,
            rtsp,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while stack.metric("rtsp_frames_received_total") < 30.0 {
            assert!(Instant::now() < deadline, "no frames within 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        stack
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn metric(&self, name: &str) -> f64 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.http)) else {
            return 0.0;
        };
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SIGTERM, so stackctl stops its camera and cleans the segment.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// CPU seconds of a process's threads, from each thread's `schedstat` (nanoseconds on a
/// CPU): `utime`/`stime` count 10 ms ticks, too coarse for one-second samples of a few %.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

fn rss_anon_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// One RTSP client on its own thread: plays over TCP, then counts what arrives.
struct RtspClient {
    frames: Arc<AtomicU64>,
    first_frame_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

fn request(s: &mut TcpStream, buf: &mut Vec<u8>, text: &str) -> String {
    s.write_all(text.as_bytes()).unwrap();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            while buf.len() < end + 4 + len {
                read_more(s, buf);
            }
            buf.drain(..end + 4 + len);
            assert!(head.starts_with("RTSP/1.0 200"), "{head}");
            return head;
        }
        read_more(s, buf);
    }
}

fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 64 * 1024];
    let n = s.read(&mut chunk).unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n
}

fn rtsp_client(port: u16) -> RtspClient {
    let frames = Arc::new(AtomicU64::new(0));
    let first_frame_ms = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::spawn({
        let (frames, first_frame_ms, stop) = (
            Arc::clone(&frames),
            Arc::clone(&first_frame_ms),
            Arc::clone(&stop),
        );
        move || {
            let started = Instant::now();
            let url = format!("rtsp://127.0.0.1:{port}/live");
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            request(
                &mut s,
                &mut buf,
                &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            );
            let head = request(
                &mut s,
                &mut buf,
                &format!(
                    "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
                ),
            );
            let session = head
                .lines()
                .find_map(|l| l.strip_prefix("Session: "))
                .unwrap();
            let session = session.split(';').next().unwrap().to_owned();
            s.write_all(
                format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes(),
            )
            .unwrap();
            let mut answered = false;
            while !stop.load(Relaxed) {
                // Whole interleaved packets, and the PLAY answer once.
                loop {
                    if !answered && buf.first() == Some(&b'R') {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            break;
                        };
                        buf.drain(..end + 4);
                        answered = true;
                        continue;
                    }
                    if buf.len() < 4 || buf[0] != b'$' {
                        break;
                    }
                    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                    if buf.len() < 4 + len {
                        break;
                    }
                    // The marker bit ends a frame.
                    if buf[1] == 0
                        && len >= 12
                        && buf[5] & 0x80 != 0
                        && frames.fetch_add(1, Relaxed) == 0
                    {
                        first_frame_ms.store(started.elapsed().as_millis() as u64, Relaxed);
                    }
                    buf.drain(..4 + len);
                }
                if read_more(&mut s, &mut buf) == 0 {
                    break;
                }
            }
            let _ = s.write_all(
                format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 4\r\nSession: {session}\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
    RtspClient {
        frames,
        first_frame_ms,
        stop,
        thread,
    }
}

struct Outcome {
    name: String,
    clients: usize,
    cpu_median: f64,
    cpu_p90: f64,
    rss_mib: f64,
    fps_min: f64,
    fps_median: f64,
    ttff_p50_ms: f64,
    ttff_max_ms: f64,
    dropped: f64,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Samples stackctl's CPU every second for `window`: % of one core per sample.
fn sample_cpu(pid: u32, window: Duration) -> Vec<f64> {
    let mut samples = Vec::new();
    let end = Instant::now() + window;
    let (mut t, mut c) = (Instant::now(), cpu_seconds(pid));
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        let (t2, c2) = (Instant::now(), cpu_seconds(pid));
        samples.push((c2 - c) / (t2 - t).as_secs_f64() * 100.0);
        (t, c) = (t2, c2);
    }
    samples
}

fn rtsp_scenario(stack: &Stack, clients: usize, warmup: Duration, window: Duration) -> Outcome {
    let dropped0 = stack.metric("rtsp_frames_dropped_total");
    let all: Vec<RtspClient> = (0..clients).map(|_| rtsp_client(stack.rtsp)).collect();
    std::thread::sleep(warmup);
    let before: Vec<u64> = all.iter().map(|c| c.frames.load(Relaxed)).collect();
    let cpu = sample_cpu(stack.pid(), window);
    let fps: Vec<f64> = all
        .iter()
        .zip(&before)
        .map(|(c, b)| (c.frames.load(Relaxed) - b) as f64 / window.as_secs_f64())
        .collect();
    let rss = rss_anon_mib(stack.pid());
    let ttff: Vec<f64> = all
        .iter()
        .map(|c| c.first_frame_ms.load(Relaxed) as f64)
        .collect();
    for c in &all {
        c.stop.store(true, Relaxed);
    }
    for c in all {
        let _ = c.thread.join();
    }
    std::thread::sleep(Duration::from_secs(1));
    Outcome {
        name: format!("rtsp-{clients}"),
        clients,
        cpu_median: percentile(cpu.clone(), 0.5),
        cpu_p90: percentile(cpu, 0.9),
        rss_mib: rss,
        fps_min: percentile(fps.clone(), 0.0),
        fps_median: percentile(fps, 0.5),
        ttff_p50_ms: percentile(ttff.clone(), 0.5),
        ttff_max_ms: percentile(ttff, 1.0),
        dropped: stack.metric("rtsp_frames_dropped_total") - dropped0,
    }
}

fn idle_scenario(stack: &Stack, name: &str, window: Duration) -> Outcome {
    let cpu = sample_cpu(stack.pid(), window);
    Outcome {
        name: name.into(),
        clients: 0,
        cpu_median: percentile(cpu.clone(), 0.5),
        cpu_p90: percentile(cpu, 0.9),
        rss_mib: rss_anon_mib(stack.pid()),
        fps_min: f64::NAN,
        fps_median: f64::NAN,
        ttff_p50_ms: f64::NAN,
        ttff_max_ms: f64::NAN,
        dropped: 0.0,
    }
}

fn webrtc_scenario(
    bins: &Bins,
    stack: &Stack,
    viewers: usize,
    warmup: Duration,
    window: Duration,
) -> Outcome {
    let total = warmup + window + Duration::from_secs(2);
    let mut load = Command::new(&bins.viewerload)
        .args(["--url", &format!("http://127.0.0.1:{}", stack.http)])
        .args([
            "--viewers",
            &viewers.to_string(),
            "--duration",
            &format!("{}s", total.as_secs()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start viewerload");
    let dropped0 = stack.metric("streaming_webrtc_frames_dropped_total");
    std::thread::sleep(warmup);
    let sent0 = stack.metric("streaming_webrtc_frames_sent_total");
    let cpu = sample_cpu(stack.pid(), window);
    let sent = stack.metric("streaming_webrtc_frames_sent_total") - sent0;
    let rss = rss_anon_mib(stack.pid());
    let _ = load.wait();
    let fps = sent / viewers as f64 / window.as_secs_f64();
    Outcome {
        name: format!("webrtc-{viewers}"),
        clients: viewers,
        cpu_median: percentile(cpu.clone(), 0.5),
        cpu_p90: percentile(cpu, 0.9),
        rss_mib: rss,
        fps_min: f64::NAN,
        fps_median: fps,
        ttff_p50_ms: f64::NAN,
        ttff_max_ms: f64::NAN,
        dropped: stack.metric("streaming_webrtc_frames_dropped_total") - dropped0,
    }
}

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let (warmup, window) = if quick {
        (Duration::from_secs(1), Duration::from_secs(5))
    } else {
        (Duration::from_secs(3), Duration::from_secs(20))
    };
    let bins = match Bins::find() {
        Ok(b) => b,
        Err(missing) => {
            println!("ERROR: missing {missing}: run `{BUILD}` first");
            return ExitCode::from(1);
        }
    };
    let input = match input(&bins) {
        Ok(i) => i,
        Err(why) => {
            println!("SKIPPED: rtsp clients bench: no H.264 input: {why}");
            return ExitCode::SUCCESS;
        }
    };
    let stack = Stack::start(&bins, &input);
    eprintln!("stack up (pid {}), measuring", stack.pid());
    let mut results = vec![idle_scenario(&stack, "idle", window)];
    for n in [1, 10, 50] {
        eprintln!("rtsp-{n}");
        results.push(rtsp_scenario(&stack, n, warmup, window));
    }
    eprintln!("webrtc-10");
    results.push(webrtc_scenario(&bins, &stack, 10, warmup, window));
    results.push(idle_scenario(&stack, "idle again", window));
    // The lower of the two idle medians: the per-client figures err on the high side.
    let idle = results
        .iter()
        .filter(|r| r.clients == 0)
        .map(|r| r.cpu_median)
        .fold(f64::INFINITY, f64::min);
    println!(
        "\n1080p30 ~8 Mbit/s (camsim --input {}), clients on loopback; stackctl CPU in % of one core, sampled each second over {} s after a {} s warm-up.\n",
        input.file_name().unwrap().to_string_lossy(),
        window.as_secs(),
        warmup.as_secs()
    );
    println!(
        "| scenario | clients | CPU median | CPU p90 | per client (median − idle) / n | RssAnon MiB | fps per client (min / median) | first frame p50 / max | frames dropped |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &results {
        let per = if r.clients > 0 {
            format!("{:.3} %", (r.cpu_median - idle) / r.clients as f64)
        } else {
            "-".into()
        };
        let fps = if r.fps_min.is_nan() && r.fps_median.is_nan() {
            "-".to_owned()
        } else if r.fps_min.is_nan() {
            format!("{:.1} (mean)", r.fps_median)
        } else {
            format!("{:.1} / {:.1}", r.fps_min, r.fps_median)
        };
        let ttff = if r.ttff_p50_ms.is_nan() {
            "-".to_owned()
        } else {
            format!("{:.0} / {:.0} ms", r.ttff_p50_ms, r.ttff_max_ms)
        };
        println!(
            "| {} | {} | {:.2} % | {:.2} % | {per} | {:.1} | {fps} | {ttff} | {} |",
            r.name, r.clients, r.cpu_median, r.cpu_p90, r.rss_mib, r.dropped
        );
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\nload average at the end: {}", load.trim());
    ExitCode::SUCCESS
}
