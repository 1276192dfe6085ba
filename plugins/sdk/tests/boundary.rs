//! The SDK at the C boundary: a probe sink exported with `export_sink!` in this test binary, and
//! a fake host (Rust `extern "C"` callbacks that record every call) driving its table exactly as
//! stackctl does: create, start, on_frame, on_http, metrics, stop, destroy, free_buf.
// A failed expectation is the test failing; the host side of the ABI is unsafe by nature.
#![allow(clippy::expect_used, clippy::unwrap_used, unsafe_code)]

mod fake_host;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use fake_host::{FakeHost, OwnedFrame, Plugin};
use serde::Deserialize;
use stackctl_sink_sdk::abi::{self, log_level};
use stackctl_sink_sdk::{
    Context, Detections, Error, Frame, MetricsText, Request, Responder, RetainedFrame, Sink,
    export_sink,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    count: u32,
    /// `start` returns an error.
    #[serde(default)]
    fail_start: bool,
    /// Where to panic: "start", "frame", "detections", "http", "metrics", "stop", "drop".
    #[serde(default)]
    panic_in: String,
    /// Retain every frame.
    #[serde(default)]
    retain: bool,
}

/// The probe: does what its configuration asks, so that each test sees one behaviour.
struct Probe {
    config: Config,
    #[cfg_attr(not(feature = "runtime"), allow(dead_code))] // Only the runtime route uses it.
    ctx: Context,
    frames: AtomicU64,
    kept: Mutex<Vec<RetainedFrame>>,
}

/// A responder parked outside any instance (for the after-destroy test).
static PARKED: Mutex<Option<Responder>> = Mutex::new(None);

impl Sink for Probe {
    type Config = Config;
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "0.0.1";
    const ROUTES: &'static [&'static str] = &["/probe", "/other"];
    const WANTS_DETECTIONS: bool = true;

    fn start(config: Config, ctx: Context) -> Result<Self, Error> {
        if config.fail_start {
            return Err(Error::failed("the probe was told to fail"));
        }
        assert!(config.panic_in != "start", "the probe panics in start");
        tracing::info!(count = config.count, "probe started");
        Ok(Self {
            config,
            ctx,
            frames: AtomicU64::new(0),
            kept: Mutex::new(Vec::new()),
        })
    }

    fn on_frame(&self, frame: &Frame<'_>) {
        let n = self.frames.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            number = frame.frame_number(),
            idr = frame.is_idr(),
            "frame seen"
        );
        tracing::debug!("a debug detail");
        if self.config.retain {
            self.kept
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(frame.retain());
        }
        if self.config.panic_in == "frame" && n == 2 {
            panic!("boom in frame {}", frame.frame_number());
        }
    }

    fn on_detections(&self, detections: &Detections<'_>) {
        let items: Vec<String> = detections
            .items()
            .map(|d| {
                format!(
                    "{} {} {} {} {} {}",
                    d.class, d.confidence, d.x, d.y, d.w, d.h
                )
            })
            .collect();
        tracing::info!(
            "detections of frame {} at {}: [{}]",
            detections.frame_number(),
            detections.timestamp_ns(),
            items.join(", ")
        );
        assert!(
            self.config.panic_in != "detections",
            "the probe panics in on_detections"
        );
    }

    fn on_http(&self, request: Request, responder: Responder) {
        match request.path() {
            "/probe/ok" => responder.json(
                200,
                &serde_json::json!({
                    "frames": self.frames.load(Ordering::Relaxed),
                    "query": request.query(),
                    "accept": request.header("Accept"),
                    "body": String::from_utf8_lossy(request.body()),
                }),
            ),
            "/probe/kept" => {
                let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
                let frames: Vec<_> = kept
                    .iter()
                    .map(|f| (f.frame_number(), f.to_vec(), f.sps().map(<[u8]>::to_vec)))
                    .collect();
                responder.json(200, &frames);
            }
            "/probe/drop" => drop(responder),
            "/probe/stream" => {
                if !responder.can_stream() {
                    return responder.respond(501, &[], b"this host does not stream");
                }
                let Ok(stream) = responder.stream(200, &[("content-type", "text/plain")], Some(6))
                else {
                    return;
                };
                std::thread::spawn(move || {
                    let wait = std::time::Duration::from_secs(5);
                    match stream.write_all(b"abc", wait) {
                        Ok(()) => {}
                        Err(_) => return, // dropped: aborted
                    }
                    if stream.write_all(b"def", wait).is_ok() {
                        stream.end();
                    }
                });
            }
            "/probe/later" => {
                std::thread::spawn(move || responder.respond(202, &[("x-probe", "1")], b"later"));
            }
            #[cfg(feature = "runtime")]
            "/probe/async" => match self.ctx.runtime() {
                Ok(rt) => {
                    rt.spawn(async move {
                        tracing::warn!("answering from the runtime");
                        responder.json(200, &serde_json::json!({ "async": true }));
                    });
                }
                Err(e) => responder.json(500, &e.to_string()),
            },
            #[cfg(feature = "runtime")]
            "/probe/workers" => match self.ctx.runtime_with_workers(1) {
                Ok(rt) => responder.json(200, &rt.metrics().num_workers()),
                Err(e) => responder.json(500, &e.to_string()),
            },
            "/probe/park" => {
                *PARKED.lock().unwrap_or_else(PoisonError::into_inner) = Some(responder);
            }
            "/probe/panic" => panic!("boom in http"),
            _ => Self::default_http(request, responder),
        }
    }

    fn metrics(&self) -> String {
        assert!(
            self.config.panic_in != "metrics",
            "the probe panics in metrics"
        );
        let mut m = MetricsText::new();
        m.counter(
            "probe_frames_total",
            "Frames seen.",
            self.frames.load(Ordering::Relaxed),
        );
        m.finish()
    }

    fn stop(&self) {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        assert!(self.config.panic_in != "stop", "the probe panics in stop");
    }
}

