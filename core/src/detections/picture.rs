//! The picture the boxes must fit in.

use std::time::{Duration, Instant};

use crate::shm::{Segment, newest_complete, segment::current_id};

/// Where the detection source learns the picture's size from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Picture {
    /// Not known: only negative corners and empty boxes are refused.
    #[default]
    Unknown,
    /// A fixed size, from the configuration.
    Fixed {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The size in the newest complete frame of a frame ring, e.g. the NV12 segment the
    /// detector reads (`/pet_camera_active_frame`). Unknown while that segment is missing.
    Ring(String),
}

/// How often a [`Picture::Ring`] is looked at again (the size changes only with a camera
/// switch or restart).
const REFRESH: Duration = Duration::from_secs(1);

/// Keeps the current size of a [`Picture`].
#[derive(Debug)]
pub(crate) struct PictureSize {
    picture: Picture,
    segment: Option<Segment>,
    size: Option<(u32, u32)>,
    checked: Option<Instant>,
}

impl PictureSize {
    pub(crate) fn new(picture: Picture) -> Self {
        let size = match picture {
            Picture::Fixed { width, height } => Some((width, height)),
            _ => None,
        };
        Self {
            picture,
            segment: None,
            size,
            checked: None,
        }
    }

    /// The size now (refreshed from the ring at most once a second).
    pub(crate) fn get(&mut self, now: Instant) -> Option<(u32, u32)> {
        let Picture::Ring(name) = &self.picture else {
            return self.size;
        };
        if self
            .checked
            .is_some_and(|t| now.duration_since(t) < REFRESH)
        {
            return self.size;
        }
        self.checked = Some(now);
        let current = current_id(name).ok().flatten();
        if current != self.segment.as_ref().map(Segment::id) {
            self.segment = Segment::open(name).ok();
        }
        if let Some(seg) = &self.segment
            && let Some(size) = ring_size(seg)
        {
            self.size = Some(size);
        }
        self.size
    }
}

/// Width and height of the newest complete frame of `seg`.
fn ring_size(seg: &Segment) -> Option<(u32, u32)> {
    let header = newest_complete(seg)?.header;
    let size = (
        u32::try_from(header.width).ok()?,
        u32::try_from(header.height).ok()?,
    );
    (size.0 > 0 && size.1 > 0).then_some(size)
}
