//! Helpers for the RTSP sink's end-to-end tests: the stack (real `stackctl`, real camsim, the
//! built plugin), a raw RTSP client for exact protocol checks, and ffmpeg as the real client.
#![allow(clippy::expect_used, clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use stackctl_media::rtp::RtpHeader;
use stackctl_tests::plugins::{rust_plugin, toml_path};
use stackctl_tests::up::{EVENT_TIMEOUT, Stack, Up, free_port};
use stackctl_tests::{ShmName, bin};

#[allow(unused_imports)] // Each test file uses a part.
pub use stackctl_tests::media::have_ffmpeg;

/// The plugin, built once per test binary.
pub fn plugin() -> PathBuf {
    rust_plugin("sink-rtsp")
}

/// A stack: camsim (320x240, 30 fps, GOP 30 unless `camera` sets them, plus `camera`) and
/// the RTSP sink on a free port of 127.0.0.1 with `keys` (TOML lines).
pub struct RtspStack {
    /// The stack's directory and configuration.
    pub stack: Stack,
    /// The RTSP port.
    pub port: u16,
    /// The segment's name (unlinked at the end).
    pub shm: ShmName,
}

impl RtspStack {
    /// A stack as described on the type.
    pub fn new(tag: &str, camera: &[&str], keys: &str) -> Self {
        let shm = stackctl_tests::unique_shm(tag);
        let mut args: Vec<String> = vec!["--shm".into(), shm.as_str().into()];
        for (flag, value) in [("--size", "320x240"), ("--fps", "30"), ("--gop", "30")] {
            if !camera.contains(&flag) {
                args.extend([flag.to_owned(), value.to_owned()]);
            }
        }
        args.extend(camera.iter().map(|s| (*s).to_owned()));
        let port = free_port();
        // UDP pairs in a range of their own per test process and stack; taken ports are
        // skipped by the server anyway.
        let udp = 40_000 + (std::process::id() % 400) as u16 * 40 + (port % 2) * 20;
        let keys = if keys.contains("udp_ports") {
            keys.to_owned()
        } else {
            format!("udp_ports = [{udp}, {}]\n{keys}", udp + 19)
        };
        let stack = Stack::new(&format!(
            "[source]\nshm = \"{shm}\"\n\n[services.camera]\ncommand = {camsim}\nargs = {args:?}\n\n\
             [plugins.rtsp]\npath = {plugin}\nport = {port}\nbind = \"127.0.0.1\"\n{keys}\n",
            shm = shm.as_str(),
            camsim = toml_path(&bin("camsim")),
            plugin = toml_path(&plugin()),
        ));
        Self { stack, port, shm }
    }

    /// Starts `stackctl up` and waits until the plugin serves and the camera publishes.
    pub fn up(&self) -> Up {
        let mut up = self.stack.up(&[], &[]);
        up.first_line(&["plugin started", "plugin=rtsp"]);
        up.first_line(&["stack ready"]);
        up
    }

    /// `rtsp://127.0.0.1:PORT/live`.
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/live", self.port)
    }

    /// `rtsp://USER:PASS@127.0.0.1:PORT/live`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("rtsp://{user}:{password}@127.0.0.1:{}/live", self.port)
    }

    /// The RTSP sink's metric `name` (with labels, as written), 0 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        let port = self.stack.http_port().expect("the stack's HTTP port");
        let (_, text) = stackctl_tests::plugins::http_get(port, "/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

/// An RTSP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (name case-insensitive), the first if several.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The session id of a `Session` header.
    pub fn session(&self) -> String {
        let s = self.header("Session").expect("a Session header");
        s.split(';').next().unwrap().trim().to_owned()
    }
}

/// One interleaved packet received.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Its channel.
    pub channel: u8,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A raw RTSP client over one TCP connection: writes requests as given, reads answers and
/// interleaved packets.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
    /// Interleaved packets read while waiting for answers.
    pub packets: Vec<Packet>,
}

