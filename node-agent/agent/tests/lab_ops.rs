//! The agent's operational surface on the seed's three sites as real `dmvpn-agent` processes
//! in network namespaces (the topology of `e2e/lab.sh` and tests/lab.rs): `/metrics`
//! scraped over HTTP inside the router namespaces after traffic, `dmvpnctl clear crypto sa`
//! with the SAs rebuilt and pings resuming, the IKE DELETE of a stopping agent, and the lab
//! authenticated with certificates (a CA and router certificates made by the test with
//! rcgen), with the lab of `dmvpn_testkit::seed_lab`. Needs root, ping and curl; without them each test says so and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::certs::Ca;
use dmvpn_testkit::seed_lab::{
    Bins, HUB, Lab, SITES, SPOKE1, SPOKE2, skip_without_root, underlay, wait,
};

/// The agents' default `metrics.listen` (no `metrics` section in e2e/lab/*.yaml).
const METRICS: &str = "http://127.0.0.1:9469/metrics";

fn bins() -> Bins {
    Bins {
        agent: env!("CARGO_BIN_EXE_dmvpn-agent").into(),
        dmvpnctl: env!("CARGO_BIN_EXE_dmvpnctl").into(),
    }
}

/// Whether the lab cannot run here (see [`skip_without_root`]) or curl is missing.
fn skip() -> bool {
    if skip_without_root() {
        return true;
    }
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIPPED: needs curl");
        return true;
    }
    false
}

/// The value of the series `name{labels}` (labels as Prometheus writes them, sorted).
fn value(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
}

#[test]
fn metrics_move_clear_crypto_sa_rebuilds_and_sigterm_deletes() {
    if skip() {
        return;
    }
    let mut lab = Lab::new(bins(), "ops", |_, c| c);
    lab.assert_spokes_registered(Duration::from_secs(5));
    assert!(lab.ping(HUB, SPOKE1, 3));
    // spoke1 → spoke2 hairpins at the hub, whose redirect brings a shortcut.
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(2),
        &["NHRP cache entry", "192.168.3.0/24", "Shortcut"]
    ));
    assert!(lab.ping(SPOKE1, SPOKE2, 3));
    // The snapshot the metrics read refreshes every second.
    std::thread::sleep(Duration::from_millis(1100));

    let hub = lab.scrape(HUB, METRICS);
    let s1 = "peer=\"198.18.0.2\"";
    for family in ["dmvpn_peer_packets_total", "dmvpn_peer_bytes_total"] {
        for dir in ["rx", "tx"] {
            let v = value(&hub, &format!("{family}{{direction=\"{dir}\",{s1}}}"));
            assert!(v > 0.0, "{family} {dir}: {v}");
        }
    }
    assert!(
        value(
            &hub,
            &format!("dmvpn_esp_packets_total{{direction=\"rx\",{s1}}}")
        ) >= 3.0
    );
    assert!(
        value(
            &hub,
            &format!("dmvpn_esp_packets_total{{direction=\"tx\",{s1}}}")
        ) >= 3.0
    );
    for reason in ["replay", "auth", "no_sa", "queue_full"] {
        value(
            &hub,
            &format!("dmvpn_dataplane_drops_total{{reason=\"{reason}\"}}"),
        );
    }
    assert_eq!(
        value(&hub, &format!("dmvpn_esp_auth_failures_total{{{s1}}}")),
        0.0
    );
    assert!(
        value(
            &hub,
            "dmvpn_nhrp_messages_total{direction=\"received\",type=\"registration_request\"}"
        ) >= 2.0
    );
    assert!(
        value(
            &hub,
            "dmvpn_nhrp_messages_total{direction=\"sent\",type=\"registration_reply\"}"
        ) >= 2.0
    );
    assert!(value(&hub, "dmvpn_nhrp_redirects_sent_total") >= 1.0);
    value(&hub, "dmvpn_nhrp_redirects_suppressed_total");
    assert_eq!(value(&hub, "dmvpn_ike_sas{state=\"established\"}"), 2.0);
    assert!(value(&hub, "dmvpn_forwarded_packets_total") >= 1.0);
    // One IKE handshake per spoke, timed (RFC 7296 sections 1.2 and 2.17).
    assert_eq!(
        value(&hub, "dmvpn_ike_handshake_duration_seconds_count"),
        2.0
    );
    assert!(value(&hub, "dmvpn_ike_handshake_duration_seconds_sum") > 0.0);

    let spoke = lab.scrape(SPOKE1, METRICS);
    assert_eq!(
        value(
            &spoke,
            "dmvpn_nhrp_nhs_up{nbma=\"198.18.0.1\",nhs=\"10.1.1.1\"}"
        ),
        1.0
    );
    assert!(value(&spoke, "dmvpn_nhrp_shortcuts") >= 1.0);
    assert!(
        value(
            &spoke,
            "dmvpn_nhrp_messages_total{direction=\"sent\",type=\"resolution_request\"}"
        ) >= 1.0
    );
    // The hub and spoke2 (the shortcut's direct SA; both spokes may have started one at
    // once, RFC 7296 section 2.8.1).
    assert!(value(&spoke, "dmvpn_ike_sas{state=\"established\"}") >= 2.0);
    assert!(value(&spoke, "dmvpn_ike_handshake_duration_seconds_count") >= 2.0);

    // clear crypto sa at the hub: DELETEs go, the spokes drop their SAs with the hub at
    // once, and traffic brings new ones.
    let before = lab.ipsec_sas(SPOKE1);
    let old = before["198.18.0.1"].clone();
    assert_eq!(lab.ctl(HUB, &["clear", "crypto", "sa"]), "");
    assert!(
        wait(Duration::from_secs(1), || {
            lab.ipsec_sas(SPOKE1).get("198.18.0.1") != Some(&old)
        }),
        "{:?}\n{}",
        lab.ipsec_sas(SPOKE1),
        lab.log(SPOKE1)
    );
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.1", "DeletedByPeer"]
    ));
    assert!(lab.ping(SPOKE1, HUB, 3), "{}", lab.log(SPOKE1));
    let after = lab.ipsec_sas(SPOKE1);
    let new = after.get("198.18.0.1").unwrap();
    assert_ne!(new, &old);
    // The shortcut between the spokes was not the hub's: it stays.
    assert_eq!(after.get("198.18.0.3"), before.get("198.18.0.3"));
    assert!(lab.ping(HUB, SPOKE2, 3));

    // SIGTERM at spoke2: its DELETEs make the hub and spoke1 drop their SAs with it at once.
    assert!(lab.stop(SPOKE2));
    assert!(lab.log(SPOKE2).contains("IKE SAs deleted"));
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.3", "DeletedByPeer"]
    ));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(1),
        &["IKE SA down", "198.18.0.3", "DeletedByPeer"]
    ));
    assert!(!lab.ipsec_sas(HUB).contains_key("198.18.0.3"));
}