impl Probe {
    /// The trait's default `on_http`, reached through a type that does not override it.
    fn default_http(request: Request, responder: Responder) {
        struct Plain;
        impl Sink for Plain {
            type Config = ();
            const NAME: &'static str = "plain";
            const VERSION: &'static str = "0";
            fn start((): (), _: Context) -> Result<Self, Error> {
                Ok(Self)
            }
            fn on_frame(&self, _: &Frame<'_>) {}
        }
        Plain.on_http(request, responder);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        assert!(self.config.panic_in != "drop", "the probe panics in drop");
    }
}

export_sink!(Probe);

unsafe extern "C" {
    /// The symbol `export_sink!` defined, found the way stackctl finds it.
    fn stackctl_sink_entry() -> *const abi::Sink;
}

fn plugin() -> Plugin {
    // SAFETY: the entry returns the static table.
    unsafe { Plugin::new(stackctl_sink_entry()) }
}

fn frame(n: u64) -> Box<OwnedFrame> {
    OwnedFrame::new(
        n,
        n * 33_333_333,
        n % 30 == 1,
        vec![0, 0, 0, 1, 0x65, n as u8],
    )
}

#[test]
fn the_table_describes_the_sink() {
    let t = plugin().table;
    assert_eq!(t.magic, abi::MAGIC);
    assert_eq!((t.abi_major, t.abi_minor), (abi::ABI_MAJOR, abi::ABI_MINOR));
    assert_eq!(t.struct_size as usize, size_of::<abi::Sink>());
    // SAFETY: the table's strings are static.
    let s = |s: abi::Str| unsafe { std::str::from_utf8(std::slice::from_raw_parts(s.ptr, s.len)) };
    assert_eq!(s(t.name), Ok("probe"));
    assert_eq!(s(t.version), Ok("0.0.1"));
    // SAFETY: `route_count` routes at `routes`, static.
    let routes = unsafe { std::slice::from_raw_parts(t.routes, t.route_count) };
    let routes: Vec<_> = routes.iter().map(|r| s(*r).unwrap()).collect();
    assert_eq!(routes, ["/probe", "/other"]);
}

#[test]
fn a_full_life_with_frames_requests_and_metrics() {
    let p = plugin();
    let host = FakeHost::new(log_level::TRACE);
    let i = p.create(&host, "count = 3").expect("created");
    // Before start: no metrics, requests get 503.
    assert_eq!(p.metrics(&i), (abi::STATUS_OK, String::new()));
    assert_eq!(p.http(&i, 1, "GET", "/probe/ok", ""), abi::STATUS_OK);
    assert_eq!(host.wait_response(1).status, 503);

    p.start(&i).expect("started");
    for n in 1..=3 {
        assert_eq!(p.frame(&i, &frame(n)), abi::STATUS_OK);
    }
    assert_eq!(p.http(&i, 2, "GET", "/probe/ok", "x=1"), abi::STATUS_OK);
    let r = host.wait_response(2);
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains(&("content-type".into(), "application/json".into()))
    );
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "frames": 3, "query": "x=1", "accept": "application/json", "body": "request body"
        })
    );
    // Answered later, from another thread.
    assert_eq!(p.http(&i, 3, "GET", "/probe/later", ""), abi::STATUS_OK);
    let r = host.wait_response(3);
    assert_eq!((r.status, r.body.as_str()), (202, "later"));
    assert_eq!(r.headers, [("x-probe".to_owned(), "1".to_owned())]);
    // The trait's default: 404 JSON.
    assert_eq!(p.http(&i, 4, "GET", "/other/x", ""), abi::STATUS_OK);
    let r = host.wait_response(4);
    assert_eq!(r.status, 404);
    assert!(r.body.contains("/other/x"), "{}", r.body);

    // The metrics buffer round trip: read it, give it back through free_buf (`take`).
    let (status, text) = p.metrics(&i);
    assert_eq!(status, abi::STATUS_OK);
    assert!(text.contains("\nprobe_frames_total 3\n"), "{text}");

    p.stop(&i);
    // After stop: frames are ignored, metrics still answer.
    assert_eq!(p.frame(&i, &frame(4)), abi::STATUS_OK);
    assert!(p.metrics(&i).1.contains("probe_frames_total 3"));
    p.destroy(i);
    assert!(host.logged(log_level::INFO, "probe started count=3"));
}

