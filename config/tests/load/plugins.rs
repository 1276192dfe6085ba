//! `[plugins.NAME]` sections: the host's keys read and checked with their origins, the rest
//! handed to the plugin, the legacy options filled in.

use stackctl_config::{DEFAULT_QUEUE, PluginSection, Sources, load};
use toml::Table;

use crate::{env, errors, file, ok, sources, sources_with};

const SINKS: &str = "[plugins.streaming]\npath = \"libsink_webrtc.so\"\n\
                     [plugins.recording]\npath = \"libsink_recorder.so\"\n";

fn section(sources: &Sources, name: &str) -> PluginSection {
    ok(sources)
        .plugins
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
}

fn own(sources: &Sources, name: &str) -> Table {
    let text = section(sources, name).own_toml();
    toml::from_str(&text).unwrap()
}

#[test]
fn host_keys_are_the_hosts_and_the_rest_is_the_plugins() {
    let f = file(
        "[plugins.stats]\npath = \"libsink_stats.so\"\nenabled = false\nrequired = true\n\
         queue = 5\nwindow = 30\n[plugins.stats.nested]\nx = 1\n",
    );
    let s = sources_with(&f);
    let stats = section(&s, "stats");
    assert_eq!(
        (
            stats.path.as_str(),
            stats.enabled,
            stats.required,
            stats.queue
        ),
        ("libsink_stats.so", false, true, 5)
    );
    let own = own(&s, "stats");
    assert_eq!(own.keys().collect::<Vec<_>>(), ["nested", "window"]);
    assert_eq!(own["window"].as_integer(), Some(30));
    // Defaults.
    let f = file("[plugins.x]\npath = \"/p/libx.so\"\n");
    let x = section(&sources_with(&f), "x");
    assert_eq!(
        (x.enabled, x.required, x.queue, x.own.len()),
        (true, false, DEFAULT_QUEUE, 0)
    );
}

#[test]
fn bad_host_keys_are_errors_with_their_origin_and_all_are_reported() {
    let text = "[plugins.a]\npath = 3\n\n[plugins.b]\nwindow = 1\n\n[plugins.c]\npath = \"c.so\"\n\
                queue = 0\nenabled = \"yes\"\nrequired = 1\n";
    let f = file(text);
    let at = |needle: &str| f.origin_at(text, needle);
    assert_eq!(
        errors(&sources_with(&f)),
        [
            format!(
                "plugins.a.path = 3: expected the plugin's file name or path, {}",
                at("path = 3")
            ),
            format!(
                "plugins.b.path: missing (the plugin's file, e.g. \"libsink_b.so\"), {}",
                at("[plugins.b]")
            ),
            format!(
                "plugins.c.enabled = \"yes\": expected true or false, {}",
                at("enabled")
            ),
            format!(
                "plugins.c.queue = 0: expected a number of frames, 1 to 10000, {}",
                at("queue")
            ),
            format!(
                "plugins.c.required = 1: expected true or false, {}",
                at("required")
            ),
        ]
    );
    // From a flag, the flag is the origin.
    let mut s = sources();
    s.flags.sets = vec!["plugins.d.path=d.so".into(), "plugins.d.queue=20000".into()];
    assert_eq!(
        errors(&s),
        [
            "plugins.d.queue = 20000: expected a number of frames, 1 to 10000, from flag --set plugins.d.queue=20000"
        ]
    );
}

#[test]
fn route_prefix_puts_a_prefix_in_front_of_the_plugins_routes_and_bad_ones_are_errors() {
    let f = file("[plugins.clips]\npath = \"libsink_recorder.so\"\nroute_prefix = \"/clips/v1\"\n");
    let clips = section(&sources_with(&f), "clips");
    assert_eq!(clips.route_prefix.as_deref(), Some("/clips/v1"));
    assert!(clips.own.is_empty(), "route_prefix is the host's key");
    let f = file("[plugins.x]\npath = \"x.so\"\n");
    assert_eq!(section(&sources_with(&f), "x").route_prefix, None);
    let expected = "expected a path prefix such as \"/clips\": `/` and segments of letters, \
                    digits, `-`, `_`, `.`, `~`, without a trailing `/`";
    // (value, problem)
    let long = format!("\"/{}\"", "a".repeat(64));
    for (value, problem) in [
        ("\"clips\"", expected),
        ("\"/clips/\"", expected),
        ("\"/\"", expected),
        ("\"/a//b\"", expected),
        ("\"/a/../b\"", expected),
        ("\"/a b\"", expected),
        ("\"/a?b\"", expected),
        ("\"/a%2e\"", expected),
        ("3", "expected a path prefix such as \"/clips\""),
        (long.as_str(), "at most 64 bytes"),
    ] {
        let text = format!("[plugins.m]\npath = \"m.so\"\nroute_prefix = {value}\n");
        let f = file(&text);
        assert_eq!(
            errors(&sources_with(&f)),
            [format!(
                "plugins.m.route_prefix = {value}: {problem}, {}",
                f.origin_at(&text, "route_prefix")
            )],
            "{value}"
        );
    }
}

#[test]
fn no_streaming_switches_the_streaming_plugin_off() {
    let f = file(SINKS);
    let mut s = sources_with(&f);
    assert!(section(&s, "streaming").enabled);
    s.flags.no_streaming = true;
    assert!(!section(&s, "streaming").enabled);
    assert!(section(&s, "recording").enabled);
}

#[test]
fn legacy_options_reach_the_sinks_that_replaced_the_streaming_server() {
    // Absent from the sections: the top-level values (defaults here).
    let f = file(SINKS);
    let s = sources_with(&f);
    assert_eq!(own(&s, "streaming")["max_clients"].as_integer(), Some(10));
    assert_eq!(
        own(&s, "recording")["dir"].as_str(),
        ok(&s).config.recording.path.to_str()
    );
    // The file's top-level keys, when the sections do not set theirs.
    let f = file(&format!(
        "[streaming]\nmax_clients = 4\n[recording]\npath = \"/rec\"\n{SINKS}"
    ));
    let s = sources_with(&f);
    assert_eq!(own(&s, "streaming")["max_clients"].as_integer(), Some(4));
    assert_eq!(own(&s, "recording")["dir"].as_str(), Some("/rec"));
    // The section's own value beats the file's top level...
    let f = file(
        "[streaming]\nmax_clients = 4\n\
         [plugins.streaming]\npath = \"libsink_webrtc.so\"\nmax_clients = 7\n\
         [plugins.recording]\npath = \"libsink_recorder.so\"\ndir = \"/mine\"\n",
    );
    let s = sources_with(&f);
    assert_eq!(own(&s, "streaming")["max_clients"].as_integer(), Some(7));
    assert_eq!(own(&s, "recording")["dir"].as_str(), Some("/mine"));
    // ...but the script's variables and flags beat the file, as they always did.
    let mut s = sources_with(&f);
    s.env = env(&[("STREAMING_MAX_CLIENTS", "3"), ("RECORDING_PATH", "/env")]);
    assert_eq!(own(&s, "streaming")["max_clients"].as_integer(), Some(3));
    assert_eq!(own(&s, "recording")["dir"].as_str(), Some("/env"));
    s.env = env(&[("STREAMING_MAX_CLIENTS", "3")]);
    s.flags.max_clients = Some(2);
    assert_eq!(own(&s, "streaming")["max_clients"].as_integer(), Some(2));
    assert!(load(&s).is_ok());
}
