//! A recording session: from start to stop, one file or a series of segments.
//!
//! A session waits for an IDR (a start mid-GOP, or a camera restart mid-GOP, skips frames up
//! to the next one), then hands frames to the current [`FileWriter`]. A new file starts on an
//! IDR once the current one holds `segment_duration` of media or `segment_bytes`, or (MP4)
//! when the parameter sets change: the IDR that triggers the cut is the new file's first frame
//! and ends the previous file's last sample, so no frame is lost or written twice.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Zoned;

use crate::config::{Format, Fsync};
use crate::error::RecordError;
use crate::mp4;
use crate::names::now;
use crate::unit::AccessUnit;
use crate::writer::{FileSummary, FileWriter, params_of};

/// What a session needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// Recording directory.
    pub dir: PathBuf,
    /// Container.
    pub format: Format,
    /// Sync policy.
    pub fsync: Fsync,
    /// Longest media time per write.
    pub fragment_duration: Duration,
    /// Segment length in media time.
    pub segment_duration: Option<Duration>,
    /// Segment size in bytes.
    pub segment_bytes: Option<u64>,
}

/// A running recording.
#[derive(Debug)]
pub struct Session<F> {
    cfg: SessionConfig,
    writer: Option<FileWriter<F>>,
    waiting_for_idr: bool,
    generation: Option<u32>,
    /// The camera restarted: the next IDR starts a new file (its parameters, its size, its
    /// clock may all have changed).
    camera_restarted: bool,
    started: Zoned,
    closed: Vec<FileSummary>,
    /// Totals of the files closed so far.
    closed_frames: u64,
    closed_bytes: u64,
    closed_ticks: u64,
    skipped: u64,
}

