//! A plugin's section as data (ABI 1.1) and the error format, through the real loader and the C
//! probe (`tests/plugins/probe_sink.c`): the values a C plugin reads without a TOML parser, a
//! configuration error shown as `plugin NAME: configuration refused: KEY: ... (plugins.NAME.KEY
//! = VALUE)`, a section beyond the ABI's limits refused before `create`, and the reason a
//! plugin gives (`fail_reason`) shown with its failure.
#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use stackctl_core::frame::{Frame, FrameMeta};
use stackctl_media::h264::analyse;
use stackctl_plugin_host::{Plugin, StartError, loader};
use stackctl_tests::plugins::{probe_plugin, toml_path};

fn frame(number: u64) -> Arc<Frame> {
    let data = vec![0, 0, 0, 1, 0x41, 0x9a, 0x5a];
    let info = analyse(&data).expect("valid access unit");
    let meta = FrameMeta {
        frame_number: number,
        sequence: number as u32,
        timestamp_ns: number * 33_333_333,
        received_ns: number * 33_333_333,
        camera_id: 0,
        width: 320,
        height: 240,
        generation: 0,
    };
    Arc::new(Frame::new(meta, data.into_boxed_slice(), info, None))
}

fn refused(result: Result<Arc<Plugin>, StartError>) -> String {
    match result {
        Err(e @ StartError::Config { .. }) => e.to_string(),
        Err(other) => panic!("refused, but not as a configuration error: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn a_c_plugin_reads_its_section_as_typed_values() {
    let Some(path) = probe_plugin("probe_config", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("probe.txt");
    let config = format!(
        "output = {}\nwindow = 3\nratio = 0.25\non = true\nbind = [\"a\", \"b\"]\n\
         [limits]\nmax = -7\n",
        toml_path(&out)
    );
    let lib = loader::load("p", &path).expect("load");
    let plugin = Plugin::start("p", lib, &config).expect("start");
    plugin.stop();
    let text = std::fs::read_to_string(&out).expect("the probe's output");
    let mut values: Vec<&str> = text.lines().filter(|l| l.starts_with("C ")).collect();
    values.sort_unstable();
    let output = format!("C output string {}", out.display());
    let mut want = vec![
        "C bind.0 string a",
        "C bind.1 string b",
        "C limits.max integer -7",
        "C on bool 1",
        output.as_str(),
        "C ratio float 0.25",
        "C window integer 3",
    ];
    want.sort_unstable();
    assert_eq!(values, want);
}

#[test]
fn configuration_errors_name_the_plugin_the_key_and_its_value() {
    let Some(path) = probe_plugin("probe_config", &[]) else {
        return;
    };
    let start = |config: &str| Plugin::start("cam", loader::load("cam", &path).unwrap(), config);
    assert_eq!(
        refused(start("refuse = \"window\"\nwindow = 3\n")),
        "plugin cam: configuration refused: window: refused on request (plugins.cam.window = 3)"
    );
    assert_eq!(
        refused(start(
            "refuse = \"limits.name\"\nlimits = { name = \"x\" }\n"
        )),
        "plugin cam: configuration refused: limits.name: refused on request \
         (plugins.cam.limits.name = \"x\")"
    );
    // A key the section does not have (e.g. a missing one): no value to show.
    assert_eq!(
        refused(start("refuse = \"absent\"\n")),
        "plugin cam: configuration refused: absent: refused on request"
    );
    // Beyond the ABI's limits: refused before the plugin is asked.
    let many: String = (0..=1024).map(|i| format!("k{i} = {i}\n")).collect();
    assert_eq!(
        refused(start(&many)),
        "plugin cam: configuration refused: more than 1024 values (the limit of the sink ABI)"
    );
}

#[test]
fn the_reason_a_plugin_gives_is_shown_with_its_failure() {
    let Some(path) = probe_plugin("probe_config", &[]) else {
        return;
    };
    let lib = loader::load("f", &path).expect("load");
    let plugin = Plugin::start("f", lib, "fail_after = 2\n").expect("start");
    plugin.deliver(frame(1));
    assert!(!plugin.is_failed());
    plugin.deliver(frame(2));
    assert_eq!(
        plugin.failure().as_deref(),
        Some("on_frame returned a failure: told to fail at frame 2")
    );
    plugin.stop();
}
