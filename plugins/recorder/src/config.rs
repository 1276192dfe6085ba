//! The `[plugins.recording]` section: every key, its default, and the checks serde cannot make.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use stackctl_sink_sdk::Error;

/// The container written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Fragmented MP4 (`.mp4`): plays in browsers and every player.
    Mp4,
    /// Raw Annex-B H.264 (`.h264`), the legacy format.
    H264,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::H264 => "h264",
        }
    }

    /// The HTTP content type of its files.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Mp4 => "video/mp4",
            Self::H264 => "video/h264",
        }
    }
}

/// What starts a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `POST /start` and `POST /stop` (the legacy behaviour).
    Manual,
    /// Records from the plugin's start; `POST /stop` pauses it until `POST /start`.
    Continuous,
    /// Records clips around detections (pre-roll, post-roll); `POST /stop` pauses it.
    Events,
}

/// When written data is forced to the disk with `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Never: the kernel writes back when it likes (a process crash loses nothing, a power
    /// loss may lose the last ~30 s).
    None,
    /// After every fragment: a power loss loses at most one fragment; costs a flush a second.
    Fragment,
    /// When a file is closed (segment cut, stop), and the directory after a file is created.
    Segment,
}

/// The recorder's configuration, as the TOML section gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the recordings, created if missing.
    pub dir: PathBuf,
    /// Container.
    pub format: Format,
    /// Manual or continuous.
    pub mode: Mode,
    /// Start a new file (at the next IDR) after this much media time; none: never.
    #[serde(deserialize_with = "opt_duration")]
    pub segment_duration: Option<Duration>,
    /// Start a new file (at the next IDR) once a file holds this many bytes; none: never.
    #[serde(deserialize_with = "opt_bytes")]
    pub segment_bytes: Option<u64>,
    /// Longest media time buffered before it is written (one MP4 fragment, one `write`).
    #[serde(deserialize_with = "duration")]
    pub fragment_duration: Duration,
    /// When to `fdatasync`.
    pub fsync: Fsync,
    /// Frames queued between the delivery thread and the writer thread.
    pub buffer_frames: usize,
    /// Delete recordings older than this (by their last modification); none: keep.
    #[serde(deserialize_with = "opt_duration")]
    pub max_age: Option<Duration>,
    /// Delete the oldest recordings while all of them together exceed this; none: no limit.
    #[serde(deserialize_with = "opt_bytes")]
    pub max_total_bytes: Option<u64>,
    /// Delete the oldest recordings while the disk has less free space than this.
    #[serde(deserialize_with = "opt_bytes")]
    pub min_free_bytes: Option<u64>,
    /// How often retention runs (it also runs at start and at each new file).
    #[serde(deserialize_with = "duration")]
    pub retention_interval: Duration,
    /// Largest body of one download answer when the host cannot stream (ABI 1.1 and older);
    /// bigger files are then served in ranges. A streaming host has no cap.
    #[serde(deserialize_with = "bytes")]
    pub max_response_bytes: u64,
    /// Downloads served at once; more get 503 with `Retry-After`.
    pub max_downloads: usize,
    /// Events mode: the classes that start an event (empty: any).
    pub classes: Vec<String>,
    /// Events mode: the lowest confidence of a detection that counts.
    pub min_confidence: f32,
    /// Events mode: consecutive matching detection results that start an event.
    pub min_frames: u32,
    /// Events mode: media kept before the first matching detection.
    #[serde(deserialize_with = "duration")]
    pub pre_roll: Duration,
    /// Events mode: most bytes of frames held for the pre-roll.
    #[serde(deserialize_with = "bytes")]
    pub pre_roll_max_bytes: u64,
    /// Events mode: media kept after the last matching detection.
    #[serde(deserialize_with = "duration")]
    pub post_roll: Duration,
    /// Events mode: longest clip; a longer event goes on in the next clip.
    #[serde(deserialize_with = "duration")]
    pub max_event_duration: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("recordings"),
            format: Format::Mp4,
            mode: Mode::Manual,
            segment_duration: None,
            segment_bytes: None,
            fragment_duration: Duration::from_secs(1),
            fsync: Fsync::Segment,
            buffer_frames: 90,
            max_age: None,
            max_total_bytes: None,
            min_free_bytes: None,
            retention_interval: Duration::from_secs(60),
            max_response_bytes: 8 << 20,
            max_downloads: 4,
            classes: Vec::new(),
            min_confidence: 0.5,
            min_frames: 2,
            pre_roll: Duration::from_secs(5),
            pre_roll_max_bytes: 64 << 20,
            post_roll: Duration::from_secs(10),
            max_event_duration: Duration::from_secs(300),
        }
    }
}

