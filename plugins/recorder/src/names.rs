//! Recording file names: `recording_YYYYMMDD_HHMMSS[_N].(mp4|h264)` (and, in events mode,
//! `event_YYYYMMDD_HHMMSS[_N].(mp4|h264)`), local time.
//!
//! The recorder only ever lists, serves or deletes files whose name matches this pattern
//! exactly: that is what keeps HTTP names from pointing anywhere else (no `/`, no `.`
//! components, no percent signs, no NUL can pass) and retention from touching foreign files.

use std::cmp::Ordering;

use jiff::Zoned;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::config::Format;

/// Which recorder file a name is: a recording (manual or continuous mode) or an event clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `recording_...`: manual and continuous recordings.
    Recording,
    /// `event_...`: an events-mode clip (its sidecar and thumbnail share its stem).
    Event,
}

impl Kind {
    /// The name's prefix, with its underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Recording => "recording_",
            Self::Event => "event_",
        }
    }
}

/// A parsed recording file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingName {
    /// Recording or event clip.
    pub kind: Kind,
    /// `YYYYMMDD_HHMMSS`, local time of the file's start.
    pub stamp: String,
    /// The collision suffix (`_1`, `_2`...), 0 for none.
    pub suffix: u32,
    /// Its format, from the extension.
    pub format: Format,
}

/// Longest collision suffix accepted (six digits).
const MAX_SUFFIX: u32 = 999_999;

impl RecordingName {
    /// Parses `name` (a bare file name); `None` unless it matches the pattern exactly.
    pub fn parse(name: &str) -> Option<Self> {
        let (kind, rest) = if let Some(rest) = name.strip_prefix(Kind::Recording.prefix()) {
            (Kind::Recording, rest)
        } else {
            (Kind::Event, name.strip_prefix(Kind::Event.prefix())?)
        };
        let (stem, ext) = rest.rsplit_once('.')?;
        let format = match ext {
            "mp4" => Format::Mp4,
            "h264" => Format::H264,
            _ => return None,
        };
        let b = stem.as_bytes();
        if b.len() < 15 || b[8] != b'_' {
            return None;
        }
        let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
        if !digits(&b[..8]) || !digits(&b[9..15]) {
            return None;
        }
        let suffix = match &b[15..] {
            [] => 0,
            [b'_', n @ ..] if digits(n) && n.len() <= 6 && n[0] != b'0' => {
                stem[16..].parse().ok()?
            }
            _ => return None,
        };
        let stamp = stem[..15].to_owned();
        // A real date and time, not just digits.
        DateTime::strptime("%Y%m%d_%H%M%S", &stamp).ok()?;
        Some(Self {
            kind,
            stamp,
            suffix,
            format,
        })
    }

    /// The file name.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.stem(), self.format.extension())
    }

    /// The name without its extension (an event clip's id: its sidecar is `STEM.json`, its
    /// thumbnail `STEM.jpg`).
    pub fn stem(&self) -> String {
        let prefix = self.kind.prefix();
        match self.suffix {
            0 => format!("{prefix}{}", self.stamp),
            n => format!("{prefix}{}_{n}", self.stamp),
        }
    }

    /// The name for a file started at `time`, with collision suffix `suffix`.
    pub fn at(time: &Zoned, suffix: u32, format: Format) -> Self {
        Self::of_kind(Kind::Recording, time, suffix, format)
    }

    /// [`at`](Self::at) for a file of `kind`.
    pub fn of_kind(kind: Kind, time: &Zoned, suffix: u32, format: Format) -> Self {
        Self {
            kind,
            stamp: time.strftime("%Y%m%d_%H%M%S").to_string(),
            suffix: suffix.min(MAX_SUFFIX),
            format,
        }
    }

    /// The start time the name says, in the system's time zone, as RFC 3339.
    pub fn start_rfc3339(&self) -> Option<String> {
        let civil = DateTime::strptime("%Y%m%d_%H%M%S", &self.stamp).ok()?;
        let zoned = civil.to_zoned(TimeZone::system()).ok()?;
        Some(rfc3339(&zoned))
    }

    /// Oldest first: by the time in the name, then by suffix.
    pub fn chronological(&self, other: &Self) -> Ordering {
        self.stamp
            .cmp(&other.stamp)
            .then(self.suffix.cmp(&other.suffix))
    }

    /// Whether another suffix can still be tried after this one.
    pub fn can_bump(&self) -> bool {
        self.suffix < MAX_SUFFIX
    }
}

/// `2026-01-02T03:04:05+01:00`: RFC 3339 with the local offset, to the second.
pub fn rfc3339(time: &Zoned) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The local time now.
pub fn now() -> Zoned {
    Zoned::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_exact_ones_parse() {
        let n = RecordingName::parse("recording_20260102_030405.mp4").expect("valid");
        assert_eq!(n.stamp, "20260102_030405");
        assert_eq!(n.suffix, 0);
        assert_eq!(n.format, Format::Mp4);
        assert_eq!(n.file_name(), "recording_20260102_030405.mp4");
        let n = RecordingName::parse("recording_20260102_030405_12.h264").expect("valid");
        assert_eq!((n.suffix, n.format), (12, Format::H264));
        assert_eq!(n.file_name(), "recording_20260102_030405_12.h264");
        let n = RecordingName::parse("event_20260102_030405_3.mp4").expect("valid");
        assert_eq!((n.kind, n.suffix), (Kind::Event, 3));
        assert_eq!(n.stem(), "event_20260102_030405_3");
        assert_eq!(n.file_name(), "event_20260102_030405_3.mp4");
        for bad in [
            "recording_20260102_030405.avi",
            "recording_20260102_030405",
            "recording_2026010_030405.mp4",
            "recording_20260102_030405_.mp4",
            "recording_20260102_030405_01.mp4",
            "recording_20260102_030405_1234567.mp4",
            "recording_20261302_030405.mp4",
            "recording_20260102_250405.mp4",
            "../recording_20260102_030405.mp4",
            "recording_20260102_030405.mp4/..",
            "recording_20260102_030405%2e.mp4",
            "recording_20260102_030405.mp4\0",
            "/etc/passwd",
            "..",
            "%2e%2e%2f",
            "Recording_20260102_030405.mp4",
            "recording_20260102-030405.mp4",
            "event_20260102_030405.json",
            "events_20260102_030405.mp4",
            "event_recording_20260102_030405.mp4",
            "recording_２0260102_030405.mp4",
        ] {
            assert_eq!(RecordingName::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn order_is_by_time_then_suffix() {
        let p = |s: &str| RecordingName::parse(s).expect(s);
        let mut v = [
            p("recording_20260102_030405_2.mp4"),
            p("recording_20250102_030405.h264"),
            p("recording_20260102_030405.mp4"),
            p("recording_20260102_030405_10.mp4"),
        ];
        v.sort_by(RecordingName::chronological);
        let names: Vec<String> = v.iter().map(RecordingName::file_name).collect();
        assert_eq!(
            names,
            [
                "recording_20250102_030405.h264",
                "recording_20260102_030405.mp4",
                "recording_20260102_030405_2.mp4",
                "recording_20260102_030405_10.mp4",
            ]
        );
    }

    #[test]
    fn a_name_from_a_time_is_parsable() {
        let n = RecordingName::at(&now(), 0, Format::Mp4);
        assert_eq!(RecordingName::parse(&n.file_name()), Some(n.clone()));
        assert!(n.start_rfc3339().is_some());
    }
}