impl<F: AccessUnit> Session<F> {
    /// Starts a session: creates the directory if missing and the first file (so that an
    /// unwritable directory is reported now, not at the first IDR).
    pub fn start(cfg: SessionConfig) -> Result<Self, RecordError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|source| RecordError::CreateDir {
            dir: cfg.dir.clone(),
            source,
        })?;
        let writer = FileWriter::create(&cfg.dir, cfg.format, cfg.fsync, cfg.fragment_duration)?;
        Ok(Self {
            cfg,
            writer: Some(writer),
            waiting_for_idr: true,
            generation: None,
            camera_restarted: false,
            started: now(),
            closed: Vec::new(),
            closed_frames: 0,
            closed_bytes: 0,
            closed_ticks: 0,
            skipped: 0,
        })
    }

    /// Records one frame. On an error the session is over (the caller stops it); what was
    /// written stays readable.
    pub fn push(&mut self, frame: F) -> Result<(), RecordError> {
        let generation = frame.generation();
        if self.generation.is_some_and(|g| g != generation) {
            self.camera_restarted = true;
            if !frame.is_idr() {
                // A restarted camera that does not begin with an IDR: wait for one.
                self.waiting_for_idr = true;
            }
        }
        self.generation = Some(generation);
        if self.waiting_for_idr {
            if !frame.is_idr() || (self.cfg.format == Format::Mp4 && params_of(&frame).is_none()) {
                self.skipped += 1;
                return Ok(());
            }
            self.waiting_for_idr = false;
        }
        if frame.is_idr() && (self.camera_restarted || self.cut_due(&frame)) {
            self.camera_restarted = false;
            if self.writer.as_ref().is_some_and(|w| w.started()) {
                self.cut(&frame)?;
            }
        }
        match &mut self.writer {
            Some(w) => w.push(frame),
            None => Ok(()),
        }
    }

    fn cut_due(&self, frame: &F) -> bool {
        let Some(w) = &self.writer else {
            return false;
        };
        if !w.started() {
            return false;
        }
        let by_time = self.cfg.segment_duration.is_some_and(|d| {
            let limit = mp4::ns_to_ticks(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            w.peek_time(frame) >= limit
        });
        let by_size = self
            .cfg
            .segment_bytes
            .is_some_and(|b| w.size_estimate() >= b);
        let new_params = self.cfg.format == Format::Mp4 && w.params_changed(frame);
        by_time || by_size || new_params
    }

    /// Ends the current file just before `frame` and opens the next one.
    fn cut(&mut self, frame: &F) -> Result<(), RecordError> {
        if let Some(w) = self.writer.take() {
            let end = w.peek_time(frame);
            let summary = w.finish(Some(end))?;
            self.close(summary);
        }
        self.writer = Some(FileWriter::create(
            &self.cfg.dir,
            self.cfg.format,
            self.cfg.fsync,
            self.cfg.fragment_duration,
        )?);
        Ok(())
    }

    fn close(&mut self, summary: FileSummary) {
        self.closed_frames += summary.frames;
        self.closed_bytes += summary.bytes;
        self.closed_ticks += summary.ticks;
        self.closed.push(summary);
    }

    /// Writes held frames out (no frame for a while).
    pub fn flush_pending(&mut self) -> Result<(), RecordError> {
        match &mut self.writer {
            Some(w) => w.flush_pending(),
            None => Ok(()),
        }
    }

    /// Stops: writes what is held and closes the file (removed if it holds nothing).
    pub fn stop(&mut self) -> Result<(), RecordError> {
        if let Some(w) = self.writer.take() {
            if !w.started() {
                // Dropping a writer that holds no frame removes its file.
                return Ok(());
            }
            let summary = w.finish(None)?;
            self.close(summary);
        }
        Ok(())
    }

    /// Files closed since the last call (for the log, the listing and the segment counter).
    pub fn take_closed(&mut self) -> Vec<FileSummary> {
        std::mem::take(&mut self.closed)
    }

    /// The file being written.
    pub fn current_file(&self) -> Option<&str> {
        self.writer.as_ref().map(|w| w.name())
    }

    /// The current file's media time so far, ticks.
    pub fn current_ticks(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.ticks())
    }

    /// Frames recorded in the session (written or held for the next write).
    pub fn frames(&self) -> u64 {
        self.closed_frames + self.writer.as_ref().map_or(0, |w| w.frames())
    }

    /// Bytes written to disk in the session.
    pub fn bytes(&self) -> u64 {
        self.closed_bytes + self.writer.as_ref().map_or(0, |w| w.bytes_written())
    }

    /// Media time recorded, ticks.
    pub fn ticks(&self) -> u64 {
        self.closed_ticks + self.current_ticks()
    }

    /// When the session started.
    pub fn started(&self) -> &Zoned {
        &self.started
    }

    /// Frames skipped while waiting for an IDR.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::OwnedUnit;

    fn unit(n: u64, gop: u64) -> OwnedUnit {
        let idr = n.is_multiple_of(gop);
        let mut data = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
        data.extend_from_slice(&n.to_be_bytes());
        OwnedUnit {
            data,
            timestamp_ns: 5_000_000_000 + n * 33_333_333,
            idr,
            sps: Some(vec![0x67, 0x42, 0xc0, 0x0d]),
            pps: Some(vec![0x68, 0xce]),
            inband: false,
            generation: 0,
        }
    }

    fn config(dir: &std::path::Path, format: Format) -> SessionConfig {
        SessionConfig {
            dir: dir.to_owned(),
            format,
            fsync: Fsync::None,
            fragment_duration: Duration::from_millis(200),
            segment_duration: Some(Duration::from_secs(1)),
            segment_bytes: None,
        }
    }

    #[test]
    fn a_start_mid_gop_waits_and_segments_lose_no_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Session::start(config(dir.path(), Format::H264)).expect("start");
        // Frames 0..10 precede the recording; it starts at frame 10, mid-GOP (GOP 15).
        for n in 10..200 {
            s.push(unit(n, 15)).expect("push");
        }
        s.stop().expect("stop");
        assert_eq!(s.skipped(), 5);
        let files = s.take_closed();
        assert_eq!(s.frames(), 200 - 15);
        assert_eq!(files.iter().map(|f| f.frames).sum::<u64>(), 185);
        // One second (30 frames) per segment, cut at the IDR that reaches it: 2 GOPs each.
        assert_eq!(files.len(), 7, "{files:?}");
        assert!(files[..6].iter().all(|f| f.frames == 30), "{files:?}");
        // The files, concatenated, are every frame from 15 on, once, in order (each starting
        // with the parameter sets it lacked).
        let mut all = Vec::new();
        for f in &files {
            let data = std::fs::read(dir.path().join(&f.name)).expect("read");
            let params = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0, 0, 0, 1, 0x68, 0xce];
            assert!(data.starts_with(&params), "{} lacks SPS/PPS", f.name);
            assert_eq!(
                data[params.len() + 4],
                0x65,
                "{} starts with an IDR",
                f.name
            );
            all.extend_from_slice(&data[params.len()..]);
        }
        let expected: Vec<u8> = (15..200).flat_map(|n| unit(n, 15).data).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn mp4_segments_end_where_the_next_begins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Session::start(config(dir.path(), Format::Mp4)).expect("start");
        for n in 0..100 {
            s.push(unit(n, 10)).expect("push");
        }
        s.stop().expect("stop");
        let files = s.take_closed();
        assert_eq!(files.iter().map(|f| f.frames).sum::<u64>(), 100);
        // 30 frames a second, cut on the IDR at or after 1 s: frames 0..30, 30..60, 60..90.
        assert_eq!(files[0].frames, 30);
        assert_eq!(files[0].ticks, 90_000);
        assert_eq!(s.ticks(), 100 * 3000);
    }

    #[test]
    fn a_camera_restart_starts_a_new_file_at_its_first_idr() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(dir.path(), Format::Mp4);
        cfg.segment_duration = None;
        let mut s = Session::start(cfg).expect("start");
        for n in 0..20 {
            s.push(unit(n, 10)).expect("push");
        }
        // The camera restarts: its clock starts over (earlier stamps), its first frames are a
        // P-frame (skipped) and then an IDR.
        for n in 0..15 {
            let mut u = unit(n + 9, 10);
            u.generation = 1;
            u.timestamp_ns = 1_000_000_000 + n * 33_333_333;
            s.push(u).expect("push");
        }
        s.stop().expect("stop");
        let files = s.take_closed();
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].frames, 20);
        assert_eq!(files[1].frames, 14, "from the restarted camera's first IDR");
        assert_eq!(s.skipped(), 1);
    }

    #[test]
    fn a_stop_before_any_idr_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Session::start(config(dir.path(), Format::Mp4)).expect("start");
        s.push(unit(1, 10)).expect("push");
        s.stop().expect("stop");
        assert!(s.take_closed().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn a_directory_that_cannot_be_created_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").expect("write");
        let e = Session::<OwnedUnit>::start(config(&file.join("sub"), Format::Mp4))
            .expect_err("not a directory");
        assert!(
            e.to_string()
                .starts_with("cannot create the recording directory"),
            "{e}"
        );
    }
}
