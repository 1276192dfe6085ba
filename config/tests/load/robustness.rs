//! Odd inputs give errors, never a panic, and every error is one line.

use stackctl_config::load;

use crate::{env, file, sources, sources_with};

fn check(s: &stackctl_config::Sources) {
    if let Err(errors) = load(s) {
        assert!(!errors.is_empty());
        for e in errors.errors() {
            let text = e.to_string();
            assert!(!text.is_empty() && !text.contains('\n'), "{text:?}");
        }
    }
}

#[test]
fn odd_files() {
    let deep = format!("a = {}{}", "[".repeat(2000), "]".repeat(2000));
    let cases = [
        "services = 5",
        "services.x = 5",
        "plugins = 5",
        "plugins.x = 5",
        "[[services]]\ncommand = \"x\"",
        "[services.x]",
        "[services.x]\ncommand = \"x\"\nready = \"tcp\"",
        "[services.x]\ncommand = \"x\"\nbuild = [1, [2], {}]",
        "[services.x]\ncommand = \"x\"\ndepends_on = [\"a\"]",
        "[services.x]\ncommand = \"x\"\nenv = { A = 1 }",
        "[services.x]\ncommand = \"x\"\nready = { exec = [] }",
        "[services.x]\ncommand = \"x\"\nliveness = { shm = \"/a\", retries = -1 }",
        "[services.\"é.ü\"]\ncommand = \"x\"",
        "[services.x]\ncommand = \"{\"\nargs = [\"}\", \"{{\", \"{a.b.c.d.e}\"]",
        "[detector]\nscore_threshold = nan\nnms_threshold = inf",
        "[http]\nport = 9223372036854775807",
        "[source]\nopen_timeout = \"99999999999999999999s\"",
        "when = 1979-05-27T07:32:00Z\n[log]\nlevel = 1979-05-27",
        "[plugins.x]\nwhen = 1979-05-27\nnested = { a = { b = [1, 2] } }",
        deep.as_str(),
        "\u{0}",
        "[",
    ];
    for text in cases {
        check(&sources_with(&file(text)));
    }
}

#[test]
fn odd_variables_and_flags() {
    let mut s = sources();
    s.env = env(&[
        ("STACKCTL_SERVICES", "5"),
        ("STACKCTL_SERVICES__X", "{ command = 1 }"),
        ("STACKCTL_HTTP", "[1]"),
        ("STACKCTL___", "x"),
        ("STACKCTL_PLUGINS__A__B__C", "1979-05-27"),
        ("MONITOR_PORT", ""),
        ("YOLO_MODEL", "[\"v8n\"]"),
    ]);
    s.flags.sets = vec![
        "services.y={ depends_on = { y = \"ready\" } }".into(),
        "services.y.command={}".into(),
        "=".into(),
        "a=[".into(),
    ];
    check(&s);
}

#[test]
fn a_list_where_a_table_belongs() {
    let text = "[[services.x]]\ncommand = \"x\"\n\n[log]\nlevel = 1979-05-27\n";
    let f = file(text);
    let p = f.path.display();
    assert_eq!(
        crate::errors(&sources_with(&f)),
        [
            format!("log.level = 1979-05-27: expected a string, from {p} line 5"),
            format!("services.x = [{{ command = \"x\" }}]: expected a table, from {p} line 1"),
        ]
    );
    let mut s = sources();
    s.env = env(&[("STACKCTL_HTTP", "[1]")]);
    assert_eq!(
        crate::errors(&s),
        ["http = [1]: expected a table, from env STACKCTL_HTTP"]
    );
}

/// A configuration file is read up to a bound: `--config /dev/zero` (endless) and a file over
/// 1 MiB are refused with the limit in the message, instead of reading until memory runs out.
#[test]
fn an_endless_or_huge_file_is_refused() {
    let mut s = sources();
    s.file = Some("/dev/zero".into());
    let errors = crate::errors(&s);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("/dev/zero") && errors[0].contains("larger than 1 MiB"),
        "{errors:?}"
    );

    let big = format!("# {}\n", "x".repeat(1 << 20));
    let errors = crate::errors(&sources_with(&file(&big)));
    assert!(
        errors.len() == 1 && errors[0].contains("larger than 1 MiB"),
        "{errors:?}"
    );
}

/// The detection and NV12 segments are checked like the camera's ring, and `""` turns either
/// off.
#[test]
fn detection_and_nv12_segment_names_are_checked() {
    let f = file("[source]\ndetections = \"pet_camera_detections\"\nnv12 = \"\"\n");
    let errors = crate::errors(&sources_with(&f));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("source.detections = \"pet_camera_detections\": not a shared-memory name")
            && errors[0].contains("line 2"),
        "{errors:?}"
    );
}
