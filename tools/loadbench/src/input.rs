//! The camera's input: an H.264 file camsim loops, made once per shape with ffmpeg (libx264,
//! else libopenh264) or else camsim's own encoder, and kept in `target/loadbench/inputs/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A stream's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// `WxH`.
    pub size: &'static str,
    /// Frames a second.
    pub fps: u32,
    /// Bit rate, kbit/s.
    pub kbps: u32,
}

impl Shape {
    /// 1080p30 at 8 Mbit/s: the load figures.
    pub const HD: Shape = Shape {
        size: "1920x1080",
        fps: 30,
        kbps: 8000,
    };
    /// 720p30 at 2 Mbit/s: the 200-viewer figure (a board's uplink is the real ceiling).
    pub const SD: Shape = Shape {
        size: "1280x720",
        fps: 30,
        kbps: 2000,
    };

    fn stem(&self) -> String {
        let height = self.size.split('x').nth(1).unwrap_or(self.size);
        format!("{height}p{}-{}k", self.fps, self.kbps)
    }
}

/// An input file and what is in it.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its shape.
    pub shape: Shape,
    /// Where it is.
    pub path: PathBuf,
    /// The command that made it.
    pub how: String,
    /// Its size.
    pub bytes: u64,
    /// Access units in it.
    pub access_units: usize,
    /// IDR pictures in it.
    pub idr: usize,
}

impl Input {
    /// Its length at its frame rate, seconds.
    pub fn seconds(&self) -> f64 {
        self.access_units as f64 / f64::from(self.shape.fps)
    }

    /// Its bit rate, kbit/s.
    pub fn kbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.seconds() / 1000.0
    }

    /// For the report.
    pub fn json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "made_with": self.how,
            "bytes": self.bytes,
            "access_units": self.access_units,
            "idr_frames": self.idr,
            "kbit_per_s": self.kbps(),
        })
    }
}

/// The input of `shape` in `dir`, made now if it is not there.
pub fn input(dir: &Path, shape: Shape, camsim: &Path) -> anyhow::Result<Input> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let stem = shape.stem();
    let path = dir.join(format!("{stem}.h264"));
    let note = dir.join(format!("{stem}.txt"));
    let how = if path.exists() {
        std::fs::read_to_string(&note).unwrap_or_else(|_| "an earlier run".to_owned())
    } else {
        let tmp = dir.join(format!("{stem}.{}.tmp", std::process::id()));
        let how = encode(shape, &tmp, camsim)?;
        std::fs::rename(&tmp, &path)?;
        std::fs::write(&note, &how)?;
        how
    };
    let data = std::fs::read(&path).with_context(|| path.display().to_string())?;
    let (access_units, idr) = count_access_units(&data);
    if access_units < 30 {
        bail!(
            "{} holds only {access_units} access units: delete it and run again",
            path.display()
        );
    }
    Ok(Input {
        shape,
        path,
        how,
        bytes: data.len() as u64,
        access_units,
        idr,
    })
}

fn encode(shape: Shape, out: &Path, camsim: &Path) -> anyhow::Result<String> {
    let rate = format!("{}k", shape.kbps);
    let list = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let has = |name: &str| {
        list.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(name))
    };
    let mut codecs: Vec<Vec<String>> = Vec::new();
    if has("libx264") {
        // A camera's encoder: no B-frames, an IDR a second, SPS/PPS with each.
        codecs.push(
            [
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-b:v",
                &rate,
                "-maxrate",
                &rate,
                "-bufsize",
                "2M",
                "-g",
                "30",
                "-bf",
                "0",
                "-x264-params",
                "repeat-headers=1",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
    }
    if has("libopenh264") {
        codecs.push(
            ["-c:v", "libopenh264", "-b:v", &rate, "-g", "30"]
                .map(str::to_owned)
                .to_vec(),
        );
    }
    let source = format!("testsrc2=size={}:rate={}", shape.size, shape.fps);
    for codec in codecs {
        let mut args: Vec<String> = [
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend([source.clone(), "-t".to_owned(), "10".to_owned()]);
        args.extend(codec);
        args.extend([
            "-f".to_owned(),
            "h264".to_owned(),
            out.display().to_string(),
        ]);
        eprintln!("making the input: ffmpeg {}", args.join(" "));
        if Command::new("ffmpeg")
            .args(&args)
            .stdin(Stdio::null())
            .status()?
            .success()
        {
            return Ok(format!("ffmpeg {}", args.join(" ")));
        }
    }
    // camsim's own encoder (OpenH264), in real time: 10 s.
    let shm = format!("/stackctl-loadbench-input-{}", std::process::id());
    let args = [
        "--shm",
        &shm,
        "--frames",
        "300",
        "--fps",
        "30",
        "--gop",
        "30",
        "--size",
        shape.size,
        "--bitrate",
        &shape.kbps.to_string(),
        "--dump",
        &out.display().to_string(),
    ]
    .map(str::to_owned);
    eprintln!("making the input: camsim {}", args.join(" "));
    let status = Command::new(camsim)
        .args(&args)
        .stdin(Stdio::null())
        .status();
    let _ = std::fs::remove_file(Path::new("/dev/shm").join(shm.trim_start_matches('/')));
    match status {
        Ok(s) if s.success() => Ok(format!("camsim {}", args.join(" "))),
        other => bail!("no ffmpeg with libx264/libopenh264, and camsim --dump failed: {other:?}"),
    }
}

/// Access units (a new one at an AUD/SPS/PPS/SEI after a slice, or at a slice with
/// first_mb_in_slice = 0 after a slice) and IDR pictures of an Annex-B stream.
fn count_access_units(data: &[u8]) -> (usize, usize) {
    let (mut units, mut idr) = (0, 0);
    let (mut previous_slice, mut unit_idr) = (false, false);
    for nal in stackctl_media::h264::nal_units(data) {
        let Some(&head) = nal.first() else { continue };
        let kind = head & 0x1f;
        let slice = kind == 1 || kind == 5;
        let first_mb_zero = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        if units == 0 || (previous_slice && (matches!(kind, 6..=9) || first_mb_zero)) {
            units += 1;
            unit_idr = false;
        }
        if kind == 5 && !unit_idr {
            idr += 1;
            unit_idr = true;
        }
        previous_slice = slice;
    }
    (units, idr)
}
