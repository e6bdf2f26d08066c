//! ESP-in-UDP (RFC 3948) over `dmvpn-esp` SAs, one pair per peer, installed by the IKE
//! engine ([`EspInUdp::install_sa`]) and removed by it. Datagrams on port 4500 that are not
//! ESP (IKE behind the non-ESP marker, NAT keepalives) are handed back as
//! [`Opened::Control`].
//!
//! In transport mode (the DMVPN default) the ESP payload is the GRE packet, next header 47;
//! in tunnel mode it is an IP packet from our NBMA address to the peer's carrying that GRE
//! packet (RFC 4303 section 3.1.2), next header 4 or 41.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use dmvpn_esp::sa::{NEXT_HEADER_DUMMY, NEXT_HEADER_GRE, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6};
use dmvpn_esp::sa::{OpenError, PAYLOAD_OFFSET};
use dmvpn_esp::{Direction, InboundSa, OutboundSa, ReplayError, Sad, SadError, SadEvent};
use dmvpn_wire::udp_encap::{Datagram, NAT_T_PORT};
use dmvpn_wire::{gre, ipv4, ipv6};

use super::{Opened, Protection, SealFailure};
use crate::batch::PacketBuf;
use crate::counters::DropReason;

/// How long the inbound SAs a rekey replaced keep opening packets the peer sent before it
/// switched (make-before-break, RFC 7296 section 2.8; a tuning constant).
pub const REKEY_GRACE: Duration = Duration::from_secs(10);

/// The TTL of the inner IP header in tunnel mode.
const TUNNEL_TTL: u8 = 64;

/// ESP transport or tunnel mode (RFC 4301 section 4.1), the `mode` of the IPsec profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EspMode {
    /// The ESP payload is the GRE packet.
    Transport,
    /// The ESP payload is an IP packet between the NBMA addresses carrying the GRE packet.
    Tunnel,
}

/// The SAs of one peer.
#[derive(Debug)]
struct PeerSas {
    endpoint: SocketAddr,
    outbound: u32,
    inbound: Vec<u32>,
}

/// ESP-in-UDP to the peers' port 4500 (RFC 3948).
#[derive(Debug)]
pub struct EspInUdp {
    mode: EspMode,
    local: IpAddr,
    sad: Sad,
    peers: HashMap<IpAddr, PeerSas>,
    /// The peer of each inbound SPI.
    inbound_peer: HashMap<u32, IpAddr>,
    events: VecDeque<SadEvent>,
}

