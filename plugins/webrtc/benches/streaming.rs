//! The streaming sink under load, on the real `stackctl up` with camsim replaying a
//! 1920×1080 30 fps ~8 Mbit/s H.264 file and WebRTC viewers on loopback:
//!
//! - **a)** 10 viewers for 30 s after a 5 s warm-up: end-to-end latency (camera publish →
//!   last RTP packet of the frame at the viewer), fps, drops, time to first frame, stackctl's
//!   CPU (% of one core) over the measured window and its `RssAnon`;
//! - **b)** 50 viewers for 20 s after a 5 s warm-up (started 20 ms apart): the same figures;
//! - **c)** soak: 500 connect (WHEP, connected, one frame) / close (WHEP `DELETE`) cycles,
//!   4 at a time, then stackctl's `RssAnon` and open file descriptors against where they
//!   started (after 10 cycles, so one-time allocations are not taken for a leak; the figure
//!   before any viewer is shown too);
//! - **str0m**: scenario a) against `str0m-sink` (`tools/str0m-sink`, the same WHEP sink built
//!   on the sans-IO crate str0m) instead of stackctl: the same camsim input, size and rate
//!   (camsim run directly), the same viewers, warm-up and window, the same figures for the
//!   `str0m-sink` process; then a table of the webrtc-rs sink and str0m side by side.
//!
//! Each scenario runs on a fresh stack (a fresh camsim and `str0m-sink` for `str0m`). The
//! viewers (the `viewerload` library) run in this process on their own tokio runtime
//! (2 workers), so their CPU is not stackctl's; it is reported, with the whole host's load
//! (the figures mean little on a host busy with other work) and the host's UDP counters
//! (`RcvbufErrors`: where loopback loses packets).
//!
//! ```sh
//! cargo build --release -p stackctl -p camsim -p sink-webrtc -p viewerload -p str0m-sink
//! cargo bench -p sink-webrtc --bench streaming [-- --quick] [--json[=FILE]] [--only=a,str0m,b,c]
//! ```
//!
//! `--quick`: 3 and 6 viewers for 5 s (1 s warm-up), 50 soak cycles (~30 s). The full run
//! takes about 3 minutes. `--json`: the results as one JSON line on stdout after the Markdown
//! tables; `--json=FILE` writes them to FILE instead. `--only=`: some of the scenarios
//! (`--only=a,str0m`: the two 10-viewer runs and their comparison).
//! Progress goes to stderr.
//!
//! The input file is made once, with ffmpeg (libx264, else libopenh264) or else camsim's own
//! encoder, and kept in `target/bench-inputs/`. Without any of them the bench prints
//! `SKIPPED: ...` and succeeds; without the release binaries it says which are missing and
//! fails.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use viewerload::report::percentile;
use viewerload::{LoadOptions, Report, Viewer, ViewerOptions};

const BUILD: &str =
    "cargo build --release -p stackctl -p camsim -p sink-webrtc -p viewerload -p str0m-sink";
const WIDTH_HEIGHT: &str = "1920x1080";
const FPS: u32 = 30;

/// What one run does.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    json: Option<Option<PathBuf>>,
    a: LoadPlan,
    b: LoadPlan,
    soak_cycles: usize,
    soak_warmup_cycles: usize,
    soak_parallel: usize,
    soak_settle: Duration,
}

#[derive(Debug, Clone, Copy)]
struct LoadPlan {
    viewers: usize,
    duration: Duration,
    warmup: Duration,
    ramp: Duration,
}

fn main() -> ExitCode {
    let mut quick = false;
    let mut only: Option<String> = None;
    let mut json = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            a if a.starts_with("--only=") => only = Some(a[7..].to_owned()),
            "--json" => json = Some(None),
            a if a.starts_with("--json=") => json = Some(Some(PathBuf::from(&a[7..]))),
            // cargo bench passes --bench; libtest filters are meaningless here.
            "--bench" => {}
            a if !a.starts_with('-') => {}
            other => {
                eprintln!(
                    "streaming bench: unknown option {other} (use --quick, --json[=FILE], --only=a,str0m,b,c)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let plan = if quick {
        Plan {
            quick,
            json,
            a: LoadPlan {
                viewers: 3,
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                ramp: Duration::ZERO,
            },
            b: LoadPlan {
                viewers: 6,
                duration: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                ramp: Duration::from_millis(20),
            },
            soak_cycles: 50,
            soak_warmup_cycles: 5,
            soak_parallel: 4,
            soak_settle: Duration::from_secs(3),
        }
    } else {
        Plan {
            quick,
            json,
            a: LoadPlan {
                viewers: 10,
                duration: Duration::from_secs(35),
                warmup: Duration::from_secs(5),
                ramp: Duration::ZERO,
            },
            b: LoadPlan {
                viewers: 50,
                duration: Duration::from_secs(25),
                warmup: Duration::from_secs(5),
                ramp: Duration::from_millis(20),
            },
            soak_cycles: 500,
            soak_warmup_cycles: 10,
            soak_parallel: 4,
            soak_settle: Duration::from_secs(10),
        }
    };

    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == name))
    };
    let bins = match Binaries::find(wanted("str0m")) {
        Ok(bins) => bins,
        Err(missing) => {
            eprintln!("ERROR: the streaming bench needs release binaries; missing: {missing}");
            eprintln!("       build them first: {BUILD}");
            println!("ERROR: missing {missing}: run `{BUILD}` first");
            return ExitCode::from(1);
        }
    };
    let input = match make_input(&bins) {
        Ok(input) => input,
        Err(why) => {
            println!("SKIPPED: streaming bench: no H.264 input: {why}");
            eprintln!("SKIPPED: streaming bench: no H.264 input: {why}");
            return ExitCode::SUCCESS;
        }
    };

    let machine = machine();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("viewerload")
        .enable_all()
        .build()
        .expect("tokio runtime");

    let a = wanted("a").then(|| load_scenario(&runtime, &bins, &input, "a", plan.a));
    // Right after a), with a)'s plan: the side-by-side comparison.
    let str0m = wanted("str0m").then(|| load_scenario(&runtime, &bins, &input, "str0m", plan.a));
    let b = wanted("b").then(|| load_scenario(&runtime, &bins, &input, "b", plan.b));
    let c = wanted("c").then(|| soak(&runtime, &bins, &input, &plan));
    let total = started.elapsed();

    let mut md = String::new();
    markdown(
        &mut md,
        &plan,
        &machine,
        &bins,
        &input,
        a.as_ref(),
        str0m.as_ref(),
        b.as_ref(),
        c.as_ref(),
        total,
    );
    print!("{md}");
    if let Some(target) = &plan.json {
        let doc = json!({
            "machine": machine.json(),
            "quick": plan.quick,
            "binaries": bins.json(),
            "input": input.json(),
            "a_10_viewers": a.as_ref().map(LoadResult::json),
            "str0m_10_viewers": str0m.as_ref().map(LoadResult::json),
            "webrtc_rs_vs_str0m_10_viewers":
                a.as_ref().zip(str0m.as_ref()).map(|(a, s)| comparison_json(a, s)),
            "b_50_viewers": b.as_ref().map(LoadResult::json),
            "c_soak": c.as_ref().map(SoakResult::json),
            "elapsed_s": total.as_secs_f64(),
        });
        match target {
            None => println!("{doc}"),
            Some(path) => {
                std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap())
                    .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
                eprintln!("JSON written to {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Binaries, input, machine

struct Binaries {
    target: PathBuf,
    stackctl: PathBuf,
    camsim: PathBuf,
    sink: PathBuf,
    /// For the `str0m` scenario.
    str0m_sink: PathBuf,
}

impl Binaries {
    /// `target/release/{stackctl,camsim,libsink_webrtc.so,str0m-sink}`, next to this bench's
    /// `deps/` (`str0m-sink` only if `str0m`: the scenario runs).
    fn find(str0m: bool) -> Result<Self, String> {
        let exe = std::env::current_exe().expect("bench executable path");
        let release = exe
            .parent()
            .and_then(Path::parent)
            .expect("the bench lives in target/<profile>/deps")
            .to_owned();
        let target = release.parent().expect("target/<profile>").to_owned();
        let release = target.join("release");
        let bins = Self {
            stackctl: release.join("stackctl"),
            camsim: release.join("camsim"),
            sink: release.join("libsink_webrtc.so"),
            str0m_sink: release.join("str0m-sink"),
            target,
        };
        let missing: Vec<String> = [&bins.stackctl, &bins.camsim, &bins.sink]
            .into_iter()
            .chain(str0m.then_some(&bins.str0m_sink))
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if missing.is_empty() {
            Ok(bins)
        } else {
            Err(missing.join(", "))
        }
    }

    fn ages(&self) -> Vec<(String, String)> {
        [&self.stackctl, &self.camsim, &self.sink, &self.str0m_sink]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| {
                let age = std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .map_or("?".to_owned(), |d| format!("built {} ago", human(d)));
                (p.display().to_string(), age)
            })
            .collect()
    }

    fn json(&self) -> Value {
        self.ages()
            .into_iter()
            .map(|(p, a)| json!({"path": p, "age": a}))
            .collect()
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

struct Input {
    path: PathBuf,
    how: String,
    bytes: u64,
    access_units: usize,
    idr: usize,
}

impl Input {
    fn seconds(&self) -> f64 {
        self.access_units as f64 / f64::from(FPS)
    }

    fn kbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds() / 1000.0
    }

    fn json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "made_with": self.how,
            "bytes": self.bytes,
            "access_units": self.access_units,
            "idr_frames": self.idr,
            "seconds_at_30fps": self.seconds(),
            "kbit_per_s": self.kbps(),
        })
    }
}

