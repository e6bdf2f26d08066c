//! SA lifetimes (RFC 4301 section 4.4.2.1): soft limits that ask for a rekey once, and hard
//! limits after which the SA refuses every packet, in bytes, packets and time.
//!
//! Time is an argument: the SA is told `now` with each packet and on its timeout, and never
//! reads a clock.

use std::time::{Duration, Instant};

/// One set of limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Payload bytes protected (before padding and ESP overhead), as Cisco's kilobyte
    /// lifetime counts the data the SA carries.
    pub bytes: Option<u64>,
    /// Packets protected.
    pub packets: Option<u64>,
    /// Time since the SA was installed.
    pub time: Option<Duration>,
}

/// The soft and hard limits of an SA (RFC 4301 section 4.4.2.1). A soft limit should lie below
/// its hard one, so that the rekey finishes before the SA dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifetimeConfig {
    /// Reaching any of these raises [`LifetimeEvent::RekeyNeeded`], once.
    pub soft: Limits,
    /// Reaching any of these raises [`LifetimeEvent::Expired`] and the SA refuses packets.
    pub hard: Limits,
}

/// What a lifetime reports to the engine that owns the SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeEvent {
    /// A soft limit was reached: start a CREATE_CHILD_SA rekey (RFC 7296 section 2.8).
    RekeyNeeded,
    /// A hard limit was reached: the SA refuses packets and should be deleted.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Running,
    Reached,
    Reported,
}

/// The running lifetime of one SA: what it has carried, its deadlines, and which events are
/// due.
///
/// Per packet it compares the counts with the lowest limit still running (`watch`), and looks
/// at each limit only once that is reached.
#[derive(Debug, Clone)]
pub struct Lifetime {
    config: LifetimeConfig,
    soft_deadline: Option<Instant>,
    hard_deadline: Option<Instant>,
    bytes: u64,
    packets: u64,
    soft: Stage,
    hard: Stage,
    watch: Watch,
}

/// The lowest packet, byte and time limits of the stages still running: below all three no
/// stage can change. Stages only ever leave `Running`, so a watch computed before a change is
/// lower than needed, never higher.
#[derive(Debug, Clone, Copy)]
struct Watch {
    packets: u64,
    bytes: u64,
    deadline: Option<Instant>,
}

impl Watch {
    const NONE: Watch = Watch {
        packets: u64::MAX,
        bytes: u64::MAX,
        deadline: None,
    };

    fn add(&mut self, limits: &Limits, deadline: Option<Instant>) {
        self.packets = self.packets.min(limits.packets.unwrap_or(u64::MAX));
        self.bytes = self.bytes.min(limits.bytes.unwrap_or(u64::MAX));
        self.deadline = match (self.deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

fn over(limits: &Limits, bytes: u64, packets: u64) -> bool {
    limits.bytes.is_some_and(|b| bytes >= b) || limits.packets.is_some_and(|p| packets >= p)
}

impl Lifetime {
    /// Starts the lifetime of an SA installed at `now`.
    pub fn new(config: LifetimeConfig, now: Instant) -> Self {
        let mut l = Lifetime {
            config,
            soft_deadline: config.soft.time.and_then(|t| now.checked_add(t)),
            hard_deadline: config.hard.time.and_then(|t| now.checked_add(t)),
            bytes: 0,
            packets: 0,
            soft: Stage::Running,
            hard: Stage::Running,
            watch: Watch::NONE,
        };
        l.update(now);
        l
    }

    /// The configured limits.
    pub const fn config(&self) -> &LifetimeConfig {
        &self.config
    }

    /// Payload bytes carried so far.
    pub const fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Packets carried so far.
    pub const fn packets(&self) -> u64 {
        self.packets
    }

    fn update(&mut self, now: Instant) {
        if self.soft == Stage::Running
            && (over(&self.config.soft, self.bytes, self.packets)
                || self.soft_deadline.is_some_and(|d| now >= d))
        {
            self.soft = Stage::Reached;
        }
        if self.hard == Stage::Running
            && (over(&self.config.hard, self.bytes, self.packets)
                || self.hard_deadline.is_some_and(|d| now >= d))
        {
            self.hard = Stage::Reached;
        }
        self.watch = Watch::NONE;
        if self.soft == Stage::Running {
            self.watch.add(&self.config.soft, self.soft_deadline);
        }
        if self.hard == Stage::Running {
            self.watch.add(&self.config.hard, self.hard_deadline);
        }
    }

    /// Whether a hard limit is reached at `now`: the SA must refuse the packet. This is where
    /// the packet path checks the time limits, soft and hard, with one comparison against the
    /// earliest deadline still running; [`Lifetime::record`] then checks the counts.
    #[inline]
    pub fn is_expired(&mut self, now: Instant) -> bool {
        if self.watch.deadline.is_some_and(|d| now >= d) {
            self.update(now);
        }
        self.hard != Stage::Running
    }

    /// Accounts one packet of `bytes` payload bytes carried at `now` and checks the byte and
    /// packet limits; the time limits are checked by [`Lifetime::is_expired`], which the
    /// packet path calls first.
    #[inline]
    pub fn record(&mut self, now: Instant, bytes: usize) {
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes as u64);
        if self.packets >= self.watch.packets || self.bytes >= self.watch.bytes {
            self.update(now);
        }
    }

    /// Raises the soft event now, whatever the limits: the sender does so when its sequence
    /// numbers near exhaustion (RFC 4303 section 3.3.3).
    pub fn reach_soft(&mut self) {
        if self.soft == Stage::Running {
            self.soft = Stage::Reached;
        }
    }

    /// Checks the time limits at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.update(now);
    }

    /// The next instant a time limit falls due, if any is still running.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let soft = self.soft_deadline.filter(|_| self.soft == Stage::Running);
        let hard = self.hard_deadline.filter(|_| self.hard == Stage::Running);
        match (soft, hard) {
            (Some(s), Some(h)) => Some(s.min(h)),
            (s, h) => s.or(h),
        }
    }

