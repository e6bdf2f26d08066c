//! tshark as the judge of our ESP: packets sealed by [`OutboundSa`] with AES-GCM-16 (128 and
//! 256), in UDP 4500 inside IPv4, decrypted by Wireshark's own ESP code with the SA's key
//! (../shared/interop/README.md gives the options). Every packet must show "ICV good", the
//! decrypted GRE key and inner ICMP must be what we sealed, and nothing may be malformed; with
//! a wrong key tshark must say "ICV bad", so the check has teeth. tshark 4.0 cannot decrypt
//! ChaCha20-Poly1305, so that transform is judged by the known-answer tests instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::Ipv4Addr;
use std::time::Instant;

use dmvpn_esp::sa::{NEXT_HEADER_GRE, NEXT_HEADER_IPV4};
use dmvpn_esp::{Algorithm, KeyMaterial, OutboundSa, SaConfig, SequenceNumbers};

const HUB: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
const SPOKE: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 2);

/// An ICMP echo request from one overlay host to another, as an IPv4 packet.
fn icmp_echo(id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"kube-dmvpn esp judged by tshark");
    let sum = common::inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    common::ipv4(
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 2, 0, 1),
        1,
        &icmp,
    )
}

/// A GRE header with the key bit (RFC 2890), protocol IPv4, around `inner`: what DMVPN puts
/// under ESP in transport mode.
fn gre(key: u32, inner: &[u8]) -> Vec<u8> {
    let mut g = vec![0x20, 0x00, 0x08, 0x00];
    g.extend_from_slice(&key.to_be_bytes());
    g.extend_from_slice(inner);
    g
}

struct Sealed {
    packet: Vec<u8>,
    spi: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    gre_key: u32,
    icmp_seq: u16,
    esp_seq: u32,
    next_header: u8,
}

/// What tshark needs to know of one SA.
struct SaKey {
    spi: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    key: Vec<u8>,
}

fn uat(spi: u32, src: Ipv4Addr, dst: Ipv4Addr, key: &[u8]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "uat:esp_sa:\"IPv4\",\"{src}\",\"{dst}\",\"{spi:#010x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{hex}\",\"NULL\",\"\""
    )
}

fn options(uats: &[String]) -> Vec<String> {
    let mut o = vec![
        "-o".into(),
        "esp.enable_encryption_decode:TRUE".into(),
        "-o".into(),
        "esp.enable_authentication_check:TRUE".into(),
    ];
    for u in uats {
        o.push("-o".into());
        o.push(u.clone());
    }
    o
}

/// Seals `count` packets on each of two SAs: spoke to hub with AES-GCM-16-256 in transport
/// mode (GRE, next header 47), hub to spoke with AES-GCM-16-128 in tunnel mode (IPv4 carrying
/// GRE, next header 4).
fn capture(count: u16) -> (Vec<Sealed>, Vec<SaKey>) {
    let now = Instant::now();
    // Arbitrary fixed keys, key || salt.
    let key256: Vec<u8> = (0u8..36)
        .map(|i| i.wrapping_mul(7).wrapping_add(0x11))
        .collect();
    let key128: Vec<u8> = (0u8..20)
        .map(|i| i.wrapping_mul(13).wrapping_add(0x5c))
        .collect();
    let sas = [
        (0xc1a9_656b_u32, SPOKE, HUB, key256, Algorithm::AesGcm16_256),
        (0x0000_1001_u32, HUB, SPOKE, key128, Algorithm::AesGcm16_128),
    ];
    let mut sealed = Vec::new();
    for (i, (spi, src, dst, key, alg)) in sas.iter().enumerate() {
        let material = KeyMaterial::new(*alg, key).unwrap();
        let config = SaConfig {
            spi: *spi,
            sequence_numbers: SequenceNumbers::Short,
            lifetime: Default::default(),
        };
        let mut sa = OutboundSa::new(config, &material, now).unwrap();
        for n in 0..count {
            let gre_key = 1000 + u32::from(n);
            let icmp_seq = 100 * i as u16 + n;
            let transport = i == 0;
            let payload = if transport {
                gre(gre_key, &icmp_echo(0x4242, icmp_seq))
            } else {
                common::ipv4(*src, *dst, 47, &gre(gre_key, &icmp_echo(0x4242, icmp_seq)))
            };
            let next_header = if transport {
                NEXT_HEADER_GRE
            } else {
                NEXT_HEADER_IPV4
            };
            let mut buf = vec![0u8; 2048];
            let len = sa.seal_from(now, &payload, next_header, &mut buf).unwrap();
            buf.truncate(len);
            let packet = common::ipv4(*src, *dst, 17, &common::udp(4500, 4500, &buf));
            sealed.push(Sealed {
                packet,
                spi: *spi,
                src: *src,
                dst: *dst,
                gre_key,
                icmp_seq,
                esp_seq: u32::from(n) + 1,
                next_header,
            });
        }
    }
    let keys = sas
        .into_iter()
        .map(|(spi, src, dst, key, _)| SaKey { spi, src, dst, key })
        .collect();
    (sealed, keys)
}

