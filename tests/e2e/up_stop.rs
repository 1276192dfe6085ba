//! `stackctl up` stopping misbehaving processes: one that ignores SIGTERM, one that double-forks,
//! one whose grandchild escapes with its stdout, one that exits 143 when asked to stop, `up`
//! itself killed with SIGKILL, and the helpers of a service (a build step, an exec probe) that
//! must stop with it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod up_common;

use std::time::Instant;

use stackctl_tests::up::{
    Stack, Stray, pid_exists, pid_of, proc_status, seconds_between, wait_dead, wait_gone,
};

use up_common::{service, service_status};

#[test]
fn a_service_ignoring_sigterm_is_killed_after_its_stop_timeout() {
    let stack = Stack::new(
        r#"
[services.stubborn]
command = "./stubborn.sh"
stop_timeout = "500ms"
"#,
    );
    // SIG_IGN is inherited: the `sleep`s ignore SIGTERM too.
    stack.script(
        "stubborn.sh",
        "trap '' TERM\necho 'stubborn: ignoring TERM'\nwhile :; do sleep 1; done",
    );
    let mut up = stack.up(&[], &[]);
    let started = up.wait_event("stubborn", ": started");
    let _stray = Stray(pid_of(&started));
    up.first_event("stubborn", "output: stubborn: ignoring TERM");

    let asked = Instant::now();
    stack.ctl_ok(&["stop", "stubborn"]);
    up.wait_event("stubborn", "did not stop in time: killed");
    eprintln!(
        "killed {:?} after `stackctl stop` was run (stop_timeout 500ms)",
        asked.elapsed()
    );
    let stopped = up.wait_event("stubborn", ": stopped");
    assert!(stopped.contains("SIGKILL"), "{stopped}");
    wait_gone(pid_of(&started));

    let s = service_status(&stack, "stubborn");
    assert_eq!(s["state"], "stopped", "{s:#}");
    assert!(s["pid"].is_null(), "{s:#}");
    // An operator stop is not a crash: no restart follows.
    assert!(
        up.position("stubborn", "restarting").is_none(),
        "{}",
        up.log()
    );
    up.terminate();
}

#[test]
fn a_double_forked_grandchild_is_killed_and_reaped_on_stop() {
    let stack = Stack::new(
        r#"
[services.forker]
command = "./forker.sh"
"#,
    );
    // The subshell exits at once, leaving its background `sleep` an orphan in the service's
    // process group (reparented to stackctl, the subreaper).
    stack.script(
        "forker.sh",
        "sh -c 'sleep 1000 & echo $! > grandchild.pid'\necho 'forker: forked'\nexec sleep 1000",
    );
    let mut up = stack.up(&[], &[]);
    let started = up.wait_event("forker", ": started");
    up.first_event("forker", "output: forker: forked");
    let grandchild = stack.read_pid("grandchild.pid");
    let _stray = Stray(grandchild);
    assert_eq!(
        proc_status(grandchild, "PPid"),
        Some(up.pid().to_string()),
        "the orphan should be reparented to stackctl (PR_SET_CHILD_SUBREAPER)"
    );

    stack.ctl_ok(&["stop", "forker"]);
    up.wait_event("forker", ": stopped");
    let took = wait_gone(grandchild);
    eprintln!("grandchild {grandchild} gone {took:?} after `stopped`");
    wait_gone(pid_of(&started));
    assert_eq!(service_status(&stack, "forker")["state"], "stopped");
    up.terminate();
}

#[test]
fn a_grandchild_holding_stdout_does_not_hide_the_exit() {
    let stack = Stack::new(
        r#"
[services.leaver]
command = "./leaver.sh"
restart = "no"
"#,
    );
    // The grandchild leaves the process group (setsid) with the service's stdout and stderr,
    // so the pipes never reach EOF; the script waits until its pid is recorded, then exits 0.
    stack.script(
        "leaver.sh",
        "setsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' &\n\
         while [ ! -s escaped.pid ]; do sleep 0.01; done\n\
         echo 'leaver: leaving'\nexit 0",
    );
    let mut up = stack.up(&[], &[]);
    let started = up.first_event("leaver", ": started");
    up.first_event("leaver", "output: leaver: leaving");
    let _escaped = Stray(stack.read_pid("escaped.pid"));
    let completed = up.first_event("leaver", ": completed");
    eprintln!(
        "completed {:.1} ms after it started (it exits at once)",
        seconds_between(&started, &completed) * 1000.0
    );
    let s = service_status(&stack, "leaver");
    assert_eq!(s["state"], "completed", "{s:#}");
    assert_eq!(s["last_exit_code"], 0, "{s:#}");

    stack.ctl_ok(&["down"]);
    let code = up.wait_exit();
    assert_eq!(code, Some(0), "{}", up.log());
}

