//! The shared test support (dmvpn-testkit), under the name the tests use, and the NHRP
//! engine's own check of everything it emitted.
#![allow(clippy::unwrap_used)]

pub use dmvpn_testkit::*;

/// Asserts that every captured packet (outer source, outer destination, NHRP message)
/// round-trips through dmvpn-wire byte for byte and, where tshark is installed, that tshark
/// dissects them all, framed in GRE over IPv4 or IPv6, without a malformed packet or expert
/// error.
#[allow(
    dead_code,
    reason = "test files that do not capture packets include this module too"
)]
pub fn assert_packets_clean(
    name: &str,
    captured: &[(std::net::IpAddr, std::net::IpAddr, Vec<u8>)],
) {
    use dmvpn_wire::gre;
    use dmvpn_wire::nhrp::{Packet, Repr};
    use std::net::IpAddr;
    assert!(!captured.is_empty(), "nothing captured");
    for (from, to, bytes) in captured {
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        let mut again = vec![0u8; repr.buffer_len()];
        repr.emit(&mut again).unwrap();
        assert_eq!(&again, bytes, "{from} -> {to} does not round-trip");
    }
    if !tshark_available() {
        return;
    }
    let frames: Vec<Vec<u8>> = captured
        .iter()
        .map(|(from, to, bytes)| {
            let gre = gre::Repr {
                protocol: gre::Protocol::Nhrp,
                checksum: false,
                key: None,
                sequence: None,
            };
            let mut payload = vec![0u8; gre.buffer_len()];
            payload.extend_from_slice(bytes);
            gre.emit(&mut payload).unwrap();
            match (from, to) {
                (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(*s, *d, gre::IP_PROTOCOL, &payload),
                (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(*s, *d, gre::IP_PROTOCOL, &payload),
                _ => panic!("{from} -> {to}: one underlay family per packet"),
            }
        })
        .collect();
    let pcap = write_pcap(name, &frames);
    assert_tshark_clean(&pcap);
    let rows = tshark_fields(&pcap, &["nhrp.hdr.op.type"]);
    assert_eq!(rows.len(), captured.len());
}
