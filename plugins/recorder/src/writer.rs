//! One recording file: its name, its format, and crash-safe writes.
//!
//! Frames are held (retained, not copied) until `fragment_duration` of media time has
//! accumulated, then written as one fragment in a single `write`: an MP4 `moof` + `mdat`, or
//! the Annex-B bytes of those frames. A process killed at any moment therefore leaves a file
//! that ends on a fragment boundary (or, at worst, in the middle of the last `write`, which the
//! kernel completes for a regular file unless the process dies inside it). A failed write is
//! undone with `ftruncate` back to the end of the last complete fragment, so a disk-full error
//! leaves a file that plays to its end; a file without a single frame is removed when its
//! writer goes (see the `Drop` impl).
//!
//! Sample timing comes from the capture timestamps (90 kHz ticks, see `timeline.rs`); the last
//! held frame's duration is known when the next frame arrives, and at a clean end it takes the
//! previous frame's duration.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Format, Fsync};
use crate::error::RecordError;
use crate::mp4::{self, Sample, Track};
use crate::names::{Kind, RecordingName, now};
use crate::timeline::{Clock, Grid};
use crate::unit::AccessUnit;
use stackctl_media::h264::{self, NalHeader, NalType, START_CODE, SpsInfo};

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// File name (in the recording directory).
    pub name: String,
    /// Frames written.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Media duration, in 90 kHz ticks.
    pub ticks: u64,
}

/// A recording file being written.
#[derive(Debug)]
pub struct FileWriter<F> {
    file: File,
    path: PathBuf,
    name: String,
    format: Format,
    fsync: Fsync,
    fragment_ticks: u64,
    /// Bytes on disk: the end of the last complete fragment.
    committed: u64,
    frames: u64,
    /// Media time written, ticks.
    ticks: u64,
    pending: Vec<(F, u64)>,
    pending_bytes: u64,
    /// True times of the frames (set at the first frame).
    clock: Option<Clock>,
    /// Decode times, placed when a fragment is written.
    grid: Grid,
    /// Where the last fragment's last duration ended: the next fragment's first decode time.
    pinned: Option<u64>,
    last_duration: u64,
    sequence: u32,
    /// The MP4 track (after the init segment is written).
    track: Option<Track>,
    /// The SPS and PPS last written in-band into a raw file.
    raw_params: Option<(Vec<u8>, Vec<u8>)>,
    buf: Vec<u8>,
}

impl<F: AccessUnit> FileWriter<F> {
    /// Creates a new file in `dir` named for the local time now, never overwriting one: a
    /// taken name gets a suffix (`_1`, `_2`...).
    pub fn create(
        dir: &Path,
        format: Format,
        fsync: Fsync,
        fragment_duration: Duration,
    ) -> Result<Self, RecordError> {
        Self::create_kind(dir, Kind::Recording, format, fsync, fragment_duration)
    }

