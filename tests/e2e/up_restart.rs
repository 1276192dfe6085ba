//! `stackctl up` restarting services that crash: exponential back-off, and a crash loop ending
//! in a visible FAILED state that stops the stack (`on_failure = "stop-stack"`) or ends `up`
//! (`on_failure = "exit"`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod up_common;

use stackctl_tests::up::{Stack, pid_of, seconds_between, wait_gone};

use up_common::service;

#[test]
fn a_crashing_service_is_restarted_with_exponential_backoff() {
    let stack = Stack::new(
        r#"
[services.crasher]
command = "./crasher.sh"
backoff = { initial = "100ms", max = "1s", jitter = 0.0 }
max_restarts = 10
restart_window = "60s"
"#,
    );
    stack.script("crasher.sh", "echo 'crasher: exiting 1'\nexit 1");
    let mut up = stack.up(&[], &[]);
    let mut started = vec![up.wait_event("crasher", ": started")];
    let mut deaths = Vec::new();
    for _ in 0..3 {
        deaths.push(up.wait_event("crasher", "restarting in"));
        started.push(up.wait_event("crasher", ": started"));
    }
    // The announced delays follow the policy exactly (no jitter): initial, then doubled.
    let announced: Vec<&str> = deaths
        .iter()
        .map(|d| {
            d.split("restarting in ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("")
        })
        .collect();
    assert_eq!(announced, ["100.0ms", "200.0ms", "400.0ms"], "{}", up.log());
    for (i, (death, next)) in deaths.iter().zip(&started[1..]).enumerate() {
        eprintln!(
            "restart {}: announced {}, measured from death to replacement {:.1} ms",
            i + 1,
            announced[i],
            seconds_between(death, next) * 1000.0
        );
    }
    let pids: Vec<u32> = started.iter().map(|l| pid_of(l)).collect();
    for (i, pid) in pids.iter().enumerate() {
        assert!(
            !pids[..i].contains(pid),
            "pid {pid} reused at once: {pids:?}"
        );
    }
    let status = stack.status();
    let restarts = service(&status, "crasher")["restarts"]
        .as_u64()
        .expect("restarts");
    assert!(restarts >= 3, "restarts = {restarts}:\n{status:#}");
    assert_eq!(
        service(&status, "crasher")["last_exit_code"],
        1,
        "{status:#}"
    );
    up.terminate();
}

/// The configuration of the crash-loop tests: `crasher` crashes at once, every time; `steady`
/// runs until stopped.
fn crash_loop(on_failure: &str) -> Stack {
    let stack = Stack::new(&format!(
        r#"
[services.crasher]
command = "./crasher.sh"
backoff = {{ initial = "50ms", max = "100ms", jitter = 0.0 }}
max_restarts = 2
restart_window = "60s"
on_failure = "{on_failure}"

[services.steady]
command = "./steady.sh"
"#
    ));
    stack.script("crasher.sh", "exit 1");
    stack.script("steady.sh", "echo 'steady: up'\nexec sleep 1000");
    stack
}

#[test]
fn a_crash_loop_with_on_failure_exit_ends_up_with_status_1() {
    let stack = crash_loop("exit");
    let mut up = stack.up(&[], &[]);
    let steady = up.first_event("steady", ": started");
    let failed = up.first_event("crasher", ": failed");
    eprintln!("{failed}");
    let code = up.wait_exit();
    assert_eq!(
        code,
        Some(1),
        "up should exit 1 by itself; log:\n{}",
        up.log()
    );
    let log = up.log();
    let starts = up
        .lines()
        .iter()
        .filter(|l| l.contains(": started") && l.contains("service=crasher"))
        .count();
    assert_eq!(starts, 3, "one start and max_restarts = 2 restarts:\n{log}");
    assert!(
        up.position("steady", ": stopped").is_some(),
        "steady was not stopped:\n{log}"
    );
    wait_gone(pid_of(&steady));
}

#[test]
fn a_crash_loop_with_on_failure_stop_stack_stops_the_others_and_keeps_up_running() {
    let stack = crash_loop("stop-stack");
    let mut up = stack.up(&[], &[]);
    let steady = up.first_event("steady", ": started");
    up.first_event("crasher", ": failed");
    up.first_event("steady", ": stopped");
    up.wait_line(&["every service is stopped"]);
    wait_gone(pid_of(&steady));

    // `up` is still there to be asked.
    let status = stack.status();
    assert_eq!(status["phase"], "stopped", "{status:#}");
    assert_eq!(service(&status, "crasher")["state"], "failed", "{status:#}");
    let detail = service(&status, "crasher")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains("gave up"), "crasher's detail: {detail:?}");
    assert_eq!(service(&status, "steady")["state"], "stopped", "{status:#}");

    stack.ctl_ok(&["down"]);
    let code = up.wait_exit();
    assert_eq!(code, Some(0), "{}", up.log());
}

