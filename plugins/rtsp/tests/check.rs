//! `stackctl check` with the real RTSP plugin: every range the sink validates (ports, the RTP
//! port range, `max_clients`, the time-outs) is refused at `create`, so `check` fails with exit
//! code 2 and the plugin's own message naming the key, without starting anything. Before,
//! these surfaced only when `up` started the plugin.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::RtspStack;
use stackctl_tests::up::assert_fails_with;

#[test]
fn check_refuses_every_range_with_the_key_and_exit_2() {
    for (keys, key, value) in [
        ("port = 0", "port", "0"),
        ("udp_ports = [8601, 8700]", "udp_ports", "[8601, 8700]"),
        ("udp_ports = [8600, 8600]", "udp_ports", "[8600, 8600]"),
        ("max_clients = 0", "max_clients", "0"),
        (
            "session_timeout = \"0s\"",
            "session_timeout",
            "must be between 1 s and 1 h",
        ),
        (
            "request_timeout = \"1ms\"",
            "request_timeout",
            "must be between 100 ms and 10 min",
        ),
    ] {
        // `port = 0` replaces the stack's own port line: TOML refuses a key twice.
        let stack = RtspStack::new("rtsp-check", &[], "");
        let config = stack.stack.config_file();
        let text = std::fs::read_to_string(&config).expect("config");
        let text = if key == "port" {
            text.replace(&format!("port = {}\n", stack.port), &format!("{keys}\n"))
        } else if key == "udp_ports" {
            let line = text
                .lines()
                .find(|l| l.starts_with("udp_ports"))
                .expect("udp_ports")
                .to_owned();
            text.replace(&line, keys)
        } else {
            text.replace("[plugins.rtsp]\n", &format!("[plugins.rtsp]\n{keys}\n"))
        };
        std::fs::write(&config, text).expect("write");
        let out = stack.stack.stackctl(&["check"]);
        let stderr = assert_fails_with(
            &out,
            2,
            &[
                "plugin rtsp: configuration refused",
                &format!("{key}: "),
                value,
            ],
            keys,
        );
        eprintln!("{keys}: {stderr}");
    }

    // The defaults pass.
    let stack = RtspStack::new("rtsp-check", &[], "");
    let out = stack.stack.stackctl(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
