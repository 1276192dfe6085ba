//! CPU profiles from the real `stackctl up`: `go tool pprof` (a reader this project did not
//! write) reads `GET /debug/pprof/profile` the way people read the Go server's, and the
//! protobuf is also decoded here so the check runs where Go is not installed. One profile at a
//! time (409), a bad `seconds` is a 400, and without a port nothing listens.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pprof::protos::{Message, Profile};
use stackctl_tests::plugins::{http_get, http_get_bytes};
use stackctl_tests::up::{Stack, free_port};

/// A stack with one idle service and the profiler on `port` (none when `None`).
fn stack(profiling_port: Option<u16>) -> Stack {
    let mut config = "[services.idle]\ncommand = \"sleep\"\nargs = [\"600\"]\n".to_owned();
    if let Some(port) = profiling_port {
        config.push_str(&format!(
            "\n[profiling]\nport = {port}\nmax_duration = \"20s\"\n"
        ));
    }
    Stack::new(&config)
}

/// Function names and thread labels of a decoded profile, and its sample count.
fn contents(profile: &Profile) -> (BTreeSet<String>, BTreeSet<String>, i64) {
    let s = |i: i64| profile.string_table[i as usize].clone();
    let functions = profile.function.iter().map(|f| s(f.name)).collect();
    let threads = profile
        .sample
        .iter()
        .flat_map(|sample| sample.label.iter())
        .filter(|l| s(l.key) == "thread")
        .map(|l| s(l.str))
        .collect();
    let samples = profile.sample.iter().map(|x| x.value[0]).sum();
    (functions, threads, samples)
}

#[test]
fn a_profile_reads_in_go_pprof_names_our_functions_and_runs_alone() {
    let pprof_port = free_port();
    let stack = stack(Some(pprof_port));
    let http = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    up.first_line(&[&format!(
        "go tool pprof http://127.0.0.1:{pprof_port}/debug/pprof/profile"
    )]);

    // A bad duration is refused at once, whatever runs.
    for (query, needle) in [
        ("seconds=0", "\"0\""),
        ("seconds=21", "1 to 20"),
        ("seconds=x", "\"x\""),
    ] {
        let (code, body) = http_get(pprof_port, &format!("/debug/pprof/profile?{query}"));
        assert_eq!(code, 400, "{query}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("seconds = ") && message.contains(needle),
            "{query}: {body}"
        );
    }

    // The first profile runs on its own thread...
    let first =
        std::thread::spawn(move || http_get_bytes(pprof_port, "/debug/pprof/profile?seconds=3"));
    up.first_line(&["CPU profile started"]);
    // ... so a second one is refused while it runs.
    let (code, body) = http_get(pprof_port, "/debug/pprof/profile?seconds=1");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already running"), "{body}");
    // Work for stackctl's own code to be caught doing: /metrics, rendered by the supervisor,
    // until the profile ends (bounded in count too).
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let load = std::thread::spawn(move || {
        let mut n = 0;
        while !flag.load(Ordering::Relaxed) && n < 20_000 {
            let (code, _) = http_get(http, "/metrics");
            assert_eq!(code, 200);
            n += 1;
        }
        n
    });
    let (code, body) = first.join().expect("the first profile");
    done.store(true, Ordering::Relaxed);
    let scrapes = load.join().expect("the load");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

    let profile = Profile::decode(body.as_slice()).expect("pprof's protobuf");
    let (functions, threads, samples) = contents(&profile);
    assert!(samples > 0, "no sample in 3 s with {scrapes} scrapes");
    assert!(
        functions.iter().any(|f| f.starts_with("stackctl::")),
        "none of stackctl's functions in {functions:#?}"
    );
    assert!(
        threads.contains("stackctl"),
        "the supervisor's thread (the main one) is labelled: {threads:?}"
    );
    assert!(
        !functions.iter().any(|f| f.starts_with("backtrace::")),
        "the profiler's own stack walker is stripped: {functions:#?}"
    );

    // The slot is free again; a flame graph this time.
    let (code, svg) = http_get(pprof_port, "/debug/pprof/profile?seconds=1&format=svg");
    assert_eq!(code, 200, "{svg}");
    assert!(
        svg.starts_with("<?xml") && svg.contains("<svg"),
        "{svg:.200}"
    );

    go_pprof_reads(stack.path(), pprof_port);
}

/// `go tool pprof -top URL`, as on the board: it fetches the profile itself and prints the top
/// functions. Skipped, loudly, without Go.
fn go_pprof_reads(dir: &Path, port: u16) {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("SKIPPED: go tool pprof: go is not installed (apt-get install golang-go)");
        return;
    }
    let url = format!("http://127.0.0.1:{port}/debug/pprof/profile?seconds=1");
    let out = Command::new("go")
        .args(["tool", "pprof", "-top", &url])
        // Where it keeps a copy of what it fetched, and Go's own cache: inside the test.
        .env("PPROF_TMPDIR", dir)
        .env("HOME", dir)
        .env("GOCACHE", dir.join("gocache"))
        .output()
        .expect("run go tool pprof");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "go tool pprof failed:\n{stderr}\n{stdout}"
    );
    assert!(stdout.contains("Type: cpu"), "{stdout}\n{stderr}");
    assert!(stdout.contains("flat%"), "{stdout}\n{stderr}");
    assert!(
        std::fs::read_dir(dir)
            .expect("the test's directory")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("pprof.")),
        "go tool pprof saved what it fetched:\n{stderr}"
    );
}

#[test]
fn off_by_default_and_on_under_the_scripts_variable() {
    // Default: no profiler; stackctl listens on its HTTP port and nothing else.
    let stack = stack(None);
    let http = stack.http_port().expect("a free HTTP port");
    let mut up = stack.up(&[], &[]);
    up.first_line(&["stack ready"]);
    assert_eq!(listening(up.pid()), BTreeSet::from([http]));
    assert!(!up.log().contains("CPU profiles"), "{}", up.log());
    drop(up);

    // The launch script's PPROF_PORT turns it on, on loopback.
    let port = free_port();
    let mut up = stack.up(&[], &[("PPROF_PORT", &port.to_string())]);
    up.first_line(&["stack ready"]);
    assert_eq!(listening(up.pid()), BTreeSet::from([http, port]));
    let (code, body) = http_get(port, "/debug/pprof/nothing");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("/debug/pprof/profile"), "{body}");
}

/// The TCP ports process `pid` listens on: its socket inodes, matched in `/proc/net/tcp{,6}`.
fn listening(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; state 0A is LISTEN; column 9 the inode.
            if cols.len() > 9 && cols[3] == "0A" && inodes.contains(cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}
