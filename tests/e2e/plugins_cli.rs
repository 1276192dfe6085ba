//! `stackctl plugins` and `stackctl check` with plugins configured: the listing shows each
//! configured plugin's file, ABI, version and routes (and the other plugin files of the plugin
//! directories); `check` refuses a plugin file that is missing or unusable, naming it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use stackctl_tests::assert_success;
use stackctl_tests::plugins::{meta_plugin, probe_plugin, rust_plugin, toml_path};
use stackctl_tests::up::{Stack, assert_fails_with};

#[test]
fn plugins_lists_the_configured_plugins_with_their_abi_version_and_routes() {
    let stats_lib = rust_plugin("sink-stats");
    let Some(meta_lib) = meta_plugin() else {
        return;
    };
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let Some(wrong_abi) = probe_plugin("probe_abi99", &["PROBE_ABI_MAJOR=99"]) else {
        return;
    };
    // A plugin directory: meta is configured by its bare file name and found there (a name of
    // its own: the stackctl binary's directory is searched first); another library lies there
    // unconfigured.
    let stack = Stack::new("");
    let plugin_dir = stack.path().join("plugins");
    std::fs::create_dir(&plugin_dir).expect("plugin dir");
    let unique = format!("libsink_meta_{}.so", std::process::id());
    std::fs::copy(&meta_lib, plugin_dir.join(&unique)).expect("copy meta");
    std::fs::copy(&probe_lib, plugin_dir.join("libunconfigured_probe.so")).expect("copy probe");
    let stack_config = format!(
        r#"plugin_dirs = [{dir}]

[plugins.stats]
path = {stats}

[plugins.meta]
path = "{unique}"
output = "/nonexistent/meta.txt"

[plugins.off]
path = {probe}
enabled = false

[plugins.wrong_abi]
path = {wrong_abi}
"#,
        dir = toml_path(&plugin_dir),
        stats = toml_path(&stats_lib),
        probe = toml_path(&probe_lib),
        wrong_abi = toml_path(&wrong_abi),
    );
    std::fs::write(stack.config_file(), stack_config).expect("write the configuration");

    let out = stack.stackctl(&["plugins"]);
    assert_success(&out, "stackctl plugins");
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{listing}");
    let line = |name: &str| -> &str {
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{listing}"))
    };
    let expect = |name: &str, needles: &[&str]| {
        let l = line(name);
        for needle in needles {
            assert!(l.contains(needle), "{name}: {needle:?} missing from {l:?}");
        }
    };
    expect(
        "stats",
        &[
            " enabled ",
            &stats_lib.display().to_string(),
            "stats 0.1.0 (ABI 1.2)",
            "routes: /stats",
        ],
    );
    expect(
        "meta",
        &[
            " enabled ",
            &plugin_dir.join(&unique).display().to_string(),
            "meta 0.1.0 (ABI 1.2)",
            "routes: none",
        ],
    );
    expect(
        "off",
        &[" disabled ", "probe 0.0.1-test (ABI 1.2)", "routes: none"],
    );
    expect(
        "wrong_abi",
        &[
            "UNUSABLE",
            "built for sink ABI 99.2, this stackctl speaks 1.2",
        ],
    );
    let found = listing
        .lines()
        .find(|l| l.contains("libunconfigured_probe.so"))
        .unwrap_or_else(|| panic!("the unconfigured library is not listed:\n{listing}"));
    assert!(found.contains("found"), "{found}");
    assert!(found.contains("probe 0.0.1-test (ABI 1.2)"), "{found}");
}

