//! The seed's three sites as real `dmvpn-agent` processes in network namespaces (the
//! topology of `e2e/lab.sh`: an underlay bridge on 198.18.0.0/15, a router namespace per
//! site, a LAN host behind each), with the IPsec of e2e/lab/*.yaml (IKEv2 with the
//! pre-shared key, ESP-in-UDP), judged from outside: pings between the LAN hosts, the
//! routes and devices in the router namespaces, `dmvpnctl show crypto ... -o json` over the
//! admin sockets, the key logs, and the agents' JSON logs (the `stats` lines carry the hub's
//! forwarded-packet counter). Needs root; without it each test says so and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use dmvpn_testkit::capture::Capture;
use dmvpn_testkit::judge::judge;
use dmvpn_testkit::keylog::KeyLog;
use dmvpn_testkit::seed_lab::{Bins, HUB, Lab, SPOKE1, SPOKE2, skip_without_root};

fn bins() -> Bins {
    Bins {
        agent: env!("CARGO_BIN_EXE_dmvpn-agent").into(),
        dmvpnctl: env!("CARGO_BIN_EXE_dmvpnctl").into(),
    }
}

#[test]
fn seed_lab_registers_routes_shortcuts_restarts_and_cleans_up() {
    if skip_without_root() {
        return;
    }
    let mut lab = Lab::new(bins(), "seed", |_, c| c);
    lab.assert_spokes_registered(Duration::from_secs(5));
    // Each spoke registered over its own IKE SA with the hub (UDP 4500: forced encapsulation).
    for spoke in ["198.18.0.2:4500", "198.18.0.3:4500"] {
        assert!(
            lab.wait_ike(HUB, spoke, Duration::from_secs(2)),
            "{:?}",
            lab.ike_peers(HUB)
        );
    }
    assert_eq!(lab.ike_peers(SPOKE1), ["198.18.0.1:4500"]);
    // The hub routes the spokes' registered LANs into its tunnel.
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(2),
        &["route added", "192.168.3.0/24"]
    ));
    let hub_routes = lab.routes(HUB);
    assert!(
        hub_routes.contains("192.168.2.0/24 dev dmvpn0"),
        "{hub_routes}"
    );
    assert!(
        hub_routes.contains("192.168.3.0/24 dev dmvpn0"),
        "{hub_routes}"
    );

    // LAN to LAN, hub and spoke both ways.
    assert!(lab.ping(HUB, SPOKE1, 3));
    assert!(lab.ping(SPOKE2, HUB, 3));

    // spoke1 LAN → spoke2 LAN: through the hub first, then a shortcut within a second.
    let first = Instant::now();
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(
        lab.wait_log(
            SPOKE1,
            Duration::from_secs(1).saturating_sub(first.elapsed()),
            &["NHRP cache entry", "192.168.3.0/24", "Shortcut"]
        ),
        "no shortcut within a second:\n{}",
        lab.log(SPOKE1)
    );
    assert!(lab.wait_log(
        SPOKE2,
        Duration::from_secs(1),
        &["NHRP cache entry", "192.168.2.0/24", "Shortcut"]
    ));
    assert!(lab.routes(SPOKE1).contains("192.168.3.0/24 dev dmvpn0"));
    // The hub forwarded the first packets; once the stats refresh (1 s) it stops growing.
    std::thread::sleep(Duration::from_millis(1200));
    let forwarded = lab.stat(HUB, "forwarded");
    assert!(forwarded >= 1, "the first packets hairpin at the hub");
    assert!(lab.ping(SPOKE1, SPOKE2, 10));
    // The shortcut's first packet brought a direct IKE SA between the spokes.
    assert!(
        lab.wait_ike(SPOKE1, "198.18.0.3:4500", Duration::from_secs(1)),
        "{:?}\n{}",
        lab.ike_peers(SPOKE1),
        lab.log(SPOKE1)
    );
    assert!(lab.wait_ike(SPOKE2, "198.18.0.2:4500", Duration::from_secs(1)));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(lab.stat(HUB, "forwarded"), forwarded);
    assert!(lab.stat(SPOKE2, "tun_tx") >= 11);
    // The pings went through spoke1's ESP SA pair with spoke2, both ways.
    let sas = lab.show(SPOKE1, &["crypto", "ipsec", "sa"]);
    let direct = sas["sas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sa| sa["peer"] == "198.18.0.3")
        .unwrap_or_else(|| panic!("{sas}"));
    assert!(direct["packetsEncaps"].as_u64().unwrap() >= 10, "{sas}");
    assert!(direct["packetsDecaps"].as_u64().unwrap() >= 10, "{sas}");
    assert_eq!(direct["authFailures"], 0);
    // The key log holds the ESP keys of that pair (for decrypting captures).
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lab.sites[SPOKE1].key_log).unwrap())
            .unwrap();
    let spi = direct["outboundSpi"].as_str().unwrap();
    assert!(
        keys["esp_sas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["spi"] == spi && k["dst"] == "198.18.0.3"),
        "{spi} not in {keys}"
    );

    // SIGTERM: exit 0, no TUN device, no routes left.
    assert!(lab.stop(SPOKE1));
    assert!(!lab.has_tun(SPOKE1));
    assert_eq!(lab.routes(SPOKE1), "");
    assert!(lab.log(SPOKE1).contains("routes removed"));
    // The hub took the purge: spoke1's LAN route goes at once, not at expiry.
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(2),
        &["route removed", "192.168.2.0/24"]
    ));

    // Restarted, spoke1 registers again and traffic resumes.
    std::fs::write(&lab.sites[SPOKE1].log, "").unwrap();
    lab.start(SPOKE1);
    assert!(
        lab.registered(SPOKE1, Duration::from_secs(5)),
        "{}",
        lab.log(SPOKE1)
    );
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(2),
        &["route added", "192.168.2.0/24"]
    ));
    assert!(lab.ping(HUB, SPOKE1, 3));
    assert!(lab.ping(SPOKE1, SPOKE2, 3));
    for i in [HUB, SPOKE1, SPOKE2] {
        assert!(lab.stop(i));
        assert!(!lab.has_tun(i));
        assert_eq!(lab.routes(i), "");
    }
}

