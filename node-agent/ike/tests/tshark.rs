//! tshark as the judge: a capture of a whole life (IKE_SA_INIT, IKE_AUTH, CHILD_SA rekey,
//! IKE SA rekey, DPD, delete, NAT keepalives, and ESP sealed with the negotiated keys) is
//! written as IPv4/UDP with dmvpn-testkit, and Wireshark's IKEv2 and ESP dissectors decrypt it
//! with the tables built from our key log: every encrypted IKE message decrypts, every ESP
//! packet has a good ICV, nothing is malformed. With a wrong key tshark reports errors, so the
//! check has teeth. (tshark 4.0 cannot decrypt ChaCha20-Poly1305: AES-GCM here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use dmvpn_esp::sa::{NEXT_HEADER_GRE, PAYLOAD_OFFSET};
use dmvpn_esp::{OutboundSa, SaConfig};
use dmvpn_ike::KeyLog;
use dmvpn_testkit as tk;

const SECOND: Duration = Duration::from_secs(1);

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ike_label(len: usize) -> &'static str {
    if len == 36 {
        "AES-GCM-256 with 16 octet ICV [RFC5282]"
    } else {
        "AES-GCM-128 with 16 octet ICV [RFC5282]"
    }
}

/// tshark options from the key log (syntax: ../shared/interop/README.md).
fn options(log: &KeyLog, corrupt: bool) -> Vec<String> {
    let mut o = vec![
        "-o".into(),
        "esp.enable_encryption_decode:TRUE".into(),
        "-o".into(),
        "esp.enable_authentication_check:TRUE".into(),
    ];
    for k in &log.ike_sas {
        let mut er = k.sk_er.clone();
        if corrupt {
            er[0] ^= 1;
        }
        o.push("-o".into());
        o.push(format!(
            "uat:ikev2_decryption_table:{:016x},{:016x},{},{},\"{}\",,,\"NONE [RFC4306]\"",
            k.spi_i,
            k.spi_r,
            hex(&k.sk_ei),
            hex(&er),
            ike_label(k.sk_ei.len())
        ));
    }
    for k in &log.esp_sas {
        o.push("-o".into());
        o.push(format!(
            "uat:esp_sa:\"IPv4\",\"{}\",\"{}\",\"{:#010x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
            k.src,
            k.dst,
            k.spi,
            hex(&k.key)
        ));
    }
    o
}

#[test]
fn tshark_decrypts_every_message_with_our_key_log() {
    if !tk::tshark_available() {
        return;
    }
    let mut net = Net::pair(70);
    net.nodes[1].engine.initiate(net.now, HUB);
    net.run(5 * SECOND);
    let now = net.now;
    net.nodes[1].engine.rekey_child(now, HUB);
    net.run(10 * SECOND);
    let now = net.now;
    net.nodes[0].engine.rekey_ike(now, SPOKE);
    net.run(45 * SECOND);
    let now = net.now;
    net.nodes[1].engine.delete(now, HUB);
    net.run(2 * SECOND);

    let mut packets: Vec<Vec<u8>> = net
        .trace
        .iter()
        .map(|w| {
            tk::ipv4(
                v4(w.src.ip()),
                v4(w.dst.ip()),
                17,
                &tk::udp(w.src.port(), w.dst.port(), &w.payload),
            )
        })
        .collect();
    let ike_count = net.trace.iter().filter(|w| w.payload.len() > 1).count();
    // ESP both ways with the first CHILD_SA's keys.
    let (h, s) = (net.take_events(0), net.take_events(1));
    let t = Instant::now();
    for (from, ev) in [(SPOKE, &s), (HUB, &h)] {
        let up = child_ups(ev)[0];
        let cfg = SaConfig {
            spi: up.outbound.spi,
            sequence_numbers: up.outbound.sequence_numbers,
            lifetime: Default::default(),
        };
        let mut sa = OutboundSa::new(cfg, &up.outbound.key, t).unwrap();
        // GRE with key 1 around an IPv4 packet with no next header (protocol 59).
        let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 1];
        gre.extend(tk::ipv4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            59,
            &[],
        ));
        let mut buf = [0u8; 256];
        buf[PAYLOAD_OFFSET..][..gre.len()].copy_from_slice(&gre);
        let len = sa.seal(t, &mut buf, gre.len(), NEXT_HEADER_GRE).unwrap();
        let to = if from == SPOKE { HUB } else { SPOKE };
        packets.push(tk::ipv4(
            v4(from),
            v4(to),
            17,
            &tk::udp(4500, 4500, &buf[..len]),
        ));
    }
    let pcap = tk::write_pcap("ike-life", &packets);
    let log = net.node(0).engine.key_log().clone();
    assert_eq!(log.ike_sas.len(), 2, "initial and rekeyed IKE SA");
    assert_eq!(log.esp_sas.len(), 4, "two CHILD_SAs, two directions each");
    let sorted = |l: &KeyLog| {
        let mut e: Vec<_> = l.esp_sas.iter().cloned().collect();
        e.sort_by_key(|k| k.spi);
        (l.ike_sas.clone(), e)
    };
    assert_eq!(
        sorted(&log),
        sorted(net.node(1).engine.key_log()),
        "both sides log the same keys"
    );
    let opts = options(&log, false);
    tk::assert_tshark_clean_with(&pcap, &opts);
    let rows = tk::tshark_fields_with(
        &pcap,
        &opts,
        &[
            "isakmp.exchangetype",
            "isakmp.enc.pad_length",
            "esp.icv_good",
            "_ws.col.Protocol",
        ],
    );
    let mut decrypted = 0;
    let mut ike = 0;
    let mut esp_good = 0;
    for r in &rows {
        if !r[0].is_empty() {
            ike += 1;
            if r[0] != "34" {
                assert!(
                    !r[1].is_empty(),
                    "an encrypted message did not decrypt: {r:?}"
                );
                decrypted += 1;
            }
        }
        if r[2] == "1" || r[2] == "True" {
            esp_good += 1;
        }
    }
    assert_eq!(ike, ike_count, "{rows:?}");
    assert!(decrypted >= 12, "{decrypted}");
    assert_eq!(esp_good, 2, "{rows:?}");

    // Teeth: with a wrong SK_er the responder's messages do not decrypt.
    let expert = [
        "isakmp.exchangetype",
        "_ws.expert.severity",
        "_ws.malformed",
    ];
    let flagged = |rows: &[Vec<String>]| {
        rows.iter()
            .filter(|r| !r[0].is_empty() && r[0] != "34" && (!r[1].is_empty() || !r[2].is_empty()))
            .count()
    };
    assert_eq!(flagged(&tk::tshark_fields_with(&pcap, &opts, &expert)), 0);
    let bad = tk::tshark_fields_with(&pcap, &options(&log, true), &expert);
    assert!(flagged(&bad) >= 6, "{bad:?}");
    let _ = std::fs::remove_file(pcap);
}
