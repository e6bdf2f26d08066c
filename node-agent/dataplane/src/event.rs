//! What the forwarder tells its driver: SAs to negotiate, IKE datagrams, NHRP cache and
//! route changes, SA lifetimes.

use core::net::{IpAddr, SocketAddr};

use dmvpn_esp::SadEvent;

/// An event of the forwarder, drained with [`crate::Forwarder::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Packets for `peer` wait for an SA: the IKE engine should negotiate one and install
    /// it. Sent once per peer until the SA arrives or the queue is dropped.
    NeedSa {
        /// The peer's NBMA address.
        peer: IpAddr,
    },
    /// A datagram on port 4500 that is not ESP (IKE behind the non-ESP marker, or a NAT
    /// keepalive), whole, for the IKE engine (RFC 3948 section 2).
    IkeDatagram {
        /// Its source.
        from: SocketAddr,
        /// The UDP payload, marker included.
        datagram: Vec<u8>,
    },
    /// An NHRP engine event (cache and route changes, NHS state, drops).
    Nhrp(dmvpn_nhrp::Event),
    /// An SA reached a lifetime limit or was removed.
    Sa(SadEvent),
}
