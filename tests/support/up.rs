//! Running `stackctl up` in a temporary directory and following what it does.
//!
//! The tests wait for events (log lines, exits, datagrams), never for time. The one exception
//! is [`wait_gone`]: a process vanishing from `/proc` sends nobody a notification, so it is
//! polled, with a bound.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::bin;

/// How long any single expected event may take before a test fails (a hang guard, not a timing
/// assertion: events normally arrive in milliseconds).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A temporary directory with a configuration and helper scripts.
#[derive(Debug)]
pub struct Stack {
    dir: tempfile::TempDir,
    http_port: Option<u16>,
}

impl Stack {
    /// A new directory; `config` is written to `stackctl.toml`, followed by the sections it does
    /// not set itself (appended, so that its line numbers stay as written):
    /// - `[control] socket` = a file inside the directory;
    /// - `[http] host = "127.0.0.1"` and a free port (see [`Stack::http_port`]);
    /// - `[metrics] port = 0` (no separate metrics listener).
    pub fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("stackctl.sock");
        let mut config = config.to_owned();
        if !config.ends_with('\n') {
            config.push('\n');
        }
        if !config.contains("[control]") {
            config.push_str(&format!(
                "\n[control]\nsocket = {:?}\n",
                socket.display().to_string()
            ));
        }
        let mut http_port = None;
        if !config.contains("[http]") {
            let port = free_port();
            http_port = Some(port);
            config.push_str(&format!("\n[http]\nhost = \"127.0.0.1\"\nport = {port}\n"));
        }
        if !config.contains("[metrics]") {
            config.push_str("\n[metrics]\nport = 0\n");
        }
        std::fs::write(dir.path().join("stackctl.toml"), config).expect("write config");
        Self { dir, http_port }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("stackctl.toml")
    }

    /// The control socket configured by [`Stack::new`].
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("stackctl.sock")
    }

    /// The HTTP port [`Stack::new`] chose (`None` when the configuration has its own `[http]`).
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    /// Writes an executable `sh` script named `name` and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The contents of a file in the directory, trimmed.
    ///
    /// # Panics
    /// When it cannot be read.
    pub fn read(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .trim()
            .to_owned()
    }

    /// A pid a fixture script wrote to the file `name`.
    pub fn read_pid(&self, name: &str) -> u32 {
        let text = self.read(name);
        text.parse()
            .unwrap_or_else(|e| panic!("{name} holds {text:?}, not a pid: {e}"))
    }

    /// `stackctl ARGS --config <dir>/stackctl.toml`, run to completion.
    pub fn stackctl(&self, args: &[&str]) -> Output {
        self.stackctl_with(args, &[])
    }

    /// [`Stack::stackctl`] with extra environment variables.
    pub fn stackctl_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin("stackctl"));
        cmd.args(args)
            .arg("--config")
            .arg(self.config_file())
            .current_dir(self.path())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run stackctl")
    }

    /// A control command against the running `up`, through the socket.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(bin("stackctl"))
            .args(args)
            .arg("--socket")
            .arg(self.socket())
            .stdin(Stdio::null())
            .output()
            .expect("run stackctl")
    }

    /// A control command that must succeed; returns its standard output.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "stackctl {args:?} failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `stackctl status --json` of the running `up`.
    ///
    /// # Panics
    /// When the command fails or its output is not JSON.
    pub fn status(&self) -> serde_json::Value {
        let text = self.ctl_ok(&["status", "--json"]);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{text}"))
    }

    /// Starts `stackctl up` with extra `args` and environment.
    pub fn up(&self, args: &[&str], env: &[(&str, &str)]) -> Up {
        let mut cmd = Command::new(bin("stackctl"));
        cmd.arg("up")
            .arg("--config")
            .arg(self.config_file())
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start stackctl up");
        let lines = line_reader(child.stderr.take().expect("stderr piped"));
        Up {
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }
}

