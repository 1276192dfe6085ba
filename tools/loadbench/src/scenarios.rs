//! The scenarios: viewers watching (joining at once, or ramped), the soak (connect / close
//! cycles), the camera with nobody watching, and the capacity limit.
//!
//! Viewers are `viewerload`'s webrtc-rs peers in this process, with webrtc-rs's default
//! interceptors: receiver reports every second, NACKs for what they lose, TWCC feedback, as a
//! browser sends them; so the sink answers RTCP as it would for browsers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use viewerload::{LoadOptions, Report, Viewer, ViewerOptions};

use crate::input::Input;
use crate::procfs::{self, Sample};
use crate::stacks::{Running, SinkSetup, Variant};

/// How many viewers, for how long.
#[derive(Debug, Clone, Copy)]
pub struct LoadPlan {
    /// Viewers.
    pub viewers: usize,
    /// How long each watches.
    pub duration: Duration,
    /// The start of each viewer's run left out of the figures.
    pub warmup: Duration,
    /// Between two viewers' starts (zero: all at once).
    pub ramp: Duration,
    /// The sink's setup.
    pub setup: SinkSetup,
    /// Once the window starts (every viewer connected), one more viewer tries: it must be
    /// refused (the capacity scenario).
    pub one_more: bool,
}

/// What a load scenario measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Which variant.
    pub variant: String,
    /// The plan.
    pub plan: LoadPlan,
    /// What the viewers saw.
    pub report: Report,
    /// CPU of the process measured, % of one core, over the window.
    pub cpu: f64,
    /// The window, seconds.
    pub window_s: f64,
    /// CPU by thread name.
    pub cpu_threads: Vec<(String, usize, f64)>,
    /// CPU with the camera on and no viewer, before.
    pub idle_cpu: f64,
    /// `RssAnon`, kB: no viewer, at the end of the window, peak.
    pub rss_idle_kb: u64,
    /// At the end of the window.
    pub rss_end_kb: u64,
    /// The peak, sampled every second.
    pub rss_peak_kb: u64,
    /// Descriptors: no viewer, end.
    pub fds: (usize, usize),
    /// Threads: no viewer, end.
    pub threads: (u64, u64),
    /// The viewers' process (this one) and camsim, % of one core.
    pub viewers_cpu: f64,
    /// camsim's CPU.
    pub camsim_cpu: Option<f64>,
    /// The whole host's busy CPU, and the part that is none of the above.
    pub host_busy: f64,
    /// Other load on the machine.
    pub host_other: f64,
    /// The sink's counters over the run (stackctl only).
    pub sink: BTreeMap<&'static str, f64>,
    /// The host's UDP counters over the window.
    pub udp: BTreeMap<String, u64>,
    /// Warnings and errors logged.
    pub problems: Vec<String>,
    /// What the viewer beyond `max_clients` got: its status and message.
    pub one_more: Option<Result<(u16, Option<String>), String>>,
}

impl LoadResult {
    /// Frames lost: never complete at a viewer, dropped by the sink, or not read by the
    /// viewer in time.
    pub fn frames_lost(&self) -> u64 {
        let unread: u64 = self
            .report
            .viewers
            .iter()
            .map(|v| v.frames_unread_dropped)
            .sum();
        self.report.incomplete_frames
            + self.sink.get("frames_dropped").copied().unwrap_or(0.0) as u64
            + unread
    }

