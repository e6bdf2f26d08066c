//! GRE-in-UDP (RFC 8086): the GRE packet is the datagram's payload, to UDP port 4754. No
//! confidentiality or authentication: for tests and labs only (the agent logs it as
//! insecure).

use core::net::{IpAddr, SocketAddr};
use std::time::Instant;

use dmvpn_esp::SadEvent;
use dmvpn_wire::gre::GRE_IN_UDP_PORT;

use super::{Opened, Protection, SealFailure};
use crate::batch::PacketBuf;
use crate::counters::DropReason;

/// GRE-in-UDP to the peers' UDP port 4754 (RFC 8086 section 3.1).
#[derive(Debug, Clone, Copy)]
pub struct GreInUdp {
    port: u16,
}

impl Default for GreInUdp {
    fn default() -> Self {
        GreInUdp {
            port: GRE_IN_UDP_PORT,
        }
    }
}

impl GreInUdp {
    /// GRE-in-UDP to `port` instead of 4754 (for tests that run several routers on one
    /// address).
    pub fn with_port(port: u16) -> Self {
        GreInUdp { port }
    }
}

impl Protection for GreInUdp {
    fn port(&self) -> u16 {
        self.port
    }

    fn headroom(&self) -> usize {
        0
    }

    fn seal(
        &mut self,
        _now: Instant,
        peer: IpAddr,
        _buf: &mut PacketBuf,
    ) -> Result<SocketAddr, SealFailure> {
        Ok(SocketAddr::new(peer, self.port))
    }

    fn open(
        &mut self,
        _now: Instant,
        from: SocketAddr,
        _buf: &mut PacketBuf,
    ) -> Result<Opened, DropReason> {
        Ok(Opened::Gre { peer: from.ip() })
    }

    fn ready(&self, _peer: IpAddr) -> bool {
        true
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn poll_event(&mut self) -> Option<SadEvent> {
        None
    }
}
