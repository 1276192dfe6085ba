//! Watching and steering a running `stackctl up`: the control socket (`status`, `logs`,
//! `restart`, `stop`, `start`, `down`), a second `up` refused, systemd's notifications, and
//! `/metrics` and `/api/status` over HTTP.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod up_common;

use std::os::unix::net::UnixDatagram;

use stackctl_tests::plugins::http_get;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, Stray, pid_of, wait_gone};

use up_common::{service, service_status};

/// Two services: `talker` prints three lines, then sleeps; `idler` sleeps.
fn two_services() -> Stack {
    let stack = Stack::new(
        r#"
[services.talker]
command = "./talker.sh"

[services.idler]
command = "./idler.sh"
required = false
"#,
    );
    stack.script(
        "talker.sh",
        "echo 'talker: one'\necho 'talker: two'\necho 'talker: three'\nexec sleep 1000",
    );
    stack.script("idler.sh", "exec sleep 1000");
    stack
}

#[test]
fn status_json_has_every_field() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    let talker_pid = pid_of(&up.wait_event("talker", ": started"));
    up.first_line(&["stack ready"]);
    let _stray = Stray(talker_pid);
    let status = stack.status();
    for key in [
        "version",
        "pid",
        "uptime_secs",
        "ready",
        "phase",
        "services",
        "cpu_seconds",
        "rss_bytes",
    ] {
        assert!(
            status.get(key).is_some(),
            "status has no {key:?}:\n{status:#}"
        );
    }
    assert_eq!(status["pid"], up.pid(), "{status:#}");
    assert_eq!(status["ready"], true, "{status:#}");
    assert_eq!(status["phase"], "ready", "{status:#}");
    assert!(status["uptime_secs"].as_f64().is_some(), "{status:#}");
    let names: Vec<&str> = status["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{status:#}");
    let talker = service(&status, "talker");
    for key in [
        "name",
        "state",
        "detail",
        "required",
        "ready",
        "pid",
        "uptime_secs",
        "restarts",
        "last_exit",
        "last_exit_code",
        "cpu_percent",
        "cpu_seconds",
        "rss_bytes",
    ] {
        assert!(
            talker.get(key).is_some(),
            "talker has no {key:?}:\n{status:#}"
        );
    }
    assert_eq!(talker["state"], "ready", "{status:#}");
    assert_eq!(talker["required"], true, "{status:#}");
    assert_eq!(talker["ready"], true, "{status:#}");
    assert_eq!(talker["pid"], talker_pid, "{status:#}");
    assert_eq!(talker["restarts"], 0, "{status:#}");
    assert!(talker["last_exit"].is_null(), "{status:#}");
    assert_eq!(service(&status, "idler")["required"], false, "{status:#}");

    // The table form too.
    let table = stack.ctl_ok(&["status"]);
    assert!(
        table.contains("talker") && table.contains("idler"),
        "{table}"
    );
    up.terminate();
}

#[test]
fn logs_prints_the_last_lines_a_service_printed() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    up.wait_event("talker", "output: talker: three");
    let out = stack.ctl_ok(&["logs", "talker", "-n", "2"]);
    assert_eq!(out, "talker: two\ntalker: three\n");
    let all = stack.ctl_ok(&["logs", "talker"]);
    assert_eq!(all, "talker: one\ntalker: two\ntalker: three\n");
    up.terminate();
}

