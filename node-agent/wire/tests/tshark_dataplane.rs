//! tshark judges the dataplane framing we emit: GRE with and without key, checksum and
//! sequence number, ESP in UDP 4500 (RFC 3948), NAT keepalives, raw ESP, IPv4 and IPv6 outer
//! headers built by our own IPv4/IPv6/UDP emitters.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dmvpn_wire::{esp, gre, ipv4, ipv6, udp, udp_encap};

const HUB: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SPOKE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const HUB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const SPOKE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// An IPv4 packet with our emitter.
fn ip4(protocol: u8, payload: &[u8]) -> Vec<u8> {
    let repr = ipv4::Repr {
        src: SPOKE,
        dst: HUB,
        protocol,
        tos: 0,
        ident: 0x1234,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        ttl: 64,
        options: &[],
        payload_len: payload.len(),
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    repr.emit(&mut buf).unwrap();
    buf[repr.buffer_len()..].copy_from_slice(payload);
    buf
}

/// An IPv6 packet with our emitter.
fn ip6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let repr = ipv6::Repr {
        src: SPOKE6,
        dst: HUB6,
        next_header,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x12345,
        payload_len: payload.len(),
    };
    let mut buf = vec![0u8; ipv6::HEADER_LEN + payload.len()];
    repr.emit(&mut buf).unwrap();
    buf[ipv6::HEADER_LEN..].copy_from_slice(payload);
    buf
}

/// A UDP datagram with our emitter; the checksum is computed over IPv6 and left 0 over IPv4
/// (RFC 3948 section 2.1).
fn udp_dgram(v6: bool, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; udp::HEADER_LEN + payload.len()];
    buf[udp::HEADER_LEN..].copy_from_slice(payload);
    let addrs = v6.then_some((IpAddr::V6(SPOKE6), IpAddr::V6(HUB6)));
    udp::Repr { src_port, dst_port }
        .emit(&mut buf, addrs)
        .unwrap();
    buf
}

/// A GRE packet with our emitter around `payload`.
fn gre_packet(repr: gre::Repr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    buf[repr.buffer_len()..].copy_from_slice(payload);
    repr.emit(&mut buf).unwrap();
    buf
}