    /// [`create`](Self::create) for a file of `kind` (an event clip is named `event_...`).
    pub fn create_kind(
        dir: &Path,
        kind: Kind,
        format: Format,
        fsync: Fsync,
        fragment_duration: Duration,
    ) -> Result<Self, RecordError> {
        let time = now();
        let mut name = RecordingName::of_kind(kind, &time, 0, format);
        loop {
            let file_name = name.file_name();
            let path = dir.join(&file_name);
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path);
            match opened {
                Ok(file) => {
                    if fsync != Fsync::None {
                        // The new directory entry survives a power loss too.
                        let synced = File::open(dir).and_then(|d| d.sync_all());
                        if let Err(source) = synced {
                            return Err(RecordError::Write { path, source });
                        }
                    }
                    return Ok(Self::new(
                        file,
                        path,
                        file_name,
                        format,
                        fsync,
                        fragment_duration,
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && name.can_bump() => {
                    name.suffix += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(RecordError::NoName {
                        dir: dir.to_owned(),
                    });
                }
                Err(source) => return Err(RecordError::CreateFile { path, source }),
            }
        }
    }

    fn new(
        file: File,
        path: PathBuf,
        name: String,
        format: Format,
        fsync: Fsync,
        fragment_duration: Duration,
    ) -> Self {
        Self {
            file,
            path,
            name,
            format,
            fsync,
            fragment_ticks: mp4::ns_to_ticks(
                u64::try_from(fragment_duration.as_nanos()).unwrap_or(u64::MAX),
            )
            .max(1),
            committed: 0,
            frames: 0,
            ticks: 0,
            pending: Vec::with_capacity(64),
            pending_bytes: 0,
            clock: None,
            grid: Grid::new(mp4::TIMESCALE),
            pinned: None,
            last_duration: 0,
            sequence: 1,
            track: None,
            raw_params: None,
            buf: Vec::new(),
        }
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a frame was accepted yet (the file then starts with an IDR).
    pub fn started(&self) -> bool {
        self.clock.is_some()
    }

    /// Frames accepted (written or held for the next fragment).
    pub fn frames(&self) -> u64 {
        self.frames + self.pending.len() as u64
    }

    /// Bytes on disk.
    pub fn bytes_written(&self) -> u64 {
        self.committed
    }

    /// Bytes on disk plus those held for the next fragment (roughly what the file will be).
    pub fn size_estimate(&self) -> u64 {
        self.committed + self.pending_bytes
    }

    /// Media time accepted so far, ticks: up to the latest frame's decode time.
    pub fn ticks(&self) -> u64 {
        match self.pending.last() {
            Some((_, dts)) => *dts,
            None => self.ticks,
        }
    }

    /// The true time (ticks since the file's first frame) of `frame` in this file.
    pub fn peek_time(&self, frame: &F) -> u64 {
        match &self.clock {
            None => 0,
            Some(c) => c.peek(frame.timestamp_ns(), frame.generation()),
        }
    }

    /// Whether `frame` (an IDR) comes with other parameter sets than the file's sample entry:
    /// an MP4 then needs a new file.
    pub fn params_changed(&self, frame: &F) -> bool {
        match (&self.track, params_of(frame)) {
            (Some(track), Some((sps, pps))) => track.sps != sps || track.pps != pps,
            _ => false,
        }
    }

    /// Accepts one frame; the first must be an IDR with known SPS and PPS (the caller
    /// ensures it). Writes a fragment when the held frames span `fragment_duration`.
    pub fn push(&mut self, frame: F) -> Result<(), RecordError> {
        let ns = frame.timestamp_ns();
        let generation = frame.generation();
        let t = match &mut self.clock {
            None => {
                if self.format == Format::Mp4 {
                    self.write_init(&frame)?;
                }
                self.clock = Some(Clock::new(ns, generation, mp4::TIMESCALE));
                0
            }
            Some(t) => t.advance(ns, generation),
        };
        if let Some((_, first)) = self.pending.first()
            && t.saturating_sub(*first) >= self.fragment_ticks
        {
            self.flush(Some(t))?;
        }
        self.pending_bytes += frame.data().len() as u64;
        self.pending.push((frame, t));
        Ok(())
    }

    /// Writes the held frames now (a stalled camera should not keep them in memory forever):
    /// the last one gets the previous frame's duration.
    pub fn flush_pending(&mut self) -> Result<(), RecordError> {
        self.flush(None)
    }

    /// Writes the held frames, the last one ending at `end` (the next frame's decode time), and
    /// closes the file, synced as the policy says.
    pub fn finish(mut self, end: Option<u64>) -> Result<FileSummary, RecordError> {
        self.flush(end)?;
        if self.fsync != Fsync::None
            && let Err(source) = self.file.sync_data()
        {
            return Err(RecordError::Write {
                path: self.path.clone(),
                source,
            });
        }
        Ok(self.summary())
    }

    /// What the file holds on disk.
    pub fn summary(&self) -> FileSummary {
        FileSummary {
            name: self.name.clone(),
            frames: self.frames,
            bytes: self.committed,
            ticks: self.ticks,
        }
    }

    fn write_init(&mut self, frame: &F) -> Result<(), RecordError> {
        let (sps, pps) = params_of(frame).unwrap_or_default();
        let (width, height) = SpsInfo::parse(&sps).map_or((0, 0), |info| (info.width, info.height));
        let track = Track {
            width,
            height,
            sps,
            pps,
        };
        let init = mp4::init_segment(&track);
        self.write_out(&init)?;
        self.track = Some(track);
        Ok(())
    }

    fn flush(&mut self, end: Option<u64>) -> Result<(), RecordError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        // Decode times now, on the rate's grid (primed with the first fragment's frames).
        let times: Vec<u64> = pending.iter().map(|(_, t)| *t).collect();
        if !self.grid.primed() {
            let mut primer = times.clone();
            primer.extend(end);
            self.grid.prime(&primer);
        }
        let dts = self.grid.place_run(&times, self.pinned.take());
        let end = end.map(|e| self.grid.peek(e));
        self.pinned = end;
        let mut durations = Vec::with_capacity(pending.len());
        for (i, d) in dts.iter().enumerate() {
            let next = dts.get(i + 1).copied().or(end);
            // The last frame before a stop or a stall: the previous frame's duration.
            let duration = match next {
                Some(next) if next > *d => next - d,
                _ if self.last_duration > 0 => self.last_duration,
                _ => self.grid.step(),
            };
            durations.push(duration);
            self.last_duration = duration.max(1);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        match self.format {
            Format::Mp4 => self.build_fragment(&mut buf, &pending, dts[0], &durations),
            Format::H264 => self.build_raw(&mut buf, &pending),
        }
        let written = self.write_out(&buf);
        self.buf = buf;
        written?;
        self.frames += pending.len() as u64;
        self.ticks = dts[dts.len() - 1] + durations[durations.len() - 1];
        if self.fsync == Fsync::Fragment
            && let Err(source) = self.file.sync_data()
        {
            return Err(RecordError::Write {
                path: self.path.clone(),
                source,
            });
        }
        Ok(())
    }

    fn build_fragment(
        &mut self,
        buf: &mut Vec<u8>,
        pending: &[(F, u64)],
        base_dts: u64,
        durations: &[u64],
    ) {
        let samples: Vec<Sample> = pending
            .iter()
            .zip(durations)
            .map(|((frame, _), &duration)| Sample {
                duration: u32::try_from(duration).unwrap_or(u32::MAX),
                size: h264::nal_units(frame.data())
                    .filter(|u| !is_out_of_band(u))
                    .map(|u| 4 + u.len() as u32)
                    .sum(),
                sync: frame.is_idr(),
            })
            .collect();
        let payload: usize = samples.iter().map(|s| s.size as usize).sum();
        buf.reserve(mp4::moof_size(samples.len()) + 8 + payload);
        mp4::fragment_header(buf, self.sequence, base_dts, &samples, payload);
        self.sequence = self.sequence.wrapping_add(1);
        for (frame, _) in pending {
            for unit in h264::nal_units(frame.data()).filter(|u| !is_out_of_band(u)) {
                buf.extend_from_slice(&(unit.len() as u32).to_be_bytes());
                buf.extend_from_slice(unit);
            }
        }
    }

    fn build_raw(&mut self, buf: &mut Vec<u8>, pending: &[(F, u64)]) {
        for (frame, _) in pending {
            if frame.is_idr() {
                // The file must decode from its first frame, and after a parameter change:
                // put the stream's SPS and PPS in front of an IDR that lacks them.
                let inband = frame.has_inband_params() || has_parameter_sets(frame.data());
                let params = params_of(frame);
                if inband {
                    self.raw_params = params;
                } else if let Some((sps, pps)) = params
                    && self.raw_params.as_ref() != Some(&(sps.clone(), pps.clone()))
                {
                    buf.extend_from_slice(START_CODE);
                    buf.extend_from_slice(&sps);
                    buf.extend_from_slice(START_CODE);
                    buf.extend_from_slice(&pps);
                    self.raw_params = Some((sps, pps));
                }
            }
            buf.extend_from_slice(frame.data());
        }
    }

    /// One `write` (looping only if the kernel writes less); on failure the file is cut back
    /// to its last complete fragment.
    fn write_out(&mut self, bytes: &[u8]) -> Result<(), RecordError> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.committed += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                let _ = self.file.set_len(self.committed);
                Err(RecordError::Write {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

impl<F> Drop for FileWriter<F> {
    /// A file that no frame made it into is no recording: at most an MP4 header (`ftyp` +
    /// `moov`) that no player opens. It goes, whether the recording stopped before its first
    /// IDR or its first fragment failed to fit on a full disk.
    fn drop(&mut self) {
        if self.frames == 0 {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The SPS and PPS of a frame: the host's copies, else the frame's own in-band ones.
pub fn params_of<F: AccessUnit>(frame: &F) -> Option<(Vec<u8>, Vec<u8>)> {
    if let (Some(sps), Some(pps)) = (frame.sps(), frame.pps()) {
        return Some((sps.to_vec(), pps.to_vec()));
    }
    let (mut sps, mut pps) = (None, None);
    for unit in h264::nal_units(frame.data()) {
        match nal_type(unit) {
            NalType::Sps => sps = Some(unit.to_vec()),
            NalType::Pps => pps = Some(unit.to_vec()),
            _ => {}
        }
    }
    Some((sps?, pps?))
}

/// The type of a NAL unit (never empty: [`h264::nal_units`] yields none).
fn nal_type(unit: &[u8]) -> NalType {
    unit.first()
        .map_or(NalType::Other(0), |&b| NalHeader::new(b).nal_type())
}

/// Whether a NAL unit is a parameter set or delimiter: what the MP4 samples leave out, since
/// the sample entry carries the parameter sets.
fn is_out_of_band(unit: &[u8]) -> bool {
    matches!(nal_type(unit), NalType::Sps | NalType::Pps | NalType::Aud)
}

/// Whether the access unit carries both an SPS and a PPS itself.
fn has_parameter_sets(data: &[u8]) -> bool {
    let types = || h264::nal_units(data).map(nal_type);
    types().any(|t| t == NalType::Sps) && types().any(|t| t == NalType::Pps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::OwnedUnit;

    const MS: u64 = 1_000_000;

    fn unit(ts_ms: u64, idr: bool, inband: bool) -> OwnedUnit {
        let mut data = Vec::new();
        if inband {
            data.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d]);
            data.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce]);
        }
        data.extend_from_slice(&[0, 0, 0, 1, if idr { 0x65 } else { 0x41 }, 0x88, 0x84]);
        OwnedUnit {
            data,
            timestamp_ns: 1_000_000 * MS + ts_ms * MS,
            idr,
            sps: Some(vec![0x67, 0x42, 0xc0, 0x0d]),
            pps: Some(vec![0x68, 0xce]),
            inband,
            generation: 0,
        }
    }

    fn writer(dir: &Path, format: Format, fragment_ms: u64) -> FileWriter<OwnedUnit> {
        FileWriter::create(dir, format, Fsync::None, Duration::from_millis(fragment_ms))
            .expect("create")
    }

    #[test]
    fn names_never_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = writer(dir.path(), Format::Mp4, 1000);
        let b = writer(dir.path(), Format::Mp4, 1000);
        assert_ne!(a.name(), b.name());
        assert!(RecordingName::parse(a.name()).is_some());
        assert!(RecordingName::parse(b.name()).is_some());
    }

    #[test]
    fn fragments_are_written_every_fragment_duration_with_true_durations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = writer(dir.path(), Format::Mp4, 100);
        // 30 fps for 4 frames, then 2 fps.
        for (i, ts) in [0, 33, 67, 100, 600, 1100].into_iter().enumerate() {
            w.push(unit(ts, i == 0, i == 0)).expect("push");
        }
        // Fragments of [0,33,67] (cut when 100 arrived), [100] (cut at 600), [600] (at 1100).
        assert_eq!(w.frames, 5);
        assert_eq!(w.pending.len(), 1);
        let summary = w.finish(None).expect("finish");
        assert_eq!(summary.frames, 6);
        // 1100 ms, plus the last frame's duration taken from the one before (500 ms).
        assert_eq!(summary.ticks, mp4::ns_to_ticks(1600 * MS));
        let data = std::fs::read(dir.path().join(&summary.name)).expect("read");
        assert_eq!(data.len() as u64, summary.bytes);
        let boxes = crate::mp4::tests::top_boxes(&data);
        let kinds: Vec<&str> = boxes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "ftyp", "moov", "moof", "mdat", "moof", "mdat", "moof", "mdat", "moof", "mdat"
            ]
        );
        // No parameter sets in the samples: the first mdat holds three 7-byte samples.
        assert_eq!(boxes[3].1, 8 + 3 * 7);
    }

    #[test]
    fn a_camera_restart_or_backward_clock_does_not_make_a_huge_or_negative_duration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = writer(dir.path(), Format::Mp4, 10_000);
        w.push(unit(0, true, true)).expect("push");
        w.push(unit(40, false, false)).expect("push");
        let mut restarted = unit(0, true, true);
        restarted.timestamp_ns = 5 * MS; // far back, a new generation
        restarted.generation = 1;
        w.push(restarted).expect("push");
        let mut next = unit(0, false, false);
        next.timestamp_ns = 45 * MS;
        next.generation = 1;
        w.push(next).expect("push");
        let dts: Vec<u64> = w.pending.iter().map(|(_, d)| *d).collect();
        assert_eq!(dts, [0, 3600, 7200, 7200 + 3600]);
    }

    #[test]
    fn a_raw_file_gets_parameter_sets_before_its_first_idr_only_when_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = writer(dir.path(), Format::H264, 1000);
        let first = unit(0, true, false);
        let p = unit(33, false, false);
        let second = unit(67, true, false);
        let expected: Vec<u8> = [
            &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0, 0, 0, 1, 0x68, 0xce][..],
            &first.data,
            &p.data,
            &second.data,
        ]
        .concat();
        for u in [first, p, second] {
            w.push(u).expect("push");
        }
        let summary = w.finish(None).expect("finish");
        let data = std::fs::read(dir.path().join(&summary.name)).expect("read");
        assert_eq!(data, expected);

