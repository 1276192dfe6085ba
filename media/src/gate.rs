//! The IDR gate: one consumer's decision, frame by frame, to pass a frame on or to skip it, so
//! that what the consumer receives is always a decodable chain.
//!
//! A decoder can start only at an IDR picture, and a P-frame whose reference was lost decodes
//! to garbage until the next IDR. So a consumer that joins mid-stream waits for an IDR, and a
//! consumer that loses a frame (its queue was full, it fell too far behind) skips everything up
//! to the next IDR. The bus keeps one gate per subscriber; a sink keeps one per client (viewer,
//! RTSP session, publication).
//!
//! ```text
//!            offer(IDR) + delivered          rejected (queue full, too far behind)
//!  Joining ───────────────────────────► Live ─────────────────────────────────────► Skipping
//!  (skips, not counted)                  ▲  (everything passes)                  (skips, counted)
//!                                        └────────────── offer(IDR) + delivered ────────┘
//! ```
//!
//! The gate is pure: it decides, the caller does the delivering and counting.
//!
//! ```
//! use stackctl_media::gate::{Admit, IdrGate};
//!
//! let mut gate = IdrGate::joining();
//! assert_eq!(gate.offer(false), Admit::Skip { counted: false }); // a P-frame before any IDR
//! assert_eq!(gate.offer(true), Admit::Deliver);
//! gate.delivered();
//! assert_eq!(gate.offer(false), Admit::Deliver);
//! let lost = gate.rejected(); // the consumer's queue was full
//! assert!(lost.new_gap && lost.counted);
//! assert_eq!(gate.offer(false), Admit::Skip { counted: true });
//! ```

/// Where a consumer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateState {
    /// Has received nothing yet and waits for the first IDR. Frames skipped here were never the
    /// consumer's to lose, so they are not counted as drops.
    Joining,
    /// Receives every frame.
    Live,
    /// Lost a frame and skips to the next IDR. Every frame skipped here is a drop.
    Skipping,
}

/// What to do with the frame on offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Admit {
    /// Try to deliver it, then report [`IdrGate::delivered`] or [`IdrGate::rejected`].
    Deliver,
    /// Skip it.
    Skip {
        /// Whether the skip is a drop to count (the consumer had joined).
        counted: bool,
    },
}

/// What a failed delivery means for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rejected {
    /// The consumer was live: a new gap in its stream starts here.
    pub new_gap: bool,
    /// The frame is a drop to count (the consumer had joined).
    pub counted: bool,
}

/// One consumer's IDR gate. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdrGate {
    state: GateState,
}

impl IdrGate {
    /// A gate in `state`.
    pub const fn new(state: GateState) -> Self {
        Self { state }
    }

    /// A consumer that starts at the next IDR.
    pub const fn joining() -> Self {
        Self::new(GateState::Joining)
    }

    /// A consumer that takes every frame from the next one on, whatever it is.
    pub const fn live() -> Self {
        Self::new(GateState::Live)
    }

    /// Where the consumer stands.
    pub const fn state(&self) -> GateState {
        self.state
    }

    /// Whether the consumer has received a frame (skips from now on are drops).
    pub const fn joined(&self) -> bool {
        !matches!(self.state, GateState::Joining)
    }

    /// The decision for the next frame, an IDR or not. Changes nothing: the caller reports the
    /// outcome of a delivery.
    pub const fn offer(&self, idr: bool) -> Admit {
        match (self.state, idr) {
            (GateState::Live, _) | (_, true) => Admit::Deliver,
            (GateState::Joining, false) => Admit::Skip { counted: false },
            (GateState::Skipping, false) => Admit::Skip { counted: true },
        }
    }

    /// The frame was delivered: the consumer is live.
    pub fn delivered(&mut self) {
        self.state = GateState::Live;
    }

    /// The frame could not be delivered (a full queue), or the consumer fell too far behind:
    /// skip to the next IDR. A consumer still joining keeps waiting for its first IDR.
    pub fn rejected(&mut self) -> Rejected {
        match self.state {
            GateState::Live => {
                self.state = GateState::Skipping;
                Rejected {
                    new_gap: true,
                    counted: true,
                }
            }
            GateState::Skipping => Rejected {
                new_gap: false,
                counted: true,
            },
            GateState::Joining => Rejected {
                new_gap: false,
                counted: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GateState::*;
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Event {
        Offer { idr: bool },
        Delivered,
        Reject,
    }

    /// Every state × every event: the decision or report, and the state after.
    #[test]
    fn every_transition() {
        use Event::*;
        #[derive(Debug, PartialEq)]
        enum Out {
            Admit(Admit),
            Rejected(super::Rejected),
            Nothing,
        }
        let deliver = Out::Admit(Admit::Deliver);
        let skip = |counted| Out::Admit(Admit::Skip { counted });
        let rejected = |new_gap, counted| Out::Rejected(super::Rejected { new_gap, counted });
        let table = [
            (Joining, Offer { idr: false }, skip(false), Joining),
            (Joining, Offer { idr: true }, deliver, Joining),
            (Joining, Delivered, Out::Nothing, Live),
            (Joining, Reject, rejected(false, false), Joining),
            (Live, Offer { idr: false }, Out::Admit(Admit::Deliver), Live),
            (Live, Offer { idr: true }, Out::Admit(Admit::Deliver), Live),
            (Live, Delivered, Out::Nothing, Live),
            (Live, Reject, rejected(true, true), Skipping),
            (Skipping, Offer { idr: false }, skip(true), Skipping),
            (
                Skipping,
                Offer { idr: true },
                Out::Admit(Admit::Deliver),
                Skipping,
            ),
            (Skipping, Delivered, Out::Nothing, Live),
            (Skipping, Reject, rejected(false, true), Skipping),
        ];
        for (from, event, want, to) in table {
            let mut gate = IdrGate::new(from);
            let got = match event {
                Offer { idr } => Out::Admit(gate.offer(idr)),
                Delivered => {
                    gate.delivered();
                    Out::Nothing
                }
                Reject => Out::Rejected(gate.rejected()),
            };
            assert_eq!(got, want, "{from:?} + {event:?}");
            assert_eq!(gate.state(), to, "{from:?} + {event:?}");
        }
    }

    #[test]
    fn joined_once_anything_was_delivered() {
        assert!(!IdrGate::joining().joined());
        assert!(IdrGate::live().joined());
        assert!(IdrGate::new(Skipping).joined());
    }
}