impl Config {
    /// Checks the values serde accepted but the recorder cannot use; the error names the key.
    pub fn validate(&self) -> Result<(), Error> {
        if self.dir.as_os_str().is_empty() {
            return Err(Error::config("dir", "must not be empty"));
        }
        let ms = |d: Duration| d.as_millis();
        if !(10..=60_000).contains(&ms(self.fragment_duration)) {
            return Err(Error::config(
                "fragment_duration",
                "must be between 10 ms and 60 s",
            ));
        }
        if let Some(d) = self.segment_duration
            && d < Duration::from_secs(1)
        {
            return Err(Error::config(
                "segment_duration",
                "must be at least 1 s (a segment holds at least one GOP anyway)",
            ));
        }
        if let Some(b) = self.segment_bytes
            && b < 64 * 1024
        {
            return Err(Error::config("segment_bytes", "must be at least 64 KiB"));
        }
        if !(2..=10_000).contains(&self.buffer_frames) {
            return Err(Error::config(
                "buffer_frames",
                "must be between 2 and 10000 frames",
            ));
        }
        if let Some(d) = self.max_age
            && d.is_zero()
        {
            return Err(Error::config("max_age", "must be more than 0"));
        }
        if self.max_total_bytes == Some(0) {
            return Err(Error::config("max_total_bytes", "must be more than 0"));
        }
        if self.retention_interval < Duration::from_secs(1) {
            return Err(Error::config("retention_interval", "must be at least 1 s"));
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(Error::config(
                "min_confidence",
                format!("{} is not between 0 and 1", self.min_confidence),
            ));
        }
        if !(1..=1000).contains(&self.min_frames) {
            return Err(Error::config(
                "min_frames",
                format!("{} is not between 1 and 1000", self.min_frames),
            ));
        }
        if self.pre_roll > Duration::from_secs(60) {
            return Err(Error::config("pre_roll", "must be at most 60 s"));
        }
        if !(1 << 20..=1 << 30).contains(&self.pre_roll_max_bytes) {
            return Err(Error::config(
                "pre_roll_max_bytes",
                "must be between 1 MiB and 1 GiB",
            ));
        }
        if self.post_roll > Duration::from_secs(3600) {
            return Err(Error::config("post_roll", "must be at most 1 h"));
        }
        if self.max_event_duration < Duration::from_secs(1) {
            return Err(Error::config("max_event_duration", "must be at least 1 s"));
        }
        if let Some(c) = self
            .classes
            .iter()
            .find(|c| c.trim().is_empty() || c.len() > 64)
        {
            return Err(Error::config(
                "classes",
                format!("{c:?} is not a class name (1 to 64 bytes)"),
            ));
        }
        if !(1..=64).contains(&self.max_downloads) {
            return Err(Error::config(
                "max_downloads",
                format!("must be between 1 and 64, not {}", self.max_downloads),
            ));
        }
        if !(64 * 1024..=256 << 20).contains(&self.max_response_bytes) {
            return Err(Error::config(
                "max_response_bytes",
                "must be between 64 KiB and 256 MiB",
            ));
        }
        Ok(())
    }
}

/// A duration: a number of seconds, or a string such as `"90s"`, `"10m"`, `"1h 30m"`,
/// `"500ms"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(f64),
    Text(String),
}

fn parse_duration(v: DurationValue) -> Result<Duration, String> {
    match v {
        DurationValue::Seconds(s) if (0.0..1e12).contains(&s) => Ok(Duration::from_secs_f64(s)),
        DurationValue::Seconds(s) => Err(format!("{s} is not a usable number of seconds")),
        DurationValue::Text(t) => humantime::parse_duration(t.trim())
            .map_err(|e| format!("{t:?} is not a duration (e.g. 30, \"90s\", \"10m\"): {e}")),
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(DurationValue::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// A duration where 0 (or `"0s"`) means none.
fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let d = duration(d)?;
    Ok((!d.is_zero()).then_some(d))
}

/// A size: a number of bytes, or a string such as `"500MB"`, `"2 GiB"`, `"64k"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum BytesValue {
    Number(u64),
    Text(String),
}

/// Parses `"500MB"`, `"2GiB"`, `"64k"`, `"1000"`: decimal (k, M, G, T = 1000^n) and binary
/// (Ki, Mi, Gi, Ti = 1024^n) units, an optional trailing `B`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 1000000, \"500MB\", \"2GiB\")"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix('B')
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (k, M, G, T, Ki, Mi, Gi, Ti)"
            ));
        }
    };
    let bytes = number * scale;
    if !(0.0..1.8e19).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as u64)
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match BytesValue::deserialize(d)? {
        BytesValue::Number(n) => Ok(n),
        BytesValue::Text(t) => parse_bytes(&t).map_err(serde::de::Error::custom),
    }
}