    /// The next event due: each is reported once, the soft one first.
    pub fn poll_event(&mut self) -> Option<LifetimeEvent> {
        if self.soft == Stage::Reached {
            self.soft = Stage::Reported;
            return Some(LifetimeEvent::RekeyNeeded);
        }
        if self.hard == Stage::Reached {
            self.hard = Stage::Reported;
            return Some(LifetimeEvent::Expired);
        }
        None
    }

    /// Whether [`Lifetime::poll_event`] has something to say.
    pub fn has_event(&self) -> bool {
        self.soft == Stage::Reached || self.hard == Stage::Reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_once_then_hard() {
        let now = Instant::now();
        let config = LifetimeConfig {
            soft: Limits {
                packets: Some(3),
                ..Limits::default()
            },
            hard: Limits {
                bytes: Some(1000),
                ..Limits::default()
            },
        };
        let mut l = Lifetime::new(config, now);
        for _ in 0..2 {
            l.record(now, 100);
            assert_eq!(l.poll_event(), None);
        }
        l.record(now, 100);
        assert_eq!(l.poll_event(), Some(LifetimeEvent::RekeyNeeded));
        assert_eq!(l.poll_event(), None);
        for _ in 0..6 {
            assert!(!l.is_expired(now));
            l.record(now, 100);
            assert_eq!(l.poll_event(), None);
        }
        assert!(!l.is_expired(now));
        l.record(now, 100);
        assert!(l.is_expired(now));
        assert_eq!(l.poll_event(), Some(LifetimeEvent::Expired));
        assert_eq!(l.poll_event(), None);
        assert!(l.is_expired(now));
    }

    #[test]
    fn time_limits() {
        let t0 = Instant::now();
        let config = LifetimeConfig {
            soft: Limits {
                time: Some(Duration::from_secs(50)),
                ..Limits::default()
            },
            hard: Limits {
                time: Some(Duration::from_secs(60)),
                ..Limits::default()
            },
        };
        let mut l = Lifetime::new(config, t0);
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(50)));
        l.handle_timeout(t0 + Duration::from_secs(49));
        assert_eq!(l.poll_event(), None);
        l.handle_timeout(t0 + Duration::from_secs(50));
        assert_eq!(l.poll_event(), Some(LifetimeEvent::RekeyNeeded));
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        assert!(!l.is_expired(t0 + Duration::from_secs(59)));
        // A packet past the hard deadline is refused even before the timer ran.
        assert!(l.is_expired(t0 + Duration::from_secs(61)));
        assert_eq!(l.poll_event(), Some(LifetimeEvent::Expired));
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn packets_see_every_limit_past_the_lowest() {
        // The per-packet check watches the lowest running limit; each limit must still fire
        // when a packet crosses it, whichever kind comes first.
        let t0 = Instant::now();
        let config = LifetimeConfig {
            soft: Limits {
                bytes: Some(250),
                packets: Some(10),
                time: Some(Duration::from_secs(30)),
            },
            hard: Limits {
                bytes: Some(1000),
                packets: Some(5),
                time: Some(Duration::from_secs(20)),
            },
        };
        let mut l = Lifetime::new(config, t0);
        l.record(t0, 100);
        l.record(t0, 100);
        assert_eq!(l.poll_event(), None);
        l.record(t0, 100);
        assert_eq!(l.poll_event(), Some(LifetimeEvent::RekeyNeeded), "bytes");
        l.record(t0, 0);
        assert!(!l.is_expired(t0));
        l.record(t0, 0);
        assert!(l.is_expired(t0), "packets");
        assert_eq!(l.poll_event(), Some(LifetimeEvent::Expired));

        // A deadline passed between timer runs is seen by the next packet, which checks
        // the time before it is carried.
        let mut l = Lifetime::new(config, t0);
        assert!(!l.is_expired(t0 + Duration::from_secs(19)));
        l.record(t0 + Duration::from_secs(19), 1);
        assert_eq!(l.poll_event(), None);
        assert!(l.is_expired(t0 + Duration::from_secs(20)));
        assert!(l.has_event());
        assert_eq!(l.poll_event(), Some(LifetimeEvent::Expired), "time");
    }

    #[test]
    fn both_at_once_soft_first() {
        let now = Instant::now();
        let limits = Limits {
            packets: Some(1),
            ..Limits::default()
        };
        let mut l = Lifetime::new(
            LifetimeConfig {
                soft: limits,
                hard: limits,
            },
            now,
        );
        l.record(now, 1);
        assert!(l.has_event());
        assert_eq!(l.poll_event(), Some(LifetimeEvent::RekeyNeeded));
        assert_eq!(l.poll_event(), Some(LifetimeEvent::Expired));
        assert!(!l.has_event());
    }
}
