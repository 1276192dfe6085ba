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
        route_prefix: None,
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

/// Two instances of one library both serve HTTP when the second has a `route_prefix`: its routes are
/// served behind it, it sees its own paths, and it is told the prefix (for its links); a
/// client cannot pass its own prefix header to a plugin.
#[tokio::test]
async fn a_second_instance_with_a_route_prefix_serves_its_routes_behind_it() {
    let Some(path) = c_plugin("sink_echo", "plugins/host/tests/c/echo_sink.c", &[]) else {
        return;
    };
    let path = path.display().to_string();
    let mut second = section("second", &path, true);
    second.route_prefix = Some("/two".into());
    let bus = Bus::new();
    let host =
        PluginHost::start(&[section("first", &path, true), second], &[], &bus).expect("both start");
    let served: Vec<_> = host
        .statuses()
        .into_iter()
        .map(|s| (s.name, s.state, s.routes))
        .collect();
    assert_eq!(
        served,
        [
            ("first".into(), "running".into(), vec!["/".to_owned()]),
            ("second".into(), "running".into(), vec!["/two".to_owned()]),
        ]
    );
    let echo = |plugin: &std::sync::Arc<stackctl_plugin_host::Plugin>, uri: &str| {
        let request = http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("x-forwarded-prefix", "/forged")
            .body(bytes::Bytes::new())
            .unwrap();
        let plugin = plugin.clone();
        async move {
            let answer = plugin.http(request).await.expect("an answer");
            String::from_utf8_lossy(answer.body().whole().expect("a whole answer")).into_owned()
        }
    };
    // (path asked, who answers, what it saw)
    for (uri, who, saw) in [
        (
            "/two/echo?x=1",
            "second",
            "GET /echo ?x=1 type= body= prefix=/two",
        ),
        ("/echo", "first", "GET /echo ? type= body="),
    ] {
        let plugin = match host.route(uri.split('?').next().unwrap()) {
            Some(Routed::Plugin(p)) => p.clone(),
            other => panic!("{uri}: {other:?}"),
        };
        assert_eq!(plugin.name(), who, "{uri}");
        assert_eq!(echo(&plugin, uri).await, saw, "{uri}");
    }
    // A route prefix matches whole path segments.
    match host.route("/twofold/echo") {
        Some(Routed::Plugin(p)) => assert_eq!(p.name(), "first"),
        other => panic!("{other:?}"),
    }
    host.stop();
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
        route_prefix: None,
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
