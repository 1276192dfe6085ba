//! A pre-encoded loop, for machines that cannot encode the picture in real time.
//!
//! Without `nasm`, OpenH264 is built without its assembly and encodes 1080p at about 22
//! frames/s and 720p at about 36 on one idle core (with it: 65 and 125): the demo's camera
//! would run late, and every consumer with it. `--encode loop` (or `auto`, when a quick
//! measurement at start says the encoder is too slow) encodes one loop of the pattern once, at
//! start, and publishes it over and over, each frame with a fresh frame number and capture
//! time, at the asked rate.
//!
//! The loop is the first second of the pattern rounded up to whole GOPs, so it starts at an
//! IDR and a GOP never spans the wrap; the square's motion jumps back at the wrap and the
//! burned-in counter and clock repeat (the NV12 picture, rendered per frame, shows the real
//! frame number). With `--object-schedule` the loop is encoded twice, the square shown and
//! hidden, and the variant is chosen at each IDR by the schedule at that moment: the square
//! appears and disappears at most one GOP after the schedule says.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::encoder::{EncoderSettings, H264Encoder};
use crate::pattern::Pattern;

/// The loop, in one or two variants.
#[derive(Debug)]
pub struct Replay {
    /// Access units of the variant with the square shown, then (with a schedule) without.
    variants: Vec<Vec<Vec<u8>>>,
    gop: usize,
    fps: u32,
    /// Position in the loop of the next frame.
    index: usize,
    /// The variant being played: 0 shown, 1 hidden.
    playing: usize,
}

/// What [`Replay::next`] gives: the access unit, the loop's clock at it (to render the matching
/// NV12 picture and tell where the square is), and whether the square shows in it.
#[derive(Debug)]
pub struct Played<'a> {
    /// The access unit.
    pub au: &'a [u8],
    /// The pattern's clock this frame was encoded at.
    pub clock: Duration,
    /// Whether its square shows.
    pub visible: bool,
}

impl Replay {
    /// Encodes the loop: about one second of frames at `settings.fps`, rounded up to whole
    /// GOPs, once with the square shown and, if `hidden_too`, once without.
    pub fn build(
        settings: EncoderSettings,
        pattern: &mut Pattern,
        hidden_too: bool,
    ) -> Result<Self> {
        let gop = settings.gop.max(1) as usize;
        let len = (settings.fps as usize).div_ceil(gop).max(1) * gop;
        let mut variants = Vec::new();
        for visible in [true, false].into_iter().take(1 + usize::from(hidden_too)) {
            let mut encoder = H264Encoder::new(settings)?;
            let mut units = Vec::with_capacity(len);
            for i in 0..len {
                pattern.render(i as u64, clock(i, settings.fps), visible);
                let mut au = Vec::new();
                encoder.encode(pattern, &mut au)?;
                units.push(au);
            }
            variants.push(units);
        }
        Ok(Self {
            variants,
            gop,
            fps: settings.fps,
            index: 0,
            playing: 0,
        })
    }

    /// Frames in the loop.
    pub fn len(&self) -> usize {
        self.variants[0].len()
    }

    /// The next frame; at an IDR the variant follows `visible` (when there are two).
    pub fn next(&mut self, visible: bool) -> Played<'_> {
        if self.index.is_multiple_of(self.gop) && self.variants.len() > 1 {
            self.playing = usize::from(!visible);
        }
        let i = self.index;
        self.index = (self.index + 1) % self.len();
        Played {
            au: &self.variants[self.playing][i],
            clock: clock(i, self.fps),
            visible: self.playing == 0,
        }
    }

    /// Starts the loop over (a restarted camera begins at an IDR with SPS and PPS).
    pub fn rewind(&mut self) {
        self.index = 0;
    }
}

/// The pattern's clock at frame `i` of a stream of `fps` frames per second.
fn clock(i: usize, fps: u32) -> Duration {
    Duration::from_nanos(i as u64 * 1_000_000_000 / u64::from(fps.max(1)))
}

/// How fast this machine makes the pattern's frames (render and encode), in frames per second:
/// a quick measurement over a dozen frames, the first two left out (the encoder's start-up).
pub fn measure(settings: EncoderSettings, pattern: &mut Pattern) -> Result<f64> {
    let mut encoder = H264Encoder::new(settings)?;
    let mut au = Vec::new();
    let mut start = Instant::now();
    let frames = 12;
    for i in 0..frames {
        if i == 2 {
            start = Instant::now();
        }
        pattern.render(i, clock(i as usize, settings.fps), true);
        au.clear();
        encoder.encode(pattern, &mut au)?;
    }
    Ok((frames - 2) as f64 / start.elapsed().as_secs_f64())
}

/// Live encoding needs this much headroom over the asked rate: publishing the frame, the NV12
/// picture and a loaded machine take their share too.
pub const HEADROOM: f64 = 1.25;

#[cfg(test)]
mod tests {
    use super::*;
    use stackctl_media::h264::{NalType, analyse};

    fn settings(gop: u32) -> EncoderSettings {
        EncoderSettings {
            fps: 30,
            gop,
            bitrate_kbps: 1000,
        }
    }

    fn idr(au: &[u8]) -> bool {
        analyse(au).expect("valid").is_idr()
    }

    #[test]
    fn a_loop_is_whole_gops_and_switches_variants_only_at_an_idr() {
        let mut pattern = Pattern::new(160, 120);
        let mut r = Replay::build(settings(10), &mut pattern, true).expect("build");
        assert_eq!(r.len(), 30);
        let mut seen = Vec::new();
        for n in 0..75 {
            // The schedule hides the square from frame 15 to 44.
            let p = r.next(!(15..45).contains(&n));
            assert_eq!(idr(p.au), n % 10 == 0, "frame {n}");
            seen.push(p.visible);
            assert_eq!(p.clock, clock(n % 30, 30));
        }
        // Hidden from the first IDR at or after 15 (20) to the first at or after 45 (50).
        let hidden: Vec<usize> = (0..75).filter(|&n| !seen[n]).collect();
        assert_eq!(hidden, (20..50).collect::<Vec<_>>());
        r.rewind();
        let first = r.next(true);
        assert!(idr(first.au));
        let types: Vec<NalType> = analyse(first.au)
            .expect("valid")
            .nals()
            .iter()
            .map(|n| n.nal_type())
            .collect();
        assert!(types.contains(&NalType::Sps) && types.contains(&NalType::Pps));
    }

    #[test]
    fn without_a_schedule_one_variant_always_shown() {
        let mut pattern = Pattern::new(160, 120);
        let mut r = Replay::build(settings(30), &mut pattern, false).expect("build");
        assert!((0..40).all(|_| r.next(false).visible));
        assert!(measure(settings(30), &mut pattern).expect("measure") > 0.0);
    }
}
