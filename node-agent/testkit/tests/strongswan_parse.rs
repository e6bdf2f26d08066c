//! The strongSwan lab's parsers and the judge's tshark options, on recorded charon output
//! (runs without root or strongSwan).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use dmvpn_testkit::judge::tshark_key_options;
use dmvpn_testkit::keylog::{EspSaKeys, HexKey, IkeSaKeys, KeyLog};
use dmvpn_testkit::strongswan::{parse_list_sas, parse_logged_keys};

/// `swanctl --list-sas --pretty` of charon 5.9.8 (Debian 12, kernel-libipsec), initiator side
/// of the lab's GRE connection right after `swanctl --initiate --child gre`.
const LIST_SAS: &str = "list-sa event {
  gre {
    uniqueid = 1
    version = 2
    state = ESTABLISHED
    local-host = 198.18.0.1
    local-port = 4500
    local-id = 198.18.0.1
    remote-host = 198.18.0.2
    remote-port = 4500
    remote-id = 198.18.0.2
    initiator = yes
    initiator-spi = 6247ef07c9c64336
    responder-spi = c6305faad8682b04
    nat-remote = yes
    nat-any = yes
    encr-alg = AES_GCM_16
    encr-keysize = 256
    prf-alg = PRF_HMAC_SHA2_256
    dh-group = CURVE_25519
    established = 0
    rekey-time = 13570
    child-sas {
      gre-1 {
        name = gre
        uniqueid = 1
        reqid = 1
        state = INSTALLED
        mode = TUNNEL
        protocol = ESP
        encap = yes
        spi-in = f7b0f764
        spi-out = b56e5f05
        encr-alg = AES_GCM_16
        encr-keysize = 256
        bytes-in = 0
        packets-in = 0
        bytes-out = 0
        packets-out = 0
        rekey-time = 3389
        life-time = 3960
        install-time = 0
        local-ts = [
          198.18.0.1/32[gre]
        ]
        remote-ts = [
          198.18.0.2/32[gre]
        ]
      }
    }
  }
}
list-sas reply {
}
";

#[test]
fn list_sas_is_parsed_into_ike_and_child_sas() {
    let sas = parse_list_sas(LIST_SAS).unwrap();
    assert_eq!(sas.len(), 1);
    let ike = &sas[0];
    assert_eq!(
        (ike.name.as_str(), ike.unique_id, ike.state.as_str()),
        ("gre", 1, "ESTABLISHED")
    );
    assert_eq!(ike.local, ("198.18.0.1".to_owned(), 4500));
    assert_eq!(ike.remote, ("198.18.0.2".to_owned(), 4500));
    assert!(ike.initiator && ike.nat_any);
    assert_eq!(
        (ike.spi_i.as_str(), ike.spi_r.as_str()),
        ("6247ef07c9c64336", "c6305faad8682b04")
    );
    assert_eq!(
        (ike.encr.as_str(), ike.integ.as_deref()),
        ("AES_GCM_16_256", None)
    );
    assert_eq!(
        (ike.prf.as_str(), ike.dh_group.as_str()),
        ("PRF_HMAC_SHA2_256", "CURVE_25519")
    );
    let child = &ike.children[..];
    assert_eq!(child.len(), 1);
    let child = &child[0];
    assert_eq!(
        (
            child.name.as_str(),
            child.state.as_str(),
            child.mode.as_str()
        ),
        ("gre", "INSTALLED", "TUNNEL")
    );
    assert!(child.encap);
    assert_eq!((child.spi_in, child.spi_out), (0xf7b0_f764, 0xb56e_5f05));
    assert_eq!(child.encr, "AES_GCM_16_256");
    assert_eq!(child.local_ts, ["198.18.0.1/32[gre]"]);
    assert_eq!(child.remote_ts, ["198.18.0.2/32[gre]"]);
}

#[test]
fn list_sas_rejects_broken_output() {
    assert_eq!(parse_list_sas("list-sas reply {\n}\n").unwrap(), []);
    assert!(parse_list_sas("list-sa event {\n  gre {\n").is_err());
    assert!(parse_list_sas("}\n}\n").is_err());
    let without_spi = LIST_SAS.replace("    initiator-spi = 6247ef07c9c64336\n", "");
    assert!(parse_list_sas(&without_spi).is_err());
    let bad_spi = LIST_SAS.replace("spi-in = f7b0f764", "spi-in = zz");
    assert!(parse_list_sas(&bad_spi).is_err());
}

fn hex(s: &str) -> Vec<u8> {
    HexKey::from_hex(&s.replace(' ', ""))
        .unwrap()
        .bytes()
        .to_vec()
}

