//! A point-in-time copy of a running router's state, for `dmvpnctl show ...` and the
//! Prometheus metrics: NHRP (RFC 2332) peers, cache, NHS state and traffic, the dataplane's
//! counters, the ESP SAs (RFC 4303) and the IKE SAs (RFC 7296).
//!
//! The driver publishes a fresh snapshot through a `tokio::sync::watch` channel at least once
//! a second and after every state change (a cache, NHS, SA or route change):
//!
//! ```text
//! impl Driver<..> {
//!     pub fn snapshot_channel(&self) -> tokio::sync::watch::Receiver<Arc<RouterSnapshot>>;
//! }
//! ```
//!
//! Readers clone the `Arc` (`*rx.borrow()`) and never hold the borrow across an await. A
//! snapshot carries no secret: no PSK, key or NHRP password.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::BTreeMap;
use std::time::Instant;

use dmvpn_dataplane::os::{RecvDrops, TunDrops};
use dmvpn_dataplane::{Counters, PeerCounters};
use dmvpn_nhrp::Prefix;
use dmvpn_nhrp::show::{Dmvpn, NhrpEntry, NhsStatus};

/// The state of a router, as of [`RouterSnapshot::taken_at`].
#[derive(Debug, Clone)]
pub struct RouterSnapshot {
    /// When it was taken (the driver's clock); durations inside are relative to it.
    pub taken_at: Instant,
    /// Hub (NHS) or spoke (NHC).
    pub role: dmvpn_nhrp::Role,
    /// The tunnel interface's name (`dmvpn0`).
    pub tunnel_interface: String,
    /// Our tunnel address.
    pub tunnel_address: IpAddr,
    /// The tunnel subnet's prefix length.
    pub tunnel_prefix_len: u8,
    /// The tunnel MTU in use.
    pub tunnel_mtu: u16,
    /// Our underlay (NBMA) address.
    pub underlay_address: IpAddr,
    /// Whether GRE goes unprotected (no `ipsec` section: tests only).
    pub insecure: bool,
    /// `show dmvpn`: one row per peer.
    pub dmvpn: Dmvpn,
    /// `show ip nhrp [detail]`: the NHRP cache and the resolutions in flight.
    pub nhrp: Vec<NhrpEntry>,
    /// `show ip nhrp nhs [detail]`.
    pub nhs: Vec<NhsStatus>,
    /// `show ip nhrp traffic`: NHRP messages by type and direction, drops and refusals.
    pub nhrp_traffic: dmvpn_nhrp::Counters,
    /// The packet path's totals and drops by reason (`forwarded` is the hub's hairpin count).
    pub dataplane: Counters,
    /// Datagrams and bytes exchanged with each peer, by NBMA address, sorted.
    pub peers: Vec<PeerTraffic>,
    /// `show crypto ipsec sa`: one entry per peer with an ESP SA pair; empty without IPsec.
    pub ipsec_sas: Vec<IpsecSaInfo>,
    /// `show crypto ikev2 sa`: one entry per IKE SA; empty without IPsec.
    pub ike_sas: Vec<IkeSaInfo>,
    /// IKE SA setups that failed (RFC 7296), by reason label (`authentication`,
    /// `peer_refused_authentication`, `timeout`, ...); empty without IPsec.
    pub ike_failures: BTreeMap<&'static str, u64>,
    /// The routes installed into the tunnel device (static, peers' prefixes, shortcuts).
    pub routes: Vec<Prefix>,
    /// What the TUN device and the underlay socket took in but could not hand up.
    pub os_drops: OsDrops,
}

/// Packets the OS side took in but could not hand to the dataplane, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OsDrops {
    /// The TUN device's.
    pub tun: TunDrops,
    /// The underlay socket's.
    pub udp: RecvDrops,
}

impl OsDrops {
    /// Every reason with its count, by metric label.
    pub fn by_reason(&self) -> [(&'static str, u64); 3] {
        [
            ("tun_unsplit", self.tun.unsplit),
            ("udp_truncated", self.udp.truncated),
            ("udp_oversize", self.udp.oversize),
        ]
    }
}

/// The per-peer packet counters of the dataplane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTraffic {
    /// The peer's NBMA address.
    pub nbma: IpAddr,
    /// Datagrams and bytes each way.
    pub counters: PeerCounters,
}

/// The ESP SA pair of one peer (RFC 4303), with Cisco's `show crypto ipsec sa` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpsecSaInfo {
    /// The peer's NBMA address.
    pub peer: IpAddr,
    /// Where its ESP-in-UDP datagrams go (RFC 3948; the NAT-T address IKE saw).
    pub endpoint: SocketAddr,
    /// The newest inbound SPI.
    pub inbound_spi: u32,
    /// The outbound SPI.
    pub outbound_spi: u32,
    /// `#pkts encaps` of the outbound SA.
    pub packets_encaps: u64,
    /// `#pkts decaps` over the peer's inbound SAs.
    pub packets_decaps: u64,
    /// `#pkts replay failed (rcv)` over the peer's inbound SAs.
    pub replay_drops: u64,
    /// `#pkts verify failed` over the peer's inbound SAs.
    pub auth_failures: u64,
}

/// The state of an IKE SA (RFC 7296 section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeSaState {
    /// IKE_SA_INIT or IKE_AUTH in progress.
    Connecting,
    /// Authenticated; Child SAs can be made.
    Established,
    /// Being rekeyed.
    Rekeying,
    /// Being deleted.
    Deleting,
}

/// One IKE SA, for `show crypto ikev2 sa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// The peer's NBMA address and port.
    pub peer: SocketAddr,
    /// The initiator's SPI.
    pub spi_i: u64,
    /// The responder's SPI (0 until the responder answered).
    pub spi_r: u64,
    /// The state.
    pub state: IkeSaState,
    /// Time since the SA was created.
    pub uptime: Duration,
}
