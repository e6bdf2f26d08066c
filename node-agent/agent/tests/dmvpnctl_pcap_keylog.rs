//! `dmvpnctl pcap --key-log`: a capture of an IKE_AUTH exchange and of ESP-in-UDP carrying
//! GRE, keyed by a key log in the contract of issue 4, decrypts layer by layer. tshark, given
//! the same key log, is the independent judge that the capture is what it claims to be.
//!
//! The packets are synthesised here: the ESP packet sealed by `dmvpn-esp`, the IKE messages
//! encrypted with ring per RFC 7296 section 3.14 and RFC 5282; the keys are arbitrary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use dmvpn_esp::{Algorithm, KeyMaterial, LifetimeConfig, OutboundSa, SaConfig, SequenceNumbers};
use dmvpn_testkit::keylog::{EspSaKeys, HexKey, IkeSaKeys, KeyLog};
use ring::aead;
use serde_json::Value;

const HUB: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const SPOKE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SPI_I: u64 = 0x0123_4567_89ab_cdef;
const SPI_R: u64 = 0xfedc_ba98_7654_3210;
const ESP_SPI: u32 = 0xc32c_6d83;

fn key(seed: u8) -> Vec<u8> {
    (0..36).map(|i| seed.wrapping_add(i)).collect()
}

/// An IKE_AUTH message (exchange 35) whose SK payload holds IDi (ID_IPV4_ADDR 198.18.0.1)
/// and N(USE_TRANSPORT_MODE), sealed with `sk` (AES-256-GCM key and salt).
fn ike_auth(sk: &[u8], flags: u8) -> Vec<u8> {
    // IDi (type 35): next N (41), ID_IPV4_ADDR (1); N (41): protocol 0, no SPI, type 16391.
    let mut plain = vec![41, 0, 0, 12, 1, 0, 0, 0, 198, 18, 0, 1];
    plain.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0x40, 0x07]);
    plain.push(0); // pad length
    let iv = [7u8; 8];
    let total = 28 + 4 + 8 + plain.len() + 16;
    let mut msg = Vec::new();
    msg.extend_from_slice(&SPI_I.to_be_bytes());
    msg.extend_from_slice(&SPI_R.to_be_bytes());
    msg.extend_from_slice(&[46, 0x20, 35, flags]);
    msg.extend_from_slice(&1u32.to_be_bytes());
    msg.extend_from_slice(&(total as u32).to_be_bytes());
    // SK header: first inner payload IDi (35).
    msg.extend_from_slice(&[35, 0]);
    msg.extend_from_slice(&((total - 28) as u16).to_be_bytes());
    let aad = msg.clone();
    let mut nonce = [0u8; 12];
    nonce[..4].copy_from_slice(&sk[32..]);
    nonce[4..].copy_from_slice(&iv);
    let k = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, &sk[..32]).unwrap());
    k.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::from(&aad),
        &mut plain,
    )
    .unwrap();
    msg.extend_from_slice(&iv);
    msg.extend_from_slice(&plain);
    assert_eq!(msg.len(), total);
    msg
}

/// ESP (sealed by `dmvpn-esp`, transport mode) carrying GRE carrying an ICMP echo between
/// the seed's tunnel addresses.
fn esp_gre(encr_key: &[u8]) -> Vec<u8> {
    let icmp = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
    let inner = dmvpn_testkit::ipv4(
        Ipv4Addr::new(10, 1, 1, 2),
        Ipv4Addr::new(10, 1, 1, 3),
        1,
        &icmp,
    );
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let material = KeyMaterial::new(Algorithm::AesGcm16_256, encr_key).unwrap();
    let config = SaConfig {
        spi: ESP_SPI,
        sequence_numbers: SequenceNumbers::Short,
        lifetime: LifetimeConfig::default(),
    };
    let mut sa = OutboundSa::new(config, &material, Instant::now()).unwrap();
    let mut buf = vec![0u8; 256];
    let n = sa
        .seal_from(
            Instant::now(),
            &gre,
            dmvpn_esp::sa::NEXT_HEADER_GRE,
            &mut buf,
        )
        .unwrap();
    buf.truncate(n);
    buf
}

fn key_log(sk_ei: &[u8], sk_er: &[u8], esp: &[u8]) -> KeyLog {
    KeyLog {
        ike_sas: vec![IkeSaKeys {
            spi_i: format!("{SPI_I:016x}"),
            spi_r: format!("{SPI_R:016x}"),
            encr: "AES_GCM_16_256".into(),
            integ: None,
            sk_ei: HexKey::new(sk_ei.to_vec()),
            sk_er: HexKey::new(sk_er.to_vec()),
            sk_ai: None,
            sk_ar: None,
        }],
        esp_sas: vec![EspSaKeys {
            spi: format!("0x{ESP_SPI:08x}"),
            src: HUB.into(),
            dst: SPOKE.into(),
            encr: "AES_GCM_16_256".into(),
            encr_key: HexKey::new(esp.to_vec()),
            integ: None,
            integ_key: None,
        }],
    }
}

