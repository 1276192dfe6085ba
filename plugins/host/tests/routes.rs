//! Which plugin a path goes to, through the real loader and C sinks: two plugins declaring the
//! same route are refused at start-up (the C echo sink, `c/echo_sink.c`, which serves "/",
//! loaded twice), since which would answer would depend on the order of the sections; when some
//! cannot answer (`c/boundary_sink.c`, two instances of one library), the one that runs wins, a
//! refused one's routes say why, and a stopping stack's routes may come back.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use stackctl_config::PluginSection;
use stackctl_core::bus::Bus;
use stackctl_plugin_host::{PluginHost, Routed};
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
    match host.route("/anything") {
        Some(Routed::Plugin(p)) => assert_eq!(p.name(), "first"),
        other => panic!("the first plugin should answer: {other:?}"),
    }
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

#[test]
fn routes_of_plugins_that_cannot_answer_say_why_and_whether_they_come_back() {
    let Some(lib) = c_plugin("sink_boundary", "plugins/host/tests/c/boundary_sink.c", &[]) else {
        return;
    };
    let section = |name: &str, own: &str| PluginSection {
        name: name.to_owned(),
        path: lib.display().to_string(),
        enabled: true,
        required: false,
        queue: 4,
        own: toml::from_str(own).unwrap(),
    };
    let bus = Bus::new();
    let refused_only = PluginHost::start(&[section("refused", "refuse = true")], &[], &bus)
        .expect("not required: the host starts without it");
    match refused_only.route("/b/ok") {
        Some(Routed::Unavailable {
            plugin,
            reason,
            may_return,
        }) => {
            assert_eq!(plugin, "refused");
            assert!(
                reason.contains("this instance was told to refuse"),
                "{reason}"
            );
            assert!(
                !may_return,
                "a refused plugin comes back only with stackctl"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(refused_only.route("/elsewhere").is_none());

    let host = PluginHost::start(
        &[section("refused", "refuse = true"), section("ok", "")],
        &[],
        &bus,
    )
    .expect("not required");
    match host.route("/b/ok") {
        Some(Routed::Plugin(p)) => assert_eq!(p.name(), "ok"),
        other => panic!("the running instance should answer: {other:?}"),
    }
    host.stop();
    match host.route("/b/ok") {
        Some(Routed::Unavailable {
            plugin, may_return, ..
        }) => {
            assert_eq!(plugin, "ok");
            assert!(may_return, "a stopping stack may be started again");
        }
        other => panic!("{other:?}"),
    }
}