#[test]
fn nhrp_authentication_mismatch_is_rejected() {
    if skip_without_root() {
        return;
    }
    let lab = Lab::new(bins(), "auth", |site, c| {
        if site == "spoke1" {
            c.replace("authentication: \"@lpha\"", "authentication: \"wrong\"")
        } else {
            c
        }
    });
    assert!(lab.registered(SPOKE2, Duration::from_secs(5)));
    assert!(
        lab.wait_log(
            HUB,
            Duration::from_secs(3),
            &["NHRP authentication failed", "198.18.0.2"]
        ),
        "{}",
        lab.log(HUB)
    );
    assert!(!lab.log(SPOKE1).contains("registered with NHS"));
    assert!(!lab.routes(HUB).contains("192.168.2.0/24"));
    assert!(lab.stat(HUB, "nhrp_auth_dropped") >= 1);
    assert!(!lab.ping(SPOKE1, HUB, 1));
}

#[test]
fn a_wrong_pre_shared_key_brings_no_sa_and_a_clear_warning() {
    if skip_without_root() {
        return;
    }
    let lab = Lab::new(bins(), "psk", |site, c| {
        if site == "spoke1" {
            c.replace("preSharedKeyFile: dmvpn.psk", "preSharedKeyFile: wrong.psk")
        } else {
            c
        }
    });
    // spoke2 is fine; spoke1's key is refused by the hub, which says so.
    assert!(lab.registered(SPOKE2, Duration::from_secs(5)));
    assert!(
        lab.wait_log(
            HUB,
            Duration::from_secs(5),
            &["IKE authentication failed", "198.18.0.2", "pre-shared key"]
        ),
        "{}",
        lab.log(HUB)
    );
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(2),
        &["IKE authentication failed", "198.18.0.1"]
    ));
    assert!(!lab.log(SPOKE1).contains("registered with NHS"));
    assert!(lab.ike_peers(SPOKE1).is_empty());
    assert!(!lab.ike_peers(HUB).contains(&"198.18.0.2:4500".to_owned()));
    // The failure is counted (the stats line refreshes every second).
    let end = Instant::now() + Duration::from_secs(2);
    while lab.stat(HUB, "ike_auth_failures") == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lab.stat(HUB, "ike_auth_failures") >= 1, "{}", lab.log(HUB));
    assert!(!lab.ping(SPOKE1, HUB, 1));
}

/// The three key logs in one, each SA once.
fn merged_key_log(lab: &Lab) -> KeyLog {
    let mut all = KeyLog::default();
    for site in &lab.sites {
        let text = std::fs::read_to_string(&site.key_log).unwrap();
        let log = KeyLog::from_json(&text).unwrap();
        for k in log.ike_sas {
            if !all
                .ike_sas
                .iter()
                .any(|a| a.spi_i == k.spi_i && a.spi_r == k.spi_r)
            {
                all.ike_sas.push(k);
            }
        }
        for k in log.esp_sas {
            if !all.esp_sas.iter().any(|a| a.spi == k.spi && a.dst == k.dst) {
                all.esp_sas.push(k);
            }
        }
    }
    all
}

#[test]
fn a_capture_of_the_underlay_decrypts_with_the_agents_key_logs() {
    if skip_without_root() || Command::new("tshark").arg("-v").output().is_err() {
        eprintln!("SKIPPED: needs tshark and tcpdump");
        return;
    }
    let lab = Lab::new(bins(), "judge", |_, c| c);
    let capture = Capture::start(&lab.inet, "inet", &lab.dir.join("underlay.pcap")).unwrap();
    assert!(lab.registered(SPOKE1, Duration::from_secs(5)));
    assert!(lab.registered(SPOKE2, Duration::from_secs(5)));
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(lab.wait_log(SPOKE1, Duration::from_secs(1), &["Shortcut"]));
    assert!(lab.ping(SPOKE1, SPOKE2, 5));
    assert!(lab.wait_ike(SPOKE1, "198.18.0.3:4500", Duration::from_secs(1)));
    let pcap = capture.stop().unwrap();
    let keys = merged_key_log(&lab);
    let report = judge(&pcap, &keys).unwrap_or_else(|e| panic!("{e}"));
    // The capture starts as the agents do, so the hub's IKE SAs may be up before it; the
    // spokes' direct IKE_AUTH exchange (two messages) is always in it. All IKE decrypts, and
    // the ESP of the pings and of NHRP has every ICV good.
    assert!(report.ike_encrypted >= 2, "{report:?}");
    assert_eq!(report.ike_decrypted, report.ike_encrypted, "{report:?}");
    assert!(report.esp_packets >= 20, "{report:?}");
    assert_eq!(report.esp_icv_good, report.esp_packets, "{report:?}");
}
