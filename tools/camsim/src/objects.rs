//! The orange square's schedule (`--object-schedule`) and its truth file (`--dump-objects`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::pattern::Object;

/// Visible for `visible`, hidden for `hidden`, over and over, from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// How long the square shows.
    pub visible: Duration,
    /// How long it is gone.
    pub hidden: Duration,
}

impl Schedule {
    /// Whether the square shows at `clock` since the start. Without a schedule it always does.
    pub fn visible_at(schedule: Option<Self>, clock: Duration) -> bool {
        let Some(s) = schedule else { return true };
        let cycle = s.visible + s.hidden;
        let into = clock.as_nanos() % cycle.as_nanos().max(1);
        into < s.visible.as_nanos()
    }

    /// Parses `VISIBLE:HIDDEN`, each a duration (`10s`, `500ms`, `1.5`, seconds by default).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (v, h) = text
            .split_once(':')
            .ok_or_else(|| "expected VISIBLE:HIDDEN, e.g. 10s:20s".to_owned())?;
        let visible = duration(v)?;
        let hidden = duration(h)?;
        if visible.is_zero() {
            return Err("the visible part must be longer than 0".to_owned());
        }
        Ok(Self { visible, hidden })
    }
}

/// `10s`, `500ms`, or a number of seconds; 0 to 1 day.
fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix("ms") {
        Some(ms) => (ms, 1e-3),
        None => (t.strip_suffix('s').unwrap_or(t), 1.0),
    };
    let secs = number
        .trim()
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms)"))?;
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("{text:?} is outside 0s..=1 day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--dump-objects`: one line per published frame, `frame_number timestamp_ns x y w h
/// visible` (pixels; visible 1 or 0), after a `#` header line. Flushed line by line so a
/// reader can follow it while camsim runs.
#[derive(Debug)]
pub struct ObjectDump {
    path: PathBuf,
    out: BufWriter<File>,
}

impl ObjectDump {
    /// Creates (or truncates) `path` and writes the header line.
    pub fn create(path: &Path) -> Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create --dump-objects {}", path.display()))?;
        let mut dump = Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
        };
        dump.line(format_args!("# frame_number timestamp_ns x y w h visible"))?;
        Ok(dump)
    }

    /// Records where the square was in frame `frame_number`, captured at `timestamp_ns`.
    pub fn write(
        &mut self,
        frame_number: u64,
        timestamp_ns: u64,
        object: Object,
        visible: bool,
    ) -> Result<()> {
        let Object { x, y, side } = object;
        self.line(format_args!(
            "{frame_number} {timestamp_ns} {x} {y} {side} {side} {}",
            u8::from(visible)
        ))
    }

    fn line(&mut self, line: std::fmt::Arguments<'_>) -> Result<()> {
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .with_context(|| format!("cannot write --dump-objects {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_alternate() {
        let s = Schedule::parse("10s:20s").unwrap();
        assert_eq!(
            (s.visible, s.hidden),
            (Duration::from_secs(10), Duration::from_secs(20))
        );
        assert_eq!(
            Schedule::parse("500ms:1.5").unwrap().hidden,
            Duration::from_millis(1500)
        );
        let at = |secs: f64| Schedule::visible_at(Some(s), Duration::from_secs_f64(secs));
        assert!(at(0.0) && at(9.99));
        assert!(!at(10.0) && !at(29.99));
        assert!(at(30.0) && !at(45.0));
        assert!(Schedule::visible_at(None, Duration::from_secs(12)));
        assert!(Schedule::visible_at(
            Some(Schedule::parse("1s:0").unwrap()),
            Duration::from_secs(7)
        ));
        for bad in ["10s", "0:5s", "x:1", "1:-1", "1:2:3", "1d:1s"] {
            assert!(Schedule::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
