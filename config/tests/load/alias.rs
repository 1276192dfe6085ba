//! Old key names: `legacy.pprof_port` is read as `profiling.port`, in every layer, with the
//! layers' precedence and the origin of the value as written.

use stackctl_config::Origin;

use crate::{env, errors, file, line_of, ok, sources, sources_with};

#[test]
fn the_old_name_in_a_file_sets_the_new_key_with_its_line() {
    let text = "[legacy]\npprof_port = 6061\n";
    let f = file(text);
    let loaded = ok(&sources_with(&f));
    assert_eq!(loaded.config.profiling.port, 6061);
    assert_eq!(
        loaded.origin("profiling.port"),
        Some(Origin::File {
            path: f.path.clone(),
            line: Some(line_of(text, "pprof_port")),
        })
    );
    // Written out under its new name only: the printed file loads back the same.
    let printed = loaded.to_toml();
    assert!(printed.contains("[profiling]\nport = 6061\n"), "{printed}");
    assert!(!printed.contains("legacy"), "{printed}");
}

#[test]
fn the_new_name_wins_within_a_layer_and_later_layers_win_over_both() {
    let f = file("[profiling]\nport = 7000\n[legacy]\npprof_port = 6061\n");
    assert_eq!(ok(&sources_with(&f)).config.profiling.port, 7000);

    // An old-name variable or --set beats the file's new name, as any later layer does.
    let mut s = sources_with(&f);
    s.env = env(&[("STACKCTL_LEGACY__PPROF_PORT", "7001")]);
    let loaded = ok(&s);
    assert_eq!(loaded.config.profiling.port, 7001);
    assert_eq!(
        loaded.origin("profiling.port"),
        Some(Origin::Env {
            var: "STACKCTL_LEGACY__PPROF_PORT".into()
        })
    );
    s.flags.sets = vec!["legacy.pprof_port=0".into()];
    let loaded = ok(&s);
    assert_eq!(loaded.config.profiling.port, 0);
    assert_eq!(
        loaded.origin("profiling.port"),
        Some(Origin::Flag {
            flag: "--set legacy.pprof_port=0".into()
        })
    );
}

#[test]
fn profiling_is_off_on_loopback_by_default() {
    let loaded = ok(&sources());
    let p = &loaded.config.profiling;
    assert_eq!((p.port, p.host.as_str()), (0, "127.0.0.1"));
    assert_eq!(p.max_duration.as_secs(), 60);
}

#[test]
fn bad_values_name_the_key_and_where_they_came_from() {
    let text = "[legacy]\npprof_port = 70000\n[profiling]\nmax_duration = \"500ms\"\n";
    let f = file(text);
    let lines = errors(&sources_with(&f));
    let path = f.path.display();
    assert_eq!(
        lines,
        [
            format!("profiling.max_duration = \"500ms\": must be at least 1s, from {path} line 4"),
            format!("profiling.port = 70000: not a port (0..=65535), from {path} line 2"),
        ],
    );
}