impl EspInUdp {
    /// No SAs yet; `local` is our NBMA address (the source of tunnel mode's inner header).
    pub fn new(mode: EspMode, local: IpAddr) -> Self {
        EspInUdp {
            mode,
            local,
            sad: Sad::new(),
            peers: HashMap::new(),
            inbound_peer: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// The SA database (counters, SAs by SPI, for `show crypto ipsec sa`).
    pub fn sad(&self) -> &Sad {
        &self.sad
    }

    /// The outbound SPI and the inbound SPIs (newest last) of `peer`, and where its
    /// datagrams go.
    pub fn peer_sas(&self, peer: IpAddr) -> Option<(SocketAddr, u32, &[u32])> {
        self.peers
            .get(&peer)
            .map(|p| (p.endpoint, p.outbound, p.inbound.as_slice()))
    }

    /// Installs the SA pair of `peer`, whose datagrams go to `endpoint` (the NAT-T address
    /// IKE saw). A pair that replaces one (a rekey) takes over sending at once; the old
    /// inbound SAs keep opening packets for [`REKEY_GRACE`].
    ///
    /// # Errors
    /// [`SadError::DuplicateSpi`] when an SPI is installed already; nothing changes then.
    pub fn install_sa(
        &mut self,
        now: Instant,
        peer: IpAddr,
        endpoint: SocketAddr,
        outbound: OutboundSa,
        inbound: InboundSa,
    ) -> Result<(), SadError> {
        let (out_spi, in_spi) = (outbound.spi(), inbound.spi());
        if self.sad.outbound(out_spi).is_some() {
            return Err(SadError::DuplicateSpi { spi: out_spi });
        }
        if self.sad.inbound(in_spi).is_some() {
            return Err(SadError::DuplicateSpi { spi: in_spi });
        }
        self.sad.install_outbound(outbound)?;
        self.sad.install_inbound(inbound)?;
        self.inbound_peer.insert(in_spi, peer);
        match self.peers.get_mut(&peer) {
            Some(p) => {
                self.sad.remove_outbound(p.outbound);
                for spi in &p.inbound {
                    // Installed, so retiring cannot fail.
                    let _ = self.sad.retire_inbound(*spi, now + REKEY_GRACE);
                }
                p.endpoint = endpoint;
                p.outbound = out_spi;
                p.inbound.push(in_spi);
            }
            None => {
                self.peers.insert(
                    peer,
                    PeerSas {
                        endpoint,
                        outbound: out_spi,
                        inbound: vec![in_spi],
                    },
                );
            }
        }
        Ok(())
    }

    /// Removes every SA of `peer` now (IKE Delete, peer gone); true when it had some.
    pub fn remove_sa(&mut self, peer: IpAddr) -> bool {
        let Some(p) = self.peers.remove(&peer) else {
            return false;
        };
        self.sad.remove_outbound(p.outbound);
        for spi in p.inbound {
            self.sad.remove_inbound(spi);
            self.inbound_peer.remove(&spi);
        }
        true
    }

    /// Forgets an inbound SPI the SA database removed.
    fn forget_inbound(&mut self, spi: u32) {
        if let Some(peer) = self.inbound_peer.remove(&spi)
            && let Some(p) = self.peers.get_mut(&peer)
        {
            p.inbound.retain(|s| *s != spi);
        }
    }

    /// Prepends tunnel mode's inner IP header, our NBMA address to `peer`, to the GRE
    /// packet; returns the next header.
    fn tunnel_header(&self, peer: IpAddr, buf: &mut PacketBuf) -> Option<u8> {
        let len = buf.len();
        match (self.local, peer) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let repr = ipv4::Repr {
                    src,
                    dst,
                    protocol: gre::IP_PROTOCOL,
                    tos: 0,
                    ident: 0,
                    dont_frag: true,
                    more_frags: false,
                    frag_offset: 0,
                    ttl: TUNNEL_TTL,
                    options: &[],
                    payload_len: len,
                };
                repr.emit(buf.prepend(ipv4::HEADER_LEN)?).ok()?;
                Some(NEXT_HEADER_IPV4)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let repr = ipv6::Repr {
                    src,
                    dst,
                    next_header: gre::IP_PROTOCOL,
                    hop_limit: TUNNEL_TTL,
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: len,
                };
                repr.emit(buf.prepend(ipv6::HEADER_LEN)?).ok()?;
                Some(NEXT_HEADER_IPV6)
            }
            _ => None,
        }
    }
}

/// The GRE packet inside tunnel mode's inner IP packet, as an offset and a length.
fn tunnel_payload(packet: &[u8], next_header: u8) -> Option<(usize, usize)> {
    if next_header == NEXT_HEADER_IPV4 {
        let p = ipv4::Packet::new_checked(packet).ok()?;
        let ok = p.verify_checksum() && p.protocol() == gre::IP_PROTOCOL && p.frag_offset() == 0;
        ok.then(|| (p.header_len(), p.payload().len()))
    } else {
        let p = ipv6::Packet::new_checked(packet).ok()?;
        (p.next_header() == gre::IP_PROTOCOL)
            .then(|| (ipv6::HEADER_LEN, usize::from(p.payload_len())))
    }
}

impl Protection for EspInUdp {
    fn port(&self) -> u16 {
        NAT_T_PORT
    }

