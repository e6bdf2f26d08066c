//! The protection layer between GRE and the underlay's UDP: what turns a GRE packet into a
//! datagram payload and back. [`GreInUdp`] (RFC 8086, no protection: tests only) and
//! [`EspInUdp`] (RFC 3948 over `dmvpn-esp` SAs, the DMVPN `tunnel protection` shape).

use core::net::{IpAddr, SocketAddr};
use std::time::Instant;

use dmvpn_esp::SadEvent;

use crate::batch::PacketBuf;
use crate::counters::DropReason;

mod esp;
mod plain;

pub use esp::{EspInUdp, EspMode, REKEY_GRACE};
pub use plain::GreInUdp;

/// What [`Protection::open`] found in a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// A GRE packet from `peer` (its NBMA address), now the buffer's packet.
    Gre {
        /// The peer the packet is from: the SA's peer for ESP, the UDP source otherwise.
        peer: IpAddr,
    },
    /// An IKE message behind the non-ESP marker or a NAT keepalive (RFC 3948 section 2):
    /// for the IKE engine; the buffer is unchanged.
    Control,
}

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealFailure {
    /// No SA with this peer yet: queue the packet and ask IKE for one.
    NoSa,
    /// The SA refused (expired, sequence numbers exhausted, buffer too small).
    Failed,
}

/// A protection layer: seals GRE packets in place into datagram payloads for a peer, and
/// opens received datagrams back into GRE packets.
pub trait Protection {
    /// The UDP port datagrams go to and are received on.
    fn port(&self) -> u16;

    /// Bytes the layer needs in front of the GRE packet.
    fn headroom(&self) -> usize;

    /// Seals the GRE packet that is `buf`'s packet, in place, into the payload of a datagram
    /// for `peer`, and returns where to send it.
    ///
    /// # Errors
    /// [`SealFailure::NoSa`] when there is no SA for `peer` yet (the buffer is unchanged),
    /// [`SealFailure::Failed`] otherwise.
    fn seal(
        &mut self,
        now: Instant,
        peer: IpAddr,
        buf: &mut PacketBuf,
    ) -> Result<SocketAddr, SealFailure>;

    /// Opens the datagram payload that is `buf`'s packet (received from `from`), in place.
    ///
    /// # Errors
    /// The [`DropReason`] to count.
    fn open(
        &mut self,
        now: Instant,
        from: SocketAddr,
        buf: &mut PacketBuf,
    ) -> Result<Opened, DropReason>;

    /// Whether packets for `peer` can be sealed now.
    fn ready(&self, peer: IpAddr) -> bool;

    /// Runs the SA lifetimes due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// When [`Protection::handle_timeout`] must next run.
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next SA event (lifetime reached, SA removed) for the IKE engine.
    fn poll_event(&mut self) -> Option<SadEvent>;
}