const FIELDS: &[&str] = &[
    "esp.spi",
    "esp.sequence",
    "esp.icv_good",
    "esp.icv_bad",
    "esp.protocol",
    "gre.key",
    "icmp.seq",
    "icmp.type",
    "_ws.malformed",
];

#[test]
fn tshark_decrypts_our_esp() {
    if !common::tshark_available() {
        return;
    }
    let (sealed, sas) = capture(5);
    let packets: Vec<Vec<u8>> = sealed.iter().map(|s| s.packet.clone()).collect();
    let pcap = common::write_pcap("esp-aes-gcm", &packets);
    let uats: Vec<String> = sas
        .iter()
        .map(|k| uat(k.spi, k.src, k.dst, &k.key))
        .collect();
    let opts = options(&uats);
    let rows = common::tshark_fields_with(&pcap, &opts, FIELDS);
    assert_eq!(rows.len(), sealed.len());
    for (row, s) in rows.iter().zip(&sealed) {
        let ctx = format!("{:?} for SPI {:#x} {} -> {}", row, s.spi, s.src, s.dst);
        assert_eq!(row[0], format!("{:#010x}", s.spi), "{ctx}");
        assert_eq!(row[1], s.esp_seq.to_string(), "{ctx}");
        assert_eq!(row[2], "1", "ICV good: {ctx}");
        assert!(row[3].is_empty() || row[3] == "0", "ICV bad: {ctx}");
        assert_eq!(row[4], format!("{:#04x}", s.next_header), "{ctx}");
        assert_eq!(row[5], format!("{:#010x}", s.gre_key), "{ctx}");
        assert_eq!(row[6], s.icmp_seq.to_string(), "{ctx}");
        assert_eq!(row[7], "8", "{ctx}");
        assert!(row[8].is_empty(), "malformed: {ctx}");
    }
    common::assert_tshark_clean_with(&pcap, &opts);

    // A wrong key (one bit of the AES-256 key flipped): tshark must find the ICV bad.
    let SaKey { spi, src, dst, key } = &sas[0];
    let mut wrong = key.clone();
    wrong[0] ^= 1;
    let opts = options(&[uat(*spi, *src, *dst, &wrong), uats[1].clone()]);
    let rows = common::tshark_fields_with(&pcap, &opts, FIELDS);
    for (row, s) in rows.iter().zip(&sealed) {
        if s.spi == *spi {
            assert_eq!(row[3], "1", "ICV bad expected with a wrong key: {row:?}");
            assert!(
                row[5].is_empty(),
                "nothing decoded with a wrong key: {row:?}"
            );
        } else {
            assert_eq!(row[2], "1", "the other SA still verifies: {row:?}");
        }
    }
}
