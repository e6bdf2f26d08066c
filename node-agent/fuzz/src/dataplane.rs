//! Round-trip checks of the dataplane codecs: GRE, ESP framing, UDP 4500 classification and
//! the IPv4/IPv6/UDP views.

use dmvpn_wire::{esp, gre, ipv4, ipv6, udp, udp_encap};

/// Asserts that `emitted` equals `original` except in the 16-bit checksum field at `at`, where
/// both must be valid: one's-complement arithmetic has two zeros, so a sender may write 0xffff
/// where we compute 0x0000 (RFC 1624 section 3) and both verify.
fn assert_same_but_checksum(emitted: &[u8], original: &[u8], at: usize, what: &str) {
    assert_eq!(emitted.len(), original.len(), "{what}: length");
    assert_eq!(
        emitted[..at],
        original[..at],
        "{what}: bytes before the checksum"
    );
    assert_eq!(
        emitted[at + 2..],
        original[at + 2..],
        "{what}: bytes after the checksum"
    );
    let sums = [
        u16::from_be_bytes([emitted[at], emitted[at + 1]]),
        u16::from_be_bytes([original[at], original[at + 1]]),
    ];
    assert!(
        sums[0] == sums[1] || (sums[0] | sums[1]) == 0xffff && (sums[0] & sums[1]) == 0,
        "{what}: checksums {sums:x?}"
    );
}

/// GRE: a header that parses (checksum verified) emits and parses back to itself; when the
/// bits RFC 2784 section 2.3 ignores on receipt (Reserved0 bits 6-12, Reserved1) were zero,
/// the bytes are the same too.
pub fn gre(data: &[u8]) {
    let Ok(packet) = gre::Packet::new_checked(data) else {
        return;
    };
    let Ok(repr) = gre::Repr::parse(&packet) else {
        return;
    };
    assert_eq!(packet.header_len(), repr.buffer_len());
    let mut buf = data.to_vec();
    repr.emit(&mut buf)
        .expect("emit into a buffer of the parsed length");
    let again = gre::Packet::new_checked(&buf[..]).expect("emitted GRE is valid");
    assert_eq!(gre::Repr::parse(&again), Ok(repr));
    let ignored_bits_clear = u16::from_be_bytes([data[0], data[1]]) & 0x03f8 == 0
        && (!repr.checksum || data[6..8] == [0, 0]);
    if !ignored_bits_clear {
        return;
    }
    if repr.checksum {
        assert_same_but_checksum(&buf, data, 4, "GRE");
    } else {
        assert_eq!(
            buf, data,
            "GRE {repr:?} did not emit back to the same bytes"
        );
    }
}

/// ESP: header and opaque payload emit back; every layout split and trailer parse is total.
pub fn esp(data: &[u8]) {
    if let Ok(packet) = esp::Packet::new_checked(data) {
        let repr = esp::Repr::parse(&packet).expect("ESP repr of a checked packet");
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).expect("emit ESP");
        assert_eq!(buf, data);
        for alg in [
            esp::Algorithm::AesGcm16,
            esp::Algorithm::AesGcm8,
            esp::Algorithm::ChaCha20Poly1305,
        ] {
            let layout = alg.layout().expect("known algorithm");
            if let Ok((iv, ciphertext, icv)) = packet.split(layout) {
                assert_eq!(iv.len() + ciphertext.len() + icv.len(), repr.payload.len());
            }
        }
    }
    if let Ok((payload, trailer)) = esp::Trailer::parse(data) {
        let mut buf = payload.to_vec();
        buf.resize(payload.len() + trailer.buffer_len(), 0);
        trailer
            .emit(&mut buf[payload.len()..])
            .expect("emit trailer");
        assert_eq!(buf, data);
    }
}

/// UDP port 4500: whatever classifies emits back to the same bytes.
pub fn udp_encap(data: &[u8]) {
    let Ok(datagram) = udp_encap::Datagram::parse(data) else {
        return;
    };
    let mut buf = vec![0u8; datagram.buffer_len()];
    datagram.emit(&mut buf).expect("emit datagram");
    assert_eq!(buf, data);
}

/// IPv4, IPv6 and UDP headers: parse → emit gives the same header bytes.
pub fn ip(data: &[u8]) {
    if let Ok(packet) = ipv4::Packet::new_checked(data) {
        if let Ok(repr) = ipv4::Repr::parse(&packet) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut buf).expect("emit IPv4");
            assert_same_but_checksum(&buf, &data[..packet.header_len()], 10, "IPv4");
        }
        udp_header(packet.payload());
    }
    if let Ok(packet) = ipv6::Packet::new_checked(data) {
        let repr = ipv6::Repr::parse(&packet).expect("IPv6 repr of a checked packet");
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).expect("emit IPv6");
        assert_eq!(buf, data[..ipv6::HEADER_LEN]);
        udp_header(packet.payload());
    }
}

fn udp_header(data: &[u8]) {
    let Ok(packet) = udp::Packet::new_checked(data) else {
        return;
    };
    let repr = udp::Repr::parse(&packet).expect("UDP repr of a checked datagram");
    let mut buf = data[..usize::from(packet.len())].to_vec();
    repr.emit(&mut buf, None).expect("emit UDP");
    assert_eq!(buf[..6], data[..6]);
    let _ = packet.payload();
}
