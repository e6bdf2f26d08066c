//! The engine's timers: an enum naming each one and a table of deadlines
//! (quinn-proto `connection/timer.rs` style). The driver learns the earliest deadline from
//! [`crate::Engine::poll_timeout`] and calls [`crate::Engine::handle_timeout`] then.

use std::time::Instant;

/// One timer of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Send (or resend) the registration request to the NHS at this index of the
    /// configuration (RFC 2332 section 5.2.3: refresh before the holding time runs out).
    Registration(usize),
    /// The earliest cache entry expiry (RFC 2332 section 5.2.3 holding time).
    CacheExpiry,
    /// The earliest retransmission or give-up of a resolution request (RFC 2332
    /// section 5.2.1).
    Resolution,
    /// The earliest shortcut refresh check (2/3 of its holding time, as nhrpd).
    ShortcutRefresh,
}

/// The deadline of every [`Timer`]; `None` = stopped.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    registration: Vec<Option<Instant>>,
    cache_expiry: Option<Instant>,
    resolution: Option<Instant>,
    shortcut_refresh: Option<Instant>,
}

impl TimerTable {
    /// A table with `nhs` registration timers, all stopped.
    pub(crate) fn new(nhs: usize) -> Self {
        TimerTable {
            registration: vec![None; nhs],
            cache_expiry: None,
            resolution: None,
            shortcut_refresh: None,
        }
    }

    fn slot(&mut self, timer: Timer) -> Option<&mut Option<Instant>> {
        match timer {
            Timer::Registration(i) => self.registration.get_mut(i),
            Timer::CacheExpiry => Some(&mut self.cache_expiry),
            Timer::Resolution => Some(&mut self.resolution),
            Timer::ShortcutRefresh => Some(&mut self.shortcut_refresh),
        }
    }

    /// Arms `timer` at `at`, or stops it for `None`.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        if let Some(slot) = self.slot(timer) {
            *slot = at;
        }
    }

    /// The deadline of the registration timer of NHS `i`.
    pub(crate) fn registration(&self, i: usize) -> Option<Instant> {
        self.registration.get(i).copied().flatten()
    }

    /// Replaces the registration timers, one per NHS, after the NHS list changed.
    pub(crate) fn replace_registrations(&mut self, deadlines: Vec<Option<Instant>>) {
        self.registration = deadlines;
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.registration
            .iter()
            .chain([&self.cache_expiry, &self.resolution, &self.shortcut_refresh])
            .flatten()
            .min()
            .copied()
    }

    /// Stops and returns the timers whose deadline is at or before `now`, in table order.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        for (i, slot) in self.registration.iter_mut().enumerate() {
            if slot.is_some_and(|at| at <= now) {
                *slot = None;
                due.push(Timer::Registration(i));
            }
        }
        if self.cache_expiry.is_some_and(|at| at <= now) {
            self.cache_expiry = None;
            due.push(Timer::CacheExpiry);
        }
        if self.resolution.is_some_and(|at| at <= now) {
            self.resolution = None;
            due.push(Timer::Resolution);
        }
        if self.shortcut_refresh.is_some_and(|at| at <= now) {
            self.shortcut_refresh = None;
            due.push(Timer::ShortcutRefresh);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn earliest_and_expired() {
        let t0 = Instant::now();
        let mut t = TimerTable::new(2);
        assert_eq!(t.next(), None);
        t.set(Timer::Registration(1), Some(t0 + Duration::from_secs(5)));
        t.set(Timer::CacheExpiry, Some(t0 + Duration::from_secs(3)));
        t.set(Timer::Registration(7), Some(t0));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(4)),
            vec![Timer::CacheExpiry]
        );
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(9)),
            vec![Timer::Registration(1)]
        );
        assert_eq!(t.next(), None);
    }
}
