//! The engine's counters, for `show crypto ikev2 stats`-like output and metrics.

use dmvpn_wire::ikev2::ExchangeType;

use crate::error::DropReason;

/// Messages per exchange type: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL, other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerExchange(pub [u64; 5]);

impl PerExchange {
    fn index(e: ExchangeType) -> usize {
        match e {
            ExchangeType::IkeSaInit => 0,
            ExchangeType::IkeAuth => 1,
            ExchangeType::CreateChildSa => 2,
            ExchangeType::Informational => 3,
            ExchangeType::Unknown(_) => 4,
        }
    }

    pub(crate) fn bump(&mut self, e: ExchangeType) {
        self.0[Self::index(e)] += 1;
    }

    /// The count of `e`.
    pub fn get(&self, e: ExchangeType) -> u64 {
        self.0[Self::index(e)]
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages sent (first transmissions), per exchange.
    pub sent: PerExchange,
    /// Messages received that passed parsing and, when encrypted, their ICV.
    pub received: PerExchange,
    /// Dropped datagrams, indexed like [`DropReason::ALL`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Requests sent again after a timeout (RFC 7296 section 2.1).
    pub retransmissions: u64,
    /// Cached responses sent again for a retransmitted request (section 2.1).
    pub responses_replayed: u64,
    /// COOKIE challenges sent (section 2.6).
    pub cookies_sent: u64,
    /// INVALID_KE_PAYLOAD answers sent (section 1.2).
    pub invalid_ke_sent: u64,
    /// NAT keepalives sent (RFC 3948 section 2.3).
    pub keepalives_sent: u64,
    /// NAT keepalives received.
    pub keepalives_received: u64,
    /// SKF fragments sent, first transmissions (RFC 7383).
    pub fragments_sent: u64,
    /// SKF fragments received that passed their ICV.
    pub fragments_received: u64,
    /// Fragmented messages reassembled whole.
    pub messages_reassembled: u64,
    /// IKE SAs established (initial and rekeyed).
    pub ike_sas_established: u64,
    /// CHILD_SAs established (initial and rekeyed).
    pub child_sas_established: u64,
    /// Half-open IKE SAs now (responder side, IKE_SA_INIT answered, IKE_AUTH awaited).
    pub half_open: u64,
    /// IKE SAs now, in any state.
    pub ike_sas: u64,
}

impl Counters {
    /// The count of drops for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Every drop.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }
}