impl Client {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the RTSP port");
        stream.set_read_timeout(Some(EVENT_TIMEOUT)).unwrap();
        Self {
            stream,
            buf: Vec::new(),
            cseq: 0,
            packets: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends `METHOD URI RTSP/1.0` with a fresh `CSeq` and `headers`, and returns the answer.
    pub fn request(&mut self, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
        self.cseq += 1;
        let mut text = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (n, v) in headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str("\r\n");
        self.send_raw(text.as_bytes());
        let reply = self.reply().expect("an answer");
        assert_eq!(
            reply.header("CSeq"),
            Some(self.cseq.to_string().as_str()),
            "{method}: {reply:?}"
        );
        reply
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Takes one interleaved packet from the buffer, if whole.
    fn take_packet(&mut self) -> Option<Packet> {
        if self.buf.first() != Some(&b'$') || self.buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
        if self.buf.len() < 4 + len {
            return None;
        }
        let packet = Packet {
            channel: self.buf[1],
            data: self.buf[4..4 + len].to_vec(),
        };
        self.buf.drain(..4 + len);
        Some(packet)
    }

    /// The next answer (interleaved packets before it are kept); `None` if the server
    /// closed the connection first.
    pub fn reply(&mut self) -> Option<Reply> {
        loop {
            while let Some(p) = self.take_packet() {
                self.packets.push(p);
            }
            if self.buf.first().is_some_and(|b| *b != b'$')
                && let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n")
            {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut lines = head.split("\r\n");
                let status_line = lines.next().unwrap_or_default().to_owned();
                assert!(
                    status_line.starts_with("RTSP/1.0 "),
                    "status line {status_line:?}"
                );
                let status = status_line[9..12].parse().expect("a status code");
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while self.buf.len() < end + 4 + len {
                    if !self.fill() {
                        return None;
                    }
                }
                let body = self.buf[end + 4..end + 4 + len].to_vec();
                self.buf.drain(..end + 4 + len);
                return Some(Reply {
                    status,
                    headers,
                    body,
                });
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Reads interleaved packets until `n` RTP packets (channel `rtp`) have arrived in all.
    pub fn read_rtp(&mut self, rtp: u8, n: usize) -> Vec<RtpHeader> {
        loop {
            while let Some(p) = self.take_packet() {
                self.packets.push(p);
            }
            let got: Vec<RtpHeader> = self
                .packets
                .iter()
                .filter(|p| p.channel == rtp)
                .filter_map(|p| RtpHeader::parse(&p.data))
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                self.fill(),
                "the server closed the connection after {} RTP packets",
                got.len()
            );
        }
    }

    /// Whether the server closes the connection within `timeout` (reading and dropping
    /// whatever comes before).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut chunk = [0u8; 65536];
        while Instant::now() < end {
            self.stream
                .set_read_timeout(Some(
                    end.saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(1)),
                ))
                .unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// DESCRIBE, SETUP over TCP (channels 0-1) and PLAY; returns the session id.
    pub fn play_tcp(&mut self, url: &str) -> String {
        let describe = self.request("DESCRIBE", url, &[("Accept", "application/sdp")]);
        assert_eq!(describe.status, 200, "{describe:?}");
        let setup = self.request(
            "SETUP",
            &format!("{url}/trackID=0"),
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        );
        assert_eq!(setup.status, 200, "{setup:?}");
        let session = setup.session();
        let play = self.request(
            "PLAY",
            url,
            &[("Session", &session), ("Range", "npt=0.000-")],
        );
        assert_eq!(play.status, 200, "{play:?}");
        session
    }
}

/// The NAL unit type a packet's payload starts (for FU-A and STAP-A, of the unit inside).
pub fn nal_type(payload: &[u8]) -> u8 {
    match payload.first().map(|b| b & 0x1f) {
        Some(24) => payload.get(3).map_or(0, |b| b & 0x1f),
        Some(28) => payload.get(1).map_or(0, |b| b & 0x1f),
        Some(t) => t,
        None => 0,
    }
}

/// `ffmpeg -v error -rtsp_transport TRANSPORT [extra] -i URL -t SECONDS -c copy OUT`.
pub fn ffmpeg_copy(url: &str, transport: &str, seconds: u32, out: &Path, extra: &[&str]) -> Output {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-rtsp_transport", transport])
        .args(extra)
        .args(["-i", url, "-t", &seconds.to_string(), "-c", "copy", "-y"])
        .arg(out)
        .output()
        .expect("run ffmpeg")
}

/// `ffmpeg -v error -rtsp_transport TRANSPORT -i URL -t SECONDS -f null -`: decodes. The
/// stream's rate is variable (the camera's own clock), so frames keep their times on the
/// stream's 90 kHz clock (`-fps_mode passthrough -enc_time_base -1`) instead of being
/// fitted to a constant rate (which makes ffmpeg's null muxer complain of equal times).
pub fn ffmpeg_decode(url: &str, transport: &str, seconds: u32) -> Output {
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-i",
            url,
        ])
        .args(["-t", &seconds.to_string(), "-fps_mode", "passthrough"])
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
        .expect("run ffmpeg")
}

/// Asserts ffmpeg succeeded and printed nothing (a decode error or a broken stream prints).
pub fn assert_silent(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{what}: ffmpeg exited {} and said:\n{stderr}",
        out.status
    );
}

/// The packets' presentation times (seconds) of a file's video stream, and whether each is
/// a key frame.
pub fn packet_times(file: &Path) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, flags) = l.split_once(',')?;
            Some((t.parse().ok()?, flags.starts_with('K')))
        })
        .collect()
}

/// Frames decoded from a file (`ffprobe -count_frames`).
pub fn decoded_frames(file: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!(
                "ffprobe {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        })
}
