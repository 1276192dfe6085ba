//! Route conflicts are refused at start-up: two plugins declaring the same route (here the C echo
//! sink, `c/echo_sink.c`, which serves "/", loaded twice) would otherwise be answered by
//! whichever section came first.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use stackctl_config::PluginSection;
use stackctl_core::bus::Bus;
use stackctl_plugin_host::PluginHost;
use stackctl_tests::plugins::c_plugin;

fn section(name: &str, path: &str, required: bool) -> PluginSection {
    PluginSection {
        name: name.into(),
        path: path.into(),
        enabled: true,
        required,
        queue: 8,
        own: toml::Table::new(),
    }
}

#[test]
fn a_second_plugin_on_the_same_route_is_refused() {
    let Some(path) = c_plugin("sink_echo", "plugins/host/tests/c/echo_sink.c", &[]) else {
        return;
    };
    let path = path.display().to_string();
    let bus = Bus::new();
    let host = PluginHost::start(
        &[
            section("first", &path, false),
            section("second", &path, false),
        ],
        &[],
        &bus,
    )
    .expect("an optional plugin's refusal does not stop the start");
    let statuses = host.statuses();
    let state = |name: &str| {
        statuses
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.state.clone(), s.detail.clone()))
            .unwrap()
    };
    assert_eq!(state("first"), ("running".into(), None));
    assert_eq!(
        state("second"),
        (
            "failed".into(),
            Some("plugin second: route / is already served by plugin first".into())
        )
    );
    assert_eq!(host.route("/anything").unwrap().name(), "first");
    host.stop();

    let refused = PluginHost::start(
        &[
            section("first", &path, false),
            section("second", &path, true),
        ],
        &[],
        &bus,
    )
    .expect_err("a required plugin's conflict stops the start");
    assert_eq!(
        refused.to_string(),
        "plugin second: route / is already served by plugin first (required)"
    );
}
