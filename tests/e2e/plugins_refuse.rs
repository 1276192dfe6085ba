//! Plugins stackctl must refuse at load time, cleanly: one built for another ABI major, a
//! library without the entry symbol, a table with a NULL function, a configuration the plugin
//! rejects. Each is logged with its name (and, for the ABI, both versions); the stack and the
//! other plugins run without it, unless it is `required`: then `up` refuses to start at all.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::plugins::{
    camera_config, http_json, plugin, poll, probe_plugin, rust_plugin, toml_path,
};
use stackctl_tests::unique_shm;
use stackctl_tests::up::{EVENT_TIMEOUT, Stack};

#[test]
fn refused_plugins_are_logged_by_name_and_the_rest_of_the_stack_runs() {
    let stats_lib = rust_plugin("sink-stats");
    let Some(wrong_abi) = probe_plugin("probe_abi99", &["PROBE_ABI_MAJOR=99"]) else {
        return;
    };
    let Some(no_entry) = probe_plugin("probe_no_entry", &["PROBE_NO_ENTRY"]) else {
        return;
    };
    let Some(null_fn) = probe_plugin("probe_null_on_http", &["PROBE_NULL_ON_HTTP"]) else {
        return;
    };
    let shm = unique_shm("plugins-refuse");
    let stack = Stack::new(&format!(
        r#"{camera}
[plugins.stats]
path = {stats}

[plugins.wrong_abi]
path = {wrong_abi}

[plugins.no_entry]
path = {no_entry}

[plugins.null_fn]
path = {null_fn}

[plugins.typo]
path = {stats}
windw = 5
"#,
        camera = camera_config(&shm),
        stats = toml_path(&stats_lib),
        wrong_abi = toml_path(&wrong_abi),
        no_entry = toml_path(&no_entry),
        null_fn = toml_path(&null_fn),
    ));
    let port = stack.http_port().expect("the harness chose the HTTP port");
    let mut up = stack.up(&[], &[]);

    let refusals = [
        (
            "wrong_abi",
            &wrong_abi,
            "built for sink ABI 99.2, this stackctl speaks 1.2",
        ),
        (
            "no_entry",
            &no_entry,
            "not a stackctl sink: no stackctl_sink_entry symbol",
        ),
        (
            "null_fn",
            &null_fn,
            "its table has no `on_http` function (NULL)",
        ),
    ];
    for (name, path, why) in refusals {
        let line = up.first_line(&[
            &format!("plugin {name} ({})", path.display()),
            why,
            "the stack runs without it",
        ]);
        eprintln!("{line}");
        assert!(line.contains("ERROR"), "not logged as an error: {line}");
    }
    let line = up.first_line(&[
        "plugin typo: configuration refused: windw: unknown field",
        "the stack runs without it",
    ]);
    eprintln!("{line}");
    up.first_line(&["plugin started", "plugin=stats"]);
    up.first_line(&["stack ready"]);

    // The stack runs, and so does the plugin that loaded.
    let first = poll("/stats counting frames", EVENT_TIMEOUT, || {
        let now = http_json(port, "/stats");
        now["frames"]
            .as_u64()
            .filter(|&n| n > 0)
            .ok_or_else(|| now.to_string())
    });
    poll("/stats frames growing", EVENT_TIMEOUT, || {
        let now = http_json(port, "/stats");
        now["frames"]
            .as_u64()
            .filter(|&n| n > first)
            .ok_or_else(|| now.to_string())
    });
    let st = stack.status();
    eprintln!("plugins: {}", st["plugins"]);
    assert_eq!(plugin(&st, "stats")["state"], "running", "{st:#}");
    for (name, why) in [
        ("wrong_abi", "ABI 99.2"),
        ("no_entry", "stackctl_sink_entry"),
        ("null_fn", "on_http"),
        ("typo", "windw"),
    ] {
        let p = plugin(&st, name);
        assert_eq!(p["state"], "failed", "{name}: {st:#}");
        assert!(
            p["detail"].as_str().is_some_and(|d| d.contains(why)),
            "{name}'s detail should say {why:?}: {st:#}"
        );
        assert_eq!(p["frames"], 0, "{name}: {st:#}");
    }
    up.terminate();
}

#[test]
fn a_required_plugin_of_another_abi_stops_up_before_anything_starts() {
    let Some(wrong_abi) = probe_plugin("probe_abi99", &["PROBE_ABI_MAJOR=99"]) else {
        return;
    };
    let stack = Stack::new(&format!(
        r#"
[services.app]
command = "./app.sh"

[plugins.wrong_abi]
path = {wrong_abi}
required = true
"#,
        wrong_abi = toml_path(&wrong_abi),
    ));
    stack.script("app.sh", "touch app.started\nexec sleep 1000");
    let mut up = stack.up(&[], &[]);
    let code = up.wait_exit();
    let log = up.log();
    eprintln!("exit {code:?}:\n{log}");
    assert!(
        code.is_some_and(|c| c != 0),
        "up should fail, not {code:?}:\n{log}"
    );
    for needle in [
        &format!("plugin wrong_abi ({})", wrong_abi.display()),
        "built for sink ABI 99.2, this stackctl speaks 1.2",
        "(required)",
    ] {
        assert!(log.contains(needle), "the error lacks {needle:?}:\n{log}");
    }
    assert!(
        !stack.path().join("app.started").exists(),
        "a service started although a required plugin was refused:\n{log}"
    );
    assert!(
        !log.contains("service=app"),
        "the orchestrator started the services:\n{log}"
    );
    if stack.socket().exists() {
        eprintln!(
            "NOTE: the control socket {} was left behind (the next start replaces it)",
            stack.socket().display()
        );
    }
}