#[test]
fn keys_are_read_from_the_charon_log() {
    let log = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/charon-initiator-keys.log"),
    )
    .unwrap();
    let keys = parse_logged_keys(&log);
    assert_eq!(keys.ike.len(), 1);
    let ike = &keys.ike[0];
    assert_eq!(ike.unique_id, 1);
    assert_eq!(
        (ike.encr.as_str(), ike.integ.as_deref()),
        ("AES_GCM_16_256", None)
    );
    assert_eq!(
        ike.sk_ei.bytes(),
        hex(
            "F0 73 DB 29 EC 05 01 ED 0A 07 9E D3 A6 68 45 5D 63 F1 9B 8B B5 80 D9 2D 3C EF 4F 23 66 86 D9 DF 09 BE D3 B2"
        )
    );
    assert_eq!(ike.sk_er.bytes()[..4], [0xE7, 0xD8, 0x86, 0x36]);
    assert_eq!(ike.sk_er.bytes().len(), 36);
    assert_eq!((ike.sk_ai.as_ref(), ike.sk_ar.as_ref()), (None, None));

    // This side initiated both exchanges: outbound SAs use the initiator keys, inbound ones
    // the responder keys (RFC 7296 section 2.17); the rekey's outbound SA, logged twice
    // ("registering", then "adding"), appears once.
    // First bytes of the logged keys: IKE_AUTH's responder key B9 B2 CC 91 and initiator key
    // 06 FC 8F 83, CREATE_CHILD_SA's responder key 22 40 93 F1 and initiator key 52 65 02 ED.
    let got: Vec<(&str, String)> = keys
        .esp
        .iter()
        .map(|e| (e.spi.as_str(), e.encr_key.hex()[..8].to_owned()))
        .collect();
    let want = [
        ("0xf7b0f764", "b9b2cc91"),
        ("0xb56e5f05", "06fc8f83"),
        ("0x96ccf1f4", "224093f1"),
        ("0xc718c03c", "526502ed"),
    ];
    assert_eq!(got, want.map(|(s, k)| (s, k.to_owned())));
    let first = &keys.esp[0];
    assert_eq!(first.src, "198.18.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(first.dst, "198.18.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(
        (first.encr.as_str(), first.integ.as_deref()),
        ("AES_GCM_16_256", None)
    );
    assert_eq!(
        first.encr_key.bytes().len(),
        36,
        "AES-256 key and 4-byte salt"
    );
}

#[test]
fn responder_side_uses_the_other_keys() {
    // The same exchange seen by the responder: it parsed the request, so its inbound SA is
    // the one the initiator keys protect.
    let log = "\
00:00:00 01[ENC] <gre|1> parsed IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]
00:00:00 01[CFG] <gre|1> selected proposal: ESP:AES_GCM_16_128/NO_EXT_SEQ
00:00:00 01[CHD] <gre|1> encryption initiator key => 20 bytes @ 0x1
00:00:00 01[CHD] <gre|1>    0: 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11  ................
00:00:00 01[CHD] <gre|1>   16: 11 11 11 11                                      ....
00:00:00 01[CHD] <gre|1> encryption responder key => 20 bytes @ 0x2
00:00:00 01[CHD] <gre|1>    0: 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22 22  \"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"
00:00:00 01[CHD] <gre|1>   16: 22 22 22 22                                      \"\"\"\"
00:00:00 01[CHD] <gre|1> adding inbound ESP SA
00:00:00 01[CHD] <gre|1>   SPI 0x0000000a, src 198.18.0.1 dst 198.18.0.2
00:00:00 01[CHD] <gre|1> adding outbound ESP SA
00:00:00 01[CHD] <gre|1>   SPI 0x0000000b, src 198.18.0.2 dst 198.18.0.1
";
    let keys = parse_logged_keys(log);
    assert_eq!(keys.esp.len(), 2);
    assert_eq!(keys.esp[0].spi, "0x0000000a");
    assert_eq!(keys.esp[0].encr_key.bytes(), [0x11; 20]);
    assert_eq!(keys.esp[0].encr, "AES_GCM_16_128");
    assert_eq!(keys.esp[1].encr_key.bytes(), [0x22; 20]);
}