/// The input file, made once: `target/bench-inputs/streaming-1080p30-8M.h264`.
fn make_input(bins: &Binaries) -> Result<Input, String> {
    let dir = bins.target.join("bench-inputs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("streaming-1080p30-8M.h264");
    let note = dir.join("streaming-1080p30-8M.txt");
    let tmp = dir.join(format!("streaming-1080p30-8M.{}.tmp", std::process::id()));
    let how = if path.exists() {
        std::fs::read_to_string(&note).unwrap_or_else(|_| "an earlier run".to_owned())
    } else {
        let how = encode(bins, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("rename: {e}"))?;
        std::fs::write(&note, &how).map_err(|e| format!("{}: {e}", note.display()))?;
        how
    };
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (access_units, idr) = count_access_units(&data);
    if access_units < 30 {
        return Err(format!(
            "{} holds only {access_units} access units: delete it and run again",
            path.display()
        ));
    }
    Ok(Input {
        path,
        how,
        bytes: data.len() as u64,
        access_units,
        idr,
    })
}

fn encode(bins: &Binaries, out: &Path) -> Result<String, String> {
    let encoders = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let mut tried = Vec::new();
    match encoders {
        Ok(o) if o.status.success() => {
            let list = String::from_utf8_lossy(&o.stdout);
            let has = |name: &str| {
                list.lines()
                    .any(|l| l.split_whitespace().nth(1) == Some(name))
            };
            let mut candidates: Vec<(&str, Vec<&str>)> = Vec::new();
            if has("libx264") {
                candidates.push((
                    "libx264",
                    vec![
                        "-c:v",
                        "libx264",
                        "-preset",
                        "veryfast",
                        "-tune",
                        "zerolatency",
                        "-b:v",
                        "8M",
                        "-maxrate",
                        "8M",
                        "-bufsize",
                        "2M",
                        "-g",
                        "30",
                        "-bf",
                        "0",
                        "-x264-params",
                        "repeat-headers=1",
                    ],
                ));
            }
            if has("libopenh264") {
                candidates.push((
                    "libopenh264",
                    vec!["-c:v", "libopenh264", "-b:v", "8M", "-g", "30"],
                ));
            }
            for (name, codec) in candidates {
                let mut args: Vec<String> = [
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=1920x1080:rate=30",
                    "-t",
                    "10",
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
                args.extend(codec.iter().map(|s| (*s).to_owned()));
                args.extend(["-f".to_owned(), "h264".to_owned()]);
                args.push(out.display().to_string());
                eprintln!("making the input: ffmpeg {}", args.join(" "));
                let status = Command::new("ffmpeg")
                    .args(&args)
                    .stdin(Stdio::null())
                    .status();
                match status {
                    Ok(s) if s.success() => return Ok(format!("ffmpeg {}", args.join(" "))),
                    other => tried.push(format!("ffmpeg with {name}: {other:?}")),
                }
            }
            if tried.is_empty() {
                tried.push("ffmpeg has neither libx264 nor libopenh264".to_owned());
            }
        }
        other => tried.push(format!("no usable ffmpeg ({:?})", other.map(|o| o.status))),
    }
    // camsim's own encoder (OpenH264), in real time: 10 s.
    let shm = format!("/stackctl-bench-input-{}", std::process::id());
    let args = [
        "--shm",
        &shm,
        "--frames",
        "300",
        "--fps",
        "30",
        "--gop",
        "30",
        "--size",
        WIDTH_HEIGHT,
        "--bitrate",
        "8000",
        "--dump",
        &out.display().to_string(),
    ]
    .map(str::to_owned);
    eprintln!("making the input: camsim {}", args.join(" "));
    let status = Command::new(&bins.camsim)
        .args(&args)
        .stdin(Stdio::null())
        .status();
    let _ = std::fs::remove_file(Path::new("/dev/shm").join(shm.trim_start_matches('/')));
    match status {
        Ok(s) if s.success() => Ok(format!("camsim {}", args.join(" "))),
        other => {
            tried.push(format!("camsim --dump: {other:?}"));
            let _ = std::fs::remove_file(out);
            Err(tried.join("; "))
        }
    }
}

/// Access units (a new one at an AUD/SPS/PPS/SEI after a slice, or at a slice with
/// first_mb_in_slice = 0 after a slice) and IDR pictures of an Annex-B stream.
fn count_access_units(data: &[u8]) -> (usize, usize) {
    let mut units = 0;
    let mut idr = 0;
    let mut previous_slice = false;
    let mut in_unit_idr = false;
    for nal in stackctl_media::h264::nal_units(data) {
        let Some(&head) = nal.first() else { continue };
        let kind = head & 0x1f;
        let slice = kind == 1 || kind == 5;
        let first_mb_zero = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        let prefix = matches!(kind, 6..=9);
        if units == 0 || (previous_slice && (prefix || first_mb_zero)) {
            units += 1;
            in_unit_idr = false;
        }
        if kind == 5 && !in_unit_idr {
            idr += 1;
            in_unit_idr = true;
        }
        previous_slice = slice;
    }
    (units, idr)
}

struct Machine {
    model: String,
    cores: usize,
    kernel: String,
    date: String,
    clk_tck: f64,
    loadavg: String,
}

impl Machine {
    fn json(&self) -> Value {
        json!({"cpu": self.model, "cores": self.cores, "kernel": self.kernel,
               "date_utc": self.date, "loadavg_at_start": self.loadavg})
    }
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|x| x.1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let clk_tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    Machine {
        model,
        cores,
        kernel,
        date: utc_now(),
        clk_tck,
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` (days-to-civil, Howard Hinnant's algorithm).
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// The stack

/// `stackctl up` with camsim (replaying the input) and the streaming sink, in a temporary
/// directory. Dropping it stops both (SIGTERM, then SIGKILL) and unlinks the segment.
struct Stack {
    child: Option<Child>,
    dir: tempfile::TempDir,
    shm: String,
    port: u16,
    camsim: Option<u32>,
}

impl Stack {
    /// The stack with the sink configured for `max_clients` viewers (which sizes its worker
    /// threads, as on a board).
    fn start(bins: &Binaries, input: &Input, tag: &str, max_clients: usize) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let shm = format!("/stackctl-bench-streaming-{}-{tag}-{n}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let q = |p: &Path| format!("{:?}", p.display().to_string());
        let config = format!(
            r#"[source]
shm = "{shm}"

[services.camera]
command = {camsim}
args = ["--shm", "{shm}", "--input", {input}, "--fps", "{FPS}", "--size", "{WIDTH_HEIGHT}"]

[plugins.streaming]
path = {sink}
bind = ["127.0.0.1"]
max_clients = {max_clients}
rtp_timestamp_origin = "monotonic"

[control]
socket = {socket}

[http]
host = "127.0.0.1"
port = {port}

[metrics]
port = 0
"#,
            camsim = q(&bins.camsim),
            input = q(&input.path),
            sink = q(&bins.sink),
            socket = q(&dir.path().join("stackctl.sock")),
        );
        let config_path = dir.path().join("stackctl.toml");
        std::fs::write(&config_path, config).expect("write the config");
        let log = File::create(dir.path().join("stackctl.log")).expect("log file");
        let child = Command::new(&bins.stackctl)
            .arg("up")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bins.stackctl.display()));
        let mut stack = Self {
            child: Some(child),
            dir,
            shm,
            port,
            camsim: None,
        };
        // Ready: the sink has received frames from the camera.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = stack.child.as_mut().unwrap().try_wait().expect("try_wait") {
                panic!("stackctl up exited ({status}); log:\n{}", stack.log_tail());
            }
            let read = stack
                .try_metrics()
                .and_then(|m| m.get("streaming_frames_read_total").copied());
            if read.is_some_and(|n| n >= 5.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the stack did not stream within 30 s; log:\n{}",
                stack.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        stack.camsim = children(stack.pid()).into_iter().next();
        stack
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        log_tail(&self.dir.path().join("stackctl.log"))
    }

    /// Warnings and errors stackctl logged (the sink's complaints under load).
    fn log_problems(&self) -> Vec<String> {
        log_problems(&self.dir.path().join("stackctl.log"))
    }

    fn try_metrics(&self) -> Option<HashMap<String, f64>> {
        let text = http_get(self.port, "/metrics").ok()?;
        Some(
            stackctl_tests::plugins::unlabelled(&text)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    fn metrics(&self) -> HashMap<String, f64> {
        self.try_metrics().expect("stackctl's /metrics")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(camsim) = self.camsim
            && Path::new(&format!("/proc/{camsim}")).exists()
        {
            // Still there only if stackctl died without stopping it; make sure it is ours.
            let comm = std::fs::read_to_string(format!("/proc/{camsim}/comm")).unwrap_or_default();
            if comm.trim() == "camsim" {
                signal(camsim, "KILL");
            }
        }
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(self.shm.trim_start_matches('/')));
    }
}

/// Warnings and errors in a log (stackctl's or str0m-sink's), alike lines grouped and counted.
fn log_problems(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // camsim's own stderr is logged at WARN by stackctl: not a complaint.
    let problem =
        |l: &&str| (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("service=camera");
    for line in text.lines().filter(problem) {
        // Without the timestamp, and without per-viewer ids, so alike lines group.
        let body = line.split_once(' ').map_or(line, |x| x.1).trim();
        let key: String = body
            .split_whitespace()
            .filter(|w| !w.starts_with("viewer=") && !w.starts_with("id="))
            .collect::<Vec<_>>()
            .join(" ");
        *counts.entry(key).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(line, n)| format!("{n}x {line}"))
        .collect()
}

/// The last 40 lines of a log.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// camsim (replaying the input, as stackctl runs it) and `str0m-sink` on its segment, in a
/// temporary directory. Dropping it stops both (SIGTERM, then SIGKILL) and unlinks the segment.
struct Str0mSink {
    sink: Option<Child>,
    camsim: Option<Child>,
    dir: tempfile::TempDir,
    shm: String,
    port: u16,
}

impl Str0mSink {
    fn start(bins: &Binaries, input: &Input, tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let shm = format!("/stackctl-bench-str0m-{}-{tag}-{n}", std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let spawn = |program: &Path, args: &[String], log: &str| {
            let log = File::create(dir.path().join(log)).expect("log file");
            Command::new(program)
                .args(args)
                .current_dir(dir.path())
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
        };
        // Exactly the camera stackctl runs in the other scenarios.
        let camsim_args = [
            "--shm",
            &shm,
            "--input",
            &input.path.display().to_string(),
            "--fps",
            &FPS.to_string(),
            "--size",
            WIDTH_HEIGHT,
        ]
        .map(str::to_owned);
        let sink_args = [
            "--shm",
            &shm,
            "--http",
            &format!("127.0.0.1:{port}"),
            "--udp",
            "127.0.0.1:0",
            "--max-viewers",
            "60",
        ]
        .map(str::to_owned);
        let sink = spawn(&bins.str0m_sink, &sink_args, "str0m-sink.log");
        let camsim = spawn(&bins.camsim, &camsim_args, "camsim.log");
        let mut it = Self {
            sink: Some(sink),
            camsim: Some(camsim),
            dir,
            shm,
            port,
        };
        // Ready: the sink serves WHEP and has received the camera's first frame.
        let deadline = Instant::now() + Duration::from_secs(30);
        let log = it.dir.path().join("str0m-sink.log");
        loop {
            for (what, child) in [("str0m-sink", &mut it.sink), ("camsim", &mut it.camsim)] {
                if let Some(status) = child.as_mut().unwrap().try_wait().expect("try_wait") {
                    panic!(
                        "{what} exited ({status}); str0m-sink log:\n{}",
                        log_tail(&log)
                    );
                }
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("str0m-sink ready") && text.contains("first frame from the camera") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "str0m-sink did not stream within 30 s; log:\n{}",
                log_tail(&log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        it
    }
}

impl Drop for Str0mSink {
    fn drop(&mut self) {
        for mut child in [self.sink.take(), self.camsim.take()].into_iter().flatten() {
            signal(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(self.shm.trim_start_matches('/')));
    }
}

/// What a load scenario measures: `stackctl up` with the sink, or `str0m-sink`.
trait UnderTest {
    /// The process measured: stackctl, or str0m-sink.
    fn pid(&self) -> u32;
    /// Base URL of its WHEP endpoint.
    fn url(&self) -> String;
    /// camsim's pid.
    fn camsim(&self) -> Option<u32>;
    /// The sink's metrics (str0m-sink has none).
    fn sink_metrics(&self) -> Option<HashMap<String, f64>>;
    /// Warnings and errors it logged.
    fn problems(&self) -> Vec<String>;
}

impl UnderTest for Stack {
    fn pid(&self) -> u32 {
        Stack::pid(self)
    }
    fn url(&self) -> String {
        Stack::url(self)
    }
    fn camsim(&self) -> Option<u32> {
        self.camsim
    }
    fn sink_metrics(&self) -> Option<HashMap<String, f64>> {
        Some(self.metrics())
    }
    fn problems(&self) -> Vec<String> {
        self.log_problems()
    }
}

impl UnderTest for Str0mSink {
    fn pid(&self) -> u32 {
        self.sink.as_ref().expect("running").id()
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn camsim(&self) -> Option<u32> {
        self.camsim.as_ref().map(Child::id)
    }
    fn sink_metrics(&self) -> Option<HashMap<String, f64>> {
        None
    }
    fn problems(&self) -> Vec<String> {
        log_problems(&self.dir.path().join("str0m-sink.log"))
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Direct children of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// `GET path` over HTTP/1.1 with `Connection: close`; the body of a 200.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(head.lines().next().unwrap_or_default().to_owned());
    }
    // Chunked bodies: strip the chunk-size lines (the metrics text has no bare hex lines).
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        return Ok(out);
    }
    Ok(body.to_owned())
}

// ---------------------------------------------------------------------------------------------
// /proc

/// utime + stime of a process (all its threads, living and exited), in ticks.
fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&format!("/proc/{pid}/stat")).map_or(0, |(_, t)| t)
}

/// (comm, utime + stime) from a `stat` file.
fn stat_ticks(path: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Per thread: tid → (name, ticks).
fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(t) = stat_ticks(&format!("{}/stat", task.path().display())) {
                out.insert(tid, t);
            }
        }
    }
    out
}

/// (busy, total) jiffies of the whole host, from the `cpu` line of `/proc/stat`.
fn host_jiffies() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The host's UDP counters (`/proc/net/snmp`): loss on loopback is a socket buffer
/// overflowing (`RcvbufErrors` at the receiver, `SndbufErrors` at the sender).
fn udp_counters() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut rows = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (rows.next(), rows.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(n, v)| Some((n.to_owned(), v.parse().ok()?)))
        .collect()
}

fn counters_delta(
    from: &BTreeMap<String, u64>,
    to: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    to.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(from.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Open descriptors by kind: `udp`, `tcp`, `unix`, other sockets, `pipe`, `anon_inode:[x]`,
/// `/dev/shm`, other files.
fn fd_kinds(pid: u32) -> BTreeMap<String, usize> {
    let mut inodes: HashMap<String, &'static str> = HashMap::new();
    for (file, kind) in [
        ("udp", "udp"),
        ("udp6", "udp"),
        ("tcp", "tcp"),
        ("tcp6", "tcp"),
        ("unix", "unix"),
        ("netlink", "netlink"),
    ] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).unwrap_or_default();
        let column = if file == "unix" { 6 } else { 9 };
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(column) {
                inodes.insert(inode.to_owned(), kind);
            }
        }
    }
    let mut kinds = BTreeMap::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let kind = if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes
                    .get(inode)
                    .copied()
                    .unwrap_or("socket (other)")
                    .to_owned()
            } else if target.starts_with("pipe:") {
                "pipe".to_owned()
            } else if target.starts_with("anon_inode:") {
                target.clone()
            } else if target.starts_with("/dev/shm") {
                "/dev/shm".to_owned()
            } else {
                "file".to_owned()
            };
            *kinds.entry(kind).or_default() += 1;
        }
    }
    kinds
}

/// What a process looks like at one moment.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    ticks: u64,
    rss_anon_kb: u64,
    threads: u64,
    fds: usize,
    per_thread: HashMap<u32, (String, u64)>,
}

fn sample(pid: u32) -> Sample {
    Sample {
        at: Instant::now(),
        ticks: cpu_ticks(pid),
        rss_anon_kb: status_kb(pid, "RssAnon"),
        threads: status_kb(pid, "Threads"),
        fds: fd_count(pid),
        per_thread: thread_ticks(pid),
    }
}

/// CPU % of one core between two samples.
fn cpu_percent(from: &Sample, to: &Sample, clk_tck: f64) -> f64 {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    (to.ticks.saturating_sub(from.ticks)) as f64 / clk_tck / secs * 100.0
}

/// CPU % of one core per thread name between two samples (threads of one name summed).
fn cpu_by_thread(from: &Sample, to: &Sample, clk_tck: f64) -> Vec<(String, usize, f64)> {
    let secs = to.at.duration_since(from.at).as_secs_f64();
    let mut by_name: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for (tid, (name, ticks)) in &to.per_thread {
        let before = from.per_thread.get(tid).map_or(0, |t| t.1);
        let e = by_name.entry(name.clone()).or_default();
        e.0 += 1;
        e.1 += ticks.saturating_sub(before);
    }
    let mut out: Vec<(String, usize, f64)> = by_name
        .into_iter()
        .map(|(name, (n, ticks))| (name, n, ticks as f64 / clk_tck / secs * 100.0))
        .collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

// ---------------------------------------------------------------------------------------------
// a) and b): N viewers

struct LoadResult {
    name: &'static str,
    /// The process measured: `stackctl`, or `str0m-sink`.
    process: &'static str,
    plan: LoadPlan,
    report: Report,
    /// CPU % of one core over the measured window.
    cpu: f64,
    cpu_window_s: f64,
    cpu_threads: Vec<(String, usize, f64)>,
    /// camsim and this process (the viewers), same window.
    camsim_cpu: Option<f64>,
    viewers_cpu: f64,
    idle_rss_kb: u64,
    idle_cpu: f64,
    rss_end_kb: u64,
    rss_peak_kb: u64,
    fds_idle: usize,
    fds_end: usize,
    threads_idle: u64,
    threads_end: u64,
    /// The sink's own counters over the run (stackctl's sink only; str0m-sink has none).
    sink_dropped: Option<f64>,
    sink_sent: Option<f64>,
    webrtc_errors: Option<f64>,
    sink_frame_latency_ms: Option<f64>,
    udp: BTreeMap<String, u64>,
    udp_window: BTreeMap<String, u64>,
    /// The whole host's busy CPU over the window, % of one core (all cores summed), and the
    /// part of it that is neither stackctl, camsim nor this process: other load on the machine.
    host_busy: f64,
    host_other: f64,
    log_problems: Vec<String>,
}

impl LoadResult {
    fn drops(&self) -> u64 {
        self.report.lost_packets
            + self.report.incomplete_frames
            + self.sink_dropped.unwrap_or(0.0) as u64
            + self
                .report
                .viewers
                .iter()
                .map(|v| v.frames_unread_dropped)
                .sum::<u64>()
    }

    fn json(&self) -> Value {
        let mut doc = json!({
            "viewers": self.plan.viewers,
            "duration_s": self.plan.duration.as_secs_f64(),
            "warmup_s": self.plan.warmup.as_secs_f64(),
            "ramp_ms": self.plan.ramp.as_secs_f64() * 1e3,
            "process": self.process,
            "measured": {
                "cpu_percent_of_one_core": self.cpu,
                "cpu_window_s": self.cpu_window_s,
                "cpu_by_thread": self.cpu_threads.iter().map(|(n, c, p)| json!({"name": n, "threads": c, "cpu_percent": p})).collect::<Vec<_>>(),
                "idle_cpu_percent": self.idle_cpu,
                "rss_anon_idle_kb": self.idle_rss_kb,
                "rss_anon_end_kb": self.rss_end_kb,
                "rss_anon_peak_kb": self.rss_peak_kb,
                "fds_idle": self.fds_idle,
                "fds_end": self.fds_end,
                "threads_idle": self.threads_idle,
                "threads_end": self.threads_end,
                "log_warnings_and_errors": self.log_problems,
            },
            "camsim_cpu_percent": self.camsim_cpu,
            "viewers_process_cpu_percent": self.viewers_cpu,
            "host_busy_cpu_percent": self.host_busy,
            "host_other_load_cpu_percent": self.host_other,
            "sink_metrics": {
                "streaming_frames_dropped_total": self.sink_dropped,
                "streaming_webrtc_frames_sent_total": self.sink_sent,
                "streaming_webrtc_errors_total": self.webrtc_errors,
                "streaming_frame_latency_ms_last": self.sink_frame_latency_ms,
            },
            "host_udp_counters_delta": self.udp,
            "host_udp_counters_delta_measured_window": self.udp_window,
            "frames_unread_dropped": self.report.viewers.iter().map(|v| v.frames_unread_dropped).sum::<u64>(),
            "viewerload": serde_json::to_value(&self.report).unwrap(),
        });
        // Under its own name, as before: `stackctl` or `str0m-sink`.
        let measured = doc["measured"].take();
        doc.as_object_mut().unwrap().remove("measured");
        doc[self.process.replace('-', "_")] = measured;
        doc
    }
}

fn load_scenario(
    runtime: &tokio::runtime::Runtime,
    bins: &Binaries,
    input: &Input,
    name: &'static str,
    plan: LoadPlan,
) -> LoadResult {
    eprintln!(
        "scenario {name}: {} viewers for {:?} (warm-up {:?})",
        plan.viewers, plan.duration, plan.warmup
    );
    let machine_tck = machine_clk_tck();
    let (stack, process): (Box<dyn UnderTest>, _) = if name == "str0m" {
        (Box::new(Str0mSink::start(bins, input, name)), "str0m-sink")
    } else {
        // The board's default (10), or as many as the scenario connects.
        let max_clients = plan.viewers.max(10);
        (
            Box::new(Stack::start(bins, input, name, max_clients)),
            "stackctl",
        )
    };
    let pid = stack.pid();
    // Idle: the camera streams, nobody watches.
    std::thread::sleep(Duration::from_secs(1));
    let idle0 = sample(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle1 = sample(pid);
    let idle_cpu = cpu_percent(&idle0, &idle1, machine_tck);
    let before = stack.sink_metrics();
    let udp_before = udp_counters();

    let opts = LoadOptions {
        viewer: ViewerOptions::new(stack.url()),
        viewers: plan.viewers,
        duration: plan.duration,
        ramp: plan.ramp,
        warmup: plan.warmup,
    };
    let started = Instant::now();
    let run = runtime.spawn(async move { viewerload::load::run(&opts).await });

    // The measured window: from the last viewer's warm-up end to just before the first
    // viewer's run ends.
    let ramp_total = plan.ramp * u32::try_from(plan.viewers.saturating_sub(1)).unwrap();
    let window_start = started + ramp_total + plan.warmup;
    let window_end = started + plan.duration - Duration::from_millis(200);
    sleep_until(window_start);
    let s0 = sample(pid);
    let udp0 = udp_counters();
    let host0 = host_jiffies();
    let camsim0 = stack.camsim().map(cpu_ticks);
    let me0 = cpu_ticks(std::process::id());
    let mut peak = s0.rss_anon_kb;
    while Instant::now() + Duration::from_secs(1) < window_end {
        std::thread::sleep(Duration::from_secs(1));
        peak = peak.max(status_kb(pid, "RssAnon"));
    }
    sleep_until(window_end);
    let s1 = sample(pid);
    let udp_window = counters_delta(&udp0, &udp_counters());
    let host1 = host_jiffies();
    let camsim1 = stack.camsim().map(cpu_ticks);
    let me1 = cpu_ticks(std::process::id());
    peak = peak.max(s1.rss_anon_kb);
    let secs = s1.at.duration_since(s0.at).as_secs_f64();

    // /proc/stat counts in USER_HZ like the per-process figures.
    let host_busy = (host1.0.saturating_sub(host0.0)) as f64 / machine_tck / secs * 100.0;
    let camsim_cpu = camsim0
        .zip(camsim1)
        .map(|(a, b)| (b.saturating_sub(a)) as f64 / machine_tck / secs * 100.0);
    let viewers_cpu = (me1.saturating_sub(me0)) as f64 / machine_tck / secs * 100.0;
    let cpu = cpu_percent(&s0, &s1, machine_tck);
    let host_other = (host_busy - cpu - viewers_cpu - camsim_cpu.unwrap_or(0.0)).max(0.0);

    let report = runtime.block_on(run).expect("the load run");
    let after = stack.sink_metrics();
    let udp = counters_delta(&udp_before, &udp_counters());
    let delta = |k: &str| {
        let (after, before) = (after.as_ref()?, before.as_ref()?);
        Some(after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0))
    };
    let result = LoadResult {
        name,
        process,
        plan,
        report,
        cpu,
        cpu_window_s: secs,
        cpu_threads: cpu_by_thread(&s0, &s1, machine_tck),
        camsim_cpu,
        viewers_cpu,
        idle_rss_kb: idle1.rss_anon_kb,
        idle_cpu,
        rss_end_kb: s1.rss_anon_kb,
        rss_peak_kb: peak,
        fds_idle: idle1.fds,
        fds_end: s1.fds,
        threads_idle: idle1.threads,
        threads_end: s1.threads,
        sink_dropped: delta("streaming_frames_dropped_total"),
        sink_sent: delta("streaming_webrtc_frames_sent_total"),
        webrtc_errors: delta("streaming_webrtc_errors_total"),
        sink_frame_latency_ms: after.as_ref().map(|m| {
            m.get("streaming_frame_latency_ms")
                .copied()
                .unwrap_or(f64::NAN)
        }),
        udp,
        udp_window,
        host_busy,
        host_other,
        log_problems: stack.problems(),
    };
    eprintln!("{}", result.report);
    drop(stack);
    result
}

fn machine_clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| machine().clk_tck)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

// ---------------------------------------------------------------------------------------------
// c) the soak

struct Point {
    label: String,
    rss_anon_kb: u64,
    fds: usize,
    threads: u64,
    fd_kinds: BTreeMap<String, usize>,
}

impl Point {
    fn take(pid: u32, label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            rss_anon_kb: status_kb(pid, "RssAnon"),
            fds: fd_count(pid),
            threads: status_kb(pid, "Threads"),
            fd_kinds: fd_kinds(pid),
        }
    }

    fn json(&self) -> Value {
        json!({"at": self.label, "rss_anon_kb": self.rss_anon_kb, "fds": self.fds,
               "threads": self.threads, "fd_kinds": self.fd_kinds})
    }
}

struct SoakResult {
    cycles: usize,
    warmup_cycles: usize,
    parallel: usize,
    failed: usize,
    errors: BTreeMap<String, usize>,
    cycle_ms: Vec<f64>,
    elapsed_s: f64,
    cold: Point,
    start: Point,
    trend: Vec<Point>,
    at_zero: Point,
    settled: Point,
    settle_s: f64,
    zero_after_s: f64,
    metrics_end: BTreeMap<String, f64>,
    /// `streaming_webrtc_errors_total` at `start`.
    errors_before: f64,
    idle_cpu_before: f64,
    idle_cpu_after: f64,
    log_problems: Vec<String>,
}

impl SoakResult {
    fn rss_diff_kb(&self) -> i64 {
        self.settled.rss_anon_kb as i64 - self.start.rss_anon_kb as i64
    }

    /// `streaming_webrtc_errors_total` over the measured cycles: failed writes, in practice a
    /// viewer's task writing to its connection after the `DELETE` closed it.
    fn write_errors(&self) -> f64 {
        self.metrics_end
            .get("streaming_webrtc_errors_total")
            .copied()
            .unwrap_or(0.0)
            - self.errors_before
    }

    fn fd_diff(&self) -> i64 {
        self.settled.fds as i64 - self.start.fds as i64
    }

    fn passed(&self) -> bool {
        self.rss_diff_kb().abs() <= 2048 && self.fd_diff() == 0
    }

    fn json(&self) -> Value {
        let mut ms = self.cycle_ms.clone();
        ms.sort_by(f64::total_cmp);
        json!({
            "cycles": self.cycles,
            "warmup_cycles_before_start": self.warmup_cycles,
            "parallel": self.parallel,
            "failed_cycles": self.failed,
            "errors": self.errors,
            "cycle_ms": {"p50": percentile(&ms, 50.0), "p90": percentile(&ms, 90.0), "max": percentile(&ms, 100.0)},
            "elapsed_s": self.elapsed_s,
            "cold_no_viewer_ever": self.cold.json(),
            "start": self.start.json(),
            "trend": self.trend.iter().map(Point::json).collect::<Vec<_>>(),
            "at_zero_clients": self.at_zero.json(),
            "zero_clients_after_s": self.zero_after_s,
            "end": self.settled.json(),
            "settle_s": self.settle_s,
            "rss_anon_diff_kb": self.rss_diff_kb(),
            "fd_diff": self.fd_diff(),
            "passed": self.passed(),
            "sink_metrics_end": self.metrics_end,
            "webrtc_errors_during_cycles": self.write_errors(),
            "idle_cpu_percent_before": self.idle_cpu_before,
            "idle_cpu_percent_after": self.idle_cpu_after,
            "log_warnings_and_errors": self.log_problems,
        })
    }
}

/// One connect / first frame / close; returns how long it took.
async fn cycle(url: String) -> Result<f64, String> {
    let started = Instant::now();
    let opts = ViewerOptions::new(url);
    let mut viewer = Viewer::connect(&opts)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let got = async {
        viewer
            .wait_connected(Duration::from_secs(10))
            .await
            .map_err(|e| format!("wait connected: {e}"))?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), viewer.next_frame()).await {
                Ok(Some(frame)) if frame.complete => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => return Err("connection ended before a frame".to_owned()),
                Err(_) => return Err("no frame within 10 s".to_owned()),
            }
        }
    }
    .await;
    let closed = viewer.close().await.map_err(|e| format!("close: {e}"));
    got?;
    closed?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// `count` cycles, `parallel` at a time.
fn cycles(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    count: usize,
    parallel: usize,
    mut progress: impl FnMut(usize),
) -> (Vec<f64>, BTreeMap<String, usize>) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..parallel {
        let (next, done, url) = (Arc::clone(&next), Arc::clone(&done), url.to_owned());
        workers.push(runtime.spawn(async move {
            let mut times = Vec::new();
            let mut errors = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                match cycle(url.clone()).await {
                    Ok(ms) => times.push(ms),
                    Err(e) => errors.push(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (times, errors)
        }));
    }
    let mut last = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let d = done.load(Ordering::Relaxed);
        if d != last {
            progress(d);
            last = d;
        }
    }
    let mut times = Vec::new();
    let mut errors = BTreeMap::new();
    for w in workers {
        let (t, e) = runtime.block_on(w).expect("soak worker");
        times.extend(t);
        for e in e {
            *errors.entry(e).or_default() += 1;
        }
    }
    (times, errors)
}

/// Every viewer the sink holds is gone: none connected, none in any state.
fn no_viewers(m: &HashMap<String, f64>) -> bool {
    m.get("streaming_active_clients").copied() == Some(0.0)
        && m.iter()
            .filter(|(k, _)| k.starts_with("webrtc_connections"))
            .all(|(_, v)| *v == 0.0)
}

fn soak(
    runtime: &tokio::runtime::Runtime,
    bins: &Binaries,
    input: &Input,
    plan: &Plan,
) -> SoakResult {
    eprintln!(
        "scenario c: soak, {} connect/close cycles, {} at a time",
        plan.soak_cycles, plan.soak_parallel
    );
    let stack = Stack::start(bins, input, "c", 10);
    let pid = stack.pid();
    let url = stack.url();
    std::thread::sleep(Duration::from_secs(2));
    let cold = Point::take(pid, "cold (no viewer yet)");
    // A few cycles first, so one-time allocations (thread pools, lazy tables) are not
    // mistaken for a leak; `cold` shows them.
    let (_, warm_errors) = cycles(runtime, &url, plan.soak_warmup_cycles, 1, |_| {});
    let wait_zero = || {
        let t = Instant::now();
        while !stack.try_metrics().is_some_and(|m| no_viewers(&m)) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "viewers still held 60 s after the soak: {:?}",
                stack.metrics()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t.elapsed()
    };
    wait_zero();
    let errors_before = stack
        .metrics()
        .get("streaming_webrtc_errors_total")
        .copied()
        .unwrap_or(0.0);
    let idle0 = sample(pid);
    std::thread::sleep(plan.soak_settle);
    let idle_before = cpu_percent(&idle0, &sample(pid), machine_clk_tck());
    let start = Point::take(
        pid,
        format!("start (after {} cycles)", plan.soak_warmup_cycles),
    );

    let started = Instant::now();
    let step = (plan.soak_cycles / 10).max(1);
    let mut trend = Vec::new();
    let mut next_mark = step;
    let (cycle_ms, mut errors) = cycles(runtime, &url, plan.soak_cycles, plan.soak_parallel, |d| {
        if d >= next_mark {
            trend.push(Point::take(pid, format!("{d} cycles")));
            next_mark = (d / step + 1) * step;
        }
    });
    let elapsed = started.elapsed();
    let zero_after = wait_zero();
    let at_zero = Point::take(pid, "0 clients");
    let idle1 = sample(pid);
    std::thread::sleep(plan.soak_settle);
    let idle_after = cpu_percent(&idle1, &sample(pid), machine_clk_tck());
    let settled = Point::take(pid, format!("0 clients + {:?}", plan.soak_settle));
    for (e, n) in warm_errors {
        *errors.entry(format!("(warm-up) {e}")).or_default() += n;
    }
    let m = stack.metrics();
    let metrics_end: BTreeMap<String, f64> = m
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("streaming_") || k.starts_with("webrtc_") && !k.contains("viewer=")
        })
        .filter(|(k, _)| !k.contains("_bucket"))
        .collect();
    let failed = errors.values().sum();
    let result = SoakResult {
        cycles: plan.soak_cycles,
        warmup_cycles: plan.soak_warmup_cycles,
        parallel: plan.soak_parallel,
        failed,
        errors,
        cycle_ms,
        elapsed_s: elapsed.as_secs_f64(),
        cold,
        start,
        trend,
        at_zero,
        settled,
        settle_s: plan.soak_settle.as_secs_f64(),
        zero_after_s: zero_after.as_secs_f64(),
        metrics_end,
        errors_before,
        idle_cpu_before: idle_before,
        idle_cpu_after: idle_after,
        log_problems: stack.log_problems(),
    };
    drop(stack);
    result
}

// ---------------------------------------------------------------------------------------------
// Markdown

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn yes(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**MISSED**" }
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    md: &mut String,
    plan: &Plan,
    machine: &Machine,
    bins: &Binaries,
    input: &Input,
    a: Option<&LoadResult>,
    str0m: Option<&LoadResult>,
    b: Option<&LoadResult>,
    c: Option<&SoakResult>,
    total: Duration,
) {
    let w = |md: &mut String, s: String| {
        md.push_str(&s);
        md.push('\n');
    };
    w(
        md,
        format!(
            "# stackctl streaming sink benchmark{}\n",
            if plan.quick { " (--quick)" } else { "" }
        ),
    );
    w(
        md,
        format!(
            "- machine: {} × {} ({} cores), Linux {}, load average at start {}\n- date: {}\n- clock ticks: {} per s\n- total time: {:.0} s",
            machine.cores,
            machine.model,
            machine.cores,
            machine.kernel,
            machine.loadavg,
            machine.date,
            machine.clk_tck,
            total.as_secs_f64()
        ),
    );
    for (p, age) in bins.ages() {
        w(md, format!("- binary: `{p}` ({age})"));
    }
    w(
        md,
        format!(
            "- input: `{}`: {} access units ({} IDR), {:.1} s at {FPS} fps, {:.0} kbit/s, made with `{}`",
            input.path.display(),
            input.access_units,
            input.idr,
            input.seconds(),
            input.kbps(),
            input.how
        ),
    );
    w(md, "- camsim `--input FILE --fps 30 --size 1920x1080`; sink `bind = [\"127.0.0.1\"]`, `max_clients` = the board's default 10 or the scenario's viewers (it sizes the sink's worker threads: one per 25), `rtp_timestamp_origin = \"monotonic\"`; viewers in-process (viewerload, 2 tokio workers), WHEP, loopback\n- MiB = 1024 kB as /proc reports; CPU = utime+stime of the process, % of one core\n".to_owned());

    if str0m.is_some() {
        w(md, "- `str0m`: the same camsim command run directly, `str0m-sink --shm ... --http 127.0.0.1:PORT --udp 127.0.0.1:0 --max-viewers 60` (str0m 0.25, aws-lc-rs crypto, one UDP socket, one thread; RTP time = capture `CLOCK_MONOTONIC` at 90 kHz)\n".to_owned());
    }
    for (r, targets) in [(a, true), (str0m, true), (b, false)] {
        if let Some(r) = r {
            load_table(md, r, targets);
        }
    }
    if let (Some(a), Some(s)) = (a, str0m) {
        comparison_table(md, a, s);
    }
    if let Some(c) = c {
        soak_table(md, c);
    }
}

fn load_table(md: &mut String, r: &LoadResult, ten: bool) {
    let rep = &r.report;
    let _ = writeln!(
        md,
        "## {}) {} viewers on {}, {:.0} s ({:.0} s warm-up excluded, ramp {:.0} ms)\n",
        r.name,
        r.plan.viewers,
        r.process,
        r.plan.duration.as_secs_f64(),
        r.plan.warmup.as_secs_f64(),
        r.plan.ramp.as_secs_f64() * 1e3
    );
    let _ = writeln!(
        md,
        "| figure | measured | target | |\n| --- | --- | --- | --- |"
    );
    let row = |md: &mut String, k: &str, v: String, t: &str, ok: Option<bool>| {
        let _ = writeln!(md, "| {k} | {v} | {t} | {} |", ok.map_or("", yes));
    };
    row(
        md,
        "viewers connected / with frames / failed",
        format!(
            "{} / {} / {}",
            rep.viewers_connected, rep.viewers_with_frames, rep.viewers_failed
        ),
        "",
        None,
    );
    match rep.latency_ms {
        Some(l) => {
            row(
                md,
                "latency p50",
                format!("{:.2} ms", l.p50),
                if ten { "≤ 3 ms" } else { "" },
                ten.then_some(l.p50 <= 3.0),
            );
            row(md, "latency p90", format!("{:.2} ms", l.p90), "", None);
            row(
                md,
                "latency p99",
                format!("{:.2} ms", l.p99),
                if ten { "≤ 10 ms" } else { "" },
                ten.then_some(l.p99 <= 10.0),
            );
            row(
                md,
                "latency max",
                format!("{:.2} ms ({} frames)", l.max, l.samples),
                "",
                None,
            );
        }
        None => row(
            md,
            "latency",
            format!("unavailable ({:?})", rep.latency_note),
            "",
            ten.then_some(false),
        ),
    }
    if let Some(f) = rep.fps {
        row(
            md,
            "fps per viewer min / mean / max",
            format!("{:.1} / {:.1} / {:.1}", f.min, f.mean, f.max),
            "30",
            None,
        );
    }
    let unread: u64 = rep.viewers.iter().map(|v| v.frames_unread_dropped).sum();
    row(
        md,
        "drops: packets lost / frames incomplete / sink frames dropped / unread",
        format!(
            "{} / {} / {} / {} (late packets {}, of {} packets, {} frames)",
            rep.lost_packets,
            rep.incomplete_frames,
            r.sink_dropped.map_or("n/a".to_owned(), |d| d.to_string()),
            unread,
            rep.late_packets,
            rep.packets,
            rep.total_frames
        ),
        if ten { "" } else { "no drops" },
        (!ten).then_some(r.drops() == 0 && rep.viewers_failed == 0),
    );
    if let Some(s) = rep.time_to_first_frame_ms {
        row(
            md,
            "time to first frame p50 / max",
            format!("{:.0} / {:.0} ms", s.p50, s.max),
            "",
            None,
        );
    }
    if let Some(s) = rep.connect_ms {
        row(
            md,
            "connect (to Connected) p50 / max",
            format!("{:.0} / {:.0} ms", s.p50, s.max),
            "",
            None,
        );
    }
    row(
        md,
        &format!("{} CPU (% of one core)", r.process),
        format!(
            "{:.1} % over {:.1} s (idle with camera, no viewer: {:.1} %)",
            r.cpu, r.cpu_window_s, r.idle_cpu
        ),
        if ten { "≤ 5 %" } else { "" },
        ten.then_some(r.cpu <= 5.0),
    );
    row(
        md,
        &format!("{} RssAnon at the end (peak)", r.process),
        format!(
            "{} ({}; no viewer: {})",
            mib(r.rss_end_kb),
            mib(r.rss_peak_kb),
            mib(r.idle_rss_kb)
        ),
        if ten { "≤ 25 MiB" } else { "" },
        ten.then_some(r.rss_end_kb <= 25 * 1024),
    );
    row(
        md,
        &format!("{} fds / threads (no viewer → end)", r.process),
        format!(
            "{} → {} / {} → {}",
            r.fds_idle, r.fds_end, r.threads_idle, r.threads_end
        ),
        "",
        None,
    );
    row(
        md,
        "camsim CPU / viewers' CPU (this process)",
        format!(
            "{} / {:.1} %",
            r.camsim_cpu.map_or("?".to_owned(), |c| format!("{c:.1} %")),
            r.viewers_cpu
        ),
        "",
        None,
    );
    row(
        md,
        &format!(
            "whole host busy / of which other load (not {}, camsim, viewers)",
            r.process
        ),
        format!(
            "{:.0} % / {:.0} % (% of one core; the host has {} cores)",
            r.host_busy,
            r.host_other,
            std::thread::available_parallelism().map_or(0, usize::from)
        ),
        "",
        None,
    );
    if let (Some(sent), Some(errors), Some(latency)) =
        (r.sink_sent, r.webrtc_errors, r.sink_frame_latency_ms)
    {
        row(
            md,
            "sink: frames sent / webrtc errors / last camera→sink latency",
            format!("{sent} / {errors} / {latency:.2} ms"),
            "",
            None,
        );
    }
    let g = |k: &str| r.udp.get(k).copied().unwrap_or(0);
    row(
        md,
        "host UDP, whole run (connects included): datagrams out / in / RcvbufErrors / SndbufErrors",
        format!(
            "{} / {} / {} / {}",
            g("OutDatagrams"),
            g("InDatagrams"),
            g("RcvbufErrors"),
            g("SndbufErrors")
        ),
        "",
        None,
    );
    let w = |k: &str| r.udp_window.get(k).copied().unwrap_or(0);
    row(
        md,
        "host UDP, measured window only: RcvbufErrors / SndbufErrors",
        format!("{} / {}", w("RcvbufErrors"), w("SndbufErrors")),
        "",
        None,
    );
    let threads: Vec<String> = r
        .cpu_threads
        .iter()
        .filter(|t| t.2 >= 0.05)
        .take(8)
        .map(|(n, c, p)| format!("{n}×{c} {p:.1} %"))
        .collect();
    row(
        md,
        &format!("{} CPU by thread", r.process),
        threads.join(", "),
        "",
        None,
    );
    for (e, n) in &rep.errors {
        row(md, "viewer error", format!("{n}× {e}"), "", None);
    }
    for p in r.log_problems.iter().take(10) {
        row(
            md,
            &format!("{} log", r.process),
            p.replace('|', "\\|"),
            "",
            None,
        );
    }
    md.push('\n');
}

/// The figures compared between the webrtc-rs sink (scenario a, stackctl) and str0m-sink:
/// (figure, JSON key, webrtc-rs, str0m), as text and as numbers.
fn comparison(a: &LoadResult, s: &LoadResult) -> Vec<(&'static str, &'static str, [Value; 2])> {
    let both = |f: &dyn Fn(&LoadResult) -> Value| [f(a), f(s)];
    let latency = |r: &LoadResult, pick: fn(&viewerload::report::LatencySummary) -> f64| {
        r.report
            .latency_ms
            .as_ref()
            .map_or(Value::Null, |l| json!(pick(l)))
    };
    let loss = |r: &LoadResult| {
        if r.report.packets == 0 {
            Value::Null
        } else {
            json!(
                r.report.lost_packets as f64 * 100.0
                    / (r.report.packets + r.report.lost_packets) as f64
            )
        }
    };
    vec![
        ("CPU, % of one core", "cpu_percent", both(&|r| json!(r.cpu))),
        (
            "CPU with the camera on, no viewer",
            "idle_cpu_percent",
            both(&|r| json!(r.idle_cpu)),
        ),
        (
            "latency p50, ms",
            "latency_p50_ms",
            both(&|r| latency(r, |l| l.p50)),
        ),
        (
            "latency p90, ms",
            "latency_p90_ms",
            both(&|r| latency(r, |l| l.p90)),
        ),
        (
            "latency p99, ms",
            "latency_p99_ms",
            both(&|r| latency(r, |l| l.p99)),
        ),
        (
            "latency max, ms",
            "latency_max_ms",
            both(&|r| latency(r, |l| l.max)),
        ),
        (
            "RssAnon at the end, MiB",
            "rss_anon_end_mib",
            both(&|r| json!(r.rss_end_kb as f64 / 1024.0)),
        ),
        (
            "RssAnon peak, MiB",
            "rss_anon_peak_mib",
            both(&|r| json!(r.rss_peak_kb as f64 / 1024.0)),
        ),
        (
            "fds / threads at the end",
            "fds_threads_end",
            both(&|r| json!([r.fds_end, r.threads_end])),
        ),
        (
            "fps per viewer, mean",
            "fps_mean",
            both(&|r| r.report.fps.as_ref().map_or(Value::Null, |f| json!(f.mean))),
        ),
        (
            "packets lost / received",
            "packets_lost_received",
            both(&|r| json!([r.report.lost_packets, r.report.packets])),
        ),
        ("packet loss, %", "packet_loss_percent", both(&loss)),
        (
            "frames incomplete",
            "frames_incomplete",
            both(&|r| json!(r.report.incomplete_frames)),
        ),
        (
            "viewers connected / failed",
            "viewers_connected_failed",
            both(&|r| json!([r.report.viewers_connected, r.report.viewers_failed])),
        ),
        (
            "time to first frame p50, ms",
            "time_to_first_frame_p50_ms",
            both(&|r| {
                r.report
                    .time_to_first_frame_ms
                    .as_ref()
                    .map_or(Value::Null, |t| json!(t.p50))
            }),
        ),
        (
            "connect (to Connected) p50, ms",
            "connect_p50_ms",
            both(&|r| {
                r.report
                    .connect_ms
                    .as_ref()
                    .map_or(Value::Null, |t| json!(t.p50))
            }),
        ),
        (
            "host UDP datagrams sent in the window (GSO sends count once)",
            "udp_out_datagrams_window",
            both(&|r| json!(r.udp_window.get("OutDatagrams").copied().unwrap_or(0))),
        ),
        (
            "host UDP RcvbufErrors in the window",
            "udp_rcvbuf_errors_window",
            both(&|r| json!(r.udp_window.get("RcvbufErrors").copied().unwrap_or(0))),
        ),
    ]
}

fn comparison_json(a: &LoadResult, s: &LoadResult) -> Value {
    let mut doc = serde_json::Map::new();
    for (_, key, [wa, ws]) in comparison(a, s) {
        doc.insert(key.to_owned(), json!({"webrtc_rs": wa, "str0m": ws}));
    }
    Value::Object(doc)
}

fn comparison_table(md: &mut String, a: &LoadResult, s: &LoadResult) {
    let show = |v: &Value| match v {
        Value::Null => "n/a".to_owned(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap_or(f64::NAN)),
        Value::Array(items) => items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        other => other.to_string(),
    };
    let _ = writeln!(
        md,
        "## webrtc-rs sink vs str0m, {} viewers\n\nThe same camsim input, viewers and window; \
         `stackctl` (the sink-webrtc plugin, scenario a) against `str0m-sink` (scenario str0m). \
         CPU and memory are each whole process's: the shared-memory reader included in both.\n",
        a.plan.viewers
    );
    let _ = writeln!(
        md,
        "| | webrtc-rs sink (stackctl) | str0m (str0m-sink) |\n| --- | --- | --- |"
    );
    for (label, _, [wa, ws]) in comparison(a, s) {
        let _ = writeln!(md, "| {label} | {} | {} |", show(&wa), show(&ws));
    }
    md.push('\n');
}

fn soak_table(md: &mut String, c: &SoakResult) {
    let _ = writeln!(
        md,
        "## c) soak: {} connect (WHEP, connected, 1 frame) / close (DELETE) cycles, {} at a time\n",
        c.cycles, c.parallel
    );
    let mut ms = c.cycle_ms.clone();
    ms.sort_by(f64::total_cmp);
    let _ = writeln!(
        md,
        "{} cycles in {:.1} s, {} failed; a cycle took p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms; \
         the sink held no viewer {:.1} s after the last close.\n",
        c.cycles,
        c.elapsed_s,
        c.failed,
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 100.0),
        c.zero_after_s
    );
    for (e, n) in &c.errors {
        let _ = writeln!(md, "- error {n}×: {e}");
    }
    let _ = writeln!(
        md,
        "| stackctl at | RssAnon | fds | threads | fds by kind |\n| --- | --- | --- | --- | --- |"
    );
    let kinds = |k: &BTreeMap<String, usize>| {
        k.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for p in std::iter::once(&c.cold)
        .chain(std::iter::once(&c.start))
        .chain(&c.trend)
        .chain([&c.at_zero, &c.settled])
    {
        let _ = writeln!(
            md,
            "| {} | {} ({} kB) | {} | {} | {} |",
            p.label,
            mib(p.rss_anon_kb),
            p.rss_anon_kb,
            p.fds,
            p.threads,
            kinds(&p.fd_kinds)
        );
    }
    let _ = writeln!(
        md,
        "\n| figure | start → end | difference | target | |\n| --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        md,
        "| RssAnon | {} kB → {} kB | {:+} kB ({:+.0} B per cycle) | ± 2 MiB | {} |",
        c.start.rss_anon_kb,
        c.settled.rss_anon_kb,
        c.rss_diff_kb(),
        c.rss_diff_kb() as f64 * 1024.0 / c.cycles as f64,
        yes(c.rss_diff_kb().abs() <= 2048)
    );
    let _ = writeln!(
        md,
        "| open fds | {} → {} | {:+} | equal | {} |",
        c.start.fds,
        c.settled.fds,
        c.fd_diff(),
        yes(c.fd_diff() == 0)
    );
    let _ = writeln!(
        md,
        "| RssAnon from cold (before any viewer) | {} kB → {} kB | {:+} kB | (context) | |",
        c.cold.rss_anon_kb,
        c.settled.rss_anon_kb,
        c.settled.rss_anon_kb as i64 - c.cold.rss_anon_kb as i64
    );
    let keys = [
        "streaming_total_clients",
        "webrtc_viewers_removed_total{reason=\"closed\"}",
        "webrtc_viewers_removed_total{reason=\"failed\"}",
        "streaming_webrtc_errors_total",
        "streaming_active_clients",
    ];
    let metrics: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "`{k}` {}",
                c.metrics_end.get(*k).copied().unwrap_or(f64::NAN)
            )
        })
        .collect();
    let _ = writeln!(md, "\nsink at the end: {}\n", metrics.join(", "));
    let _ = writeln!(
        md,
        "`streaming_webrtc_errors_total` during the {} cycles: {} (failed writes to a closed \
         connection); stackctl CPU with the camera on and no viewer: {:.1} % before the cycles, \
         {:.1} % after\n",
        c.cycles,
        c.write_errors(),
        c.idle_cpu_before,
        c.idle_cpu_after
    );
    for p in c.log_problems.iter().take(10) {
        let _ = writeln!(md, "- stackctl log: {p}");
    }
    let _ = writeln!(
        md,
        "\nsoak: **{}**",
        if c.passed() { "passed" } else { "FAILED" }
    );
}
