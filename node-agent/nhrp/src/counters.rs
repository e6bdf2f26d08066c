//! Message counters for `show ip nhrp traffic` and the drop and refusal counters that
//! become metrics.

use dmvpn_wire::nhrp::Operation;

use crate::error::DropReason;

/// Per message type counts, indexed by `ar$op.type` (1-8); index 0 counts unknown types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PerType(pub [u64; 9]);

impl PerType {
    fn index(op: Operation) -> usize {
        match u8::from(op) {
            t @ 1..=8 => usize::from(t),
            _ => 0,
        }
    }

    pub(crate) fn bump(&mut self, op: Operation) {
        self.0[Self::index(op)] += 1;
    }

    /// The count of `op`.
    pub fn get(&self, op: Operation) -> u64 {
        self.0[Self::index(op)]
    }

    /// The sum over every type.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// The counters of an engine (`show ip nhrp traffic`, plus drops and refusals).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Messages sent, per type.
    pub sent: PerType,
    /// Messages received that passed parsing and authentication, per type (a message may
    /// still be dropped afterwards, and is then also in `dropped`).
    pub received: PerType,
    /// Dropped packets, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Registration CIEs refused with a non-zero code.
    pub registrations_refused: u64,
    /// Cache insertions refused because the cache was full.
    pub cache_full: u64,
    /// Registrations refused because their peer holds `max_registrations_per_peer` entries.
    pub peer_quota_exceeded: u64,
    /// Traffic Indications not sent because of the per-pair rate limit.
    pub redirects_suppressed: u64,
    /// Error Indications not sent because of [`crate::ERROR_INDICATIONS_PER_SECOND`].
    pub error_indications_suppressed: u64,
    /// Resolutions not started because `cache_limit` of them were in flight.
    pub resolutions_refused: u64,
}

impl Counters {
    /// The count of drops for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// The total number of dropped packets.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }
}
