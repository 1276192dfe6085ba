//! Checking recordings with the real ffprobe and ffmpeg (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Whether ffprobe and ffmpeg are installed; prints SKIPPED when not.
pub fn have_ffmpeg(test: &str) -> bool {
    let ok = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok("ffprobe") && ok("ffmpeg") {
        true
    } else {
        eprintln!("SKIPPED: {test}: ffprobe/ffmpeg not installed (apt-get install ffmpeg)");
        false
    }
}

/// What ffprobe says of a file's video stream.
#[derive(Debug)]
pub struct Probe {
    /// Frames decoded (`-count_frames`).
    pub frames: u64,
    /// Packets read (`-count_packets`).
    pub packets: u64,
    /// Width.
    pub width: u64,
    /// Height.
    pub height: u64,
    /// Whether the first packet is a key frame.
    pub first_key: bool,
    /// The container's duration, seconds, when it says.
    pub duration: Option<f64>,
}

/// ffprobe a file, asserting it succeeds without a word on stderr.
pub fn probe(file: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-count_packets",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=nb_read_frames,nb_read_packets,width,height:format=duration",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {}: {stderr}",
        file.display()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    let s = &v["streams"][0];
    let num = |x: &Value| -> u64 {
        x.as_str()
            .and_then(|t| t.parse().ok())
            .or_else(|| x.as_u64())
            .unwrap_or_else(|| panic!("ffprobe {}: {v}", file.display()))
    };
    let first = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=flags",
        ])
        .args(["-of", "csv=p=0", "-read_intervals", "%+#1"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    Probe {
        frames: num(&s["nb_read_frames"]),
        packets: num(&s["nb_read_packets"]),
        width: num(&s["width"]),
        height: num(&s["height"]),
        first_key: String::from_utf8_lossy(&first.stdout).starts_with('K'),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok()),
    }
}

/// `ffmpeg -v error -i FILE -f null -`, every frame passed through at its own time: whether it
/// succeeded, and what it printed.
///
/// Without `-fps_mode passthrough -enc_time_base -1`, ffmpeg re-times the frames onto the
/// constant rate it guessed (1/30 s here) and calls two frames that land on one tick
/// "non monotonically increasing dts". A camera that runs late and catches up (camsim on a
/// loaded machine) delivers frames closer together than that, and a recording keeps their
/// true times; the file's own timestamps are what must increase, and they are checked here.
fn ffmpeg_null(file: &Path) -> (bool, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-fps_mode", "passthrough", "-enc_time_base", "-1"])
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`ffmpeg_null`] must succeed; what it printed, if anything.
pub fn ffmpeg_says(file: &Path) -> Option<String> {
    let (ok, stderr) = ffmpeg_null(file);
    let said = format!(
        "ffmpeg -v error -i {} -fps_mode passthrough -enc_time_base -1 -f null - said: {stderr}",
        file.display()
    );
    assert!(ok, "{said}");
    (!stderr.trim().is_empty()).then_some(said)
}

/// [`ffmpeg_null`] must print nothing and succeed.
pub fn decodes_cleanly(file: &Path) {
    let (ok, stderr) = ffmpeg_null(file);
    if !(ok && stderr.trim().is_empty()) {
        // Kept for a look after the test's temporary directory is gone.
        let kept = std::env::temp_dir().join(format!(
            "stackctl-failed-{}",
            file.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        ));
        let _ = std::fs::copy(file, &kept);
        panic!(
            "ffmpeg -v error -i {} -fps_mode passthrough -enc_time_base -1 -f null - said (file kept \
             as {}): {stderr}",
            file.display(),
            kept.display()
        );
    }
}

/// The recorder's files in `dir` (`recording_YYYYMMDD_HHMMSS[_N].ext`), oldest first.
pub fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the recording dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("recording_"))
        })
        .collect();
    v.sort_by_key(|p| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // By stamp, then suffix number.
        let stem = n.split('.').next().unwrap_or("").to_owned();
        let suffix: u32 = stem
            .get(25..)
            .and_then(|s| s.strip_prefix('_'))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (stem.get(..25).unwrap_or("").to_owned(), suffix)
    });
    v
}
