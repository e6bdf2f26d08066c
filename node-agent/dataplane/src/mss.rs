//! TCP MSS clamping (Cisco `ip tcp adjust-mss`): the MSS option of a SYN (RFC 9293 section
//! 3.7.1) is lowered to what fits the tunnel, and the TCP checksum is updated incrementally
//! (RFC 1624 equation 3) rather than recomputed over the segment.

use dmvpn_wire::checksum;

/// The IP protocol number of TCP.
const TCP: u8 = 6;
/// TCP's SYN flag.
const SYN: u8 = 0x02;
/// TCP option kinds (RFC 9293 section 3.1).
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// The TCP segment of an IPv4 or IPv6 packet, when the packet carries TCP directly (no IPv6
/// extension header) and is not a non-first fragment.
fn tcp_segment(packet: &mut [u8]) -> Option<&mut [u8]> {
    let start = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let frag = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]) & 0x1fff;
            if *packet.get(9)? != TCP || frag != 0 || ihl < 20 {
                return None;
            }
            ihl
        }
        6 => {
            if *packet.get(6)? != TCP {
                return None;
            }
            40
        }
        _ => return None,
    };
    packet.get_mut(start..)
}

/// Lowers the MSS option of a TCP SYN in `packet` (an IPv4 or IPv6 packet) to `max_mss`
/// and fixes the TCP checksum; returns whether it changed the packet. Other packets, SYNs
/// without an MSS option or with one already small enough, and malformed options are left
/// alone.
pub fn clamp(packet: &mut [u8], max_mss: u16) -> bool {
    let Some(tcp) = tcp_segment(packet) else {
        return false;
    };
    if tcp.len() < 20 || tcp[13] & SYN == 0 {
        return false;
    }
    let data_offset = usize::from(tcp[12] >> 4) * 4;
    if data_offset < 20 || data_offset > tcp.len() {
        return false;
    }
    let mut at = 20;
    while at < data_offset {
        match tcp[at] {
            OPT_END => return false,
            OPT_NOP => at += 1,
            kind => {
                let Some(&len) = tcp.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || at + len > data_offset {
                    return false;
                }
                if kind == OPT_MSS && len == 4 {
                    let value = at + 2;
                    let mss = u16::from_be_bytes([tcp[value], tcp[value + 1]]);
                    if mss <= max_mss {
                        return false;
                    }
                    rewrite(tcp, value, &max_mss.to_be_bytes());
                    return true;
                }
                at += len;
            }
        }
    }
    false
}

/// Writes `new` at `tcp[at..]` and updates the TCP checksum (bytes 16-17) by RFC 1624
/// equation 3, HC' = ~(~HC + ~m + m'), over the 16-bit words (aligned to the segment start)
/// that the bytes touch: the value may start at an odd offset after a NOP.
fn rewrite(tcp: &mut [u8], at: usize, new: &[u8]) {
    let first = at & !1;
    let last = (at + new.len() + 1) & !1;
    let word = |t: &[u8], i: usize| u16::from_be_bytes([t[i], t.get(i + 1).copied().unwrap_or(0)]);
    let mut sum = u32::from(!u16::from_be_bytes([tcp[16], tcp[17]]));
    for i in (first..last).step_by(2) {
        sum += u32::from(!word(tcp, i));
    }
    tcp[at..at + new.len()].copy_from_slice(new);
    for i in (first..last).step_by(2) {
        sum += u32::from(word(tcp, i));
    }
    let folded = checksum::finish(sum);
    tcp[16..18].copy_from_slice(&folded.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP SYN over IPv4 with `options`, its checksum computed from scratch.
    fn syn(options: &[u8]) -> Vec<u8> {
        let mut tcp = vec![0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0];
        let offset = (20 + options.len()) / 4;
        tcp.extend_from_slice(&[(offset as u8) << 4, SYN, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(options);
        let src = [10, 0, 0, 1];
        let dst = [10, 0, 0, 2];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&[0, TCP, 0, tcp.len() as u8]);
        pseudo.extend_from_slice(&tcp);
        let sum = checksum::checksum(&pseudo);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        let mut ip = vec![
            0x45,
            0,
            0,
            (20 + tcp.len()) as u8,
            0,
            0,
            0x40,
            0,
            64,
            TCP,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(&tcp);
        ip
    }

    fn tcp_ok(ip: &[u8]) -> bool {
        let tcp = &ip[20..];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[12..20]);
        pseudo.extend_from_slice(&[0, TCP, 0, tcp.len() as u8]);
        pseudo.extend_from_slice(tcp);
        checksum::checksum(&pseudo) == 0
    }

    #[test]
    fn odd_offset_mss_keeps_the_checksum_right() {
        // NOP, then MSS 1460 at an odd offset, then padding NOPs.
        let mut p = syn(&[OPT_NOP, OPT_MSS, 4, 0x05, 0xb4, OPT_NOP, OPT_NOP, OPT_NOP]);
        assert!(clamp(&mut p, 1360));
        assert_eq!(&p[20 + 23..20 + 25], &1360u16.to_be_bytes());
        assert!(tcp_ok(&p));
    }

    #[test]
    fn leaves_small_mss_and_truncated_options_alone() {
        let mut p = syn(&[OPT_MSS, 4, 0x05, 0x00]);
        let before = p.clone();
        assert!(!clamp(&mut p, 1360));
        assert_eq!(p, before);
        // An option running past the header.
        let mut bad = syn(&[3, 9, 0, 0]);
        assert!(!clamp(&mut bad, 100));
        assert!(!clamp(&mut [0x45], 100));
        assert!(!clamp(&mut [], 100));
    }
}
