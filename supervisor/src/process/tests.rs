//! The misbehaviours supervisors' users keep hitting, with real processes: `sh` scripts in a
//! temporary directory. Nothing sleeps to synchronise: the tests await lines and exits, with a
//! generous timeout only as a hang guard.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::*;

const HANG_GUARD: Duration = Duration::from_secs(30);

async fn guard<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(HANG_GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("hung: {what}"),
    }
}

/// A running script, its log and a follower subscribed before it started.
struct Running {
    child: Child,
    ring: Arc<LogRing>,
    lines: broadcast::Receiver<LogLine>,
    _dir: TempDir,
}

fn script(name: &str, body: &str) -> (TempDir, ProcessSpec) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.sh"));
    std::fs::write(&path, body).unwrap();
    let spec = ProcessSpec {
        name: name.into(),
        program: "/bin/sh".into(),
        args: vec![path.to_string_lossy().into_owned()],
        ..ProcessSpec::default()
    };
    (dir, spec)
}

async fn run(name: &str, body: &str) -> Running {
    let (dir, spec) = script(name, body);
    run_spec(dir, &spec).await
}

async fn run_spec(dir: TempDir, spec: &ProcessSpec) -> Running {
    let ring = Arc::new(LogRing::new(100));
    let lines = ring.subscribe();
    let reaper = Reaper::start().unwrap();
    let child = guard("spawn", reaper.spawn(spec, Arc::clone(&ring)))
        .await
        .unwrap();
    Running {
        child,
        ring,
        lines,
        _dir: dir,
    }
}

impl Running {
    /// Awaits the first line starting with `prefix`.
    async fn line(&mut self, prefix: &str) -> String {
        guard(prefix, async {
            loop {
                let line = self.lines.recv().await.unwrap();
                if line.text.starts_with(prefix) {
                    return line.text;
                }
            }
        })
        .await
    }

    async fn wait(&self) -> Exit {
        guard("wait", self.child.wait()).await
    }

    async fn stop(&mut self, timeout: Duration) -> StopReport {
        guard("stop", self.child.stop(Signal::SIGTERM, timeout)).await
    }

    fn texts(&self, stream: Stream) -> Vec<String> {
        let lines = self.ring.snapshot(100).into_iter();
        lines
            .filter(|line| line.stream == stream)
            .map(|line| line.text)
            .collect()
    }
}

/// The pid at the end of a line such as `grandchild 1234`.
fn pid_in(line: &str) -> u32 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The parent pid, from /proc/<pid>/stat ("pid (comm) state ppid ...").
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn exits_zero_is_success() {
    let running = run("zero", "exit 0").await;
    let exit = running.wait().await;
    assert_eq!(exit, Exit::Code(0));
    assert_eq!(
        classify(exit, running.child.stop_requested()),
        ExitClass::Success
    );
}

#[tokio::test]
async fn exits_three_is_failure() {
    let running = run("three", "exit 3").await;
    let exit = running.wait().await;
    assert_eq!(exit, Exit::Code(3));
    assert_eq!(classify(exit, None), ExitClass::Failure);
}

#[tokio::test]
async fn killed_by_sigsegv_is_failure() {
    let running = run("segv", "ulimit -c 0\nkill -SEGV $$").await;
    let exit = running.wait().await;
    assert_eq!(exit, Exit::Signal(Signal::SIGSEGV as i32));
    assert_eq!(classify(exit, None), ExitClass::Failure);
}

#[tokio::test]
async fn ignores_sigterm_is_killed_after_the_timeout() {
    let mut running = run("stubborn", "trap '' TERM\necho ready\nexec sleep 1000").await;
    running.line("ready").await;
    let report = running.stop(Duration::from_millis(200)).await;
    assert!(report.killed);
    assert_eq!(report.exit, Some(Exit::Signal(Signal::SIGKILL as i32)));
    assert_eq!(report.class, Some(ExitClass::Stopped));
    assert!(report.group_empty);
}

#[tokio::test]
async fn exits_143_after_sigterm_is_a_clean_stop() {
    // The background job says "ready" only once it runs a fresh `sh`: until that exec it is a
    // copy of this shell with its trap, and would swallow the SIGTERM.
    let body = "trap 'exit 143' TERM\nsh -c 'echo ready; exec sleep 1000' &\nwait";
    let mut running = run("exit143", body).await;
    running.line("ready").await;
    let report = running.stop(Duration::from_secs(10)).await;
    assert_eq!(report.exit, Some(Exit::Code(143)));
    assert_eq!(report.class, Some(ExitClass::Stopped));
    assert!(!report.killed);
    assert!(report.group_empty);
}

#[tokio::test]
async fn double_fork_grandchild_is_killed_and_reaped() {
    // The subshell exits at once, so its `sleep` is reparented to us, the subreaper.
    let body = "(sleep 1000 & echo \"grandchild $!\")\necho ready\nexec sleep 1000";
    let mut running = run("doublefork", body).await;
    let grandchild = pid_in(&running.line("grandchild").await);
    running.line("ready").await;
    assert_eq!(parent_of(grandchild), std::process::id());

    let report = running.stop(Duration::from_secs(10)).await;
    assert_eq!(report.class, Some(ExitClass::Stopped));
    assert!(report.group_empty);
    // Gone, not a zombie: zombies keep their /proc entry until reaped.
    assert!(
        !exists(grandchild),
        "grandchild {grandchild} is still there"
    );
}

