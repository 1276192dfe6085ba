//! The test pattern through OpenH264: one access unit per picture.

use anyhow::{Context, Result, bail, ensure};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};

use crate::pattern::Pattern;

/// What the encoder is asked to produce.
#[derive(Debug, Clone, Copy)]
pub struct EncoderSettings {
    /// Frames per second the rate control plans for.
    pub fps: u32,
    /// Frames from one IDR to the next.
    pub gop: u32,
    /// Target bit rate in kbit/s.
    pub bitrate_kbps: u32,
}

/// An OpenH264 encoder producing a constant-rate stream with an IDR every `gop` frames.
pub struct H264Encoder {
    settings: EncoderSettings,
    inner: Encoder,
    /// Pictures encoded so far, for the encoder's timestamps.
    frames: u64,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("settings", &self.settings)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// A fresh encoder: its first access unit is an IDR preceded by SPS and PPS.
    pub fn new(settings: EncoderSettings) -> Result<Self> {
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(
                settings.bitrate_kbps.saturating_mul(1000),
            ))
            .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.gop))
            // A camera delivers every frame, and readers count on IDRs exactly every --gop
            // frames: no skipped frames, no IDR inserted at a "scene change".
            .skip_frames(false)
            .scene_change_detect(false)
            // One thread keeps the output deterministic and leaves the other core to the readers
            // under test.
            .num_threads(1);
        let mut inner = Encoder::with_api_config(OpenH264API::from_source(), config)
            .context("cannot create the OpenH264 encoder")?;
        silence_library_log(&mut inner)?;
        Ok(Self {
            settings,
            inner,
            frames: 0,
        })
    }

    /// Replaces this encoder with a fresh one, as a restarted camera daemon would: the next
    /// access unit is an IDR with SPS and PPS.
    pub fn restart(&mut self) -> Result<()> {
        *self = Self::new(self.settings)?;
        Ok(())
    }

    /// Encodes the pattern's current picture and appends the access unit (Annex-B, 4-byte
    /// start codes) to `out`. Returns whether it is an IDR.
    pub fn encode(&mut self, pattern: &Pattern, out: &mut Vec<u8>) -> Result<bool> {
        let (w, h) = (pattern.width(), pattern.height());
        let source = YUVSlices::new(pattern.planes(), (w, h), (w, w / 2, w / 2));
        let millis = self.frames.saturating_mul(1000) / u64::from(self.settings.fps);
        let stream = self
            .inner
            .encode_at(&source, Timestamp::from_millis(millis))
            .with_context(|| format!("OpenH264 failed to encode frame {}", self.frames))?;
        self.frames += 1;
        let frame_type = stream.frame_type();
        if matches!(frame_type, FrameType::Skip | FrameType::Invalid) {
            bail!(
                "OpenH264 produced no picture for frame {} ({frame_type:?})",
                self.frames - 1
            );
        }
        let before = out.len();
        stream.write_vec(out);
        if out.len() == before {
            bail!("OpenH264 produced an empty access unit");
        }
        Ok(frame_type == FrameType::IDR)
    }
}

/// `ENCODER_OPTION_TRACE_LEVEL` in OpenH264's `codec_app_def.h` (part of its stable ABI; the
/// `openh264` crate does not re-export the constant).
const ENCODER_OPTION_TRACE_LEVEL: i32 = 25;
/// `WELS_LOG_QUIET` in OpenH264's `codec_app_def.h`.
const WELS_LOG_QUIET: u32 = 0;

/// Silences OpenH264's log before the wrapper initialises the encoder on the first frame.
/// Otherwise initialisation warns on stderr, at every start and restart, that rate control is
/// not exact without frame skipping (which a camera stand-in must not do; with the sensor noise
/// the stream meets the target anyway). Failures still come back as error codes.
#[allow(unsafe_code)]
fn silence_library_log(encoder: &mut Encoder) -> Result<()> {
    let mut level = WELS_LOG_QUIET;
    // SAFETY: the trace level is one of the options OpenH264 accepts before initialisation
    // (`CWelsH264SVCEncoder::SetOption`); it reads one uint32 through the pointer during the
    // call, and `level` outlives the call. It changes no parameter the wrapper relies on (the
    // wrapper sets the same option itself, to quiet, after initialising).
    let rc = unsafe {
        encoder
            .raw_api()
            .set_option(ENCODER_OPTION_TRACE_LEVEL, (&raw mut level).cast())
    };
    ensure!(
        rc == 0,
        "OpenH264 refused to set its log level (error {rc})"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn settings() -> EncoderSettings {
        EncoderSettings {
            fps: 30,
            gop: 30,
            bitrate_kbps: 4000,
        }
    }

    #[test]
    fn idr_every_gop_frames_and_again_after_a_restart() {
        let mut pattern = Pattern::new(160, 120);
        let gop4 = EncoderSettings {
            gop: 4,
            ..settings()
        };
        let mut encoder = H264Encoder::new(gop4).unwrap();
        let mut idrs = Vec::new();
        for n in 0..9 {
            pattern.render(n, Duration::from_millis(n * 33), true);
            let mut au = Vec::new();
            if encoder.encode(&pattern, &mut au).unwrap() {
                idrs.push(n);
            }
            if n == 6 {
                encoder.restart().unwrap();
            }
        }
        assert_eq!(idrs, [0, 4, 7]);
    }

    /// How many frames per second OpenH264 encodes here (pattern rendering excluded). Run with
    /// `cargo test -p camsim --release -- --ignored --nocapture encoder_throughput`.
    #[test]
    #[ignore = "a measurement, not a check; run it in release"]
    fn encoder_throughput() {
        for (w, h) in [(1280, 720), (1920, 1080)] {
            let mut pattern = Pattern::new(w, h);
            let mut encoder = H264Encoder::new(settings()).unwrap();
            let frames = 150;
            let (mut rendering, mut encoding, mut bytes) = (Duration::ZERO, Duration::ZERO, 0);
            let mut au = Vec::new();
            for n in 0..frames {
                let start = Instant::now();
                pattern.render(n, Duration::from_millis(n * 1000 / 30), true);
                rendering += start.elapsed();
                au.clear();
                let start = Instant::now();
                encoder.encode(&pattern, &mut au).unwrap();
                encoding += start.elapsed();
                bytes += au.len();
            }
            let fps = frames as f64 / encoding.as_secs_f64();
            let kbps = bytes as f64 * 8.0 / (frames as f64 / 30.0) / 1000.0;
            let render_ms = rendering.as_secs_f64() * 1000.0 / frames as f64;
            println!(
                "{w}x{h}: {fps:.1} frames/s encoded ({kbps:.0} kbit/s at 30 fps); pattern \
                 {render_ms:.2} ms/frame"
            );
        }
    }
}