    /// For the report.
    pub fn json(&self) -> Value {
        json!({
            "variant": self.variant,
            "viewers": self.plan.viewers,
            "duration_s": self.plan.duration.as_secs_f64(),
            "warmup_s": self.plan.warmup.as_secs_f64(),
            "ramp_ms": self.plan.ramp.as_secs_f64() * 1e3,
            "max_clients": self.plan.setup.max_clients,
            "threads": self.plan.setup.threads,
            "cpu_percent": self.cpu,
            "window_s": self.window_s,
            "cpu_by_thread": self.cpu_threads.iter().map(|(n, c, p)| json!({"name": n, "threads": c, "cpu_percent": p})).collect::<Vec<_>>(),
            "idle_cpu_percent": self.idle_cpu,
            "rss_anon_kb": {"idle": self.rss_idle_kb, "end": self.rss_end_kb, "peak": self.rss_peak_kb},
            "fds": [self.fds.0, self.fds.1],
            "threads_count": [self.threads.0, self.threads.1],
            "viewers_process_cpu_percent": self.viewers_cpu,
            "camsim_cpu_percent": self.camsim_cpu,
            "host_busy_percent": self.host_busy,
            "host_other_percent": self.host_other,
            "sink": self.sink,
            "udp_window": self.udp,
            "frames_lost": self.frames_lost(),
            "one_more": self.one_more.as_ref().map(|r| match r {
                Ok((status, message)) => json!({"status": status, "message": message}),
                Err(e) => json!({"error": e}),
            }),
            "problems": self.problems,
            "viewerload": serde_json::to_value(&self.report).unwrap_or(Value::Null),
        })
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The sink counters a scenario reports, by short name.
const SINK_COUNTERS: [(&str, &str); 6] = [
    ("frames_dropped", "streaming_frames_dropped_total"),
    ("frames_sent", "streaming_webrtc_frames_sent_total"),
    ("webrtc_errors", "streaming_webrtc_errors_total"),
    ("udp_datagrams", "webrtc_udp_datagrams_sent_total"),
    ("udp_send_calls", "webrtc_udp_send_calls_total"),
    ("worker_frames_lost", "webrtc_worker_frames_lost_total"),
];

/// `viewers` watch `variant` on `input`.
pub fn load(
    runtime: &tokio::runtime::Runtime,
    variant: &Variant,
    input: &Input,
    plan: LoadPlan,
) -> anyhow::Result<LoadResult> {
    eprintln!(
        "{}: {} viewers for {:?} (warm-up {:?}, ramp {:?})",
        variant.name, plan.viewers, plan.duration, plan.warmup, plan.ramp
    );
    let running = Running::start(variant, input, plan.setup)?;
    let pid = running.pid();
    std::thread::sleep(Duration::from_secs(1));
    let idle0 = Sample::take(pid);
    std::thread::sleep(Duration::from_secs(3));
    let idle1 = Sample::take(pid);
    let before = running.metrics();
    let opts = LoadOptions {
        viewer: ViewerOptions::new(running.url()),
        viewers: plan.viewers,
        duration: plan.duration,
        ramp: plan.ramp,
        warmup: plan.warmup,
    };
    let started = Instant::now();
    let run = runtime.spawn(async move { viewerload::load::run(&opts).await });
    // The window: from the last viewer's warm-up end to just before the first viewer's end.
    let ramp_total = plan.ramp * u32::try_from(plan.viewers.saturating_sub(1)).unwrap_or(0);
    let window_end = started + plan.duration - Duration::from_millis(200);
    sleep_until(started + ramp_total + plan.warmup);
    let one_more = plan.one_more.then(|| one_too_many(runtime, &running.url()));
    let s0 = Sample::take(pid);
    let (udp0, host0) = (procfs::udp_counters(), procfs::host_jiffies());
    let camsim0 = running.camsim().map(procfs::cpu_ticks);
    let me0 = procfs::cpu_ticks(std::process::id());
    let mut peak = s0.rss_anon_kb;
    while Instant::now() + Duration::from_secs(1) < window_end {
        std::thread::sleep(Duration::from_secs(1));
        peak = peak.max(procfs::status_kb(pid, "RssAnon"));
    }
    sleep_until(window_end);
    let s1 = Sample::take(pid);
    let udp = procfs::delta(&udp0, &procfs::udp_counters());
    let host1 = procfs::host_jiffies();
    let camsim1 = running.camsim().map(procfs::cpu_ticks);
    let me1 = procfs::cpu_ticks(std::process::id());
    let secs = s1.at.duration_since(s0.at).as_secs_f64();
    let tck = procfs::clk_tck();
    let pct = |ticks: u64| ticks as f64 / tck / secs * 100.0;
    let host_busy = pct(host1.0.saturating_sub(host0.0));
    let camsim_cpu = camsim0.zip(camsim1).map(|(a, b)| pct(b.saturating_sub(a)));
    let viewers_cpu = pct(me1.saturating_sub(me0));
    let cpu = s0.cpu_to(&s1);
    let report = runtime.block_on(run)?;
    let after = running.metrics();
    let mut sink = BTreeMap::new();
    if let (Some(before), Some(after)) = (&before, &after) {
        for (short, name) in SINK_COUNTERS {
            let get = |m: &HashMap<String, f64>| m.get(name).copied().unwrap_or(0.0);
            sink.insert(short, get(after) - get(before));
        }
    }
    eprintln!("{report}");
    let problems = running.stop();
    Ok(LoadResult {
        variant: variant.name.clone(),
        plan,
        report,
        cpu,
        window_s: secs,
        cpu_threads: s0.cpu_by_thread_to(&s1),
        idle_cpu: idle0.cpu_to(&idle1),
        rss_idle_kb: idle1.rss_anon_kb,
        rss_end_kb: s1.rss_anon_kb,
        rss_peak_kb: peak.max(s1.rss_anon_kb),
        fds: (idle1.fds, s1.fds),
        threads: (idle1.threads, s1.threads),
        viewers_cpu,
        camsim_cpu,
        host_busy,
        host_other: (host_busy - cpu - viewers_cpu - camsim_cpu.unwrap_or(0.0)).max(0.0),
        sink,
        udp,
        problems,
        one_more,
    })
}

/// The camera on, nobody watching: CPU over `window` after a settling second.
pub fn idle(variant: &Variant, input: &Input, window: Duration) -> anyhow::Result<(f64, u64)> {
    eprintln!("{}: idle for {window:?}", variant.name);
    let running = Running::start(variant, input, SinkSetup::BOARD)?;
    std::thread::sleep(Duration::from_secs(2));
    let s0 = Sample::take(running.pid());
    std::thread::sleep(window);
    let s1 = Sample::take(running.pid());
    running.stop();
    Ok((s0.cpu_to(&s1), s1.rss_anon_kb))
}

/// A point of the soak.
#[derive(Debug, Clone)]
pub struct Point {
    /// When.
    pub label: String,
    /// `RssAnon`, kB.
    pub rss_anon_kb: u64,
    /// Descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: u64,
    /// Descriptors by kind.
    pub fd_kinds: BTreeMap<String, usize>,
}

impl Point {
    fn take(pid: u32, label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            rss_anon_kb: procfs::status_kb(pid, "RssAnon"),
            fds: procfs::fd_count(pid),
            threads: procfs::status_kb(pid, "Threads"),
            fd_kinds: procfs::fd_kinds(pid),
        }
    }

    fn json(&self) -> Value {
        json!({"at": self.label, "rss_anon_kb": self.rss_anon_kb, "fds": self.fds,
               "threads": self.threads, "fd_kinds": self.fd_kinds})
    }
}

/// What the soak measured.
#[derive(Debug)]
pub struct SoakResult {
    /// Which variant.
    pub variant: String,
    /// Cycles, and how many at a time.
    pub cycles: usize,
    /// At a time.
    pub parallel: usize,
    /// Cycles that failed, by error.
    pub errors: BTreeMap<String, usize>,
    /// Each cycle's time, ms.
    pub cycle_ms: Vec<f64>,
    /// After the warm-up cycles, before the measured ones.
    pub start: Point,
    /// Along the way.
    pub trend: Vec<Point>,
    /// No viewer left, and settled.
    pub end: Point,
    /// CPU with nobody watching, after.
    pub idle_cpu_after: f64,
    /// Warnings and errors logged.
    pub problems: Vec<String>,
}

impl SoakResult {
    /// `RssAnon` end − start, kB.
    pub fn rss_diff_kb(&self) -> i64 {
        self.end.rss_anon_kb as i64 - self.start.rss_anon_kb as i64
    }