    fn headroom(&self) -> usize {
        PAYLOAD_OFFSET
            + match self.mode {
                EspMode::Transport => 0,
                EspMode::Tunnel => ipv6::HEADER_LEN,
            }
    }

    fn seal(
        &mut self,
        now: Instant,
        peer: IpAddr,
        buf: &mut PacketBuf,
    ) -> Result<SocketAddr, SealFailure> {
        let Some(p) = self.peers.get(&peer) else {
            return Err(SealFailure::NoSa);
        };
        let (endpoint, spi) = (p.endpoint, p.outbound);
        let next_header = match self.mode {
            EspMode::Transport => NEXT_HEADER_GRE,
            EspMode::Tunnel => self.tunnel_header(peer, buf).ok_or(SealFailure::Failed)?,
        };
        let payload_len = buf.len();
        let base = buf
            .start()
            .checked_sub(PAYLOAD_OFFSET)
            .ok_or(SealFailure::Failed)?;
        let data = buf.data_mut().get_mut(base..).ok_or(SealFailure::Failed)?;
        let result = self.sad.seal(now, spi, data, payload_len, next_header);
        while let Some(e) = self.sad.poll_event() {
            self.events.push_back(e);
        }
        let len = result.map_err(|_| SealFailure::Failed)?;
        buf.set_range(base, base + len);
        Ok(endpoint)
    }

    fn open(
        &mut self,
        now: Instant,
        _from: SocketAddr,
        buf: &mut PacketBuf,
    ) -> Result<Opened, DropReason> {
        match Datagram::parse(buf.packet()) {
            Ok(Datagram::Keepalive | Datagram::Ike(_)) => return Ok(Opened::Control),
            Ok(Datagram::Esp(_)) => {}
            Err(_) => return Err(DropReason::Malformed),
        }
        let start = buf.start();
        let result = self.sad.open(now, buf.packet_mut());
        while let Some(e) = self.sad.poll_event() {
            self.events.push_back(e);
        }
        let opened = result.map_err(|e| match e {
            OpenError::UnknownSpi | OpenError::Expired => DropReason::NoSa,
            OpenError::Replay(ReplayError::Duplicate | ReplayError::TooOld) => DropReason::Replay,
            OpenError::Icv => DropReason::Auth,
            OpenError::Truncated | OpenError::BadTrailer => DropReason::Malformed,
        })?;
        let peer = *self.inbound_peer.get(&opened.spi).ok_or(DropReason::NoSa)?;
        let (mut from, mut len) = (opened.payload.start, opened.payload.len());
        match opened.next_header {
            NEXT_HEADER_GRE => {}
            NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6 => {
                let inner = buf
                    .packet()
                    .get(from..from + len)
                    .ok_or(DropReason::Malformed)?;
                let (skip, payload) =
                    tunnel_payload(inner, opened.next_header).ok_or(DropReason::Malformed)?;
                from += skip;
                len = payload;
            }
            NEXT_HEADER_DUMMY => return Err(DropReason::Dummy),
            _ => return Err(DropReason::UnknownProtocol),
        }
        buf.set_range(start + from, start + from + len);
        Ok(Opened::Gre { peer })
    }

    fn ready(&self, peer: IpAddr) -> bool {
        self.peers.contains_key(&peer)
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.sad.handle_timeout(now);
        while let Some(e) = self.sad.poll_event() {
            self.events.push_back(e);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.sad.poll_timeout()
    }

    fn poll_event(&mut self) -> Option<SadEvent> {
        let e = self.events.pop_front()?;
        if let SadEvent::Removed { spi, direction } = e {
            match direction {
                Direction::Inbound => self.forget_inbound(spi),
                Direction::Outbound => {
                    // A hard-expired outbound SA: the peer needs a new pair.
                    let gone: Vec<IpAddr> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.outbound == spi)
                        .map(|(peer, _)| *peer)
                        .collect();
                    for peer in gone {
                        self.remove_sa(peer);
                    }
                }
            }
        }
        Some(e)
    }
}
