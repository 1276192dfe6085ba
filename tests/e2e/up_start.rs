//! `stackctl up` starting a stack: dependencies gated on readiness, a readiness that never
//! comes, a stale shared-memory segment cleaned before a start, and the camera's segment as a
//! readiness probe (with camsim).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod up_common;

use stackctl_tests::up::{Stack, pid_of, wait_gone};
use stackctl_tests::{bin, unique_shm};

use up_common::service;

#[test]
fn a_dependent_starts_only_once_its_dependency_is_ready() {
    let stack = Stack::new(
        r#"
[services.base]
command = "./base.sh"
ready = { file = "base.ready", interval = "50ms" }

[services.app]
command = "./app.sh"
depends_on = { base = "ready" }
"#,
    );
    // Ready late: the dependent must not start on `started` alone.
    stack.script("base.sh", "sleep 0.5\ntouch base.ready\nexec sleep 1000");
    stack.script(
        "app.sh",
        "if [ -e base.ready ]; then echo 'app: base was ready'; else echo 'app: base was NOT ready'; fi\nexec sleep 1000",
    );
    let mut up = stack.up(&[], &[]);
    let seen = up.wait_event("app", "output: app: base");
    assert!(
        seen.contains("base was ready"),
        "app started before base's ready file existed: {seen}\n{}",
        up.log()
    );
    up.first_line(&["stack ready"]);
    let ready = up.position("base", ": ready").expect("base ready logged");
    let starting = up
        .position("app", ": starting")
        .expect("app starting logged");
    assert!(
        ready < starting,
        "app started before base was ready:\n{}",
        up.log()
    );

    // And stopped in the reverse order.
    up.terminate();
    let app = up.position("app", ": stopping").expect("app stopping");
    let base = up.position("base", ": stopping").expect("base stopping");
    assert!(
        app < base,
        "base stopped before its dependent app:\n{}",
        up.log()
    );
    assert!(
        up.log().contains("every service is stopped"),
        "{}",
        up.log()
    );
}

#[test]
fn a_service_that_never_becomes_ready_fails_and_blocks_its_dependents() {
    let stack = Stack::new(
        r#"
[services.base]
command = "./base.sh"
ready = { file = "never", interval = "100ms", timeout = "1s" }

[services.app]
command = "./app.sh"
depends_on = { base = "ready" }
"#,
    );
    stack.script("base.sh", "exec sleep 1000");
    stack.script("app.sh", "touch app.ran\nexec sleep 1000");
    let mut up = stack.up(&[], &[]);
    let started = up.wait_event("base", ": started");
    let not_ready = up.wait_event("base", "not ready");
    eprintln!("{not_ready}");
    up.wait_event("base", ": failed");
    // Its process is stopped, not left running unready.
    wait_gone(pid_of(&started));

    let status = stack.status();
    let base = service(&status, "base");
    let app = service(&status, "app");
    assert_eq!(base["state"], "failed", "{status:#}");
    assert!(base["pid"].is_null(), "{status:#}");
    assert_eq!(app["state"], "waiting", "{status:#}");
    let detail = app["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("blocked") && detail.contains("base"),
        "app's detail should say it is blocked by base: {detail:?}"
    );
    assert_eq!(status["ready"], false, "{status:#}");
    assert!(up.position("app", ": starting").is_none(), "{}", up.log());
    assert!(!stack.path().join("app.ran").exists());
    up.terminate();
}

#[test]
fn a_stale_shared_memory_segment_is_removed_before_the_service_starts() {
    let shm = unique_shm("stale");
    let file = format!("/dev/shm{}", shm.as_str());
    std::fs::write(&file, b"left by a previous run").expect("create a stale segment");
    let stack = Stack::new(&format!(
        r#"
[services.cam]
command = "./cam.sh"
clean_shm = ["{}*"]
"#,
        shm.as_str()
    ));
    stack.script(
        "cam.sh",
        &format!(
            "if [ -e {file} ]; then echo 'segment: still there'; else echo 'segment: gone'; fi\nexec sleep 1000"
        ),
    );
    let mut up = stack.up(&[], &[]);
    let removed = up.wait_event("cam", "removed stale shared memory");
    assert!(removed.contains(shm.as_str()), "{removed}");
    let seen = up.wait_event("cam", "output: segment:");
    assert!(
        seen.contains("segment: gone"),
        "the service saw the stale segment: {seen}\n{}",
        up.log()
    );
    assert!(!shm.exists());
    up.terminate();
}