/// Streamed answers (ABI 1.2): `Responder::stream` and `ResponseStream` over the host's calls,
/// waiting for `on_http_writable` after a WOULD_BLOCK; and a host without them is told apart.
#[test]
fn a_stream_waits_for_on_http_writable_and_an_old_host_answers_whole() {
    let p = plugin();
    let old = FakeHost::new(log_level::INFO);
    let i = p.create(&old, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.http(&i, 1, "GET", "/probe/stream", ""), abi::STATUS_OK);
    assert_eq!(old.wait_response(1).status, 501);
    p.stop(&i);
    p.destroy(i);

    let host = FakeHost::streaming(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    host.record.block_next.store(true, Ordering::SeqCst);
    assert_eq!(p.http(&i, 7, "GET", "/probe/stream", ""), abi::STATUS_OK);
    // The writer thread waits for room: nothing more until the host says so.
    assert_eq!(
        host.wait_streamed("would_block"),
        ["start 200 6", "would_block"]
    );
    p.writable(&i, 7);
    assert_eq!(
        host.wait_streamed("end"),
        [
            "start 200 6",
            "would_block",
            "chunk abc",
            "chunk def",
            "end"
        ]
    );
    assert!(host.responses().is_empty(), "no whole answer besides");
    p.stop(&i);
    p.destroy(i);
}

#[test]
fn a_bad_config_is_refused_with_a_message_naming_the_key() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let (status, message) = p.create(&host, "count = \"three\"").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_CONFIG);
    assert_eq!(
        message,
        "count: invalid type: string \"three\", expected u32"
    );
    let (status, message) = p.create(&host, "cuont = 3").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_CONFIG);
    assert!(
        message.starts_with("cuont: unknown field `cuont`"),
        "{message}"
    );
    let (status, message) = p.create(&host, "count = ").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_CONFIG);
    assert!(message.contains("line 1"), "{message}");
    // An empty section is fine: every key has a default.
    let i = p.create(&host, "").expect("created");
    p.destroy(i);
}