#[test]
fn an_exit_143_after_our_sigterm_is_a_clean_stop() {
    let stack = Stack::new(
        r#"
[services.trapper]
command = "./trapper.sh"
"#,
    );
    stack.script(
        "trapper.sh",
        "trap 'exit 143' TERM\necho 'trapper: trapping'\nwhile :; do sleep 0.1; done",
    );
    let mut up = stack.up(&[], &[]);
    up.wait_event("trapper", "output: trapper: trapping");
    stack.ctl_ok(&["stop", "trapper"]);
    let stopped = up.wait_event("trapper", ": stopped");
    assert!(stopped.contains("exited with code 143"), "{stopped}");
    let status = stack.status();
    let s = service(&status, "trapper");
    assert_eq!(s["state"], "stopped", "{status:#}");
    assert_eq!(s["last_exit_code"], 143, "{status:#}");
    assert_eq!(s["restarts"], 0, "{status:#}");
    let log = up.log();
    assert!(up.position("trapper", ": failed").is_none(), "{log}");
    assert!(up.position("trapper", "restarting").is_none(), "{log}");
    up.terminate();
}

#[test]
fn killing_up_with_sigkill_leaves_no_child_behind() {
    let stack = Stack::new(
        r#"
[services.child]
command = "./child.sh"
"#,
    );
    stack.script("child.sh", "echo 'child: running'\nexec sleep 1000");
    let mut up = stack.up(&[], &[]);
    let pid = pid_of(&up.wait_event("child", ": started"));
    let _stray = Stray(pid);
    up.first_event("child", "output: child: running");
    assert!(pid_exists(pid));
    up.signal(9);
    assert_eq!(up.wait_exit(), None, "up should have died by SIGKILL");
    // PR_SET_PDEATHSIG kills it; reaping the zombie is init's business then.
    let took = wait_dead(pid);
    eprintln!("child {pid} dead {took:?} after up died");
}

#[test]
fn a_build_step_in_progress_is_stopped_with_its_service() {
    let stack = Stack::new(
        r#"
[services.builder]
command = "./builder.sh"
build = ["echo $$ > build.pid; echo 'builder: building'; exec sleep 1000"]
"#,
    );
    stack.script("builder.sh", "exec sleep 1000");
    let mut up = stack.up(&[], &[]);
    // The build step's output is logged under `service=builder build 1`.
    up.wait_line(&["output: builder: building"]);
    let build = stack.read_pid("build.pid");
    let _stray = Stray(build);
    assert_eq!(service_status(&stack, "builder")["state"], "building");

    stack.ctl_ok(&["stop", "builder"]);
    up.wait_event("builder", ": stopped");
    assert_eq!(service_status(&stack, "builder")["state"], "stopped");
    wait_gone(build);
    up.terminate();
}

#[test]
fn an_exec_probe_in_flight_is_stopped_with_its_service() {
    let stack = Stack::new(
        r#"
[services.prober]
command = "./prober.sh"
ready = { exec = ["sh", "-c", "echo $$ > probe.pid; echo 'prober: probing'; exec sleep 1000"], timeout = "60s" }
"#,
    );
    stack.script("prober.sh", "exec sleep 1000");
    let mut up = stack.up(&[], &[]);
    up.wait_line(&["output: prober: probing"]);
    let probe = stack.read_pid("probe.pid");
    let _stray = Stray(probe);

    stack.ctl_ok(&["stop", "prober"]);
    up.wait_event("prober", ": stopped");
    wait_gone(probe);
    up.terminate();
}
