//! The bytes DMVPN adds to every packet, and the tunnel MTU and TCP MSS derived from them.
//!
//! ESP-in-UDP over IPv4 with GRE and a tunnel key, transport mode (RFC 3948 section 2.1,
//! RFC 4303 section 2, RFC 4106 section 3, RFC 2890):
//!
//! ```text
//! outer IPv4 20 | UDP 8 | ESP SPI+seq 8 | IV 8 | GRE 4 (+4 key) | inner packet |
//!     padding 0..3 | pad length 1 | next header 1 | ICV 16
//! ```
//!
//! 73 bytes at most with a key over IPv4 (93 over IPv6). GRE-in-UDP (RFC 8086) adds only
//! the outer IP, UDP and GRE headers.

/// Outer IPv4 header (RFC 791), without options.
pub const IPV4_HEADER: usize = 20;
/// Outer IPv6 header (RFC 8200).
pub const IPV6_HEADER: usize = 40;
/// UDP header (RFC 768).
pub const UDP_HEADER: usize = 8;
/// ESP header: SPI and sequence number (RFC 4303 section 2).
pub const ESP_HEADER: usize = 8;
/// The explicit IV of AES-GCM and ChaCha20-Poly1305 (RFC 4106 section 3.1, RFC 7634).
pub const ESP_IV: usize = 8;
/// Padding to a 4-byte boundary (at most 3), pad length and next header (RFC 4303
/// section 2.4).
pub const ESP_TRAILER_MAX: usize = 3 + 2;
/// The 16-byte ICV of the AEADs used (RFC 4106 section 6).
pub const ESP_ICV: usize = 16;
/// The GRE base header (RFC 2784 section 2).
pub const GRE_HEADER: usize = 4;
/// The GRE key field (RFC 2890 section 2.1).
pub const GRE_KEY: usize = 4;
/// The Ethernet MTU most underlays have.
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;
/// TCP and IPv4 headers without options: MSS = MTU - 40 (RFC 879, RFC 6691).
pub const TCP_IPV4_HEADERS: u16 = 40;
/// TCP and IPv6 headers without options: MSS = MTU - 60 (RFC 8200 section 8.3).
pub const TCP_IPV6_HEADERS: u16 = 60;

/// The most bytes a tunnel adds to a packet, outer IP header included.
pub const fn max_overhead(esp: bool, gre_key: bool, ipv6_underlay: bool) -> usize {
    let ip = if ipv6_underlay {
        IPV6_HEADER
    } else {
        IPV4_HEADER
    };
    let gre = GRE_HEADER + if gre_key { GRE_KEY } else { 0 };
    let esp = if esp {
        ESP_HEADER + ESP_IV + ESP_TRAILER_MAX + ESP_ICV
    } else {
        0
    };
    ip + UDP_HEADER + gre + esp
}

/// The largest inner packet that crosses an underlay of `underlay_mtu` unfragmented.
pub const fn tunnel_mtu(underlay_mtu: u16, esp: bool, gre_key: bool, ipv6_underlay: bool) -> u16 {
    let overhead = max_overhead(esp, gre_key, ipv6_underlay) as u16;
    underlay_mtu.saturating_sub(overhead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_overheads() {
        // 20 + 8 + 8 + 8 + 5 + 16 + 8.
        assert_eq!(max_overhead(true, true, false), 73);
        assert_eq!(max_overhead(true, false, true), 89);
        assert_eq!(max_overhead(false, true, false), 36);
        assert_eq!(tunnel_mtu(1500, true, true, false), 1427);
        assert_eq!(tunnel_mtu(40, true, true, false), 0);
    }

    #[test]
    fn esp_overhead_matches_dmvpn_esp() {
        // The sealed length of dmvpn-esp, for every padding case, stays within the bound.
        for inner in 0..8 {
            let gre = GRE_HEADER + GRE_KEY + inner;
            let sealed = dmvpn_esp::sa::sealed_len(gre);
            assert!(sealed - inner <= max_overhead(true, true, false) - IPV4_HEADER - UDP_HEADER);
        }
    }
}