#[test]
fn the_lab_authenticates_with_certificates() {
    if skip() {
        return;
    }
    let prepare = |dir: &Path| {
        let ca = Ca::new("kube-dmvpn lab CA");
        for (i, name) in SITES.into_iter().enumerate() {
            ca.write_router(dir, name, underlay(i).parse().unwrap());
        }
    };
    let mut lab = Lab::prepared(bins(), "certs", prepare, |site, c| {
        c.replace(
            "preSharedKeyFile: dmvpn.psk",
            &format!("certificateFile: {site}.pem\n  privateKeyFile: {site}.key\n  caFile: ca.pem"),
        )
    });
    for i in 0..SITES.len() {
        lab.start(i);
    }
    lab.assert_spokes_registered(Duration::from_secs(5));
    // The hub authenticated spoke1 by its certificate (RFC 7427).
    assert!(lab.wait_log(
        HUB,
        Duration::from_secs(1),
        &["IKE SA up", "198.18.0.2", "CN=spoke1"]
    ));
    assert!(lab.ping(SPOKE1, HUB, 3));
    assert!(lab.ping(SPOKE1, SPOKE2, 1));
    assert!(lab.wait_log(
        SPOKE1,
        Duration::from_secs(2),
        &["NHRP cache entry", "192.168.3.0/24", "Shortcut"]
    ));
    assert!(lab.ping(SPOKE1, SPOKE2, 3));
    assert!(lab.wait_log(
        SPOKE2,
        Duration::from_secs(1),
        &["IKE SA up", "198.18.0.2", "CN=spoke1"]
    ));
    assert!(!lab.log(HUB).contains("authentication failed"));
}
