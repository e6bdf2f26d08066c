//! The timers of one IKE SA: an enum naming each and a table of deadlines (quinn-proto
//! `connection/timer.rs` style). CHILD_SA deadlines live in the CHILD_SA; the engine keeps
//! every SA's earliest deadline in one ordered set.

use std::time::Instant;

/// One timer of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Resend the outstanding request, or give up (RFC 7296 section 2.1).
    Retransmit,
    /// Check liveness after an idle interval (section 2.4).
    Dpd,
    /// Send a NAT keepalive (RFC 3948 section 2.3).
    Keepalive,
    /// Soft lifetime: rekey the IKE SA (section 2.8).
    IkeRekey,
    /// Hard lifetime: delete the IKE SA.
    IkeExpire,
    /// A half-open SA (responder, IKE_AUTH awaited) gives up.
    HalfOpen,
    /// An incomplete fragmented message is dropped (RFC 7383 section 2.6).
    Reassembly,
}

impl Timer {
    const ALL: [Timer; 7] = [
        Timer::Retransmit,
        Timer::Dpd,
        Timer::Keepalive,
        Timer::IkeRekey,
        Timer::IkeExpire,
        Timer::HalfOpen,
        Timer::Reassembly,
    ];
}

/// The deadline of every [`Timer`]; `None` = stopped.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable([Option<Instant>; Timer::ALL.len()]);

impl TimerTable {
    /// Arms `timer` at `at`, or stops it with `None`.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.0[timer as usize] = at;
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Stops and returns the timers due at `now`, in table order.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Vec<Timer> {
        Timer::ALL
            .into_iter()
            .filter(|t| {
                let slot = &mut self.0[*t as usize];
                let due = slot.is_some_and(|at| at <= now);
                if due {
                    *slot = None;
                }
                due
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn earliest_and_expired() {
        let t0 = Instant::now();
        let mut t = TimerTable::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Dpd, Some(t0 + Duration::from_secs(5)));
        t.set(Timer::Retransmit, Some(t0 + Duration::from_secs(3)));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(4)),
            vec![Timer::Retransmit]
        );
        assert_eq!(
            t.take_expired(t0 + Duration::from_secs(9)),
            vec![Timer::Dpd]
        );
        assert_eq!(t.next(), None);
    }
}
