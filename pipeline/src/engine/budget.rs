//! The bound on the bytes of prepared jobs in flight (queued for a device, on it, or waiting for their finish):
//! prepare threads wait here before handing a unit on, so memory stays bounded by bytes, not only by the number of
//! queued units, whatever mix of tiny images and huge meshes a manifest holds.

use std::sync::{Condvar, Mutex};

pub struct ByteBudget {
    limit: u64,
    state: Mutex<InFlight>,
    freed: Condvar,
}

#[derive(Default)]
struct InFlight {
    bytes: u64,
    /// Set when the run stops: waiters return at once instead of waiting for bytes that will not be freed.
    closed: bool,
}

impl ByteBudget {
    pub fn new(limit: u64) -> Self {
        ByteBudget {
            limit: limit.max(1),
            state: Mutex::new(InFlight::default()),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit under the limit, then takes them; returns false when the budget was closed. A unit
    /// larger than the whole limit is let through alone (when nothing else is in flight), so it runs rather than
    /// waiting forever.
    pub fn acquire(&self, bytes: u64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.closed && s.bytes > 0 && s.bytes.saturating_add(bytes) > self.limit {
            s = self.freed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        if s.closed {
            return false;
        }
        s.bytes = s.bytes.saturating_add(bytes);
        true
    }

    pub fn release(&self, bytes: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.bytes = s.bytes.saturating_sub(bytes);
        drop(s);
        self.freed.notify_all();
    }

    /// Wakes every waiter for good (the run is stopping).
    pub fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.freed.notify_all();
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> u64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn in_flight_bytes_never_exceed_the_limit() {
        let budget = ByteBudget::new(100);
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (budget, peak) = (&budget, &peak);
                s.spawn(move || {
                    for i in 0..200u64 {
                        let bytes = 10 + (t * 7 + i * 13) % 50;
                        assert!(budget.acquire(bytes));
                        peak.fetch_max(budget.in_flight(), Ordering::SeqCst);
                        budget.release(bytes);
                    }
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 100);
        assert_eq!(budget.in_flight(), 0);
    }

    #[test]
    fn a_unit_over_the_limit_runs_alone_and_close_wakes_waiters() {
        let budget = ByteBudget::new(100);
        assert!(
            budget.acquire(1000),
            "alone, an oversized unit goes through"
        );
        std::thread::scope(|s| {
            let waiter = s.spawn(|| budget.acquire(1));
            budget.close();
            assert!(!waiter.join().unwrap(), "a closed budget refuses");
        });
    }
}