    /// Descriptors end − start.
    pub fn fd_diff(&self) -> i64 {
        self.end.fds as i64 - self.start.fds as i64
    }

    /// For the report.
    pub fn json(&self) -> Value {
        let mut ms = self.cycle_ms.clone();
        ms.sort_by(f64::total_cmp);
        let p = |q| viewerload::report::percentile(&ms, q);
        json!({
            "variant": self.variant,
            "cycles": self.cycles,
            "parallel": self.parallel,
            "errors": self.errors,
            "cycle_ms": {"p50": p(50.0), "p90": p(90.0), "max": p(100.0)},
            "start": self.start.json(),
            "trend": self.trend.iter().map(Point::json).collect::<Vec<_>>(),
            "end": self.end.json(),
            "rss_anon_diff_kb": self.rss_diff_kb(),
            "fd_diff": self.fd_diff(),
            "idle_cpu_after": self.idle_cpu_after,
            "problems": self.problems,
        })
    }
}

/// One connect / first frame / close; how long it took.
async fn cycle(url: String) -> Result<f64, String> {
    let started = Instant::now();
    let mut viewer = Viewer::connect(&ViewerOptions::new(url))
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

/// `count` cycles, `parallel` at a time; calls `progress` with the cycles done.
fn cycles(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    count: usize,
    parallel: usize,
    mut progress: impl FnMut(usize),
) -> (Vec<f64>, BTreeMap<String, usize>) {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (next, done, url) = (Arc::clone(&next), Arc::clone(&done), url.to_owned());
            runtime.spawn(async move {
                let (mut times, mut errors) = (Vec::new(), Vec::new());
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    match cycle(url.clone()).await {
                        Ok(ms) => times.push(ms),
                        Err(e) => errors.push(e),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (times, errors)
            })
        })
        .collect();
    let mut last = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let d = done.load(Ordering::Relaxed);
        if d != last {
            progress(d);
            last = d;
        }
    }
    let (mut times, mut errors) = (Vec::new(), BTreeMap::new());
    for w in workers {
        if let Ok((t, e)) = runtime.block_on(w) {
            times.extend(t);
            for e in e {
                *errors.entry(e).or_default() += 1;
            }
        }
    }
    (times, errors)
}

