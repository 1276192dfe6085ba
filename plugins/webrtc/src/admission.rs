//! Who may take a viewer slot: connected viewers count against `max_clients`, answered offers
//! that have not connected yet against a separate, small budget (`max_pending`), and only for
//! `connect_timeout`.
//!
//! Counting an answered offer against `max_clients` would let anyone lock real viewers out
//! with offers that never connect (five `POST /whep` every ten seconds held all five slots of
//! a board). An offer only costs a pending slot, for seconds; the viewer takes a real slot when
//! it connects, and is turned away then if the board is full.
//!
//! Pure bookkeeping; the hub holds one under its lock.

/// Why an offer (or a viewer that just connected) was turned away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max_clients` viewers are connected.
    #[error("maximum clients reached ({0})")]
    Full(usize),
    /// `max_pending` offers are waiting for their viewers to connect.
    #[error("{0} viewers are connecting already: try again in a moment")]
    Busy(usize),
    /// No frame (so no SPS) from the camera yet.
    #[error("no video from the camera yet")]
    NoVideo,
    /// The viewer's session ended while it was connecting.
    #[error("the session has ended")]
    Gone,
}

/// Where a viewer stands in the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Answered, not connected: holds a pending slot.
    Pending,
    /// Connected: holds one of `max_clients`.
    Connected,
}

/// The counts and the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    max_clients: usize,
    max_pending: usize,
    pending: usize,
    connected: usize,
}

impl Admission {
    /// Nobody in, with these limits.
    pub fn new(max_clients: usize, max_pending: usize) -> Self {
        Self {
            max_clients,
            max_pending,
            pending: 0,
            connected: 0,
        }
    }

    /// An offer: takes a pending slot, or says why not.
    pub fn offer(&mut self) -> Result<Slot, Refused> {
        if self.connected >= self.max_clients {
            return Err(Refused::Full(self.max_clients));
        }
        if self.pending >= self.max_pending {
            return Err(Refused::Busy(self.max_pending));
        }
        self.pending += 1;
        Ok(Slot::Pending)
    }

    /// A pending viewer connected: it takes a connected slot, or is turned away (and loses its
    /// pending slot either way).
    pub fn connect(&mut self) -> Result<Slot, Refused> {
        self.pending = self.pending.saturating_sub(1);
        if self.connected >= self.max_clients {
            return Err(Refused::Full(self.max_clients));
        }
        self.connected += 1;
        Ok(Slot::Connected)
    }

    /// A viewer holding `slot` left.
    pub fn leave(&mut self, slot: Slot) {
        match slot {
            Slot::Pending => self.pending = self.pending.saturating_sub(1),
            Slot::Connected => self.connected = self.connected.saturating_sub(1),
        }
    }

    /// Viewers connected.
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// Offers waiting for their viewer to connect.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_that_never_connect_do_not_lock_viewers_out() {
        let mut a = Admission::new(2, 3);
        // Two squatters: pending slots only.
        assert_eq!(a.offer(), Ok(Slot::Pending));
        assert_eq!(a.offer(), Ok(Slot::Pending));
        // A real viewer offers and connects: both real slots are still free.
        assert_eq!(a.offer(), Ok(Slot::Pending));
        assert_eq!(a.connect(), Ok(Slot::Connected));
        // The pending budget is full while the squatters wait...
        assert_eq!(a.offer(), Ok(Slot::Pending));
        assert_eq!(a.offer(), Err(Refused::Busy(3)));
        // ...until they are removed for never connecting.
        a.leave(Slot::Pending);
        a.leave(Slot::Pending);
        assert_eq!(a.connect(), Ok(Slot::Connected));
        assert_eq!((a.connected(), a.pending()), (2, 0));
        // Full: offers are refused, and so is a viewer that connects anyway.
        assert_eq!(a.offer(), Err(Refused::Full(2)));
        let mut b = Admission::new(1, 2);
        assert_eq!(b.offer(), Ok(Slot::Pending));
        assert_eq!(b.offer(), Ok(Slot::Pending));
        assert_eq!(b.connect(), Ok(Slot::Connected));
        assert_eq!(b.connect(), Err(Refused::Full(1)));
        assert_eq!((b.connected(), b.pending()), (1, 0));
        b.leave(Slot::Connected);
        b.leave(Slot::Connected);
        assert_eq!(b.connected(), 0, "never below zero");
    }
}