#[test]
fn a_dependent_of_the_camera_starts_once_its_segment_exists_and_advances() {
    let shm = unique_shm("camera");
    // A stale segment from "a previous run": camsim would replace it anyway, but the
    // readiness probe must never look at it.
    let file = format!("/dev/shm{}", shm.as_str());
    std::fs::write(&file, b"stale").expect("create a stale segment");
    let stack = Stack::new(&format!(
        r#"
[services.camera]
command = {camsim:?}
args = ["--shm", "{name}", "--size", "320x240", "--fps", "30"]
ready = {{ shm = "{name}", interval = "100ms", timeout = "30s" }}
clean_shm = ["{name}"]

[services.viewer]
command = "./viewer.sh"
depends_on = {{ camera = "ready" }}
"#,
        camsim = bin("camsim").display().to_string(),
        name = shm.as_str(),
    ));
    stack.script(
        "viewer.sh",
        &format!(
            "{stackctl:?} shm inspect {name} --json > inspect.json 2> inspect.err\necho \"viewer: inspected $?\"\nexec sleep 1000",
            stackctl = bin("stackctl").display().to_string(),
            name = shm.as_str(),
        ),
    );
    let mut up = stack.up(&[], &[]);
    up.wait_event("camera", "removed stale shared memory");
    let seen = up.wait_event("viewer", "output: viewer: inspected");
    assert!(
        seen.contains("inspected 0 "),
        "`stackctl shm inspect` failed in the viewer: {seen}\n{}",
        stack.read("inspect.err")
    );
    let report: serde_json::Value =
        serde_json::from_str(&stack.read("inspect.json")).expect("inspect JSON");
    assert_eq!(report["layout_ok"], true, "{report:#}");
    let index = report["write_index"].as_u64().expect("write_index");
    assert!(
        index >= 1,
        "the viewer started before the camera wrote a frame (write_index {index})"
    );
    let ready = up.position("camera", ": ready").expect("camera ready");
    let starting = up
        .position("viewer", ": starting")
        .expect("viewer starting");
    assert!(ready < starting, "{}", up.log());
    up.terminate();
}

#[test]
fn a_log_line_readiness_probe_gates_the_dependent() {
    let stack = Stack::new(
        r#"
[services.server]
command = "./server.sh"
ready = { log = "^listening on [0-9]+$", timeout = "10s" }

[services.client]
command = "./client.sh"
depends_on = { server = "ready" }
"#,
    );
    // The line comes at once: the probe must not miss output written before it looked.
    stack.script(
        "server.sh",
        "echo 'warming up'\necho 'listening on 8000'\nexec sleep 1000",
    );
    stack.script("client.sh", "exec sleep 1000");
    let mut up = stack.up(&[], &[]);
    up.wait_event("client", ": started");
    let listening = up
        .position("server", "output: listening on 8000")
        .expect("server's line");
    let ready = up.position("server", ": ready").expect("server ready");
    let starting = up
        .position("client", ": starting")
        .expect("client starting");
    assert!(listening < ready && ready < starting, "{}", up.log());
    up.terminate();
}

#[test]
fn a_dependent_on_completed_waits_for_the_one_shot_task_to_succeed() {
    let stack = Stack::new(
        r#"
[services.migrate]
command = "./migrate.sh"
restart = "no"

[services.app]
command = "./app.sh"
depends_on = { migrate = "completed" }
"#,
    );
    stack.script("migrate.sh", "sleep 0.2\ntouch migrated\nexit 0");
    stack.script(
        "app.sh",
        "if [ -e migrated ]; then echo 'app: migrated'; else echo 'app: NOT migrated'; fi\nexec sleep 1000",
    );
    let mut up = stack.up(&[], &[]);
    let seen = up.wait_event("app", "output: app:");
    assert!(seen.contains("app: migrated"), "{seen}\n{}", up.log());
    up.first_line(&["stack ready"]);
    let status = stack.status();
    assert_eq!(
        service(&status, "migrate")["state"],
        "completed",
        "{status:#}"
    );
    assert_eq!(service(&status, "app")["state"], "ready", "{status:#}");
    up.terminate();
}