/// The capture: IKE_AUTH request (initiator, SK_ei), response (responder, SK_er), ESP.
fn capture(name: &str) -> (PathBuf, KeyLog) {
    let (sk_ei, sk_er, esp) = (key(1), key(101), key(201));
    let request = ike_auth(&sk_ei, 0x08);
    let response = ike_auth(&sk_er, 0x20);
    let mut esp_udp = dmvpn_testkit::udp(4500, 4500, &esp_gre(&esp));
    // The UDP checksum over the pseudo-header is left zero (allowed for IPv4, RFC 768).
    esp_udp[6..8].copy_from_slice(&[0, 0]);
    let packets = vec![
        dmvpn_testkit::ipv4(
            SPOKE,
            HUB,
            17,
            &zero_sum(dmvpn_testkit::udp(500, 500, &request)),
        ),
        dmvpn_testkit::ipv4(
            HUB,
            SPOKE,
            17,
            &zero_sum(dmvpn_testkit::udp(500, 500, &response)),
        ),
        dmvpn_testkit::ipv4(HUB, SPOKE, 17, &esp_udp),
    ];
    (
        dmvpn_testkit::write_pcap(name, &packets),
        key_log(&sk_ei, &sk_er, &esp),
    )
}

fn zero_sum(mut udp: Vec<u8>) -> Vec<u8> {
    udp[6..8].copy_from_slice(&[0, 0]);
    udp
}

fn decode(pcap: &Path, keys: &KeyLog, name: &str) -> Vec<Value> {
    let log = std::env::temp_dir().join(format!("dmvpn-{name}-{}.json", std::process::id()));
    keys.write(&log).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .args(["-o", "json", "pcap", "--check-roundtrip", "--key-log"])
        .arg(&log)
        .arg(pcap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&log);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["frames"].as_array().unwrap().clone()
}

fn layer<'a>(frame: &'a Value, protocol: &str) -> &'a Value {
    frame["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["protocol"] == protocol)
        .unwrap_or_else(|| panic!("no {protocol} layer in {frame}"))
}

fn protocols(frame: &Value) -> Vec<&str> {
    frame["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["protocol"].as_str().unwrap())
        .collect()
}

#[test]
fn ike_and_esp_decrypt_with_the_key_log() {
    let (pcap, keys) = capture("keylog-good");
    if dmvpn_testkit::tshark_available() {
        let report = dmvpn_testkit::judge::judge(&pcap, &keys).unwrap();
        assert_eq!(report.ike_decrypted, 2, "{report:?}");
        assert_eq!(report.esp_icv_good, 1, "{report:?}");
    }
    let frames = decode(&pcap, &keys, "keylog-good");
    for f in &frames[..2] {
        assert_eq!(protocols(f), ["ipv4", "udp", "ikev2", "ikev2-sk"]);
        let sk = layer(f, "ikev2-sk");
        assert_eq!(sk["roundtrip"], "exact", "{sk}");
        assert_eq!(sk["fields"]["algorithm"], "AES_GCM_16_256");
    }
    assert_eq!(
        protocols(&frames[2]),
        [
            "ipv4",
            "udp",
            "esp",
            "esp-decrypted",
            "gre",
            "ipv4",
            "payload"
        ]
    );
    let plain = layer(&frames[2], "esp-decrypted");
    assert_eq!(plain["fields"]["next_header"], 47);
    assert_eq!(plain["fields"]["sequence"], 1);
    assert_eq!(layer(&frames[2], "gre")["roundtrip"], "exact");

    // The text form names the inner payloads as strongSwan logs them.
    let log = std::env::temp_dir().join(format!("dmvpn-keylog-text-{}.json", std::process::id()));
    keys.write(&log).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmvpnctl"))
        .args(["pcap", "--key-log"])
        .arg(&log)
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&pcap);
    assert!(
        text.contains(
            "IKEv2 SK: decrypted with AES_GCM_16_256, ICV good: [ IDi N(USE_TRANSPORT_MODE) ]"
        ),
        "{text}"
    );
    assert!(
        text.contains("ESP plaintext: decrypted with AES_GCM_16_256, ICV good: next header 47"),
        "{text}"
    );
}

#[test]
fn wrong_keys_fail_the_icv_and_say_so() {
    let (pcap, good) = capture("keylog-bad");
    // SK_ei and SK_er swapped, and another ESP key.
    let mut bad = key_log(&key(101), &key(1), &key(9));
    bad.esp_sas[0].spi = good.esp_sas[0].spi.clone();
    let frames = decode(&pcap, &bad, "keylog-bad");
    for f in &frames[..2] {
        let sk = layer(f, "ikev2-sk");
        assert!(
            sk["error"]
                .as_str()
                .unwrap()
                .contains("ICV verification failed"),
            "{sk}"
        );
    }
    let plain = layer(&frames[2], "esp-decrypted");
    assert!(
        plain["error"]
            .as_str()
            .unwrap()
            .contains("ICV verification failed"),
        "{plain}"
    );
    assert_eq!(
        protocols(&frames[2]),
        ["ipv4", "udp", "esp", "esp-decrypted"]
    );
}
