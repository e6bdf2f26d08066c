//! What the driver reports: SAs up and down, rekeys, ESP packets sealed and opened, drops by
//! reason and the events seen, as one JSON object (the last line the driver prints, and its
//! answer to the `status` control command). The tests read it back with serde.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One CHILD_SA the driver has installed (RFC 7296 section 2.17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSummary {
    /// The peer's underlay address.
    pub peer: String,
    /// Inbound SPI, `0x` + 8 hex digits.
    pub inbound_spi: String,
    /// Outbound SPI, `0x` + 8 hex digits.
    pub outbound_spi: String,
    /// `tunnel` or `transport`: what was agreed (RFC 7296 section 1.3.1).
    pub mode: String,
    /// The ESP cipher as strongSwan names it (`AES_GCM_16_256`).
    pub encr: String,
}

/// The driver's counters and state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// IKE SAs established (initial and rekeyed).
    pub ike_sas_up: u64,
    /// IKE SAs gone, by [`dmvpn_ike::DownReason`] (`Debug` name).
    pub ike_sas_down: BTreeMap<String, u64>,
    /// IKE SAs that failed to come up, by reason.
    pub ike_sas_failed: BTreeMap<String, u64>,
    /// IKE SAs established that replace another (rekeys, RFC 7296 section 1.3.2).
    pub ike_rekeys: u64,
    /// CHILD_SAs established (initial and rekeyed).
    pub child_sas_up: u64,
    /// CHILD_SAs gone, by reason.
    pub child_sas_down: BTreeMap<String, u64>,
    /// CHILD_SAs refused, by notification.
    pub child_sas_failed: BTreeMap<String, u64>,
    /// CHILD_SAs established that replace another (rekeys, RFC 7296 section 1.3.3).
    pub child_rekeys: u64,
    /// IKE SAs established now.
    pub ike_sas_established: u64,
    /// The CHILD_SAs installed now, oldest first.
    pub children: Vec<ChildSummary>,
    /// GRE probes sealed into ESP and sent.
    pub sealed: u64,
    /// ESP packets opened (ICV and anti-replay checked).
    pub opened: u64,
    /// Of the opened packets, GRE probes (inner IPv4 protocol 47 in tunnel mode, GRE in
    /// transport mode).
    pub gre_received: u64,
    /// Probes not sent, by reason (`no_sa`, `send`, or a seal error's metric label).
    pub send_errors: BTreeMap<String, u64>,
    /// ESP packets dropped, by reason (`unknown_spi`, `icv`, `replay_duplicate`, ...).
    pub esp_drops: BTreeMap<String, u64>,
    /// IKE datagrams the engine dropped, by metric label.
    pub ike_drops: BTreeMap<String, u64>,
    /// IKE messages the engine received, by exchange: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
    /// INFORMATIONAL, other.
    pub ike_received: [u64; 5],
    /// IKE messages the engine sent (first transmissions), by exchange.
    pub ike_sent: [u64; 5],
    /// IKE requests retransmitted.
    pub ike_retransmissions: u64,
    /// COOKIE challenges sent (RFC 7296 section 2.6).
    pub cookies_sent: u64,
    /// INVALID_KE_PAYLOAD answers sent (RFC 7296 section 1.2).
    pub invalid_ke_sent: u64,
    /// The engine's events, one short line each (keys never appear), drops left out.
    pub events: Vec<String>,
}
