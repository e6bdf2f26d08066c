//! What the engine tells its driver: SAs up and down with everything the dataplane needs to
//! build `dmvpn_esp` SAs, refusals, and drops for metrics. `Debug` never shows a key.

use core::net::{IpAddr, SocketAddr};

use dmvpn_esp::{Algorithm, KeyMaterial, SequenceNumbers};
use dmvpn_wire::ikev2::NotifyType;

use crate::auth::AuthenticatedPeer;
use crate::config::Mode;
use crate::error::DropReason;
use crate::ts::Selector;

/// One direction of a CHILD_SA: what an `dmvpn_esp` `InboundSa` / `OutboundSa` needs.
#[derive(Debug, Clone)]
pub struct EspKeys {
    /// The SPI of this direction's packets.
    pub spi: u32,
    /// The AEAD.
    pub algorithm: Algorithm,
    /// 32-bit or extended sequence numbers.
    pub sequence_numbers: SequenceNumbers,
    /// Key and salt (redacted in `Debug`).
    pub key: KeyMaterial,
}

/// A new CHILD_SA (RFC 7296 section 2.17).
#[derive(Debug, Clone)]
pub struct ChildSaUp {
    /// The peer's underlay address, as the engine knows the peer.
    pub peer: IpAddr,
    /// SPIi of the IKE SA that made it.
    pub ike_spi_i: u64,
    /// SPIr of that IKE SA.
    pub ike_spi_r: u64,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Whether ESP travels in UDP (RFC 3948): always with forced encapsulation.
    pub udp_encap: bool,
    /// Our outer address and port.
    pub local: SocketAddr,
    /// The peer's outer address and port (after any NAT).
    pub remote: SocketAddr,
    /// Packets we receive.
    pub inbound: EspKeys,
    /// Packets we send.
    pub outbound: EspKeys,
    /// Our selectors.
    pub ts_local: Vec<Selector>,
    /// The peer's selectors.
    pub ts_remote: Vec<Selector>,
    /// The inbound SPI of the CHILD_SA this one rekeys (make-before-break: the old one
    /// goes down later).
    pub replaces: Option<u32>,
}

/// Why an SA went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DownReason {
    /// The peer deleted it (RFC 7296 section 1.4.1).
    DeletedByPeer,
    /// We deleted it (command, or a rekey's old SA).
    Deleted,
    /// Its successor took over (rekey).
    Rekeyed,
    /// The peer stopped answering (section 2.4).
    PeerDead,
    /// Its hard lifetime ran out.
    Expired,
    /// A simultaneous creation made a duplicate; this is the one closed (section 2.8.1).
    Redundant,
}

/// Why an IKE SA could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// The peer answered with an error notification (NO_PROPOSAL_CHOSEN,
    /// AUTHENTICATION_FAILED, ...).
    PeerRefused(NotifyType),
    /// We refused the peer's AUTH.
    AuthenticationFailed,
    /// The peer asked for a group we do not have configured (INVALID_KE_PAYLOAD).
    UnsupportedGroup,
    /// No answer after every retransmission.
    Timeout,
    /// The responder's answer was not acceptable (a proposal we did not offer, a bad KE).
    BadResponse,
}

/// Something the driver should know.
#[derive(Debug, Clone)]
pub enum Event {
    /// An IKE SA is established and the peer authenticated.
    IkeSaUp {
        /// The peer's underlay address.
        peer: IpAddr,
        /// SPIi.
        spi_i: u64,
        /// SPIr.
        spi_r: u64,
        /// Whether we are its original initiator.
        initiator: bool,
        /// The peer's authenticated identity (IKE ID and, with certificates, the subject and
        /// subjectAltNames): what NHRP checks a registration against
        /// ([`AuthenticatedPeer::owns_address`]).
        identity: AuthenticatedPeer,
        /// Our outer address and port.
        local: SocketAddr,
        /// The peer's outer address and port.
        remote: SocketAddr,
        /// Whether a NAT was detected (either side).
        nat: bool,
        /// The SPIs of the IKE SA this one rekeys.
        replaces: Option<(u64, u64)>,
    },
    /// An IKE SA went away (its CHILD_SAs were reported down first, unless they moved to
    /// a rekeyed IKE SA).
    IkeSaDown {
        /// The peer.
        peer: IpAddr,
        /// SPIi.
        spi_i: u64,
        /// SPIr.
        spi_r: u64,
        /// Why.
        reason: DownReason,
    },
    /// Setting up an IKE SA failed.
    IkeSaFailed {
        /// The peer.
        peer: IpAddr,
        /// Why.
        reason: FailReason,
    },
    /// A CHILD_SA is ready: install both directions.
    ChildSaUp(Box<ChildSaUp>),
    /// A CHILD_SA went away: remove both directions.
    ChildSaDown {
        /// The peer.
        peer: IpAddr,
        /// Its inbound SPI.
        inbound_spi: u32,
        /// Its outbound SPI.
        outbound_spi: u32,
        /// Why.
        reason: DownReason,
    },
    /// A CHILD_SA could not be made; the notification says why (NO_PROPOSAL_CHOSEN,
    /// TS_UNACCEPTABLE, ...).
    ChildSaFailed {
        /// The peer.
        peer: IpAddr,
        /// The error sent or received.
        notify: NotifyType,
    },
    /// A datagram was dropped (for metrics; the counters have the totals).
    Dropped {
        /// Where it came from.
        from: SocketAddr,
        /// Why.
        reason: DropReason,
    },
}
