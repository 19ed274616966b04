//! wsp patch: a cap on the connections open at once (PATCHES.md, 17).
//!
//! Each accepted connection takes a slot, held by its `ClientConnection`, its requests and,
//! after a protocol upgrade, by whoever keeps the upgraded stream ([`ConnectionSlot`]):
//! the slot is free again once all of them are gone. A connection accepted while every
//! slot is taken is still served, but marked: its first request can be answered with a
//! refusal (`Request::over_capacity`), and it is closed after that. The refusal costs a
//! descriptor and a thread for the time of one request, but the caller learns why, where
//! closing at once would look like a network fault.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many connections may be open at once, and how many are.
#[derive(Debug)]
pub(crate) struct Capacity {
    max: usize,
    open: AtomicUsize,
}

impl Capacity {
    pub(crate) fn new(max: usize) -> Arc<Capacity> {
        Arc::new(Capacity {
            max,
            open: AtomicUsize::new(0),
        })
    }

    /// What a connection just accepted gets: a slot if one is free.
    pub(crate) fn admit(capacity: Option<&Arc<Self>>) -> Admission {
        match capacity {
            None => Admission::Uncounted,
            Some(capacity) => match capacity.take() {
                Some(slot) => Admission::Counted(slot),
                None => Admission::OverCapacity,
            },
        }
    }

    /// A slot for a new connection, if one is free.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Arc<Slot>> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max).then_some(open + 1)
            });
        taken.ok().map(|_| Arc::new(Slot(self.clone())))
    }
}

/// How an accepted connection stands against the cap.
pub(crate) enum Admission {
    /// The server has no cap.
    Uncounted,
    /// It holds this slot.
    Counted(Arc<Slot>),
    /// Every slot was taken: its first request is to be refused.
    OverCapacity,
}

/// One connection's place among the `max`; freed when dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Capacity>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An upgraded connection's place among those the server allows open at once: keep it as
/// long as the connection, so that it is counted.
#[derive(Debug, Default)]
pub struct ConnectionSlot(pub(crate) Option<Arc<Slot>>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_until_every_holder_is_gone() {
        let capacity = Capacity::new(2);
        let a = capacity.take().unwrap();
        let b = capacity.take().unwrap();
        assert!(capacity.take().is_none(), "full");
        let shared = a.clone();
        drop(a);
        assert!(capacity.take().is_none(), "still held by a clone");
        drop(shared);
        let c = capacity.take();
        assert!(c.is_some(), "freed");
        drop(b);
    }
}
