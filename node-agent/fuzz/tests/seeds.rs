//! Replays the committed seed corpus through every check, so `cargo test` proves the
//! targets' invariants on the reference vectors without a fuzzer.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no seeds in {}", dir.display());
}

#[test]
fn nhrp_seeds() {
    replay("nhrp", dmvpn_fuzz::nhrp::check);
}

#[test]
fn ikev2_seeds() {
    replay("ikev2", dmvpn_fuzz::ikev2::check);
}

#[test]
fn gre_seeds() {
    replay("gre", dmvpn_fuzz::dataplane::gre);
}

#[test]
fn esp_seeds() {
    replay("esp", dmvpn_fuzz::dataplane::esp);
}

#[test]
fn udp_encap_seeds() {
    replay("udp_encap", dmvpn_fuzz::dataplane::udp_encap);
}

#[test]
fn ip_seeds() {
    replay("ip", dmvpn_fuzz::dataplane::ip);
}

#[test]
fn esp_sa_seeds() {
    replay("esp_sa", dmvpn_fuzz::esp_sa::check);
}

#[test]
fn nhrp_engine_seeds() {
    replay("nhrp_engine", dmvpn_fuzz::nhrp_engine::check);
}

#[test]
fn ike_auth_data_seeds() {
    replay("ike_auth_data", dmvpn_fuzz::ike_auth_data::check);
}

#[test]
fn ike_fragment_seeds() {
    replay("ike_fragment", dmvpn_fuzz::ike_fragment::check);
}

#[test]
fn ike_engine_seeds() {
    replay("ike_engine", dmvpn_fuzz::ike_engine::check);
}

#[test]
fn forwarder_seeds() {
    replay("forwarder", dmvpn_fuzz::forwarder::check);
}