#[test]
fn a_host_of_another_major_or_too_short_is_refused() {
    let p = plugin();
    let mut host = FakeHost::new(log_level::INFO);
    host.table.abi_major = 2;
    let (status, message) = p.create(&host, "").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_FAILED);
    let claimed = format!("ABI 2.{}", abi::ABI_MINOR);
    assert!(message.contains(&claimed), "{message}");
    host.table.abi_major = abi::ABI_MAJOR;
    host.table.struct_size = 16;
    let (status, message) = p.create(&host, "").err().expect("refused");
    assert_eq!(status, abi::STATUS_ERR_FAILED);
    assert!(message.contains("16 bytes"), "{message}");

    let mut instance = std::ptr::null_mut();
    let mut error = abi::Buf::EMPTY;
    // SAFETY: a NULL host is what is under test; the out-parameters are valid.
    let status =
        unsafe { (p.table.create)(std::ptr::null(), abi::Str::EMPTY, &mut instance, &mut error) };
    assert_eq!(status, abi::STATUS_ERR_FAILED);
    assert!(p.take(error).contains("NULL"));
    assert!(instance.is_null());
}

#[test]
fn start_reports_errors_and_panics() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "fail_start = true").expect("created");
    assert_eq!(
        p.start(&i),
        Err((abi::STATUS_ERR_FAILED, "the probe was told to fail".into()))
    );
    p.destroy(i);

    let i = p.create(&host, "panic_in = \"start\"").expect("created");
    let (status, message) = p.start(&i).expect_err("panicked");
    assert_eq!(status, abi::STATUS_ERR_PANIC);
    assert!(
        message.starts_with("panicked in start: the probe panics in start (at "),
        "{message}"
    );
    assert!(message.contains("boundary.rs"), "{message}");
    p.destroy(i);
}

#[test]
fn a_panicking_on_frame_returns_and_poisons_the_instance() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "panic_in = \"frame\"").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.frame(&i, &frame(1)), abi::STATUS_OK);
    // The panic stops at the boundary: a status, not an unwind.
    assert_eq!(p.frame(&i, &frame(2)), abi::STATUS_ERR_PANIC);
    assert!(host.logged(log_level::ERROR, "panicked in on_frame: boom in frame 2"));
    // Poisoned: later calls return at once, without reaching the sink.
    assert_eq!(p.frame(&i, &frame(3)), abi::STATUS_ERR_FAILED);
    assert_eq!(p.metrics(&i), (abi::STATUS_ERR_FAILED, String::new()));
    assert_eq!(p.http(&i, 7, "GET", "/probe/ok", ""), abi::STATUS_OK);
    let r = host.wait_response(7);
    assert_eq!(r.status, 503);
    assert!(r.body.contains("panicked"), "{}", r.body);
    let seen = host
        .logs()
        .iter()
        .filter(|(_, _, m)| m.starts_with("frame seen"))
        .count();
    assert_eq!(seen, 2, "frame 3 never reached the sink");
    p.stop(&i);
    p.destroy(i);
}

#[test]
fn panics_in_http_metrics_stop_and_drop_never_unwind_into_the_host() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(
        p.http(&i, 9, "GET", "/probe/panic", ""),
        abi::STATUS_ERR_PANIC
    );
    // The responder, dropped while unwinding, answered 500.
    assert_eq!(host.wait_response(9).status, 500);
    p.destroy(i);

    let i = p.create(&host, "panic_in = \"metrics\"").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.metrics(&i).0, abi::STATUS_ERR_PANIC);
    p.destroy(i);

    for step in ["stop", "drop"] {
        let i = p
            .create(&host, &format!("panic_in = \"{step}\""))
            .expect("created");
        p.start(&i).expect("started");
        p.stop(&i);
        p.destroy(i);
        assert!(
            host.logged(log_level::ERROR, &format!("the probe panics in {step}")),
            "{step}: {:?}",
            host.logs()
        );
    }
}