#[test]
fn a_failing_liveness_probe_restarts_the_service() {
    let stack = Stack::new(
        r#"
[services.beating]
command = "./beating.sh"
liveness = { file = "heartbeat", interval = "100ms", timeout = "1s", retries = 1 }
backoff = { initial = "50ms", jitter = 0.0 }
"#,
    );
    // Alive for a moment, then hung: still running, but its heartbeat is gone.
    stack.script(
        "beating.sh",
        "touch heartbeat\necho 'beating: alive'\nsleep 0.3\nrm -f heartbeat\nexec sleep 1000",
    );
    let mut up = stack.up(&[], &[]);
    let first = pid_of(&up.wait_event("beating", ": started"));
    let failed = up.wait_event("beating", "liveness failed");
    eprintln!("{failed}");
    up.wait_event("beating", "restarting in");
    let second = pid_of(&up.wait_event("beating", ": started"));
    assert_ne!(first, second);
    wait_gone(first);
    let s = service(&stack.status(), "beating").clone();
    assert!(s["restarts"].as_u64() >= Some(1), "{s:#}");
    up.terminate();
}

#[test]
fn restart_dependents_restarts_the_services_that_depend_on_a_crashed_one() {
    let stack = Stack::new(
        r#"
[services.source]
command = "./source.sh"
restart_dependents = true
backoff = { initial = "50ms", jitter = 0.0 }

[services.sink]
command = "./sink.sh"
depends_on = { source = "ready" }
"#,
    );
    // The source crashes once, after the sink is up.
    stack.script(
        "source.sh",
        "while [ ! -e sink.up ]; do sleep 0.02; done\n\
         if [ ! -e crashed ]; then touch crashed; exit 1; fi\nexec sleep 1000",
    );
    stack.script("sink.sh", "touch sink.up\nexec sleep 1000");
    let mut up = stack.up(&[], &[]);
    let first = pid_of(&up.first_event("sink", ": started"));
    up.first_event("source", "restarting in");
    up.first_event("sink", "restarting with its dependency");
    let source = up.nth_event("source", ": started", 2);
    let second = up.nth_event("sink", ": started", 2);
    assert_ne!(first, pid_of(&second));
    wait_gone(first);
    let source_ready = up.position("source", ": ready");
    assert!(source_ready.is_some(), "{}", up.log());
    let log = up.log();
    let restarted_source = log.find(&source).expect("source line");
    let restarted_sink = log.find(&second).expect("sink line");
    assert!(
        restarted_source < restarted_sink,
        "the sink came back before its source:\n{log}"
    );
    let status = stack.status();
    assert_eq!(service(&status, "sink")["restarts"], 1, "{status:#}");
    up.terminate();
}

#[test]
fn a_death_by_signal_is_a_failure_and_restarted() {
    let stack = Stack::new(
        r#"
[services.segv]
command = "./segv.sh"
backoff = { initial = "50ms", jitter = 0.0 }
max_restarts = 1
"#,
    );
    stack.script("segv.sh", "kill -SEGV $$");
    let mut up = stack.up(&[], &[]);
    let line = up.wait_event("segv", "restarting in");
    assert!(line.contains("killed by SIGSEGV"), "{line}");
    up.wait_event("segv", ": failed");
    let s = service(&stack.status(), "segv").clone();
    assert_eq!(s["state"], "failed", "{s:#}");
    assert_eq!(s["last_exit_code"], 139, "{s:#}");
    up.terminate();
}