/// A running `stackctl up`. Dropping it kills it.
#[derive(Debug)]
pub struct Up {
    child: Option<Child>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Up {
    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits for a log line containing every one of `needles`, and returns it.
    ///
    /// Only lines after the last one waited for are looked at: waiting twice for the same
    /// needles waits for the second such line.
    ///
    /// # Panics
    /// When the line does not come within [`EVENT_TIMEOUT`], or `up` exits first, showing
    /// everything it logged.
    pub fn wait_line(&mut self, needles: &[&str]) -> String {
        self.wait_until(&format!("a line with {needles:?}"), |line| {
            needles.iter().all(|n| line.contains(n))
        })
    }

    /// Waits for the orchestrator's line about `service` whose text contains `text`, e.g.
    /// `wait_event("camera", ": started")` or `wait_event("web", "output: listening")`.
    /// The service must be the line's `service=` field exactly (`a` does not match `ab`).
    pub fn wait_event(&mut self, service: &str, text: &str) -> String {
        self.wait_until(
            &format!("a line with {text:?} for service {service:?}"),
            |line| line.contains(text) && field(line, "service").as_deref() == Some(service),
        )
    }

    /// The first line ever logged about `service` containing `text` (as [`Up::wait_event`]
    /// matches them): one already seen, or else the next one.
    ///
    /// Use it where the order of two lines is not certain: a service's own output is read by
    /// other tasks than those logging its state, so `output:` lines may come before or after the
    /// orchestrator's `started`, `completed`...
    pub fn first_event(&mut self, service: &str, text: &str) -> String {
        self.nth_event(service, text, 1)
    }

    /// The `n`-th (from 1) line ever logged about `service` containing `text`, waiting for it
    /// if it has not been seen yet.
    pub fn nth_event(&mut self, service: &str, text: &str, n: usize) -> String {
        let matches =
            |line: &str| line.contains(text) && field(line, "service").as_deref() == Some(service);
        let mut count = self.seen.iter().filter(|l| matches(l)).count();
        if count >= n {
            return self
                .seen
                .iter()
                .filter(|l| matches(l))
                .nth(n - 1)
                .cloned()
                .expect("counted");
        }
        let what = format!("line {n} with {text:?} for service {service:?}");
        self.wait_until(&what, |line| {
            if matches(line) {
                count += 1;
            }
            count >= n
        })
    }

    /// The first line ever logged containing every one of `needles`: one already seen, or else
    /// the next one.
    pub fn first_line(&mut self, needles: &[&str]) -> String {
        let seen = self
            .seen
            .iter()
            .find(|line| needles.iter().all(|n| line.contains(n)));
        match seen {
            Some(line) => line.clone(),
            None => self.wait_line(needles),
        }
    }

    /// Waits for a log line for which `matches` is true, and returns it.
    ///
    /// # Panics
    /// As [`Up::wait_line`].
    pub fn wait_until(&mut self, what: &str, mut matches: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = matches(&line);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {EVENT_TIMEOUT:?}; log:\n{}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stackctl up ended before {what}; log:\n{}", self.log())
                }
            }
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.seen.join("\n")
    }

    /// The lines logged so far.
    pub fn lines(&self) -> &[String] {
        &self.seen
    }

    /// The index (in [`Up::lines`]) of the first line seen so far about `service` containing
    /// `text`, as [`Up::wait_event`] matches them.
    pub fn position(&self, service: &str, text: &str) -> Option<usize> {
        self.seen.iter().position(|line| {
            line.contains(text) && field(line, "service").as_deref() == Some(service)
        })
    }

    /// Sends `signal` to `up` itself.
    pub fn signal(&self, signal: i32) {
        kill(self.pid(), signal);
    }

    /// Waits for `up` to exit and returns its exit code (None when killed by a signal), with the
    /// rest of its log kept for [`Up::log`].
    ///
    /// # Panics
    /// When `up` has not exited within [`EVENT_TIMEOUT`] (its end is seen as the end of its
    /// standard error, which only it holds).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "stackctl up did not exit within {EVENT_TIMEOUT:?}; log:\n{}",
                    self.log()
                ),
            }
        }
        let mut child = self.child.take().expect("running");
        let status = child.wait().expect("wait for stackctl up");
        status.code()
    }

    /// SIGTERM, then waits for `up` to exit and asserts it exited with status 0.
    pub fn terminate(&mut self) {
        self.signal(15);
        let code = self.wait_exit();
        assert_eq!(
            code,
            Some(0),
            "stackctl up after SIGTERM; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process a test made escape supervision (or that might survive a failing test): killed with
/// SIGKILL when dropped.
#[derive(Debug)]
pub struct Stray(pub u32);

impl Drop for Stray {
    fn drop(&mut self) {
        if pid_exists(self.0) {
            let _ = Command::new("kill")
                .args(["-9", &self.0.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Sends `signal` to `pid` with kill(1), asserting it was delivered.
pub fn kill(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The lines of `output` (a child's pipe), read on a thread of their own until it ends.
pub fn line_reader(output: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a configuration to listen on.
///
/// Chosen below the kernel's ephemeral range (`ip_local_port_range`), pseudo-randomly per test
/// process, and checked by binding it: a port the kernel handed out for `127.0.0.1:0` (what
/// other tests and every outgoing connection get) could be taken again before `stackctl up`
/// binds it, one outside that range only by another test making the same pick.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.clamp(11_000, 65_535));
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let candidate = low + seed.wrapping_add(n.wrapping_mul(7919)) % (high - low);
        let port = u16::try_from(candidate).expect("below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{high}")
}

/// True while `/proc/PID` exists: the process runs, or is a zombie nobody reaped.
pub fn pid_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A field of `/proc/PID/status` (`PPid`, `State`...), if the process exists.
pub fn proc_status(pid: u32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// Waits until `pid` is gone from `/proc` (dead and reaped), polling, and returns how long that
/// took.
///
/// # Panics
/// When it is still there after [`EVENT_TIMEOUT`], with its state (`Z` for a zombie).
pub fn wait_gone(pid: u32) -> Duration {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    while pid_exists(pid) {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "process {pid} still exists after {EVENT_TIMEOUT:?} (state {:?})",
            proc_status(pid, "State")
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Waits until `pid` has died: gone from `/proc`, or a zombie (reaping it is then its new
/// parent's business, e.g. init's, which may take its time), polling; returns how long it took.
///
/// # Panics
/// When it still runs after [`EVENT_TIMEOUT`].
pub fn wait_dead(pid: u32) -> Duration {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match proc_status(pid, "State") {
            None => return start.elapsed(),
            Some(state) if state.starts_with('Z') => return start.elapsed(),
            Some(state) => assert!(
                start.elapsed() < EVENT_TIMEOUT,
                "process {pid} still runs after {EVENT_TIMEOUT:?} (state {state})"
            ),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The value of `key=` in a log line (up to the next space), e.g. `field(line, "pid")`.
pub fn field(line: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
        .map(|v| v.trim_matches('"').to_owned())
}

/// The `pid=` of a `started` line.
pub fn pid_of(line: &str) -> u32 {
    field(line, "pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid= in {line:?}"))
}

/// The time of day of a log line, in seconds, from its RFC 3339 timestamp
/// (`2026-01-02T03:04:05.678901Z  INFO ...`).
pub fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let time = stamp.get(11..)?.trim_end_matches('Z');
    let mut parts = time.splitn(3, ':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// Seconds from line `a` to line `b` by their timestamps (across midnight too).
pub fn seconds_between(a: &str, b: &str) -> f64 {
    let (ta, tb) = (
        log_time(a).unwrap_or_else(|| panic!("no timestamp in {a:?}")),
        log_time(b).unwrap_or_else(|| panic!("no timestamp in {b:?}")),
    );
    (tb - ta).rem_euclid(86_400.0)
}

/// Asserts `out` failed with `code` and its standard error contains every one of `needles`;
/// returns the standard error.
pub fn assert_fails_with(out: &Output, code: i32, needles: &[&str], what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit code {code}; stderr:\n{stderr}"
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{what}: the message should contain {needle:?}:\n{stderr}"
        );
    }
    stderr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_times() {
        let line = "2026-11-24T21:22:32.500000Z  INFO stackctl::service::stack: started service=cam pid=42";
        assert_eq!(field(line, "service").as_deref(), Some("cam"));
        assert_eq!(pid_of(line), 42);
        assert_eq!(log_time(line), Some(21.0 * 3600.0 + 22.0 * 60.0 + 32.5));
        let later = "2026-11-24T21:22:33.000000Z  INFO x: y";
        assert!((seconds_between(line, later) - 0.5).abs() < 1e-9);
    }
}
