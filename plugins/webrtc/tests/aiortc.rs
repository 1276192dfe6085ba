//! A second WebRTC stack as the viewer: aiortc (Python, from PyPI), a stack this project did not
//! write, connects over WHEP to the real stackctl with the sink and decodes the camera's H.264
//! (with libavcodec) at the camera's size; with camsim's square and detector-sim, it opens the
//! `detections` channel and receives the results, each with the RTP timestamp of a frame it
//! decoded.
//!
//! The test makes a virtual environment under the target directory (once) and installs aiortc
//! in it; without Python or without the package index it skips, loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Streaming;

/// A Python with aiortc: the venv's, made (and aiortc installed) if needed; `None` after a
/// loud SKIPPED when that cannot be done.
fn python_with_aiortc() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiortc-venv");
    let python = venv.join("bin").join("python");
    let has = |python: &Path| {
        Command::new(python)
            .args(["-c", "import aiortc"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has(&python) {
        return Some(python);
    }
    let skip = |why: String| {
        eprintln!("\n***\n*** SKIPPED: aiortc viewer: {why}\n***\n");
        None
    };
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            return skip(format!(
                "python3 -m venv failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Err(e) => return skip(format!("no python3 ({e}); apt-get install python3-venv")),
    }
    let pip = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "aiortc"])
        .output();
    match pip {
        Ok(o) if o.status.success() && has(&python) => Some(python),
        Ok(o) => skip(format!(
            "pip install aiortc failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => skip(format!("pip: {e}")),
    }
}

#[test]
fn an_aiortc_viewer_decodes_the_camera_over_whep() {
    let Some(python) = python_with_aiortc() else {
        return;
    };
    // aiortc gathers on the machine's interfaces, not on loopback: every interface is bound.
    let stream = Streaming::start("webrtc-aiortc", &[], "bind = [\"0.0.0.0\", \"127.0.0.1\"]");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aiortc/whep_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(stream.url())
        .arg("45")
        .output()
        .expect("run the aiortc viewer");
    assert!(
        out.status.success(),
        "the aiortc viewer failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    eprintln!("aiortc: {line}");
    let got: serde_json::Value = serde_json::from_str(line.trim()).expect("its JSON line");
    assert_eq!(got["frames"], 45, "{got}");
    assert_eq!(
        (got["width"].as_u64(), got["height"].as_u64()),
        (Some(320), Some(240)),
        "{got}"
    );
    assert!(got["keyframes"].as_u64() >= Some(1), "{got}");
    assert_eq!(got["codec"], "H264/90000", "{got}");
    // Its DELETE ended the session.
    stream.wait_metric("webrtc_viewers_removed_total{reason=\"closed\"}", 1.0);
    stream.stop();
}

#[test]
fn an_aiortc_viewer_receives_the_detections_with_its_frames_rtp_timestamps() {
    let Some(python) = python_with_aiortc() else {
        return;
    };
    let vision = common::Vision::start(
        "webrtc-aiortc-dc",
        "320x240",
        "1s:1s",
        "20ms",
        "bind = [\"0.0.0.0\", \"127.0.0.1\"]",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aiortc/whep_client.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", vision.port))
        .args(["30", "60"])
        .output()
        .expect("run the aiortc viewer");
    assert!(
        out.status.success(),
        "the aiortc viewer failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("its JSON line");
    // aiortc's pts counts from the first RTP timestamp it received (`origin`).
    let origin = got["origin"]
        .as_u64()
        .unwrap_or_else(|| panic!("aiortc did not say its timestamp origin: {got}"));
    let rtp_of = |pts: &serde_json::Value| (pts.as_u64().unwrap() + origin) as u32;
    let pts: std::collections::HashSet<u64> = got["pts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| u64::from(rtp_of(p)))
        .collect();
    let messages = got["messages"].as_array().unwrap();
    assert!(messages.len() >= 60, "{} messages", messages.len());
    let first = rtp_of(&got["pts"][0]);
    let (mut matched, mut with_cat) = (0, 0);
    let mut origin = None;
    for m in messages {
        let rtp = m["rtp_timestamp"].as_u64().unwrap() as u32;
        let n = m["frame_number"].as_u64().unwrap();
        let truth = vision.rig.wait_truth(n);
        let (ts, visible) = (truth.timestamp_ns, truth.visible);
        assert_eq!(m["timestamp_ns"].as_u64(), Some(ts), "{m}");
        let this = rtp.wrapping_sub(stackctl_media::rtp::rtp_timestamp(ts, 0));
        assert_eq!(*origin.get_or_insert(this), this, "one origin: {m}");
        assert_eq!(
            m["detections"].as_array().unwrap().len(),
            usize::from(visible),
            "{m}"
        );
        with_cat += usize::from(visible);
        // A frame the viewer decoded has this RTP timestamp (aiortc's decoder may skip a frame
        // now and then, and frames before its first are not there).
        if (rtp.wrapping_sub(first) as i32) >= 0 {
            matched += usize::from(pts.contains(&u64::from(rtp)));
        }
    }
    eprintln!(
        "aiortc: {} messages ({with_cat} with the cat), {matched} of their frames decoded, {} frames",
        messages.len(),
        pts.len()
    );
    assert!(
        matched * 10 >= messages.len() * 9,
        "{matched} of {} matched",
        messages.len()
    );
    assert!(with_cat > 5 && with_cat < messages.len(), "{with_cat}");
}
