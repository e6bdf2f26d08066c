//! The strongSwan lab proven by strongSwan talking to strongSwan: two charons in two network
//! namespaces joined by a veth, PSK, AES-256-GCM/X25519, GRE selectors in tunnel mode with
//! UDP encapsulation (the shape issue 4's interop tests need), GRE traffic both ways, CHILD
//! and IKE rekey, delete; then tshark decrypts the capture with the key log built from
//! charon's logs, and rejects it when one key is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dmvpn_testkit::capture::Capture;
use dmvpn_testkit::judge::judge;
use dmvpn_testkit::keylog::{HexKey, KeyLog};
use dmvpn_testkit::netns::Netns;
use dmvpn_testkit::strongswan::{
    Auth, Charon, CharonConfig, ChildSa, Connection, IkeSa, Psk, Sa, lab_available,
};

const A: &str = "198.18.9.1";
const B: &str = "198.18.9.2";
const GRE_HELPER: &str = env!("CARGO_BIN_EXE_dmvpn-lab-gre");

fn config(local: &str, remote: &str) -> CharonConfig {
    let local: IpAddr = local.parse().unwrap();
    let remote: IpAddr = remote.parse().unwrap();
    CharonConfig {
        connections: vec![Connection::psk_gre(
            "gre",
            local,
            remote,
            Psk::new(b"lab psk: not a secret".to_vec()),
        )],
    }
}

/// The one IKE_SA and its installed CHILD_SA.
fn established(charon: &Charon<'_>) -> (IkeSa, ChildSa) {
    let sas = charon.list_sas().unwrap();
    assert_eq!(sas.len(), 1, "{sas:#?}");
    let ike = sas[0].clone();
    assert_eq!(ike.state, "ESTABLISHED");
    assert_eq!(ike.encr, "AES_GCM_16_256");
    assert_eq!(ike.integ, None);
    assert_eq!(ike.prf, "PRF_HMAC_SHA2_256");
    assert_eq!(ike.dh_group, "CURVE_25519");
    assert_eq!(ike.local.1, 4500, "IKE floats to 4500");
    let installed: Vec<&ChildSa> = ike
        .children
        .iter()
        .filter(|c| c.state == "INSTALLED")
        .collect();
    assert_eq!(installed.len(), 1, "{ike:#?}");
    let child = installed[0].clone();
    assert_eq!(
        (child.mode.as_str(), child.protocol.as_str(), child.encap),
        ("TUNNEL", "ESP", true),
        "INSTALLED, TUNNEL-in-UDP"
    );
    assert_eq!(child.encr, "AES_GCM_16_256");
    (ike, child)
}

/// Sends `count` GRE packets from `from` to `to_addr`, received by a raw GRE socket in `to`,
/// and returns how many arrived there in clear.
fn send_gre(from: &Netns, to: &Netns, to_addr: &str, count: u32) -> u32 {
    let ready = std::env::temp_dir().join(format!("dmvpn-lab-gre-ready-{}", to.name()));
    let _ = std::fs::remove_file(&ready);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            to.exec(
                GRE_HELPER,
                &["recv", &count.to_string(), "3000", &ready.to_string_lossy()],
            )
            .unwrap()
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ready.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        from.exec(GRE_HELPER, &["send", to_addr, &count.to_string()])
            .unwrap();
        let out = receiver.join().unwrap();
        std::fs::remove_file(&ready).unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    })
}

