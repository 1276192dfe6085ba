//! Downloads stream from disk through the host's streamed answers (ABI 1.2), in the real
//! `stackctl up` with the real camsim: a recording larger than the old 8 MiB answer cap comes
//! whole and byte-equal (ranges and event clips too); clients that ask for a large recording
//! and never read hold a bounded amount of stackctl's memory, the fifth at once gets 503 with
//! `Retry-After`, and the write time-out closes the stalled ones and tells the recorder, which
//! stops reading.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{Recording, metric, request};
use stackctl_tests::plugins::poll;
use stackctl_tests::up::{EVENT_TIMEOUT, proc_status};

/// `len` bytes no two runs of which repeat soon (a wrong offset shows).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `RssAnon`).
fn kib(pid: u32, key: &str) -> u64 {
    proc_status(pid, key)
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} for {pid}"))
}

#[test]
fn a_recording_over_8_mib_downloads_whole_and_byte_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    let data = pattern(20 << 20);
    std::fs::write(rec.join("recording_20200101_000000.mp4"), &data).expect("write");
    std::fs::write(rec.join("event_20200101_000000.mp4"), &data[..9 << 20]).expect("write");
    let stack = Recording::new("rec-big", &[], &rec, "");
    let port = stack.port;
    let mut up = stack.up();

    let whole = request(
        port,
        "GET",
        "/recordings/recording_20200101_000000.mp4",
        &[],
    );
    assert_eq!(whole.code, 200, "{}", whole.text());
    assert_eq!(whole.header("content-length"), Some("20971520"));
    assert_eq!(whole.header("content-type"), Some("video/mp4"));
    assert!(
        whole.body == data,
        "{} bytes, not the file",
        whole.body.len()
    );

    let rest = request(
        port,
        "GET",
        "/recordings/recording_20200101_000000.mp4",
        &[("Range", "bytes=1000-")],
    );
    assert_eq!(rest.code, 206);
    assert_eq!(
        rest.header("content-range"),
        Some("bytes 1000-20971519/20971520")
    );
    assert!(rest.body == data[1000..], "{} bytes", rest.body.len());
    let part = request(
        port,
        "GET",
        "/recordings/recording_20200101_000000.mp4",
        &[("Range", "bytes=12582912-12583011")],
    );
    assert_eq!((part.code, &part.body[..]), (206, &data[12 << 20..][..100]));

    let clip = request(port, "GET", "/events/event_20200101_000000.mp4", &[]);
    assert_eq!(clip.code, 200, "{}", clip.text());
    assert!(clip.body == data[..9 << 20], "{} bytes", clip.body.len());
    assert_eq!(metric(port, "recorder_downloads_active"), 0.0);
    up.terminate();
}

/// Sends a GET for `target` and reads the answer's head only, byte by byte, leaving the body
/// unread: the status code.
fn head_only(port: u16, target: &str) -> (TcpStream, u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(EVENT_TIMEOUT)).expect("timeout");
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (s, code)
}

#[test]
fn stalled_downloads_are_bounded_capped_at_max_downloads_and_cut_by_the_write_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("rec");
    std::fs::create_dir(&rec).expect("mkdir");
    // 1 GiB, sparse: more than the kernel's socket buffers take for a client that never reads.
    let big = std::fs::File::create(rec.join("recording_20200101_000000.mp4")).expect("create");
    big.set_len(1 << 30).expect("set_len");
    drop(big);
    let stack = Recording::new("rec-stall", &[], &rec, "");
    let port = stack.port;
    let mut up = stack
        .stack
        .up(&[], &[("STACKCTL_HTTP__WRITE_TIMEOUT", "3s")]);
    up.first_line(&["stack ready"]);
    let pid = up.pid();
    let url = "/recordings/recording_20200101_000000.mp4";
    // Warm the path once (threads, buffers, allocator arenas) so the figure is the stalls'.
    let warm = request(port, "GET", url, &[("Range", "bytes=0-1048575")]);
    assert_eq!(warm.code, 206);
    let before = kib(pid, "RssAnon");
    let rss_before = kib(pid, "VmRSS");

    // The most RssAnon seen while the stalled downloads live, sampled until they are cut.
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(now) = proc_status(pid, "RssAnon")
                    .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                // A sampling period, not a wait for an event.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
    };

    // 20 clients; the first 4 (max_downloads) stream and never read past the head.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let (s, code) = head_only(port, url);
        assert_eq!(code, 200);
        stalled.push(s);
    }
    for i in 4..20 {
        let a = request(port, "GET", url, &[]);
        assert_eq!(a.code, 503, "client {}: {}", i + 1, a.text());
        assert_eq!(a.header("retry-after"), Some("2"), "client {}", i + 1);
        assert!(a.text().contains("max_downloads"), "{}", a.text());
    }
    assert_eq!(metric(port, "recorder_downloads_active"), 4.0);
    assert_eq!(metric(port, "recorder_downloads_refused_total"), 16.0);

    // The write time-out cuts all four, and the recorder is told (its threads end).
    for _ in 0..4 {
        up.wait_line(&["streamed answer cut: nothing sent for 3s (write time-out)"]);
    }
    poll("the downloads to end", EVENT_TIMEOUT, || {
        let active = metric(port, "recorder_downloads_active");
        if active == 0.0 {
            Ok(())
        } else {
            Err(format!("{active} active"))
        }
    });
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    assert_eq!(metric(port, "recorder_downloads_cut_total"), 4.0);
    let peak = peak.load(Ordering::Relaxed);
    let after = kib(pid, "RssAnon");
    let growth = peak.saturating_sub(before);
    eprintln!(
        "stackctl RssAnon: {before} KiB before, peak {peak} KiB with 4 stalled downloads and 16 \
         refused (+{growth} KiB), {after} KiB after the cut; VmRSS before {rss_before} KiB"
    );
    // A streaming download holds at most 256 KiB by construction: a 64 KiB chunk in the
    // recorder, STACKCTL_HTTP_STREAM_BUFFER (128 KiB) in the host, 64 KiB in the connection's
    // buffer. Four of them, and 1.5 MiB of slack for the 20 connections' tasks, the download
    // threads' stacks and the allocator (measured: about +1.3 MiB in all).
    assert!(
        growth <= 4 * 256 + 1536,
        "stackctl grew by {growth} KiB with 20 stalled clients"
    );

    // Each stalled connection was closed mid-body: EOF, short of the announced length.
    for mut s in stalled {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("EOF: the server closed it");
        assert!(
            (rest.len() as u64) < 1 << 30,
            "{} bytes: the whole body?",
            rest.len()
        );
    }
    // The slots are free again.
    let again = request(port, "GET", url, &[("Range", "bytes=0-99")]);
    assert_eq!((again.code, again.body.len()), (206, 100));
    up.terminate();
    assert!(Path::new(&rec).exists());
}