/// Waits until the sink holds no viewer in any state (at most a minute).
fn wait_no_viewers(running: &Running) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        let none = running.metrics().is_none_or(|m| {
            m.get("streaming_active_clients").copied() == Some(0.0)
                && m.iter()
                    .filter(|(k, _)| k.starts_with("webrtc_connections"))
                    .all(|(_, v)| *v == 0.0)
        });
        if none {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cycles` connect / first frame / close cycles, `parallel` at a time: memory and descriptors
/// before and after.
pub fn soak(
    runtime: &tokio::runtime::Runtime,
    variant: &Variant,
    input: &Input,
    cycles_n: usize,
    parallel: usize,
    settle: Duration,
) -> anyhow::Result<SoakResult> {
    eprintln!(
        "{}: soak, {cycles_n} cycles, {parallel} at a time",
        variant.name
    );
    let mut running = Running::start(variant, input, SinkSetup::BOARD)?;
    let (pid, url) = (running.pid(), running.url());
    // A few cycles first, so that one-time allocations are not taken for a leak.
    let (_, warm_errors) = cycles(runtime, &url, 10, 1, |_| {});
    wait_no_viewers(&running);
    std::thread::sleep(settle);
    let start = Point::take(pid, "start (after 10 cycles)");
    let step = (cycles_n / 10).max(1);
    let (mut trend, mut next_mark) = (Vec::new(), step);
    let (cycle_ms, mut errors) = cycles(runtime, &url, cycles_n, parallel, |d| {
        if d >= next_mark {
            trend.push(Point::take(pid, format!("{d} cycles")));
            next_mark = (d / step + 1) * step;
        }
    });
    wait_no_viewers(&running);
    let s0 = Sample::take(pid);
    std::thread::sleep(settle);
    let s1 = Sample::take(pid);
    let end = Point::take(pid, format!("no viewer + {settle:?}"));
    for (e, n) in warm_errors {
        *errors.entry(format!("(warm-up) {e}")).or_default() += n;
    }
    let problems = running.problems();
    drop(running.stop());
    Ok(SoakResult {
        variant: variant.name.clone(),
        cycles: cycles_n,
        parallel,
        errors,
        cycle_ms,
        start,
        trend,
        end,
        idle_cpu_after: s0.cpu_to(&s1),
        problems,
    })
}

/// `max_clients` viewers connect (ramped), then one more must be refused with 503.
pub fn one_too_many(
    runtime: &tokio::runtime::Runtime,
    url: &str,
) -> Result<(u16, Option<String>), String> {
    runtime.block_on(async {
        match Viewer::connect(&ViewerOptions::new(url)).await {
            Ok(viewer) => {
                let _ = viewer.close().await;
                Err("the viewer beyond max_clients was answered".to_owned())
            }
            Err(e) => Ok((
                e.status().unwrap_or(0),
                e.server_message().map(str::to_owned),
            )),
        }
    })
}