#[test]
fn truncated_key_dumps_are_dropped() {
    let log = "\
00:00:00 01[ENC] <gre|1> parsed IKE_AUTH request 1 [ ]
00:00:00 01[CHD] <gre|1> encryption initiator key => 36 bytes @ 0x1
00:00:00 01[CHD] <gre|1>    0: 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11  ................
00:00:00 01[CHD] <gre|1> encryption responder key => 4 bytes @ 0x2
00:00:00 01[CHD] <gre|1>    0: 22 22 22 22                                      \"\"\"\"
00:00:00 01[CHD] <gre|1> adding inbound ESP SA
00:00:00 01[CHD] <gre|1>   SPI 0x0000000a, src 198.18.0.1 dst 198.18.0.2
00:00:00 01[CHD] <gre|1> adding outbound ESP SA
00:00:00 01[CHD] <gre|1>   SPI 0x0000000b, src 198.18.0.2 dst 198.18.0.1
";
    // The truncated initiator key is dropped with its inbound SA; the next key still counts.
    let esp = parse_logged_keys(log).esp;
    assert_eq!(esp.len(), 1);
    assert_eq!(esp[0].spi, "0x0000000b");
    assert_eq!(esp[0].encr_key.bytes(), [0x22; 4]);
}

fn sample_keys() -> KeyLog {
    KeyLog {
        ike_sas: vec![IkeSaKeys {
            spi_i: "6247ef07c9c64336".to_owned(),
            spi_r: "c6305faad8682b04".to_owned(),
            encr: "AES_GCM_16_256".to_owned(),
            integ: None,
            sk_ei: HexKey::new(vec![0xab; 36]),
            sk_er: HexKey::new(vec![0xcd; 36]),
            sk_ai: None,
            sk_ar: None,
        }],
        esp_sas: vec![EspSaKeys {
            spi: "0xf7b0f764".to_owned(),
            src: "198.18.0.2".parse().unwrap(),
            dst: "198.18.0.1".parse().unwrap(),
            encr: "AES_GCM_16_128".to_owned(),
            encr_key: HexKey::new(vec![0x01; 20]),
            integ: None,
            integ_key: None,
        }],
    }
}

#[test]
fn key_log_json_has_the_contract_shape_and_debug_hides_keys() {
    let keys = sample_keys();
    let json: serde_json::Value = serde_json::from_str(&keys.to_json()).unwrap();
    assert_eq!(json["ike_sas"][0]["spi_i"], "6247ef07c9c64336");
    assert_eq!(json["ike_sas"][0]["sk_ei"], "ab".repeat(36));
    assert_eq!(json["ike_sas"][0]["integ"], serde_json::Value::Null);
    assert_eq!(json["ike_sas"][0]["sk_ai"], serde_json::Value::Null);
    assert_eq!(json["esp_sas"][0]["spi"], "0xf7b0f764");
    assert_eq!(json["esp_sas"][0]["src"], "198.18.0.2");
    assert_eq!(json["esp_sas"][0]["encr_key"], "01".repeat(20));
    assert_eq!(KeyLog::from_json(&keys.to_json()).unwrap(), keys);
    assert!(KeyLog::from_json(r#"{"ike_sas":[],"esp_sas":[{"spi":"0x1","src":"1.2.3.4","dst":"1.2.3.5","encr":"x","encr_key":"abc","integ":null,"integ_key":null}]}"#).is_err());
    let debug = format!("{keys:?}");
    assert!(
        !debug.contains("abab") && !debug.contains("0101"),
        "{debug}"
    );
}

#[test]
fn tshark_options_follow_the_uat_syntax() {
    let options = tshark_key_options(&sample_keys()).unwrap();
    assert!(options.contains(&"esp.enable_encryption_decode:TRUE".to_owned()));
    assert!(options.contains(&format!(
        "uat:ikev2_decryption_table:6247ef07c9c64336,c6305faad8682b04,{},{},\"AES-GCM-256 with 16 octet ICV [RFC5282]\",,,\"NONE [RFC4306]\"",
        "ab".repeat(36),
        "cd".repeat(36)
    )));
    assert!(options.contains(&format!(
        "uat:esp_sa:\"IPv4\",\"198.18.0.2\",\"198.18.0.1\",\"0xf7b0f764\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
        "01".repeat(20)
    )));

    let mut bad = sample_keys();
    bad.ike_sas[0].spi_i = "6247ef07".to_owned();
    assert!(tshark_key_options(&bad).is_err());
    let mut bad = sample_keys();
    bad.esp_sas[0].spi = "f7b0f764".to_owned();
    assert!(tshark_key_options(&bad).is_err());
    let mut bad = sample_keys();
    bad.esp_sas[0].encr = "CHACHA20_POLY1305".to_owned();
    assert!(tshark_key_options(&bad).unwrap_err().contains("ChaCha20"));
    let mut bad = sample_keys();
    bad.esp_sas[0].dst = "2001:db8::1".parse().unwrap();
    assert!(tshark_key_options(&bad).is_err());
}