/// Polls `charon`'s SAs until `done` holds (charon acts asynchronously after swanctl returns).
fn wait_for(charon: &Charon<'_>, what: &str, done: impl Fn(&[IkeSa]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sas = charon.list_sas().unwrap();
        if done(&sas) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {sas:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn strongswan_to_strongswan_gre_tunnel_in_udp_judged_by_tshark() {
    if !lab_available() {
        return;
    }
    let started = Instant::now();
    let ns_a = Netns::create("dmvpn-swan").unwrap();
    let ns_b = Netns::create("dmvpn-swan").unwrap();
    ns_a.veth("sw0", &ns_b, "sw1").unwrap();
    ns_a.add_addr("sw0", &format!("{A}/24")).unwrap();
    ns_b.add_addr("sw1", &format!("{B}/24")).unwrap();

    let pcap = std::env::temp_dir().join(format!("dmvpn-swan-lab-{}.pcap", std::process::id()));
    let capture = Capture::start(&ns_a, "sw0", &pcap).unwrap();
    let a = Charon::start(&ns_a, &config(A, B)).unwrap();
    let b = Charon::start(&ns_b, &config(B, A)).unwrap();
    a.load_all().unwrap();
    b.load_all().unwrap();

    // Establish: IKE_SA_INIT on 500, IKE_AUTH on 4500, GRE CHILD_SA in tunnel mode over UDP.
    a.initiate("gre").unwrap();
    let (ike_a, child_a) = established(&a);
    let (ike_b, child_b) = established(&b);
    assert!(ike_a.initiator && !ike_b.initiator);
    assert_eq!((&ike_a.spi_i, &ike_a.spi_r), (&ike_b.spi_i, &ike_b.spi_r));
    assert_eq!(child_a.spi_out, child_b.spi_in);
    assert_eq!(child_a.spi_in, child_b.spi_out);
    assert_eq!(child_a.local_ts, [format!("{A}/32[gre]")]);
    assert_eq!(child_a.remote_ts, [format!("{B}/32[gre]")]);
    assert_eq!(child_b.packets_in, 0);

    // GRE both ways: the far side decrypts (its counters rise) and its raw socket gets them.
    assert_eq!(send_gre(&ns_a, &ns_b, B, 5), 5);
    assert_eq!(send_gre(&ns_b, &ns_a, A, 3), 3);
    let (_, child_b) = established(&b);
    let (_, child_a) = established(&a);
    assert_eq!((child_b.packets_in, child_b.packets_out), (5, 3));
    assert_eq!((child_a.packets_in, child_a.packets_out), (3, 5));

    // CHILD_SA rekey started by the responder: new SPIs, the old SA goes away.
    b.rekey(Sa::Child("gre")).unwrap();
    wait_for(&a, "CHILD rekey", |sas| {
        sas.len() == 1
            && sas[0]
                .children
                .iter()
                .any(|c| c.state == "INSTALLED" && c.spi_in != child_a.spi_in)
            && !sas[0]
                .children
                .iter()
                .any(|c| c.spi_in == child_a.spi_in && c.state == "INSTALLED")
    });
    let (_, rekeyed_child) = established(&a);

    // IKE_SA rekey started by the initiator: new IKE SPIs, the CHILD_SA moves over.
    a.rekey(Sa::Ike("gre")).unwrap();
    wait_for(&b, "IKE rekey", |sas| {
        sas.len() == 1 && sas[0].spi_i != ike_b.spi_i && sas[0].state == "ESTABLISHED"
    });
    let (rekeyed_ike, child_after) = established(&a);
    assert_ne!(rekeyed_ike.unique_id, ike_a.unique_id);
    assert_eq!(child_after.spi_in, rekeyed_child.spi_in);
    established(&b);

    // Traffic on the rekeyed CHILD_SA, then delete everything from the initiator.
    assert_eq!(send_gre(&ns_a, &ns_b, B, 4), 4);
    assert_eq!(send_gre(&ns_b, &ns_a, A, 2), 2);
    let (_, child_b) = established(&b);
    assert_eq!((child_b.packets_in, child_b.packets_out), (4, 2));
    a.terminate(Sa::Ike("gre")).unwrap();
    wait_for(&a, "terminate (initiator)", <[IkeSa]>::is_empty);
    wait_for(&b, "terminate (responder)", <[IkeSa]>::is_empty);
    let pcap = capture.stop().unwrap();

    // The key log from each side's charon log: the same SAs with the same keys.
    let keys = a.key_log();
    let mut keys_b = b.key_log();
    assert_eq!(keys.ike_sas.len(), 2, "initial and rekeyed IKE_SA");
    assert_eq!(keys.esp_sas.len(), 4, "two directions of two CHILD_SAs");
    let mut keys_a = keys.clone();
    for k in [&mut keys_a, &mut keys_b] {
        k.esp_sas.sort_by(|x, y| x.spi.cmp(&y.spi));
    }
    assert_eq!(keys_a, keys_b, "both charons log the same keys");

    // The contract shape survives a JSON round trip through a file.
    let json_path = pcap.with_extension("keys.json");
    keys.write(&json_path).unwrap();
    let keys = KeyLog::read(&json_path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["ike_sas"][0]["integ"], serde_json::Value::Null);
    assert_eq!(json["ike_sas"][0]["spi_i"].as_str().unwrap().len(), 16);
    assert_eq!(json["esp_sas"][0]["spi"].as_str().unwrap().len(), 10);
    assert_eq!(json["esp_sas"][0]["encr_key"].as_str().unwrap().len(), 72);

    // tshark decrypts every IKE message after IKE_SA_INIT and every ESP packet.
    let report = judge(&pcap, &keys).unwrap_or_else(|f| panic!("{f}"));
    println!("judge: {report:?}");
    assert_eq!(report.esp_packets, 14);
    assert_eq!(report.esp_icv_good, 14);
    // IKE_AUTH, CREATE_CHILD_SA ×2 and INFORMATIONAL deletes ×3, each a request and response.
    assert!(report.ike_encrypted >= 12, "{report:?}");
    assert_eq!(report.ike_decrypted, report.ike_encrypted);
    assert_eq!(report.ike_messages, report.ike_encrypted + 2);

    // The judge has teeth: one wrong bit in an ESP key or an IKE key fails it.
    let mut wrong = keys.clone();
    wrong.esp_sas[1].encr_key = flip(&wrong.esp_sas[1].encr_key);
    let failure = judge(&pcap, &wrong).expect_err("a wrong ESP key must fail the judge");
    assert!(failure.report.esp_icv_good < 14, "{failure}");
    let mut wrong = keys.clone();
    wrong.ike_sas[0].sk_er = flip(&wrong.ike_sas[0].sk_er);
    let failure = judge(&pcap, &wrong).expect_err("a wrong IKE key must fail the judge");
    assert!(
        failure.report.ike_decrypted < report.ike_decrypted,
        "{failure}"
    );

    drop((a, b));
    std::fs::remove_file(&json_path).unwrap();
    std::fs::remove_file(&pcap).unwrap();
    println!("lab took {:?}", started.elapsed());
}

fn flip(key: &HexKey) -> HexKey {
    let mut bytes = key.bytes().to_vec();
    bytes[0] ^= 1;
    HexKey::new(bytes)
}

/// Makes an ECDSA P-256 CA and one certificate per address (IP SAN), with openssl; returns
/// (ca, [(cert, key)]).
fn make_certs(dir: &std::path::Path, addrs: &[&str]) -> (PathBuf, Vec<(PathBuf, PathBuf)>) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &[
                "req", "-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            ][..],
            &ec,
            &["-subj", "/CN=dmvpn lab CA"],
        ]
        .concat(),
    );
    let mut leaves = Vec::new();
    for addr in addrs {
        let san = format!("subjectAltName=IP:{addr}");
        openssl(
            &[
                &[
                    "req", "-x509", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "2",
                ][..],
                &ec,
                &[
                    "-keyout",
                    &format!("{addr}.key"),
                    "-out",
                    &format!("{addr}.pem"),
                ],
                &["-subj", &format!("/CN={addr}"), "-addext", &san],
            ]
            .concat(),
        );
        leaves.push((
            dir.join(format!("{addr}.pem")),
            dir.join(format!("{addr}.key")),
        ));
    }
    (dir.join("ca.pem"), leaves)
}

