//! The Security Association Database (RFC 4301 section 4.4.2): the installed SAs, inbound
//! ones keyed by the SPI that arrives in packets (RFC 4303 section 3.4.2), outbound ones by the
//! SPI they send.
//!
//! Rekeying is make-before-break (RFC 7296 section 2.8): the new inbound SA is installed while
//! the old one still lives, the old one is retired with a deadline rather than removed, so
//! packets the peer sent with it before switching still open; [`Sad::handle_timeout`] removes
//! it when the deadline passes. Hard-expired SAs are removed there too, after their
//! [`LifetimeEvent::Expired`] is queued.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use dmvpn_wire::esp;

use crate::counters::SadCounters;
use crate::lifetime::LifetimeEvent;
use crate::sa::{InboundSa, OpenError, Opened, OutboundSa, SealError};

/// Which side of the SA pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// An SA that opens packets.
    Inbound,
    /// An SA that seals packets.
    Outbound,
}

/// Something the SA database tells the engine that owns the SAs (IKE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SadEvent {
    /// An SA reached a lifetime limit.
    Lifetime {
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
        /// Which limit.
        event: LifetimeEvent,
    },
    /// An SA was removed: hard-expired, or retired and past its deadline.
    Removed {
        /// Its SPI.
        spi: u32,
        /// Its direction.
        direction: Direction,
    },
}

/// Why an SA could not be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SadError {
    /// An SA with this SPI and direction is already installed.
    #[error("an SA with SPI {spi:#010x} is already installed")]
    DuplicateSpi {
        /// The SPI.
        spi: u32,
    },
    /// No SA with this SPI and direction is installed.
    #[error("no SA with SPI {spi:#010x}")]
    UnknownSpi {
        /// The SPI.
        spi: u32,
    },
}

#[derive(Debug)]
struct InboundEntry {
    sa: InboundSa,
    /// Make-before-break: the SA stays until this instant, then goes.
    retire_at: Option<Instant>,
}

/// The installed SAs of one node.
#[derive(Debug, Default)]
pub struct Sad {
    inbound: HashMap<u32, InboundEntry>,
    outbound: HashMap<u32, OutboundSa>,
    events: VecDeque<SadEvent>,
    counters: SadCounters,
}

impl Sad {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs an inbound SA.
    ///
    /// # Errors
    /// [`SadError::DuplicateSpi`] if its SPI is taken.
    pub fn install_inbound(&mut self, sa: InboundSa) -> Result<(), SadError> {
        let spi = sa.spi();
        if self.inbound.contains_key(&spi) {
            return Err(SadError::DuplicateSpi { spi });
        }
        self.inbound.insert(
            spi,
            InboundEntry {
                sa,
                retire_at: None,
            },
        );
        Ok(())
    }

    /// Installs an outbound SA.
    ///
    /// # Errors
    /// [`SadError::DuplicateSpi`] if its SPI is taken.
    pub fn install_outbound(&mut self, sa: OutboundSa) -> Result<(), SadError> {
        let spi = sa.spi();
        if self.outbound.contains_key(&spi) {
            return Err(SadError::DuplicateSpi { spi });
        }
        self.outbound.insert(spi, sa);
        Ok(())
    }

    /// Removes an inbound SA now (INFORMATIONAL Delete, RFC 7296 section 1.4.1).
    pub fn remove_inbound(&mut self, spi: u32) -> Option<InboundSa> {
        self.inbound.remove(&spi).map(|e| e.sa)
    }

    /// Removes an outbound SA now.
    pub fn remove_outbound(&mut self, spi: u32) -> Option<OutboundSa> {
        self.outbound.remove(&spi)
    }

    /// Make-before-break rekey of the inbound side: installs `new` beside the SA `old_spi`,
    /// which keeps opening packets for `grace` and is then removed.
    ///
    /// # Errors
    /// [`SadError::DuplicateSpi`] if `new`'s SPI is taken, [`SadError::UnknownSpi`] if
    /// `old_spi` is not installed; nothing changes then.
    pub fn rekey_inbound(
        &mut self,
        now: Instant,
        old_spi: u32,
        new: InboundSa,
        grace: Duration,
    ) -> Result<(), SadError> {
        if !self.inbound.contains_key(&old_spi) {
            return Err(SadError::UnknownSpi { spi: old_spi });
        }
        self.install_inbound(new)?;
        self.retire_inbound(old_spi, now + grace)
    }

    /// Schedules the removal of an inbound SA at `at`; until then it keeps opening packets.
    ///
    /// # Errors
    /// [`SadError::UnknownSpi`].
    pub fn retire_inbound(&mut self, spi: u32, at: Instant) -> Result<(), SadError> {
        let entry = self
            .inbound
            .get_mut(&spi)
            .ok_or(SadError::UnknownSpi { spi })?;
        entry.retire_at = Some(at);
        Ok(())
    }

