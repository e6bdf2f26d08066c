//! The shared test support (dmvpn-testkit), under the name the tests use, and the NHRP
//! engine's own check of everything it emitted.
#![allow(clippy::unwrap_used)]

pub use dmvpn_testkit::*;

/// Frames captured NHRP messages (outer source, outer destination, message) in GRE over IPv4
/// or IPv6, as they travel, for tshark.
#[allow(
    dead_code,
    reason = "test files that do not capture packets include this module too"
)]
pub fn gre_frames(captured: &[(std::net::IpAddr, std::net::IpAddr, Vec<u8>)]) -> Vec<Vec<u8>> {
    use dmvpn_wire::gre;
    use std::net::IpAddr;
    let gre = gre::Repr {
        protocol: gre::Protocol::Nhrp,
        checksum: false,
        key: None,
        sequence: None,
    };
    captured
        .iter()
        .map(|(from, to, bytes)| {
            let mut payload = vec![0u8; gre.buffer_len()];
            payload.extend_from_slice(bytes);
            gre.emit(&mut payload).unwrap();
            match (from, to) {
                (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(*s, *d, gre::IP_PROTOCOL, &payload),
                (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(*s, *d, gre::IP_PROTOCOL, &payload),
                _ => panic!("{from} -> {to}: one underlay family per packet"),
            }
        })
        .collect()
}

/// Asserts that every captured packet (outer source, outer destination, NHRP message)
/// round-trips through dmvpn-wire byte for byte and, where tshark is installed, that tshark
/// dissects them all, framed by [`gre_frames`], without a malformed packet or expert error.
#[allow(
    dead_code,
    reason = "test files that do not capture packets include this module too"
)]
pub fn assert_packets_clean(
    name: &str,
    captured: &[(std::net::IpAddr, std::net::IpAddr, Vec<u8>)],
) {
    use dmvpn_wire::nhrp::{Packet, Repr};
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
    let pcap = write_pcap(name, &gre_frames(captured));
    assert_tshark_clean(&pcap);
    let rows = tshark_fields(&pcap, &["nhrp.hdr.op.type"]);
    assert_eq!(rows.len(), captured.len());
}
