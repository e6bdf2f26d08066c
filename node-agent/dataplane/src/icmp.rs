//! The ICMP errors of path MTU discovery: IPv4 "fragmentation needed and DF set" (RFC 792
//! type 3 code 4, with the next-hop MTU of RFC 1191 section 4) and ICMPv6 "packet too big"
//! (RFC 4443 section 3.2, RFC 8201), sent back to the source of a packet that does not fit
//! the tunnel.

use core::net::{Ipv4Addr, Ipv6Addr};

use dmvpn_wire::{checksum, ipv4, ipv6};

/// The IP protocol number of ICMP.
const ICMP: u8 = 1;
/// The IP protocol number of ICMPv6.
const ICMPV6: u8 = 58;
/// ICMP destination unreachable (RFC 792).
const DEST_UNREACHABLE: u8 = 3;
/// Code 4: fragmentation needed and DF set.
const FRAG_NEEDED: u8 = 4;
/// ICMPv6 packet too big (RFC 4443 section 3.2).
const PACKET_TOO_BIG: u8 = 2;
/// The most an IPv4 ICMP error carries in all (RFC 1812 section 4.3.2.3: as much of the
/// original as fits in 576 bytes).
const ICMPV4_MAX: usize = 576;
/// The most an ICMPv6 error carries in all (RFC 4443 section 2.4 (c): the IPv6 minimum MTU).
const ICMPV6_MAX: usize = 1280;
/// The TTL and hop limit of the errors we originate.
const TTL: u8 = 64;

/// Whether an IPv4 packet may be answered with an ICMP error (RFC 1812 section 4.3.2.7):
/// not an ICMP error itself, not a non-first fragment, not from a multicast, broadcast,
/// loopback or unspecified source.
fn eligible_v4(p: &ipv4::Packet<&[u8]>) -> bool {
    let src = p.src_addr();
    if src.is_multicast() || src.is_broadcast() || src.is_unspecified() || src.is_loopback() {
        return false;
    }
    if p.frag_offset() != 0 {
        return false;
    }
    if p.protocol() == ICMP {
        // Only queries (echo, timestamp, ...) are answered; errors are types 3, 4, 5, 11, 12.
        let ty = p.payload().first().copied().unwrap_or(DEST_UNREACHABLE);
        return !matches!(ty, 3 | 4 | 5 | 11 | 12);
    }
    true
}