#[test]
fn retained_frames_are_released_once_each_and_stay_readable() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "retain = true").expect("created");
    p.start(&i).expect("started");
    let frames: Vec<_> = (1..=3).map(frame).collect();
    for f in &frames {
        assert_eq!(p.frame(&i, f), abi::STATUS_OK);
    }
    let pointers: Vec<usize> = frames.iter().map(|f| &f.raw as *const _ as usize).collect();
    assert_eq!(host.retained(), pointers);
    assert!(host.released().is_empty());
    // Read from another thread than the delivery one, after on_frame returned.
    assert_eq!(p.http(&i, 11, "GET", "/probe/kept", ""), abi::STATUS_OK);
    let kept: Vec<(u64, Vec<u8>, Option<Vec<u8>>)> =
        serde_json::from_str(&host.wait_response(11).body).unwrap();
    assert_eq!(kept.len(), 3);
    for ((number, data, sps), f) in kept.iter().zip(&frames) {
        assert_eq!(
            (*number, data, sps.as_ref()),
            (f.raw.frame_number, &f.data, Some(&f.sps))
        );
    }
    p.stop(&i); // drops the retained frames
    assert_eq!(host.released(), pointers);
    p.destroy(i);
    assert_eq!(host.released().len(), 3, "released once each");
}

#[test]
fn a_responder_dropped_unanswered_answers_500() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.http(&i, 21, "POST", "/probe/drop", ""), abi::STATUS_OK);
    let r = host.wait_response(21);
    assert_eq!(r.status, 500);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("without answering")
    );
    assert_eq!(host.responses().len(), 1, "answered exactly once");
    p.destroy(i);
}

#[test]
fn a_responder_that_outlives_its_instance_calls_nothing() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.http(&i, 31, "GET", "/probe/park", ""), abi::STATUS_OK);
    p.stop(&i);
    p.destroy(i);
    let parked = PARKED.lock().unwrap().take().expect("parked");
    parked.respond(200, &[], b"too late");
    assert!(
        host.responses().is_empty(),
        "the host is gone: nothing was called"
    );
}

#[test]
fn tracing_events_reach_the_host_log_within_its_level() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    p.frame(&i, &frame(1));
    let logs = host.logs();
    assert!(
        logs.iter()
            .any(|(level, target, message)| *level == log_level::INFO
                && target == "boundary"
                && message == "frame seen number=1 idr=true"),
        "{logs:?}"
    );
    assert!(
        !host.logged(log_level::DEBUG, "a debug detail"),
        "above INFO"
    );

    let verbose = FakeHost::new(log_level::DEBUG);
    let j = p.create(&verbose, "").expect("created");
    p.start(&j).expect("started");
    p.frame(&j, &frame(1));
    assert!(verbose.logged(log_level::DEBUG, "a debug detail"));
    // Each instance's calls log to its own host.
    assert_eq!(
        host.logs()
            .iter()
            .filter(|(_, _, m)| m.contains("frame seen"))
            .count(),
        1
    );
    p.destroy(i);
    p.destroy(j);
}

#[cfg(feature = "runtime")]
#[test]
fn the_runtime_answers_and_logs_to_its_instances_host() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.http(&i, 41, "GET", "/probe/async", ""), abi::STATUS_OK);
    let r = host.wait_response(41);
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"async":true}"#));
    assert!(host.logged(log_level::WARN, "answering from the runtime"));
    p.stop(&i);
    p.destroy(i); // shuts the runtime down
}

#[cfg(feature = "runtime")]
#[test]
fn the_runtime_can_be_sized_before_it_starts() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.http(&i, 1, "GET", "/probe/workers", ""), abi::STATUS_OK);
    assert_eq!(host.wait_response(1).body, "1");
    // Started: later calls get the same runtime, whatever they ask.
    assert_eq!(p.http(&i, 2, "GET", "/probe/async", ""), abi::STATUS_OK);
    assert_eq!(host.wait_response(2).status, 200);
    p.stop(&i);
    p.destroy(i);
}

/// A sink that does not override `on_detections` (the default `WANTS_DETECTIONS`).
struct Frames;