#[tokio::test]
async fn grandchild_holding_stdout_does_not_delay_wait_or_stop() {
    let body = "sleep 1000 &\necho \"grandchild $!\"\nexit 0";
    let mut running = run("holdsstdout", body).await;
    let grandchild = pid_in(&running.line("grandchild").await);

    assert_eq!(running.wait().await, Exit::Code(0));
    // The readers give up on the pipe shortly after the exit, although it never reaches EOF.
    guard("drained", running.child.drained()).await;
    assert!(exists(grandchild));

    let report = running.stop(Duration::from_secs(10)).await;
    assert_eq!(report.exit, Some(Exit::Code(0)));
    assert!(report.group_empty);
    assert!(
        !exists(grandchild),
        "grandchild {grandchild} is still there"
    );
}

#[tokio::test]
async fn output_lands_in_the_ring_in_order_with_its_stream() {
    let body = "echo one\necho two >&2\necho three\n\
                head -c 40000 /dev/zero | tr '\\0' x\necho\n\
                printf 'bad \\377 byte\\n'\nprintf 'no newline'";
    let mut running = run("output", body).await;
    assert_eq!(running.wait().await, Exit::Code(0));
    guard("drained", running.child.drained()).await;

    let x = |n| "x".repeat(n);
    let stdout = [
        "one".to_string(),
        "three".into(),
        x(16384),
        x(16384),
        x(40000 - 2 * 16384),
        "bad \u{FFFD} byte".into(),
        "no newline".into(),
    ];
    assert_eq!(running.texts(Stream::Stdout), stdout);
    assert_eq!(running.texts(Stream::Stderr), ["two"]);
}

#[tokio::test]
async fn pythonunbuffered_reaches_the_child_unless_overridden() {
    let (dir, mut spec) = script("env", "echo \"PYTHONUNBUFFERED=$PYTHONUNBUFFERED\"");
    let mut running = run_spec(dir, &spec).await;
    assert_eq!(running.line("PYTHON").await, "PYTHONUNBUFFERED=1");

    spec.env.push(("PYTHONUNBUFFERED".into(), "0".into()));
    let mut running = run_spec(running._dir, &spec).await;
    assert_eq!(running.line("PYTHON").await, "PYTHONUNBUFFERED=0");
}

#[tokio::test]
async fn exits_immediately_after_spawn_is_not_lost() {
    let reaper = Reaper::start().unwrap();
    let ring = Arc::new(LogRing::new(10));
    for round in 0..20 {
        let (program, want) = if round % 2 == 0 {
            ("true", 0)
        } else {
            ("false", 1)
        };
        let spec = ProcessSpec {
            name: program.into(),
            program: program.into(),
            ..ProcessSpec::default()
        };
        let child = reaper.spawn(&spec, Arc::clone(&ring)).await.unwrap();
        assert_eq!(guard(program, child.wait()).await, Exit::Code(want));
    }
}

#[tokio::test]
async fn missing_program_is_an_error() {
    let spec = ProcessSpec {
        name: "missing".into(),
        program: "/nonexistent/program".into(),
        ..ProcessSpec::default()
    };
    let ring = Arc::new(LogRing::new(10));
    let err = Reaper::start()
        .unwrap()
        .spawn(&spec, ring)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[tokio::test]
async fn signal_reaches_the_whole_group() {
    // The background job reports its pid from a fresh `sh` (see `exits_143_after_...`).
    let body =
        "trap 'echo got USR1; exit 0' USR1\nsh -c 'echo \"sleep $$\"; exec sleep 1000' &\nwait";
    let mut running = run("usr1", body).await;
    let sleeper = pid_in(&running.line("sleep").await);
    running.child.signal(Signal::SIGUSR1).unwrap();
    running.line("got USR1").await;
    assert_eq!(running.wait().await, Exit::Code(0));
    // The background `sleep` was in the group: USR1 killed it too (and the reaper reaped it).
    let report = running.stop(Duration::from_secs(10)).await;
    assert!(report.group_empty && !report.killed);
    assert!(!exists(sleeper));
    assert!(running.child.signal(Signal::SIGUSR1).is_err());
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
    format!(
        "p50 {:?}  p99 {:?}  max {:?}",
        at(50),
        at(99),
        samples[samples.len() - 1]
    )
}

/// Death → status delivered to the waiter, and spawn → running (`exec` done): together the
/// floor of a restart. Run with:
/// `cargo test -p stackctl --lib process::tests::death_to_status_latency -- --ignored --nocapture`
#[tokio::test]
#[ignore = "measurement, run with --ignored --nocapture"]
async fn death_to_status_latency() {
    let reaper = Reaper::start().unwrap();
    let ring = Arc::new(LogRing::new(10));
    let spec = ProcessSpec {
        name: "sleeper".into(),
        program: "sleep".into(),
        args: vec!["1000".into()],
        ..ProcessSpec::default()
    };
    let (mut deaths, mut spawns) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let start = Instant::now();
        let child = reaper.spawn(&spec, Arc::clone(&ring)).await.unwrap();
        spawns.push(start.elapsed());
        let killed = Instant::now();
        child.signal(Signal::SIGKILL).unwrap();
        let exit = guard("killed sleeper", child.wait()).await;
        deaths.push(killed.elapsed());
        assert_eq!(exit, Exit::Signal(Signal::SIGKILL as i32));
    }
    println!("kill → status delivered (200): {}", percentiles(deaths));
    println!("spawn → exec done     (200): {}", percentiles(spawns));
}