/// A `stackctl logs -f` running in the background; killed when dropped.
struct Follower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Follower {
    fn start(stack: &Stack, service: &str) -> Self {
        let mut child = std::process::Command::new(stackctl_tests::bin("stackctl"))
            .args(["logs", service, "-f", "-n", "1", "--socket"])
            .arg(stack.socket())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stackctl logs -f");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line, or `None` at the end of the stream.
    fn next(&self) -> Option<String> {
        match self.lines.recv_timeout(EVENT_TIMEOUT) {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("stackctl logs -f printed nothing within {EVENT_TIMEOUT:?}")
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_follow_streams_new_lines_until_up_ends() {
    let stack = Stack::new(
        r#"
[services.ticker]
command = "./ticker.sh"
"#,
    );
    stack.script(
        "ticker.sh",
        "i=0\nwhile :; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done",
    );
    let mut up = stack.up(&[], &[]);
    up.wait_event("ticker", "output: tick 3");
    let follower = Follower::start(&stack, "ticker");
    let first: u64 = follower.next().expect("a past line")["tick ".len()..]
        .parse()
        .expect("n");
    // Lines the service prints after the command started arrive, in order.
    let mut last = first;
    for _ in 0..5 {
        let line = follower.next().expect("a live line");
        let n: u64 = line["tick ".len()..].parse().expect("n");
        assert_eq!(n, last + 1, "lines lost or reordered");
        last = n;
    }
    stack.ctl_ok(&["down"]);
    assert_eq!(up.wait_exit(), Some(0), "{}", up.log());
    while follower.next().is_some() {}
}

#[test]
fn restart_gives_the_service_a_new_process() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    let old = pid_of(&up.wait_event("talker", ": started"));
    let _old = Stray(old);
    up.first_line(&["stack ready"]);
    stack.ctl_ok(&["restart", "talker"]);
    let new = pid_of(&up.wait_event("talker", ": started"));
    let _new = Stray(new);
    assert_ne!(old, new);
    wait_gone(old);
    up.wait_event("talker", ": ready");
    let s = service_status(&stack, "talker");
    assert_eq!(s["pid"], new, "{s:#}");
    assert_eq!(s["restarts"], 1, "{s:#}");
    // The other service was left alone.
    assert!(up.position("idler", ": stopping").is_none(), "{}", up.log());
    up.terminate();
}

#[test]
fn stop_then_start_a_service() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    let first = pid_of(&up.wait_event("idler", ": started"));
    let _first = Stray(first);
    up.first_line(&["stack ready"]);

    stack.ctl_ok(&["stop", "idler"]);
    up.wait_event("idler", ": stopped");
    wait_gone(first);
    let s = service_status(&stack, "idler");
    assert_eq!(s["state"], "stopped", "{s:#}");
    assert!(s["pid"].is_null(), "{s:#}");

    stack.ctl_ok(&["start", "idler"]);
    let second = pid_of(&up.wait_event("idler", ": started"));
    let _second = Stray(second);
    up.wait_event("idler", ": ready");
    let s = service_status(&stack, "idler");
    assert_eq!(s["state"], "ready", "{s:#}");
    assert_eq!(s["pid"], second, "{s:#}");

    // Starting a running service is refused, with the reason.
    let out = stack.ctl(&["start", "idler"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("idler") && stderr.contains("already"),
        "{stderr}"
    );
    up.terminate();
}

#[test]
fn an_unknown_service_is_refused_with_the_list_of_services() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);
    for command in ["restart", "stop", "start", "logs"] {
        let out = stack.ctl(&[command, "ghost"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} ghost succeeded");
        assert!(
            stderr.contains("ghost") && stderr.contains("talker") && stderr.contains("idler"),
            "{command} ghost: the message should name the service and list the others: {stderr}"
        );
    }
    up.terminate();
}

#[test]
fn a_second_up_on_the_same_socket_is_refused() {
    let stack = two_services();
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["stack ready"]);
    let mut second = stack.up(&[], &[]);
    let code = second.wait_exit();
    let log = second.log();
    assert!(
        code.is_some_and(|c| c != 0),
        "the second up should fail: {code:?}\n{log}"
    );
    assert!(
        log.contains("another stackctl up is running")
            && log.contains(&stack.socket().display().to_string()),
        "the second up should say why: {log}"
    );
    assert!(
        !log.contains(": starting"),
        "the second up started services:\n{log}"
    );
    // The first one is untouched, socket included.
    assert_eq!(stack.status()["phase"], "ready");
    up.terminate();
}

#[test]
fn systemd_is_told_ready_then_stopping() {
    let stack = Stack::new(
        r#"
[services.slow]
command = "./slow.sh"
ready = { file = "slow.ready", interval = "50ms" }
"#,
    );
    stack.script("slow.sh", "sleep 0.3\ntouch slow.ready\nexec sleep 1000");
    let path = stack.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("timeout");
    let recv = || {
        let mut buf = [0u8; 4096];
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let socket = path.display().to_string();
    let mut up = stack.up(&[], &[("NOTIFY_SOCKET", socket.as_str())]);

    let mut before = Vec::new();
    let ready = loop {
        let message = recv();
        if message.contains("READY=1") {
            break message;
        }
        before.push(message);
    };
    eprintln!("before READY=1: {before:?}\nREADY: {ready:?}");
    assert!(ready.contains("STATUS="), "{ready:?}");
    assert!(
        stack.path().join("slow.ready").exists(),
        "READY=1 came before the service was ready"
    );
    assert_eq!(service_status(&stack, "slow")["state"], "ready");
    assert!(
        before.iter().all(|m| !m.contains("STOPPING=1")),
        "{before:?}"
    );

    up.signal(15);
    let stopping = loop {
        let message = recv();
        assert!(!message.contains("READY=1"), "READY=1 twice: {message:?}");
        if message.contains("STOPPING=1") {
            break message;
        }
    };
    eprintln!("STOPPING: {stopping:?}");
    assert_eq!(up.wait_exit(), Some(0), "{}", up.log());
}

#[test]
fn http_serves_metrics_and_status() {
    let stack = Stack::new(
        r#"
[services.steady]
command = "./steady.sh"

[services.flaky]
command = "./flaky.sh"
backoff = { initial = "50ms", jitter = 0.0 }
"#,
    );
    stack.script("steady.sh", "exec sleep 1000");
    // Crashes on its first run only.
    stack.script(
        "flaky.sh",
        "if [ ! -e crashed ]; then touch crashed; exit 1; fi\nexec sleep 1000",
    );
    let port = stack.http_port().expect("the test chose the HTTP port");
    let mut up = stack.up(&[], &[]);
    up.wait_event("flaky", "restarting in");
    up.wait_event("flaky", ": ready");
    up.first_line(&["stack ready"]);

    let (code, metrics) = http_get(port, "/metrics");
    assert_eq!(code, 200, "{metrics}");
    for needle in [
        "stackctl_service_up{service=\"steady\"} 1",
        "stackctl_service_up{service=\"flaky\"} 1",
        "# TYPE stackctl_service_restarts_total counter",
        "stackctl_service_restarts_total{service=\"flaky\"} 1",
        "stackctl_service_restarts_total{service=\"steady\"} 0",
        "stackctl_ready 1",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle:?}:\n{metrics}"
        );
    }

    let (code, body) = http_get(port, "/api/status");
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).expect("/api/status is JSON");
    assert_eq!(status["phase"], "ready", "{status:#}");
    assert_eq!(service(&status, "flaky")["restarts"], 1, "{status:#}");
    up.terminate();
}

#[test]
fn the_systemd_watchdog_is_fed_from_the_main_loop() {
    let stack = Stack::new("[services.idle]\ncommand = \"sleep\"\nargs = [\"1000\"]\n");
    let path = stack.path().join("watchdog.sock");
    let notify = UnixDatagram::bind(&path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("timeout");
    let socket = path.display().to_string();
    // A 200 ms watchdog: stackctl must ping every 100 ms. Three pings prove the ping is periodic.
    let _up = stack.up(
        &[],
        &[
            ("NOTIFY_SOCKET", socket.as_str()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut pings = 0;
    while pings < 3 {
        let mut buf = [0u8; 4096];
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no watchdog ping: {e}"));
        if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
            pings += 1;
        }
    }
}
