//! The Traffic Indication of DMVPN phase 3 (Cisco `ip nhrp redirect` / `ip nhrp shortcut`;
//! FRR nhrpd `nhrp_peer_send_indication`): when the hub forwards data from one spoke to
//! another, it tells the sending spoke, which then resolves the destination and installs a
//! shortcut.
//!
//! The hub sends it with hop count 1, its own NBMA and tunnel addresses as source, the data
//! packet's source address as destination, traffic code 0 (redirect) and, when
//! authentication is configured, only the authentication extension and End. The payload is
//! an IP header from the data packet's source to its destination: [`Engine::traffic_to`]
//! gets the addresses, not the packet, and receivers (nhrpd, Cisco) read only the
//! destination address from it.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use std::time::Instant;

use dmvpn_wire::Seq;
use dmvpn_wire::nhrp::{
    Address, Extension, Message, NbmaAddress, Repr, TrafficCode, TrafficIndication,
};

use crate::cache::EntryType;
use crate::config::Role;
use crate::engine::{Engine, send};
use crate::error::DropReason;
use crate::registration::{family, protocol};

/// `ar$hopcnt` of a Traffic Indication: FRR nhrpd sends 1.
pub const HOP_COUNT_TRAFFIC: u8 = 1;
/// The least time between two Traffic Indications for one (source, destination) pair
/// (Cisco `ip nhrp redirect timeout`, default 8 s).
pub const REDIRECT_INTERVAL: Duration = Duration::from_secs(8);

impl Engine {
    /// The hub's dataplane forwarded a packet from `src` to `dst` between two spokes
    /// (hairpinned on the tunnel): sends the source spoke a Traffic Indication, at most one
    /// per (source, destination) pair per [`REDIRECT_INTERVAL`]. Does nothing unless this is
    /// a hub with `redirect` on and both addresses are behind different registered spokes.
    pub fn traffic_to(&mut self, now: Instant, src: IpAddr, dst: IpAddr) {
        if self.config.role != Role::Hub || !self.config.redirect {
            return;
        }
        let registered = |addr: IpAddr| {
            self.cache
                .lookup(addr)
                .filter(|(_, e)| e.kind == EntryType::Registered)
                .map(|(_, e)| (e.tunnel, e.nbma))
        };
        let (Some((from_spoke, nbma)), Some((to_spoke, _))) = (registered(src), registered(dst))
        else {
            return;
        };
        if from_spoke == to_spoke {
            return;
        }
        if let Some(last) = self.redirects.get(&(src, dst))
            && now.saturating_duration_since(*last) < REDIRECT_INTERVAL
        {
            self.counters.redirects_suppressed += 1;
            return;
        }
        if self.redirects.len() >= self.config.cache_limit {
            self.redirects
                .retain(|_, last| now.saturating_duration_since(*last) < REDIRECT_INTERVAL);
            if self.redirects.len() >= self.config.cache_limit {
                self.counters.redirects_suppressed += 1;
                return;
            }
        }
        self.redirects.insert((src, dst), now);
        let header = ip_header(src, dst);
        let cfg = &self.config;
        let exts = cfg
            .password
            .as_ref()
            .map(|pw| [Extension::cleartext_password(pw.expose())]);
        let repr = Repr {
            afn: family(cfg.nbma_address),
            protocol_type: protocol(cfg.tunnel_address),
            protocol_snap: [0; 5],
            hop_count: HOP_COUNT_TRAFFIC,
            message: Message::TrafficIndication(TrafficIndication {
                code: TrafficCode::Redirect,
                src_nbma: NbmaAddress::from(Address::from(cfg.nbma_address)),
                src_nbma_sub: NbmaAddress::NONE,
                src_proto: Address::from(cfg.tunnel_address),
                dst_proto: Address::from(src),
                packet: &header,
            }),
            extensions: exts.as_ref().map(|e| Seq::Items(&e[..])),
        };
        send(&mut self.outbox, &mut self.counters, nbma, &repr);
    }

    /// A Traffic Indication at a spoke: resolves the destination of the data packet it
    /// carries when `shortcut` is on.
    pub(crate) fn traffic_indication(
        &mut self,
        now: Instant,
        from: IpAddr,
        ind: &TrafficIndication<'_>,
    ) -> Result<(), DropReason> {
        if !self.nhs.iter().any(|s| s.config.nbma == from) {
            return Err(DropReason::UnknownNhs);
        }
        let dst = packet_destination(ind.packet).ok_or(DropReason::Malformed)?;
        if self.config.shortcut {
            self.resolve(now, dst);
        }
        Ok(())
    }
}

/// The destination address of the IPv4 or IPv6 packet that starts `packet`.
fn packet_destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let b: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 => {
            let b: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// A bare IPv4 (20 bytes, protocol 0xFD "experimentation") or IPv6 (40 bytes, no next
/// header) header from `src` to `dst`.
fn ip_header(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 0xfd, 0, 0];
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let sum = dmvpn_wire::checksum::checksum(&h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
            h
        }
        _ => {
            let mut h = vec![0x60, 0, 0, 0, 0, 0, 59, 64];
            for a in [src, dst] {
                match a {
                    IpAddr::V6(a) => h.extend_from_slice(&a.octets()),
                    IpAddr::V4(a) => h.extend_from_slice(&a.to_ipv6_mapped().octets()),
                }
            }
            h
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let (s, d): (IpAddr, IpAddr) = (
            "192.168.2.10".parse().unwrap(),
            "192.168.3.5".parse().unwrap(),
        );
        let h = ip_header(s, d);
        assert_eq!(h.len(), 20);
        assert_eq!(dmvpn_wire::checksum::checksum(&h), 0);
        assert_eq!(packet_destination(&h), Some(d));
        let d6: IpAddr = "fd00::3:5".parse().unwrap();
        let h6 = ip_header("fd00::2:10".parse().unwrap(), d6);
        assert_eq!(packet_destination(&h6), Some(d6));
        assert_eq!(packet_destination(&[0x45, 0]), None);
        assert_eq!(packet_destination(&[]), None);
    }
}