#[test]
fn check_refuses_a_configured_plugin_file_that_does_not_exist() {
    let Some(probe_lib) = probe_plugin("probe", &[]) else {
        return;
    };
    let stack = Stack::new("");
    let missing = stack.path().join("gone").join("libghost.so");
    let write = |plugins: &str| std::fs::write(stack.config_file(), plugins).expect("write");

    // A good plugin, and a missing one that is disabled: fine.
    write(&format!(
        "[plugins.probe]\npath = {probe}\n\n[plugins.ghost]\npath = {missing}\nenabled = false\n",
        probe = toml_path(&probe_lib),
        missing = toml_path(&missing),
    ));
    let out = stack.stackctl(&["check"]);
    assert_success(&out, "stackctl check with a disabled missing plugin");
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));

    // Enabled but not required: `up` would start without it, so `check` passes, warning.
    write(&format!(
        "[plugins.probe]\npath = {probe}\n\n[plugins.ghost]\npath = {missing}\n",
        probe = toml_path(&probe_lib),
        missing = toml_path(&missing),
    ));
    let out = stack.stackctl(&["check"]);
    assert_success(
        &out,
        "stackctl check with a missing plugin that is not required",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "warning",
        "plugin ghost",
        &missing.display().to_string(),
        "required = false",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }

    // Required: refused, naming the plugin and its file.
    write(&format!(
        "[plugins.probe]\npath = {probe}\n\n[plugins.ghost]\npath = {missing}\nrequired = true\n",
        probe = toml_path(&probe_lib),
        missing = toml_path(&missing),
    ));
    let out = stack.stackctl(&["check"]);
    let stderr = assert_fails_with(
        &out,
        2,
        &["plugin ghost", &missing.display().to_string()],
        "check with a missing required plugin file",
    );
    eprintln!("{stderr}");
    assert!(!stderr.contains("plugin probe"), "{stderr}");

    // A bare file name: refused, naming the directories searched.
    write(
        "plugin_dirs = [\"/nonexistent-plugin-dir\"]\n\n[plugins.ghost]\npath = \"libghost.so\"\nrequired = true\n",
    );
    let out = stack.stackctl(&["check"]);
    let stderr = assert_fails_with(
        &out,
        2,
        &[
            "plugin ghost",
            "no file libghost.so",
            "/usr/lib/stackctl/plugins",
            "/nonexistent-plugin-dir",
        ],
        "check with a plugin file found nowhere",
    );
    eprintln!("{stderr}");
}

#[test]
fn check_refuses_a_plugin_of_another_abi() {
    let Some(wrong_abi) = probe_plugin("probe_abi99", &["PROBE_ABI_MAJOR=99"]) else {
        return;
    };
    let stack = Stack::new(&format!(
        "[plugins.wrong_abi]\npath = {}\n",
        toml_path(&wrong_abi)
    ));
    let out = stack.stackctl(&["check"]);
    let stderr = assert_fails_with(
        &out,
        2,
        &[
            "plugin wrong_abi",
            "built for sink ABI 99.2, this stackctl speaks 1.2",
        ],
        "check with a plugin of ABI 99",
    );
    eprintln!("{stderr}");
}

#[test]
fn check_reports_bad_plugin_keys_with_their_origin_among_the_other_errors() {
    let stack = Stack::new("");
    let text = "[http]\nport = 0\n\n[plugins.stats]\npath = \"libsink_stats.so\"\nqueue = 0\n\
                required = \"yes\"\n\n[plugins.nopath]\nwindow = 1\n";
    std::fs::write(stack.config_file(), text).expect("write the configuration");
    let file = stack.config_file().display().to_string();
    let out = stack.stackctl(&["check"]);
    let stderr = assert_fails_with(
        &out,
        2,
        &[
            "http.port = 0: not a port (1..=65535)",
            &format!(
                "plugins.stats.queue = 0: expected a number of frames, 1 to 10000, from {file} line 6"
            ),
            &format!(
                "plugins.stats.required = \"yes\": expected true or false, from {file} line 7"
            ),
            &format!(
                "plugins.nopath.path: missing (the plugin's file, e.g. \"libsink_nopath.so\"), from {file} line 9"
            ),
        ],
        "check with bad plugin keys",
    );
    eprintln!("{stderr}");
}