    /// The inbound SA with this SPI.
    pub fn inbound(&self, spi: u32) -> Option<&InboundSa> {
        self.inbound.get(&spi).map(|e| &e.sa)
    }

    /// The outbound SA with this SPI.
    pub fn outbound(&self, spi: u32) -> Option<&OutboundSa> {
        self.outbound.get(&spi)
    }

    /// Number of inbound SAs installed (retiring ones included).
    pub fn inbound_len(&self) -> usize {
        self.inbound.len()
    }

    /// Number of outbound SAs installed.
    pub fn outbound_len(&self) -> usize {
        self.outbound.len()
    }

    /// The database's own counters (packets no SA could take).
    pub const fn counters(&self) -> &SadCounters {
        &self.counters
    }

    /// Opens an ESP packet (from its SPI to its ICV) in place with the inbound SA its SPI
    /// names (RFC 4303 section 3.4.2).
    ///
    /// # Errors
    /// [`OpenError::UnknownSpi`] and, for a packet shorter than the ESP header or with SPI 0,
    /// [`OpenError::Truncated`] (both counted here), or the SA's [`InboundSa::open`] error
    /// (counted by the SA).
    pub fn open(&mut self, now: Instant, packet: &mut [u8]) -> Result<Opened, OpenError> {
        let spi = match esp::Packet::new_checked(&*packet) {
            Ok(p) => p.spi(),
            Err(_) => {
                self.counters.invalid_len_rcv += 1;
                return Err(OpenError::Truncated);
            }
        };
        let Some(entry) = self.inbound.get_mut(&spi) else {
            self.counters.invalid_sa_rcv += 1;
            return Err(OpenError::UnknownSpi);
        };
        let result = entry.sa.open(now, packet);
        while let Some(event) = entry.sa.poll_event() {
            self.events.push_back(SadEvent::Lifetime {
                spi,
                direction: Direction::Inbound,
                event,
            });
        }
        result
    }

    /// Seals with the outbound SA `spi`: see [`OutboundSa::seal`].
    ///
    /// # Errors
    /// [`SealError::UnknownSpi`] (counted here), or the SA's error.
    pub fn seal(
        &mut self,
        now: Instant,
        spi: u32,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        let Some(sa) = self.outbound.get_mut(&spi) else {
            self.counters.no_sa_send += 1;
            return Err(SealError::UnknownSpi);
        };
        let result = sa.seal(now, buf, payload_len, next_header);
        while let Some(event) = sa.poll_event() {
            self.events.push_back(SadEvent::Lifetime {
                spi,
                direction: Direction::Outbound,
                event,
            });
        }
        result
    }

    /// Runs the time limits and retirements due at `now`: queues lifetime events, then
    /// removes hard-expired SAs and retired SAs past their deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        let events = &mut self.events;
        self.inbound.retain(|&spi, entry| {
            entry.sa.handle_timeout(now);
            while let Some(event) = entry.sa.poll_event() {
                events.push_back(SadEvent::Lifetime {
                    spi,
                    direction: Direction::Inbound,
                    event,
                });
            }
            let keep = !entry.sa.is_expired(now) && entry.retire_at.is_none_or(|at| now < at);
            if !keep {
                events.push_back(SadEvent::Removed {
                    spi,
                    direction: Direction::Inbound,
                });
            }
            keep
        });
        self.outbound.retain(|&spi, sa| {
            sa.handle_timeout(now);
            while let Some(event) = sa.poll_event() {
                events.push_back(SadEvent::Lifetime {
                    spi,
                    direction: Direction::Outbound,
                    event,
                });
            }
            let keep = !sa.is_expired(now);
            if !keep {
                events.push_back(SadEvent::Removed {
                    spi,
                    direction: Direction::Outbound,
                });
            }
            keep
        });
    }

    /// When [`Sad::handle_timeout`] should next run: the earliest time limit or retirement.
    /// An SA that expires by its byte or packet count says so with a
    /// [`LifetimeEvent::Expired`] from [`Sad::poll_event`]; it refuses packets from then on
    /// and the next [`Sad::handle_timeout`] removes it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inbound =
            self.inbound
                .values()
                .filter_map(|e| match (e.sa.poll_timeout(), e.retire_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                });
        let outbound = self.outbound.values().filter_map(OutboundSa::poll_timeout);
        inbound.chain(outbound).min()
    }

    /// The next event, in the order they happened.
    pub fn poll_event(&mut self) -> Option<SadEvent> {
        self.events.pop_front()
    }
}