        // In-band parameter sets are kept as they are, and nothing is added.
        let mut w = writer(dir.path(), Format::H264, 1000);
        let idr = unit(0, true, true);
        let expected = idr.data.clone();
        w.push(idr).expect("push");
        let summary = w.finish(None).expect("finish");
        assert_eq!(
            std::fs::read(dir.path().join(&summary.name)).expect("read"),
            expected
        );
    }

    #[test]
    fn a_file_whose_first_fragment_fails_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = writer(dir.path(), Format::Mp4, 10);
        w.push(unit(0, true, true)).expect("push");
        assert!(w.committed > 0, "the init segment is on disk");
        // The first fragment cannot be written (as on a full disk).
        w.file = File::open(&w.path).expect("reopen read-only");
        w.push(unit(33, false, false)).expect_err("write fails");
        let path = w.path.clone();
        assert!(path.exists(), "kept while its writer lives");
        drop(w);
        assert!(!path.exists(), "a file with no frame is removed");
        // One with frames stays.
        let mut w = writer(dir.path(), Format::Mp4, 10);
        w.push(unit(0, true, true)).expect("push");
        w.push(unit(33, false, false)).expect("push");
        let path = w.path.clone();
        w.file = File::open(&path).expect("reopen read-only");
        w.push(unit(67, false, false)).expect_err("write fails");
        drop(w);
        assert!(path.exists(), "a file with a frame is kept");
    }

    #[test]
    fn a_failed_write_cuts_the_file_back_to_its_last_fragment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = writer(dir.path(), Format::Mp4, 10);
        w.push(unit(0, true, true)).expect("push");
        w.push(unit(33, false, false)).expect("push");
        let good = w.committed;
        // Make the next write fail: swap the file for a read-only handle on the same file.
        w.file = File::open(&w.path).expect("reopen read-only");
        let e = w.push(unit(67, false, false)).expect_err("write fails");
        assert!(e.to_string().starts_with("cannot write "), "{e}");
        assert_eq!(std::fs::metadata(&w.path).expect("stat").len(), good);
    }
}
