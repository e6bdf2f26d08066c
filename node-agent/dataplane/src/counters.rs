//! Dataplane counters: every dropped packet by reason (one metric label each), the packet
//! path's totals, and per-peer packets and bytes each way (`show crypto ipsec sa`,
//! Prometheus `dmvpn_*_total`).

use core::net::IpAddr;
use std::collections::HashMap;

/// Why the dataplane dropped a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// No route covers the destination (static routes, the NHRP cache, the tunnel subnet).
    NoRoute,
    /// A route names a tunnel next hop whose NBMA address the NHRP cache does not know.
    NoNbma,
    /// The per-peer queue of packets waiting for an SA was full.
    QueueFull,
    /// ESP anti-replay refused the packet (RFC 4303 section 3.4.3).
    Replay,
    /// ESP ICV verification failed (RFC 4303 section 3.4.4).
    Auth,
    /// No inbound SA has the packet's SPI, or the SA expired.
    NoSa,
    /// The packet could not be parsed: IP, GRE, ESP framing or trailer.
    Malformed,
    /// A forwarded packet's TTL or hop limit ran out.
    Ttl,
    /// A packet larger than the tunnel MTU that may not be fragmented (an ICMP error went
    /// back to its source, RFC 1191 / RFC 8201).
    TooBig,
    /// The GRE key differs from the tunnel key (RFC 2890 section 2.1).
    KeyMismatch,
    /// A GRE protocol type other than IPv4, IPv6 and NHRP.
    UnknownProtocol,
    /// A packet the hub would send back to the peer it came from.
    Loop,
    /// Sealing failed: the SA expired or ran out of sequence numbers, or the packet does
    /// not fit the buffer.
    SealFailed,
    /// A dummy ESP packet (next header 59, RFC 4303 section 2.6), dropped as required.
    Dummy,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 14] = [
        DropReason::NoRoute,
        DropReason::NoNbma,
        DropReason::QueueFull,
        DropReason::Replay,
        DropReason::Auth,
        DropReason::NoSa,
        DropReason::Malformed,
        DropReason::Ttl,
        DropReason::TooBig,
        DropReason::KeyMismatch,
        DropReason::UnknownProtocol,
        DropReason::Loop,
        DropReason::SealFailed,
        DropReason::Dummy,
    ];

    /// A short stable name for metrics.
    pub const fn metric_label(self) -> &'static str {
        match self {
            DropReason::NoRoute => "no_route",
            DropReason::NoNbma => "no_nbma",
            DropReason::QueueFull => "queue_full",
            DropReason::Replay => "replay",
            DropReason::Auth => "auth",
            DropReason::NoSa => "no_sa",
            DropReason::Malformed => "malformed",
            DropReason::Ttl => "ttl",
            DropReason::TooBig => "too_big",
            DropReason::KeyMismatch => "key_mismatch",
            DropReason::UnknownProtocol => "unknown_protocol",
            DropReason::Loop => "loop",
            DropReason::SealFailed => "seal_failed",
            DropReason::Dummy => "dummy",
        }
    }
}

/// The packet path's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    drops: [u64; DropReason::ALL.len()],
    /// IP packets read from the TUN device.
    pub tun_rx: u64,
    /// IP packets written to the TUN device (ICMP errors included).
    pub tun_tx: u64,
    /// Datagrams received on the underlay.
    pub udp_rx: u64,
    /// Datagrams sent on the underlay.
    pub udp_tx: u64,
    /// Packets a hub forwarded from one peer to another (hairpin).
    pub forwarded: u64,
    /// Copies sent by multicast and broadcast replication.
    pub multicast_copies: u64,
    /// TCP SYNs whose MSS option was lowered.
    pub mss_clamped: u64,
    /// ICMP fragmentation-needed and ICMPv6 packet-too-big messages sent.
    pub icmp_sent: u64,
    /// ICMP errors not sent: rate limit, or an invoking packet that gets none (RFC 1812
    /// section 4.3.2.7).
    pub icmp_suppressed: u64,
    /// NHRP packets handed to the engine.
    pub nhrp_rx: u64,
    /// NHRP packets the engine sent.
    pub nhrp_tx: u64,
    /// IKE and NAT keepalive datagrams handed out for the IKE engine.
    pub ike_rx: u64,
    /// Packets queued while an SA was negotiated.
    pub queued: u64,
}

impl Counters {
    /// Packets dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Packets dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
}

/// Packets and bytes exchanged with one peer (by NBMA address): datagrams and their UDP
/// payload bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Datagrams sent.
    pub tx_packets: u64,
    /// UDP payload bytes sent.
    pub tx_bytes: u64,
    /// Datagrams received and opened.
    pub rx_packets: u64,
    /// UDP payload bytes received and opened.
    pub rx_bytes: u64,
}

/// The per-peer counters.
#[derive(Debug, Clone, Default)]
pub struct PeerTable(HashMap<IpAddr, PeerCounters>);

impl PeerTable {
    /// The counters of `peer`.
    pub fn get(&self, peer: IpAddr) -> PeerCounters {
        self.0.get(&peer).copied().unwrap_or_default()
    }

    /// Every peer's counters, unordered.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &PeerCounters)> {
        self.0.iter()
    }

    pub(crate) fn sent(&mut self, peer: IpAddr, bytes: usize) {
        let c = self.0.entry(peer).or_default();
        c.tx_packets += 1;
        c.tx_bytes += bytes as u64;
    }

    pub(crate) fn received(&mut self, peer: IpAddr, bytes: usize) {
        let c = self.0.entry(peer).or_default();
        c.rx_packets += 1;
        c.rx_bytes += bytes as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_indexed_in_order() {
        let mut c = Counters::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            for _ in 0..=i {
                c.drop(*r);
            }
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(c.dropped(*r), i as u64 + 1);
        }
        let mut labels: Vec<_> = DropReason::ALL.iter().map(|r| r.metric_label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::ALL.len());
    }
}
