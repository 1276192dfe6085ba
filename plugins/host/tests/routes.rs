//! Which plugin a path goes to when some cannot answer, through the real loader and the C sink
//! `c/boundary_sink.c` (two instances of one library, so two owners of the same route): the one
//! that runs wins; a refused one's routes say why; a stopping stack's routes may come back.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use stackctl_config::PluginSection;
use stackctl_core::Bus;
use stackctl_plugin_host::{PluginHost, Routed};
use stackctl_tests::plugins::c_plugin;

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
