//! What supervision costs, measured on the real `stackctl up`:
//!
//! 1. **death → replacement exec**: a service (this very program, run with `--child`) stamps
//!    `CLOCK_MONOTONIC` when it starts and again just before it exits with code 1; stackctl
//!    restarts it with a back-off of `initial`. The figure is `next start − death − initial`.
//! 2. **idle cost**: stackctl's CPU time and resident memory while it supervises four sleeping
//!    services (liveness probes off) for `--idle-secs` seconds.
//! 3. **READY overhead**: a service creates its ready file 0.7 s after it starts (stamping the
//!    time); the figure is
//!    from that stamp to `READY=1` arriving on a test `NOTIFY_SOCKET`.
//!
//! Run: `cargo bench -p stackctl-tests --bench supervisor` (builds `stackctl` first with
//! `cargo build -p stackctl --release` if you want release figures: the bench uses the binary
//! of the profile it is built with).
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use stackctl_media::clock::monotonic_ns;
use stackctl_tests::bin;

const RESTARTS: usize = 40;
const BACKOFF_MS: u64 = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2..]);
    }
    let quick = !args.iter().any(|a| a == "--bench");
    let idle_secs = if quick { 2 } else { 20 };
    let dir = tempfile::tempdir().expect("tempdir");
    println!(
        "stackctl supervision benchmark ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    restart_latency(dir.path(), if quick { 10 } else { RESTARTS });
    idle_cost(dir.path(), idle_secs);
    let mut overheads: Vec<f64> = (0..if quick { 1 } else { 7 })
        .map(|_| ready_overhead(dir.path()))
        .collect();
    overheads.sort_by(f64::total_cmp);
    println!(
        "service ready -> READY=1 over {} starts: median {:.1} ms, max {:.1} ms",
        overheads.len(),
        percentile(&overheads, 0.5),
        percentile(&overheads, 1.0)
    );
}

/// The service side: `--child crash FILE` appends "start" then "death" stamps and exits 1;
/// `--child ready FILE` stamps then creates FILE and sleeps.
fn child(args: &[String]) {
    let start = monotonic_ns();
    let (mode, file) = (args[0].as_str(), Path::new(&args[1]));
    match mode {
        "crash" => {
            let line = format!("{start} {}\n", monotonic_ns());
            append(file, &line);
            std::process::exit(1);
        }
        _ => {
            // Take a while to get ready, as a real service does, so the figure includes the
            // probe's polling rather than a file that already exists at the first look.
            std::thread::sleep(Duration::from_millis(700));
            let stamp = monotonic_ns();
            std::fs::write(file.with_extension("stamp"), stamp.to_string()).expect("stamp");
            std::fs::write(file, b"").expect("ready file");
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

fn append(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(line.as_bytes()).expect("append");
}

fn config(dir: &Path, services: &str) -> std::path::PathBuf {
    let path = dir.join("stackctl.toml");
    let toml = format!(
        "[control]\nsocket = {:?}\n[http]\nhost = \"127.0.0.1\"\nport = {}\n[metrics]\nport = 0\n{services}",
        dir.join("s.sock").display().to_string(),
        free_port()
    );
    std::fs::write(&path, toml).expect("config");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn up(config: &Path, notify: Option<&Path>) -> std::process::Child {
    let mut cmd = Command::new(bin("stackctl"));
    cmd.arg("up")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(socket) = notify {
        cmd.env("NOTIFY_SOCKET", socket);
    }
    cmd.spawn().expect("stackctl up")
}

fn stop(mut up: std::process::Child) {
    let _ = Command::new("kill").arg(up.id().to_string()).status();
    let _ = up.wait();
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn restart_latency(dir: &Path, restarts: usize) {
    let stamps = dir.join("crash.log");
    let me = std::env::current_exe().expect("own path");
    let services = format!(
        "[services.crasher]\ncommand = {:?}\nargs = [\"--child\", \"crash\", {:?}]\nrestart = \"always\"\n\
         backoff = {{ initial = \"{BACKOFF_MS}ms\", max = \"{BACKOFF_MS}ms\", jitter = 0.0 }}\n\
         max_restarts = 100000\nrestart_window = \"1s\"\n",
        me.display().to_string(),
        stamps.display().to_string()
    );
    let up = up(&config(dir, &services), None);
    let lines = loop {
        let text = std::fs::read_to_string(&stamps).unwrap_or_default();
        if text.lines().count() > restarts {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop(up);
    let runs: Vec<(u64, u64)> = lines
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .collect();
    let mut delays: Vec<f64> = runs
        .windows(2)
        .map(|w| (w[1].0 as f64 - w[0].1 as f64) / 1e6 - BACKOFF_MS as f64)
        .collect();
    delays.sort_by(f64::total_cmp);
    println!(
        "death -> replacement exec, minus the {BACKOFF_MS} ms back-off, {} restarts: p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        delays.len(),
        percentile(&delays, 0.5),
        percentile(&delays, 0.9),
        percentile(&delays, 1.0)
    );
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("comm")
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn idle_cost(dir: &Path, secs: u64) {
    let services: String = (1..=4)
        .map(|i| format!("[services.s{i}]\ncommand = \"sleep\"\nargs = [\"3600\"]\n"))
        .collect();
    let up = up(&config(dir, &services), None);
    std::thread::sleep(Duration::from_secs(2));
    let ticks = proc_cpu_ticks(up.id());
    std::thread::sleep(Duration::from_secs(secs));
    let used = proc_cpu_ticks(up.id()) - ticks;
    let rss = rss_kib(up.id());
    let hz = 100.0;
    println!(
        "idle, 4 services, {secs} s: CPU {:.3} % of a core, RSS {:.1} MB",
        used as f64 / hz / secs as f64 * 100.0,
        rss as f64 / 1024.0
    );
    stop(up);
}

/// One `up` whose service gets ready after 0.7 s; returns ms from ready to `READY=1`.
fn ready_overhead(dir: &Path) -> f64 {
    let me = std::env::current_exe().expect("own path");
    let ready = dir.join("ready.flag");
    let _ = std::fs::remove_file(&ready);
    let _ = std::fs::remove_file(ready.with_extension("stamp"));
    let services = format!(
        "[services.slow]\ncommand = {:?}\nargs = [\"--child\", \"ready\", {:?}]\nready = {{ file = {:?} }}\n",
        me.display().to_string(),
        ready.display().to_string(),
        ready.display().to_string()
    );
    let socket_path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let up = up(&config(dir, &services), Some(&socket_path));
    let mut buf = [0u8; 512];
    let arrived = loop {
        let n = socket.recv(&mut buf).expect("READY=1 within 30 s");
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            break monotonic_ns();
        }
    };
    let stamp: u64 = std::fs::read_to_string(ready.with_extension("stamp"))
        .expect("stamp")
        .trim()
        .parse()
        .expect("ns");
    stop(up);
    (arrived - stamp) as f64 / 1e6
}