/// Writes into `out` an IPv4 packet from `src` to the source of `invoking` carrying ICMP
/// type 3 code 4 with next-hop MTU `mtu` and as much of `invoking` as fits in 576 bytes;
/// returns its length, or `None` when `invoking` is not IPv4, gets no error (RFC 1812
/// section 4.3.2.7) or `out` is too short.
pub fn frag_needed(src: Ipv4Addr, invoking: &[u8], mtu: u16, out: &mut [u8]) -> Option<usize> {
    let p = ipv4::Packet::new_checked(invoking).ok()?;
    if !eligible_v4(&p) {
        return None;
    }
    let original = invoking.get(..usize::from(p.total_len()))?;
    let quoted = original.len().min(ICMPV4_MAX - ipv4::HEADER_LEN - 8);
    let icmp_len = 8 + quoted;
    let total = ipv4::HEADER_LEN + icmp_len;
    let out = out.get_mut(..total)?;
    let repr = ipv4::Repr {
        src,
        dst: p.src_addr(),
        protocol: ICMP,
        tos: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        ttl: TTL,
        options: &[],
        payload_len: icmp_len,
    };
    let (head, icmp) = out.split_at_mut(ipv4::HEADER_LEN);
    repr.emit(head).ok()?;
    icmp[..8].copy_from_slice(&[DEST_UNREACHABLE, FRAG_NEEDED, 0, 0, 0, 0, 0, 0]);
    icmp[6..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(&original[..quoted]);
    let sum = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(total)
}

/// Writes into `out` an IPv6 packet from `src` to the source of `invoking` carrying ICMPv6
/// packet too big with MTU `mtu` and as much of `invoking` as fits in 1280 bytes; returns
/// its length, or `None` when `invoking` is not IPv6, is itself an ICMPv6 error (RFC 4443
/// section 2.4 (e)), comes from a multicast or unspecified source, or `out` is too short.
/// (Packet too big is sent even for multicast destinations, section 2.4 (e.3).)
pub fn packet_too_big(src: Ipv6Addr, invoking: &[u8], mtu: u32, out: &mut [u8]) -> Option<usize> {
    let p = ipv6::Packet::new_checked(invoking).ok()?;
    let from = p.src_addr();
    if from.is_multicast() || from.is_unspecified() || from.is_loopback() {
        return None;
    }
    if p.next_header() == ICMPV6 && p.payload().first().is_some_and(|ty| *ty < 128) {
        return None;
    }
    let original = invoking.get(..ipv6::HEADER_LEN + usize::from(p.payload_len()))?;
    let quoted = original.len().min(ICMPV6_MAX - ipv6::HEADER_LEN - 8);
    let icmp_len = 8 + quoted;
    let total = ipv6::HEADER_LEN + icmp_len;
    let out = out.get_mut(..total)?;
    let repr = ipv6::Repr {
        src,
        dst: from,
        next_header: ICMPV6,
        hop_limit: TTL,
        traffic_class: 0,
        flow_label: 0,
        payload_len: icmp_len,
    };
    let (head, icmp) = out.split_at_mut(ipv6::HEADER_LEN);
    repr.emit(head).ok()?;
    icmp[..4].copy_from_slice(&[PACKET_TOO_BIG, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&mtu.to_be_bytes());
    icmp[8..].copy_from_slice(&original[..quoted]);
    // RFC 4443 section 2.3: the checksum covers the RFC 8200 section 8.1 pseudo-header.
    let mut sum = checksum::accumulate(0, &src.octets());
    sum = checksum::accumulate(sum, &from.octets());
    sum = checksum::accumulate(sum, &(icmp_len as u32).to_be_bytes());
    sum = checksum::accumulate(sum, &[0, 0, 0, ICMPV6]);
    sum = checksum::accumulate(sum, icmp);
    let sum = checksum::finish(sum);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(src: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            protocol,
        ];
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&[192, 168, 3, 5]);
        let sum = checksum::checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn quotes_at_most_576_bytes() {
        let big = v4([192, 168, 2, 10], 17, &[0xab; 1480]);
        let mut out = [0u8; 600];
        let n = frag_needed(Ipv4Addr::new(10, 1, 1, 2), &big, 1400, &mut out).unwrap();
        assert_eq!(n, 576);
        assert_eq!(checksum::checksum(&out[..20]), 0);
        assert_eq!(checksum::checksum(&out[20..n]), 0);
        assert_eq!(&out[16..20], &[192, 168, 2, 10]);
        assert_eq!(u16::from_be_bytes([out[26], out[27]]), 1400);
        assert_eq!(&out[28..48], &big[..20]);
    }

    #[test]
    fn no_error_about_an_error_or_from_broadcast() {
        let mut out = [0u8; 600];
        let unreachable = v4([192, 168, 2, 10], ICMP, &[3, 1, 0, 0, 0, 0, 0, 0]);
        assert!(frag_needed(Ipv4Addr::LOCALHOST, &unreachable, 1400, &mut out).is_none());
        let echo = v4([192, 168, 2, 10], ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]);
        assert!(frag_needed(Ipv4Addr::LOCALHOST, &echo, 1400, &mut out).is_some());
        let bcast = v4([255, 255, 255, 255], 17, &[0; 8]);
        assert!(frag_needed(Ipv4Addr::LOCALHOST, &bcast, 1400, &mut out).is_none());
        assert!(frag_needed(Ipv4Addr::LOCALHOST, &echo, 1400, &mut out[..30]).is_none());
        assert!(packet_too_big(Ipv6Addr::LOCALHOST, &echo, 1400, &mut out).is_none());
    }
}