impl Sink for Frames {
    type Config = ();
    const NAME: &'static str = "frames";
    const VERSION: &'static str = "0";
    fn start((): (), _: Context) -> Result<Self, Error> {
        Ok(Self)
    }
    fn on_frame(&self, _: &Frame<'_>) {}
}

fn detection(class: &'static str, confidence: f32, b: (i32, i32, i32, i32)) -> abi::Detection {
    abi::Detection {
        class_name: abi::Str::new(class),
        confidence,
        x: b.0,
        y: b.1,
        w: b.2,
        h: b.3,
    }
}

fn result(frame: u64, items: &[abi::Detection]) -> abi::Detections {
    abi::Detections {
        struct_size: size_of::<abi::Detections>() as u32,
        frame_number: frame,
        timestamp_ns: frame * 33_333_333,
        items: if items.is_empty() {
            std::ptr::null()
        } else {
            items.as_ptr()
        },
        count: items.len() as u32,
    }
}

#[test]
fn only_a_sink_that_wants_detections_has_on_detections_in_its_table() {
    assert!(plugin().table.on_detections.is_some());
    let table = stackctl_sink_sdk::__private::table::<Frames>(&[]);
    assert!(
        table.on_detections.is_none(),
        "a sink that does not care pays nothing"
    );
    assert_eq!(table.abi_minor, abi::ABI_MINOR);
    assert_eq!(table.struct_size as usize, size_of::<abi::Sink>());
}

#[test]
fn detections_reach_the_sink_checked_and_what_is_wrong_is_skipped() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p.create(&host, "").expect("created");
    p.start(&i).expect("started");
    let items = [
        detection("cat", 0.5, (10, 20, 30, 40)),
        detection("dog", f32::NAN, (1, 1, 1, 1)), // not a confidence: skipped
        detection("bird", 0.25, (5, 5, 0, 5)),    // an empty box: skipped
    ];
    assert_eq!(p.detections(&i, &result(4, &items)), abi::STATUS_OK);
    assert!(
        host.logged(
            log_level::INFO,
            "detections of frame 4 at 133333332: [cat 0.5 10 20 30 40]"
        ),
        "{:?}",
        host.logs()
    );
    assert_eq!(p.detections(&i, &result(5, &[])), abi::STATUS_OK);
    assert!(host.logged(log_level::INFO, "detections of frame 5 at 166666665: []"));
    // A result of the wrong shape is skipped and reported once, the sink stays attached.
    let mut bad = result(6, &items);
    bad.count = 1000;
    assert_eq!(p.detections(&i, &bad), abi::STATUS_OK);
    let mut short = result(7, &items);
    short.struct_size = 16;
    assert_eq!(p.detections(&i, &short), abi::STATUS_OK);
    assert!(
        host.logged(log_level::ERROR, "1000 items"),
        "{:?}",
        host.logs()
    );
    assert!(!host.logged(log_level::INFO, "frame 6"));
    assert!(!host.logged(log_level::INFO, "frame 7"));
    // SAFETY (of the call below): a NULL result is what is under test.
    let f = p.table.on_detections.expect("on_detections");
    // SAFETY: a live instance; NULL is checked by the SDK.
    assert_eq!(unsafe { f(i.0, std::ptr::null()) }, abi::STATUS_OK);
    assert_eq!(p.frame(&i, &frame(1)), abi::STATUS_OK);
    p.stop(&i);
    p.destroy(i);
}

#[test]
fn a_panic_in_on_detections_poisons_the_instance() {
    let p = plugin();
    let host = FakeHost::new(log_level::INFO);
    let i = p
        .create(&host, "panic_in = \"detections\"")
        .expect("created");
    p.start(&i).expect("started");
    assert_eq!(p.detections(&i, &result(1, &[])), abi::STATUS_ERR_PANIC);
    assert!(host.logged(
        log_level::ERROR,
        "panicked in on_detections: the probe panics in on_detections"
    ));
    let reasons = host.fail_reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("panicked in on_detections: the probe panics in on_detections"),
        "the host is told why: {reasons:?}"
    );
    assert_eq!(p.detections(&i, &result(2, &[])), abi::STATUS_ERR_FAILED);
    assert_eq!(p.frame(&i, &frame(3)), abi::STATUS_ERR_FAILED);
    p.stop(&i);
    p.destroy(i);
}