/// A size where 0 means none.
fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let b = bytes(d)?;
    Ok((b != 0).then_some(b))
}

#[cfg(test)]
mod tests {
    use stackctl_sink_sdk::parse_config;

    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        let c = parse_config::<Config>(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn an_empty_section_gives_the_defaults() {
        let c = parse("").expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(c.format, Format::Mp4);
        assert_eq!(c.mode, Mode::Manual);
        assert_eq!(c.fsync, Fsync::Segment);
    }

    #[test]
    fn durations_and_sizes_take_numbers_or_units() {
        let c = parse(
            "dir = \"/r\"\nformat = \"h264\"\nmode = \"continuous\"\nsegment_duration = \"10m\"\n\
             segment_bytes = \"500MB\"\nfragment_duration = 0.5\nmax_age = \"7days\"\n\
             max_total_bytes = \"2GiB\"\nmin_free_bytes = 1000000\nfsync = \"none\"",
        )
        .expect("valid");
        assert_eq!(c.segment_duration, Some(Duration::from_secs(600)));
        assert_eq!(c.segment_bytes, Some(500_000_000));
        assert_eq!(c.fragment_duration, Duration::from_millis(500));
        assert_eq!(c.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(c.max_total_bytes, Some(2 << 30));
        assert_eq!(c.min_free_bytes, Some(1_000_000));
        assert_eq!(c.fsync, Fsync::None);
        assert_eq!(
            parse("segment_duration = 0").expect("off").segment_duration,
            None
        );
        let e = parse(
            "mode = \"events\"\nclasses = [\"cat\", \"dog\"]\nmin_confidence = 0.7\n\
             min_frames = 3\npre_roll = \"2s\"\npost_roll = 4\npre_roll_max_bytes = \"32MiB\"\n\
             max_event_duration = \"1m\"",
        )
        .expect("valid");
        assert_eq!(e.mode, Mode::Events);
        assert_eq!(e.classes, ["cat", "dog"]);
        assert_eq!((e.min_confidence, e.min_frames), (0.7, 3));
        assert_eq!(e.pre_roll, Duration::from_secs(2));
        assert_eq!(e.post_roll, Duration::from_secs(4));
        assert_eq!(e.pre_roll_max_bytes, 32 << 20);
        assert_eq!(e.max_event_duration, Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("segment_duration = \"abc\"", "segment_duration: "),
            ("segment_duration = \"100ms\"", "segment_duration: "),
            ("format = \"avi\"", "format: "),
            ("mode = \"sometimes\"", "mode: "),
            ("fragment_duration = 0", "fragment_duration: "),
            ("segment_bytes = \"12 parsecs\"", "segment_bytes: "),
            ("buffer_frames = 1", "buffer_frames: "),
            ("dir = \"\"", "dir: "),
            ("fsync = \"always\"", "fsync: "),
            ("max_response_bytes = 10", "max_response_bytes: "),
            ("max_downloads = 0", "max_downloads: "),
            ("max_downloads = 65", "max_downloads: "),
            ("retention_interval = \"10ms\"", "retention_interval: "),
            ("dri = \"x\"", "dri: unknown field"),
            (
                "mode = \"events\"\nmin_confidence = 1.5",
                "min_confidence: ",
            ),
            ("min_frames = 0", "min_frames: "),
            ("pre_roll = \"2min\"", "pre_roll: "),
            ("pre_roll_max_bytes = \"1k\"", "pre_roll_max_bytes: "),
            ("max_event_duration = 0", "max_event_duration: "),
            ("classes = [\"\"]", "classes: "),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with(key), "{text}: {e}");
        }
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("64k"), Ok(64_000));
        assert_eq!(parse_bytes("64KiB"), Ok(65_536));
        assert_eq!(parse_bytes("1.5 GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("12"), Ok(12));
        assert!(parse_bytes("x").is_err());
        assert!(parse_bytes("5 XB").is_err());
    }
}