/// An ESP packet framed with our emitter: header, 8-byte IV, an opaque "ciphertext" that
/// ends with a trailer, a 16-byte ICV (AES-GCM-16 layout).
fn esp_packet(spi: u32, sequence: u32, inner_len: usize) -> Vec<u8> {
    let layout = esp::Algorithm::AesGcm16.layout().unwrap();
    let trailer = esp::Trailer::for_payload(inner_len, gre::IP_PROTOCOL, layout.alignment);
    let body_len = layout.iv_len + inner_len + trailer.buffer_len() + layout.icv_len;
    let body: Vec<u8> = (0..body_len).map(|i| (i * 7) as u8).collect();
    let repr = esp::Repr {
        spi,
        sequence,
        payload: &body,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

fn encap(d: udp_encap::Datagram) -> Vec<u8> {
    let mut buf = vec![0u8; d.buffer_len()];
    d.emit(&mut buf).unwrap();
    buf
}

#[test]
fn tshark_dissects_dataplane_framing() {
    // A small inner IPv4 packet (ICMP echo) for GRE to carry.
    let icmp = [8u8, 0, 0xf7, 0xfe, 0, 1, 0, 0];
    let inner = ip4(1, &icmp);
    let plain = gre::Repr {
        protocol: gre::Protocol::Ipv4,
        checksum: false,
        key: None,
        sequence: None,
    };
    let keyed = gre::Repr {
        key: Some(100),
        ..plain
    };
    let full = gre::Repr {
        checksum: true,
        key: Some(0xdead_beef),
        sequence: Some(42),
        ..plain
    };
    let v6_inner = gre::Repr {
        protocol: gre::Protocol::Ipv6,
        ..keyed
    };
    let inner6 = ip6(58, &[128, 0, 0, 0, 0, 1, 0, 1]);

    let esp1 = esp_packet(0xc1a9_656b, 1, 100);
    let esp2 = esp_packet(0x958a_753b, 0xffff_fff0, 1400);
    let packets = vec![
        ip4(gre::IP_PROTOCOL, &gre_packet(plain, &inner)),
        ip4(gre::IP_PROTOCOL, &gre_packet(keyed, &inner)),
        ip4(gre::IP_PROTOCOL, &gre_packet(full, &inner)),
        ip6(gre::IP_PROTOCOL, &gre_packet(v6_inner, &inner6)),
        ip4(
            udp::IP_PROTOCOL,
            &udp_dgram(false, 4500, 4500, &encap(udp_encap::Datagram::Esp(&esp1))),
        ),
        ip4(
            udp::IP_PROTOCOL,
            &udp_dgram(false, 4500, 4500, &encap(udp_encap::Datagram::Keepalive)),
        ),
        ip6(
            udp::IP_PROTOCOL,
            &udp_dgram(true, 4500, 4500, &encap(udp_encap::Datagram::Esp(&esp2))),
        ),
        ip4(esp::IP_PROTOCOL, &esp1),
    ];
    if !common::tshark_available() {
        return;
    }
    let pcap = common::write_pcap("dataplane", &packets);
    common::assert_tshark_clean(&pcap);
    let rows = common::tshark_fields(
        &pcap,
        &[
            "frame.protocols",
            "gre.key",
            "gre.proto",
            "gre.checksum.status",
            "gre.sequence_number",
            "esp.spi",
            "esp.sequence",
            "udpencap.nat_keepalive",
            "ip.checksum.status",
            "ipv6.flow",
        ],
    );
    assert_eq!(rows.len(), packets.len());
    let col = |row: usize, i: usize| rows[row][i].as_str();
    // GRE without key: IPv4 inside.
    assert!(col(0, 0).ends_with("ip:gre:ip:icmp"), "{}", col(0, 0));
    assert_eq!(col(0, 1), "");
    assert_eq!(col(0, 2), "0x0800");
    // GRE with key 100.
    assert_eq!(col(1, 1), "0x00000064");
    // GRE with checksum, key and sequence number: tshark verifies our checksum.
    assert_eq!(col(2, 1), "0xdeadbeef");
    assert_eq!(col(2, 3), "1", "GRE checksum status (1 = good)");
    assert_eq!(col(2, 4), "42");
    // GRE over IPv6 carrying IPv6.
    assert!(col(3, 0).ends_with("ipv6:gre:ipv6:icmpv6"), "{}", col(3, 0));
    assert_eq!(col(3, 2), "0x86dd");
    assert_eq!(
        col(3, 9),
        "0x012345,0x012345",
        "flow label of outer and inner IPv6"
    );
    // ESP in UDP 4500, NAT keepalive, ESP over IPv6, raw ESP.
    assert!(col(4, 0).ends_with("udp:udpencap:esp"), "{}", col(4, 0));
    assert_eq!(col(4, 5), "0xc1a9656b");
    assert_eq!(col(4, 6), "1");
    assert!(col(5, 0).ends_with("udp:udpencap"), "{}", col(5, 0));
    assert_eq!(col(5, 7), "1", "tshark saw a NAT keepalive");
    assert!(
        col(6, 0).ends_with("ipv6:udp:udpencap:esp"),
        "{}",
        col(6, 0)
    );
    assert_eq!(col(6, 5), "0x958a753b");
    assert_eq!(col(6, 6), "4294967280");
    assert!(col(7, 0).ends_with("ip:esp"), "{}", col(7, 0));
    assert_eq!(col(7, 5), "0xc1a9656b");
    // Every IPv4 header checksum we computed is good.
    for (i, row) in rows.iter().enumerate() {
        if !row[0].contains("ipv6") {
            assert!(
                row[8].split(',').all(|s| s == "1"),
                "packet {i}: IPv4 checksum status {}",
                row[8]
            );
        }
    }
}