#[test]
fn strongswan_to_strongswan_with_certificates() {
    if !lab_available() {
        return;
    }
    const C: &str = "198.18.10.1";
    const D: &str = "198.18.10.2";
    let certs = std::env::temp_dir().join(format!("dmvpn-swan-certs-{}", std::process::id()));
    std::fs::create_dir_all(&certs).unwrap();
    let (ca, leaves) = make_certs(&certs, &[C, D]);
    let ns_c = Netns::create("dmvpn-swan").unwrap();
    let ns_d = Netns::create("dmvpn-swan").unwrap();
    ns_c.veth("sw0", &ns_d, "sw1").unwrap();
    ns_c.add_addr("sw0", &format!("{C}/24")).unwrap();
    ns_d.add_addr("sw1", &format!("{D}/24")).unwrap();
    let config = |local: &str, remote: &str, (cert, key): &(PathBuf, PathBuf)| {
        let mut conn = Connection::psk_gre(
            "gre",
            local.parse().unwrap(),
            remote.parse().unwrap(),
            Psk::new(Vec::new()),
        );
        conn.auth = Auth::Cert {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        };
        CharonConfig {
            connections: vec![conn],
        }
    };
    let c = Charon::start(&ns_c, &config(C, D, &leaves[0])).unwrap();
    let d = Charon::start(&ns_d, &config(D, C, &leaves[1])).unwrap();
    c.load_all().unwrap();
    d.load_all().unwrap();
    c.initiate("gre").unwrap();
    let (ike_c, _) = established(&c);
    let (ike_d, _) = established(&d);
    assert_eq!(ike_c.spi_i, ike_d.spi_i);
    assert!(
        d.log()
            .contains("authentication of '198.18.10.1' with ECDSA_WITH_SHA256_DER successful"),
        "the responder checked the initiator's ECDSA signature"
    );
    assert_eq!(send_gre(&ns_c, &ns_d, D, 2), 2);
    drop((c, d));
    std::fs::remove_dir_all(&certs).unwrap();
}
